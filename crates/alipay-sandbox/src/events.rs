//! The event log: every request, response, redirect and notification, with its signature check,
//! readable by testers and exportable as JSON.

use chrono::{DateTime, Utc};
use rusqlite::{Connection, params};

use crate::db::{Store, StoreError};
use crate::model::ts;

pub use haitao_sandbox_api::Event;

/// Where an event belongs.
#[derive(Debug, Clone, Copy, Default)]
pub struct Scope<'a> {
    pub app_id: Option<&'a str>,
    pub trade_no: Option<&'a str>,
    pub out_trade_no: Option<&'a str>,
}

pub fn record(
    conn: &Connection,
    at: DateTime<Utc>,
    kind: &str,
    scope: Scope<'_>,
    summary: impl Into<String>,
    detail: serde_json::Value,
) -> Result<(), StoreError> {
    let summary = summary.into();
    tracing::debug!(target: "sandbox::events", kind, out_trade_no = scope.out_trade_no, "{summary}");
    conn.prepare_cached(
        "INSERT INTO events (at, kind, app_id, trade_no, out_trade_no, summary, detail) VALUES (?1,?2,?3,?4,?5,?6,?7)",
    )?
    .execute(params![ts(at), kind, scope.app_id, scope.trade_no, scope.out_trade_no, summary, detail.to_string()])?;
    Ok(())
}

/// Records an event of the gateway's own traffic without making the caller wait for the write (see
/// [`Store::defer`]): it still lands before anything else uses the store, so the log keeps its order.
pub fn record_later(
    store: &Store,
    at: DateTime<Utc>,
    kind: &'static str,
    app_id: Option<String>,
    out_trade_no: Option<String>,
    summary: String,
    detail: serde_json::Value,
) {
    store.defer(move |c| {
        record(
            c,
            at,
            kind,
            Scope { app_id: app_id.as_deref(), trade_no: None, out_trade_no: out_trade_no.as_deref() },
            summary,
            detail,
        )
    });
}

/// Events after `since`, optionally for one merchant order, oldest first.
pub fn list(
    conn: &Connection,
    out_trade_no: Option<&str>,
    since: i64,
    limit: i64,
) -> Result<Vec<Event>, StoreError> {
    let mut st = conn.prepare(
        "SELECT seq, at, kind, app_id, trade_no, out_trade_no, summary, detail FROM events
         WHERE seq > ?1 AND (?2 IS NULL OR out_trade_no = ?2) ORDER BY seq LIMIT ?3",
    )?;
    let rows = st
        .query_map(params![since, out_trade_no, limit.clamp(1, 10_000)], |r| {
            let detail: String = r.get(7)?;
            Ok(Event {
                seq: r.get(0)?,
                at: r.get::<_, crate::model::Stamp>(1)?.0,
                kind: r.get(2)?,
                app_id: r.get(3)?,
                trade_no: r.get(4)?,
                out_trade_no: r.get(5)?,
                summary: r.get(6)?,
                detail: serde_json::from_str(&detail).map_err(|e| {
                    rusqlite::Error::FromSqlConversionFailure(7, rusqlite::types::Type::Text, Box::new(e))
                })?,
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}
