-- Every status-like column accepts only its vocabulary's codes (crates/shop-api/src/code.rs), so
-- a value the shop cannot read can never be written; the shop's tests check these lists against
-- the Rust enums. SQLite cannot add a CHECK to an existing table, so each table is rebuilt with
-- its rows, rowids and indexes (the shop runs migrations with foreign keys off and checks them
-- afterwards: src/db.rs). A row already holding an unknown value makes this migration fail and the
-- database is left as it was.

CREATE TABLE orders_new (
    id                 TEXT PRIMARY KEY,
    account_id         TEXT NOT NULL REFERENCES accounts (id),
    status             TEXT NOT NULL CHECK (status IN ('awaiting_payment', 'paid', 'customs_declared', 'held', 'cleared', 'shipped', 'delivered', 'closed', 'refunded')),
    idempotency_key    TEXT NOT NULL,
    request_hash       TEXT NOT NULL,
    orderer_name       TEXT NOT NULL,
    orderer_id_number  TEXT NOT NULL,
    quota_year         INTEGER NOT NULL,
    address_json       TEXT NOT NULL,
    goods_fen          INTEGER NOT NULL,
    shipping_fen       INTEGER NOT NULL,
    tax_fen            INTEGER NOT NULL,
    dutiable_fen       INTEGER NOT NULL,
    total_fen          INTEGER NOT NULL CHECK (total_fen > 0),
    full_rate          INTEGER NOT NULL DEFAULT 0,
    refunded_fen       INTEGER NOT NULL DEFAULT 0 CHECK (refunded_fen >= 0 AND refunded_fen <= total_fen),
    quota_restored_fen INTEGER NOT NULL DEFAULT 0 CHECK (quota_restored_fen >= 0 AND quota_restored_fen <= dutiable_fen),
    pay_deadline       TEXT NOT NULL,
    paid_at            TEXT,
    paid_attempt_id    TEXT,
    hold_reason        TEXT CHECK (hold_reason IS NULL OR hold_reason IN ('orderer_not_payer', 'inspection_failed')),
    identity_check     INTEGER,
    declaration_no     TEXT,
    declare_seq        INTEGER NOT NULL DEFAULT 0,
    order_declared     INTEGER NOT NULL DEFAULT 0,
    payment_declared   INTEGER NOT NULL DEFAULT 0,
    waybill_declared   INTEGER NOT NULL DEFAULT 0,
    waybill_no         TEXT,
    carrier            TEXT,
    created_at         TEXT NOT NULL,
    updated_at         TEXT NOT NULL,
    sync_seq           INTEGER NOT NULL,
    UNIQUE (account_id, idempotency_key)
);
INSERT INTO orders_new (rowid, id, account_id, status, idempotency_key, request_hash, orderer_name, orderer_id_number, quota_year, address_json, goods_fen, shipping_fen, tax_fen, dutiable_fen, total_fen, full_rate, refunded_fen, quota_restored_fen, pay_deadline, paid_at, paid_attempt_id, hold_reason, identity_check, declaration_no, declare_seq, order_declared, payment_declared, waybill_declared, waybill_no, carrier, created_at, updated_at, sync_seq)
    SELECT rowid, id, account_id, status, idempotency_key, request_hash, orderer_name, orderer_id_number, quota_year, address_json, goods_fen, shipping_fen, tax_fen, dutiable_fen, total_fen, full_rate, refunded_fen, quota_restored_fen, pay_deadline, paid_at, paid_attempt_id, hold_reason, identity_check, declaration_no, declare_seq, order_declared, payment_declared, waybill_declared, waybill_no, carrier, created_at, updated_at, sync_seq FROM orders;
DROP TABLE orders;
ALTER TABLE orders_new RENAME TO orders;
CREATE INDEX orders_by_account ON orders (account_id, created_at);
CREATE INDEX orders_by_sync ON orders (account_id, sync_seq);
CREATE INDEX orders_by_quota ON orders (orderer_id_number, quota_year);
CREATE INDEX orders_by_status ON orders (status, pay_deadline);

