//! The money invariants, read from the shop's database and the sandbox's books.
//!
//! [`always`] holds after every step, whatever failed or stopped; [`settled`] holds once the
//! faults are over and the jobs and the notifications have run their course, and then every day
//! of the run reconciles with Alipay's bill.

use std::collections::BTreeMap;

use rusqlite::Connection;

use crate::world::{ANNUAL_LIMIT_FEN, ORDER_LIMIT_FEN, World};

/// Order statuses with money taken and kept (see `OrderStatus::PAID`).
const PAID: [&str; 6] = ["paid", "customs_declared", "held", "cleared", "shipped", "delivered"];

#[derive(Debug, Clone)]
struct Order {
    id: String,
    status: String,
    orderer: String,
    year: i64,
    dutiable: i64,
    total: i64,
    refunded: i64,
    restored: i64,
    full_rate: bool,
    paid_attempt: Option<String>,
    waybill: Option<String>,
}

#[derive(Debug, Clone)]
struct Attempt {
    id: String,
    order_id: String,
    out_trade_no: String,
    amount: i64,
    status: String,
}

#[derive(Debug, Clone)]
struct Refund {
    id: String,
    out_request_no: String,
    order_id: String,
    attempt_id: String,
    amount: i64,
    status: String,
}

/// A trade as the sandbox's books have it.
#[derive(Debug, Clone, Default)]
struct Trade {
    amount: i64,
    paid: bool,
    refunded: i64,
    /// The goods money in the merchant's ledger account from this trade (payments minus refunds).
    kept: i64,
}

struct Shop {
    orders: Vec<Order>,
    attempts: Vec<Attempt>,
    refunds: Vec<Refund>,
    lines: Vec<(String, String, i64)>,
    products: BTreeMap<String, (i64, i64)>,
}

fn read_shop(db: &Connection) -> rusqlite::Result<Shop> {
    let orders = db
        .prepare(
            "SELECT id, status, orderer_id_number, quota_year, dutiable_fen, total_fen, refunded_fen,
                    quota_restored_fen, full_rate, paid_attempt_id, waybill_no FROM orders ORDER BY id",
        )?
        .query_map([], |r| {
            Ok(Order {
                id: r.get(0)?,
                status: r.get(1)?,
                orderer: r.get(2)?,
                year: r.get(3)?,
                dutiable: r.get(4)?,
                total: r.get(5)?,
                refunded: r.get(6)?,
                restored: r.get(7)?,
                full_rate: r.get::<_, i64>(8)? != 0,
                paid_attempt: r.get(9)?,
                waybill: r.get(10)?,
            })
        })?
        .collect::<Result<_, _>>()?;
    let attempts = db
        .prepare("SELECT id, order_id, out_trade_no, amount_fen, status FROM payment_attempts ORDER BY id")?
        .query_map([], |r| {
            Ok(Attempt {
                id: r.get(0)?,
                order_id: r.get(1)?,
                out_trade_no: r.get(2)?,
                amount: r.get(3)?,
                status: r.get(4)?,
            })
        })?
        .collect::<Result<_, _>>()?;
    let refunds = db
        .prepare(
            "SELECT id, order_id, attempt_id, amount_fen, status, out_request_no FROM refunds ORDER BY id",
        )?
        .query_map([], |r| {
            Ok(Refund {
                id: r.get(0)?,
                order_id: r.get(1)?,
                attempt_id: r.get(2)?,
                amount: r.get(3)?,
                status: r.get(4)?,
                out_request_no: r.get(5)?,
            })
        })?
        .collect::<Result<_, _>>()?;
    let lines = db
        .prepare("SELECT order_id, product_id, quantity FROM order_lines")?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
        .collect::<Result<_, _>>()?;
    let products = db
        .prepare("SELECT id, stock, reserved FROM products")?
        .query_map([], |r| Ok((r.get::<_, String>(0)?, (r.get(1)?, r.get(2)?))))?
        .collect::<Result<_, _>>()?;
    Ok(Shop { orders, attempts, refunds, lines, products })
}

