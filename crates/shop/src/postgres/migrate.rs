//! The PostgreSQL schema's versions (crates/shop/migrations/postgres), applied in order, each in
//! one transaction that first claims its version in `schema_migrations`: instances starting
//! together apply each migration once (the others wait on the claim, then find it applied).

use postgres::Client;

use super::{PgError, describe, is_unique_violation};

const MIGRATIONS: &[&str] = &[include_str!("../../migrations/postgres/001_init.sql")];

/// Number of schema versions this build knows.
pub fn known_version() -> usize {
    MIGRATIONS.len()
}

fn applied(client: &mut Client) -> Result<i64, postgres::Error> {
    client.query_one("SELECT COALESCE(MAX(version), 0)::BIGINT FROM schema_migrations", &[])?.try_get(0)
}

pub(super) fn migrate(client: &mut Client, target: &str) -> Result<(), PgError> {
    let failed = |version: usize, e: &postgres::Error| PgError::Migration { version, reason: describe(e) };
    // Two instances creating the table at once can collide in the catalog; the second finds it.
    for _ in 0..3 {
        match client.batch_execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations (
                 version    BIGINT PRIMARY KEY,
                 applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
             )",
        ) {
            Ok(()) => break,
            Err(e) if is_unique_violation(&e) => continue,
            Err(e) => return Err(failed(0, &e)),
        }
    }
    let known = i64::try_from(known_version()).unwrap_or(i64::MAX);
    loop {
        let found = applied(client).map_err(|e| failed(0, &e))?;
        if found > known {
            return Err(PgError::TooNew { target: target.to_owned(), found, known: known_version() });
        }
        if found == known {
            return Ok(());
        }
        let version = usize::try_from(found).unwrap_or(0) + 1;
        let sql = MIGRATIONS[version - 1];
        let result = (|| -> Result<(), postgres::Error> {
            let mut tx = client.transaction()?;
            tx.execute("INSERT INTO schema_migrations (version) VALUES ($1)", &[&(found + 1)])?;
            tx.batch_execute(sql)?;
            tx.commit()
        })();
        match result {
            Ok(()) => tracing::info!(version, database = target, "database schema migrated"),
            // Another instance applied it meanwhile: read the version again.
            Err(e) if is_unique_violation(&e) => continue,
            Err(e) => return Err(failed(version, &e)),
        }
    }
}
