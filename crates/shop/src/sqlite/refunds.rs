//! Refunds in SQLite: what is refundable, recording, completing and failing refunds, and the
//! refunds owed for failed customs inspections.

use super::orders::{ORDER_CORE_COLS, core_row, order_total, touch};
use super::*;
use crate::domain::refunds;
use haitao_shop_api::orders::RequestRefund;

pub(super) const REFUND_COLS: &str = "id, order_id, attempt_id, out_request_no, amount_fen, reason, status";

/// An order (as `o`) held for a failed inspection and still owed money with nothing under way;
/// `?1` is the time before which the last refused inspection refund must have been refused, `?2`
/// how many refused inspection refunds stop the retries.
pub(super) static INSPECTION_OWED: LazyLock<String> = LazyLock::new(|| {
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

/// The attempt columns for [`UNCOVERED`] (attempts as `a`).
const UNCOVERED_COLS: &str =
    "a.id, a.order_id, a.out_trade_no, a.method, a.mode, a.amount_fen, a.status, a.failure,
     a.cashier_url, a.qr_code, a.return_url, a.trade_no, a.created_at, a.updated_at, a.expires_at";

/// `FROM … WHERE` of paid attempts (`a`, orders `o`) that are not their order's payment and whose
/// money is not all given back or on its way back.
static UNCOVERED: LazyLock<String> = LazyLock::new(|| {
    format!(
        "FROM payment_attempts a JOIN orders o ON o.id = a.order_id
         WHERE a.status = {paid} AND (o.paid_attempt_id IS NULL OR o.paid_attempt_id != a.id)
         AND a.amount_fen > (SELECT COALESCE(SUM(r.amount_fen), 0) FROM refunds r
                             WHERE r.attempt_id = a.id AND r.status != {failed})",
        paid = lit(AttemptStatus::Paid),
        failed = lit(RefundStatus::Failed)
    )
});

/// Fen of one payment of an order refunded or being refunded (every refund but the failed ones).
/// Per payment: a duplicate payment's refund gives back that payment, not the order's money.
pub(super) fn refunded_or_pending(c: &Connection, order_id: &str, attempt_id: &str) -> rusqlite::Result<i64> {
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

pub(super) fn insert_refund_row(
    c: &Connection,
    r: &RefundRow,
    now: DateTime<Utc>,
) -> rusqlite::Result<usize> {
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
pub(super) fn refund_the_rest(
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

pub(super) fn refund_row(r: &Row<'_>) -> rusqlite::Result<RefundRow> {
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

pub(super) fn refund_records(c: &Connection, order_id: &str) -> Result<Vec<RefundRecord>, ApiError> {
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

impl RefundStore for SqliteStore {
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

    fn request_refund(
        &self,
        account_id: &str,
        req: &RequestRefund,
        refund: RefundRow,
        now: DateTime<Utc>,
    ) -> StoreResult<RefundRow> {
        self.with(|c| {
            let tx = c.transaction()?;
            let o = tx
                .query_row(
                    &format!("SELECT {ORDER_CORE_COLS} FROM orders WHERE id = ?1 AND account_id = ?2"),
                    [&refund.order_id, account_id],
                    core_row,
                )
                .optional()?
                .ok_or_else(|| ApiError::not_found("order"))?;
            // The payment that paid the order; a duplicate's money goes back on its own.
            let paying = match (&o.paid_attempt_id, o.status.is_paid()) {
                (Some(a), _) => a.clone(),
                (None, true) => return Err(ApiError::internal("paid order without attempt")),
                (None, false) => String::new(),
            };
            let left = order_total(&tx, &o.id)? - refunded_or_pending(&tx, &o.id, &paying)?;
            let amount = refunds::requested_amount(&o, left, req)?;
            let r = RefundRow { attempt_id: paying, amount, reason: req.reason.trim().to_owned(), ..refund };
            insert_refund_row(&tx, &r, now)?;
            touch(&tx, &r.order_id, now)?;
            tx.commit()?;
            Ok(r)
        })
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

    fn pending_refunds(&self, now: DateTime<Utc>) -> StoreResult<Vec<RefundRow>> {
        self.with(|c| {
            Ok(c.prepare(&format!(
                "SELECT {REFUND_COLS} FROM refunds WHERE status = {}
                 AND (next_try_at IS NULL OR next_try_at <= ?1) ORDER BY created_at LIMIT 100",
                lit(RefundStatus::Pending)
            ))?
            .query_map([ts(now)], refund_row)?
            .collect::<Result<_, _>>()?)
        })
    }

    fn defer_refund(
        &self,
        refund_id: &str,
        now: DateTime<Utc>,
        pauses: &[chrono::Duration],
    ) -> StoreResult<u32> {
        self.with(|c| {
            let tx = c.transaction()?;
            let tries: i64 = tx
                .query_row(
                    "SELECT tries FROM refunds WHERE id = ?1 AND status = ?2",
                    params![refund_id, RefundStatus::Pending],
                    |r| r.get(0),
                )
                .optional()?
                .ok_or_else(|| ApiError::not_found("pending refund"))?;
            let tries = u32::try_from(tries + 1).unwrap_or(u32::MAX);
            let pause = refunds::pause_after(tries, pauses);
            tx.execute(
                "UPDATE refunds SET tries = ?1, next_try_at = ?2, updated_at = ?3 WHERE id = ?4",
                params![tries, ts(now + pause), ts(now), refund_id],
            )?;
            tx.commit()?;
            Ok(tries)
        })
    }

    fn uncovered_payments(&self) -> StoreResult<Vec<PaymentAttempt>> {
        self.with(|c| {
            Ok(c.prepare(&format!("SELECT {UNCOVERED_COLS} {UNCOVERED} LIMIT 100", UNCOVERED = *UNCOVERED))?
                .query_map([], super::payments::attempt_row)?
                .collect::<Result<_, _>>()?)
        })
    }

    fn cover_payment(&self, refund: RefundRow, now: DateTime<Utc>) -> StoreResult<Option<RefundRow>> {
        self.with(|c| {
            let tx = c.transaction()?;
            let still: Option<(String, Option<String>, i64)> = tx
                .query_row(
                    &format!("SELECT a.out_trade_no, o.paid_attempt_id, (SELECT COUNT(*) FROM refunds r WHERE r.attempt_id = a.id) {} AND a.id = ?1", *UNCOVERED),
                    [&refund.attempt_id],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                )
                .optional()?;
            let Some((out_trade_no, paying, earlier)) = still else { return Ok(None) };
            let reason = if paying.is_some() { "duplicate payment" } else { "order closed before payment" };
            let refund = RefundRow {
                out_request_no: format!("{AUTOMATIC_REFUND_PREFIX}{earlier}{out_trade_no}"),
                reason: reason.to_owned(),
                status: RefundStatus::Pending,
                ..refund
            };
            let recorded = refund_the_rest(&tx, refund, now)?;
            tx.commit()?;
            Ok(recorded)
        })
    }

    fn complete_refund(
        &self,
        refund_id: &str,
        gateway_refunded_at: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> StoreResult<()> {
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
                "UPDATE refunds SET status = ?1, updated_at = ?2, gateway_refunded_at = ?4 WHERE id = ?3",
                params![RefundStatus::Succeeded, ts(now), refund_id, gateway_refunded_at.map(ts)],
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
                let restored = refunds::quota_restored(new_refunded, dutiable, total);
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

    fn refund_records(&self, order_id: &str) -> StoreResult<Vec<RefundRecord>> {
        self.with(|c| refund_records(c, order_id))
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
}
