//! Payment attempts and Alipay notifications in PostgreSQL, and a confirmed payment applied to its
//! order. A notification delivered to two instances at once is applied once: both transactions
//! read the attempt and write it, so the database lets one commit and runs the other again, which
//! then finds the payment applied.

use super::fulfilment::insert_tracking;
use super::orders::{order_core_in, sell_stock, touch};
use super::refunds::refund_the_rest;
use super::*;
use crate::domain::payments::{self, NotificationEffect};
use haitao_alipay::inbound::{Notify, Rejection};
use haitao_shop_api::code::UnknownCode;
use haitao_shop_api::orders::PaymentMethod;

pub(super) const ATTEMPT_COLS: &str = "id, order_id, out_trade_no, method, mode, amount_fen, status, failure, cashier_url, qr_code, \
     return_url, trade_no, created_at, updated_at, expires_at";

pub(super) fn attempt_row(r: &Row) -> R<PaymentAttempt> {
    let at = At::keyed(r, "payment_attempts", 0)?;
    Ok(PaymentAttempt {
        order_id: at.get(1)?,
        out_trade_no: at.get(2)?,
        method: {
            let code: String = at.get(3)?;
            PaymentMethod::parse_code(&code)
                .ok_or_else(|| at.damaged(3, UnknownCode { kind: "payment method", value: code.clone() }))?
        },
        mode: at.code(4)?,
        amount: cny(at.get(5)?),
        status: at.code(6)?,
        failure: at.opt_code(7)?,
        cashier_url: at.get(8)?,
        qr_code: at.get(9)?,
        return_url: at.get(10)?,
        trade_no: at.get(11)?,
        created_at: at.get(12)?,
        updated_at: at.get(13)?,
        expires_at: at.get(14)?,
        id: at.key().to_owned(),
    })
}

fn attempts(
    tx: &mut Tx<'_>,
    sql: &str,
    args: &[&(dyn postgres::types::ToSql + Sync)],
) -> R<Vec<PaymentAttempt>> {
    tx.query(sql, args)?.iter().map(attempt_row).collect()
}

fn attempt_by(tx: &mut Tx<'_>, column: &str, value: &str) -> R<Option<PaymentAttempt>> {
    tx.query_opt(&format!("SELECT {ATTEMPT_COLS} FROM payment_attempts WHERE {column} = $1"), &[&value])?
        .as_ref()
        .map(attempt_row)
        .transpose()
}

impl PaymentStore for PgStore {
    fn insert_attempt(&self, a: &PaymentAttempt) -> StoreResult<()> {
        self.with_books(|tx| {
            tx.execute(
                &format!(
                    "INSERT INTO payment_attempts ({ATTEMPT_COLS}) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15)"
                ),
                &[
                    &a.id,
                    &a.order_id,
                    &a.out_trade_no,
                    &a.method.code(),
                    &a.mode.as_str(),
                    &a.amount.minor(),
                    &a.status.as_str(),
                    &a.failure.map(|f| f.as_str()),
                    &a.cashier_url,
                    &a.qr_code,
                    &a.return_url,
                    &a.trade_no,
                    &ts(a.created_at),
                    &ts(a.updated_at),
                    &ts(a.expires_at),
                ],
            )?;
            touch(tx, &a.order_id, a.updated_at)
        })
    }

    fn update_attempt(&self, a: &PaymentAttempt) -> StoreResult<()> {
        self.with_books(|tx| update_attempt_in(tx, a))
    }

    fn attempt(&self, id: &str) -> StoreResult<Option<PaymentAttempt>> {
        self.with(|tx| attempt_by(tx, "id", id))
    }

    fn attempts_of(&self, order_id: &str) -> StoreResult<Vec<PaymentAttempt>> {
        self.with(|tx| {
            attempts(
                tx,
                &format!(
                    "SELECT {ATTEMPT_COLS} FROM payment_attempts WHERE order_id = $1 ORDER BY created_at, seq"
                ),
                &[&order_id],
            )
        })
    }

    fn open_attempts(&self, before: DateTime<Utc>) -> StoreResult<Vec<PaymentAttempt>> {
        self.with(|tx| {
            attempts(
                tx,
                &format!(
                    "SELECT {ATTEMPT_COLS} FROM payment_attempts WHERE status IN ({}) AND updated_at <= $1
                     ORDER BY updated_at LIMIT 200",
                    sql_list(AttemptStatus::OPEN)
                ),
                &[&ts(before)],
            )
        })
    }

    fn ended_attempts_still_payable(
        &self,
        margin: chrono::Duration,
        before: DateTime<Utc>,
    ) -> StoreResult<Vec<PaymentAttempt>> {
        let margin = margin.num_seconds();
        self.with(|tx| {
            attempts(
                tx,
                &format!(
                    "SELECT {ATTEMPT_COLS} FROM payment_attempts WHERE status IN ({})
                     AND updated_at < expires_at + $1::BIGINT * INTERVAL '1 second'
                     AND COALESCE(watched_at, updated_at) <= $2
                     ORDER BY COALESCE(watched_at, updated_at) LIMIT 200",
                    sql_list(&[AttemptStatus::Failed, AttemptStatus::Closed])
                ),
                &[&margin, &ts(before)],
            )
        })
    }

