//! The PostgreSQL implementation of [`crate::store::Store`], for a shop deployed as one or more
//! instances on one database server (`haitao-shop serve --database postgres://…`).
//!
//! Each method is one SERIALIZABLE transaction on a pooled connection, as each SQLite method is one
//! transaction on SQLite's single writer: the checks a method makes (stock, quota, what is left to
//! refund, whether a payment is still uncovered) hold when it commits, whichever instance runs it.
//! A transaction the database refuses as not serializable (SQLSTATE 40001) or as a deadlock
//! (40P01), or stopped by a unique key a concurrent one took, is run again from the start, with a
//! short pause ([`retryable`]).
//!
//! The driver is `postgres` (the blocking face of `tokio-postgres`) with an `r2d2` pool: the store
//! seam is blocking and runs on Tokio's blocking pool, so each call blocks its own thread on its
//! own connection (docs/shop.md says which others were considered). A connection's client runs
//! its own small runtime, so a `PgStore` must not be used from an async task's thread; it hands
//! its pool to a plain thread when dropped.

use std::time::Duration;

use chrono::{DateTime, NaiveDate, Utc};
use haitao_alipay::money::{Currency, Money};
use haitao_shop_api::account::{Address, AddressInput};
use haitao_shop_api::catalog::{
    CatalogChanges, CatalogFacets, CategoryInfo, Localized, ProductPage, ProductQuery,
};
use haitao_shop_api::code::{Code, sql_list};
use haitao_shop_api::error::ErrorCode;
use haitao_shop_api::orders::{
    AttemptStatus, Carrier, CustomsInfo, HoldReason, LinePricing, Order, OrderLine, OrderStatus, Orderer,
    PaymentAttempt, RefundRecord, RefundStatus, Totals, TrackingEvent, Waybill,
};
use haitao_shop_api::support::{Author, Ticket, TicketMessage, TicketStatus, TicketTopic};
use postgres::error::SqlState;
use std::collections::HashMap;

use postgres::types::{FromSql, ToSql};
use postgres::{IsolationLevel, NoTls, Row, Statement, Transaction};

use crate::catalog::ProductRow;
use crate::config::{WriteFaults, display_target};
use crate::error::ApiError;
use crate::identity::mask_id;
use crate::pricing::{FxRates, PricingConfig};
use crate::sqlite::DamagedRow;
use crate::store::*;

mod accounts;
mod cart;
mod fulfilment;
mod leases;
mod migrate;
mod orders;
mod payments;
mod products;
mod reconciliation;
mod refunds;
mod support;

pub use migrate::known_version;

/// How often a transaction the database refused as not serializable is run again. Contended
/// transactions (orders of one orderer's quota, stock of one product) are refused often when many
/// run at once; with the pauses of [`pause`] the last try comes about three seconds after the
/// first.
const MAX_TRIES: u32 = 50;

type Pool = r2d2::Pool<Manager>;

/// How many prepared statements a connection keeps (the store's statements are a few hundred
/// fixed texts; searches with many words make more, which are prepared each time past this).
const STATEMENTS_KEPT: usize = 512;

/// A pooled connection and the statements prepared on it, by their SQL: each is parsed and
/// planned once per connection instead of once per call, which halves the round trips.
pub(crate) struct Conn {
    client: postgres::Client,
    statements: HashMap<String, Statement>,
}

/// Makes and checks the pool's connections.
#[derive(Debug)]
struct Manager {
    config: postgres::Config,
}

impl r2d2::ManageConnection for Manager {
    type Connection = Conn;
    type Error = postgres::Error;

    fn connect(&self) -> Result<Conn, postgres::Error> {
        Ok(Conn { client: self.config.connect(NoTls)?, statements: HashMap::new() })
    }

    fn is_valid(&self, conn: &mut Conn) -> Result<(), postgres::Error> {
        conn.client.simple_query("").map(|_| ())
    }

    fn has_broken(&self, conn: &mut Conn) -> bool {
        conn.client.is_closed()
    }
}

