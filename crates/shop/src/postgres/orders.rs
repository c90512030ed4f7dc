//! Orders in PostgreSQL: creation with its stock and quota checks, reading, closing, and the stock
//! an order holds.

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

pub(super) fn core_row(r: &Row) -> R<OrderCore> {
    let at = At::keyed(r, "orders", 0)?;
    Ok(OrderCore {
        account_id: at.get(1)?,
        status: at.code(2)?,
        total: cny(at.get(3)?),
        dutiable: cny(at.get(4)?),
        refunded: cny(at.get(5)?),
        orderer_name: at.get(6)?,
        orderer_id_number: at.get(7)?,
        quota_year: at.get(8)?,
        pay_deadline: at.get(9)?,
        paid_at: at.get(10)?,
        paid_attempt_id: at.get(11)?,
        identity_check: at.get(12)?,
        declare_seq: at.get(13)?,
        hold_reason: at.opt_code(14)?,
        waybill_no: at.get(15)?,
        id: at.key().to_owned(),
    })
}

pub(super) fn order_core_in(tx: &mut Tx<'_>, id: &str) -> R<Option<OrderCore>> {
    tx.query_opt(&format!("SELECT {ORDER_CORE_COLS} FROM orders WHERE id = $1"), &[&id])?
        .as_ref()
        .map(core_row)
        .transpose()
}

/// The next change number of an account's orders. Numbered per account (the changes feed is read
/// per account), so that orders of different buyers do not contend for one counter.
fn next_sync(tx: &mut Tx<'_>, account_id: &str) -> R<i64> {
    Ok(tx
        .query_one("SELECT COALESCE(MAX(sync_seq), 0) + 1 FROM orders WHERE account_id = $1", &[&account_id])?
        .try_get(0)?)
}

/// Marks an order changed at `now`, for its buyer's changes feed.
pub(super) fn touch(tx: &mut Tx<'_>, order_id: &str, now: DateTime<Utc>) -> R<()> {
    let Some(row) = tx.query_opt("SELECT account_id FROM orders WHERE id = $1", &[&order_id])? else {
        return Ok(());
    };
    let account_id: String = row.try_get(0)?;
    let seq = next_sync(tx, &account_id)?;
    tx.execute(
        "UPDATE orders SET updated_at = $1, sync_seq = $2 WHERE id = $3",
        &[&ts(now), &seq, &order_id],
    )?;
    Ok(())
}

