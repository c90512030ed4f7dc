//! Refunds in PostgreSQL: what is refundable, recording, completing and failing refunds, and the
//! refunds owed for failed customs inspections. Every check of what is left to refund is read in
//! the transaction that records the refund, so two instances sweeping the same duplicate payment
//! record one refund of it: the second is run again and finds the payment covered.

use super::orders::{ORDER_CORE_COLS, core_row, order_total, touch};
use super::*;
use crate::domain::refunds;
use haitao_shop_api::orders::RequestRefund;

pub(super) const REFUND_COLS: &str = "id, order_id, attempt_id, out_request_no, amount_fen, reason, status";

/// An order (as `o`) held for a failed inspection and still owed money with nothing under way;
/// `$1` is the time before which the last refused inspection refund must have been refused, `$2`
/// how many refused inspection refunds stop the retries.
fn inspection_owed() -> String {
    let (held, failed_inspection) = (lit(OrderStatus::Held), lit(HoldReason::InspectionFailed));
    let (pending, failed) = (lit(RefundStatus::Pending), lit(RefundStatus::Failed));
    format!(
        "o.status = {held} AND o.hold_reason = {failed_inspection}
     AND o.paid_attempt_id IS NOT NULL AND o.refunded_fen < o.total_fen
     AND NOT EXISTS (SELECT 1 FROM refunds r WHERE r.order_id = o.id AND r.status = {pending})
     AND NOT EXISTS (SELECT 1 FROM refunds r WHERE r.order_id = o.id AND r.status = {failed}
                     AND r.out_request_no LIKE 'INSP%' AND r.updated_at > $1)
     AND (SELECT COUNT(*) FROM refunds r WHERE r.order_id = o.id AND r.status = {failed}
          AND r.out_request_no LIKE 'INSP%') < $2"
    )
}

const UNCOVERED_COLS: &str =
    "a.id, a.order_id, a.out_trade_no, a.method, a.mode, a.amount_fen, a.status, a.failure,
     a.cashier_url, a.qr_code, a.return_url, a.trade_no, a.created_at, a.updated_at, a.expires_at";

/// `FROM … WHERE` of paid attempts (`a`, orders `o`) that are not their order's payment and whose
/// money is not all given back or on its way back.
fn uncovered() -> String {
    format!(
        "FROM payment_attempts a JOIN orders o ON o.id = a.order_id
         WHERE a.status = {paid} AND (o.paid_attempt_id IS NULL OR o.paid_attempt_id != a.id)
         AND a.amount_fen > (SELECT COALESCE(SUM(r.amount_fen), 0) FROM refunds r
                             WHERE r.attempt_id = a.id AND r.status != {failed})",
        paid = lit(AttemptStatus::Paid),
        failed = lit(RefundStatus::Failed)
    )
}

/// Fen of one payment of an order refunded or being refunded (every refund but the failed ones).
pub(super) fn refunded_or_pending(tx: &mut Tx<'_>, order_id: &str, attempt_id: &str) -> R<i64> {
    Ok(tx
        .query_one(
            &format!(
                "SELECT COALESCE(SUM(amount_fen), 0)::BIGINT FROM refunds
                 WHERE order_id = $1 AND attempt_id = $2 AND status != {}",
                lit(RefundStatus::Failed)
            ),
            &[&order_id, &attempt_id],
        )?
        .try_get(0)?)
}

pub(super) fn insert_refund_row(tx: &mut Tx<'_>, r: &RefundRow, now: DateTime<Utc>) -> R<()> {
    tx.execute(
        &format!(
            "INSERT INTO refunds ({REFUND_COLS}, created_at, updated_at) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$8)"
        ),
        &[
            &r.id,
            &r.order_id,
            &r.attempt_id,
            &r.out_request_no,
            &r.amount.minor(),
            &r.reason,
            &r.status.as_str(),
            &ts(now),
        ],
    )?;
    Ok(())
}

/// Records `r` as the refund of what is left of its payment — the order's total less that
/// payment's refunds not failed — or nothing when nothing is left.
pub(super) fn refund_the_rest(tx: &mut Tx<'_>, mut r: RefundRow, now: DateTime<Utc>) -> R<Option<RefundRow>> {
    let left = order_total(tx, &r.order_id)? - refunded_or_pending(tx, &r.order_id, &r.attempt_id)?;
    if left <= 0 {
        return Ok(None);
    }
    r.amount = cny(left);
    insert_refund_row(tx, &r, now)?;
    Ok(Some(r))
}

pub(super) fn refund_row(r: &Row) -> R<RefundRow> {
    let at = At::keyed(r, "refunds", 0)?;
    Ok(RefundRow {
        order_id: at.get(1)?,
        attempt_id: at.get(2)?,
        out_request_no: at.get(3)?,
        amount: cny(at.get(4)?),
        reason: at.get(5)?,
        status: at.code(6)?,
        id: at.key().to_owned(),
    })
}

