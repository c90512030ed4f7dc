-- Haitao shop schema, version 1. Money columns are integer minor units (fen for *_fen).
-- Times are RFC 3339 UTC text.

CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

CREATE TABLE products (
    id             TEXT PRIMARY KEY,
    seq            INTEGER NOT NULL,
    category       TEXT NOT NULL,
    brand          TEXT NOT NULL,
    brand_zh       TEXT NOT NULL,
    origin         TEXT NOT NULL,
    currency       TEXT NOT NULL,
    price_minor    INTEGER NOT NULL CHECK (price_minor > 0),
    price_cny_fen  INTEGER NOT NULL CHECK (price_cny_fen > 0),
    fulfilment     TEXT NOT NULL CHECK (fulfilment IN ('bonded', 'direct_mail')),
    tax_category   TEXT NOT NULL,
    weight_grams   INTEGER NOT NULL CHECK (weight_grams >= 0),
    stock          INTEGER NOT NULL CHECK (stock >= 0),
    reserved       INTEGER NOT NULL DEFAULT 0 CHECK (reserved >= 0 AND reserved <= stock),
    name_zh        TEXT NOT NULL,
    name_en        TEXT NOT NULL,
    description_zh TEXT NOT NULL,
    description_en TEXT NOT NULL,
    image          TEXT NOT NULL,
    version        INTEGER NOT NULL
);
CREATE INDEX products_by_version ON products (version);
CREATE INDEX products_by_category ON products (category, price_cny_fen);
CREATE INDEX products_by_price ON products (price_cny_fen);

-- Search terms: words and CJK character unigrams + bigrams, space separated (see catalog.rs).
CREATE VIRTUAL TABLE product_search USING fts5 (product_id UNINDEXED, terms, tokenize = 'unicode61');

CREATE TABLE accounts (
    id            TEXT PRIMARY KEY,
    phone         TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    real_name     TEXT,
    id_number     TEXT,
    birth_date    TEXT,
    verified_at   TEXT,
    created_at    TEXT NOT NULL
);

-- A session family: one sign-in and every token rotated from it.
CREATE TABLE sessions (
    family_id   TEXT PRIMARY KEY,
    account_id  TEXT NOT NULL REFERENCES accounts (id),
    created_at  TEXT NOT NULL,
    revoked_at  TEXT,
    revoke_why  TEXT
);
CREATE INDEX sessions_by_account ON sessions (account_id);

-- Only SHA-256 hashes of tokens are stored.
CREATE TABLE access_tokens (
    token_hash TEXT PRIMARY KEY,
    family_id  TEXT NOT NULL REFERENCES sessions (family_id),
    expires_at TEXT NOT NULL
);
CREATE TABLE refresh_tokens (
    token_hash TEXT PRIMARY KEY,
    family_id  TEXT NOT NULL REFERENCES sessions (family_id),
    expires_at TEXT NOT NULL,
    used_at    TEXT
);

CREATE TABLE login_failures (
    phone TEXT NOT NULL,
    at    TEXT NOT NULL
);
CREATE INDEX login_failures_by_phone ON login_failures (phone, at);

CREATE TABLE addresses (
    id          TEXT PRIMARY KEY,
    account_id  TEXT NOT NULL REFERENCES accounts (id),
    recipient   TEXT NOT NULL,
    phone       TEXT NOT NULL,
    province    TEXT NOT NULL,
    city        TEXT NOT NULL,
    district    TEXT NOT NULL,
    street      TEXT NOT NULL,
    postal_code TEXT,
    is_default  INTEGER NOT NULL DEFAULT 0,
    deleted     INTEGER NOT NULL DEFAULT 0,
    created_at  TEXT NOT NULL
);
CREATE INDEX addresses_by_account ON addresses (account_id);

CREATE TABLE cart_items (
    account_id TEXT NOT NULL REFERENCES accounts (id),
    product_id TEXT NOT NULL REFERENCES products (id),
    quantity   INTEGER NOT NULL CHECK (quantity > 0),
    added_at   TEXT NOT NULL,
    PRIMARY KEY (account_id, product_id)
);

