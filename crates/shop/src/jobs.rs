//! Background work on the shop's clock: closing unpaid orders, reconciling attempts whose outcome is
//! unknown, declaring payments to customs, moving parcels through logistics, retrying refunds,
//! topping up the refund of an order held at customs whose refund was refused, forgetting old
//! per-address sign-in and registration counts, and reconciling with Alipay's daily bill.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use haitao_alipay::CallError;
use haitao_alipay::api::{BuyerInfo, Close, CustomsDeclare, TradeRef};
use haitao_alipay::status::acq;
use haitao_shop_api::catalog::Localized;
use haitao_shop_api::orders::{
    AttemptStatus, Carrier, OrderStatus, RefundStatus, TrackingEvent, TrackingStage,
};

use crate::error::ApiError;
use crate::payments;
use crate::state::Shop;
use crate::store::{OrderCore, RefundRow};

fn loc(zh: &str, en: &str) -> Localized {
    Localized { zh: zh.into(), en: en.into() }
}

/// Closes orders whose time to pay has passed (closing the gateway trade first; a payment found
/// instead is applied).
async fn close_overdue(shop: &Arc<Shop>) -> Result<(), ApiError> {
    let now = shop.now();
    let overdue = shop.blocking(move |s| s.overdue_orders(now)).await?;
    for o in overdue {
        let oid = o.id.clone();
        let attempts = shop.blocking(move |s| s.attempts_of(&oid)).await?;
        let mut may_pay = false;
        for a in attempts.into_iter().filter(|a| !a.status.is_final()) {
            let r = payments::reconcile(shop, a, true).await?;
            // Paid, or possibly paid: the order must not be closed under it.
            if matches!(r.status, AttemptStatus::Paid | AttemptStatus::Unknown) {
                may_pay = true;
            }
        }
        if may_pay {
            continue;
        }
        let oid = o.id.clone();
        if shop.blocking(move |s| s.close_order(&oid, now)).await? {
            tracing::info!(order = %o.id, "unpaid order closed");
        }
    }
    Ok(())
}

/// Attempts left `unknown` (or never finished) are asked about again, with a pause between tries.
async fn reconcile_stale(shop: &Arc<Shop>) -> Result<(), ApiError> {
    let before = shop.now() - chrono::Duration::seconds(20);
    let open = shop.blocking(move |s| s.open_attempts(before)).await?;
    for a in open {
        let expired = a.expires_at <= shop.now();
        if a.status == AttemptStatus::Unknown || expired {
            let _ = payments::reconcile(shop, a, false).await?;
        }
    }
    Ok(())
}

/// How long after an attempt's expiry its cashier is still asked about: the gateway's clock may
/// run behind the shop's.
const EXPIRY_MARGIN_MINUTES: i64 = 10;

/// Attempts that ended unpaid (cancelled with their order, replaced, declined) whose cashier the
/// gateway may still accept until it expires: a page-pay trade exists at Alipay only once the
/// buyer logs in, so closing it early may have found nothing to close. Each is asked about once a
/// minute until the gateway has answered once after its expiry (plus a margin), even when the
/// shop was stopped through that time; a payment found is applied, which refunds it when its
/// order is gone.
async fn watch_ended_cashiers(shop: &Arc<Shop>) -> Result<(), ApiError> {
    let now = shop.now();
    let margin = chrono::Duration::minutes(EXPIRY_MARGIN_MINUTES);
    let before = now - chrono::Duration::seconds(60);
    let ended = shop.blocking(move |s| s.ended_attempts_still_payable(margin, before)).await?;
    for a in ended {
        payments::look_again(shop, a).await?;
    }
    Ok(())
}

/// The carrier of every parcel.
const CARRIER: Carrier = Carrier::HaitaoExpress;

fn declaration_no(o: &OrderCore) -> String {
    let clean: String = o.id.chars().filter(|c| c.is_ascii_alphanumeric()).collect();
    let mut no = format!("CD{}{:02}", clean, o.declare_seq.clamp(0, 99));
    if no.len() > 32 {
        no = no.split_off(no.len() - 32);
    }
    no
}

