//! Paying for orders through Alipay: payment attempts, the notify endpoint, confirmation after the
//! return redirect, reconciliation by query, refunds.
//!
//! Only a verified notification or a gateway query ever marks an order paid. Every path is
//! idempotent and converges: a notification and a confirmation for the same attempt apply once; a
//! payment that lands on an order already paid (or gone) is refunded automatically.

use std::sync::Arc;

use axum::http::StatusCode;
use haitao_alipay::api::{
    Close, ExtendParams, FeePayer as AliFeePayer, HuabeiPeriods, PagePay, PayChannel, Precreate, Query,
    Refund, TradeRef, TradeStatus,
};
use haitao_alipay::inbound::{Expected, Rejection};
use haitao_alipay::status::acq;
use haitao_alipay::{CallError, Callbacks};
use haitao_shop_api::catalog::Localized;
use haitao_shop_api::error::ErrorCode;
use haitao_shop_api::orders::{
    AttemptStatus, ConfirmPayment, FeePayer, OrderStatus, PayMode, PaymentAttempt, PaymentFailure,
    PaymentMethod, RefundStatus, StartPayment, TrackingEvent, TrackingStage,
};

use crate::error::ApiError;
use crate::state::Shop;
use crate::store::{AUTOMATIC_REFUND_PREFIX, NotificationApplied, PaymentApplied, RefundRow};

/// Alipay channels for a payment method, and the Huabei installment terms when applicable.
pub fn channels_for(
    shop: &Shop,
    method: PaymentMethod,
) -> Result<(Vec<PayChannel>, Option<ExtendParams>), ApiError> {
    Ok(match method {
        PaymentMethod::Balance => (vec![PayChannel::Balance, PayChannel::MoneyFund], None),
        PaymentMethod::BankCard => (vec![PayChannel::DebitCardExpress, PayChannel::CreditCardExpress], None),
        PaymentMethod::Huabei => (vec![PayChannel::Pcredit], None),
        PaymentMethod::HuabeiInstallments { periods } => {
            let term = shop.pricing.huabei_term(periods).ok_or_else(|| {
                ApiError::validation("method", "Huabei installments are 3, 6 or 12 periods")
            })?;
            let p = HuabeiPeriods::from_count(periods)
                .ok_or_else(|| ApiError::validation("method", "unsupported periods"))?;
            let payer = match term.payer {
                FeePayer::Buyer => AliFeePayer::Buyer,
                FeePayer::Seller => AliFeePayer::Seller,
            };
            (vec![PayChannel::PcreditInstallment], Some(ExtendParams::huabei(p, payer)))
        }
        PaymentMethod::InternationalCard => (vec![PayChannel::CreditCard], None),
    })
}

/// `return_url` allow-list: loopback HTTP(S) addresses (the desktop client's in-app interception
/// and one-shot listeners), the shop's own return page, and the `haitao:` app scheme.
pub fn return_url_allowed(shop: &Shop, raw: &str) -> bool {
    url::Url::parse(&shop.url("api/v1/alipay/return")).is_ok_and(|own| return_url_allowed_with(&own, raw))
}

/// The rule behind [`return_url_allowed`], given the shop's own return page. The return page must
/// match exactly (scheme, host, port and path; any query); no address may carry user-info.
fn return_url_allowed_with(own_return_page: &url::Url, raw: &str) -> bool {
    let Ok(u) = url::Url::parse(raw) else { return false };
    if u.scheme() == "haitao" {
        return true;
    }
    if !matches!(u.scheme(), "http" | "https") || !u.username().is_empty() || u.password().is_some() {
        return false;
    }
    let loopback = match u.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(d)) => d == "localhost",
        None => false,
    };
    loopback
        || (u.scheme() == own_return_page.scheme()
            && u.host() == own_return_page.host()
            && u.port_or_known_default() == own_return_page.port_or_known_default()
            && u.path() == own_return_page.path())
}