/// A transaction of the store: PostgreSQL's, with its connection's statements.
pub(crate) struct Tx<'a> {
    tx: Transaction<'a>,
    statements: &'a mut HashMap<String, Statement>,
}

type Params<'p> = &'p [&'p (dyn ToSql + Sync)];

impl Tx<'_> {
    fn statement(&mut self, sql: &str) -> Result<Statement, postgres::Error> {
        if let Some(s) = self.statements.get(sql) {
            return Ok(s.clone());
        }
        let s = self.tx.prepare(sql)?;
        if self.statements.len() < STATEMENTS_KEPT {
            self.statements.insert(sql.to_owned(), s.clone());
        }
        Ok(s)
    }

    pub(crate) fn query(&mut self, sql: &str, params: Params<'_>) -> Result<Vec<Row>, postgres::Error> {
        let s = self.statement(sql)?;
        self.tx.query(&s, params)
    }

    pub(crate) fn query_one(&mut self, sql: &str, params: Params<'_>) -> Result<Row, postgres::Error> {
        let s = self.statement(sql)?;
        self.tx.query_one(&s, params)
    }

    pub(crate) fn query_opt(
        &mut self,
        sql: &str,
        params: Params<'_>,
    ) -> Result<Option<Row>, postgres::Error> {
        let s = self.statement(sql)?;
        self.tx.query_opt(&s, params)
    }

    pub(crate) fn execute(&mut self, sql: &str, params: Params<'_>) -> Result<u64, postgres::Error> {
        let s = self.statement(sql)?;
        self.tx.execute(&s, params)
    }
}

/// Why a step inside a transaction stopped: the database, or the shop's own rules.
#[derive(Debug)]
pub(crate) enum Fail {
    Db(postgres::Error),
    Api(ApiError),
}

impl From<postgres::Error> for Fail {
    fn from(e: postgres::Error) -> Self {
        Fail::Db(e)
    }
}

impl From<ApiError> for Fail {
    fn from(e: ApiError) -> Self {
        Fail::Api(e)
    }
}

pub(crate) type R<T> = Result<T, Fail>;

/// Why the database could not be reached or prepared.
#[derive(Debug, thiserror::Error)]
pub enum PgError {
    #[error("the database URL is not valid: {0}")]
    Url(String),
    #[error("cannot connect to the database {target}: {reason}")]
    Connect { target: String, reason: String },
    #[error(
        "the database {target} was written by a newer Haitao (schema {found}, this build knows {known}); it was left untouched"
    )]
    TooNew { target: String, found: i64, known: usize },
    #[error("migration {version} failed: {reason}")]
    Migration { version: usize, reason: String },
}

/// A database error in words, with what PostgreSQL said (its message, code and constraint; not its
/// detail line, which quotes row values such as a phone number into the log).
pub(crate) fn describe(e: &postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => {
            let mut s = format!("{} ({})", db.message(), db.code().code());
            if let Some(c) = db.constraint() {
                s.push_str(&format!(", constraint {c}"));
            }
            s
        }
        None => e.to_string(),
    }
}

/// Whether a transaction that failed with `e` on its `tries`th run should run again: refused as
/// not serializable or in a deadlock (up to [`MAX_TRIES`]), or stopped by a unique key another
/// transaction took meanwhile, which PostgreSQL reports as such when this one read the rows by
/// another column (two sweeps recording the refund of one payment): run again, it reads the row
/// the other wrote. A unique key taken before it began fails the same way again, and is reported.
fn retryable(e: &postgres::Error, tries: u32) -> bool {
    match e.code() {
        Some(c) if *c == SqlState::T_R_SERIALIZATION_FAILURE || *c == SqlState::T_R_DEADLOCK_DETECTED => {
            tries < MAX_TRIES
        }
        Some(c) if *c == SqlState::UNIQUE_VIOLATION => tries < 2,
        _ => false,
    }
}

/// Whether `e` is a unique-key violation.
pub(crate) fn is_unique_violation(e: &postgres::Error) -> bool {
    e.code() == Some(&SqlState::UNIQUE_VIOLATION)
}

