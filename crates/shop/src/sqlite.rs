//! The SQLite implementation of [`crate::store::Store`]: one connection (WAL, busy timeout), each
//! method one transaction.

use chrono::{DateTime, Datelike, NaiveDate, Utc};
use haitao_alipay::money::{Currency, Money};
use haitao_shop_api::account::{Address, AddressInput};
use haitao_shop_api::catalog::{CatalogChanges, CategoryInfo, Localized, ProductPage, ProductQuery};
use haitao_shop_api::error::ErrorCode;
use haitao_shop_api::orders::{
    AttemptStatus, CustomsInfo, HoldReason, LinePricing, Order, OrderLine, OrderStatus, Orderer, PayMode,
    PaymentMethod, RefundRecord, RefundStatus, Totals, TrackingEvent, TrackingStage, Waybill,
};
use haitao_shop_api::support::{Author, Ticket, TicketMessage, TicketStatus, TicketTopic};
use parking_lot::Mutex;
use rusqlite::{Connection, OptionalExtension, Row, params};

use crate::catalog::{self, ProductRow};
use crate::error::ApiError;
use crate::identity::mask_id;
use crate::pricing::{FxRates, PricingConfig};
use crate::store::*;

pub fn ts(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

pub fn parse_ts(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).map(|d| d.with_timezone(&Utc)).unwrap_or_default()
}

fn cny(fen: i64) -> Money {
    Money::from_minor(fen, Currency::Cny)
}

fn json_enum<T: serde::de::DeserializeOwned>(s: &str) -> Option<T> {
    serde_json::from_value(serde_json::Value::String(s.to_owned())).ok()
}

fn enum_str<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_value(v).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default()
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

// ---------------------------------------------------------------------------------------------
// Catalog

impl CatalogStore for SqliteStore {
    fn seed_catalog(&self, fx: &FxRates) -> StoreResult<usize> {
        self.with(|c| catalog::seed_if_empty(c, fx))
    }

    fn reprice(&self, fx: &FxRates) -> StoreResult<usize> {
        self.with(|c| catalog::reprice(c, fx))
    }

    fn product(&self, id: &str) -> StoreResult<Option<ProductRow>> {
        self.with(|c| catalog::get(c, id))
    }

    fn search(&self, q: &ProductQuery) -> StoreResult<ProductPage> {
        self.with(|c| catalog::search(c, q))
    }

    fn categories(&self) -> StoreResult<Vec<CategoryInfo>> {
        self.with(|c| catalog::categories(c))
    }

    fn catalog_changes(
        &self,
        since: i64,
        limit: u32,
        cfg: &PricingConfig,
        fx: &FxRates,
    ) -> StoreResult<CatalogChanges> {
        self.with(|c| catalog::changes(c, since, limit, cfg, fx))
    }

    fn meta(&self, key: &str) -> StoreResult<Option<String>> {
        self.with(|c| {
            Ok(c.query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0)).optional()?)
        })
    }

    fn set_meta(&self, key: &str, value: &str) -> StoreResult<()> {
        self.with(|c| {
            c.execute(
                "INSERT INTO meta (key, value) VALUES (?1, ?2) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                [key, value],
            )?;
            Ok(())
        })
    }
}

// ---------------------------------------------------------------------------------------------
// Accounts

const ACCOUNT_COLS: &str =
    "id, phone, password_hash, real_name, id_number, birth_date, verified_at, created_at";

fn account_row(r: &Row<'_>) -> rusqlite::Result<AccountRow> {
    let birth: Option<String> = r.get(5)?;
    let verified: Option<String> = r.get(6)?;
    let created: String = r.get(7)?;
    Ok(AccountRow {
        id: r.get(0)?,
        phone: r.get(1)?,
        password_hash: r.get(2)?,
        real_name: r.get(3)?,
        id_number: r.get(4)?,
        birth_date: birth.and_then(|b| NaiveDate::parse_from_str(&b, "%Y-%m-%d").ok()),
        verified_at: verified.map(|v| parse_ts(&v)),
        created_at: parse_ts(&created),
    })
}

fn address_row(r: &Row<'_>) -> rusqlite::Result<Address> {
    Ok(Address {
        id: r.get(0)?,
        fields: AddressInput {
            recipient: r.get(1)?,
            phone: r.get(2)?,
            province: r.get(3)?,
            city: r.get(4)?,
            district: r.get(5)?,
            street: r.get(6)?,
            postal_code: r.get(7)?,
            is_default: r.get::<_, i64>(8)? == 1,
        },
    })
}

const ADDRESS_COLS: &str = "id, recipient, phone, province, city, district, street, postal_code, is_default";

fn insert_tokens(c: &Connection, family: &str, t: &TokenHashes) -> rusqlite::Result<()> {
    c.execute(
        "INSERT INTO access_tokens (token_hash, family_id, expires_at) VALUES (?1, ?2, ?3)",
        params![t.access_hash, family, ts(t.access_expires)],
    )?;
    c.execute(
        "INSERT INTO refresh_tokens (token_hash, family_id, expires_at) VALUES (?1, ?2, ?3)",
        params![t.refresh_hash, family, ts(t.refresh_expires)],
    )?;
    Ok(())
}

fn revoke(c: &Connection, family: &str, why: &str, now: DateTime<Utc>) -> rusqlite::Result<()> {
    c.execute(
        "UPDATE sessions SET revoked_at = ?1, revoke_why = ?2 WHERE family_id = ?3 AND revoked_at IS NULL",
        params![ts(now), why, family],
    )?;
    c.execute("DELETE FROM access_tokens WHERE family_id = ?1", [family])?;
    Ok(())
}

/// Orders counting against an orderer's annual quota: paid (net of restored quota) or reserved.
const USED_STATUSES: &str = "'paid','customs_declared','held','cleared','shipped','delivered','refunded'";