fn failure_for(sub_code: Option<&str>) -> PaymentFailure {
    match sub_code {
        Some(acq::BUYER_BALANCE_NOT_ENOUGH | acq::BUYER_BANKCARD_BALANCE_NOT_ENOUGH) => {
            PaymentFailure::InsufficientFunds
        }
        Some(acq::TRADE_HAS_CLOSE) => PaymentFailure::Expired,
        _ => PaymentFailure::Rejected,
    }
}

async fn save(shop: &Arc<Shop>, a: PaymentAttempt) -> Result<PaymentAttempt, ApiError> {
    let a2 = a.clone();
    shop.blocking(move |s| s.update_attempt(&a2)).await?;
    Ok(a)
}

/// Starts a payment attempt for an order. The attempt is recorded before anything is signed or
/// sent; a second attempt is refused while an earlier one may still succeed. One start per order
/// at a time, in every instance of the shop ([`crate::leases::payment_start`]).
pub async fn start(
    shop: &Arc<Shop>,
    account_id: &str,
    order_id: &str,
    req: StartPayment,
) -> Result<PaymentAttempt, ApiError> {
    // On a task of its own, so a buyer who hangs up does not leave the lease held and the attempt
    // half-recorded.
    let (shop, account_id, order_id) = (shop.clone(), account_id.to_owned(), order_id.to_owned());
    tokio::spawn(async move {
        let (lease, alone) = crate::leases::payment_start(&shop, &order_id).await?;
        let started = start_alone(&shop, &account_id, &order_id, req).await;
        lease.release(&shop).await;
        drop(alone);
        started
    })
    .await
    .map_err(ApiError::internal)?
}

async fn start_alone(
    shop: &Arc<Shop>,
    account_id: &str,
    order_id: &str,
    req: StartPayment,
) -> Result<PaymentAttempt, ApiError> {
    let oid = order_id.to_owned();
    let order = shop
        .blocking(move |s| s.order_core(&oid))
        .await?
        .filter(|o| o.account_id == account_id)
        .ok_or_else(|| ApiError::not_found("order"))?;
    if !return_url_allowed(shop, &req.return_url) {
        return Err(ApiError::validation("return_url", "this return address is not allowed")
            .with_code(ErrorCode::ReturnUrlNotAllowed));
    }
    let (channels, extend) = channels_for(shop, req.method)?;
    // Earlier attempts: resolve each before starting a new one.
    let oid = order.id.clone();
    let previous = shop.blocking(move |s| s.attempts_of(&oid)).await?;
    for prev in previous.into_iter().filter(|a| !a.status.is_final()) {
        let resolved = reconcile(shop, prev, true).await?;
        match resolved.status {
            AttemptStatus::Paid => return Ok(resolved),
            AttemptStatus::Unknown => {
                return Err(ApiError::conflict(
                    ErrorCode::PaymentInProgress,
                    "an earlier payment for this order may still succeed; check it again in a moment",
                ));
            }
            _ => {}
        }
    }
    let oid = order.id.clone();
    let order =
        shop.blocking(move |s| s.order_core(&oid)).await?.ok_or_else(|| ApiError::not_found("order"))?;
    match order.status {
        OrderStatus::AwaitingPayment => {}
        s if s.is_paid() => {
            return Err(ApiError::conflict(ErrorCode::InvalidState, "this order is already paid"));
        }
        _ => return Err(ApiError::conflict(ErrorCode::InvalidState, "this order is closed")),
    }
    let now = shop.now();
    if order.pay_deadline <= now {
        let oid = order.id.clone();
        shop.blocking(move |s| s.close_order(&oid, now)).await?;
        return Err(ApiError::conflict(ErrorCode::InvalidState, "the time to pay for this order has passed"));
    }
    let expires_at = (now + shop.attempt_timeout).min(order.pay_deadline);
    let mut attempt = PaymentAttempt {
        id: shop.id("PA"),
        order_id: order.id.clone(),
        out_trade_no: shop.id("HT"),
        method: req.method,
        mode: req.mode,
        amount: order.total,
        status: AttemptStatus::Started,
        failure: None,
        cashier_url: None,
        qr_code: None,
        return_url: req.return_url.clone(),
        trade_no: None,
        created_at: now,
        updated_at: now,
        expires_at,
    };
    let a2 = attempt.clone();
    shop.blocking(move |s| s.insert_attempt(&a2)).await?;
    tracing::info!(order = %order.id, attempt = %attempt.id, out_trade_no = %attempt.out_trade_no, method = %req.method.code(), "payment attempt started");

    let subject = format!("海淘订单 {}", order.id);
    let callbacks = Callbacks {
        notify_url: Some(shop.url("api/v1/alipay/notify")),
        return_url: Some(req.return_url.clone()),
    };
    match req.mode {
        PayMode::InApp | PayMode::Browser => {
            let mut pay =
                PagePay::new(attempt.out_trade_no.clone(), order.total, subject).enable_channels(channels);
            pay.extend_params = extend;
            pay.time_expire = Some(haitao_alipay::api::AlipayTime(expires_at));
            pay.passback_params = Some(format!("order%3D{}", order.id));
            pay.goods_type = Some("1".into());
            match shop.alipay.page_request(&pay, &callbacks) {
                Ok(signed) => {
                    attempt.cashier_url = Some(signed.to_get_url().to_string());
                    attempt.status = AttemptStatus::Redirected;
                }
                Err(e) => {
                    tracing::error!(error = %e, "could not sign the page payment");
                    attempt.status = AttemptStatus::Failed;
                    attempt.failure = Some(PaymentFailure::Rejected);
                }
            }
        }
        PayMode::Qr => {
            let mut pc = Precreate::new(attempt.out_trade_no.clone(), order.total, subject);
            pc.enable_pay_channels = Some(haitao_alipay::api::ChannelList(channels));
            pc.extend_params = extend;
            let minutes = u32::try_from((expires_at - now).num_minutes().max(1)).unwrap_or(15);
            pc.timeout_express = Some(haitao_alipay::api::TimeoutExpress::Minutes(minutes));
            match shop.alipay.execute_with(&pc, &callbacks).await {
                Ok(r) => {
                    attempt.qr_code = Some(r.qr_code);
                    attempt.status = AttemptStatus::Redirected;
                }
                Err(CallError::Unknown(cause)) => {
                    tracing::warn!(%cause, "precreate outcome unknown");
                    attempt.status = AttemptStatus::Unknown;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "precreate refused");
                    attempt.status = AttemptStatus::Failed;
                    attempt.failure = Some(failure_for(e.sub_code()));
                }
            }
        }
    }
    attempt.updated_at = shop.now();
    save(shop, attempt).await
}

