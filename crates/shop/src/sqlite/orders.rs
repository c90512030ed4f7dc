//! Orders in SQLite: the cart, orders, payment attempts and notifications, refunds, customs and
//! logistics.

use super::*;

fn insert_tracking(tx: &Connection, order_id: &str, e: &TrackingEvent) -> Result<(), ApiError> {
    let seq: i64 = tx.query_row(
        "SELECT COALESCE(MAX(seq), 0) + 1 FROM tracking_events WHERE order_id = ?1",
        [order_id],
        |r| r.get(0),
    )?;
    tx.execute(
        "INSERT INTO tracking_events (order_id, seq, at, stage, desc_zh, desc_en, loc_zh, loc_en) VALUES (?1,?2,?3,?4,?5,?6,?7,?8)",
        params![order_id, seq, ts(e.at), e.stage, e.description.zh, e.description.en, e.location.zh, e.location.en],
    )?;
    Ok(())
}

const ORDER_CORE_COLS: &str = "id, account_id, status, total_fen, dutiable_fen, refunded_fen, orderer_name, orderer_id_number, \
     quota_year, pay_deadline, paid_at, paid_attempt_id, identity_check, declare_seq, hold_reason, waybill_no";

fn core_row(r: &Row<'_>) -> rusqlite::Result<OrderCore> {
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

const ATTEMPT_COLS: &str = "id, order_id, out_trade_no, method, mode, amount_fen, status, failure, cashier_url, qr_code, \
     return_url, trade_no, created_at, updated_at, expires_at";

fn attempt_row(r: &Row<'_>) -> rusqlite::Result<AttemptRow> {
    let id: String = r.get(0)?;
    in_row("payment_attempts", &id, r, || {
        Ok(AttemptRow {
            order_id: r.get(1)?,
            out_trade_no: r.get(2)?,
            method: r.get(3)?,
            mode: r.get(4)?,
            amount: cny(r.get(5)?),
            status: r.get(6)?,
            failure: r.get(7)?,
            cashier_url: r.get(8)?,
            qr_code: r.get(9)?,
            return_url: r.get(10)?,
            trade_no: r.get(11)?,
            created_at: r.get::<_, Stamp>(12)?.0,
            updated_at: r.get::<_, Stamp>(13)?.0,
            expires_at: r.get::<_, Stamp>(14)?.0,
            id: id.clone(),
        })
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
    order.payment = c
        .query_row(
            &format!("SELECT {ATTEMPT_COLS} FROM payment_attempts WHERE order_id = ?1 ORDER BY created_at DESC, rowid DESC LIMIT 1"),
            [&order.id],
            attempt_row,
        )
        .optional()?
        .map(|a| a.wire());
    order.tracking = tracking(c, &order.id)?;
    order.refunds = refund_records(c, &order.id)?;
    Ok(Some(order))
}

fn tracking(c: &Connection, order_id: &str) -> Result<Vec<TrackingEvent>, ApiError> {
    Ok(c.prepare("SELECT at, stage, desc_zh, desc_en, loc_zh, loc_en, seq FROM tracking_events WHERE order_id = ?1 ORDER BY seq")?
        .query_map([order_id], |r| {
            let key = format!("{order_id} event {}", r.get::<_, i64>(6)?);
            in_row("tracking_events", &key, r, || {
                Ok(TrackingEvent {
                    at: r.get::<_, Stamp>(0)?.0,
                    stage: r.get(1)?,
                    description: Localized { zh: r.get(2)?, en: r.get(3)? },
                    location: Localized { zh: r.get(4)?, en: r.get(5)? },
                })
            })
        })?
        .collect::<Result<_, _>>()?)
}

const REFUND_COLS: &str = "id, order_id, attempt_id, out_request_no, amount_fen, reason, status";

/// An order (as `o`) held for a failed inspection and still owed money with nothing under way;
/// `?1` is the time before which the last refused inspection refund must have been refused, `?2`
/// how many refused inspection refunds stop the retries.
static INSPECTION_OWED: LazyLock<String> = LazyLock::new(|| {
    let (held, failed_inspection) = (lit(OrderStatus::Held), lit(HoldReason::InspectionFailed));
    let (pending, failed) = (lit(RefundStatus::Pending), lit(RefundStatus::Failed));
    format!(
        "o.status = {held} AND o.hold_reason = {failed_inspection}
     AND o.paid_attempt_id IS NOT NULL AND o.refunded_fen < o.total_fen
     AND NOT EXISTS (SELECT 1 FROM refunds r WHERE r.order_id = o.id AND r.status = {pending})
     AND NOT EXISTS (SELECT 1 FROM refunds r WHERE r.order_id = o.id AND r.status = {failed}
                     AND r.out_request_no LIKE 'INSP%' AND r.updated_at > ?1)
     AND (SELECT COUNT(*) FROM refunds r WHERE r.order_id = o.id AND r.status = {failed}
          AND r.out_request_no LIKE 'INSP%') < ?2"
    )
});

/// Whether an order's parcel is on its way (declared, cleared or shipped), so logistics may move it.
fn in_transit(c: &Connection, order_id: &str) -> rusqlite::Result<bool> {
    c.query_row(
        &format!(
            "SELECT EXISTS (SELECT 1 FROM orders WHERE id = ?1 AND status IN ({}))",
            sql_list(OrderStatus::IN_TRANSIT)
        ),
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
        &format!(
            "SELECT COALESCE(SUM(amount_fen), 0) FROM refunds
             WHERE order_id = ?1 AND attempt_id = ?2 AND status != {}",
            lit(RefundStatus::Failed)
        ),
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
            r.status,
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
    let id: String = r.get(0)?;
    in_row("refunds", &id, r, || {
        Ok(RefundRow {
            order_id: r.get(1)?,
            attempt_id: r.get(2)?,
            out_request_no: r.get(3)?,
            amount: cny(r.get(4)?),
            reason: r.get(5)?,
            status: r.get(6)?,
            id: id.clone(),
        })
    })
}

fn refund_records(c: &Connection, order_id: &str) -> Result<Vec<RefundRecord>, ApiError> {
    Ok(c.prepare("SELECT id, amount_fen, reason, status, created_at FROM refunds WHERE order_id = ?1 ORDER BY created_at")?
        .query_map([order_id], |r| {
            let id: String = r.get(0)?;
            in_row("refunds", &id, r, || {
                Ok(RefundRecord {
                    amount: cny(r.get(1)?),
                    reason: r.get(2)?,
                    status: r.get(3)?,
                    created_at: r.get::<_, Stamp>(4)?.0,
                    id: id.clone(),
                })
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

    fn insert_attempt(&self, a: &AttemptRow) -> StoreResult<()> {
        self.with(|c| {
            let tx = c.transaction()?;
            tx.execute(
                &format!("INSERT INTO payment_attempts ({ATTEMPT_COLS}) VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13,?14,?15)"),
                params![
                    a.id,
                    a.order_id,
                    a.out_trade_no,
                    a.method,
                    a.mode,
                    a.amount.minor(),
                    a.status,
                    a.failure,
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
                &format!(
                    "UPDATE payment_attempts SET status = ?1, failure = ?2, cashier_url = ?3, qr_code = ?4, trade_no = COALESCE(?5, trade_no),
                     updated_at = ?6 WHERE id = ?7 AND status != {}",
                    lit(AttemptStatus::Paid)
                ),
                params![
                    a.status,
                    a.failure,
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
                "SELECT {ATTEMPT_COLS} FROM payment_attempts WHERE status IN ({}) AND updated_at <= ?1
                 ORDER BY updated_at LIMIT 200",
                sql_list(AttemptStatus::OPEN)
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
                    "UPDATE orders SET status = ?1, paid_at = ?2, paid_attempt_id = ?3 WHERE id = ?4",
                    params![OrderStatus::Paid, ts(now), attempt_id, o.id],
                )?;
                PaymentApplied::Paid
            } else {
                PaymentApplied::OrderGone
            };
            if outcome != PaymentApplied::AlreadyApplied {
                tx.execute(
                    "UPDATE payment_attempts SET status = ?1, failure = NULL, trade_no = ?2, updated_at = ?3 WHERE id = ?4",
                    params![AttemptStatus::Paid, trade_no, ts(now), attempt_id],
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
                "SELECT {REFUND_COLS} FROM refunds WHERE status = {} ORDER BY created_at LIMIT 100",
                lit(RefundStatus::Pending)
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
                "UPDATE refunds SET status = ?1, updated_at = ?2 WHERE id = ?3",
                params![RefundStatus::Succeeded, ts(now), refund_id],
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
                     status = CASE WHEN ?1 >= total_fen THEN ?3 ELSE status END WHERE id = ?4",
                    params![new_refunded, restored, OrderStatus::Refunded, r.order_id],
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
                "UPDATE refunds SET status = ?1, updated_at = ?2 WHERE id = ?3 AND status = ?4",
                params![RefundStatus::Failed, ts(now), refund_id, RefundStatus::Pending],
            )?;
            Ok(())
        })
    }

    fn orders_to_declare(&self) -> StoreResult<Vec<OrderCore>> {
        self.with(|c| {
            Ok(c.prepare(&format!(
                "SELECT {ORDER_CORE_COLS} FROM orders WHERE status = {} AND payment_declared = 0 LIMIT 100",
                lit(OrderStatus::Paid)
            ))?
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
                Some(false) => (OrderStatus::Held, Some(HoldReason::OrdererNotPayer)),
                _ => (OrderStatus::CustomsDeclared, None),
            };
            let changed = tx.execute(
                "UPDATE orders SET payment_declared = 1, declaration_no = ?1, identity_check = COALESCE(?2, identity_check),
                 status = ?3, hold_reason = ?4 WHERE id = ?5 AND status = ?6 AND payment_declared = 0",
                params![declaration_no, identity_check.map(i64::from), status, hold, order_id, OrderStatus::Paid],
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
                 hold_reason = NULL, status = ?4, declare_seq = declare_seq + 1 WHERE id = ?3 AND status = ?5",
                params![name, id_number, order_id, OrderStatus::Paid, OrderStatus::Held],
            )?;
            touch(&tx, order_id, now)?;
            tx.commit()?;
            Ok(())
        })
    }

    fn orders_in_transit(&self) -> StoreResult<Vec<OrderCore>> {
        self.with(|c| {
            Ok(c.prepare(&format!(
                "SELECT {ORDER_CORE_COLS} FROM orders WHERE status IN ({}) LIMIT 500",
                sql_list(OrderStatus::IN_TRANSIT)
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
                    params![st, hold, order_id],
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
                params![OrderStatus::Held, HoldReason::InspectionFailed, order_id],
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
                "SELECT {ORDER_CORE_COLS} FROM orders o WHERE {} LIMIT 100",
                *INSPECTION_OWED
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
                &format!("SELECT EXISTS (SELECT 1 FROM orders o WHERE {} AND o.id = ?3)", *INSPECTION_OWED),
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
