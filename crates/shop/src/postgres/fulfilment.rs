//! Customs declaration, logistics and tracking in PostgreSQL.

use super::orders::{ORDER_CORE_COLS, core_row, touch};
use super::refunds::refund_the_rest;
use super::*;

pub(super) fn insert_tracking(tx: &mut Tx<'_>, order_id: &str, e: &TrackingEvent) -> R<()> {
    let seq: i64 = tx
        .query_one("SELECT COALESCE(MAX(seq), 0) + 1 FROM tracking_events WHERE order_id = $1", &[&order_id])?
        .try_get(0)?;
    tx.execute(
        "INSERT INTO tracking_events (order_id, seq, at, stage, desc_zh, desc_en, loc_zh, loc_en) VALUES ($1,$2,$3,$4,$5,$6,$7,$8)",
        &[
            &order_id,
            &seq,
            &ts(e.at),
            &e.stage.as_str(),
            &e.description.zh,
            &e.description.en,
            &e.location.zh,
            &e.location.en,
        ],
    )?;
    Ok(())
}

pub(super) fn tracking(tx: &mut Tx<'_>, order_id: &str) -> R<Vec<TrackingEvent>> {
    tx.query(
        "SELECT at, stage, desc_zh, desc_en, loc_zh, loc_en, seq FROM tracking_events WHERE order_id = $1 ORDER BY seq",
        &[&order_id],
    )?
    .iter()
    .map(|r| {
        let seq: i64 = r.try_get(6)?;
        let at = At::new(r, "tracking_events", format!("{order_id} event {seq}"));
        Ok(TrackingEvent {
            at: at.get(0)?,
            stage: at.code(1)?,
            description: Localized { zh: at.get(2)?, en: at.get(3)? },
            location: Localized { zh: at.get(4)?, en: at.get(5)? },
        })
    })
    .collect()
}

/// Whether an order's parcel is on its way (declared, cleared or shipped), so logistics may move it.
fn in_transit(tx: &mut Tx<'_>, order_id: &str) -> R<bool> {
    Ok(tx
        .query_one(
            &format!(
                "SELECT EXISTS (SELECT 1 FROM orders WHERE id = $1 AND status IN ({}))",
                sql_list(OrderStatus::IN_TRANSIT)
            ),
            &[&order_id],
        )?
        .try_get(0)?)
}

fn cores(tx: &mut Tx<'_>, sql: &str) -> R<Vec<OrderCore>> {
    tx.query(sql, &[])?.iter().map(core_row).collect()
}

impl FulfilmentStore for PgStore {
    fn orders_to_declare(&self) -> StoreResult<Vec<OrderCore>> {
        self.with(|tx| {
            cores(
                tx,
                &format!(
                    "SELECT {ORDER_CORE_COLS} FROM orders WHERE status = {} AND NOT payment_declared ORDER BY paid_at, id LIMIT 100",
                    lit(OrderStatus::Paid)
                ),
            )
        })
    }

    fn record_declaration(
        &self,
        order_id: &str,
        declaration_no: &str,
        identity_check: Option<bool>,
        event: &TrackingEvent,
        (waybill_no, carrier): (&str, Carrier),
        now: DateTime<Utc>,
    ) -> StoreResult<bool> {
        self.with(|tx| {
            let (status, hold) = match identity_check {
                Some(false) => (OrderStatus::Held, Some(HoldReason::OrdererNotPayer)),
                _ => (OrderStatus::CustomsDeclared, None),
            };
            let changed = tx.execute(
                "UPDATE orders SET payment_declared = TRUE, declaration_no = $1, identity_check = COALESCE($2, identity_check),
                 status = $3, hold_reason = $4 WHERE id = $5 AND status = $6 AND NOT payment_declared",
                &[
                    &declaration_no,
                    &identity_check,
                    &status.as_str(),
                    &hold.map(|h| h.as_str()),
                    &order_id,
                    &OrderStatus::Paid.as_str(),
                ],
            )?;
            if changed == 0 {
                return Ok(false);
            }
            if status == OrderStatus::CustomsDeclared {
                tx.execute(
                    "UPDATE orders SET waybill_no = $1, carrier = $2, waybill_declared = TRUE WHERE id = $3 AND waybill_no IS NULL",
                    &[&waybill_no, &carrier.as_str(), &order_id],
                )?;
            }
            insert_tracking(tx, order_id, event)?;
            touch(tx, order_id, now)?;
            Ok(true)
        })
    }