/// The `paid` tracking event of an order paid at `now`.
fn paid_event(now: chrono::DateTime<chrono::Utc>) -> TrackingEvent {
    TrackingEvent {
        at: now,
        stage: TrackingStage::Paid,
        description: Localized {
            zh: "支付宝付款成功，等待推送海关".into(),
            en: "Paid with Alipay; waiting for the customs declaration".into(),
        },
        location: Localized { zh: "海淘".into(), en: "Haitao".into() },
    }
}

/// The refund of all of the payment of trade `out_trade_no`, recorded only if that payment cannot
/// be kept: the store sets its order, attempt, amount and reason from what it reads. Its id is
/// drawn whether or not it is needed, as ids come from the shop's IdGen, not from the store.
fn automatic_refund(shop: &Shop, out_trade_no: &str) -> RefundRow {
    RefundRow {
        id: shop.id("RF"),
        order_id: String::new(),
        attempt_id: String::new(),
        out_request_no: format!("{AUTOMATIC_REFUND_PREFIX}{out_trade_no}"),
        amount: haitao_alipay::money::Money::zero(haitao_alipay::money::Currency::Cny),
        reason: String::new(),
        status: RefundStatus::Pending,
    }
}

/// What follows a payment applied (by a notification or a query): the jobs woken for a paid
/// order, the refund of a payment that cannot be kept sent to the gateway.
async fn after_payment(
    shop: &Arc<Shop>,
    attempt: (&str, &str),
    (outcome, refund): (PaymentApplied, Option<RefundRow>),
) {
    let (order_id, attempt_id) = attempt;
    match outcome {
        PaymentApplied::Paid => {
            tracing::info!(order = %order_id, attempt = %attempt_id, "order paid");
            shop.wake.notify_waiters();
        }
        PaymentApplied::AlreadyApplied => {}
        PaymentApplied::Duplicate | PaymentApplied::OrderGone => {
            tracing::warn!(order = %order_id, attempt = %attempt_id, ?outcome, "payment cannot be kept; refunding it");
        }
    }
    if let Some(r) = refund {
        settle_refund(shop, &r).await;
    }
}