pub(super) fn refund_records(tx: &mut Tx<'_>, order_id: &str) -> R<Vec<RefundRecord>> {
    tx.query(
        "SELECT id, amount_fen, reason, status, created_at FROM refunds WHERE order_id = $1 ORDER BY created_at, seq",
        &[&order_id],
    )?
    .iter()
    .map(|r| {
        let at = At::keyed(r, "refunds", 0)?;
        Ok(RefundRecord {
            amount: cny(at.get(1)?),
            reason: at.get(2)?,
            status: at.code(3)?,
            created_at: at.get(4)?,
            id: at.key().to_owned(),
        })
    })
    .collect()
}

fn refund_rows(
    tx: &mut Tx<'_>,
    sql: &str,
    args: &[&(dyn postgres::types::ToSql + Sync)],
) -> R<Vec<RefundRow>> {
    tx.query(sql, args)?.iter().map(refund_row).collect()
}

impl RefundStore for PgStore {
    fn insert_refund(&self, r: &RefundRow, now: DateTime<Utc>) -> StoreResult<()> {
        self.with(|tx| {
            if refunded_or_pending(tx, &r.order_id, &r.attempt_id)? + r.amount.minor()
                > order_total(tx, &r.order_id)?
            {
                return Err(Fail::Api(ApiError::validation(
                    "amount",
                    "more than the order total would be refunded",
                )));
            }
            insert_refund_row(tx, r, now)?;
            touch(tx, &r.order_id, now)
        })
    }

    fn request_refund(
        &self,
        account_id: &str,
        req: &RequestRefund,
        refund: RefundRow,
        now: DateTime<Utc>,
    ) -> StoreResult<RefundRow> {
        self.with(|tx| {
            let o = tx
                .query_opt(
                    &format!("SELECT {ORDER_CORE_COLS} FROM orders WHERE id = $1 AND account_id = $2"),
                    &[&refund.order_id, &account_id],
                )?
                .as_ref()
                .map(core_row)
                .transpose()?
                .ok_or_else(|| ApiError::not_found("order"))?;
            // The payment that paid the order; a duplicate's money goes back on its own.
            let paying = match (&o.paid_attempt_id, o.status.is_paid()) {
                (Some(a), _) => a.clone(),
                (None, true) => return Err(Fail::Api(ApiError::internal("paid order without attempt"))),
                (None, false) => String::new(),
            };
            let left = order_total(tx, &o.id)? - refunded_or_pending(tx, &o.id, &paying)?;
            let amount = refunds::requested_amount(&o, left, req)?;
            let r = RefundRow {
                attempt_id: paying,
                amount,
                reason: req.reason.trim().to_owned(),
                ..refund.clone()
            };
            insert_refund_row(tx, &r, now)?;
            touch(tx, &r.order_id, now)?;
            Ok(r)
        })
    }

    fn refunds_of(&self, order_id: &str) -> StoreResult<Vec<RefundRow>> {
        self.with(|tx| {
            refund_rows(
                tx,
                &format!("SELECT {REFUND_COLS} FROM refunds WHERE order_id = $1 ORDER BY created_at, seq"),
                &[&order_id],
            )
        })
    }

    fn pending_refunds(&self, now: DateTime<Utc>) -> StoreResult<Vec<RefundRow>> {
        self.with(|tx| {
            refund_rows(
                tx,
                &format!(
                    "SELECT {REFUND_COLS} FROM refunds WHERE status = {}
                     AND (next_try_at IS NULL OR next_try_at <= $1) ORDER BY created_at, seq LIMIT 100",
                    lit(RefundStatus::Pending)
                ),
                &[&ts(now)],
            )
        })
    }

    fn defer_refund(
        &self,
        refund_id: &str,
        now: DateTime<Utc>,
        pauses: &[chrono::Duration],
    ) -> StoreResult<u32> {
        self.with(|tx| {
            let tries: i64 = tx
                .query_opt(
                    "SELECT tries FROM refunds WHERE id = $1 AND status = $2",
                    &[&refund_id, &RefundStatus::Pending.as_str()],
                )?
                .ok_or_else(|| ApiError::not_found("pending refund"))?
                .try_get(0)?;
            let tries = u32::try_from(tries + 1).unwrap_or(u32::MAX);
            let pause = refunds::pause_after(tries, pauses);
            tx.execute(
                "UPDATE refunds SET tries = $1, next_try_at = $2, updated_at = $3 WHERE id = $4",
                &[&i64::from(tries), &ts(now + pause), &ts(now), &refund_id],
            )?;
            Ok(tries)
        })
    }

    fn uncovered_payments(&self) -> StoreResult<Vec<PaymentAttempt>> {
        self.with(|tx| {
            tx.query(
                &format!("SELECT {UNCOVERED_COLS} {} ORDER BY a.created_at, a.seq LIMIT 100", uncovered()),
                &[],
            )?
            .iter()
            .map(super::payments::attempt_row)
            .collect()
        })
    }