    fn looked_at(&self, attempt_id: &str, answered: bool, now: DateTime<Utc>) -> StoreResult<()> {
        self.with(|tx| {
            tx.execute(
                "UPDATE payment_attempts SET watched_at = $1, updated_at = CASE WHEN $4 THEN $1 ELSE updated_at END
                 WHERE id = $2 AND status != $3",
                &[&ts(now), &attempt_id, &AttemptStatus::Paid.as_str(), &answered],
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
        self.with_books(|tx| {
            let a =
                attempt_by(tx, "id", attempt_id)?.ok_or_else(|| ApiError::not_found("payment attempt"))?;
            apply_payment_in(tx, &a, trade_no, gateway_paid_at, paid_event, refund.clone(), now)
        })
    }

    fn apply_notification(
        &self,
        n: Notify,
        paid_event: &TrackingEvent,
        refund: RefundRow,
        now: DateTime<Utc>,
    ) -> StoreResult<NotificationApplied> {
        self.with_books(|tx| {
            let attempt = attempt_by(tx, "out_trade_no", &n.out_trade_no)?;
            let (n, effect) = match payments::on_notification(n.clone(), attempt.as_ref(), now) {
                Ok(checked) => checked,
                Err(rejection) => return Ok(NotificationApplied::Rejected(rejection)),
            };
            let Some(attempt) = attempt else {
                return Ok(NotificationApplied::Rejected(Rejection::UnknownOrder(n.out_trade_no)));
            };
            let payment = match effect {
                NotificationEffect::ApplyPayment { trade_no } => Some(apply_payment_in(
                    tx,
                    &attempt,
                    &trade_no,
                    n.gmt_payment,
                    paid_event,
                    refund.clone(),
                    now,
                )?),
                NotificationEffect::CloseAttempt(closed) => {
                    update_attempt_in(tx, &closed)?;
                    None
                }
                NotificationEffect::Nothing => None,
            };
            tx.execute(
                "INSERT INTO notifications (notify_id, out_trade_no, trade_status, received_at, params) VALUES ($1,$2,$3,$4,$5)
                 ON CONFLICT (notify_id) DO NOTHING",
                &[&n.notify_id, &n.out_trade_no, &n.trade_status.as_str(), &ts(now), &n.params.to_urlencoded()],
            )?;
            Ok(NotificationApplied::Recorded { attempt: Box::new(attempt), payment })
        })
    }
}

/// Updates an attempt as [`PaymentStore::update_attempt`] does, inside `tx`. A paid attempt is
/// never changed.
fn update_attempt_in(tx: &mut Tx<'_>, a: &PaymentAttempt) -> R<()> {
    tx.execute(
        &format!(
            "UPDATE payment_attempts SET status = $1, failure = $2, cashier_url = $3, qr_code = $4, trade_no = COALESCE($5, trade_no),
             updated_at = $6 WHERE id = $7 AND status != {}",
            lit(AttemptStatus::Paid)
        ),
        &[
            &a.status.as_str(),
            &a.failure.map(|f| f.as_str()),
            &a.cashier_url,
            &a.qr_code,
            &a.trade_no,
            &ts(a.updated_at),
            &a.id,
        ],
    )?;
    touch(tx, &a.order_id, a.updated_at)
}

/// Applies a payment the gateway confirmed for `a`, inside `tx`, by the rule of
/// [`payments::on_payment`]: see [`PaymentStore::apply_payment`].
fn apply_payment_in(
    tx: &mut Tx<'_>,
    a: &PaymentAttempt,
    trade_no: &str,
    gateway_paid_at: Option<DateTime<Utc>>,
    paid_event: &TrackingEvent,
    refund: RefundRow,
    now: DateTime<Utc>,
) -> R<(PaymentApplied, Option<RefundRow>)> {
    let o = order_core_in(tx, &a.order_id)?.ok_or_else(|| ApiError::not_found("order"))?;
    let outcome = payments::on_payment(a, &o);
    if outcome == PaymentApplied::Paid {
        sell_stock(tx, &o.id)?;
        tx.execute(
            "UPDATE orders SET status = $1, paid_at = $2, paid_attempt_id = $3 WHERE id = $4",
            &[&OrderStatus::Paid.as_str(), &ts(now), &a.id, &o.id],
        )?;
    }
    if outcome.marks_attempt_paid() {
        tx.execute(
            "UPDATE payment_attempts SET status = $1, failure = NULL, trade_no = $2, updated_at = $3 WHERE id = $4",
            &[&AttemptStatus::Paid.as_str(), &trade_no, &ts(now), &a.id],
        )?;
        touch(tx, &o.id, now)?;
    }
    // The gateway's time of the payment, kept for the daily reconciliation; a later answer that
    // carries it fills it in for a payment first learnt without it.
    if let Some(at) = gateway_paid_at {
        tx.execute(
            "UPDATE payment_attempts SET gateway_paid_at = $1 WHERE id = $2 AND status = $3 AND gateway_paid_at IS NULL",
            &[&ts(at), &a.id, &AttemptStatus::Paid.as_str()],
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