/// Applies a payment a gateway query confirmed and handles the rare cases where the money must go
/// back.
async fn apply_paid(
    shop: &Arc<Shop>,
    attempt: &PaymentAttempt,
    trade_no: &str,
    gateway_paid_at: Option<chrono::DateTime<chrono::Utc>>,
) -> Result<(), ApiError> {
    let (aid, tno) = (attempt.id.clone(), trade_no.to_owned());
    let now = shop.now();
    if gateway_paid_at.is_none() {
        tracing::warn!(out_trade_no = %attempt.out_trade_no, "the gateway gave no payment time; reconciliation matches this payment from the bill's side only");
    }
    let (event, refund) = (paid_event(now), automatic_refund(shop, &attempt.out_trade_no));
    let applied =
        shop.blocking(move |s| s.apply_payment(&aid, &tno, gateway_paid_at, &event, refund, now)).await?;
    after_payment(shop, (&attempt.order_id, &attempt.id), applied).await;
    Ok(())
}

/// Asks the gateway about an attempt and records the answer. With `abandon`, an unpaid trade is
/// closed so the old cashier can no longer take money.
pub async fn reconcile(
    shop: &Arc<Shop>,
    mut attempt: PaymentAttempt,
    abandon: bool,
) -> Result<PaymentAttempt, ApiError> {
    if attempt.status.is_final() {
        return Ok(attempt);
    }
    let query = shop.alipay.execute(&Query::new(TradeRef::out_trade_no(attempt.out_trade_no.clone()))).await;
    let now = shop.now();
    let expired = attempt.expires_at <= now;
    match query {
        Ok(r) => {
            let expected = Expected { total_amount: attempt.amount };
            if r.trade_status.is_paid() {
                if r.amount().ok() != Some(expected.total_amount) {
                    tracing::error!(out_trade_no = %attempt.out_trade_no, got = %r.total_amount, "gateway reports a different amount; not marking paid");
                    attempt.status = AttemptStatus::Unknown;
                } else {
                    apply_paid(shop, &attempt, &r.trade_no, r.send_pay_date.map(|t| t.0)).await?;
                    attempt.status = AttemptStatus::Paid;
                    attempt.trade_no = Some(r.trade_no);
                    attempt.failure = None;
                    return Ok(attempt);
                }
            } else if r.trade_status == TradeStatus::TradeClosed {
                attempt.status = AttemptStatus::Failed;
                attempt.failure =
                    Some(if abandon { PaymentFailure::Cancelled } else { PaymentFailure::Expired });
            } else if abandon || expired {
                return close_attempt(shop, attempt, abandon).await;
            } else {
                attempt.status = AttemptStatus::Redirected;
            }
        }
        Err(CallError::Failed(g)) if g.sub_code() == Some(acq::TRADE_NOT_EXIST) => {
            // Nobody has logged in to this cashier yet.
            if abandon || expired {
                return close_attempt(shop, attempt, abandon).await;
            }
        }
        Err(CallError::Unknown(cause)) => {
            tracing::warn!(%cause, out_trade_no = %attempt.out_trade_no, "query outcome unknown");
            attempt.status = AttemptStatus::Unknown;
        }
        Err(e) => {
            tracing::warn!(error = %e, out_trade_no = %attempt.out_trade_no, "query refused");
        }
    }
    attempt.updated_at = now;
    save(shop, attempt).await
}