impl AccountStore for SqliteStore {
    fn create_account(
        &self,
        id: &str,
        phone: &str,
        password_hash: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<AccountRow> {
        self.with(|c| {
            let r = c.execute(
                "INSERT INTO accounts (id, phone, password_hash, created_at) VALUES (?1, ?2, ?3, ?4)",
                params![id, phone, password_hash, ts(now)],
            );
            match r {
                Err(rusqlite::Error::SqliteFailure(e, _))
                    if e.code == rusqlite::ErrorCode::ConstraintViolation =>
                {
                    Err(ApiError::conflict(
                        ErrorCode::AlreadyRegistered,
                        "this phone number is already registered",
                    ))
                }
                Err(e) => Err(e.into()),
                Ok(_) => Ok(AccountRow {
                    id: id.into(),
                    phone: phone.into(),
                    password_hash: password_hash.into(),
                    real_name: None,
                    id_number: None,
                    birth_date: None,
                    verified_at: None,
                    created_at: now,
                }),
            }
        })
    }

    fn account(&self, id: &str) -> StoreResult<Option<AccountRow>> {
        self.with(|c| {
            Ok(c.query_row(&format!("SELECT {ACCOUNT_COLS} FROM accounts WHERE id = ?1"), [id], account_row)
                .optional()?)
        })
    }

    fn account_by_phone(&self, phone: &str) -> StoreResult<Option<AccountRow>> {
        self.with(|c| {
            Ok(c.query_row(
                &format!("SELECT {ACCOUNT_COLS} FROM accounts WHERE phone = ?1"),
                [phone],
                account_row,
            )
            .optional()?)
        })
    }

    fn login_failures_since(&self, phone: &str, since: DateTime<Utc>) -> StoreResult<i64> {
        self.with(|c| {
            Ok(c.query_row(
                "SELECT COUNT(*) FROM login_failures WHERE phone = ?1 AND at > ?2",
                params![phone, ts(since)],
                |r| r.get(0),
            )?)
        })
    }

    fn record_login_failure(&self, phone: &str, now: DateTime<Utc>) -> StoreResult<()> {
        self.with(|c| {
            c.execute("INSERT INTO login_failures (phone, at) VALUES (?1, ?2)", params![phone, ts(now)])?;
            Ok(())
        })
    }

    fn reserve_address_event(
        &self,
        event: AddressEvent,
        address: &str,
        since: DateTime<Utc>,
        limit: u32,
        now: DateTime<Utc>,
    ) -> StoreResult<Result<i64, DateTime<Utc>>> {
        self.with(|c| {
            let tx = c.transaction()?;
            let (seen, oldest): (i64, Option<String>) = tx.query_row(
                "SELECT COUNT(*), MIN(at) FROM address_events WHERE kind = ?1 AND address = ?2 AND at > ?3",
                params![event.as_str(), address, ts(since)],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )?;
            if seen >= i64::from(limit) {
                return Ok(Err(oldest.map_or(now, |t| parse_ts(&t))));
            }
            tx.execute(
                "INSERT INTO address_events (kind, address, at) VALUES (?1, ?2, ?3)",
                params![event.as_str(), address, ts(now)],
            )?;
            let id = tx.last_insert_rowid();
            tx.commit()?;
            Ok(Ok(id))
        })
    }

    fn forget_address_event(&self, id: i64) -> StoreResult<()> {
        self.with(|c| {
            c.execute("DELETE FROM address_events WHERE rowid = ?1", [id])?;
            Ok(())
        })
    }

    fn prune_address_events(&self, before: DateTime<Utc>) -> StoreResult<usize> {
        self.with(|c| Ok(c.execute("DELETE FROM address_events WHERE at < ?1", [ts(before)])?))
    }

    fn clear_login_failures(&self, phone: &str) -> StoreResult<()> {
        self.with(|c| {
            c.execute("DELETE FROM login_failures WHERE phone = ?1", [phone])?;
            Ok(())
        })
    }

    fn create_session(
        &self,
        family_id: &str,
        account_id: &str,
        t: &TokenHashes,
        now: DateTime<Utc>,
    ) -> StoreResult<()> {
        self.with(|c| {
            let tx = c.transaction()?;
            tx.execute(
                "INSERT INTO sessions (family_id, account_id, created_at) VALUES (?1, ?2, ?3)",
                params![family_id, account_id, ts(now)],
            )?;
            insert_tokens(&tx, family_id, t)?;
            tx.commit()?;
            Ok(())
        })
    }

    fn access_grant(&self, access_hash: &str) -> StoreResult<Option<AccessGrant>> {
        self.with(|c| {
            Ok(c.query_row(
                "SELECT s.account_id, s.family_id, a.expires_at FROM access_tokens a JOIN sessions s ON s.family_id = a.family_id
                 WHERE a.token_hash = ?1 AND s.revoked_at IS NULL",
                [access_hash],
                |r| {
                    let exp: String = r.get(2)?;
                    Ok(AccessGrant { account_id: r.get(0)?, family_id: r.get(1)?, expires_at: parse_ts(&exp) })
                },
            )
            .optional()?)
        })
    }

    fn refresh(&self, refresh_hash: &str, new: &TokenHashes, now: DateTime<Utc>) -> StoreResult<Refreshed> {
        self.with(|c| {
            let tx = c.transaction()?;
            type RefreshRow = (String, String, Option<String>, Option<String>, String);
            let row: Option<RefreshRow> = tx
                .query_row(
                    "SELECT r.family_id, r.expires_at, r.used_at, s.revoked_at, s.account_id
                     FROM refresh_tokens r JOIN sessions s ON s.family_id = r.family_id WHERE r.token_hash = ?1",
                    [refresh_hash],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
                )
                .optional()?;
            let result = match row {
                None => Refreshed::Invalid,
                Some((_, _, _, Some(_), _)) => Refreshed::Invalid,
                Some((family, _, Some(_), None, _)) => {
                    // A rotated token came back: someone else has a copy. End the whole session.
                    revoke(&tx, &family, "refresh token reused", now)?;
                    Refreshed::Reused
                }
                Some((_, exp, None, None, _)) if parse_ts(&exp) <= now => Refreshed::Invalid,
                Some((family, _, None, None, account_id)) => {
                    tx.execute("UPDATE refresh_tokens SET used_at = ?1 WHERE token_hash = ?2", params![ts(now), refresh_hash])?;
                    tx.execute("DELETE FROM access_tokens WHERE family_id = ?1", [&family])?;
                    insert_tokens(&tx, &family, new)?;
                    Refreshed::Rotated { account_id }
                }
            };
            tx.commit()?;
            Ok(result)
        })
    }

    fn revoke_family(&self, family_id: &str, why: &str, now: DateTime<Utc>) -> StoreResult<()> {
        self.with(|c| Ok(revoke(c, family_id, why, now)?))
    }

    fn revoke_all(&self, account_id: &str, now: DateTime<Utc>) -> StoreResult<usize> {
        self.with(|c| {
            let tx = c.transaction()?;
            let families: Vec<String> = tx
                .prepare("SELECT family_id FROM sessions WHERE account_id = ?1 AND revoked_at IS NULL")?
                .query_map([account_id], |r| r.get(0))?
                .collect::<Result<_, _>>()?;
            for f in &families {
                revoke(&tx, f, "signed out everywhere", now)?;
            }
            tx.commit()?;
            Ok(families.len())
        })
    }

    fn set_real_name(
        &self,
        account_id: &str,
        name: &str,
        id_number: &str,
        birth: NaiveDate,
        now: DateTime<Utc>,
    ) -> StoreResult<()> {
        self.with(|c| {
            c.execute(
                "UPDATE accounts SET real_name = ?1, id_number = ?2, birth_date = ?3, verified_at = ?4 WHERE id = ?5",
                params![name, id_number, birth.format("%Y-%m-%d").to_string(), ts(now), account_id],
            )?;
            Ok(())
        })
    }

    fn addresses(&self, account_id: &str) -> StoreResult<Vec<Address>> {
        self.with(|c| {
            Ok(c.prepare(&format!(
                "SELECT {ADDRESS_COLS} FROM addresses WHERE account_id = ?1 AND deleted = 0 ORDER BY is_default DESC, created_at"
            ))?
            .query_map([account_id], address_row)?
            .collect::<Result<_, _>>()?)
        })
    }

    fn address(&self, account_id: &str, id: &str) -> StoreResult<Option<Address>> {
        self.with(|c| {
            Ok(c.query_row(
                &format!(
                    "SELECT {ADDRESS_COLS} FROM addresses WHERE account_id = ?1 AND id = ?2 AND deleted = 0"
                ),
                [account_id, id],
                address_row,
            )
            .optional()?)
        })
    }

    fn save_address(
        &self,
        account_id: &str,
        id: &str,
        a: &AddressInput,
        now: DateTime<Utc>,
    ) -> StoreResult<Address> {
        self.with(|c| {
            let tx = c.transaction()?;
            let count: i64 =
                tx.query_row("SELECT COUNT(*) FROM addresses WHERE account_id = ?1 AND deleted = 0", [account_id], |r| r.get(0))?;
            let make_default = a.is_default || count == 0;
            if make_default {
                tx.execute("UPDATE addresses SET is_default = 0 WHERE account_id = ?1", [account_id])?;
            }
            tx.execute(
                "INSERT INTO addresses (id, account_id, recipient, phone, province, city, district, street, postal_code, is_default, created_at)
                 VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11)
                 ON CONFLICT (id) DO UPDATE SET recipient = excluded.recipient, phone = excluded.phone, province = excluded.province,
                 city = excluded.city, district = excluded.district, street = excluded.street, postal_code = excluded.postal_code,
                 is_default = excluded.is_default WHERE addresses.account_id = excluded.account_id",
                params![
                    id,
                    account_id,
                    a.recipient,
                    a.phone,
                    a.province,
                    a.city,
                    a.district,
                    a.street,
                    a.postal_code,
                    i64::from(make_default),
                    ts(now)
                ],
            )?;
            tx.commit()?;
            Ok(Address { id: id.into(), fields: AddressInput { is_default: make_default, ..a.clone() } })
        })
    }

