-- A refund of money the shop must not keep (a duplicate payment, a payment for a closed order)
-- that the gateway refuses stays pending and is tried again after a pause that grows with each
-- refusal: `tries` counts the refusals, `next_try_at` is when it may be sent again.
ALTER TABLE refunds ADD COLUMN tries INTEGER NOT NULL DEFAULT 0 CHECK (tries >= 0);
ALTER TABLE refunds ADD COLUMN next_try_at TEXT;
CREATE INDEX refunds_by_attempt ON refunds (attempt_id, status);

-- The watch over ended cashiers (jobs.rs, watch_ended_cashiers): `watched_at` is when the
-- gateway was last asked about an ended attempt, answered or not (so an unanswered look waits a
-- minute too); `updated_at` moves only when it answered. Attempts that ended before this version
-- were watched until expiry + 10 minutes on the clock, and that is how they stay.
ALTER TABLE payment_attempts ADD COLUMN watched_at TEXT;
UPDATE payment_attempts
   SET updated_at = strftime('%Y-%m-%dT%H:%M:%fZ', expires_at, '+600 seconds')
 WHERE status IN ('failed', 'closed')
   AND julianday(expires_at, '+600 seconds') < julianday('now')
   AND julianday(updated_at) < julianday(expires_at, '+600 seconds');
CREATE INDEX attempts_by_status ON payment_attempts (status, updated_at);
