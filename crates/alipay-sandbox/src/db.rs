//! The sandbox's SQLite store: open, migrate (one transaction, schema guard), and run work off the
//! async executor.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use rusqlite::Connection;
use rusqlite_migration::{M, Migrations};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{path} is not a sandbox database or is damaged ({source}); it was left untouched")]
    Corrupt { path: String, source: rusqlite::Error },
    #[error(
        "{path} has schema version {found}, newer than this sandbox knows ({known}); it was left untouched"
    )]
    TooNew { path: String, found: i64, known: i64 },
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("migration: {0}")]
    Migration(String),
    #[error("background task: {0}")]
    Task(String),
}

const KNOWN_VERSION: i64 = 1;

fn migrations() -> Migrations<'static> {
    Migrations::new(vec![M::up(include_str!("../migrations/001_init.sql"))])
}

fn prepare(conn: &Connection) -> rusqlite::Result<()> {
    conn.busy_timeout(Duration::from_secs(5))?;
    let _: String = conn.pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0))?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    conn.pragma_update(None, "foreign_keys", "ON")
}

/// Opens and migrates the store; `None` opens an in-memory store.
pub fn open(path: Option<&Path>) -> Result<Connection, StoreError> {
    let shown = path.map(|p| p.display().to_string()).unwrap_or_else(|| ":memory:".into());
    let mut conn = match path {
        Some(p) => Connection::open(p)?,
        None => Connection::open_in_memory()?,
    };
    let version = prepare(&conn)
        .and_then(|()| conn.pragma_query_value(None, "user_version", |r| r.get::<_, i64>(0)))
        .map_err(|source| match source.sqlite_error_code() {
            Some(rusqlite::ErrorCode::NotADatabase | rusqlite::ErrorCode::DatabaseCorrupt) => {
                StoreError::Corrupt { path: shown.clone(), source }
            }
            _ => StoreError::Sqlite(source),
        })?;
    if version > KNOWN_VERSION {
        return Err(StoreError::TooNew { path: shown, found: version, known: KNOWN_VERSION });
    }
    migrations().to_latest(&mut conn).map_err(|e| StoreError::Migration(e.to_string()))?;
    Ok(conn)
}

/// The shared connection.
#[derive(Clone, Debug)]
pub struct Store {
    conn: Arc<Mutex<Connection>>,
}

impl Store {
    pub fn new(conn: Connection) -> Self {
        Store { conn: Arc::new(Mutex::new(conn)) }
    }

    /// Runs `f` on the blocking pool with the connection.
    pub async fn run<T: Send + 'static, E: From<StoreError> + Send + 'static>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<T, E> + Send + 'static,
    ) -> Result<T, E> {
        let conn = self.conn.clone();
        match tokio::task::spawn_blocking(move || f(&mut conn.lock())).await {
            Ok(r) => r,
            Err(e) => Err(E::from(StoreError::Task(e.to_string()))),
        }
    }

    /// Runs `f` on the current thread.
    pub fn sync<T>(&self, f: impl FnOnce(&mut Connection) -> T) -> T {
        f(&mut self.conn.lock())
    }
}