CREATE TABLE payment_attempts_new (
    id           TEXT PRIMARY KEY,
    order_id     TEXT NOT NULL REFERENCES orders (id),
    out_trade_no TEXT NOT NULL UNIQUE,
    method       TEXT NOT NULL CHECK (method IN ('balance', 'bank_card', 'huabei', 'huabei_3', 'huabei_6', 'huabei_12', 'international_card')),
    mode         TEXT NOT NULL CHECK (mode IN ('in_app', 'browser', 'qr')),
    amount_fen   INTEGER NOT NULL CHECK (amount_fen > 0),
    status       TEXT NOT NULL CHECK (status IN ('started', 'redirected', 'paid', 'failed', 'closed', 'unknown')),
    failure      TEXT CHECK (failure IS NULL OR failure IN ('insufficient_funds', 'declined', 'password_locked', 'cancelled', 'expired', 'rejected')),
    cashier_url  TEXT,
    qr_code      TEXT,
    return_url   TEXT NOT NULL,
    trade_no     TEXT,
    created_at   TEXT NOT NULL,
    updated_at   TEXT NOT NULL,
    expires_at   TEXT NOT NULL
);
INSERT INTO payment_attempts_new (rowid, id, order_id, out_trade_no, method, mode, amount_fen, status, failure, cashier_url, qr_code, return_url, trade_no, created_at, updated_at, expires_at)
    SELECT rowid, id, order_id, out_trade_no, method, mode, amount_fen, status, failure, cashier_url, qr_code, return_url, trade_no, created_at, updated_at, expires_at FROM payment_attempts;
DROP TABLE payment_attempts;
ALTER TABLE payment_attempts_new RENAME TO payment_attempts;
CREATE INDEX attempts_by_order ON payment_attempts (order_id, created_at);

CREATE TABLE refunds_new (
    id             TEXT PRIMARY KEY,
    order_id       TEXT NOT NULL REFERENCES orders (id),
    attempt_id     TEXT NOT NULL,
    out_request_no TEXT NOT NULL UNIQUE,
    amount_fen     INTEGER NOT NULL CHECK (amount_fen > 0),
    reason         TEXT NOT NULL,
    status         TEXT NOT NULL CHECK (status IN ('pending', 'succeeded', 'failed')),
    created_at     TEXT NOT NULL,
    updated_at     TEXT NOT NULL
);
INSERT INTO refunds_new (rowid, id, order_id, attempt_id, out_request_no, amount_fen, reason, status, created_at, updated_at)
    SELECT rowid, id, order_id, attempt_id, out_request_no, amount_fen, reason, status, created_at, updated_at FROM refunds;
DROP TABLE refunds;
ALTER TABLE refunds_new RENAME TO refunds;
CREATE INDEX refunds_by_order ON refunds (order_id);

CREATE TABLE tracking_events_new (
    order_id TEXT NOT NULL REFERENCES orders (id),
    seq      INTEGER NOT NULL,
    at       TEXT NOT NULL,
    stage    TEXT NOT NULL CHECK (stage IN ('paid', 'picked', 'customs_declared', 'customs_cleared', 'customs_inspection', 'customs_hold', 'handed_to_courier', 'out_for_delivery', 'delivered', 'cancelled')),
    desc_zh  TEXT NOT NULL,
    desc_en  TEXT NOT NULL,
    loc_zh   TEXT NOT NULL,
    loc_en   TEXT NOT NULL,
    PRIMARY KEY (order_id, seq)
);
INSERT INTO tracking_events_new (rowid, order_id, seq, at, stage, desc_zh, desc_en, loc_zh, loc_en)
    SELECT rowid, order_id, seq, at, stage, desc_zh, desc_en, loc_zh, loc_en FROM tracking_events;
DROP TABLE tracking_events;
ALTER TABLE tracking_events_new RENAME TO tracking_events;

CREATE TABLE tickets_new (
    id         TEXT PRIMARY KEY,
    account_id TEXT NOT NULL REFERENCES accounts (id),
    order_id   TEXT,
    topic      TEXT NOT NULL CHECK (topic IN ('payment_failed', 'insufficient_balance', 'where_is_my_parcel', 'refund', 'customs', 'other')),
    subject    TEXT NOT NULL,
    status     TEXT NOT NULL CHECK (status IN ('open', 'answered', 'closed')),
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
INSERT INTO tickets_new (rowid, id, account_id, order_id, topic, subject, status, created_at, updated_at)
    SELECT rowid, id, account_id, order_id, topic, subject, status, created_at, updated_at FROM tickets;
DROP TABLE tickets;
ALTER TABLE tickets_new RENAME TO tickets;
CREATE INDEX tickets_by_account ON tickets (account_id, updated_at);

CREATE TABLE ticket_messages_new (
    ticket_id TEXT NOT NULL REFERENCES tickets (id),
    seq       INTEGER NOT NULL,
    author    TEXT NOT NULL CHECK (author IN ('customer', 'agent', 'assistant')),
    body      TEXT NOT NULL,
    at        TEXT NOT NULL,
    PRIMARY KEY (ticket_id, seq)
);
INSERT INTO ticket_messages_new (rowid, ticket_id, seq, author, body, at)
    SELECT rowid, ticket_id, seq, author, body, at FROM ticket_messages;
DROP TABLE ticket_messages;
ALTER TABLE ticket_messages_new RENAME TO ticket_messages;