    fn cover_payment(&self, refund: RefundRow, now: DateTime<Utc>) -> StoreResult<Option<RefundRow>> {
        self.with(|tx| {
            let still = tx.query_opt(
                &format!(
                    "SELECT a.out_trade_no, o.paid_attempt_id, (SELECT COUNT(*) FROM refunds r WHERE r.attempt_id = a.id) {} AND a.id = $1",
                    uncovered()
                ),
                &[&refund.attempt_id],
            )?;
            let Some(row) = still else { return Ok(None) };
            let (out_trade_no, paying, earlier): (String, Option<String>, i64) =
                (row.try_get(0)?, row.try_get(1)?, row.try_get(2)?);
            let reason = if paying.is_some() { "duplicate payment" } else { "order closed before payment" };
            let refund = RefundRow {
                out_request_no: format!("{AUTOMATIC_REFUND_PREFIX}{earlier}{out_trade_no}"),
                reason: reason.to_owned(),
                status: RefundStatus::Pending,
                ..refund.clone()
            };
            refund_the_rest(tx, refund, now)
        })
    }

    fn complete_refund(
        &self,
        refund_id: &str,
        gateway_refunded_at: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> StoreResult<()> {
        self.with(|tx| {
            let r = tx
                .query_opt(&format!("SELECT {REFUND_COLS} FROM refunds WHERE id = $1"), &[&refund_id])?
                .as_ref()
                .map(refund_row)
                .transpose()?
                .ok_or_else(|| ApiError::not_found("refund"))?;
            if r.status == RefundStatus::Succeeded {
                return Ok(());
            }
            tx.execute(
                "UPDATE refunds SET status = $1, updated_at = $2, gateway_refunded_at = $4 WHERE id = $3",
                &[&RefundStatus::Succeeded.as_str(), &ts(now), &refund_id, &gateway_refunded_at.map(ts)],
            )?;
            // A refund of a duplicate payment does not touch the order's own money.
            let o = tx.query_one(
                "SELECT paid_attempt_id, total_fen, dutiable_fen, refunded_fen FROM orders WHERE id = $1",
                &[&r.order_id],
            )?;
            let (paid_attempt, total, dutiable, refunded): (Option<String>, i64, i64, i64) =
                (o.try_get(0)?, o.try_get(1)?, o.try_get(2)?, o.try_get(3)?);
            if paid_attempt.as_deref() == Some(r.attempt_id.as_str()) {
                let new_refunded = (refunded + r.amount.minor()).min(total);
                let restored = refunds::quota_restored(new_refunded, dutiable, total);
                tx.execute(
                    "UPDATE orders SET refunded_fen = $1, quota_restored_fen = $2,
                     status = CASE WHEN $1 >= total_fen THEN $3 ELSE status END WHERE id = $4",
                    &[&new_refunded, &restored, &OrderStatus::Refunded.as_str(), &r.order_id],
                )?;
            }
            touch(tx, &r.order_id, now)
        })
    }

    fn fail_refund(&self, refund_id: &str, now: DateTime<Utc>) -> StoreResult<()> {
        self.with(|tx| {
            tx.execute(
                "UPDATE refunds SET status = $1, updated_at = $2 WHERE id = $3 AND status = $4",
                &[&RefundStatus::Failed.as_str(), &ts(now), &refund_id, &RefundStatus::Pending.as_str()],
            )?;
            Ok(())
        })
    }

    fn refund_records(&self, order_id: &str) -> StoreResult<Vec<RefundRecord>> {
        self.with(|tx| refund_records(tx, order_id))
    }

    fn inspection_refunds_owed(
        &self,
        retry_from: DateTime<Utc>,
        max_failed: u32,
    ) -> StoreResult<Vec<OrderCore>> {
        self.with(|tx| {
            tx.query(
                &format!(
                    "SELECT {ORDER_CORE_COLS} FROM orders o WHERE {} ORDER BY o.id LIMIT 100",
                    inspection_owed()
                ),
                &[&ts(retry_from), &i64::from(max_failed)],
            )?
            .iter()
            .map(core_row)
            .collect()
        })
    }

    fn top_up_inspection_refund(
        &self,
        refund: RefundRow,
        out_trade_no: &str,
        retry_from: DateTime<Utc>,
        max_failed: u32,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<RefundRow>> {
        self.with(|tx| {
            let owed: bool = tx
                .query_one(
                    &format!(
                        "SELECT EXISTS (SELECT 1 FROM orders o WHERE {} AND o.id = $3)",
                        inspection_owed()
                    ),
                    &[&ts(retry_from), &i64::from(max_failed), &refund.order_id],
                )?
                .try_get(0)?;
            if !owed {
                return Ok(None);
            }
            let before: i64 = tx
                .query_one(
                    "SELECT COUNT(*) FROM refunds WHERE order_id = $1 AND out_request_no LIKE 'INSP%'",
                    &[&refund.order_id],
                )?
                .try_get(0)?;
            let mut refund = refund.clone();
            refund.out_request_no = format!("INSP{before}{out_trade_no}");
            refund.status = RefundStatus::Pending;
            let order_id = refund.order_id.clone();
            let recorded = refund_the_rest(tx, refund, now)?;
            if recorded.is_some() {
                touch(tx, &order_id, now)?;
            }
            Ok(recorded)
        })
    }
}