pub(super) fn load_order(tx: &mut Tx<'_>, account_id: Option<&str>, id: &str) -> R<Option<Order>> {
    let row = tx.query_opt(
        "SELECT id, status, address_json, goods_fen, shipping_fen, tax_fen, dutiable_fen, total_fen, refunded_fen,
                orderer_name, orderer_id_number, pay_deadline, created_at, updated_at, identity_check, declaration_no,
                order_declared, payment_declared, waybill_declared, hold_reason, waybill_no, carrier
         FROM orders WHERE id = $1 AND ($2::TEXT IS NULL OR account_id = $2)",
        &[&id, &account_id],
    )?;
    let Some(r) = row else { return Ok(None) };
    let at = At::keyed(&r, "orders", 0)?;
    let address_json: String = at.get(2)?;
    let address: Address = serde_json::from_str(&address_json).map_err(|e| {
        ApiError::internal(DamagedRow {
            table: "orders",
            key: id.to_owned(),
            column: "address_json".into(),
            source: Box::new(e),
        })
    })?;
    let status: OrderStatus = at.code(1)?;
    let waybill = match (at.get::<Option<String>>(20)?, at.opt_code::<Carrier>(21)?) {
        (Some(number), Some(carrier)) => Some(Waybill { number, carrier }),
        _ => None,
    };
    let mut order = Order {
        id: at.key().to_owned(),
        status,
        lines: Vec::new(),
        totals: Totals {
            goods: cny(at.get(3)?),
            shipping: cny(at.get(4)?),
            tax: cny(at.get(5)?),
            dutiable: cny(at.get(6)?),
            total: cny(at.get(7)?),
        },
        address,
        orderer: Orderer { name: at.get(9)?, id_number_masked: mask_id(&at.get::<String>(10)?) },
        payment: None,
        customs: CustomsInfo {
            identity_check: at.get(14)?,
            declaration_no: at.get(15)?,
            order_declared: at.get(16)?,
            payment_declared: at.get(17)?,
            waybill_declared: at.get(18)?,
            hold_reason: at.opt_code(19)?,
        },
        waybill,
        tracking: Vec::new(),
        refunds: Vec::new(),
        refunded: cny(at.get(8)?),
        paid: status.is_paid(),
        invoice_available: status.is_paid() || status == OrderStatus::Refunded,
        pay_deadline: at.get(11)?,
        created_at: at.get(12)?,
        updated_at: at.get(13)?,
    };
    let lines = tx.query(
        "SELECT product_id, name_zh, name_en, image, currency, unit_price_minor, unit_price_cny_fen, quantity, goods_fen,
                shipping_fen, tax_fen, tax_rate_ppm, total_fen, line_no FROM order_lines WHERE order_id = $1 ORDER BY line_no",
        &[&order.id],
    )?;
    for r in &lines {
        let line_no: i64 = r.try_get(13)?;
        let at = At::new(r, "order_lines", format!("{} line {line_no}", order.id));
        let cur: String = at.get(4)?;
        let cur: Currency = cur.parse().map_err(|e: haitao_alipay::money::MoneyError| at.damaged(4, e))?;
        order.lines.push(OrderLine {
            product_id: at.get(0)?,
            name: Localized { zh: at.get(1)?, en: at.get(2)? },
            image: at.get(3)?,
            pricing: LinePricing {
                unit_price: Money::from_minor(at.get(5)?, cur),
                unit_price_cny: cny(at.get(6)?),
                quantity: at.get(7)?,
                goods_cny: cny(at.get(8)?),
                shipping_cny: cny(at.get(9)?),
                tax_cny: cny(at.get(10)?),
                tax_rate_ppm: at.get(11)?,
                total_cny: cny(at.get(12)?),
            },
        });
    }
    // The attempt that paid the order once one has (a later duplicate is refunded, not the
    // order's payment); until then the newest.
    order.payment = tx
        .query_opt(
            &format!(
                "SELECT {ATTEMPT_COLS} FROM payment_attempts a WHERE a.order_id = $1
                 ORDER BY a.id IS NOT DISTINCT FROM (SELECT paid_attempt_id FROM orders WHERE id = $1) DESC,
                          a.created_at DESC, a.seq DESC
                 LIMIT 1"
            ),
            &[&order.id],
        )?
        .as_ref()
        .map(attempt_row)
        .transpose()?;
    order.tracking = tracking(tx, &order.id)?;
    order.refunds = refund_records(tx, &order.id)?;
    Ok(Some(order))
}

fn lines_of(tx: &mut Tx<'_>, order_id: &str) -> R<Vec<(String, i64)>> {
    tx.query(
        "SELECT product_id, quantity FROM order_lines WHERE order_id = $1 ORDER BY line_no",
        &[&order_id],
    )?
    .iter()
    .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
    .collect()
}

pub(super) fn release_stock(tx: &mut Tx<'_>, order_id: &str) -> R<()> {
    let lines = lines_of(tx, order_id)?;
    let version = next_version(tx)?;
    for (p, q) in lines {
        tx.execute(
            "UPDATE products SET reserved = GREATEST(reserved - $1, 0), version = $2 WHERE id = $3",
            &[&q, &version, &p],
        )?;
    }
    Ok(())
}

/// Reserved stock of a paid order becomes sold stock.
pub(super) fn sell_stock(tx: &mut Tx<'_>, order_id: &str) -> R<()> {
    let lines = lines_of(tx, order_id)?;
    let version = next_version(tx)?;
    for (p, q) in lines {
        tx.execute(
            "UPDATE products SET stock = stock - $1, reserved = reserved - $1, version = $2 WHERE id = $3",
            &[&q, &version, &p],
        )?;
    }
    Ok(())
}