/// A timestamp as the store keeps it: to the millisecond, as the SQLite store does, so both give
/// back the same instants.
pub(crate) fn ts(t: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(t.timestamp_millis()).unwrap_or(t)
}

pub(crate) fn cny(fen: i64) -> Money {
    Money::from_minor(fen, Currency::Cny)
}

/// One code as an SQL literal (`'paid'`), for statements whose status conditions are fixed.
pub(crate) fn lit<T: Code>(value: T) -> String {
    sql_list(&[value])
}

/// A row being decoded: any value that cannot be read names its table, row and column.
pub(crate) struct At<'r> {
    row: &'r Row,
    table: &'static str,
    key: String,
}

impl<'r> At<'r> {
    pub(crate) fn new(row: &'r Row, table: &'static str, key: impl Into<String>) -> Self {
        At { row, table, key: key.into() }
    }

    /// A row keyed by its text column `i`.
    pub(crate) fn keyed(row: &'r Row, table: &'static str, i: usize) -> R<Self> {
        let key: String = row.try_get(i).map_err(|e| damaged(row, table, "?", i, Box::new(e)))?;
        Ok(At { row, table, key })
    }

    pub(crate) fn key(&self) -> &str {
        &self.key
    }

    pub(crate) fn get<'a, T: FromSql<'a>>(&'a self, i: usize) -> R<T> {
        self.row.try_get(i).map_err(|e| damaged(self.row, self.table, &self.key, i, Box::new(e)))
    }

    pub(crate) fn code<T: Code>(&self, i: usize) -> R<T> {
        let text: String = self.get(i)?;
        T::from_code(&text).map_err(|e| damaged(self.row, self.table, &self.key, i, Box::new(e)))
    }

    pub(crate) fn opt_code<T: Code>(&self, i: usize) -> R<Option<T>> {
        let text: Option<String> = self.get(i)?;
        text.map(|t| T::from_code(&t).map_err(|e| damaged(self.row, self.table, &self.key, i, Box::new(e))))
            .transpose()
    }

    /// The error of a value in column `i` that is not one the shop knows.
    pub(crate) fn damaged(&self, i: usize, source: impl std::error::Error + Send + Sync + 'static) -> Fail {
        damaged(self.row, self.table, &self.key, i, Box::new(source))
    }

    /// A count or amount kept as BIGINT that must fit `T` (u32 counters).
    pub(crate) fn int<T: TryFrom<i64>>(&self, i: usize) -> R<T>
    where
        T::Error: std::error::Error + Send + Sync + 'static,
    {
        let v: i64 = self.get(i)?;
        T::try_from(v).map_err(|e| damaged(self.row, self.table, &self.key, i, Box::new(e)))
    }
}

fn damaged(
    row: &Row,
    table: &'static str,
    key: &str,
    i: usize,
    source: Box<dyn std::error::Error + Send + Sync + 'static>,
) -> Fail {
    let column = row.columns().get(i).map_or_else(|| i.to_string(), |c| c.name().to_owned());
    Fail::Api(ApiError::internal(DamagedRow { table, key: key.to_owned(), column, source }))
}

/// The shop's PostgreSQL store.
pub struct PgStore {
    pool: Option<Pool>,
    /// Held around the writes that touch the order books (see [`PgStore::with_books`]).
    books: parking_lot::Mutex<()>,
    target: String,
    write_faults: Option<WriteFaults>,
}

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgStore").field("target", &self.target).finish_non_exhaustive()
    }
}

impl Drop for PgStore {
    fn drop(&mut self) {
        // A connection's client stops its own runtime when dropped, which Tokio refuses on an
        // async task's thread: the pool is dropped on a thread of its own.
        if let Some(pool) = self.pool.take() {
            let _ = std::thread::Builder::new().name("haitao-pg-close".into()).spawn(move || drop(pool));
        }
    }
}