/// Declares paid orders' payments to customs with the orderer's identity.
async fn declare(shop: &Arc<Shop>) -> Result<(), ApiError> {
    let pending = shop.blocking(|s| s.orders_to_declare()).await?;
    for o in pending {
        let Some(aid) = o.paid_attempt_id.clone() else { continue };
        let Some(attempt) = shop.blocking(move |s| s.attempt(&aid)).await? else { continue };
        let Some(trade_no) = attempt.trade_no.clone() else { continue };
        let call = CustomsDeclare {
            out_request_no: declaration_no(&o),
            trade_no,
            merchant_customs_code: shop.customs.merchant_customs_code.clone(),
            merchant_customs_name: shop.customs.merchant_customs_name.clone(),
            amount: haitao_alipay::AmountText::from_money(o.total),
            customs_place: shop.customs.customs_place.clone(),
            is_split: None,
            sub_out_biz_no: None,
            buyer_info: Some(BuyerInfo {
                buyer_name: o.orderer_name.clone(),
                buyer_cert_no: o.orderer_id_number.clone(),
            }),
        };
        match shop.alipay.execute(&call).await {
            Ok(r) => {
                let now = shop.now();
                let identity = r.identity_matches();
                let event = if identity == Some(false) {
                    TrackingEvent {
                        at: now,
                        stage: TrackingStage::CustomsHold,
                        description: loc(
                            "海关暂扣：订购人与支付人不一致。请更正订购人为付款人并重新申报，或申请退款。",
                            "Held by customs: the orderer is not the payer. Correct the orderer to the payer and declare again, or ask for a refund.",
                        ),
                        location: loc("杭州海关", "Hangzhou Customs"),
                    }
                } else {
                    TrackingEvent {
                        at: now,
                        stage: TrackingStage::CustomsDeclared,
                        description: loc(
                            "订单、支付单、运单已推送海关（三单对碰）",
                            "Order, payment and waybill declared to customs",
                        ),
                        location: loc("杭州海关", "Hangzhou Customs"),
                    }
                };
                // The waybill is made with the declaration, in the same write: a stop in between
                // can never leave a declared parcel without one.
                let number = format!(
                    "HTX{}",
                    shop.id("")
                        .chars()
                        .filter(char::is_ascii_alphanumeric)
                        .take(12)
                        .collect::<String>()
                        .to_uppercase()
                );
                let (oid, no) = (o.id.clone(), r.alipay_declare_no.clone());
                let recorded = shop
                    .blocking(move |s| {
                        s.record_declaration(&oid, &no, identity, &event, (&number, CARRIER), now)
                    })
                    .await?;
                if !recorded {
                    // Refunded or cancelled while the declaration was on its way: nothing ships.
                    tracing::info!(order = %o.id, "order changed during its customs declaration; not shipping");
                }
            }
            Err(CallError::Unknown(cause)) => {
                tracing::warn!(order = %o.id, %cause, "customs declaration outcome unknown; retrying")
            }
            Err(e) => tracing::error!(order = %o.id, error = %e, "customs declaration refused"),
        }
    }
    Ok(())
}

/// The logistics timeline, in logistics minutes after the customs declaration.
const TIMELINE: [(i64, TrackingStage); 5] = [
    (60, TrackingStage::Picked),
    (6 * 60, TrackingStage::CustomsCleared),
    (18 * 60, TrackingStage::HandedToCourier),
    (40 * 60, TrackingStage::OutForDelivery),
    (48 * 60, TrackingStage::Delivered),
];

fn describe(stage: TrackingStage) -> (Localized, Localized) {
    match stage {
        TrackingStage::Picked => (
            loc("保税仓已拣货打包", "Picked and packed at the bonded warehouse"),
            loc("杭州综合保税区", "Hangzhou bonded zone"),
        ),
        TrackingStage::CustomsCleared => {
            (loc("海关已放行", "Cleared by customs"), loc("杭州海关", "Hangzhou Customs"))
        }
        TrackingStage::CustomsInspection => (
            loc(
                "海关查验未通过，订单将取消并退款",
                "Customs inspection failed; the order will be cancelled and refunded",
            ),
            loc("杭州海关", "Hangzhou Customs"),
        ),
        TrackingStage::HandedToCourier => {
            (loc("已交国内快递", "Handed to the domestic courier"), loc("杭州转运中心", "Hangzhou hub"))
        }
        TrackingStage::OutForDelivery => {
            (loc("快递员正在派送", "Out for delivery"), loc("收货地配送站", "Local delivery station"))
        }
        TrackingStage::Delivered => (loc("已签收", "Delivered"), loc("收货地址", "Delivery address")),
        other => (loc("物流更新", "Update"), loc("", &format!("{other:?}"))),
    }
}

