//! The shop's SQLite database: opening (WAL, busy timeout, foreign keys), migrations in one
//! transaction with a schema-version guard, and a handle that runs blocking work off the async
//! executor.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
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
    #[error("database task failed: {0}")]
    Task(String),
}

fn migrations() -> Migrations<'static> {
    Migrations::new(vec![
        M::up(include_str!("../migrations/001_init.sql")),
        M::up(include_str!("../migrations/002_address_limits.sql")),
    ])
}

/// Number of schema versions this build knows.
pub fn known_version() -> usize {
    2
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
    migrations().to_latest(&mut conn).map_err(|e| DbError::Migration(e.to_string()))?;
    Ok(conn)
}

/// An in-memory database (tests, benchmarks).
pub fn open_in_memory() -> Result<Connection, DbError> {
    let mut conn = Connection::open_in_memory()?;
    configure(&conn)?;
    migrations().to_latest(&mut conn).map_err(|e| DbError::Migration(e.to_string()))?;
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

/// A shared connection; blocking work runs on Tokio's blocking pool.
#[derive(Clone, Debug)]
pub struct Db {
    conn: Arc<Mutex<Connection>>,
}

impl Db {
    pub fn new(conn: Connection) -> Self {
        Db { conn: Arc::new(Mutex::new(conn)) }
    }

    /// Runs `f` with the connection on the blocking pool.
    pub async fn call<T, E, F>(&self, f: F) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<DbError> + Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, E> + Send + 'static,
    {
        let conn = self.conn.clone();
        tokio::task::spawn_blocking(move || {
            let mut guard = conn.lock();
            f(&mut guard)
        })
        .await
        .map_err(|e| E::from(DbError::Task(e.to_string())))?
    }

    /// Runs `f` synchronously (startup, tests).
    pub fn with<T>(&self, f: impl FnOnce(&mut Connection) -> T) -> T {
        f(&mut self.conn.lock())
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
        assert_eq!(v, 2);
        let kept: i64 = c.query_row("SELECT COUNT(*) FROM login_failures", [], |r| r.get(0)).unwrap();
        assert_eq!(kept, 1);
        let events: i64 = c.query_row("SELECT COUNT(*) FROM address_events", [], |r| r.get(0)).unwrap();
        assert_eq!(events, 0);
    }
}