/// Creates the empty database `name` on the server `admin_url` points at (as a user allowed to),
/// and returns the URL of it: for tests, the simulation and load runs, each on a database of its
/// own. `name` must be a plain identifier (lower-case letters, digits, `_`).
pub fn create_database(admin_url: &str, name: &str) -> Result<String, PgError> {
    if name.is_empty() || !name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_') {
        return Err(PgError::Url(format!("not a plain database name: {name:?}")));
    }
    let target = display_target(admin_url);
    let mut client = postgres::Client::connect(admin_url, NoTls)
        .map_err(|e| PgError::Connect { target: target.clone(), reason: describe(&e) })?;
    client
        .batch_execute(&format!("CREATE DATABASE {name}"))
        .map_err(|e| PgError::Connect { target: target.clone(), reason: describe(&e) })?;
    let mut url = url::Url::parse(admin_url).map_err(|e| PgError::Url(e.to_string()))?;
    url.set_path(&format!("/{name}"));
    Ok(url.to_string())
}

impl PgStore {
    /// Connects to the database at `url` (`postgres://user:password@host:port/database`), with
    /// at most `max_connections` connections, and brings its schema up to date. Blocking.
    pub fn connect(url: &str, max_connections: u32) -> Result<Self, PgError> {
        let target = display_target(url);
        let config: postgres::Config =
            url.parse().map_err(|e: postgres::Error| PgError::Url(e.to_string()))?;
        // One connection first: a server that is not there, or a URL it refuses, is told at once
        // and in PostgreSQL's words; it then migrates the schema.
        let mut first = config
            .connect(NoTls)
            .map_err(|e| PgError::Connect { target: target.clone(), reason: describe(&e) })?;
        migrate::migrate(&mut first, &target)?;
        drop(first);
        let pool = r2d2::Pool::builder()
            .max_size(max_connections.max(1))
            .min_idle(Some(1))
            .test_on_check_out(false)
            .connection_timeout(Duration::from_secs(10))
            .build(Manager { config })
            .map_err(|e| PgError::Connect { target: target.clone(), reason: e.to_string() })?;
        Ok(PgStore { pool: Some(pool), books: parking_lot::Mutex::new(()), target, write_faults: None })
    }

    /// Consults `faults` before every commit that wrote something (the simulation's failing
    /// disk, as the SQLite store's commit hook does).
    pub fn with_write_faults(mut self, faults: Option<WriteFaults>) -> Self {
        self.write_faults = faults;
        self
    }

