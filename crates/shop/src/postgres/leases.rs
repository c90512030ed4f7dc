//! Leases in PostgreSQL: how instances sharing the database take turns at work that must not run
//! twice at once. A plain table, not advisory locks, so it works on PostgreSQL-compatible
//! distributed databases too and a stopped instance's lease runs out on its own.

use super::*;

impl LeaseStore for PgStore {
    fn claim(&self, name: &str, holder: &str, now: DateTime<Utc>, until: DateTime<Utc>) -> StoreResult<bool> {
        self.with(|tx| {
            Ok(tx.execute(
                "INSERT INTO leases (name, holder, until) VALUES ($1, $2, $3)
                 ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, until = excluded.until
                 WHERE leases.until <= $4 OR leases.holder = excluded.holder",
                &[&name, &holder, &ts(until), &ts(now)],
            )? == 1)
        })
    }

    fn release(&self, name: &str, holder: &str) -> StoreResult<()> {
        self.with(|tx| {
            tx.execute("DELETE FROM leases WHERE name = $1 AND holder = $2", &[&name, &holder])?;
            Ok(())
        })
    }
}