    fn delete_address(&self, account_id: &str, id: &str) -> StoreResult<bool> {
        self.with(|c| {
            Ok(c.execute("UPDATE addresses SET deleted = 1, is_default = 0 WHERE account_id = ?1 AND id = ?2 AND deleted = 0", [account_id, id])?
                > 0)
        })
    }

    fn quota_usage(&self, id_number: &str, year: i32) -> StoreResult<(i64, i64)> {
        self.with(|c| quota_usage(c, id_number, year))
    }
}

fn insert_tracking(tx: &Connection, order_id: &str, e: &TrackingEvent) -> Result<(), ApiError> {
    let seq: i64 = tx.query_row(
        "SELECT COALESCE(MAX(seq), 0) + 1 FROM tracking_events WHERE order_id = ?1",
        [order_id],
        |r| r.get(0),
    )?;
    tx.execute(
        "INSERT INTO tracking_events (order_id, seq, at, stage, desc_zh, desc_en, loc_zh, loc_en) VALUES (?1,?2,?3,?4,?5,?6,?7,?8)",
        params![order_id, seq, ts(e.at), enum_str(&e.stage), e.description.zh, e.description.en, e.location.zh, e.location.en],
    )?;
    Ok(())
}

fn quota_usage(c: &Connection, id_number: &str, year: i32) -> Result<(i64, i64), ApiError> {
    let used: i64 = c.query_row(
        &format!(
            "SELECT COALESCE(SUM(dutiable_fen - quota_restored_fen), 0) FROM orders
             WHERE orderer_id_number = ?1 AND quota_year = ?2 AND status IN ({USED_STATUSES})"
        ),
        params![id_number, year],
        |r| r.get(0),
    )?;
    let reserved: i64 = c.query_row(
        "SELECT COALESCE(SUM(dutiable_fen), 0) FROM orders WHERE orderer_id_number = ?1 AND quota_year = ?2 AND status = 'awaiting_payment'",
        params![id_number, year],
        |r| r.get(0),
    )?;
    Ok((used, reserved))
}

// ---------------------------------------------------------------------------------------------
// Orders

const ORDER_CORE_COLS: &str = "id, account_id, status, total_fen, dutiable_fen, refunded_fen, orderer_name, orderer_id_number, \
     quota_year, pay_deadline, paid_at, paid_attempt_id, identity_check, declare_seq, hold_reason, waybill_no";

fn core_row(r: &Row<'_>) -> rusqlite::Result<OrderCore> {
    let status: String = r.get(2)?;
    let deadline: String = r.get(9)?;
    let paid: Option<String> = r.get(10)?;
    let idc: Option<i64> = r.get(12)?;
    let hold: Option<String> = r.get(14)?;
    Ok(OrderCore {
        id: r.get(0)?,
        account_id: r.get(1)?,
        status: OrderStatus::parse(&status).unwrap_or(OrderStatus::Closed),
        total: cny(r.get(3)?),
        dutiable: cny(r.get(4)?),
        refunded: cny(r.get(5)?),
        orderer_name: r.get(6)?,
        orderer_id_number: r.get(7)?,
        quota_year: r.get(8)?,
        pay_deadline: parse_ts(&deadline),
        paid_at: paid.map(|p| parse_ts(&p)),
        paid_attempt_id: r.get(11)?,
        identity_check: idc.map(|v| v == 1),
        declare_seq: r.get(13)?,
        hold_reason: hold.and_then(|h| json_enum(&h)),
        waybill_no: r.get(15)?,
    })
}

const ATTEMPT_COLS: &str = "id, order_id, out_trade_no, method, mode, amount_fen, status, failure, cashier_url, qr_code, \
     return_url, trade_no, created_at, updated_at, expires_at";

fn attempt_row(r: &Row<'_>) -> rusqlite::Result<AttemptRow> {
    let method: String = r.get(3)?;
    let mode: String = r.get(4)?;
    let status: String = r.get(6)?;
    let failure: Option<String> = r.get(7)?;
    let (c, u, e): (String, String, String) = (r.get(12)?, r.get(13)?, r.get(14)?);
    Ok(AttemptRow {
        id: r.get(0)?,
        order_id: r.get(1)?,
        out_trade_no: r.get(2)?,
        method: PaymentMethod::parse_code(&method).unwrap_or(PaymentMethod::Balance),
        mode: json_enum::<PayMode>(&mode).unwrap_or(PayMode::InApp),
        amount: cny(r.get(5)?),
        status: AttemptStatus::parse(&status).unwrap_or(AttemptStatus::Unknown),
        failure: failure.and_then(|f| json_enum(&f)),
        cashier_url: r.get(8)?,
        qr_code: r.get(9)?,
        return_url: r.get(10)?,
        trade_no: r.get(11)?,
        created_at: parse_ts(&c),
        updated_at: parse_ts(&u),
        expires_at: parse_ts(&e),
    })
}

fn next_sync(c: &Connection) -> rusqlite::Result<i64> {
    c.query_row("SELECT COALESCE(MAX(sync_seq), 0) + 1 FROM orders", [], |r| r.get(0))
}

fn touch(c: &Connection, order_id: &str, now: DateTime<Utc>) -> rusqlite::Result<()> {
    let seq = next_sync(c)?;
    c.execute(
        "UPDATE orders SET updated_at = ?1, sync_seq = ?2 WHERE id = ?3",
        params![ts(now), seq, order_id],
    )?;
    Ok(())
}

