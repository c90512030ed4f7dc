//! The shop's SQLite database: opening (WAL, busy timeout, foreign keys) and migrations, each in
//! one transaction, with a schema-version guard.

use std::path::Path;
use std::time::Duration;

use rusqlite::Connection;
use rusqlite_migration::{M, Migrations};

/// Why the database could not be opened or used.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error(
        "the database file {path} is not a Haitao database or is damaged ({source}); it was left untouched"
    )]
    Corrupt { path: String, source: rusqlite::Error },
    #[error(
        "the database {path} was written by a newer Haitao (schema {found}, this build knows {known}); it was left untouched"
    )]
    TooNew { path: String, found: i64, known: usize },
    #[error("cannot open {path}: {source}")]
    Open { path: String, source: rusqlite::Error },
    #[error("migration failed: {0}")]
    Migration(String),
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
}

pub(crate) fn migrations() -> Migrations<'static> {
    Migrations::new(vec![
        M::up(include_str!("../migrations/001_init.sql")),
        M::up(include_str!("../migrations/002_address_limits.sql")),
        M::up(include_str!("../migrations/003_status_checks.sql")).foreign_key_check(),
        M::up(include_str!("../migrations/004_refund_retries.sql")),
        M::up(include_str!("../migrations/005_carrier_code.sql")),
        M::up_with_hook(
            include_str!("../migrations/006_search_inside_words.sql"),
            |tx: &rusqlite::Transaction<'_>| {
                crate::sqlite::refill_search(tx).map_err(rusqlite_migration::HookError::from)
            },
        ),
        M::up(include_str!("../migrations/007_reconciliation.sql")),
        M::up(include_str!("../migrations/008_reconciliation_failures.sql")),
        M::up(include_str!("../migrations/009_leases.sql")),
    ])
}

/// Number of schema versions this build knows.
pub fn known_version() -> usize {
    9
}

/// Runs the migrations with foreign keys off, as SQLite's way of rebuilding a table needs; each
/// migration that rebuilds one checks every foreign key before it commits.
fn migrate(conn: &mut Connection) -> Result<(), DbError> {
    conn.pragma_update(None, "foreign_keys", "OFF")?;
    let migrated = migrations().to_latest(conn).map_err(|e| DbError::Migration(e.to_string()));
    conn.pragma_update(None, "foreign_keys", "ON")?;
    migrated
}

/// Opens (creating if needed) and migrates the database at `path`.
pub fn open(path: &Path) -> Result<Connection, DbError> {
    let shown = path.display().to_string();
    let mut conn = Connection::open(path).map_err(|source| DbError::Open { path: shown.clone(), source })?;
    configure(&conn).map_err(|source| classify(source, &shown))?;
    let found: i64 = conn
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .map_err(|source| classify(source, &shown))?;
    if found > i64::try_from(known_version()).unwrap_or(i64::MAX) {
        return Err(DbError::TooNew { path: shown, found, known: known_version() });
    }
    migrate(&mut conn)?;
    Ok(conn)
}

/// An in-memory database (tests, benchmarks).
pub fn open_in_memory() -> Result<Connection, DbError> {
    let mut conn = Connection::open_in_memory()?;
    configure(&conn)?;
    migrate(&mut conn)?;
    Ok(conn)
}

fn configure(conn: &Connection) -> Result<(), rusqlite::Error> {
    conn.busy_timeout(Duration::from_secs(5))?;
    // Reading the journal mode forces SQLite to read the header: a damaged file fails here.
    let _mode: String = conn.pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0))?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    Ok(())
}

fn classify(e: rusqlite::Error, path: &str) -> DbError {
    match e.sqlite_error_code() {
        Some(rusqlite::ErrorCode::NotADatabase) | Some(rusqlite::ErrorCode::DatabaseCorrupt) => {
            DbError::Corrupt { path: path.to_owned(), source: e }
        }
        _ => DbError::Open { path: path.to_owned(), source: e },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_garbage_and_newer_schemas_without_touching_them() {
        let dir = tempfile::tempdir().unwrap();
        let garbage = dir.path().join("garbage.db");
        std::fs::write(&garbage, b"this is not sqlite at all, just some bytes in a file......").unwrap();
        let before = std::fs::read(&garbage).unwrap();
        assert!(matches!(open(&garbage), Err(DbError::Corrupt { .. })));
        assert_eq!(std::fs::read(&garbage).unwrap(), before, "never wiped");

        let newer = dir.path().join("newer.db");
        {
            let c = Connection::open(&newer).unwrap();
            c.pragma_update(None, "user_version", 99).unwrap();
        }
        assert!(matches!(open(&newer), Err(DbError::TooNew { found: 99, .. })));

        let fine = dir.path().join("fine.db");
        drop(open(&fine).unwrap());
        let c = open(&fine).unwrap();
        let v: i64 = c.pragma_query_value(None, "user_version", |r| r.get(0)).unwrap();
        assert_eq!(v, i64::try_from(known_version()).unwrap());
    }

    /// A database made by a build that knew only the first schema opens upgraded, its rows kept.
    #[test]
    fn a_first_schema_database_is_upgraded_in_place() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("shop.db");
        {
            let mut c = Connection::open(&path).unwrap();
            Migrations::new(vec![M::up(include_str!("../migrations/001_init.sql"))])
                .to_latest(&mut c)
                .unwrap();
            c.execute(
                "INSERT INTO login_failures (phone, at) VALUES ('13800000000', '2026-11-27T00:00:00.000Z')",
                [],
            )
            .unwrap();
            let v: i64 = c.pragma_query_value(None, "user_version", |r| r.get(0)).unwrap();
            assert_eq!(v, 1);
        }
        let c = open(&path).unwrap();
        let v: i64 = c.pragma_query_value(None, "user_version", |r| r.get(0)).unwrap();
        assert_eq!(v, i64::try_from(known_version()).unwrap());
        let kept: i64 = c.query_row("SELECT COUNT(*) FROM login_failures", [], |r| r.get(0)).unwrap();
        assert_eq!(kept, 1);
        let events: i64 = c.query_row("SELECT COUNT(*) FROM address_events", [], |r| r.get(0)).unwrap();
        assert_eq!(events, 0);
    }
}