CREATE TABLE orders (
    id                 TEXT PRIMARY KEY,
    account_id         TEXT NOT NULL REFERENCES accounts (id),
    status             TEXT NOT NULL,
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
    hold_reason        TEXT,
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
CREATE INDEX orders_by_account ON orders (account_id, created_at);
CREATE INDEX orders_by_sync ON orders (account_id, sync_seq);
CREATE INDEX orders_by_quota ON orders (orderer_id_number, quota_year);
CREATE INDEX orders_by_status ON orders (status, pay_deadline);

CREATE TABLE order_lines (
    order_id           TEXT NOT NULL REFERENCES orders (id),
    line_no            INTEGER NOT NULL,
    product_id         TEXT NOT NULL,
    name_zh            TEXT NOT NULL,
    name_en            TEXT NOT NULL,
    image              TEXT NOT NULL,
    currency           TEXT NOT NULL,
    unit_price_minor   INTEGER NOT NULL,
    unit_price_cny_fen INTEGER NOT NULL,
    quantity           INTEGER NOT NULL CHECK (quantity > 0),
    goods_fen          INTEGER NOT NULL,
    shipping_fen       INTEGER NOT NULL,
    tax_fen            INTEGER NOT NULL,
    tax_rate_ppm       INTEGER NOT NULL,
    total_fen          INTEGER NOT NULL,
    PRIMARY KEY (order_id, line_no)
);

CREATE TABLE payment_attempts (
    id           TEXT PRIMARY KEY,
    order_id     TEXT NOT NULL REFERENCES orders (id),
    out_trade_no TEXT NOT NULL UNIQUE,
    method       TEXT NOT NULL,
    mode         TEXT NOT NULL,
    amount_fen   INTEGER NOT NULL CHECK (amount_fen > 0),
    status       TEXT NOT NULL,
    failure      TEXT,
    cashier_url  TEXT,
    qr_code      TEXT,
    return_url   TEXT NOT NULL,
    trade_no     TEXT,
    created_at   TEXT NOT NULL,
    updated_at   TEXT NOT NULL,
    expires_at   TEXT NOT NULL
);
CREATE INDEX attempts_by_order ON payment_attempts (order_id, created_at);

-- Every verified notification, once (notify_id is stable across Alipay's retries).
CREATE TABLE notifications (
    notify_id    TEXT PRIMARY KEY,
    out_trade_no TEXT NOT NULL,
    trade_status TEXT NOT NULL,
    received_at  TEXT NOT NULL,
    params       TEXT NOT NULL
);

CREATE TABLE refunds (
    id             TEXT PRIMARY KEY,
    order_id       TEXT NOT NULL REFERENCES orders (id),
    attempt_id     TEXT NOT NULL,
    out_request_no TEXT NOT NULL UNIQUE,
    amount_fen     INTEGER NOT NULL CHECK (amount_fen > 0),
    reason         TEXT NOT NULL,
    status         TEXT NOT NULL,
    created_at     TEXT NOT NULL,
    updated_at     TEXT NOT NULL
);
CREATE INDEX refunds_by_order ON refunds (order_id);

CREATE TABLE tracking_events (
    order_id TEXT NOT NULL REFERENCES orders (id),
    seq      INTEGER NOT NULL,
    at       TEXT NOT NULL,
    stage    TEXT NOT NULL,
    desc_zh  TEXT NOT NULL,
    desc_en  TEXT NOT NULL,
    loc_zh   TEXT NOT NULL,
    loc_en   TEXT NOT NULL,
    PRIMARY KEY (order_id, seq)
);

CREATE TABLE tickets (
    id         TEXT PRIMARY KEY,
    account_id TEXT NOT NULL REFERENCES accounts (id),
    order_id   TEXT,
    topic      TEXT NOT NULL,
    subject    TEXT NOT NULL,
    status     TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX tickets_by_account ON tickets (account_id, updated_at);

CREATE TABLE ticket_messages (
    ticket_id TEXT NOT NULL REFERENCES tickets (id),
    seq       INTEGER NOT NULL,
    author    TEXT NOT NULL,
    body      TEXT NOT NULL,
    at        TEXT NOT NULL,
    PRIMARY KEY (ticket_id, seq)
);