fn load_order(c: &Connection, account_id: Option<&str>, id: &str) -> Result<Option<Order>, ApiError> {
    let row = c
        .query_row(
            "SELECT id, account_id, status, address_json, goods_fen, shipping_fen, tax_fen, dutiable_fen, total_fen, refunded_fen,
                    orderer_name, orderer_id_number, pay_deadline, created_at, updated_at, identity_check, declaration_no,
                    order_declared, payment_declared, waybill_declared, hold_reason, waybill_no, carrier
             FROM orders WHERE id = ?1 AND (?2 IS NULL OR account_id = ?2)",
            params![id, account_id],
            |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, String>(3)?,
                    [r.get::<_, i64>(4)?, r.get(5)?, r.get(6)?, r.get(7)?, r.get(8)?, r.get(9)?],
                    (r.get::<_, String>(10)?, r.get::<_, String>(11)?),
                    (r.get::<_, String>(12)?, r.get::<_, String>(13)?, r.get::<_, String>(14)?),
                    (r.get::<_, Option<i64>>(15)?, r.get::<_, Option<String>>(16)?, r.get::<_, i64>(17)?, r.get::<_, i64>(18)?, r.get::<_, i64>(19)?),
                    (r.get::<_, Option<String>>(20)?, r.get::<_, Option<String>>(21)?, r.get::<_, Option<String>>(22)?),
                ))
            },
        )
        .optional()?;
    let Some((oid, status, address_json, money, orderer, times, customs, ship)) = row else {
        return Ok(None);
    };
    let [goods, shipping, tax, dutiable, total, refunded] = money;
    let lines = c
        .prepare(
            "SELECT product_id, name_zh, name_en, image, currency, unit_price_minor, unit_price_cny_fen, quantity, goods_fen,
                    shipping_fen, tax_fen, tax_rate_ppm, total_fen FROM order_lines WHERE order_id = ?1 ORDER BY line_no",
        )?
        .query_map([&oid], |r| {
            let cur: String = r.get(4)?;
            let cur: Currency = cur.parse().unwrap_or(Currency::Cny);
            Ok(OrderLine {
                product_id: r.get(0)?,
                name: Localized { zh: r.get(1)?, en: r.get(2)? },
                image: r.get(3)?,
                pricing: LinePricing {
                    unit_price: Money::from_minor(r.get(5)?, cur),
                    unit_price_cny: cny(r.get(6)?),
                    quantity: r.get(7)?,
                    goods_cny: cny(r.get(8)?),
                    shipping_cny: cny(r.get(9)?),
                    tax_cny: cny(r.get(10)?),
                    tax_rate_ppm: r.get(11)?,
                    total_cny: cny(r.get(12)?),
                },
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    let payment = c
        .query_row(
            &format!("SELECT {ATTEMPT_COLS} FROM payment_attempts WHERE order_id = ?1 ORDER BY created_at DESC, rowid DESC LIMIT 1"),
            [&oid],
            attempt_row,
        )
        .optional()?
        .map(|a| a.wire());
    let tracking = tracking(c, &oid)?;
    let refunds = refund_records(c, &oid)?;
    let address: Address = serde_json::from_str(&address_json).map_err(ApiError::internal)?;
    let status = OrderStatus::parse(&status).unwrap_or(OrderStatus::Closed);
    let (idc, decl_no, od, pd, wd) = customs;
    let (hold, waybill_no, carrier) = ship;
    Ok(Some(Order {
        id: oid,
        status,
        lines,
        totals: Totals {
            goods: cny(goods),
            shipping: cny(shipping),
            tax: cny(tax),
            dutiable: cny(dutiable),
            total: cny(total),
        },
        address,
        orderer: Orderer { name: orderer.0, id_number_masked: mask_id(&orderer.1) },
        payment,
        customs: CustomsInfo {
            order_declared: od == 1,
            payment_declared: pd == 1,
            waybill_declared: wd == 1,
            identity_check: idc.map(|v| v == 1),
            declaration_no: decl_no,
            hold_reason: hold.and_then(|h| json_enum(&h)),
        },
        waybill: match (waybill_no, carrier) {
            (Some(number), Some(carrier)) => Some(Waybill { number, carrier }),
            _ => None,
        },
        tracking,
        refunds,
        refunded: cny(refunded),
        invoice_available: status.is_paid() || status == OrderStatus::Refunded,
        pay_deadline: parse_ts(&times.0),
        created_at: parse_ts(&times.1),
        updated_at: parse_ts(&times.2),
    }))
}

fn tracking(c: &Connection, order_id: &str) -> Result<Vec<TrackingEvent>, ApiError> {
    Ok(c.prepare("SELECT at, stage, desc_zh, desc_en, loc_zh, loc_en FROM tracking_events WHERE order_id = ?1 ORDER BY seq")?
        .query_map([order_id], |r| {
            let at: String = r.get(0)?;
            let stage: String = r.get(1)?;
            Ok(TrackingEvent {
                at: parse_ts(&at),
                stage: json_enum(&stage).unwrap_or(TrackingStage::Paid),
                description: Localized { zh: r.get(2)?, en: r.get(3)? },
                location: Localized { zh: r.get(4)?, en: r.get(5)? },
            })
        })?
        .collect::<Result<_, _>>()?)
}

const REFUND_COLS: &str = "id, order_id, attempt_id, out_request_no, amount_fen, reason, status";

/// An order (as `o`) held for a failed inspection and still owed money with nothing under way;
/// `?1` is the time before which the last refused inspection refund must have been refused, `?2`
/// how many refused inspection refunds stop the retries.
const INSPECTION_OWED: &str = "o.status = 'held' AND o.hold_reason = 'inspection_failed'
     AND o.paid_attempt_id IS NOT NULL AND o.refunded_fen < o.total_fen
     AND NOT EXISTS (SELECT 1 FROM refunds r WHERE r.order_id = o.id AND r.status = 'pending')
     AND NOT EXISTS (SELECT 1 FROM refunds r WHERE r.order_id = o.id AND r.status = 'failed'
                     AND r.out_request_no LIKE 'INSP%' AND r.updated_at > ?1)
     AND (SELECT COUNT(*) FROM refunds r WHERE r.order_id = o.id AND r.status = 'failed'
          AND r.out_request_no LIKE 'INSP%') < ?2";

/// Whether an order's parcel is on its way (declared, cleared or shipped), so logistics may move it.
fn in_transit(c: &Connection, order_id: &str) -> rusqlite::Result<bool> {
    c.query_row(
        "SELECT EXISTS (SELECT 1 FROM orders WHERE id = ?1 AND status IN ('customs_declared','cleared','shipped'))",
        [order_id],
        |r| r.get(0),
    )
}

fn order_total(c: &Connection, order_id: &str) -> rusqlite::Result<i64> {
    c.query_row("SELECT total_fen FROM orders WHERE id = ?1", [order_id], |x| x.get(0))
}

/// Fen of one payment of an order refunded or being refunded (every refund but the failed ones).
/// Per payment: a duplicate payment's refund gives back that payment, not the order's money.
fn refunded_or_pending(c: &Connection, order_id: &str, attempt_id: &str) -> rusqlite::Result<i64> {
    c.query_row(
        "SELECT COALESCE(SUM(amount_fen), 0) FROM refunds
         WHERE order_id = ?1 AND attempt_id = ?2 AND status != 'failed'",
        [order_id, attempt_id],
        |x| x.get(0),
    )
}

fn insert_refund_row(c: &Connection, r: &RefundRow, now: DateTime<Utc>) -> rusqlite::Result<usize> {
    c.execute(
        &format!(
            "INSERT INTO refunds ({REFUND_COLS}, created_at, updated_at) VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?8)"
        ),
        params![
            r.id,
            r.order_id,
            r.attempt_id,
            r.out_request_no,
            r.amount.minor(),
            r.reason,
            enum_str(&r.status),
            ts(now)
        ],
    )
}

/// Records `r` as the refund of what is left of its payment — the order's total less that
/// payment's refunds not failed — or nothing when nothing is left.
fn refund_the_rest(
    c: &Connection,
    mut r: RefundRow,
    now: DateTime<Utc>,
) -> rusqlite::Result<Option<RefundRow>> {
    let left = order_total(c, &r.order_id)? - refunded_or_pending(c, &r.order_id, &r.attempt_id)?;
    if left <= 0 {
        return Ok(None);
    }
    r.amount = cny(left);
    insert_refund_row(c, &r, now)?;
    Ok(Some(r))
}

fn refund_row(r: &Row<'_>) -> rusqlite::Result<RefundRow> {
    let status: String = r.get(6)?;
    Ok(RefundRow {
        id: r.get(0)?,
        order_id: r.get(1)?,
        attempt_id: r.get(2)?,
        out_request_no: r.get(3)?,
        amount: cny(r.get(4)?),
        reason: r.get(5)?,
        status: json_enum(&status).unwrap_or(RefundStatus::Pending),
    })
}

fn refund_records(c: &Connection, order_id: &str) -> Result<Vec<RefundRecord>, ApiError> {
    Ok(c.prepare("SELECT id, amount_fen, reason, status, created_at FROM refunds WHERE order_id = ?1 ORDER BY created_at")?
        .query_map([order_id], |r| {
            let status: String = r.get(3)?;
            let at: String = r.get(4)?;
            Ok(RefundRecord {
                id: r.get(0)?,
                amount: cny(r.get(1)?),
                reason: r.get(2)?,
                status: json_enum(&status).unwrap_or(RefundStatus::Pending),
                created_at: parse_ts(&at),
            })
        })?
        .collect::<Result<_, _>>()?)
}

fn release_stock(c: &Connection, order_id: &str) -> rusqlite::Result<()> {
    let lines: Vec<(String, i64)> = c
        .prepare("SELECT product_id, quantity FROM order_lines WHERE order_id = ?1")?
        .query_map([order_id], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<_, _>>()?;
    let version = catalog::next_version(c)?;
    for (p, q) in lines {
        c.execute(
            "UPDATE products SET reserved = MAX(reserved - ?1, 0), version = ?2 WHERE id = ?3",
            params![q, version, p],
        )?;
    }
    Ok(())
}

/// Re-reserves the stock of a closed order; false when there is not enough.
fn rereserve_stock(c: &Connection, order_id: &str) -> rusqlite::Result<bool> {
    let lines: Vec<(String, i64)> = c
        .prepare("SELECT product_id, quantity FROM order_lines WHERE order_id = ?1")?
        .query_map([order_id], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<_, _>>()?;
    for (p, q) in &lines {
        let ok = c.execute(
            "UPDATE products SET reserved = reserved + ?1 WHERE id = ?2 AND stock - reserved >= ?1",
            params![q, p],
        )?;
        if ok == 0 {
            return Ok(false);
        }
    }
    Ok(true)
}

impl OrderStore for SqliteStore {
    fn cart(&self, account_id: &str) -> StoreResult<Vec<(ProductRow, i64)>> {
        self.with(|c| {
            let items: Vec<(String, i64)> = c
                .prepare("SELECT product_id, quantity FROM cart_items WHERE account_id = ?1 ORDER BY added_at, product_id")?
                .query_map([account_id], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<Result<_, _>>()?;
            let mut out = Vec::with_capacity(items.len());
            for (pid, q) in items {
                if let Some(p) = catalog::get(c, &pid)? {
                    out.push((p, q));
                }
            }
            Ok(out)
        })
    }

    fn set_cart_quantity(
        &self,
        account_id: &str,
        product_id: &str,
        quantity: i64,
        now: DateTime<Utc>,
    ) -> StoreResult<()> {
        self.with(|c| {
            if quantity <= 0 {
                c.execute("DELETE FROM cart_items WHERE account_id = ?1 AND product_id = ?2", [account_id, product_id])?;
            } else {
                c.execute(
                    "INSERT INTO cart_items (account_id, product_id, quantity, added_at) VALUES (?1, ?2, ?3, ?4)
                     ON CONFLICT (account_id, product_id) DO UPDATE SET quantity = excluded.quantity",
                    params![account_id, product_id, quantity, ts(now)],
                )?;
            }
            Ok(())
        })
    }

    fn clear_cart(&self, account_id: &str) -> StoreResult<()> {
        self.with(|c| {
            c.execute("DELETE FROM cart_items WHERE account_id = ?1", [account_id])?;
            Ok(())
        })
    }

    fn order_by_key(&self, account_id: &str, key: &str) -> StoreResult<Option<(String, String)>> {
        self.with(|c| {
            Ok(c.query_row(
                "SELECT id, request_hash FROM orders WHERE account_id = ?1 AND idempotency_key = ?2",
                [account_id, key],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?)
        })
    }

    fn create_order(&self, o: &NewOrder) -> StoreResult<Created> {
        self.with(|c| {
            let tx = c.transaction()?;
            if let Some((id, hash)) = tx
                .query_row(
                    "SELECT id, request_hash FROM orders WHERE account_id = ?1 AND idempotency_key = ?2",
                    [&o.account_id, &o.idempotency_key],
                    |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)),
                )
                .optional()?
            {
                return if hash == o.request_hash {
                    Ok(Created::Existing(id))
                } else {
                    Err(ApiError::conflict(ErrorCode::IdempotencyConflict, "this idempotency key was used for a different request"))
                };
            }
            // Quota, re-checked inside the transaction.
            let (used, reserved) = quota_usage(&tx, &o.orderer_id_number, o.quota_year)?;
            let dutiable = o.priced.totals.dutiable.minor();
            if used + reserved + dutiable > o.annual_limit_fen {
                return Err(ApiError::conflict(ErrorCode::AnnualQuotaExceeded, "this order would exceed the annual cross-border limit"));
            }
            // Stock, reserved atomically: the CHECK constraint refuses over-reservation.
            let version = catalog::next_version(&tx)?;
            for (p, q) in &o.lines {
                let n = tx.execute(
                    "UPDATE products SET reserved = reserved + ?1, version = ?2 WHERE id = ?3 AND stock - reserved >= ?1",
                    params![q, version, p.id],
                )?;
                if n == 0 {
                    return Err(ApiError::conflict(ErrorCode::OutOfStock, format!("not enough stock for {}", p.id)));
                }
            }
            let t = &o.priced.totals;
            let seq = next_sync(&tx)?;
            tx.execute(
                "INSERT INTO orders (id, account_id, status, idempotency_key, request_hash, orderer_name, orderer_id_number, quota_year,
                  address_json, goods_fen, shipping_fen, tax_fen, dutiable_fen, total_fen, full_rate, pay_deadline, created_at, updated_at,
                  sync_seq, order_declared)
                 VALUES (?1,?2,'awaiting_payment',?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13,?14,?15,?16,?16,?17,1)",
                params![
                    o.id,
                    o.account_id,
                    o.idempotency_key,
                    o.request_hash,
                    o.orderer_name,
                    o.orderer_id_number,
                    o.quota_year,
                    serde_json::to_string(&o.address).map_err(ApiError::internal)?,
                    t.goods.minor(),
                    t.shipping.minor(),
                    t.tax.minor(),
                    t.dutiable.minor(),
                    t.total.minor(),
                    i64::from(o.priced.full_rate),
                    ts(o.pay_deadline),
                    ts(o.now),
                    seq
                ],
            )?;
            for (i, ((p, _), l)) in o.lines.iter().zip(&o.priced.lines).enumerate() {
                tx.execute(
                    "INSERT INTO order_lines (order_id, line_no, product_id, name_zh, name_en, image, currency, unit_price_minor,
                      unit_price_cny_fen, quantity, goods_fen, shipping_fen, tax_fen, tax_rate_ppm, total_fen)
                     VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13,?14,?15)",
                    params![
                        o.id,
                        i64::try_from(i).unwrap_or(0),
                        p.id,
                        p.name.zh,
                        p.name.en,
                        p.image,
                        p.price.currency().code(),
                        p.price.minor(),
                        l.unit_price_cny.minor(),
                        l.quantity,
                        l.goods_cny.minor(),
                        l.shipping_cny.minor(),
                        l.tax_cny.minor(),
                        l.tax_rate_ppm,
                        l.total_cny.minor()
                    ],
                )?;
            }
            tx.execute("DELETE FROM cart_items WHERE account_id = ?1", [&o.account_id])?;
            tx.commit()?;
            Ok(Created::New(o.id.clone()))
        })
    }

    fn order(&self, account_id: Option<&str>, id: &str) -> StoreResult<Option<Order>> {
        self.with(|c| load_order(c, account_id, id))
    }

    fn order_core(&self, id: &str) -> StoreResult<Option<OrderCore>> {
        self.with(|c| {
            Ok(c.query_row(&format!("SELECT {ORDER_CORE_COLS} FROM orders WHERE id = ?1"), [id], core_row)
                .optional()?)
        })
    }

    fn orders(
        &self,
        account_id: &str,
        status: Option<OrderStatus>,
        page: u32,
        per_page: u32,
    ) -> StoreResult<(Vec<Order>, i64)> {
        self.with(|c| {
            let st = status.map(|s| s.as_str().to_owned());
            let total: i64 = c.query_row(
                "SELECT COUNT(*) FROM orders WHERE account_id = ?1 AND (?2 IS NULL OR status = ?2)",
                params![account_id, st],
                |r| r.get(0),
            )?;
            let ids: Vec<String> = c
                .prepare(
                    "SELECT id FROM orders WHERE account_id = ?1 AND (?2 IS NULL OR status = ?2)
                     ORDER BY created_at DESC, id DESC LIMIT ?3 OFFSET ?4",
                )?
                .query_map(
                    params![
                        account_id,
                        st,
                        i64::from(per_page),
                        i64::from(page.saturating_sub(1)) * i64::from(per_page)
                    ],
                    |r| r.get(0),
                )?
                .collect::<Result<_, _>>()?;
            let mut out = Vec::with_capacity(ids.len());
            for id in ids {
                if let Some(o) = load_order(c, Some(account_id), &id)? {
                    out.push(o);
                }
            }
            Ok((out, total))
        })
    }

    fn order_changes(
        &self,
        account_id: &str,
        since: i64,
        limit: u32,
    ) -> StoreResult<(Vec<Order>, i64, bool)> {
        self.with(|c| {
            let rows: Vec<(String, i64)> = c
                .prepare("SELECT id, sync_seq FROM orders WHERE account_id = ?1 AND sync_seq > ?2 ORDER BY sync_seq LIMIT ?3")?
                .query_map(params![account_id, since, i64::from(limit) + 1], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<Result<_, _>>()?;
            let more = rows.len() > usize::try_from(limit).unwrap_or(usize::MAX);
            let mut cursor = since;
            let mut out = Vec::new();
            for (id, seq) in rows.into_iter().take(usize::try_from(limit).unwrap_or(usize::MAX)) {
                if let Some(o) = load_order(c, Some(account_id), &id)? {
                    out.push(o);
                }
                cursor = seq;
            }
            Ok((out, cursor, more))
        })
    }

    fn insert_attempt(&self, a: &AttemptRow) -> StoreResult<()> {
        self.with(|c| {
            let tx = c.transaction()?;
            tx.execute(
                &format!("INSERT INTO payment_attempts ({ATTEMPT_COLS}) VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13,?14,?15)"),
                params![
                    a.id,
                    a.order_id,
                    a.out_trade_no,
                    a.method.code(),
                    enum_str(&a.mode),
                    a.amount.minor(),
                    a.status.as_str(),
                    a.failure.map(|f| enum_str(&f)),
                    a.cashier_url,
                    a.qr_code,
                    a.return_url,
                    a.trade_no,
                    ts(a.created_at),
                    ts(a.updated_at),
                    ts(a.expires_at)
                ],
            )?;
            touch(&tx, &a.order_id, a.updated_at)?;
            tx.commit()?;
            Ok(())
        })
    }

    fn update_attempt(&self, a: &AttemptRow) -> StoreResult<()> {
        self.with(|c| {
            let tx = c.transaction()?;
            tx.execute(
                "UPDATE payment_attempts SET status = ?1, failure = ?2, cashier_url = ?3, qr_code = ?4, trade_no = COALESCE(?5, trade_no),
                 updated_at = ?6 WHERE id = ?7 AND status != 'paid'",
                params![
                    a.status.as_str(),
                    a.failure.map(|f| enum_str(&f)),
                    a.cashier_url,
                    a.qr_code,
                    a.trade_no,
                    ts(a.updated_at),
                    a.id
                ],
            )?;
            touch(&tx, &a.order_id, a.updated_at)?;
            tx.commit()?;
            Ok(())
        })
    }

    fn attempt(&self, id: &str) -> StoreResult<Option<AttemptRow>> {
        self.with(|c| {
            Ok(c.query_row(
                &format!("SELECT {ATTEMPT_COLS} FROM payment_attempts WHERE id = ?1"),
                [id],
                attempt_row,
            )
            .optional()?)
        })
    }

    fn attempt_by_out_trade_no(&self, out_trade_no: &str) -> StoreResult<Option<AttemptRow>> {
        self.with(|c| {
            Ok(c.query_row(
                &format!("SELECT {ATTEMPT_COLS} FROM payment_attempts WHERE out_trade_no = ?1"),
                [out_trade_no],
                attempt_row,
            )
            .optional()?)
        })
    }

    fn attempts_of(&self, order_id: &str) -> StoreResult<Vec<AttemptRow>> {
        self.with(|c| {
            Ok(c.prepare(&format!(
                "SELECT {ATTEMPT_COLS} FROM payment_attempts WHERE order_id = ?1 ORDER BY created_at, rowid"
            ))?
            .query_map([order_id], attempt_row)?
            .collect::<Result<_, _>>()?)
        })
    }

    fn open_attempts(&self, before: DateTime<Utc>) -> StoreResult<Vec<AttemptRow>> {
        self.with(|c| {
            Ok(c.prepare(&format!(
                "SELECT {ATTEMPT_COLS} FROM payment_attempts WHERE status IN ('started','redirected','unknown') AND updated_at <= ?1
                 ORDER BY updated_at LIMIT 200"
            ))?
            .query_map([ts(before)], attempt_row)?
            .collect::<Result<_, _>>()?)
        })
    }

    fn record_notification(
        &self,
        notify_id: &str,
        out_trade_no: &str,
        status: &str,
        params_text: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<bool> {
        self.with(|c| {
            let n = c.execute(
                "INSERT INTO notifications (notify_id, out_trade_no, trade_status, received_at, params) VALUES (?1,?2,?3,?4,?5)
                 ON CONFLICT (notify_id) DO NOTHING",
                params![notify_id, out_trade_no, status, ts(now), params_text],
            )?;
            Ok(n == 1)
        })
    }

    fn apply_payment(
        &self,
        attempt_id: &str,
        trade_no: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<PaymentApplied> {
        self.with(|c| {
            let tx = c.transaction()?;
            let a = tx
                .query_row(&format!("SELECT {ATTEMPT_COLS} FROM payment_attempts WHERE id = ?1"), [attempt_id], attempt_row)
                .optional()?
                .ok_or_else(|| ApiError::not_found("payment attempt"))?;
            let o = tx
                .query_row(&format!("SELECT {ORDER_CORE_COLS} FROM orders WHERE id = ?1"), [&a.order_id], core_row)
                .optional()?
                .ok_or_else(|| ApiError::not_found("order"))?;
            let outcome = if a.status == AttemptStatus::Paid {
                PaymentApplied::AlreadyApplied
            } else if o.paid_attempt_id.as_deref().is_some_and(|p| p != attempt_id) {
                PaymentApplied::Duplicate
            } else if o.status == OrderStatus::AwaitingPayment || (o.status == OrderStatus::Closed && rereserve_stock(&tx, &o.id)?) {
                // Reserved stock becomes sold stock.
                let lines: Vec<(String, i64)> = tx
                    .prepare("SELECT product_id, quantity FROM order_lines WHERE order_id = ?1")?
                    .query_map([&o.id], |r| Ok((r.get(0)?, r.get(1)?)))?
                    .collect::<Result<_, _>>()?;
                let version = catalog::next_version(&tx)?;
                for (p, q) in lines {
                    tx.execute(
                        "UPDATE products SET stock = stock - ?1, reserved = reserved - ?1, version = ?2 WHERE id = ?3",
                        params![q, version, p],
                    )?;
                }
                tx.execute(
                    "UPDATE orders SET status = 'paid', paid_at = ?1, paid_attempt_id = ?2 WHERE id = ?3",
                    params![ts(now), attempt_id, o.id],
                )?;
                PaymentApplied::Paid
            } else {
                PaymentApplied::OrderGone
            };
            if outcome != PaymentApplied::AlreadyApplied {
                tx.execute(
                    "UPDATE payment_attempts SET status = 'paid', failure = NULL, trade_no = ?1, updated_at = ?2 WHERE id = ?3",
                    params![trade_no, ts(now), attempt_id],
                )?;
                touch(&tx, &o.id, now)?;
            }
            tx.commit()?;
            Ok(outcome)
        })
    }

    fn close_order(&self, order_id: &str, now: DateTime<Utc>) -> StoreResult<bool> {
        self.with(|c| {
            let tx = c.transaction()?;
            let n = tx.execute("UPDATE orders SET status = 'closed' WHERE id = ?1 AND status = 'awaiting_payment'", [order_id])?;
            if n == 1 {
                release_stock(&tx, order_id)?;
                tx.execute(
                    "UPDATE payment_attempts SET status = 'closed', updated_at = ?1 WHERE order_id = ?2 AND status IN ('started','redirected')",
                    params![ts(now), order_id],
                )?;
                touch(&tx, order_id, now)?;
            }
            tx.commit()?;
            Ok(n == 1)
        })
    }

    fn overdue_orders(&self, now: DateTime<Utc>) -> StoreResult<Vec<OrderCore>> {
        self.with(|c| {
            Ok(c.prepare(&format!(
                "SELECT {ORDER_CORE_COLS} FROM orders WHERE status = 'awaiting_payment' AND pay_deadline <= ?1 LIMIT 100"
            ))?
            .query_map([ts(now)], core_row)?
            .collect::<Result<_, _>>()?)
        })
    }

    fn insert_refund(&self, r: &RefundRow, now: DateTime<Utc>) -> StoreResult<()> {
        self.with(|c| {
            let tx = c.transaction()?;
            if refunded_or_pending(&tx, &r.order_id, &r.attempt_id)? + r.amount.minor()
                > order_total(&tx, &r.order_id)?
            {
                return Err(ApiError::validation("amount", "more than the order total would be refunded"));
            }
            insert_refund_row(&tx, r, now)?;
            touch(&tx, &r.order_id, now)?;
            tx.commit()?;
            Ok(())
        })
    }

    fn refundable(&self, order_id: &str, attempt_id: &str) -> StoreResult<i64> {
        self.with(|c| Ok(order_total(c, order_id)? - refunded_or_pending(c, order_id, attempt_id)?))
    }

    fn refunds_of(&self, order_id: &str) -> StoreResult<Vec<RefundRow>> {
        self.with(|c| {
            Ok(c.prepare(&format!(
                "SELECT {REFUND_COLS} FROM refunds WHERE order_id = ?1 ORDER BY created_at"
            ))?
            .query_map([order_id], refund_row)?
            .collect::<Result<_, _>>()?)
        })
    }

    fn pending_refunds(&self) -> StoreResult<Vec<RefundRow>> {
        self.with(|c| {
            Ok(c.prepare(&format!(
                "SELECT {REFUND_COLS} FROM refunds WHERE status = 'pending' ORDER BY created_at LIMIT 100"
            ))?
            .query_map([], refund_row)?
            .collect::<Result<_, _>>()?)
        })
    }

    fn complete_refund(&self, refund_id: &str, now: DateTime<Utc>) -> StoreResult<()> {
        self.with(|c| {
            let tx = c.transaction()?;
            let r = tx
                .query_row(
                    &format!("SELECT {REFUND_COLS} FROM refunds WHERE id = ?1"),
                    [refund_id],
                    refund_row,
                )
                .optional()?
                .ok_or_else(|| ApiError::not_found("refund"))?;
            if r.status == RefundStatus::Succeeded {
                return Ok(());
            }
            tx.execute(
                "UPDATE refunds SET status = 'succeeded', updated_at = ?1 WHERE id = ?2",
                params![ts(now), refund_id],
            )?;
            // A refund of a duplicate payment does not touch the order's own money.
            let paid_attempt: Option<String> =
                tx.query_row("SELECT paid_attempt_id FROM orders WHERE id = ?1", [&r.order_id], |x| {
                    x.get(0)
                })?;
            if paid_attempt.as_deref() == Some(r.attempt_id.as_str()) {
                let (total, dutiable, refunded): (i64, i64, i64) = tx.query_row(
                    "SELECT total_fen, dutiable_fen, refunded_fen FROM orders WHERE id = ?1",
                    [&r.order_id],
                    |x| Ok((x.get(0)?, x.get(1)?, x.get(2)?)),
                )?;
                let new_refunded = (refunded + r.amount.minor()).min(total);
                // Quota comes back in proportion to the refunded share of the order (all of it on a full refund).
                let restored = if new_refunded >= total {
                    dutiable
                } else {
                    i64::try_from(i128::from(new_refunded) * i128::from(dutiable) / i128::from(total.max(1)))
                        .unwrap_or(0)
                };
                tx.execute(
                    "UPDATE orders SET refunded_fen = ?1, quota_restored_fen = ?2,
                     status = CASE WHEN ?1 >= total_fen THEN 'refunded' ELSE status END WHERE id = ?3",
                    params![new_refunded, restored, r.order_id],
                )?;
            }
            touch(&tx, &r.order_id, now)?;
            tx.commit()?;
            Ok(())
        })
    }

    fn fail_refund(&self, refund_id: &str, now: DateTime<Utc>) -> StoreResult<()> {
        self.with(|c| {
            c.execute(
                "UPDATE refunds SET status = 'failed', updated_at = ?1 WHERE id = ?2 AND status = 'pending'",
                params![ts(now), refund_id],
            )?;
            Ok(())
        })
    }

    fn orders_to_declare(&self) -> StoreResult<Vec<OrderCore>> {
        self.with(|c| {
            Ok(c.prepare(&format!("SELECT {ORDER_CORE_COLS} FROM orders WHERE status = 'paid' AND payment_declared = 0 LIMIT 100"))?
                .query_map([], core_row)?
                .collect::<Result<_, _>>()?)
        })
    }

    fn record_declaration(
        &self,
        order_id: &str,
        declaration_no: &str,
        identity_check: Option<bool>,
        event: &TrackingEvent,
        now: DateTime<Utc>,
    ) -> StoreResult<bool> {
        self.with(|c| {
            let tx = c.transaction()?;
            let (status, hold) = match identity_check {
                Some(false) => ("held", Some(enum_str(&HoldReason::OrdererNotPayer))),
                _ => ("customs_declared", None),
            };
            let changed = tx.execute(
                "UPDATE orders SET payment_declared = 1, declaration_no = ?1, identity_check = COALESCE(?2, identity_check),
                 status = ?3, hold_reason = ?4 WHERE id = ?5 AND status = 'paid' AND payment_declared = 0",
                params![declaration_no, identity_check.map(i64::from), status, hold, order_id],
            )?;
            if changed == 0 {
                return Ok(false);
            }
            insert_tracking(&tx, order_id, event)?;
            touch(&tx, order_id, now)?;
            tx.commit()?;
            Ok(true)
        })
    }

    fn correct_orderer(
        &self,
        order_id: &str,
        name: &str,
        id_number: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<()> {
        self.with(|c| {
            let tx = c.transaction()?;
            tx.execute(
                "UPDATE orders SET orderer_name = ?1, orderer_id_number = ?2, payment_declared = 0, identity_check = NULL,
                 hold_reason = NULL, status = 'paid', declare_seq = declare_seq + 1 WHERE id = ?3 AND status = 'held'",
                params![name, id_number, order_id],
            )?;
            touch(&tx, order_id, now)?;
            tx.commit()?;
            Ok(())
        })
    }

    fn orders_in_transit(&self) -> StoreResult<Vec<OrderCore>> {
        self.with(|c| {
            Ok(c.prepare(&format!(
                "SELECT {ORDER_CORE_COLS} FROM orders WHERE status IN ('customs_declared','cleared','shipped') LIMIT 500"
            ))?
            .query_map([], core_row)?
            .collect::<Result<_, _>>()?)
        })
    }

    fn advance_parcel(
        &self,
        order_id: &str,
        e: &TrackingEvent,
        status: Option<(OrderStatus, Option<HoldReason>)>,
        now: DateTime<Utc>,
    ) -> StoreResult<bool> {
        self.with(|c| {
            let tx = c.transaction()?;
            if !in_transit(&tx, order_id)? {
                return Ok(false);
            }
            insert_tracking(&tx, order_id, e)?;
            if let Some((st, hold)) = status {
                tx.execute(
                    "UPDATE orders SET status = ?1, hold_reason = ?2 WHERE id = ?3",
                    params![st.as_str(), hold.map(|h| enum_str(&h)), order_id],
                )?;
            }
            touch(&tx, order_id, now)?;
            tx.commit()?;
            Ok(true)
        })
    }

    fn hold_failed_inspection(
        &self,
        order_id: &str,
        e: &TrackingEvent,
        refund: Option<RefundRow>,
        now: DateTime<Utc>,
    ) -> StoreResult<(bool, Option<RefundRow>)> {
        self.with(|c| {
            let tx = c.transaction()?;
            if !in_transit(&tx, order_id)? {
                return Ok((false, None));
            }
            insert_tracking(&tx, order_id, e)?;
            tx.execute(
                "UPDATE orders SET status = ?1, hold_reason = ?2 WHERE id = ?3",
                params![OrderStatus::Held.as_str(), enum_str(&HoldReason::InspectionFailed), order_id],
            )?;
            let recorded = match refund {
                Some(r) => refund_the_rest(&tx, r, now)?,
                None => None,
            };
            touch(&tx, order_id, now)?;
            tx.commit()?;
            Ok((true, recorded))
        })
    }

    fn inspection_refunds_owed(
        &self,
        retry_from: DateTime<Utc>,
        max_failed: u32,
    ) -> StoreResult<Vec<OrderCore>> {
        self.with(|c| {
            Ok(c.prepare(&format!(
                "SELECT {ORDER_CORE_COLS} FROM orders o WHERE {INSPECTION_OWED} LIMIT 100"
            ))?
            .query_map(params![ts(retry_from), max_failed], core_row)?
            .collect::<Result<_, _>>()?)
        })
    }

    fn top_up_inspection_refund(
        &self,
        mut refund: RefundRow,
        out_trade_no: &str,
        retry_from: DateTime<Utc>,
        max_failed: u32,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<RefundRow>> {
        self.with(|c| {
            let tx = c.transaction()?;
            let owed: bool = tx.query_row(
                &format!("SELECT EXISTS (SELECT 1 FROM orders o WHERE {INSPECTION_OWED} AND o.id = ?3)"),
                params![ts(retry_from), max_failed, refund.order_id],
                |r| r.get(0),
            )?;
            if !owed {
                return Ok(None);
            }
            let before: i64 = tx.query_row(
                "SELECT COUNT(*) FROM refunds WHERE order_id = ?1 AND out_request_no LIKE 'INSP%'",
                [&refund.order_id],
                |r| r.get(0),
            )?;
            refund.out_request_no = format!("INSP{before}{out_trade_no}");
            refund.status = RefundStatus::Pending;
            let order_id = refund.order_id.clone();
            let recorded = refund_the_rest(&tx, refund, now)?;
            if recorded.is_some() {
                touch(&tx, &order_id, now)?;
                tx.commit()?;
            }
            Ok(recorded)
        })
    }

    fn set_waybill(
        &self,
        order_id: &str,
        number: &str,
        carrier: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<()> {
        self.with(|c| {
            let tx = c.transaction()?;
            tx.execute(
                "UPDATE orders SET waybill_no = ?1, carrier = ?2, waybill_declared = 1 WHERE id = ?3",
                params![number, carrier, order_id],
            )?;
            touch(&tx, order_id, now)?;
            tx.commit()?;
            Ok(())
        })
    }

    fn tracking(&self, order_id: &str) -> StoreResult<Vec<TrackingEvent>> {
        self.with(|c| tracking(c, order_id))
    }

    fn add_tracking(&self, order_id: &str, e: &TrackingEvent, now: DateTime<Utc>) -> StoreResult<()> {
        self.with(|c| {
            let tx = c.transaction()?;
            insert_tracking(&tx, order_id, e)?;
            touch(&tx, order_id, now)?;
            tx.commit()?;
            Ok(())
        })
    }

    fn refund_records(&self, order_id: &str) -> StoreResult<Vec<RefundRecord>> {
        self.with(|c| refund_records(c, order_id))
    }
}

// ---------------------------------------------------------------------------------------------
// Support

fn ticket_messages(c: &Connection, id: &str) -> Result<Vec<TicketMessage>, ApiError> {
    Ok(c.prepare("SELECT author, body, at FROM ticket_messages WHERE ticket_id = ?1 ORDER BY seq")?
        .query_map([id], |r| {
            let a: String = r.get(0)?;
            let at: String = r.get(2)?;
            Ok(TicketMessage {
                author: json_enum(&a).unwrap_or(Author::Customer),
                body: r.get(1)?,
                at: parse_ts(&at),
            })
        })?
        .collect::<Result<_, _>>()?)
}

fn load_ticket(c: &Connection, account_id: &str, id: &str) -> Result<Option<Ticket>, ApiError> {
    let row = c
        .query_row(
            "SELECT id, order_id, topic, subject, status, created_at, updated_at FROM tickets WHERE id = ?1 AND account_id = ?2",
            [id, account_id],
            |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, Option<String>>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, String>(3)?,
                    r.get::<_, String>(4)?,
                    r.get::<_, String>(5)?,
                    r.get::<_, String>(6)?,
                ))
            },
        )
        .optional()?;
    let Some((id, order_id, topic, subject, status, created, updated)) = row else { return Ok(None) };
    let messages = ticket_messages(c, &id)?;
    Ok(Some(Ticket {
        id,
        order_id,
        topic: json_enum(&topic).unwrap_or(TicketTopic::Other),
        subject,
        status: json_enum(&status).unwrap_or(TicketStatus::Open),
        messages,
        created_at: parse_ts(&created),
        updated_at: parse_ts(&updated),
    }))
}

impl SupportStore for SqliteStore {
    fn create_ticket(&self, t: &Ticket, account_id: &str) -> StoreResult<()> {
        self.with(|c| {
            let tx = c.transaction()?;
            tx.execute(
                "INSERT INTO tickets (id, account_id, order_id, topic, subject, status, created_at, updated_at) VALUES (?1,?2,?3,?4,?5,?6,?7,?7)",
                params![t.id, account_id, t.order_id, enum_str(&t.topic), t.subject, enum_str(&t.status), ts(t.created_at)],
            )?;
            for (i, m) in t.messages.iter().enumerate() {
                tx.execute(
                    "INSERT INTO ticket_messages (ticket_id, seq, author, body, at) VALUES (?1,?2,?3,?4,?5)",
                    params![t.id, i64::try_from(i).unwrap_or(0) + 1, enum_str(&m.author), m.body, ts(m.at)],
                )?;
            }
            tx.commit()?;
            Ok(())
        })
    }

    fn add_message(
        &self,
        ticket_id: &str,
        author: Author,
        body: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<()> {
        self.with(|c| {
            let tx = c.transaction()?;
            let seq: i64 = tx.query_row(
                "SELECT COALESCE(MAX(seq), 0) + 1 FROM ticket_messages WHERE ticket_id = ?1",
                [ticket_id],
                |r| r.get(0),
            )?;
            tx.execute(
                "INSERT INTO ticket_messages (ticket_id, seq, author, body, at) VALUES (?1,?2,?3,?4,?5)",
                params![ticket_id, seq, enum_str(&author), body, ts(now)],
            )?;
            tx.execute("UPDATE tickets SET updated_at = ?1 WHERE id = ?2", params![ts(now), ticket_id])?;
            tx.commit()?;
            Ok(())
        })
    }

    fn ticket(&self, account_id: &str, id: &str) -> StoreResult<Option<Ticket>> {
        self.with(|c| load_ticket(c, account_id, id))
    }

    fn tickets(&self, account_id: &str) -> StoreResult<Vec<Ticket>> {
        self.with(|c| {
            let ids: Vec<String> = c
                .prepare("SELECT id FROM tickets WHERE account_id = ?1 ORDER BY updated_at DESC LIMIT 200")?
                .query_map([account_id], |r| r.get(0))?
                .collect::<Result<_, _>>()?;
            let mut out = Vec::new();
            for id in ids {
                if let Some(t) = load_ticket(c, account_id, &id)? {
                    out.push(t);
                }
            }
            Ok(out)
        })
    }

    fn set_ticket_status(&self, id: &str, status: TicketStatus, now: DateTime<Utc>) -> StoreResult<()> {
        self.with(|c| {
            c.execute(
                "UPDATE tickets SET status = ?1, updated_at = ?2 WHERE id = ?3",
                params![enum_str(&status), ts(now), id],
            )?;
            Ok(())
        })
    }

    fn topic_of(&self, id: &str) -> StoreResult<Option<TicketTopic>> {
        self.with(|c| {
            let t: Option<String> =
                c.query_row("SELECT topic FROM tickets WHERE id = ?1", [id], |r| r.get(0)).optional()?;
            Ok(t.and_then(|t| json_enum(&t)))
        })
    }
}

/// The calendar year (Asia/Shanghai) an instant falls in: quotas reset on 1 January, China time.
pub fn quota_year(at: DateTime<Utc>) -> i32 {
    at.with_timezone(&haitao_alipay::time::shanghai()).year()
}