/// Advances parcels along the timeline on the shop's clock (accelerated by `logistics_speed`).
async fn logistics(shop: &Arc<Shop>) -> Result<(), ApiError> {
    let orders = shop.blocking(|s| s.orders_in_transit()).await?;
    let now = shop.now();
    for o in orders {
        let oid = o.id.clone();
        let events = shop.blocking(move |s| s.tracking(&oid)).await?;
        let Some(start) = events.iter().find(|e| e.stage == TrackingStage::CustomsDeclared).map(|e| e.at)
        else {
            continue;
        };
        let key = format!("inspection_fail:{}", o.id);
        let inspection_fails = shop.blocking(move |s| s.meta(&key)).await?.is_some();
        for (minutes, stage) in TIMELINE {
            if events.iter().any(|e| e.stage == stage) {
                continue;
            }
            let real_ms = minutes * 60_000 / shop.logistics_speed.max(1);
            let at: DateTime<Utc> = start + chrono::Duration::milliseconds(real_ms);
            if at > now {
                break;
            }
            if stage == TrackingStage::CustomsCleared && inspection_fails {
                hold_for_inspection(shop, &o, at).await?;
                break;
            }
            let (description, location) = describe(stage);
            let e = TrackingEvent { at, stage, description, location };
            let status = match stage {
                TrackingStage::CustomsCleared => Some((OrderStatus::Cleared, None)),
                TrackingStage::HandedToCourier => Some((OrderStatus::Shipped, None)),
                TrackingStage::Delivered => Some((OrderStatus::Delivered, None)),
                _ => None,
            };
            let oid = o.id.clone();
            if !shop.blocking(move |s| s.advance_parcel(&oid, &e, status, now)).await? {
                // Refunded since this run read it: the parcel goes no further.
                break;
            }
        }
    }
    Ok(())
}

/// A failed customs inspection: the order is held, cancelled and refunded in full.
async fn hold_for_inspection(shop: &Arc<Shop>, o: &OrderCore, at: DateTime<Utc>) -> Result<(), ApiError> {
    let now = shop.now();
    let (description, location) = describe(TrackingStage::CustomsInspection);
    let e = TrackingEvent { at, stage: TrackingStage::CustomsInspection, description, location };
    // The refund goes to the attempt that paid; the hold and the refund are recorded together, so
    // a stop in between can never leave a held order nobody refunds.
    let attempt = match o.paid_attempt_id.clone() {
        Some(aid) => shop.blocking(move |s| s.attempt(&aid)).await?,
        None => None,
    };
    let refund = attempt.map(|a| RefundRow {
        id: shop.id("RF"),
        order_id: o.id.clone(),
        attempt_id: a.id.clone(),
        out_request_no: format!("INSP{}", a.out_trade_no),
        amount: o.total,
        reason: "customs inspection failed".into(),
        status: RefundStatus::Pending,
    });
    let oid = o.id.clone();
    let (_, recorded) = shop.blocking(move |s| s.hold_failed_inspection(&oid, &e, refund, now)).await?;
    if let Some(row) = recorded {
        payments::settle_refund(shop, &row).await;
    }
    Ok(())
}

/// How long after the gateway refused an inspection refund another is tried.
pub const INSPECTION_REFUND_RETRY: chrono::Duration = chrono::Duration::hours(1);
/// How many refused inspection refunds end the retries (customer service takes over; the buyer
/// sees each refused refund on the order).
pub const INSPECTION_REFUND_TRIES: u32 = 5;

/// A held order's buyer is owed the rest of their money when its inspection refund was refused
/// or an earlier refund failed after the hold: a further refund of what is left is recorded and
/// sent, an hour after any refusal, at most `INSPECTION_REFUND_TRIES` refusals in all.
async fn top_up_inspection_refunds(shop: &Arc<Shop>) -> Result<(), ApiError> {
    let now = shop.now();
    let retry_from = now - INSPECTION_REFUND_RETRY;
    let owed = shop.blocking(move |s| s.inspection_refunds_owed(retry_from, INSPECTION_REFUND_TRIES)).await?;
    for o in owed {
        let Some(aid) = o.paid_attempt_id.clone() else { continue };
        let Some(attempt) = shop.blocking(move |s| s.attempt(&aid)).await? else { continue };
        let row = RefundRow {
            id: shop.id("RF"),
            order_id: o.id.clone(),
            attempt_id: attempt.id.clone(),
            out_request_no: String::new(),
            amount: o.total,
            reason: "customs inspection failed".into(),
            status: RefundStatus::Pending,
        };
        let out = attempt.out_trade_no.clone();
        let recorded = shop
            .blocking(move |s| {
                s.top_up_inspection_refund(row, &out, retry_from, INSPECTION_REFUND_TRIES, now)
            })
            .await?;
        if let Some(row) = recorded {
            tracing::info!(order = %o.id, refund = %row.id, amount = %row.amount, "inspection refund topped up");
            payments::settle_refund(shop, &row).await;
        }
    }
    Ok(())
}

