-- A refund of money the shop must not keep (a duplicate payment, a payment for a closed order)
-- that the gateway refuses stays pending and is tried again after a pause that grows with each
-- refusal: `tries` counts the refusals, `next_try_at` is when it may be sent again.
ALTER TABLE refunds ADD COLUMN tries INTEGER NOT NULL DEFAULT 0 CHECK (tries >= 0);
ALTER TABLE refunds ADD COLUMN next_try_at TEXT;
CREATE INDEX refunds_by_attempt ON refunds (attempt_id, status);