/// The same tables read from the shop's PostgreSQL database.
fn read_shop_pg(url: &str) -> Result<Shop, postgres::Error> {
    let mut db = postgres::Client::connect(url, postgres::NoTls)?;
    let mut tx = db.build_transaction().isolation_level(postgres::IsolationLevel::RepeatableRead).start()?;
    let orders = tx
        .query(
            "SELECT id, status, orderer_id_number, quota_year, dutiable_fen, total_fen, refunded_fen,
                    quota_restored_fen, full_rate, paid_attempt_id, waybill_no FROM orders ORDER BY id",
            &[],
        )?
        .iter()
        .map(|r| Order {
            id: r.get(0),
            status: r.get(1),
            orderer: r.get(2),
            year: i64::from(r.get::<_, i32>(3)),
            dutiable: r.get(4),
            total: r.get(5),
            refunded: r.get(6),
            restored: r.get(7),
            full_rate: r.get(8),
            paid_attempt: r.get(9),
            waybill: r.get(10),
        })
        .collect();
    let attempts = tx
        .query(
            "SELECT id, order_id, out_trade_no, amount_fen, status FROM payment_attempts ORDER BY id",
            &[],
        )?
        .iter()
        .map(|r| Attempt {
            id: r.get(0),
            order_id: r.get(1),
            out_trade_no: r.get(2),
            amount: r.get(3),
            status: r.get(4),
        })
        .collect();
    let refunds = tx
        .query(
            "SELECT id, order_id, attempt_id, amount_fen, status, out_request_no FROM refunds ORDER BY id",
            &[],
        )?
        .iter()
        .map(|r| Refund {
            id: r.get(0),
            order_id: r.get(1),
            attempt_id: r.get(2),
            amount: r.get(3),
            status: r.get(4),
            out_request_no: r.get(5),
        })
        .collect();
    let lines = tx
        .query("SELECT order_id, product_id, quantity FROM order_lines", &[])?
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    let products = tx
        .query("SELECT id, stock, reserved FROM products", &[])?
        .iter()
        .map(|r| (r.get::<_, String>(0), (r.get(1), r.get(2))))
        .collect();
    tx.commit()?;
    Ok(Shop { orders, attempts, refunds, lines, products })
}

/// The shop's tables, from whichever database it runs on.
async fn shop_state(w: &World) -> Result<Shop, String> {
    match &w.database {
        None => read_shop(w.shop_db()?).map_err(|e| format!("reading the shop: {e}")),
        Some(url) => {
            let url = url.clone();
            tokio::task::spawn_blocking(move || read_shop_pg(&url))
                .await
                .map_err(|e| e.to_string())?
                .map_err(|e| format!("reading the shop: {e}"))
        }
    }
}

fn read_trades(w: &World) -> Result<(BTreeMap<String, Trade>, haitao_sandbox_api::LedgerCheck), String> {
    let app = w.app.app_id.clone();
    w.sandbox.state.store().sync(|c| {
        let check = haitao_alipay_sandbox::ledger::check(c).map_err(|e| e.to_string())?;
        let rows: Vec<(String, String, String, i64, bool, i64)> = c
            .prepare(
                "SELECT trade_no, out_trade_no, status, cny_fen, paid_at IS NOT NULL, refunded_fen FROM trades
                 WHERE app_id = ?1",
            )
            .and_then(|mut st| {
                st.query_map([&app], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?)))?
                    .collect::<Result<Vec<_>, _>>()
            })
            .map_err(|e| e.to_string())?;
        let mut trades = BTreeMap::new();
        let merchant = haitao_alipay_sandbox::ledger::merchant_account(&app);
        for (trade_no, out, _status, amount, paid, refunded) in rows {
            // The goods money only: installment fees the seller pays move on their own entries.
            let kept: i64 = c
                .query_row(
                    "SELECT COALESCE(SUM(CASE WHEN kind = 'payment' AND to_acct = ?2 THEN amount_fen
                                             WHEN kind = 'refund' AND from_acct = ?2 THEN -amount_fen ELSE 0 END), 0)
                     FROM ledger WHERE trade_no = ?1",
                    [&trade_no, &merchant],
                    |r| r.get(0),
                )
                .map_err(|e| e.to_string())?;
            trades.insert(out, Trade { amount, paid, refunded, kept });
        }
        Ok((trades, check))
    })
}

