//! Double-entry ledger: every movement of money is one entry from one account to another, so the sum
//! of all balances (including the mint that created the opening balances) is always zero.

use crate::db::Cached as _;
use chrono::{DateTime, Utc};
use rusqlite::{Connection, params};

use crate::db::StoreError;
use crate::model::{Account, AccountKind, account, ts};

/// The account opening balances come from.
pub const MINT: &str = "sandbox:mint";
/// Where surcharges and installment fees go.
pub const FEES: &str = "sandbox:fees";

pub fn merchant_account(app_id: &str) -> String {
    format!("merchant:{app_id}")
}

#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    #[error("account {0} does not exist")]
    NoAccount(String),
    #[error("account {account} has {available} fen available, {needed} needed")]
    Insufficient { account: String, available: i64, needed: i64 },
    #[error("amount must be positive")]
    NotPositive,
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<rusqlite::Error> for LedgerError {
    fn from(e: rusqlite::Error) -> Self {
        LedgerError::Store(StoreError::Sqlite(e))
    }
}

/// Moves `amount` fen. The source must be able to afford it unless it is the mint.
pub fn post(
    conn: &Connection,
    from: &str,
    to: &str,
    amount: i64,
    kind: &str,
    trade_no: Option<&str>,
    at: DateTime<Utc>,
) -> Result<(), LedgerError> {
    if amount <= 0 {
        return Err(LedgerError::NotPositive);
    }
    let src: Account = account(conn, from)?.ok_or_else(|| LedgerError::NoAccount(from.into()))?;
    if account(conn, to)?.is_none() {
        return Err(LedgerError::NoAccount(to.into()));
    }
    if src.kind != AccountKind::Mint && src.available() < amount {
        return Err(LedgerError::Insufficient {
            account: from.into(),
            available: src.available(),
            needed: amount,
        });
    }
    conn.cached_exec(
        "INSERT INTO ledger (at, trade_no, kind, from_acct, to_acct, amount_fen) VALUES (?1,?2,?3,?4,?5,?6)",
        params![ts(at), trade_no, kind, from, to, amount],
    )?;
    Ok(())
}

pub use haitao_sandbox_api::LedgerCheck as Check;

pub fn check(conn: &Connection) -> Result<Check, StoreError> {
    let minted: i64 = conn.cached_row(
        "SELECT COALESCE(SUM(amount_fen), 0) FROM ledger WHERE from_acct = ?1",
        [MINT],
        |r| r.get(0),
    )?;
    let entries: i64 = conn.cached_row("SELECT COUNT(*) FROM ledger", [], |r| r.get(0))?;
    let mut st = conn.prepare("SELECT DISTINCT owner FROM accounts")?;
    let owners: Vec<String> = st.query_map([], |r| r.get(0))?.collect::<Result<_, _>>()?;
    let mut held = 0i64;
    let mut overdrawn = Vec::new();
    for o in owners {
        for a in crate::model::accounts_of(conn, &o)? {
            if a.kind == AccountKind::Mint {
                continue;
            }
            held += a.balance;
            if a.available() < 0 {
                overdrawn.push(a.id);
            }
        }
    }
    Ok(Check { minted, held, conserved: held == minted, overdrawn, entries })
}

/// Net money moved for a trade into the merchant's account (payments minus refunds).
pub fn merchant_net_for_trade(conn: &Connection, app_id: &str, trade_no: &str) -> Result<i64, StoreError> {
    let m = merchant_account(app_id);
    let inflow: i64 = conn.cached_row(
        "SELECT COALESCE(SUM(amount_fen), 0) FROM ledger WHERE trade_no = ?1 AND to_acct = ?2",
        params![trade_no, m],
        |r| r.get(0),
    )?;
    let outflow: i64 = conn.cached_row(
        "SELECT COALESCE(SUM(amount_fen), 0) FROM ledger WHERE trade_no = ?1 AND from_acct = ?2",
        params![trade_no, m],
        |r| r.get(0),
    )?;
    Ok(inflow - outflow)
}
