//! Forced outcomes: chosen per trade (or for an app's next trade) through the tester API, or
//! triggered by magic amounts and magic card numbers.

use crate::db::Cached as _;
use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;

use crate::db::StoreError;
use crate::model::ts;

pub use haitao_sandbox_api::Outcome;

/// Magic `total_amount` values (CNY): `666.01` to `666.16` force the outcomes in [`Outcome::ALL`]
/// order, so any Alipay SDK can trigger them without the tester API.
pub fn magic_amount(total_fen: i64) -> Option<Outcome> {
    Outcome::from_magic_amount(total_fen)
}

/// What a magic international card number does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum CardBehaviour {
    Approve,
    Decline,
    InsufficientFunds,
    Expired,
    IncorrectCvc,
    ProcessingError,
    RequiresSms,
}

pub fn magic_card(number: &str) -> CardBehaviour {
    match number {
        "4000000000000002" => CardBehaviour::Decline,
        "4000000000009995" => CardBehaviour::InsufficientFunds,
        "4000000000000069" => CardBehaviour::Expired,
        "4000000000000127" => CardBehaviour::IncorrectCvc,
        "4000000000000119" => CardBehaviour::ProcessingError,
        "4000002500003155" => CardBehaviour::RequiresSms,
        _ => CardBehaviour::Approve,
    }
}

/// Forces `outcome` for one merchant order, or for the app's next new order when `out_trade_no` is
/// `None`.
pub fn force(
    conn: &Connection,
    app_id: Option<&str>,
    out_trade_no: Option<&str>,
    outcome: Outcome,
    now: DateTime<Utc>,
) -> Result<i64, StoreError> {
    conn.cached_exec(
        "INSERT INTO scenarios (app_id, out_trade_no, outcome, created_at) VALUES (?1, ?2, ?3, ?4)",
        params![app_id, out_trade_no, outcome.as_str(), ts(now)],
    )?;
    Ok(conn.last_insert_rowid())
}

/// Binds pending "next trade" scenarios of `app_id` to `out_trade_no` (called when a new merchant
/// order first reaches the gateway).
pub fn bind_next(conn: &Connection, app_id: &str, out_trade_no: &str) -> Result<(), StoreError> {
    let already: Option<i64> = conn
        .cached_row(
            "SELECT id FROM scenarios WHERE app_id = ?1 AND out_trade_no = ?2 LIMIT 1",
            [app_id, out_trade_no],
            |r| r.get(0),
        )
        .optional()?;
    if already.is_none() {
        conn.cached_exec(
            "UPDATE scenarios SET out_trade_no = ?2, app_id = ?1
             WHERE out_trade_no IS NULL AND (app_id = ?1 OR app_id IS NULL) AND used_at IS NULL",
            params![app_id, out_trade_no],
        )?;
    }
    Ok(())
}

/// Outcomes forced for a merchant order (tester API) plus the one its amount triggers.
pub fn for_trade(
    conn: &Connection,
    app_id: &str,
    out_trade_no: &str,
    total_fen: Option<i64>,
) -> Result<Vec<Outcome>, StoreError> {
    let mut st = conn.prepare(
        "SELECT outcome FROM scenarios WHERE out_trade_no = ?2 AND (app_id = ?1 OR app_id IS NULL) AND used_at IS NULL
         ORDER BY id",
    )?;
    let mut out: Vec<Outcome> = st
        .query_map([app_id, out_trade_no], |r| r.get::<_, String>(0))?
        .filter_map(|r| r.ok().and_then(|s| Outcome::parse(&s)))
        .collect();
    if let Some(o) = total_fen.and_then(magic_amount)
        && !out.contains(&o)
    {
        out.push(o);
    }
    Ok(out)
}

/// Whether `outcome` is an API fault (fires once on a server-to-server call, then is used up).
pub fn is_api_fault(outcome: Outcome) -> bool {
    matches!(
        outcome,
        Outcome::ResultUnknown | Outcome::GatewayError | Outcome::Slow | Outcome::DropConnection
    )
}

/// The first pending tester-forced API fault of a merchant order: its row and outcome.
fn next_api_fault(
    conn: &Connection,
    app_id: &str,
    out_trade_no: &str,
) -> Result<Option<(i64, String)>, StoreError> {
    Ok(conn
        .cached_row(
            "SELECT id, outcome FROM scenarios WHERE out_trade_no = ?2 AND (app_id = ?1 OR app_id IS NULL)
             AND used_at IS NULL AND outcome IN ('result_unknown', 'gateway_error', 'slow', 'drop_connection')
             ORDER BY id LIMIT 1",
            [app_id, out_trade_no],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?)
}

/// Whether a tester-forced API fault waits for a merchant order (read only: nothing is used up).
pub fn api_fault_pending(conn: &Connection, app_id: &str, out_trade_no: &str) -> Result<bool, StoreError> {
    Ok(next_api_fault(conn, app_id, out_trade_no)?.is_some())
}

/// Takes the first pending tester-forced API fault of a merchant order, marking it used.
pub fn take_api_fault(
    conn: &Connection,
    app_id: &str,
    out_trade_no: &str,
    now: DateTime<Utc>,
) -> Result<Option<Outcome>, StoreError> {
    match next_api_fault(conn, app_id, out_trade_no)? {
        Some((id, o)) => {
            conn.cached_exec("UPDATE scenarios SET used_at = ?1 WHERE id = ?2", params![ts(now), id])?;
            Ok(Outcome::parse(&o))
        }
        None => Ok(None),
    }
}

/// Removes every forced outcome of a merchant order.
pub fn clear(conn: &Connection, app_id: Option<&str>, out_trade_no: &str) -> Result<usize, StoreError> {
    Ok(conn.cached_exec(
        "DELETE FROM scenarios WHERE out_trade_no = ?2 AND (?1 IS NULL OR app_id = ?1)",
        params![app_id, out_trade_no],
    )?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn magic_amounts_map_in_order() {
        assert_eq!(magic_amount(66_601), Some(Outcome::ShortBalance));
        assert_eq!(magic_amount(66_615), Some(Outcome::NotifyDrop));
        assert_eq!(magic_amount(66_600), None);
        assert_eq!(magic_amount(66_616), Some(Outcome::NotifyWrongAmount));
        assert_eq!(magic_amount(66_617), None);
        assert_eq!(magic_amount(100), None);
        for o in Outcome::ALL {
            assert_eq!(Outcome::parse(o.as_str()), Some(o));
        }
    }
}