/// What holds after every step.
pub async fn always(w: &World) -> Result<(), String> {
    if let Some(v) = w.violations.first() {
        return Err(v.clone());
    }
    let s = shop_state(w).await?;
    let (trades, ledger) = read_trades(w)?;
    if !ledger.conserved || !ledger.overdrawn.is_empty() {
        return Err(format!("the sandbox ledger does not balance: {ledger:?}"));
    }
    for (out, t) in &trades {
        if t.kept < 0 || t.kept > t.amount || (t.paid && t.kept != t.amount - t.refunded) {
            return Err(format!(
                "sandbox trade {out}: kept {} of {} (refunded {})",
                t.kept, t.amount, t.refunded
            ));
        }
    }
    let attempts: BTreeMap<&str, &Attempt> = s.attempts.iter().map(|a| (a.id.as_str(), a)).collect();
    for o in &s.orders {
        let paid = PAID.contains(&o.status.as_str());
        match (&o.paid_attempt, paid || o.status == "refunded") {
            (Some(aid), true) => {
                let a = attempts
                    .get(aid.as_str())
                    .ok_or(format!("order {}: paying attempt {aid} missing", o.id))?;
                if a.status != "paid" || a.amount != o.total || a.order_id != o.id {
                    return Err(format!(
                        "order {} ({}): its paying attempt {aid} is {} for {}",
                        o.id, o.status, a.status, a.amount
                    ));
                }
                let t = trades.get(&a.out_trade_no);
                if !t.is_some_and(|t| t.paid && t.amount == o.total) {
                    return Err(format!(
                        "order {} is {} but the gateway has no payment of {} for {}: {t:?}",
                        o.id, o.status, o.total, a.out_trade_no
                    ));
                }
            }
            (None, true) => return Err(format!("order {} is {} without a paying attempt", o.id, o.status)),
            (Some(aid), false) => {
                return Err(format!("order {} is {} with paying attempt {aid}", o.id, o.status));
            }
            (None, false) => {}
        }
        if ["customs_declared", "cleared", "shipped", "delivered"].contains(&o.status.as_str())
            && o.waybill.is_none()
        {
            return Err(format!("order {} is {} without a waybill", o.id, o.status));
        }
        if o.dutiable > ORDER_LIMIT_FEN && !o.full_rate {
            return Err(format!("order {}: dutiable {} over the per-order limit", o.id, o.dutiable));
        }
    }
    // The annual limit per orderer, over orders whose money is kept.
    let mut used: BTreeMap<(&str, i64), i64> = BTreeMap::new();
    for o in s.orders.iter().filter(|o| PAID.contains(&o.status.as_str())) {
        *used.entry((o.orderer.as_str(), o.year)).or_default() += o.dutiable - o.restored;
    }
    for ((who, year), fen) in used {
        if fen > ANNUAL_LIMIT_FEN {
            return Err(format!(
                "orderer {who}: {fen} fen used in {year}, over the annual limit {ANNUAL_LIMIT_FEN}"
            ));
        }
    }
    // Every payment the shop knows of that is not an order's paying attempt has a refund.
    for a in s.attempts.iter().filter(|a| a.status == "paid") {
        let t = trades.get(&a.out_trade_no);
        if !t.is_some_and(|t| t.paid && t.amount == a.amount) {
            return Err(format!("attempt {} is paid at the shop, not at the gateway: {t:?}", a.id));
        }
        let paying = s.orders.iter().any(|o| o.paid_attempt.as_deref() == Some(a.id.as_str()));
        let refunded: i64 =
            s.refunds.iter().filter(|r| r.attempt_id == a.id && r.status != "failed").map(|r| r.amount).sum();
        if !paying && refunded < a.amount {
            return Err(format!(
                "attempt {} (order {}) was paid, is not the order's payment, and only {refunded} of {} is being refunded",
                a.id, a.order_id, a.amount
            ));
        }
    }
    // The shop never counts a refund the gateway did not make.
    for a in &s.attempts {
        let done: i64 = s
            .refunds
            .iter()
            .filter(|r| r.attempt_id == a.id && r.status == "succeeded")
            .map(|r| r.amount)
            .sum();
        let at_gateway = trades.get(&a.out_trade_no).map(|t| t.refunded).unwrap_or(0);
        if done > at_gateway {
            return Err(format!(
                "attempt {}: the shop counts {done} refunded, the gateway {at_gateway}",
                a.id
            ));
        }
    }
    // Stock: on hand + sold = initial; reserved = what open orders hold.
    for (pid, initial) in &w.initial_stock {
        let (stock, reserved) = s.products.get(pid).copied().unwrap_or_default();
        let mut sold = 0;
        let mut held = 0;
        for (oid, _, q) in s.lines.iter().filter(|(_, p, _)| p == pid) {
            match s.orders.iter().find(|o| &o.id == oid) {
                Some(o) if o.paid_attempt.is_some() => sold += q,
                Some(o) if o.status == "awaiting_payment" => held += q,
                _ => {}
            }
        }
        if stock + sold != *initial || reserved != held || reserved > stock || reserved < 0 {
            return Err(format!(
                "stock of {pid}: on hand {stock}, reserved {reserved}, sold {sold}, held by open orders {held}, initially {initial}"
            ));
        }
    }
    Ok(())
}

