-- Daily reconciliation (reconcile.rs). The gateway's own time of each payment and refund, as
-- Alipay reported it (a notification's `gmt_payment`, a query's `send_pay_date`, a refund's
-- `gmt_refund_pay`): the bill of a day lists what completed that day by Alipay's clock, so the
-- books are cut the same way. Rows from before this version have none and are matched only from
-- the bill's side.
ALTER TABLE payment_attempts ADD COLUMN gateway_paid_at TEXT;
ALTER TABLE refunds ADD COLUMN gateway_refunded_at TEXT;
CREATE INDEX attempts_by_gateway_paid_at ON payment_attempts (gateway_paid_at) WHERE gateway_paid_at IS NOT NULL;
CREATE INDEX refunds_by_gateway_refunded_at ON refunds (gateway_refunded_at) WHERE gateway_refunded_at IS NOT NULL;

-- One row per Alipay day (Asia/Shanghai) compared with the books; a later run of the same day
-- replaces it and its differences.
CREATE TABLE reconciliations (
    day          TEXT PRIMARY KEY,
    ran_at       TEXT NOT NULL,
    bill_file    TEXT NOT NULL,
    payments     INTEGER NOT NULL CHECK (payments >= 0),
    refunds      INTEGER NOT NULL CHECK (refunds >= 0),
    income_fen   INTEGER NOT NULL,
    refunded_fen INTEGER NOT NULL
);

CREATE TABLE reconciliation_differences (
    day            TEXT NOT NULL REFERENCES reconciliations (day) ON DELETE CASCADE,
    seq            INTEGER NOT NULL,
    kind           TEXT NOT NULL CHECK (kind IN ('missing_payment', 'unknown_trade', 'amount_mismatch', 'payment_not_in_bill', 'refund_missing', 'unknown_refund')),
    out_trade_no   TEXT NOT NULL,
    out_request_no TEXT,
    books_fen      INTEGER,
    bill_fen       INTEGER,
    PRIMARY KEY (day, seq)
);