/// Asks the gateway about an attempt that ended unpaid, in case its cashier took money after all;
/// such a payment is applied (and so refunded when the order is gone). The attempt is otherwise
/// left as it is.
pub async fn look_again(shop: &Arc<Shop>, attempt: PaymentAttempt) -> Result<(), ApiError> {
    let query = shop.alipay.execute(&Query::new(TradeRef::out_trade_no(attempt.out_trade_no.clone()))).await;
    let answered = match &query {
        Ok(r) if r.trade_status.is_paid() => {
            if r.amount().ok() == Some(attempt.amount) {
                tracing::warn!(out_trade_no = %attempt.out_trade_no, "an ended attempt was paid after all");
                return apply_paid(shop, &attempt, &r.trade_no, r.send_pay_date.map(|t| t.0)).await;
            }
            // Not an answer to act on: watched on, a minute apart.
            tracing::error!(out_trade_no = %attempt.out_trade_no, got = %r.total_amount, "gateway reports a different amount; not applying it");
            false
        }
        Ok(_) => true,
        Err(CallError::Failed(g)) if g.sub_code() == Some(acq::TRADE_NOT_EXIST) => true,
        Err(e) => {
            // No answer: asked again a minute later, not counted towards ending the watch.
            tracing::warn!(error = %e, out_trade_no = %attempt.out_trade_no, "looking at an ended attempt failed");
            false
        }
    };
    let (id, now) = (attempt.id.clone(), shop.now());
    shop.blocking(move |s| s.looked_at(&id, answered, now)).await
}

async fn close_attempt(
    shop: &Arc<Shop>,
    mut attempt: PaymentAttempt,
    cancelled: bool,
) -> Result<PaymentAttempt, ApiError> {
    let close = shop
        .alipay
        .execute(&Close { trade: TradeRef::out_trade_no(attempt.out_trade_no.clone()), operator_id: None })
        .await;
    match close {
        Ok(_) => {
            attempt.status = if cancelled { AttemptStatus::Failed } else { AttemptStatus::Closed };
            attempt.failure =
                Some(if cancelled { PaymentFailure::Cancelled } else { PaymentFailure::Expired });
        }
        Err(CallError::Failed(g)) if g.sub_code() == Some(acq::TRADE_NOT_EXIST) => {
            attempt.status = if cancelled { AttemptStatus::Failed } else { AttemptStatus::Closed };
            attempt.failure =
                Some(if cancelled { PaymentFailure::Cancelled } else { PaymentFailure::Expired });
        }
        Err(CallError::Failed(g)) if g.sub_code() == Some(acq::TRADE_STATUS_ERROR) => {
            // Paid in the meantime: look again.
            return Box::pin(reconcile(shop, attempt, false)).await;
        }
        Err(e) => {
            tracing::warn!(error = %e, "closing the trade did not succeed; the attempt stays unresolved");
            attempt.status = AttemptStatus::Unknown;
        }
    }
    attempt.updated_at = shop.now();
    save(shop, attempt).await
}

/// The notify endpoint's work: the signature verified here, then matched against its attempt,
/// applied and recorded in one store call (one transaction); a refund the payment needs is sent
/// after.
pub async fn handle_notify(shop: &Arc<Shop>, raw: &[u8]) -> Result<(), ApiError> {
    let reject = |r: Rejection| {
        tracing::warn!(rejection = %r, "notification rejected");
        ApiError::new(StatusCode::BAD_REQUEST, ErrorCode::Validation, "notification rejected")
            .detail(r.to_string())
    };
    let n = shop.inbound.notify(raw).map_err(reject)?;
    if n.trade_status.is_paid() && n.gmt_payment.is_none() {
        tracing::warn!(out_trade_no = %n.out_trade_no, "a payment notification without gmt_payment; reconciliation matches this payment from the bill's side only");
    }
    let now = shop.now();
    let refund = automatic_refund(shop, &n.out_trade_no);
    let event = paid_event(now);
    match shop.blocking(move |s| s.apply_notification(n, &event, refund, now)).await? {
        NotificationApplied::Rejected(r) => Err(reject(r)),
        NotificationApplied::Recorded { attempt, payment, .. } => {
            if let Some(applied) = payment {
                after_payment(shop, (&attempt.order_id, &attempt.id), applied).await;
            }
            Ok(())
        }
    }
}

