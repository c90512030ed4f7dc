//! Customs declaration, logistics and tracking in SQLite.

use super::orders::{ORDER_CORE_COLS, core_row, touch};
use super::refunds::refund_the_rest;
use super::*;

pub(super) fn insert_tracking(tx: &Connection, order_id: &str, e: &TrackingEvent) -> Result<(), ApiError> {
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

pub(super) fn tracking(c: &Connection, order_id: &str) -> Result<Vec<TrackingEvent>, ApiError> {
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

/// Whether an order's parcel is on its way (declared, cleared or shipped), so logistics may move it.
pub(super) fn in_transit(c: &Connection, order_id: &str) -> rusqlite::Result<bool> {
    c.query_row(
        &format!(
            "SELECT EXISTS (SELECT 1 FROM orders WHERE id = ?1 AND status IN ({}))",
            sql_list(OrderStatus::IN_TRANSIT)
        ),
        [order_id],
        |r| r.get(0),
    )
}

impl FulfilmentStore for SqliteStore {
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
        (waybill_no, carrier): (&str, Carrier),
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
            if status == OrderStatus::CustomsDeclared {
                tx.execute(
                    "UPDATE orders SET waybill_no = ?1, carrier = ?2, waybill_declared = 1 WHERE id = ?3 AND waybill_no IS NULL",
                    params![waybill_no, carrier, order_id],
                )?;
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
        annual_limit_fen: i64,
        now: DateTime<Utc>,
    ) -> StoreResult<()> {
        self.with(|c| {
            let tx = c.transaction()?;
            let held: Option<(i32, i64, i64, String)> = tx
                .query_row(
                    "SELECT quota_year, dutiable_fen, quota_restored_fen, orderer_id_number FROM orders
                     WHERE id = ?1 AND status = ?2 AND hold_reason = ?3",
                    params![order_id, OrderStatus::Held, HoldReason::OrdererNotPayer],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
                )
                .optional()?;
            let Some((year, dutiable, restored, current)) = held else {
                return Err(ApiError::conflict(
                    ErrorCode::InvalidState,
                    "only orders held because the orderer is not the payer can be corrected",
                ));
            };
            // The payer's quota, read in this transaction: two corrections to one payer cannot
            // both take the same room.
            // (The same person again: the order already counts in their quota.)
            let (used, reserved) = super::quota_usage(&tx, id_number, year)?;
            let adds = if current == id_number { 0 } else { dutiable - restored };
            if used + reserved + adds > annual_limit_fen {
                return Err(ApiError::conflict(
                    ErrorCode::AnnualQuotaExceeded,
                    "the payer's annual cross-border limit has no room for this order",
                ));
            }
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
}
