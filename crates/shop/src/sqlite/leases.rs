//! Leases in SQLite (one instance per file, so they are only ever contended within it).

use super::*;

impl LeaseStore for SqliteStore {
    fn claim(&self, name: &str, holder: &str, now: DateTime<Utc>, until: DateTime<Utc>) -> StoreResult<bool> {
        self.with(|c| {
            Ok(c.execute(
                "INSERT INTO leases (name, holder, until) VALUES (?1, ?2, ?3)
                 ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, until = excluded.until
                 WHERE leases.until <= ?4 OR leases.holder = excluded.holder",
                params![name, holder, ts(until), ts(now)],
            )? == 1)
        })
    }

    fn release(&self, name: &str, holder: &str) -> StoreResult<()> {
        self.with(|c| {
            c.execute("DELETE FROM leases WHERE name = ?1 AND holder = ?2", [name, holder])?;
            Ok(())
        })
    }
}
