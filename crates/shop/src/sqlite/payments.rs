//! Payment attempts and Alipay notifications in SQLite, and a confirmed payment applied to its order.

use super::fulfilment::insert_tracking;
use super::orders::{ORDER_CORE_COLS, core_row, touch};
use super::products::next_version;
use super::refunds::refund_the_rest;
use super::*;
use crate::domain::payments::{self, NotificationEffect};
use haitao_alipay::inbound::{Notify, Rejection};
use rusqlite::Transaction;

pub(super) const ATTEMPT_COLS: &str = "id, order_id, out_trade_no, method, mode, amount_fen, status, failure, cashier_url, qr_code, \
     return_url, trade_no, created_at, updated_at, expires_at";

pub(super) fn attempt_row(r: &Row<'_>) -> rusqlite::Result<PaymentAttempt> {
    let id: String = r.get(0)?;
    in_row("payment_attempts", &id, r, || {
        Ok(PaymentAttempt {
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

impl PaymentStore for SqliteStore {
    fn insert_attempt(&self, a: &PaymentAttempt) -> StoreResult<()> {
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

    fn update_attempt(&self, a: &PaymentAttempt) -> StoreResult<()> {
        self.with(|c| {
            let tx = c.transaction()?;
            update_attempt_in(&tx, a)?;
            tx.commit()?;
            Ok(())
        })
    }

    fn attempt(&self, id: &str) -> StoreResult<Option<PaymentAttempt>> {
        self.with(|c| {
            Ok(c.query_row(
                &format!("SELECT {ATTEMPT_COLS} FROM payment_attempts WHERE id = ?1"),
                [id],
                attempt_row,
            )
            .optional()?)
        })
    }

    fn attempts_of(&self, order_id: &str) -> StoreResult<Vec<PaymentAttempt>> {
        self.with(|c| {
            Ok(c.prepare(&format!(
                "SELECT {ATTEMPT_COLS} FROM payment_attempts WHERE order_id = ?1 ORDER BY created_at, rowid"
            ))?
            .query_map([order_id], attempt_row)?
            .collect::<Result<_, _>>()?)
        })
    }

    fn open_attempts(&self, before: DateTime<Utc>) -> StoreResult<Vec<PaymentAttempt>> {
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

    fn ended_attempts_still_payable(
        &self,
        margin: chrono::Duration,
        before: DateTime<Utc>,
    ) -> StoreResult<Vec<PaymentAttempt>> {
        self.with(|c| {
            let margin = format!("+{} seconds", margin.num_seconds());
            Ok(c.prepare(&format!(
                "SELECT {ATTEMPT_COLS} FROM payment_attempts WHERE status IN ({})
                 AND julianday(updated_at) < julianday(expires_at, ?1)
                 AND COALESCE(watched_at, updated_at) <= ?2
                 ORDER BY COALESCE(watched_at, updated_at) LIMIT 200",
                sql_list(&[AttemptStatus::Failed, AttemptStatus::Closed])
            ))?
            .query_map(params![margin, ts(before)], attempt_row)?
            .collect::<Result<_, _>>()?)
        })
    }

    fn looked_at(&self, attempt_id: &str, answered: bool, now: DateTime<Utc>) -> StoreResult<()> {
        self.with(|c| {
            c.execute(
                "UPDATE payment_attempts SET watched_at = ?1, updated_at = CASE WHEN ?4 THEN ?1 ELSE updated_at END
                 WHERE id = ?2 AND status != ?3",
                params![ts(now), attempt_id, AttemptStatus::Paid, answered],
            )?;
            Ok(())
        })
    }

    fn apply_payment(
        &self,
        attempt_id: &str,
        trade_no: &str,
        gateway_paid_at: Option<DateTime<Utc>>,
        paid_event: &TrackingEvent,
        refund: RefundRow,
        now: DateTime<Utc>,
    ) -> StoreResult<(PaymentApplied, Option<RefundRow>)> {
        self.with(|c| {
            let tx = c.transaction()?;
            let a = tx
                .query_row(
                    &format!("SELECT {ATTEMPT_COLS} FROM payment_attempts WHERE id = ?1"),
                    [attempt_id],
                    attempt_row,
                )
                .optional()?
                .ok_or_else(|| ApiError::not_found("payment attempt"))?;
            let applied = apply_payment_in(&tx, &a, trade_no, gateway_paid_at, paid_event, refund, now)?;
            tx.commit()?;
            Ok(applied)
        })
    }

    fn apply_notification(
        &self,
        n: Notify,
        paid_event: &TrackingEvent,
        refund: RefundRow,
        now: DateTime<Utc>,
    ) -> StoreResult<NotificationApplied> {
        self.with(|c| {
            let tx = c.transaction()?;
            let attempt = tx
                .query_row(
                    &format!("SELECT {ATTEMPT_COLS} FROM payment_attempts WHERE out_trade_no = ?1"),
                    [&n.out_trade_no],
                    attempt_row,
                )
                .optional()?;
            let (n, effect) = match payments::on_notification(n, attempt.as_ref(), now) {
                Ok(checked) => checked,
                Err(rejection) => return Ok(NotificationApplied::Rejected(rejection)),
            };
            let Some(attempt) = attempt else { return Ok(NotificationApplied::Rejected(Rejection::UnknownOrder(n.out_trade_no))) };
            let payment = match effect {
                NotificationEffect::ApplyPayment { trade_no } => {
                    Some(apply_payment_in(&tx, &attempt, &trade_no, n.gmt_payment, paid_event, refund, now)?)
                }
                NotificationEffect::CloseAttempt(closed) => {
                    update_attempt_in(&tx, &closed)?;
                    None
                }
                NotificationEffect::Nothing => None,
            };
            tx.execute(
                "INSERT INTO notifications (notify_id, out_trade_no, trade_status, received_at, params) VALUES (?1,?2,?3,?4,?5)
                 ON CONFLICT (notify_id) DO NOTHING",
                params![n.notify_id, n.out_trade_no, n.trade_status.as_str(), ts(now), n.params.to_urlencoded()],
            )?;
            tx.commit()?;
            Ok(NotificationApplied::Recorded { attempt: Box::new(attempt), payment })
        })
    }
}

/// Updates an attempt as [`PaymentStore::update_attempt`] does, inside `tx`. A paid attempt is
/// never changed.
fn update_attempt_in(tx: &Transaction<'_>, a: &PaymentAttempt) -> StoreResult<()> {
    tx.execute(
        &format!(
            "UPDATE payment_attempts SET status = ?1, failure = ?2, cashier_url = ?3, qr_code = ?4, trade_no = COALESCE(?5, trade_no),
             updated_at = ?6 WHERE id = ?7 AND status != {}",
            lit(AttemptStatus::Paid)
        ),
        params![a.status, a.failure, a.cashier_url, a.qr_code, a.trade_no, ts(a.updated_at), a.id],
    )?;
    touch(tx, &a.order_id, a.updated_at)?;
    Ok(())
}

/// Applies a payment the gateway confirmed for `a`, inside `tx`, by the rule of
/// [`payments::on_payment`]: see [`PaymentStore::apply_payment`].
fn apply_payment_in(
    tx: &Transaction<'_>,
    a: &PaymentAttempt,
    trade_no: &str,
    gateway_paid_at: Option<DateTime<Utc>>,
    paid_event: &TrackingEvent,
    refund: RefundRow,
    now: DateTime<Utc>,
) -> StoreResult<(PaymentApplied, Option<RefundRow>)> {
    let o = tx
        .query_row(&format!("SELECT {ORDER_CORE_COLS} FROM orders WHERE id = ?1"), [&a.order_id], core_row)
        .optional()?
        .ok_or_else(|| ApiError::not_found("order"))?;
    let outcome = payments::on_payment(a, &o);
    if outcome == PaymentApplied::Paid {
        // Reserved stock becomes sold stock.
        let lines: Vec<(String, i64)> = tx
            .prepare("SELECT product_id, quantity FROM order_lines WHERE order_id = ?1")?
            .query_map([&o.id], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<Result<_, _>>()?;
        let version = next_version(tx)?;
        for (p, q) in lines {
            tx.execute(
                "UPDATE products SET stock = stock - ?1, reserved = reserved - ?1, version = ?2 WHERE id = ?3",
                params![q, version, p],
            )?;
        }
        tx.execute(
            "UPDATE orders SET status = ?1, paid_at = ?2, paid_attempt_id = ?3 WHERE id = ?4",
            params![OrderStatus::Paid, ts(now), a.id, o.id],
        )?;
    }
    if outcome.marks_attempt_paid() {
        tx.execute(
            "UPDATE payment_attempts SET status = ?1, failure = NULL, trade_no = ?2, updated_at = ?3 WHERE id = ?4",
            params![AttemptStatus::Paid, trade_no, ts(now), a.id],
        )?;
        touch(tx, &o.id, now)?;
    }
    // The gateway's time of the payment, kept for the daily reconciliation; a later answer that
    // carries it fills it in for a payment first learnt without it.
    if let Some(at) = gateway_paid_at {
        tx.execute(
            "UPDATE payment_attempts SET gateway_paid_at = ?1 WHERE id = ?2 AND status = ?3 AND gateway_paid_at IS NULL",
            params![ts(at), a.id, AttemptStatus::Paid],
        )?;
    }
    let refunded = match (outcome, outcome.refund_reason()) {
        (PaymentApplied::Paid, _) => {
            insert_tracking(tx, &o.id, paid_event)?;
            None
        }
        (_, Some(reason)) => {
            let refund = RefundRow {
                order_id: o.id.clone(),
                attempt_id: a.id.clone(),
                reason: reason.to_owned(),
                ..refund
            };
            refund_the_rest(tx, refund, now)?
        }
        (_, None) => None,
    };
    Ok((outcome, refunded))
}
