//! Rows of the sandbox store and the queries that read and write them.

use crate::db::Cached as _;
use chrono::{DateTime, Utc};
use haitao_sandbox_api::Bilingual;
use rusqlite::{Connection, OptionalExtension, Row, params};
use serde::{Deserialize, Serialize};

use crate::db::StoreError;

pub fn ts(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// A moment read from or written to the sandbox store: RFC 3339 UTC text with milliseconds (see
/// [`ts`]), which sorts as it compares. Reading text that is not such a moment is an error naming
/// the text — never 1970 or "now".
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Stamp(pub DateTime<Utc>);

impl Stamp {
    /// The stored text, as [`ts`] writes it.
    pub fn text(self) -> String {
        ts(self.0)
    }
}

impl From<DateTime<Utc>> for Stamp {
    fn from(t: DateTime<Utc>) -> Stamp {
        Stamp(t)
    }
}

/// The error for a stored code (in column `col`) that is not one the sandbox knows.
pub fn unknown(col: usize, what: &str, text: &str) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(
        col,
        rusqlite::types::Type::Text,
        format!("{what} {text:?} is not one the sandbox knows").into(),
    )
}

/// A stored timestamp the sandbox cannot read.
#[derive(Debug, thiserror::Error)]
#[error("stored timestamp {0:?} is not an RFC 3339 moment")]
pub struct BadStamp(String);

impl rusqlite::types::FromSql for Stamp {
    fn column_result(value: rusqlite::types::ValueRef<'_>) -> rusqlite::types::FromSqlResult<Self> {
        let text = value.as_str()?;
        DateTime::parse_from_rfc3339(text)
            .map(|d| Stamp(d.with_timezone(&Utc)))
            .map_err(|_| rusqlite::types::FromSqlError::Other(Box::new(BadStamp(text.to_owned()))))
    }
}

impl rusqlite::types::ToSql for Stamp {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        Ok(rusqlite::types::ToSqlOutput::from(self.text()))
    }
}

