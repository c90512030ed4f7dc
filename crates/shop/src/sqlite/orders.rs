//! Orders in SQLite: creation with its stock and quota checks, reading, closing, and the stock an
//! order holds.

use super::accounts::{account_in, address_in};
use super::cart::cart_in;
use super::fulfilment::tracking;
use super::payments::{ATTEMPT_COLS, attempt_row};
use super::products::next_version;
use super::refunds::refund_records;
use super::*;
use crate::domain::orders::{self, CartAsRead, PlaceOrder};

pub(super) const ORDER_CORE_COLS: &str = "id, account_id, status, total_fen, dutiable_fen, refunded_fen, orderer_name, orderer_id_number, \
     quota_year, pay_deadline, paid_at, paid_attempt_id, identity_check, declare_seq, hold_reason, waybill_no";

pub(super) fn core_row(r: &Row<'_>) -> rusqlite::Result<OrderCore> {
    let id: String = r.get(0)?;
    in_row("orders", &id, r, || {
        Ok(OrderCore {
            account_id: r.get(1)?,
            status: r.get(2)?,
            total: cny(r.get(3)?),
            dutiable: cny(r.get(4)?),
            refunded: cny(r.get(5)?),
            orderer_name: r.get(6)?,
            orderer_id_number: r.get(7)?,
            quota_year: r.get(8)?,
            pay_deadline: r.get::<_, Stamp>(9)?.0,
            paid_at: r.get::<_, Option<Stamp>>(10)?.map(|t| t.0),
            paid_attempt_id: r.get(11)?,
            identity_check: r.get(12)?,
            declare_seq: r.get(13)?,
            hold_reason: r.get(14)?,
            waybill_no: r.get(15)?,
            id: id.clone(),
        })
    })
}

pub(super) fn next_sync(c: &Connection) -> rusqlite::Result<i64> {
    c.query_row("SELECT COALESCE(MAX(sync_seq), 0) + 1 FROM orders", [], |r| r.get(0))
}

pub(super) fn touch(c: &Connection, order_id: &str, now: DateTime<Utc>) -> rusqlite::Result<()> {
    let seq = next_sync(c)?;
    c.execute(
        "UPDATE orders SET updated_at = ?1, sync_seq = ?2 WHERE id = ?3",
        params![ts(now), seq, order_id],
    )?;
    Ok(())
}