    /// [`PgStore::with`] for the writes of the order books (placing an order, recording and applying
    /// a payment, closing an order), one at a time in this instance. They read and write the
    /// same few index pages (an account's orders, an orderer's quota, the catalog's versions,
    /// the product rows), which PostgreSQL's serializable isolation tracks by page: run together
    /// they refuse each other over and over. Queued here, only other instances' run at the same
    /// moment; their correctness still comes from the isolation, not from this lock.
    #[track_caller]
    pub(crate) fn with_books<T>(&self, f: impl FnMut(&mut Tx<'_>) -> R<T>) -> StoreResult<T> {
        let _one = self.books.lock();
        self.with(f)
    }

    /// Runs `f` in one SERIALIZABLE transaction, again from the start when the database refuses
    /// it as not serializable; commits when it returns `Ok`, rolls back otherwise.
    #[track_caller]
    pub(crate) fn with<T>(&self, mut f: impl FnMut(&mut Tx<'_>) -> R<T>) -> StoreResult<T> {
        let caller = std::panic::Location::caller();
        let pool = self.pool.as_ref().ok_or_else(|| ApiError::internal("the database pool is closed"))?;
        let mut conn = pool
            .get()
            .map_err(|e| ApiError::internal(format!("no connection to the database {}: {e}", self.target)))?;
        let mut tries = 0;
        loop {
            tries += 1;
            let result = (|| -> R<T> {
                let Conn { client, statements } = &mut *conn;
                let tx = client.build_transaction().isolation_level(IsolationLevel::Serializable).start()?;
                let mut tx = Tx { tx, statements };
                let value = f(&mut tx)?;
                let Tx { mut tx, .. } = tx;
                if let Some(WriteFaults(refuse)) = &self.write_faults {
                    let wrote: Option<i64> = tx.query_one("SELECT txid_current_if_assigned()", &[])?.get(0);
                    if wrote.is_some() && refuse() {
                        tx.rollback()?;
                        return Err(Fail::Api(ApiError::internal(
                            "the write was refused (injected write fault)",
                        )));
                    }
                }
                tx.commit()?;
                Ok(value)
            })();
            match result {
                Ok(v) => return Ok(v),
                Err(Fail::Db(e)) if retryable(&e, tries) => {
                    tracing::debug!(tries, at = %caller, error = %describe(&e), "transaction run again");
                    std::thread::sleep(pause(tries));
                }
                Err(Fail::Db(e)) => return Err(ApiError::internal(format!("database: {}", describe(&e)))),
                Err(Fail::Api(e)) => return Err(e),
            }
        }
    }
}

/// The pause before running a refused transaction again: doubling from 1 ms up to 64 ms, each
/// drawn at random between half and all of that, so transactions refused together do not meet
/// again. (The randomness is the standard library's per-process hash keys: no clock, no crate.)
fn pause(tries: u32) -> Duration {
    use std::hash::{BuildHasher, Hasher};
    let ceiling = 1_u64 << tries.min(6);
    let random = std::collections::hash_map::RandomState::new().build_hasher().finish();
    Duration::from_micros(ceiling * 500 + random % (ceiling * 500 + 1))
}

/// (used, reserved) in fen of an orderer's annual quota, read in `tx`.
pub(crate) fn quota_usage(tx: &mut Tx<'_>, id_number: &str, year: i32) -> R<(i64, i64)> {
    let mut used_statuses = OrderStatus::PAID.to_vec();
    used_statuses.push(OrderStatus::Refunded);
    let used: i64 = tx
        .query_one(
            &format!(
                "SELECT COALESCE(SUM(dutiable_fen - quota_restored_fen), 0)::BIGINT FROM orders
                 WHERE orderer_id_number = $1 AND quota_year = $2 AND status IN ({})",
                sql_list(&used_statuses)
            ),
            &[&id_number, &year],
        )?
        .try_get(0)?;
    let reserved: i64 = tx
        .query_one(
            &format!(
                "SELECT COALESCE(SUM(dutiable_fen), 0)::BIGINT FROM orders WHERE orderer_id_number = $1 AND quota_year = $2 AND status = {}",
                lit(OrderStatus::AwaitingPayment)
            ),
            &[&id_number, &year],
        )?
        .try_get(0)?;
    Ok((used, reserved))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_database_password_is_never_shown() {
        let url = "postgres://haitao:s3cret-Pa55@db.internal:5432/haitao";
        let shown = display_target(url);
        assert_eq!(shown, "postgres://haitao:***@db.internal:5432/haitao");
        let settings = crate::config::PostgresSettings::new(url);
        let debug = format!("{settings:?} {settings:#?}");
        assert!(!debug.contains("s3cret") && debug.contains("db.internal"), "{debug}");
        let param =
            display_target("postgres://haitao@db.internal/haitao?sslmode=disable&password=s3cret-Pa55");
        assert!(
            !param.contains("s3cret") && param.contains("password=***") && param.contains("sslmode=disable"),
            "{param}"
        );
        // Not a URL at all (key=value form): nothing of it is shown.
        assert_eq!(display_target("host=db password=s3cret"), "(the configured database)");
        let err = PgStore::connect("postgres://haitao:s3cret-Pa55@127.0.0.1:1/haitao", 1).unwrap_err();
        assert!(!err.to_string().contains("s3cret"), "{err}");
    }

    #[test]
    fn refused_transactions_pause_longer_each_time_within_bounds() {
        for tries in 1..=MAX_TRIES {
            let ceiling = Duration::from_micros((1_u64 << tries.min(6)) * 1000);
            let p = pause(tries);
            assert!(p >= ceiling / 2 && p <= ceiling, "{tries}: {p:?}");
        }
    }
}