async fn retry_refunds(shop: &Arc<Shop>) -> Result<(), ApiError> {
    let now = shop.now();
    let pending = shop.blocking(move |s| s.pending_refunds(now)).await?;
    for r in pending {
        payments::settle_refund(shop, &r).await;
    }
    Ok(())
}

/// The sweeper: a paid attempt that is not its order's payment must have its money on the way
/// back. Paying records that refund in the same transaction; this finds any left without one
/// (a refund an older Haitao marked failed for good, a row repaired by hand) and refunds the rest.
async fn sweep_uncovered_payments(shop: &Arc<Shop>) -> Result<(), ApiError> {
    let uncovered = shop.blocking(|s| s.uncovered_payments()).await?;
    for a in uncovered {
        let row = RefundRow {
            id: shop.id("RF"),
            order_id: a.order_id.clone(),
            attempt_id: a.id.clone(),
            out_request_no: String::new(),
            amount: a.amount,
            reason: String::new(),
            status: RefundStatus::Pending,
        };
        let now = shop.now();
        if let Some(row) = shop.blocking(move |s| s.cover_payment(row, now)).await? {
            tracing::warn!(attempt = %a.id, refund = %row.id, amount = %row.amount, "a payment kept by mistake is refunded");
            payments::settle_refund(shop, &row).await;
        }
    }
    Ok(())
}

/// Address events older than a day count towards no limit (windows are at most a day).
async fn forget_address_events(shop: &Arc<Shop>) -> Result<(), ApiError> {
    let before = shop.now() - chrono::Duration::days(1);
    shop.blocking(move |s| s.prune_address_events(before)).await?;
    Ok(())
}

/// Closes the gateway trade of an attempt (used when an order is cancelled by the buyer).
pub async fn close_trade(shop: &Arc<Shop>, out_trade_no: &str) -> Result<bool, ApiError> {
    match shop
        .alipay
        .execute(&Close { trade: TradeRef::out_trade_no(out_trade_no.to_owned()), operator_id: None })
        .await
    {
        Ok(_) => Ok(true),
        Err(CallError::Failed(g)) if g.sub_code() == Some(acq::TRADE_NOT_EXIST) => Ok(true),
        Err(e) => {
            tracing::warn!(error = %e, "close failed");
            Ok(false)
        }
    }
}

/// One pass over every job, unless another instance on the same database is running one.
pub async fn run_once(shop: &Arc<Shop>) {
    let _guard = shop.jobs_lock.lock().await;
    let (name, time) = crate::leases::JOBS;
    let lease = match crate::leases::try_take(shop, name, time).await {
        Ok(Some(lease)) => lease,
        Ok(None) => {
            tracing::debug!("another instance is running the background jobs");
            return;
        }
        Err(e) => {
            tracing::error!(error = %e, cause = e.cause.as_deref().unwrap_or(""), "background jobs: lease not taken");
            return;
        }
    };
    for (name, r) in [
        ("close overdue orders", close_overdue(shop).await),
        ("reconcile attempts", reconcile_stale(shop).await),
        ("ended cashiers", watch_ended_cashiers(shop).await),
        ("declare to customs", declare(shop).await),
        ("logistics", logistics(shop).await),
        ("refunds", retry_refunds(shop).await),
        ("payments kept by mistake", sweep_uncovered_payments(shop).await),
        ("inspection refunds owed", top_up_inspection_refunds(shop).await),
        ("forget old address events", forget_address_events(shop).await),
        ("reconcile with the daily bill", crate::reconcile::run(shop).await),
    ] {
        if let Err(e) = r {
            tracing::error!(job = name, error = %e, cause = e.cause.as_deref().unwrap_or(""), "background job failed");
        }
    }
    lease.release(shop).await;
}

/// The background loop.
pub async fn run(shop: Arc<Shop>, every: Duration) {
    loop {
        run_once(&shop).await;
        tokio::select! {
            () = shop.wake.notified() => {}
            () = tokio::time::sleep(every) => {}
        }
    }
}
