//! The SQLite implementation of [`crate::store::Store`]: one connection (WAL, busy timeout), each
//! method one transaction.

use std::sync::LazyLock;

use chrono::{DateTime, Datelike, NaiveDate, Utc};
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
use parking_lot::Mutex;
use rusqlite::types::{FromSql, FromSqlError, FromSqlResult, ValueRef};
use rusqlite::{Connection, OptionalExtension, Row, params};

use crate::catalog::ProductRow;
use crate::error::ApiError;
use crate::identity::mask_id;
use crate::pricing::{FxRates, PricingConfig};
use crate::store::*;

mod accounts;
mod cart;
mod fulfilment;
mod leases;
mod orders;
mod payments;
mod products;
pub(crate) use products::refill_search;
// The PostgreSQL store seeds and indexes the catalog the same way.
#[cfg(feature = "postgres")]
pub(crate) use products::{SeedProduct, search_text, seed_file};
mod reconciliation;
mod refunds;
mod support;

pub fn ts(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// A timestamp column as [`ts`] writes it (RFC 3339, UTC). Text that is not one is an error, never
/// a default date.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp(pub DateTime<Utc>);

#[derive(Debug, thiserror::Error)]
#[error("not an RFC 3339 timestamp: {value:?}")]
struct BadTimestamp {
    value: String,
}

/// A calendar date column (`YYYY-MM-DD`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Day(pub NaiveDate);

#[derive(Debug, thiserror::Error)]
#[error("not a YYYY-MM-DD date: {value:?}")]
struct BadDay {
    value: String,
}

impl FromSql for Day {
    fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
        let text = value.as_str()?;
        NaiveDate::parse_from_str(text, "%Y-%m-%d")
            .map(Day)
            .map_err(|_| FromSqlError::Other(Box::new(BadDay { value: text.to_owned() })))
    }
}

impl FromSql for Stamp {
    fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
        let text = value.as_str()?;
        DateTime::parse_from_rfc3339(text)
            .map(|d| Stamp(d.with_timezone(&Utc)))
            .map_err(|_| FromSqlError::Other(Box::new(BadTimestamp { value: text.to_owned() })))
    }
}

/// A row whose column could not be decoded: which table, which row, which column, and why.
#[derive(Debug, thiserror::Error)]
#[error("{table} row {key:?}, column {column}: {source}")]
pub struct DamagedRow {
    pub table: &'static str,
    pub key: String,
    pub column: String,
    #[source]
    pub source: Box<dyn std::error::Error + Send + Sync + 'static>,
}

/// Runs a row decoder and names the row in any decoding error it returns, so a damaged value in
/// the database is reported with where it is (`orders row "o_1", column status: unknown order
/// status "shipped_twice"`).
fn in_row<T>(
    table: &'static str,
    key: &str,
    r: &Row<'_>,
    decode: impl FnOnce() -> rusqlite::Result<T>,
) -> rusqlite::Result<T> {
    decode().map_err(|e| {
        let damaged = |i: usize, source: Box<dyn std::error::Error + Send + Sync + 'static>| DamagedRow {
            table,
            key: key.to_owned(),
            column: r.as_ref().column_name(i).map_or_else(|_| i.to_string(), str::to_owned),
            source,
        };
        match e {
            rusqlite::Error::FromSqlConversionFailure(i, ty, source) => {
                rusqlite::Error::FromSqlConversionFailure(i, ty, Box::new(damaged(i, source)))
            }
            rusqlite::Error::InvalidColumnType(i, name, ty) => rusqlite::Error::FromSqlConversionFailure(
                i,
                ty,
                Box::new(damaged(i, format!("column {name} holds a value of type {ty}").into())),
            ),
            other => other,
        }
    })
}

/// One code as an SQL literal (`'paid'`), for statements whose status conditions are fixed.
fn lit<T: Code>(value: T) -> String {
    sql_list(&[value])
}

fn cny(fen: i64) -> Money {
    Money::from_minor(fen, Currency::Cny)
}

/// The shop's SQLite store.
#[derive(Debug)]
pub struct SqliteStore {
    conn: Mutex<Connection>,
}

impl SqliteStore {
    pub fn new(conn: Connection) -> Self {
        SqliteStore { conn: Mutex::new(conn) }
    }

    fn with<T>(&self, f: impl FnOnce(&mut Connection) -> Result<T, ApiError>) -> Result<T, ApiError> {
        f(&mut self.conn.lock())
    }
}

/// The statuses whose orders count against the annual quota: paid ones and refunded ones (whose
/// restored part is subtracted).
static USED_STATUSES: LazyLock<String> = LazyLock::new(|| {
    let mut used = OrderStatus::PAID.to_vec();
    used.push(OrderStatus::Refunded);
    sql_list(&used)
});

pub(super) fn quota_usage(c: &Connection, id_number: &str, year: i32) -> Result<(i64, i64), ApiError> {
    let used: i64 = c.query_row(
        &format!(
            "SELECT COALESCE(SUM(dutiable_fen - quota_restored_fen), 0) FROM orders
             WHERE orderer_id_number = ?1 AND quota_year = ?2 AND status IN ({})",
            *USED_STATUSES
        ),
        params![id_number, year],
        |r| r.get(0),
    )?;
    let reserved: i64 = c.query_row(
        &format!(
            "SELECT COALESCE(SUM(dutiable_fen), 0) FROM orders WHERE orderer_id_number = ?1 AND quota_year = ?2 AND status = {}",
            lit(OrderStatus::AwaitingPayment)
        ),
        params![id_number, year],
        |r| r.get(0),
    )?;
    Ok((used, reserved))
}

/// The calendar year (Asia/Shanghai) an instant falls in: quotas reset on 1 January, China time.
pub fn quota_year(at: DateTime<Utc>) -> i32 {
    at.with_timezone(&haitao_alipay::time::shanghai()).year()
}