/// `n` random decimal digits.
#[allow(
    clippy::disallowed_methods,
    reason = "randomness, not a time: the clock only stands in without entropy"
)]
pub fn digits(n: usize) -> String {
    let mut bytes = vec![0u8; n];
    if aws_lc_rs::rand::fill(&mut bytes).is_err() {
        // No system randomness: fall back to the clock (uniqueness is enforced by the store).
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        return format!("{nanos:0>n$}").chars().rev().take(n).collect();
    }
    bytes.iter().map(|b| char::from(b'0' + b % 10)).collect()
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct App {
    pub app_id: String,
    pub name: String,
    pub seller_id: String,
    pub public_key: String,
    #[serde(skip)]
    pub private_key: Option<String>,
    pub notify_base: Option<String>,
    pub created_at: DateTime<Utc>,
    /// Public-key certificate mode: the application certificate issued to the app (PEM).
    #[serde(skip)]
    pub app_cert: Option<String>,
    /// Content encryption: the app's AES key (base64).
    #[serde(skip)]
    pub aes_key: Option<String>,
}

fn app_row(r: &Row<'_>) -> rusqlite::Result<App> {
    Ok(App {
        app_id: r.get(0)?,
        name: r.get(1)?,
        seller_id: r.get(2)?,
        public_key: r.get(3)?,
        private_key: r.get(4)?,
        notify_base: r.get(5)?,
        created_at: r.get::<_, Stamp>(6)?.0,
        app_cert: r.get(7)?,
        aes_key: r.get(8)?,
    })
}

const APP_COLS: &str =
    "app_id, name, seller_id, public_key, private_key, notify_base, created_at, app_cert, aes_key";

pub fn app(conn: &Connection, app_id: &str) -> Result<Option<App>, StoreError> {
    Ok(conn
        .cached_row(&format!("SELECT {APP_COLS} FROM apps WHERE app_id = ?1"), [app_id], app_row)
        .optional()?)
}

pub fn app_by_name(conn: &Connection, name: &str) -> Result<Option<App>, StoreError> {
    Ok(conn
        .cached_row(&format!("SELECT {APP_COLS} FROM apps WHERE name = ?1"), [name], app_row)
        .optional()?)
}

pub fn apps(conn: &Connection) -> Result<Vec<App>, StoreError> {
    let mut st = conn.prepare(&format!("SELECT {APP_COLS} FROM apps ORDER BY created_at"))?;
    let rows = st.query_map([], app_row)?.collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

pub fn insert_app(conn: &Connection, a: &App) -> Result<(), StoreError> {
    conn.cached_exec(
        &format!("INSERT INTO apps ({APP_COLS}) VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9)"),
        params![
            a.app_id,
            a.name,
            a.seller_id,
            a.public_key,
            a.private_key,
            a.notify_base,
            Stamp(a.created_at),
            a.app_cert,
            a.aes_key
        ],
    )?;
    Ok(())
}

/// A test buyer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Buyer {
    pub id: String,
    pub login: String,
    pub login_password: String,
    pub pay_password: String,
    pub real_name: String,
    pub id_number: String,
    pub phone: String,
    pub description: Bilingual,
    pub failed_pay_pw: i64,
    pub locked_until: Option<DateTime<Utc>>,
}

const BUYER_COLS: &str = "id, login, login_password, pay_password, real_name, id_number, phone, description, description_en, failed_pay_pw, locked_until";

fn buyer_row(r: &Row<'_>) -> rusqlite::Result<Buyer> {
    Ok(Buyer {
        id: r.get(0)?,
        login: r.get(1)?,
        login_password: r.get(2)?,
        pay_password: r.get(3)?,
        real_name: r.get(4)?,
        id_number: r.get(5)?,
        phone: r.get(6)?,
        description: Bilingual { zh: r.get(7)?, en: r.get(8)? },
        failed_pay_pw: r.get(9)?,
        locked_until: r.get::<_, Option<Stamp>>(10)?.map(|s| s.0),
    })
}

pub fn buyer(conn: &Connection, id: &str) -> Result<Option<Buyer>, StoreError> {
    Ok(conn
        .cached_row(&format!("SELECT {BUYER_COLS} FROM buyers WHERE id = ?1"), [id], buyer_row)
        .optional()?)
}

pub fn buyer_by_login(conn: &Connection, login: &str) -> Result<Option<Buyer>, StoreError> {
    Ok(conn
        .cached_row(&format!("SELECT {BUYER_COLS} FROM buyers WHERE login = ?1"), [login], buyer_row)
        .optional()?)
}

pub fn buyers(conn: &Connection) -> Result<Vec<Buyer>, StoreError> {
    let mut st = conn.prepare(&format!("SELECT {BUYER_COLS} FROM buyers ORDER BY created_at, login"))?;
    let rows = st.query_map([], buyer_row)?.collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

pub fn insert_buyer(conn: &Connection, b: &Buyer, now: DateTime<Utc>) -> Result<(), StoreError> {
    conn.cached_exec(
        &format!(
            "INSERT INTO buyers ({BUYER_COLS}, created_at) VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12)"
        ),
        params![
            b.id,
            b.login,
            b.login_password,
            b.pay_password,
            b.real_name,
            b.id_number,
            b.phone,
            b.description.zh,
            b.description.en,
            b.failed_pay_pw,
            b.locked_until.map(Stamp),
            ts(now)
        ],
    )?;
    Ok(())
}

pub use haitao_sandbox_api::{Account, AccountKind, Trade};

/// The `fund_channel` Alipay reports for money taken from this kind of account.
pub fn fund_channel(kind: AccountKind) -> &'static str {
    match kind {
        AccountKind::Balance => "ALIPAYACCOUNT",
        AccountKind::MoneyFund => "MONEYFUND",
        AccountKind::Huabei => "PCREDIT",
        AccountKind::DebitCard => "DEBIT_CARD",
        AccountKind::CreditCard => "CREDIT_CARD",
        AccountKind::InternationalCard => "OVERSEAS_CREDIT_CARD",
        AccountKind::Merchant | AccountKind::Fees | AccountKind::Mint => "OTHER",
    }
}

/// An owner's accounts with their balances, summed from the ledger (through its indexes by
/// account: see migration 006).
const ACCOUNTS_OF: &str =
    "SELECT a.id, a.owner, a.kind, a.label, a.credit_limit, a.card_brand, a.card_last4, a.label_en,
        COALESCE((SELECT SUM(amount_fen) FROM ledger WHERE to_acct = a.id), 0)
      - COALESCE((SELECT SUM(amount_fen) FROM ledger WHERE from_acct = a.id), 0)
 FROM accounts a WHERE a.owner = ?1 ORDER BY a.created_at, a.id";

pub fn accounts_of(conn: &Connection, owner: &str) -> Result<Vec<Account>, StoreError> {
    let mut st = conn.prepare_cached(ACCOUNTS_OF)?;
    let rows = st
        .query_map([owner], |r| {
            let kind: String = r.get(2)?;
            Ok(Account {
                id: r.get(0)?,
                owner: r.get(1)?,
                kind: AccountKind::parse(&kind).ok_or_else(|| unknown(2, "account kind", &kind))?,
                label: Bilingual { zh: r.get(3)?, en: r.get(7)? },
                credit_limit: r.get(4)?,
                card_brand: r.get(5)?,
                card_last4: r.get(6)?,
                balance: r.get(8)?,
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

pub fn account(conn: &Connection, id: &str) -> Result<Option<Account>, StoreError> {
    let owner: Option<String> =
        conn.cached_row("SELECT owner FROM accounts WHERE id = ?1", [id], |r| r.get(0)).optional()?;
    match owner {
        Some(o) => Ok(accounts_of(conn, &o)?.into_iter().find(|a| a.id == id)),
        None => Ok(None),
    }
}

#[allow(clippy::too_many_arguments)]
pub fn insert_account(
    conn: &Connection,
    id: &str,
    owner: &str,
    kind: AccountKind,
    label: &Bilingual,
    credit_limit: i64,
    card: Option<(&str, &str)>,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    conn.cached_exec(
        "INSERT INTO accounts (id, owner, kind, label, label_en, credit_limit, card_brand, card_last4, created_at)
         VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9)",
        params![
            id,
            owner,
            kind.as_str(),
            label.zh,
            label.en,
            credit_limit,
            card.map(|c| c.0),
            card.map(|c| c.1),
            ts(now)
        ],
    )?;
    Ok(())
}

const TRADE_COLS: &str = "trade_no, app_id, out_trade_no, method, product_code, status, total_minor, currency, cny_fen, \
    subject, biz_digest, biz_content, notify_url, return_url, buyer_id, channel, fund_bills, surcharge_fen, fee_fen, \
    refunded_fen, created_at, expires_at, paid_at, closed_at";

fn trade_row(r: &Row<'_>) -> rusqlite::Result<Trade> {
    let status: String = r.get(5)?;
    Ok(Trade {
        trade_no: r.get(0)?,
        app_id: r.get(1)?,
        out_trade_no: r.get(2)?,
        method: r.get(3)?,
        product_code: r.get(4)?,
        status: status.parse().map_err(|_| unknown(5, "trade status", &status))?,
        total_minor: r.get(6)?,
        currency: r.get(7)?,
        cny_fen: r.get(8)?,
        subject: r.get(9)?,
        biz_digest: r.get(10)?,
        biz_content: r.get(11)?,
        notify_url: r.get(12)?,
        return_url: r.get(13)?,
        buyer_id: r.get(14)?,
        channel: r.get(15)?,
        fund_bills: r.get(16)?,
        surcharge_fen: r.get(17)?,
        fee_fen: r.get(18)?,
        refunded_fen: r.get(19)?,
        created_at: r.get::<_, Stamp>(20)?.0,
        expires_at: r.get::<_, Option<Stamp>>(21)?.map(|s| s.0),
        paid_at: r.get::<_, Option<Stamp>>(22)?.map(|s| s.0),
        closed_at: r.get::<_, Option<Stamp>>(23)?.map(|s| s.0),
    })
}

pub fn trade_by_out(
    conn: &Connection,
    app_id: &str,
    out_trade_no: &str,
) -> Result<Option<Trade>, StoreError> {
    Ok(conn
        .cached_row(
            &format!("SELECT {TRADE_COLS} FROM trades WHERE app_id = ?1 AND out_trade_no = ?2"),
            [app_id, out_trade_no],
            trade_row,
        )
        .optional()?)
}

pub fn trade_by_no(conn: &Connection, app_id: &str, trade_no: &str) -> Result<Option<Trade>, StoreError> {
    Ok(conn
        .cached_row(
            &format!("SELECT {TRADE_COLS} FROM trades WHERE app_id = ?1 AND trade_no = ?2"),
            [app_id, trade_no],
            trade_row,
        )
        .optional()?)
}

pub fn trades_due_to_expire(conn: &Connection, now: DateTime<Utc>) -> Result<Vec<Trade>, StoreError> {
    let mut st = conn.prepare(&format!(
        "SELECT {TRADE_COLS} FROM trades WHERE status = 'WAIT_BUYER_PAY' AND expires_at IS NOT NULL AND expires_at <= ?1"
    ))?;
    let rows = st.query_map([ts(now)], trade_row)?.collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

pub fn insert_trade(conn: &Connection, t: &Trade) -> Result<(), StoreError> {
    conn.cached_exec(
        &format!(
            "INSERT INTO trades ({TRADE_COLS}) VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13,?14,?15,?16,?17,?18,?19,?20,?21,?22,?23,?24)"
        ),
        params![
            t.trade_no,
            t.app_id,
            t.out_trade_no,
            t.method,
            t.product_code,
            t.status.as_str(),
            t.total_minor,
            t.currency,
            t.cny_fen,
            t.subject,
            t.biz_digest,
            t.biz_content,
            t.notify_url,
            t.return_url,
            t.buyer_id,
            t.channel,
            t.fund_bills,
            t.surcharge_fen,
            t.fee_fen,
            t.refunded_fen,
            Stamp(t.created_at),
            t.expires_at.map(Stamp),
            t.paid_at.map(Stamp),
            t.closed_at.map(Stamp)
        ],
    )?;
    Ok(())
}

/// A cashier session: a page.pay / wap.pay / precreate request waiting for the buyer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    pub token: String,
    pub app_id: String,
    pub out_trade_no: String,
    pub method: String,
    /// The signed request parameters, form-encoded.
    pub params: String,
    pub created_at: DateTime<Utc>,
    pub buyer_id: Option<String>,
    pub trade_no: Option<String>,
    /// The buyer's channel choice (JSON), kept between choosing and confirming.
    pub choice: Option<String>,
    pub state: String,
}

const SESSION_COLS: &str =
    "token, app_id, out_trade_no, method, params, created_at, buyer_id, trade_no, choice, state";

fn session_row(r: &Row<'_>) -> rusqlite::Result<Session> {
    Ok(Session {
        token: r.get(0)?,
        app_id: r.get(1)?,
        out_trade_no: r.get(2)?,
        method: r.get(3)?,
        params: r.get(4)?,
        created_at: r.get::<_, Stamp>(5)?.0,
        buyer_id: r.get(6)?,
        trade_no: r.get(7)?,
        choice: r.get(8)?,
        state: r.get(9)?,
    })
}

pub fn session(conn: &Connection, token: &str) -> Result<Option<Session>, StoreError> {
    Ok(conn
        .cached_row(
            &format!("SELECT {SESSION_COLS} FROM cashier_sessions WHERE token = ?1"),
            [token],
            session_row,
        )
        .optional()?)
}

/// The latest open session for a merchant order.
pub fn session_for(
    conn: &Connection,
    app_id: &str,
    out_trade_no: &str,
) -> Result<Option<Session>, StoreError> {
    Ok(conn
        .cached_row(
            &format!(
                "SELECT {SESSION_COLS} FROM cashier_sessions WHERE app_id = ?1 AND out_trade_no = ?2
                 ORDER BY created_at DESC LIMIT 1"
            ),
            [app_id, out_trade_no],
            session_row,
        )
        .optional()?)
}

pub fn insert_session(conn: &Connection, s: &Session) -> Result<(), StoreError> {
    conn.cached_exec(
        &format!("INSERT INTO cashier_sessions ({SESSION_COLS}) VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10)"),
        params![
            s.token,
            s.app_id,
            s.out_trade_no,
            s.method,
            s.params,
            Stamp(s.created_at),
            s.buyer_id,
            s.trade_no,
            s.choice,
            s.state
        ],
    )?;
    Ok(())
}

pub fn meta(conn: &Connection, key: &str) -> Result<Option<String>, StoreError> {
    Ok(conn.cached_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0)).optional()?)
}

pub fn set_meta(conn: &Connection, key: &str, value: &str) -> Result<(), StoreError> {
    conn.cached_exec(
        "INSERT INTO meta (key, value) VALUES (?1, ?2) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        [key, value],
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone as _;

    fn app_at(created_at: DateTime<Utc>) -> App {
        App {
            app_id: "2021000000000001".into(),
            name: "shop".into(),
            seller_id: "2088000000000001".into(),
            public_key: "key".into(),
            private_key: None,
            notify_base: None,
            created_at,
            app_cert: None,
            aes_key: None,
        }
    }

    #[test]
    fn stamps_round_trip_and_sort_as_they_compare() -> Result<(), StoreError> {
        let conn = crate::db::open(None)?;
        let early =
            Utc.with_ymd_and_hms(2026, 6, 9, 1, 30, 0).single().ok_or(StoreError::Task("time".into()))?;
        let late = early + chrono::Duration::milliseconds(1_500);
        insert_app(&conn, &app_at(late))?;
        assert_eq!(app(&conn, "2021000000000001")?.map(|a| a.created_at), Some(late));
        let text: String = conn.query_row("SELECT created_at FROM apps", [], |r| r.get(0))?;
        assert_eq!(text, "2026-06-09T01:30:01.500Z");
        assert!(Stamp(early).text() < Stamp(late).text());
        Ok(())
    }

    #[test]
    fn a_damaged_timestamp_is_reported_with_its_text_not_read_as_1970() -> Result<(), StoreError> {
        let conn = crate::db::open(None)?;
        insert_app(&conn, &app_at(Utc.timestamp_opt(1_780_000_000, 0).single().unwrap_or_default()))?;
        conn.execute("UPDATE apps SET created_at = 'last tuesday'", [])?;
        let err = app(&conn, "2021000000000001").expect_err("a damaged timestamp must not decode");
        assert!(err.to_string().contains("last tuesday"), "{err}");
        Ok(())
    }

    /// A balance is summed from the ledger's entries of that account only: a payment must not
    /// read the whole ledger (each payment sums the buyer's and the merchant's accounts, so
    /// scanning made every payment slower than the one before).
    #[test]
    fn balances_are_summed_through_the_ledger_indexes_not_the_whole_ledger() -> Result<(), StoreError> {
        let conn = crate::db::open(None)?;
        let plan: Vec<String> = conn
            .prepare(&format!("EXPLAIN QUERY PLAN {ACCOUNTS_OF}"))?
            .query_map(["owner"], |r| r.get(3))?
            .collect::<Result<_, _>>()?;
        assert!(!plan.iter().any(|step| step.starts_with("SCAN ledger")), "{plan:#?}");
        for index in ["ledger_to_account", "ledger_from_account"] {
            assert!(
                plan.iter().any(|step| step.contains(&format!("COVERING INDEX {index}"))),
                "{index}: {plan:#?}"
            );
        }
        Ok(())
    }
}
