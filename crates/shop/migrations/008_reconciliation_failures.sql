-- Days the job could not reconcile yet (the bill not out, a gateway fault, a bill that could not
-- be read): how often it tried, the last error and when, so the admin sees them and the job
-- waits a growing pause before that day again. A reconciliation of the day removes its row.
CREATE TABLE reconciliation_failures (
    day        TEXT PRIMARY KEY,
    tries      INTEGER NOT NULL CHECK (tries > 0),
    last_error TEXT NOT NULL,
    tried_at   TEXT NOT NULL
);
