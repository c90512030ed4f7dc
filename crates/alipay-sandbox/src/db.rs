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

const KNOWN_VERSION: i64 = 6;

pub(crate) fn migrations() -> Migrations<'static> {
    Migrations::new(vec![
        M::up(include_str!("../migrations/001_init.sql")),
        M::up(include_str!("../migrations/002_persona_description_en.sql")),
        M::up(include_str!("../migrations/003_forget_typed_cards.sql")),
        M::up(include_str!("../migrations/004_account_label_en.sql")),
        M::up(include_str!("../migrations/005_certificate_mode_and_aes.sql")),
        M::up(include_str!("../migrations/006_ledger_by_account.sql")),
    ])
}

fn prepare(conn: &Connection) -> rusqlite::Result<()> {
    conn.busy_timeout(Duration::from_secs(5))?;
    conn.set_prepared_statement_cache_capacity(128);
    let _: String = conn.pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0))?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    conn.pragma_update(None, "foreign_keys", "ON")
}

/// Statements through the connection's prepared-statement cache: the gateway runs the same few
/// dozen statements thousands of times a second, and parsing them each time cost more than running
/// them.
pub trait Cached {
    fn cached_row<T, P: rusqlite::Params, F: FnOnce(&rusqlite::Row<'_>) -> rusqlite::Result<T>>(
        &self,
        sql: &str,
        params: P,
        f: F,
    ) -> rusqlite::Result<T>;
    fn cached_exec<P: rusqlite::Params>(&self, sql: &str, params: P) -> rusqlite::Result<usize>;
}

impl Cached for Connection {
    fn cached_row<T, P: rusqlite::Params, F: FnOnce(&rusqlite::Row<'_>) -> rusqlite::Result<T>>(
        &self,
        sql: &str,
        params: P,
        f: F,
    ) -> rusqlite::Result<T> {
        self.prepare_cached(sql)?.query_row(params, f)
    }

    fn cached_exec<P: rusqlite::Params>(&self, sql: &str, params: P) -> rusqlite::Result<usize> {
        self.prepare_cached(sql)?.execute(params)
    }
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

/// A write that may land a little later, batched with others (trace events).
type Deferred = Box<dyn FnOnce(&Connection) -> Result<(), StoreError> + Send>;

/// The shared connection, and the writes deferred to its next use.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

struct Inner {
    /// Read-only connections to the same file (none for an in-memory store): WAL lets them read
    /// while the main connection writes, and each other. Declared first so they close first: the
    /// writer, closing last, then checkpoints the WAL into the database file.
    readers: Vec<Mutex<Connection>>,
    /// Which reader a read that found every reader busy waits for next.
    next_reader: std::sync::atomic::AtomicUsize,
    conn: Mutex<Connection>,
    deferred: Mutex<Vec<Deferred>>,
    /// A flush of the deferred writes is already scheduled.
    flush_scheduled: std::sync::atomic::AtomicBool,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("deferred", &self.inner.deferred.lock().len()).finish_non_exhaustive()
    }
}

impl Inner {
    /// Applies the deferred writes, oldest first, in one transaction, before anything else uses the
    /// connection: whoever reads sees them, in order, ahead of what it writes itself.
    fn flush(&self, conn: &mut Connection) {
        let pending = std::mem::take(&mut *self.deferred.lock());
        if pending.is_empty() {
            return;
        }
        let n = pending.len();
        let result = conn.transaction().map_err(StoreError::from).and_then(|tx| {
            for write in pending {
                write(&tx)?;
            }
            tx.commit().map_err(StoreError::from)
        });
        if let Err(e) = result {
            tracing::warn!(error = %e, writes = n, "deferred trace writes were lost");
        }
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        let Inner { conn, deferred, .. } = self;
        let pending = std::mem::take(deferred.get_mut());
        if !pending.is_empty() {
            let conn = conn.get_mut();
            for write in pending {
                if let Err(e) = write(conn) {
                    tracing::warn!(error = %e, "a deferred trace write was lost on shutdown");
                }
            }
        }
    }
}