/// After the return redirect (or when the buyer left the cashier): check what happened.
pub async fn confirm(
    shop: &Arc<Shop>,
    account_id: &str,
    attempt_id: &str,
    req: ConfirmPayment,
    abandon: bool,
) -> Result<PaymentAttempt, ApiError> {
    let aid = attempt_id.to_owned();
    let attempt = shop
        .blocking(move |s| s.attempt(&aid))
        .await?
        .ok_or_else(|| ApiError::not_found("payment attempt"))?;
    let oid = attempt.order_id.clone();
    let owner = shop.blocking(move |s| s.order_core(&oid)).await?.map(|o| o.account_id);
    if owner.as_deref() != Some(account_id) {
        return Err(ApiError::not_found("payment attempt"));
    }
    if let Some(q) = &req.return_query {
        // The redirect is only a hint; it is checked, logged, and never trusted on its own.
        match shop.inbound.return_redirect(q).and_then(|r| {
            if r.out_trade_no == attempt.out_trade_no {
                r.matched(Some(&Expected { total_amount: attempt.amount }))
            } else {
                Err(Rejection::UnknownOrder(r.out_trade_no))
            }
        }) {
            Ok(_) => tracing::info!(attempt = %attempt.id, "return redirect verified"),
            Err(e) => {
                tracing::warn!(attempt = %attempt.id, rejection = %e, "return redirect rejected; asking the gateway instead")
            }
        }
    }
    reconcile(shop, attempt, abandon).await
}

/// Sends a pending refund to the gateway and records the answer. Unknown outcomes stay pending and
/// are retried with the same `out_request_no`, which Alipay treats as the same refund.
pub async fn settle_refund(shop: &Arc<Shop>, r: &RefundRow) {
    let aid = r.attempt_id.clone();
    let Ok(Some(attempt)) = shop.blocking(move |s| s.attempt(&aid)).await else { return };
    let call = Refund {
        refund_reason: Some(r.reason.clone()),
        ..Refund::new(
            TradeRef::out_trade_no(attempt.out_trade_no.clone()),
            r.amount,
            r.out_request_no.clone(),
        )
    };
    let now = shop.now();
    let id = r.id.clone();
    let answer = match shop.alipay.execute(&call).await {
        // `fund_change = Y`: this call moved the money. `N`: a repeat of a refund made before,
        // or nothing moved; only the refund query says which (and when it was made).
        Ok(resp) if resp.fund_change == "Y" => {
            let at = resp.gmt_refund_pay.map(|t| t.0);
            Ok((resp, at))
        }
        Ok(resp) => match refund_went_through(shop, &attempt.out_trade_no, r).await {
            Some(Some(at)) => Ok((resp, at)),
            Some(None) | None => {
                // Sent again after a pause (with the same out_request_no, so never twice).
                tracing::warn!(refund = %r.id, "the gateway does not confirm this refund; it will be tried again");
                if let Err(e) = shop.blocking(move |s| s.defer_refund(&id, now, &REFUSED_REFUND_PAUSES)).await
                {
                    tracing::error!(refund = %r.id, error = %e, "recording the pause failed");
                }
                return;
            }
        },
        Err(e) => Err(e),
    };
    match answer {
        Ok((resp, refunded_at)) => {
            if refunded_at.is_none() {
                tracing::warn!(refund = %r.id, "the gateway gave no refund time; reconciliation matches this refund from the bill's side only");
            }
            tracing::info!(refund = %r.id, refund_fee = %resp.refund_fee, fund_change = %resp.fund_change, "refund done");
            let oid = r.order_id.clone();
            let full = shop
                .blocking(move |s| {
                    s.complete_refund(&id, refunded_at, now)?;
                    Ok(s.order_core(&oid)?.map(|o| o.status == OrderStatus::Refunded).unwrap_or(false))
                })
                .await;
            if let Ok(true) = full {
                let oid = r.order_id.clone();
                let e = TrackingEvent {
                    at: now,
                    stage: TrackingStage::Cancelled,
                    description: Localized {
                        zh: "订单已全额退款".into(),
                        en: "The order was refunded in full".into(),
                    },
                    location: Localized { zh: "海淘".into(), en: "Haitao".into() },
                };
                let _ = shop.blocking(move |s| s.add_tracking(&oid, &e, now)).await;
            }
        }
        Err(CallError::Unknown(cause)) => {
            tracing::warn!(refund = %r.id, %cause, "refund outcome unknown; will retry")
        }
        Err(e) if r.must_go_back() => {
            // Money the shop must not keep: refused now (the merchant's balance settled away, a
            // gateway fault), tried again after a growing pause, never given up.
            match shop.blocking(move |s| s.defer_refund(&id, now, &REFUSED_REFUND_PAUSES)).await {
                Ok(n) => {
                    tracing::error!(refund = %r.id, error = %e, refusals = n, "refund refused; it will be tried again")
                }
                Err(store) => {
                    tracing::error!(refund = %r.id, error = %e, %store, "refund refused; recording the refusal failed")
                }
            }
        }
        Err(e) => {
            tracing::error!(refund = %r.id, error = %e, "refund refused");
            let _ = shop.blocking(move |s| s.fail_refund(&id, now)).await;
        }
    }
}

