-- Haitao Alipay sandbox schema, version 1. Amounts in fen; times RFC 3339 UTC.
-- Everything here is test material: the keys are the sandbox's own or generated demo keys.

CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

CREATE TABLE apps (
    app_id        TEXT PRIMARY KEY,
    name          TEXT NOT NULL UNIQUE,
    seller_id     TEXT NOT NULL,
    public_key    TEXT NOT NULL,
    -- Only for demo apps whose key pair the sandbox generated.
    private_key   TEXT,
    notify_base   TEXT,
    created_at    TEXT NOT NULL
);

-- Money accounts: buyer funding sources, merchant accounts, and the sandbox's own books.
CREATE TABLE accounts (
    id        TEXT PRIMARY KEY,
    owner     TEXT NOT NULL,
    kind      TEXT NOT NULL,
    label     TEXT NOT NULL,
    -- Debit-like accounts hold a balance; credit lines may go negative down to -credit_limit.
    credit_limit INTEGER NOT NULL DEFAULT 0,
    card_brand TEXT,
    card_last4 TEXT,
    created_at TEXT NOT NULL
);

CREATE TABLE ledger (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    at         TEXT NOT NULL,
    trade_no   TEXT,
    kind       TEXT NOT NULL,
    from_acct  TEXT NOT NULL REFERENCES accounts (id),
    to_acct    TEXT NOT NULL REFERENCES accounts (id),
    amount_fen INTEGER NOT NULL CHECK (amount_fen > 0)
);
CREATE INDEX ledger_by_trade ON ledger (trade_no);

CREATE TABLE buyers (
    id                 TEXT PRIMARY KEY,
    login              TEXT NOT NULL UNIQUE,
    login_password     TEXT NOT NULL,
    pay_password       TEXT NOT NULL,
    real_name          TEXT NOT NULL,
    id_number          TEXT NOT NULL,
    phone              TEXT NOT NULL,
    description        TEXT NOT NULL,
    failed_pay_pw      INTEGER NOT NULL DEFAULT 0,
    locked_until       TEXT,
    created_at         TEXT NOT NULL
);

-- A page.pay / wap.pay request waiting for a buyer at the cashier.
CREATE TABLE cashier_sessions (
    token        TEXT PRIMARY KEY,
    app_id       TEXT NOT NULL,
    out_trade_no TEXT NOT NULL,
    method       TEXT NOT NULL,
    params       TEXT NOT NULL,
    created_at   TEXT NOT NULL,
    buyer_id     TEXT,
    trade_no     TEXT,
    -- The buyer's channel choice, between choosing and confirming.
    choice       TEXT,
    state        TEXT NOT NULL DEFAULT 'open'
);

CREATE TABLE trades (
    trade_no       TEXT PRIMARY KEY,
    app_id         TEXT NOT NULL,
    out_trade_no   TEXT NOT NULL,
    method         TEXT NOT NULL,
    product_code   TEXT,
    status         TEXT NOT NULL,
    total_minor    INTEGER NOT NULL,
    currency       TEXT NOT NULL,
    cny_fen        INTEGER NOT NULL,
    subject        TEXT NOT NULL,
    biz_digest     TEXT NOT NULL,
    biz_content    TEXT NOT NULL,
    notify_url     TEXT,
    return_url     TEXT,
    buyer_id       TEXT,
    channel        TEXT,
    fund_bills     TEXT,
    surcharge_fen  INTEGER NOT NULL DEFAULT 0,
    fee_fen        INTEGER NOT NULL DEFAULT 0,
    refunded_fen   INTEGER NOT NULL DEFAULT 0,
    created_at     TEXT NOT NULL,
    expires_at     TEXT,
    paid_at        TEXT,
    closed_at      TEXT,
    UNIQUE (app_id, out_trade_no)
);
CREATE INDEX trades_by_status ON trades (status, expires_at);

CREATE TABLE refunds (
    trade_no       TEXT NOT NULL REFERENCES trades (trade_no),
    out_request_no TEXT NOT NULL,
    amount_fen     INTEGER NOT NULL CHECK (amount_fen > 0),
    reason         TEXT,
    created_at     TEXT NOT NULL,
    PRIMARY KEY (trade_no, out_request_no)
);

CREATE TABLE customs_declarations (
    trade_no          TEXT NOT NULL REFERENCES trades (trade_no),
    out_request_no    TEXT NOT NULL,
    alipay_declare_no TEXT NOT NULL,
    customs_place     TEXT NOT NULL,
    amount_fen        INTEGER NOT NULL,
    buyer_name        TEXT,
    buyer_cert_no     TEXT,
    identity_check    TEXT,
    pushes            INTEGER NOT NULL DEFAULT 1,
    created_at        TEXT NOT NULL,
    updated_at        TEXT NOT NULL,
    PRIMARY KEY (trade_no, out_request_no)
);

CREATE TABLE notifications (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    notify_id   TEXT NOT NULL,
    trade_no    TEXT NOT NULL,
    app_id      TEXT NOT NULL,
    url         TEXT NOT NULL,
    body        TEXT NOT NULL,
    attempts    INTEGER NOT NULL DEFAULT 0,
    next_at     TEXT NOT NULL,
    state       TEXT NOT NULL DEFAULT 'pending',
    last_error  TEXT,
    created_at  TEXT NOT NULL,
    delivered_at TEXT
);
CREATE INDEX notifications_due ON notifications (state, next_at);

-- Outcomes forced by testers, for one trade or for the next trade of an app.
CREATE TABLE scenarios (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    app_id       TEXT,
    out_trade_no TEXT,
    outcome      TEXT NOT NULL,
    created_at   TEXT NOT NULL,
    used_at      TEXT
);

CREATE TABLE sms_inbox (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    phone      TEXT NOT NULL,
    code       TEXT NOT NULL,
    purpose    TEXT NOT NULL,
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    used       INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE events (
    seq      INTEGER PRIMARY KEY AUTOINCREMENT,
    at       TEXT NOT NULL,
    kind     TEXT NOT NULL,
    app_id   TEXT,
    trade_no TEXT,
    out_trade_no TEXT,
    summary  TEXT NOT NULL,
    detail   TEXT NOT NULL
);
CREATE INDEX events_by_trade ON events (out_trade_no);