pub(super) fn load_order(
    c: &Connection,
    account_id: Option<&str>,
    id: &str,
) -> Result<Option<Order>, ApiError> {
    let row = c
        .query_row(
            "SELECT id, status, address_json, goods_fen, shipping_fen, tax_fen, dutiable_fen, total_fen, refunded_fen,
                    orderer_name, orderer_id_number, pay_deadline, created_at, updated_at, identity_check, declaration_no,
                    order_declared, payment_declared, waybill_declared, hold_reason, waybill_no, carrier
             FROM orders WHERE id = ?1 AND (?2 IS NULL OR account_id = ?2)",
            params![id, account_id],
            |r| {
                let oid: String = r.get(0)?;
                in_row("orders", &oid, r, || {
                    let address_json: String = r.get(2)?;
                    let address: Address = serde_json::from_str(&address_json).map_err(|e| {
                        rusqlite::Error::FromSqlConversionFailure(2, rusqlite::types::Type::Text, Box::new(e))
                    })?;
                    let status: OrderStatus = r.get(1)?;
                    let order = Order {
                        id: oid.clone(),
                        status,
                        lines: Vec::new(),
                        totals: Totals {
                            goods: cny(r.get(3)?),
                            shipping: cny(r.get(4)?),
                            tax: cny(r.get(5)?),
                            dutiable: cny(r.get(6)?),
                            total: cny(r.get(7)?),
                        },
                        address,
                        orderer: Orderer { name: r.get(9)?, id_number_masked: mask_id(&r.get::<_, String>(10)?) },
                        payment: None,
                        customs: CustomsInfo {
                            identity_check: r.get(14)?,
                            declaration_no: r.get(15)?,
                            order_declared: r.get(16)?,
                            payment_declared: r.get(17)?,
                            waybill_declared: r.get(18)?,
                            hold_reason: r.get(19)?,
                        },
                        waybill: match (r.get(20)?, r.get(21)?) {
                            (Some(number), Some(carrier)) => Some(Waybill { number, carrier }),
                            _ => None,
                        },
                        tracking: Vec::new(),
                        refunds: Vec::new(),
                        refunded: cny(r.get(8)?),
                        paid: status.is_paid(),
                        invoice_available: status.is_paid() || status == OrderStatus::Refunded,
                        pay_deadline: r.get::<_, Stamp>(11)?.0,
                        created_at: r.get::<_, Stamp>(12)?.0,
                        updated_at: r.get::<_, Stamp>(13)?.0,
                    };
                    Ok(order)
                })
            },
        )
        .optional()?;
    let Some(mut order) = row else {
        return Ok(None);
    };
    order.lines = c
        .prepare(
            "SELECT product_id, name_zh, name_en, image, currency, unit_price_minor, unit_price_cny_fen, quantity, goods_fen,
                    shipping_fen, tax_fen, tax_rate_ppm, total_fen, line_no FROM order_lines WHERE order_id = ?1 ORDER BY line_no",
        )?
        .query_map([&order.id], |r| {
            let key = format!("{} line {}", order.id, r.get::<_, i64>(13)?);
            in_row("order_lines", &key, r, || {
                let cur: String = r.get(4)?;
                let cur: Currency = cur
                    .parse()
                    .map_err(|e| rusqlite::Error::FromSqlConversionFailure(4, rusqlite::types::Type::Text, Box::new(e)))?;
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
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    // The attempt that paid the order once one has (a later duplicate is refunded, not the
    // order's payment); until then the newest.
    order.payment = c
        .query_row(
            &format!(
                "SELECT {ATTEMPT_COLS} FROM payment_attempts a WHERE a.order_id = ?1
                 ORDER BY a.id IS (SELECT paid_attempt_id FROM orders WHERE id = ?1) DESC, a.created_at DESC, a.rowid DESC
                 LIMIT 1"
            ),
            [&order.id],
            attempt_row,
        )
        .optional()?;
    order.tracking = tracking(c, &order.id)?;
    order.refunds = refund_records(c, &order.id)?;
    Ok(Some(order))
}

pub(super) fn release_stock(c: &Connection, order_id: &str) -> rusqlite::Result<()> {
    let lines: Vec<(String, i64)> = c
        .prepare("SELECT product_id, quantity FROM order_lines WHERE order_id = ?1")?
        .query_map([order_id], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<_, _>>()?;
    let version = next_version(c)?;
    for (p, q) in lines {
        c.execute(
            "UPDATE products SET reserved = MAX(reserved - ?1, 0), version = ?2 WHERE id = ?3",
            params![q, version, p],
        )?;
    }
    Ok(())
}

pub(super) fn order_total(c: &Connection, order_id: &str) -> rusqlite::Result<i64> {
    c.query_row("SELECT total_fen FROM orders WHERE id = ?1", [order_id], |x| x.get(0))
}

impl OrderStore for SqliteStore {
    fn place_order(&self, p: &PlaceOrder) -> StoreResult<Created> {
        self.with(|c| {
            let tx = c.transaction()?;
            if let Some((id, hash)) = tx
                .query_row(
                    "SELECT id, request_hash FROM orders WHERE account_id = ?1 AND idempotency_key = ?2",
                    [&p.account_id, &p.idempotency_key],
                    |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)),
                )
                .optional()?
            {
                return if hash == p.request_hash {
                    Ok(Created::Existing(id))
                } else {
                    Err(ApiError::conflict(ErrorCode::IdempotencyConflict, "this idempotency key was used for a different request"))
                };
            }
            let account = account_in(&tx, &p.account_id)?.ok_or_else(ApiError::unauthorized)?;
            let (quota_used_fen, quota_reserved_fen) = match &account.id_number {
                Some(id_number) => quota_usage(&tx, id_number, p.quota_year)?,
                None => (0, 0),
            };
            let read = CartAsRead {
                address: address_in(&tx, &p.account_id, &p.address_id)?,
                items: cart_in(&tx, &p.account_id)?,
                account,
                quota_used_fen,
                quota_reserved_fen,
            };
            let o = orders::order_from_cart(p, read)?;
            // Stock, reserved atomically: the CHECK constraint refuses over-reservation.
            let version = next_version(&tx)?;
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
                &format!(
                    "INSERT INTO orders (id, account_id, status, idempotency_key, request_hash, orderer_name, orderer_id_number, quota_year,
                      address_json, goods_fen, shipping_fen, tax_fen, dutiable_fen, total_fen, full_rate, pay_deadline, created_at, updated_at,
                      sync_seq, order_declared)
                     VALUES (?1,?2,{},?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13,?14,?15,?16,?16,?17,1)",
                    lit(OrderStatus::AwaitingPayment)
                ),
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
            let st = status;
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

    fn close_order(&self, order_id: &str, now: DateTime<Utc>) -> StoreResult<bool> {
        self.with(|c| {
            let tx = c.transaction()?;
            let n = tx.execute(
                "UPDATE orders SET status = ?1 WHERE id = ?2 AND status = ?3",
                params![OrderStatus::Closed, order_id, OrderStatus::AwaitingPayment],
            )?;
            if n == 1 {
                release_stock(&tx, order_id)?;
                tx.execute(
                    &format!(
                        "UPDATE payment_attempts SET status = {}, updated_at = ?1 WHERE order_id = ?2 AND status IN ({})",
                        lit(AttemptStatus::Closed),
                        sql_list(&[AttemptStatus::Started, AttemptStatus::Redirected])
                    ),
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
                "SELECT {ORDER_CORE_COLS} FROM orders WHERE status = {} AND pay_deadline <= ?1 LIMIT 100",
                lit(OrderStatus::AwaitingPayment)
            ))?
            .query_map([ts(now)], core_row)?
            .collect::<Result<_, _>>()?)
        })
    }
}
