-- Leases: work that one shop instance at a time may do (a pass of the background jobs, starting a
-- payment for one order), held by an instance until a time or until it lets go. A lease whose
-- time passed may be taken by another instance (its holder stopped).
CREATE TABLE leases (
    name   TEXT PRIMARY KEY,
    holder TEXT NOT NULL,
    until  TEXT NOT NULL
);