impl Store {
    pub fn new(conn: Connection) -> Self {
        let readers = match conn.path().filter(|p| !p.is_empty()) {
            Some(p) => (0..READERS).map_while(|_| open_reader(p)).map(Mutex::new).collect(),
            None => Vec::new(),
        };
        Store {
            inner: Arc::new(Inner {
                readers,
                next_reader: std::sync::atomic::AtomicUsize::new(0),
                conn: Mutex::new(conn),
                deferred: Mutex::new(Vec::new()),
                flush_scheduled: std::sync::atomic::AtomicBool::new(false),
            }),
        }
    }

    /// A short read of committed rows (an app by id, a trade): on a free read-only connection
    /// right here — tens of microseconds, cheaper than a trip to the blocking pool — otherwise on
    /// the blocking pool once a reader is free. Without readers (an in-memory store) like
    /// [`Store::run`]. It does not see deferred writes, so it is only for rows those never touch
    /// (they are trace events), and it cannot write: a read-only connection refuses.
    pub async fn read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        if self.inner.readers.is_empty() {
            return self.run(move |c| f(c)).await;
        }
        if let Some(conn) = self.inner.readers.iter().find_map(|r| r.try_lock()) {
            return f(&conn);
        }
        let inner = self.inner.clone();
        match tokio::task::spawn_blocking(move || {
            let n = inner.next_reader.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let reader = &inner.readers[n % inner.readers.len()];
            f(&reader.lock())
        })
        .await
        {
            Ok(r) => r,
            Err(e) => Err(StoreError::Task(e.to_string())),
        }
    }

    /// Runs `f` on the blocking pool with the connection.
    pub async fn run<T: Send + 'static, E: From<StoreError> + Send + 'static>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<T, E> + Send + 'static,
    ) -> Result<T, E> {
        let inner = self.inner.clone();
        match tokio::task::spawn_blocking(move || {
            let mut conn = inner.conn.lock();
            inner.flush(&mut conn);
            f(&mut conn)
        })
        .await
        {
            Ok(r) => r,
            Err(e) => Err(E::from(StoreError::Task(e.to_string()))),
        }
    }

    /// Runs `f` on the current thread.
    pub fn sync<T>(&self, f: impl FnOnce(&mut Connection) -> T) -> T {
        let mut conn = self.inner.conn.lock();
        self.inner.flush(&mut conn);
        f(&mut conn)
    }

    /// Queues a trace write: it lands before the next use of the connection, or at most
    /// [`FLUSH_DELAY`] later in a batch of its own, so a gateway answer does not wait for its own
    /// trace. Every reader of the connection sees it; a process killed in between loses it (trace
    /// only, never money).
    pub fn defer(&self, write: impl FnOnce(&Connection) -> Result<(), StoreError> + Send + 'static) {
        self.inner.deferred.lock().push(Box::new(write));
        // One scheduled flush at a time: under load the next trip to the store lands the batch long
        // before the timer, and waking a blocking thread per answer cost more than the writes.
        if let Ok(rt) = tokio::runtime::Handle::try_current()
            && !self.inner.flush_scheduled.swap(true, std::sync::atomic::Ordering::AcqRel)
        {
            let inner = self.inner.clone();
            rt.spawn(async move {
                tokio::time::sleep(FLUSH_DELAY).await;
                // Cleared before the flush takes the queue: whatever is deferred after it takes
                // the queue schedules the next one.
                inner.flush_scheduled.store(false, std::sync::atomic::Ordering::Release);
                drop(tokio::task::spawn_blocking(move || inner.flush(&mut inner.conn.lock())));
            });
        }
    }
}

/// Read-only connections beside the writer: one for each of the gateway's usual two worker threads,
/// and one for a read that finds both busy.
const READERS: usize = 3;

/// A read-only connection to the store at `path`, or `None` (said in the log) if it cannot be
/// opened: reads then share the writer's connection or the readers that did open.
fn open_reader(path: &str) -> Option<Connection> {
    let flags = rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let r = Connection::open_with_flags(path, flags)
        .and_then(|r| r.busy_timeout(Duration::from_millis(100)).map(|()| r))
        .inspect_err(|e| tracing::warn!(error = %e, "no read-only connection; reads share the writer's"))
        .ok()?;
    r.set_prepared_statement_cache_capacity(32);
    Some(r)
}

/// How long a deferred trace write may wait for a trip to the store before it is written alone.
pub const FLUSH_DELAY: Duration = Duration::from_millis(50);