/// What holds once everything has settled.
pub async fn settled(w: &World) -> Result<(), String> {
    let s = shop_state(w).await?;
    let (trades, _) = read_trades(w)?;
    for r in &s.refunds {
        // A refund of money the shop must not keep goes through in the end; a buyer's request
        // may end refused (the buyer sees it), never pending.
        let automatic = r.out_request_no.starts_with(haitao_shop::store::AUTOMATIC_REFUND_PREFIX);
        if r.status == "pending" || (automatic && r.status != "succeeded") {
            return Err(format!(
                "refund {} ({}) of {} ({}) is {}",
                r.id, r.out_request_no, r.amount, r.order_id, r.status
            ));
        }
    }
    for o in &s.orders {
        if o.status == "awaiting_payment" {
            return Err(format!("order {} still awaits payment past its deadline", o.id));
        }
    }
    let by_out: BTreeMap<&str, &Attempt> = s.attempts.iter().map(|a| (a.out_trade_no.as_str(), a)).collect();
    for (out, t) in &trades {
        let Some(a) = by_out.get(out.as_str()) else {
            return Err(format!("the gateway has trade {out} the shop never started"));
        };
        if t.paid != (a.status == "paid") {
            return Err(format!(
                "trade {out}: paid at the gateway {}, attempt {} at the shop {}",
                t.paid, a.id, a.status
            ));
        }
        let order = s.orders.iter().find(|o| o.id == a.order_id).ok_or("attempt without order")?;
        let paying = order.paid_attempt.as_deref() == Some(a.id.as_str());
        let expected = if paying { order.total - order.refunded } else { 0 };
        if t.kept != expected {
            return Err(format!(
                "trade {out} ({} order {} {}): the merchant keeps {} at the gateway, the shop says {expected}",
                if paying { "paying" } else { "other" },
                order.id,
                order.status,
                t.kept
            ));
        }
    }
    for a in s.attempts.iter().filter(|a| a.status == "paid") {
        if !trades.get(&a.out_trade_no).is_some_and(|t| t.paid) {
            return Err(format!("attempt {} is paid at the shop only", a.id));
        }
    }
    reconciles(w).await
}

/// Every day of the run reconciles with Alipay's daily bill with no difference: each payment and
/// refund the gateway made is in the books, for its amount, on its day, and nothing more. The
/// clocks move on a day first, so the last day's bill is out.
async fn reconciles(w: &World) -> Result<(), String> {
    let by = chrono::Duration::days(1);
    w.shop_clock.advance(by);
    w.sandbox.state.advance_clock(by);
    let shanghai = haitao_alipay::time::shanghai();
    let today = haitao_alipay::time::Clock::now(&w.sandbox_clock).with_timezone(&shanghai).date_naive();
    let mut day = crate::world::epoch().with_timezone(&shanghai).date_naive();
    while day < today {
        match haitao_shop::reconcile::reconcile_day(w.shop(), day).await {
            Ok(r) if r.differences.is_empty() => {}
            Ok(r) => return Err(format!("Alipay's bill of {day} and the books differ: {:?}", r.differences)),
            Err(e) => return Err(format!("reconciling {day}: {e}")),
        }
        day = day.succ_opt().ok_or("the calendar ended")?;
    }
    Ok(())
}