pub(super) fn order_total(tx: &mut Tx<'_>, order_id: &str) -> R<i64> {
    Ok(tx.query_one("SELECT total_fen FROM orders WHERE id = $1", &[&order_id])?.try_get(0)?)
}

impl OrderStore for PgStore {
    fn place_order(&self, p: &PlaceOrder) -> StoreResult<Created> {
        self.with_books(|tx| {
            if let Some(r) = tx.query_opt(
                "SELECT id, request_hash FROM orders WHERE account_id = $1 AND idempotency_key = $2",
                &[&p.account_id, &p.idempotency_key],
            )? {
                let (id, hash): (String, String) = (r.try_get(0)?, r.try_get(1)?);
                return if hash == p.request_hash {
                    Ok(Created::Existing(id))
                } else {
                    Err(Fail::Api(ApiError::conflict(
                        ErrorCode::IdempotencyConflict,
                        "this idempotency key was used for a different request",
                    )))
                };
            }
            let account = account_in(tx, &p.account_id)?.ok_or_else(ApiError::unauthorized)?;
            let (quota_used_fen, quota_reserved_fen) = match &account.id_number {
                Some(id_number) => quota_usage(tx, id_number, p.quota_year)?,
                None => (0, 0),
            };
            let read = CartAsRead {
                address: address_in(tx, &p.account_id, &p.address_id)?,
                items: cart_in(tx, &p.account_id)?,
                account,
                quota_used_fen,
                quota_reserved_fen,
            };
            let o = orders::order_from_cart(p, read)?;
            // Stock, reserved atomically: the CHECK constraint refuses over-reservation.
            let version = next_version(tx)?;
            for (p, q) in &o.lines {
                let n = tx.execute(
                    "UPDATE products SET reserved = reserved + $1, version = $2 WHERE id = $3 AND stock - reserved >= $1",
                    &[q, &version, &p.id],
                )?;
                if n == 0 {
                    return Err(Fail::Api(ApiError::conflict(
                        ErrorCode::OutOfStock,
                        format!("not enough stock for {}", p.id),
                    )));
                }
            }
            let t = &o.priced.totals;
            let seq = next_sync(tx, &o.account_id)?;
            let address = serde_json::to_string(&o.address).map_err(ApiError::internal)?;
            tx.execute(
                &format!(
                    "INSERT INTO orders (id, account_id, status, idempotency_key, request_hash, orderer_name, orderer_id_number, quota_year,
                      address_json, goods_fen, shipping_fen, tax_fen, dutiable_fen, total_fen, full_rate, pay_deadline, created_at, updated_at,
                      sync_seq, order_declared)
                     VALUES ($1,$2,{},$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15,$16,$16,$17,TRUE)",
                    lit(OrderStatus::AwaitingPayment)
                ),
                &[
                    &o.id,
                    &o.account_id,
                    &o.idempotency_key,
                    &o.request_hash,
                    &o.orderer_name,
                    &o.orderer_id_number,
                    &o.quota_year,
                    &address,
                    &t.goods.minor(),
                    &t.shipping.minor(),
                    &t.tax.minor(),
                    &t.dutiable.minor(),
                    &t.total.minor(),
                    &o.priced.full_rate,
                    &ts(o.pay_deadline),
                    &ts(o.now),
                    &seq,
                ],
            )?;
            for (i, ((p, _), l)) in o.lines.iter().zip(&o.priced.lines).enumerate() {
                tx.execute(
                    "INSERT INTO order_lines (order_id, line_no, product_id, name_zh, name_en, image, currency, unit_price_minor,
                      unit_price_cny_fen, quantity, goods_fen, shipping_fen, tax_fen, tax_rate_ppm, total_fen)
                     VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15)",
                    &[
                        &o.id,
                        &i64::try_from(i).unwrap_or(0),
                        &p.id,
                        &p.name.zh,
                        &p.name.en,
                        &p.image,
                        &p.price.currency().code(),
                        &p.price.minor(),
                        &l.unit_price_cny.minor(),
                        &l.quantity,
                        &l.goods_cny.minor(),
                        &l.shipping_cny.minor(),
                        &l.tax_cny.minor(),
                        &l.tax_rate_ppm,
                        &l.total_cny.minor(),
                    ],
                )?;
            }
            tx.execute("DELETE FROM cart_items WHERE account_id = $1", &[&o.account_id])?;
            Ok(Created::New(o.id.clone()))
        })
    }

    fn order(&self, account_id: Option<&str>, id: &str) -> StoreResult<Option<Order>> {
        self.with(|tx| load_order(tx, account_id, id))
    }

    fn order_core(&self, id: &str) -> StoreResult<Option<OrderCore>> {
        self.with(|tx| order_core_in(tx, id))
    }

    fn orders(
        &self,
        account_id: &str,
        status: Option<OrderStatus>,
        page: u32,
        per_page: u32,
    ) -> StoreResult<(Vec<Order>, i64)> {
        let st = status.map(|s| s.as_str());
        self.with(|tx| {
            let total: i64 = tx
                .query_one(
                    "SELECT COUNT(*) FROM orders WHERE account_id = $1 AND ($2::TEXT IS NULL OR status = $2)",
                    &[&account_id, &st],
                )?
                .try_get(0)?;
            let ids: Vec<String> = tx
                .query(
                    "SELECT id FROM orders WHERE account_id = $1 AND ($2::TEXT IS NULL OR status = $2)
                     ORDER BY created_at DESC, id DESC LIMIT $3 OFFSET $4",
                    &[
                        &account_id,
                        &st,
                        &i64::from(per_page),
                        &(i64::from(page.saturating_sub(1)) * i64::from(per_page)),
                    ],
                )?
                .iter()
                .map(|r| r.try_get(0))
                .collect::<Result<_, _>>()?;
            let mut out = Vec::with_capacity(ids.len());
            for id in ids {
                if let Some(o) = load_order(tx, Some(account_id), &id)? {
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
        self.with(|tx| {
            let rows: Vec<(String, i64)> = tx
                .query(
                    "SELECT id, sync_seq FROM orders WHERE account_id = $1 AND sync_seq > $2 ORDER BY sync_seq LIMIT $3",
                    &[&account_id, &since, &(i64::from(limit) + 1)],
                )?
                .iter()
                .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
                .collect::<R<_>>()?;
            let more = rows.len() > usize::try_from(limit).unwrap_or(usize::MAX);
            let mut cursor = since;
            let mut out = Vec::new();
            for (id, seq) in rows.into_iter().take(usize::try_from(limit).unwrap_or(usize::MAX)) {
                if let Some(o) = load_order(tx, Some(account_id), &id)? {
                    out.push(o);
                }
                cursor = seq;
            }
            Ok((out, cursor, more))
        })
    }

    fn close_order(&self, order_id: &str, now: DateTime<Utc>) -> StoreResult<bool> {
        self.with_books(|tx| {
            let n = tx.execute(
                "UPDATE orders SET status = $1 WHERE id = $2 AND status = $3",
                &[&OrderStatus::Closed.as_str(), &order_id, &OrderStatus::AwaitingPayment.as_str()],
            )?;
            if n == 1 {
                release_stock(tx, order_id)?;
                tx.execute(
                    &format!(
                        "UPDATE payment_attempts SET status = {}, updated_at = $1 WHERE order_id = $2 AND status IN ({})",
                        lit(AttemptStatus::Closed),
                        sql_list(&[AttemptStatus::Started, AttemptStatus::Redirected])
                    ),
                    &[&ts(now), &order_id],
                )?;
                touch(tx, order_id, now)?;
            }
            Ok(n == 1)
        })
    }

    fn overdue_orders(&self, now: DateTime<Utc>) -> StoreResult<Vec<OrderCore>> {
        self.with(|tx| {
            tx.query(
                &format!(
                    "SELECT {ORDER_CORE_COLS} FROM orders WHERE status = {} AND pay_deadline <= $1 ORDER BY pay_deadline LIMIT 100",
                    lit(OrderStatus::AwaitingPayment)
                ),
                &[&ts(now)],
            )?
            .iter()
            .map(core_row)
            .collect()
        })
    }
}