    fn correct_orderer(
        &self,
        order_id: &str,
        name: &str,
        id_number: &str,
        annual_limit_fen: i64,
        now: DateTime<Utc>,
    ) -> StoreResult<()> {
        self.with(|tx| {
            let held = tx.query_opt(
                "SELECT quota_year, dutiable_fen, quota_restored_fen, orderer_id_number FROM orders
                 WHERE id = $1 AND status = $2 AND hold_reason = $3",
                &[&order_id, &OrderStatus::Held.as_str(), &HoldReason::OrdererNotPayer.as_str()],
            )?;
            let Some(held) = held else {
                return Err(Fail::Api(ApiError::conflict(
                    ErrorCode::InvalidState,
                    "only orders held because the orderer is not the payer can be corrected",
                )));
            };
            let (year, dutiable, restored, current): (i32, i64, i64, String) =
                (held.try_get(0)?, held.try_get(1)?, held.try_get(2)?, held.try_get(3)?);
            // The payer's quota, read in this transaction: two corrections to one payer cannot
            // both take the same room. (The same person again: the order already counts.)
            let (used, reserved) = quota_usage(tx, id_number, year)?;
            let adds = if current == id_number { 0 } else { dutiable - restored };
            if used + reserved + adds > annual_limit_fen {
                return Err(Fail::Api(ApiError::conflict(
                    ErrorCode::AnnualQuotaExceeded,
                    "the payer's annual cross-border limit has no room for this order",
                )));
            }
            tx.execute(
                "UPDATE orders SET orderer_name = $1, orderer_id_number = $2, payment_declared = FALSE, identity_check = NULL,
                 hold_reason = NULL, status = $4, declare_seq = declare_seq + 1 WHERE id = $3 AND status = $5",
                &[&name, &id_number, &order_id, &OrderStatus::Paid.as_str(), &OrderStatus::Held.as_str()],
            )?;
            touch(tx, order_id, now)
        })
    }

    fn orders_in_transit(&self) -> StoreResult<Vec<OrderCore>> {
        self.with(|tx| {
            cores(
                tx,
                &format!(
                    "SELECT {ORDER_CORE_COLS} FROM orders WHERE status IN ({}) ORDER BY id LIMIT 500",
                    sql_list(OrderStatus::IN_TRANSIT)
                ),
            )
        })
    }

    fn advance_parcel(
        &self,
        order_id: &str,
        e: &TrackingEvent,
        status: Option<(OrderStatus, Option<HoldReason>)>,
        now: DateTime<Utc>,
    ) -> StoreResult<bool> {
        self.with(|tx| {
            if !in_transit(tx, order_id)? {
                return Ok(false);
            }
            insert_tracking(tx, order_id, e)?;
            if let Some((st, hold)) = status {
                tx.execute(
                    "UPDATE orders SET status = $1, hold_reason = $2 WHERE id = $3",
                    &[&st.as_str(), &hold.map(|h| h.as_str()), &order_id],
                )?;
            }
            touch(tx, order_id, now)?;
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
        self.with(|tx| {
            if !in_transit(tx, order_id)? {
                return Ok((false, None));
            }
            insert_tracking(tx, order_id, e)?;
            tx.execute(
                "UPDATE orders SET status = $1, hold_reason = $2 WHERE id = $3",
                &[&OrderStatus::Held.as_str(), &HoldReason::InspectionFailed.as_str(), &order_id],
            )?;
            let recorded = match refund.clone() {
                Some(r) => refund_the_rest(tx, r, now)?,
                None => None,
            };
            touch(tx, order_id, now)?;
            Ok((true, recorded))
        })
    }

    fn tracking(&self, order_id: &str) -> StoreResult<Vec<TrackingEvent>> {
        self.with(|tx| tracking(tx, order_id))
    }

    fn add_tracking(&self, order_id: &str, e: &TrackingEvent, now: DateTime<Utc>) -> StoreResult<()> {
        self.with(|tx| {
            insert_tracking(tx, order_id, e)?;
            touch(tx, order_id, now)
        })
    }
}
