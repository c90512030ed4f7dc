-- Sign-in failures and registrations per client address, for the per-address limits
-- (src/limits.rs). Rows older than a day are removed by the background jobs.
CREATE TABLE address_events (
    kind    TEXT NOT NULL,
    address TEXT NOT NULL,
    at      TEXT NOT NULL
);
CREATE INDEX address_events_by_key ON address_events (kind, address, at);
CREATE INDEX address_events_by_time ON address_events (at);