/// Whether the gateway records refund `r` of `out_trade_no` as done, for its amount, and when
/// (`Some(Some(time))`: done, with the gateway's time when it gave one; `Some(None)`: not done;
/// `None`: it could not say). Only `REFUND_SUCCESS` counts: an answer without a status is a
/// refund not received or failed.
async fn refund_went_through(
    shop: &Arc<Shop>,
    out_trade_no: &str,
    r: &RefundRow,
) -> Option<Option<Option<chrono::DateTime<chrono::Utc>>>> {
    let q = haitao_alipay::api::RefundQuery::with_time(
        TradeRef::out_trade_no(out_trade_no.to_owned()),
        r.out_request_no.clone(),
    );
    match shop.alipay.execute(&q).await {
        Ok(a) => Some(
            (a.refund_status.as_deref() == Some("REFUND_SUCCESS")
                && a.refund_amount.as_ref().and_then(|m| m.to_money(r.amount.currency()).ok())
                    == Some(r.amount))
            .then(|| a.gmt_refund_pay.map(|t| t.0)),
        ),
        Err(e) => {
            tracing::warn!(error = %e, out_request_no = %r.out_request_no, "refund query failed");
            None
        }
    }
}

/// Pauses after the 1st, 2nd, … refusal of a refund that must go through (the last repeats).
pub const REFUSED_REFUND_PAUSES: [chrono::Duration; 5] = [
    chrono::Duration::minutes(1),
    chrono::Duration::minutes(10),
    chrono::Duration::hours(1),
    chrono::Duration::hours(6),
    chrono::Duration::hours(24),
];

impl ApiError {
    pub fn with_code(mut self, code: ErrorCode) -> Self {
        self.problem.code = code;
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn return_addresses() {
        let own = url::Url::parse("https://shop.example.com/api/v1/alipay/return").unwrap();
        for ok in [
            "http://127.0.0.1:43125/return/7f3a",
            "http://[::1]:9/r",
            "http://localhost:5000/x?y=1",
            "haitao://payment-return",
            "https://shop.example.com/api/v1/alipay/return",
            "https://shop.example.com:443/api/v1/alipay/return?attempt=9",
        ] {
            assert!(return_url_allowed_with(&own, ok), "{ok}");
        }
        for bad in [
            "https://evil.example.com/api/v1/alipay/return",
            "https://shop.example.com.evil.example/api/v1/alipay/return",
            "https://shop.example.com@evil.example/api/v1/alipay/return",
            "http://shop.example.com/api/v1/alipay/return",
            "https://shop.example.com:8443/api/v1/alipay/return",
            "https://shop.example.com/api/v1/alipay/returnx",
            "https://shop.example.com/api/v1/orders",
            "http://user:pw@127.0.0.1:9/r",
            "http://127.0.0.2.evil.example/r",
            "javascript:alert(1)",
            "file:///etc/passwd",
            "not a url",
        ] {
            assert!(!return_url_allowed_with(&own, bad), "{bad}");
        }
    }
}
