//! The shop's checkout against the in-process sandbox: each payment method from cart to delivered,
//! and the failure paths (short balance, cancel, timeout, orderer ≠ payer, refunds, limits).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{LI, World, ZHANG, paid_status, world, world_with};
use haitao_alipay::api::TradeStatus;
use haitao_alipay::money::{Currency, Money};
use haitao_sandbox_api::{
    AdvanceClock, ForceRequest, Notification, Outcome, PayAnswer, PayError, PayRequest, PayWith, TradeView,
    path,
};
use serde_json::{Value, json};

const RETURN: &str = "http://127.0.0.1:45678/haitao/return";

async fn ordered(
    w: &World,
    phone: &str,
    who: (&str, &str),
    lo: i64,
    hi: i64,
    key: &str,
) -> (common::Buyer, Value) {
    let b = w.buyer(phone, who.0, who.1).await;
    let p = w.product_between(lo, hi).await;
    w.add_to_cart(&b, p["id"].as_str().unwrap(), 1).await;
    let o = w.order(&b, key).await;
    assert_eq!(o.status, 201, "{}", o.body);
    (b, o.body)
}

async fn start(w: &World, b: &common::Buyer, order: &Value, method: Value, mode: &str) -> Value {
    let r = w
        .post(
            &format!("orders/{}/payments", order["id"].as_str().unwrap()),
            &b.token,
            json!({"method": method, "mode": mode, "return_url": RETURN}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    r.body
}

async fn pay_in_sandbox(
    w: &World,
    attempt: &Value,
    persona: &str,
    channel: PayWith,
    installments: Option<u32>,
) -> (u16, PayAnswer) {
    w.open_cashier(attempt).await;
    let mut req = PayRequest::new(out_trade_no(attempt), persona, channel);
    req.installments = installments;
    let (s, v) = w.sandbox_post(path::PAY, &req).await;
    (s, serde_json::from_value(v).unwrap())
}

fn out_trade_no(attempt: &Value) -> &str {
    attempt["out_trade_no"].as_str().unwrap()
}

/// Where the sandbox sent the browser after paying.
fn return_url(a: &PayAnswer) -> Option<&str> {
    a.paid().and_then(|p| p.return_url.as_deref())
}

async fn confirm(w: &World, b: &common::Buyer, attempt: &Value, return_url: Option<&str>) -> Value {
    let q = return_url.and_then(|u| u.split_once('?')).map(|(_, q)| q.to_owned());
    let r = w
        .post(
            &format!("payments/{}/confirm", attempt["id"].as_str().unwrap()),
            &b.token,
            json!({"return_query": q}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    r.body
}

async fn order_of(w: &World, b: &common::Buyer, id: &str) -> Value {
    w.get(&format!("orders/{id}"), &b.token).await
}

#[tokio::test]
async fn every_payment_method_from_cart_to_delivered() {
    let w = world().await;
    let cases: [(Value, PayWith, Option<u32>); 5] = [
        (json!({"kind": "balance"}), PayWith::Balance, None),
        (json!({"kind": "bank_card"}), PayWith::DebitCard, None),
        (json!({"kind": "huabei"}), PayWith::Huabei, None),
        (json!({"kind": "huabei_installments", "periods": 6}), PayWith::Huabei, Some(6)),
        (json!({"kind": "international_card"}), PayWith::InternationalCard, None),
    ];
    for (i, (method, channel, inst)) in cases.into_iter().enumerate() {
        let (mut b, order) =
            ordered(&w, &format!("1380000100{i}"), ZHANG, 20_000, 150_000, &format!("key-method-{i}")).await;
        assert_eq!(order["status"], json!("awaiting_payment"));
        let attempt = start(&w, &b, &order, method.clone(), "in_app").await;
        assert_eq!(attempt["status"], json!("redirected"));
        let (s, paid) = pay_in_sandbox(&w, &attempt, "zhangwei@sandbox.haitao", channel, inst).await;
        assert_eq!(s, 200, "{method}: {paid:?}");
        let confirmed = confirm(&w, &b, &attempt, return_url(&paid)).await;
        assert_eq!(confirmed["status"], json!("paid"), "{method}");
        let oid = order["id"].as_str().unwrap();
        assert!(paid_status(&order_of(&w, &b, oid).await["status"]));
        // Customs, then the logistics timeline (60× faster than real time; 48 tracking hours = 48 minutes).
        w.run_jobs().await;
        let o = order_of(&w, &b, oid).await;
        assert_eq!(o["status"], json!("customs_declared"), "{o}");
        assert_eq!(o["customs"]["identity_check"], json!(true));
        assert!(o["waybill"]["number"].as_str().is_some());
        w.clock.advance(chrono::Duration::minutes(49));
        w.run_jobs().await;
        w.refresh(&mut b).await;
        let o = order_of(&w, &b, oid).await;
        assert_eq!(o["status"], json!("delivered"), "{o}");
        let stages: Vec<&str> =
            o["tracking"].as_array().unwrap().iter().map(|e| e["stage"].as_str().unwrap()).collect();
        assert_eq!(
            stages,
            [
                "paid",
                "customs_declared",
                "picked",
                "customs_cleared",
                "handed_to_courier",
                "out_for_delivery",
                "delivered"
            ]
        );
        let pdf = w
            .http
            .get(w.url(&format!("orders/{oid}/invoice.pdf")))
            .bearer_auth(&b.token)
            .send()
            .await
            .unwrap();
        assert_eq!(pdf.status(), 200);
        assert!(pdf.bytes().await.unwrap().starts_with(b"%PDF"));
    }
    w.settle().await;
    w.ledger_conserved().await;
}

#[tokio::test]
async fn short_balance_then_another_channel() {
    let w = world().await;
    let (b, order) = ordered(&w, "13800002001", ZHANG, 5_000, 50_000, "key-short").await;
    let attempt = start(&w, &b, &order, json!({"kind": "balance"}), "in_app").await;
    let (s, _) = w
        .sandbox_post(path::SCENARIOS, &ForceRequest::order(out_trade_no(&attempt), Outcome::ShortBalance))
        .await;
    assert_eq!(s, 200);
    let (s, v) = pay_in_sandbox(&w, &attempt, "zhangwei@sandbox.haitao", PayWith::Balance, None).await;
    assert_eq!(s, 422, "{v:?}");
    assert!(matches!(v.refused(), Some(PayError::Insufficient { .. })), "{v:?}");
    // Still unpaid; a new attempt with bank cards works.
    let c = confirm(&w, &b, &attempt, None).await;
    assert_eq!(c["status"], json!("redirected"));
    let second = start(&w, &b, &order, json!({"kind": "bank_card"}), "in_app").await;
    assert_ne!(second["out_trade_no"], attempt["out_trade_no"], "a fresh out_trade_no per attempt");
    let first = w.get(&format!("payments/{}", attempt["id"].as_str().unwrap()), &b.token).await;
    assert!(
        matches!(first["status"].as_str(), Some("failed" | "closed")),
        "the earlier attempt was closed first: {first}"
    );
    let (s, paid) = pay_in_sandbox(&w, &second, "zhangwei@sandbox.haitao", PayWith::DebitCard, None).await;
    assert_eq!(s, 200, "{paid:?}");
    assert_eq!(confirm(&w, &b, &second, return_url(&paid)).await["status"], json!("paid"));
    // The old cashier cannot take money any more.
    let again = PayRequest::new(out_trade_no(&attempt), "zhangwei@sandbox.haitao", PayWith::DebitCard);
    let (s, _) = w.sandbox_post(path::PAY, &again).await;
    assert_eq!(s, 422);
    w.ledger_conserved().await;
}

#[tokio::test]
async fn cancelling_in_the_cashier_and_unpaid_timeout() {
    let w = world().await;
    let (mut b, order) = ordered(&w, "13800003001", ZHANG, 5_000, 50_000, "key-cancel").await;
    let attempt = start(&w, &b, &order, json!({"kind": "balance"}), "in_app").await;
    w.open_cashier(&attempt).await;
    let r =
        w.post(&format!("payments/{}/abandon", attempt["id"].as_str().unwrap()), &b.token, json!({})).await;
    assert_eq!(r.body["status"], json!("failed"));
    assert_eq!(r.body["failure"], json!("cancelled"));
    assert_eq!(order_of(&w, &b, order["id"].as_str().unwrap()).await["status"], json!("awaiting_payment"));
    let product = order["lines"][0]["product_id"].as_str().unwrap().to_owned();
    let stock_before =
        w.call(reqwest::Method::GET, &format!("catalog/products/{product}"), None, None).await.body["stock"]
            .as_i64()
            .unwrap();
    // 31 minutes later the order closes and its stock comes back.
    w.clock.advance(chrono::Duration::minutes(31));
    w.run_jobs().await;
    w.refresh(&mut b).await;
    assert_eq!(order_of(&w, &b, order["id"].as_str().unwrap()).await["status"], json!("closed"));
    let stock_after =
        w.call(reqwest::Method::GET, &format!("catalog/products/{product}"), None, None).await.body["stock"]
            .as_i64()
            .unwrap();
    assert_eq!(stock_after, stock_before + 1);
    let r = w
        .post(
            &format!("orders/{}/payments", order["id"].as_str().unwrap()),
            &b.token,
            json!({"method": {"kind": "balance"}, "mode": "in_app", "return_url": RETURN}),
        )
        .await;
    assert_eq!((r.status, r.body["code"].as_str()), (409, Some("invalid_state")));
}

#[tokio::test]
async fn orderer_not_payer_is_held_then_corrected() {
    let w = world().await;
    // 李娜's card holds ¥200: keep the order small.
    let (b, order) = ordered(&w, "13800004001", ZHANG, 5_000, 12_000, "key-held").await;
    let attempt = start(&w, &b, &order, json!({"kind": "bank_card"}), "in_app").await;
    // 李娜 pays for 张伟's order.
    let (s, paid) = pay_in_sandbox(&w, &attempt, "lina@sandbox.haitao", PayWith::DebitCard, None).await;
    assert_eq!(s, 200, "{paid:?}");
    confirm(&w, &b, &attempt, return_url(&paid)).await;
    w.run_jobs().await;
    let oid = order["id"].as_str().unwrap();
    let o = order_of(&w, &b, oid).await;
    assert_eq!(o["status"], json!("held"));
    assert_eq!(o["customs"]["hold_reason"], json!("orderer_not_payer"));
    assert_eq!(o["customs"]["identity_check"], json!(false));
    let bad = w
        .post(
            &format!("orders/{oid}/orderer"),
            &b.token,
            json!({"name": LI.0, "id_number": "310104199207082345"}),
        )
        .await;
    assert_eq!((bad.status, bad.body["field"].as_str()), (422, Some("id_number")));
    let fixed =
        w.post(&format!("orders/{oid}/orderer"), &b.token, json!({"name": LI.0, "id_number": LI.1})).await;
    assert_eq!(fixed.status, 200, "{}", fixed.body);
    w.run_jobs().await;
    let o = order_of(&w, &b, oid).await;
    assert_eq!(o["status"], json!("customs_declared"), "{o}");
    assert_eq!(o["customs"]["identity_check"], json!(true));
    assert_eq!(o["orderer"]["name"], json!(LI.0));
    assert!(
        o["waybill"].is_object() && o["customs"]["waybill_declared"] == json!(true),
        "declared with its waybill: {o}"
    );
}

/// Correcting the orderer checks the payer's annual quota in the same transaction as the change:
/// two held orders corrected to one payer whose quota has room for one only — the second is
/// refused, whatever the order of the checks (the check used to run before, outside the write).
#[tokio::test]
async fn orderer_corrections_to_one_payer_share_the_payers_quota() {
    // Room for one ¥100-ish order a year.
    let w = common::world_with(|cfg| {
        cfg.pricing.annual_limit = haitao_shop_api::Money::from_minor(15_000, haitao_shop_api::Currency::Cny);
    })
    .await;
    let mut held = Vec::new();
    for (phone, who, key) in
        [("13800004002", ZHANG, "key-held-a"), ("13800004003", ("王芳", "440305199502203459"), "key-held-b")]
    {
        let (b, order) = ordered(&w, phone, who, 5_000, 12_000, key).await;
        let attempt = start(&w, &b, &order, json!({"kind": "huabei"}), "in_app").await;
        let (s, paid) = pay_in_sandbox(&w, &attempt, "lina@sandbox.haitao", PayWith::Huabei, None).await;
        assert_eq!(s, 200, "{paid:?}");
        confirm(&w, &b, &attempt, return_url(&paid)).await;
        held.push((b, order["id"].as_str().unwrap().to_owned()));
    }
    w.run_jobs().await;
    let now = haitao_alipay::time::Clock::now(&w.clock);
    let limit = 15_000;
    let correct =
        |oid: String| w.shop.shop.blocking(move |s| s.correct_orderer(&oid, LI.0, LI.1, limit, now));
    correct(held[0].1.clone()).await.unwrap();
    let second = correct(held[1].1.clone()).await.unwrap_err();
    assert_eq!(second.problem.code, haitao_shop_api::error::ErrorCode::AnnualQuotaExceeded, "{second:?}");
    let o = order_of(&w, &held[1].0, &held[1].1).await;
    assert_eq!(o["status"], json!("held"), "nothing changed: {o}");
    // Through the API the same.
    let r = w
        .post(
            &format!("orders/{}/orderer", held[1].1),
            &held[1].0.token,
            json!({"name": LI.0, "id_number": LI.1}),
        )
        .await;
    assert_eq!((r.status, r.body["code"].as_str()), (409, Some("annual_quota_exceeded")), "{}", r.body);
}

#[tokio::test]
async fn refunds_partial_then_full_restore_the_quota() {
    let w = world().await;
    let (b, order, attempt) = paid_by_balance(&w, "13800005001", "key-refund").await;
    let quota = w.get("account/quota", &b.token).await;
    let dutiable = order["totals"]["dutiable"]["minor"].as_i64().unwrap();
    assert_eq!(quota["used"]["minor"].as_i64().unwrap(), dutiable);
    let oid = order["id"].as_str().unwrap();
    let total = order["totals"]["total"]["minor"].as_i64().unwrap();
    let r = w
        .post(
            &format!("orders/{oid}/refunds"),
            &b.token,
            json!({"amount": {"minor": 1000, "currency": "CNY"}, "reason": "少发一件"}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["refunded"]["minor"], json!(1000));
    assert!(paid_status(&r.body["status"]), "partial refunds keep the order: {}", r.body["status"]);
    let too_much = w
        .post(
            &format!("orders/{oid}/refunds"),
            &b.token,
            json!({"amount": {"minor": total, "currency": "CNY"}, "reason": "x"}),
        )
        .await;
    assert_eq!(too_much.status, 422);
    let r = w.post(&format!("orders/{oid}/refunds"), &b.token, json!({"reason": "不想要了"})).await;
    assert_eq!(r.body["status"], json!("refunded"), "{}", r.body);
    assert_eq!(r.body["refunded"]["minor"].as_i64().unwrap(), total);
    let quota = w.get("account/quota", &b.token).await;
    assert_eq!(quota["used"]["minor"], json!(0), "a full refund restores the quota exactly");
    let t: TradeView = w.sandbox_get(&path::trade(out_trade_no(&attempt))).await;
    assert_eq!(t.merchant_net_fen, 0);
    assert_eq!(t.trade.status, TradeStatus::TradeClosed);
    w.ledger_conserved().await;

    // A customs declaration or a parcel step already under way when the refund landed changes
    // nothing (the jobs read the order before the refund and write after it): a refunded order is
    // never declared, shipped or delivered.
    use haitao_shop_api::catalog::Localized;
    use haitao_shop_api::orders::{OrderStatus, TrackingEvent, TrackingStage};
    let now = haitao_alipay::time::Clock::now(&haitao_alipay::time::SystemClock);
    let (o1, o2) = (oid.to_owned(), oid.to_owned());
    let text = Localized { zh: "已申报".into(), en: "Declared".into() };
    let d = TrackingEvent {
        at: now,
        stage: TrackingStage::CustomsDeclared,
        description: text.clone(),
        location: text.clone(),
    };
    let declared = w
        .shop
        .shop
        .blocking(move |s| {
            s.record_declaration(
                &o1,
                "CDRACE01",
                Some(true),
                &d,
                ("HTXRACE", haitao_shop_api::orders::Carrier::HaitaoExpress),
                now,
            )
        })
        .await
        .unwrap();
    assert!(!declared, "a refunded order is not declared");
    let e =
        TrackingEvent { at: now, stage: TrackingStage::Delivered, description: text.clone(), location: text };
    let moved = w
        .shop
        .shop
        .blocking(move |s| s.advance_parcel(&o2, &e, Some((OrderStatus::Delivered, None)), now))
        .await
        .unwrap();
    assert!(!moved, "a refunded parcel does not move");
    w.run_jobs().await;
    w.clock.advance(chrono::Duration::days(3));
    w.run_jobs().await;
    let mut b = b;
    w.refresh(&mut b).await;
    let o = w.get(&format!("orders/{oid}"), &b.token).await;
    assert_eq!(o["status"], json!("refunded"));
    let stages: Vec<&str> =
        o["tracking"].as_array().unwrap().iter().filter_map(|e| e["stage"].as_str()).collect();
    assert!(
        !stages.iter().any(|s| ["picked", "customs_cleared", "handed_to_courier", "delivered"].contains(s)),
        "{stages:?}"
    );
}

#[tokio::test]
async fn limits_are_enforced() {
    let w = world().await;
    let b = w.buyer("13800006001", ZHANG.0, ZHANG.1).await;
    // Two items totalling over 5,000 CNY.
    let p = w.product_between(260_000, 490_000).await;
    w.add_to_cart(&b, p["id"].as_str().unwrap(), 2).await;
    let cart = w.get("cart", &b.token).await;
    assert!(
        cart["notices"].as_array().unwrap().iter().any(|n| n["kind"] == json!("order_limit_exceeded")),
        "{cart}"
    );
    let o = w.order(&b, "key-limit-1").await;
    assert_eq!((o.status, o.body["code"].as_str()), (409, Some("order_limit_exceeded")));
    // One indivisible item over 5,000 is allowed, taxed in full.
    w.add_to_cart(&b, p["id"].as_str().unwrap(), 0).await;
    let big = w.product_between(520_000, 2_000_000).await;
    w.add_to_cart(&b, big["id"].as_str().unwrap(), 1).await;
    let cart = w.get("cart", &b.token).await;
    assert!(
        cart["notices"].as_array().unwrap().iter().any(|n| n["kind"] == json!("single_item_over_limit")),
        "{cart}"
    );
    let o = w.order(&b, "key-limit-2").await;
    assert_eq!(o.status, 201, "{}", o.body);
    // Idempotency: the same key returns the same order; another request with it is a conflict.
    let again = w.order(&b, "key-limit-2").await;
    assert_eq!((again.status, &again.body["id"]), (200, &o.body["id"]));
}

/// The limit messages quote the limits the shop is configured with, not the defaults.
#[tokio::test]
async fn limit_messages_quote_the_configured_limits() {
    let w = world_with(|cfg| {
        cfg.pricing.order_limit = Money::from_minor(499_950, Currency::Cny);
        cfg.pricing.annual_limit = Money::from_minor(700_000, Currency::Cny);
    })
    .await;
    let b = w.buyer("13800006101", ZHANG.0, ZHANG.1).await;
    let p = w.product_between(360_000, 480_000).await;
    let id = p["id"].as_str().unwrap();
    // Two items over the 4,999.50 CNY single-order limit.
    w.add_to_cart(&b, id, 2).await;
    let o = w.order(&b, "key-configured-limit-1").await;
    assert_eq!((o.status, o.body["code"].as_str()), (409, Some("order_limit_exceeded")), "{}", o.body);
    assert_eq!(o.body["title"], json!("a cross-border order is limited to 4,999.50 CNY; split the cart"));
    // One item within it, twice: the second unpaid order takes the orderer past 7,000 CNY a year.
    w.add_to_cart(&b, id, 1).await;
    let first = w.order(&b, "key-configured-limit-2").await;
    assert_eq!(first.status, 201, "{}", first.body);
    w.add_to_cart(&b, id, 1).await;
    let second = w.order(&b, "key-configured-limit-3").await;
    assert_eq!(
        (second.status, second.body["code"].as_str()),
        (409, Some("annual_quota_exceeded")),
        "{}",
        second.body
    );
    assert_eq!(second.body["title"], json!("this order would exceed the orderer's 7,000 CNY annual limit"));
}

#[tokio::test]
async fn notifications_are_verified_and_idempotent() {
    let w = world().await;
    let (b, order) = ordered(&w, "13800007001", ZHANG, 5_000, 50_000, "key-notify").await;
    let attempt = start(&w, &b, &order, json!({"kind": "balance"}), "in_app").await;
    let out = attempt["out_trade_no"].as_str().unwrap();
    for outcome in
        [Outcome::NotifyDuplicate, Outcome::NotifyForged, Outcome::NotifyReorder, Outcome::NotifyWrongAmount]
    {
        w.sandbox_post(path::SCENARIOS, &ForceRequest::order(out, outcome)).await;
    }
    let (s, _) = pay_in_sandbox(&w, &attempt, "zhangwei@sandbox.haitao", PayWith::Balance, None).await;
    assert_eq!(s, 200);
    // Without any confirmation from the client, the notification alone pays the order.
    for _ in 0..60 {
        if paid_status(&order_of(&w, &b, order["id"].as_str().unwrap()).await["status"]) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    // The duplicate and the stale message are due a second or two later on the sandbox clock.
    w.sandbox_post(path::CLOCK_ADVANCE, &AdvanceClock { seconds: 5 }).await;
    w.settle().await;
    let o = order_of(&w, &b, order["id"].as_str().unwrap()).await;
    assert!(paid_status(&o["status"]), "{o}");
    let notes: Vec<Notification> = w.sandbox_get(&path::notifications(Some(out))).await;
    let states: Vec<(&str, &str)> = notes.iter().map(|n| (n.notify_id.as_str(), n.state.as_str())).collect();
    // The forged one and the validly signed one for the wrong amount are refused (and retried by
    // the sandbox), the rest acknowledged; the order is paid for its own amount.
    assert!(states.iter().any(|(id, st)| id.ends_with('F') && *st == "pending"), "{states:?}");
    assert!(states.iter().any(|(id, st)| id.ends_with('W') && *st == "pending"), "{states:?}");
    assert!(o["payment"]["amount"]["minor"].as_i64().is_some_and(|m| m > 0), "{o}");
    assert_eq!(o["payment"]["amount"], o["totals"]["total"], "{o}");
    assert_eq!(states.iter().filter(|(_, st)| *st == "delivered").count(), 3, "{states:?}");
    // A tampered amount is refused before anything changes.
    let forged = w
        .http
        .post(w.url("alipay/notify"))
        .body("out_trade_no=x&total_amount=0.01&sign=AAAA")
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 400);
    assert_ne!(forged.text().await.unwrap(), "success");
}

#[tokio::test]
async fn sessions_rotate_and_reuse_revokes() {
    let w = world().await;
    let b = w.buyer("13800008001", ZHANG.0, ZHANG.1).await;
    let r1 =
        w.call(reqwest::Method::POST, "auth/refresh", None, Some(json!({"refresh_token": b.refresh}))).await;
    assert_eq!(r1.status, 200);
    let new_access = r1.body["access_token"].as_str().unwrap().to_owned();
    assert_eq!(w.call(reqwest::Method::GET, "account", Some(&new_access), None).await.status, 200);
    assert_eq!(
        w.call(reqwest::Method::GET, "account", Some(&b.token), None).await.status,
        401,
        "old access token revoked on rotation"
    );
    // The old refresh token again: the whole session ends.
    let reuse =
        w.call(reqwest::Method::POST, "auth/refresh", None, Some(json!({"refresh_token": b.refresh}))).await;
    assert_eq!((reuse.status, reuse.body["code"].as_str()), (401, Some("token_revoked")));
    assert_eq!(w.call(reqwest::Method::GET, "account", Some(&new_access), None).await.status, 401);
    let r2 = w
        .call(
            reqwest::Method::POST,
            "auth/refresh",
            None,
            Some(json!({"refresh_token": r1.body["refresh_token"]})),
        )
        .await;
    assert_eq!(r2.status, 401, "the rotated token died with its family");
    // Wrong passwords are rate limited.
    for _ in 0..5 {
        let r = w
            .call(
                reqwest::Method::POST,
                "auth/login",
                None,
                Some(json!({"phone": "13800008001", "password": "wrong-pass1"})),
            )
            .await;
        assert_eq!(r.status, 401);
    }
    let r = w
        .call(
            reqwest::Method::POST,
            "auth/login",
            None,
            Some(json!({"phone": "13800008001", "password": "haitao2026"})),
        )
        .await;
    assert_eq!((r.status, r.body["code"].as_str()), (429, Some("rate_limited")));
    assert!(r.content_type.starts_with("application/problem+json"));
    // No token, a bad token, an oversized body.
    assert_eq!(w.call(reqwest::Method::GET, "cart", None, None).await.status, 401);
    assert_eq!(w.call(reqwest::Method::GET, "cart", Some("at_nope"), None).await.status, 401);
    let big = json!({"phone": "1".repeat(100_000), "password": "x"});
    assert_eq!(w.call(reqwest::Method::POST, "auth/login", None, Some(big)).await.status, 413);
    // Paging outside the documented range is refused with the field named, not silently clamped.
    for (path, field) in [
        ("catalog/products?per_page=201", "per_page"),
        ("catalog/products?per_page=0", "per_page"),
        ("catalog/products?page=0", "page"),
        ("catalog/products?per_page=2147483648", "per_page"),
        ("catalog/changes?limit=501", "limit"),
    ] {
        let r = w.call(reqwest::Method::GET, path, None, None).await;
        assert_eq!((r.status, r.body["field"].as_str()), (422, Some(field)), "{path}: {}", r.body);
    }
    let r = w.call(reqwest::Method::GET, "catalog/products?per_page=4294967296", None, None).await;
    assert_eq!(r.status, 400, "beyond u32: {}", r.body);
    let r = w.call(reqwest::Method::GET, "catalog/products?per_page=200&page=2", None, None).await;
    assert_eq!((r.status, r.body["per_page"].as_u64()), (200, Some(200)));
}

/// The served OpenAPI document says what the routes really answer: every `$ref` resolves, every
/// error is `application/problem+json`, and every private route documents 401.
#[tokio::test]
async fn openapi_document_is_complete() {
    let w = world().await;
    let r = w.call(reqwest::Method::GET, "openapi.json", None, None).await;
    assert_eq!(r.status, 200);
    let doc = r.body;
    fn refs<'a>(v: &'a Value, out: &mut Vec<&'a str>) {
        match v {
            Value::Object(m) => {
                if let Some(Value::String(r)) = m.get("$ref") {
                    out.push(r);
                }
                m.values().for_each(|v| refs(v, out));
            }
            Value::Array(a) => a.iter().for_each(|v| refs(v, out)),
            _ => {}
        }
    }
    let mut all = Vec::new();
    refs(&doc, &mut all);
    assert!(all.len() > 50);
    for r in all {
        let name = r.strip_prefix("#/components/schemas/").unwrap_or_else(|| panic!("foreign ref {r}"));
        assert!(doc["components"]["schemas"].get(name).is_some(), "unresolvable {r}");
    }
    let mut private = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let responses = op["responses"].as_object().unwrap();
            for (status, answer) in responses {
                if status.starts_with('4') || status.starts_with('5') {
                    let content = answer["content"].as_object().unwrap();
                    assert!(
                        content.contains_key("application/problem+json")
                            && !content.contains_key("application/json"),
                        "{method} {path} {status}: {content:?}"
                    );
                }
            }
            if op.get("security").is_some() {
                private += 1;
                assert!(responses.contains_key("401"), "{method} {path} does not document 401");
            }
            if op.get("requestBody").is_some() {
                for status in ["400", "413", "422"] {
                    assert!(responses.contains_key(status), "{method} {path} does not document {status}");
                }
            }
        }
    }
    assert!(private >= 30, "{private} private operations");
    let per_page = doc["paths"]["/api/v1/catalog/products"]["get"]["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "per_page")
        .unwrap();
    assert_eq!(per_page["schema"]["maximum"], json!(200));
}

#[tokio::test]
async fn scan_to_pay_and_support_tickets() {
    let w = world().await;
    let (b, order) = ordered(&w, "13800009001", ZHANG, 5_000, 50_000, "key-scan-to-pay").await;
    let attempt = start(&w, &b, &order, json!({"kind": "balance"}), "qr").await;
    let qr = attempt["qr_code"].as_str().unwrap();
    assert!(qr.contains("/qr/"));
    w.http.get(qr).send().await.unwrap();
    let pay = PayRequest::new(out_trade_no(&attempt), "zhangwei@sandbox.haitao", PayWith::Balance);
    let (s, _) = w.sandbox_post(path::PAY, &pay).await;
    assert_eq!(s, 200);
    let polled = w.get(&format!("payments/{}", attempt["id"].as_str().unwrap()), &b.token).await;
    let status =
        if polled["status"] == json!("paid") { polled } else { confirm(&w, &b, &attempt, None).await };
    assert_eq!(status["status"], json!("paid"));
    let t = w
        .post("tickets", &b.token, json!({"order_id": order["id"], "topic": "where_is_my_parcel", "subject": "包裹到哪了", "body": "请问什么时候发货？"}))
        .await;
    assert_eq!(t.status, 201, "{}", t.body);
    assert_eq!(t.body["messages"].as_array().unwrap().len(), 2, "automatic first answer");
    assert_eq!(t.body["messages"][1]["author"], json!("assistant"));
    let id = t.body["id"].as_str().unwrap();
    let m = w.post(&format!("tickets/{id}/messages"), &b.token, json!({"body": "谢谢"})).await;
    assert_eq!(m.body["messages"].as_array().unwrap().len(), 3);
}

/// A parcel that fails customs inspection: the order is held with the inspection in its tracking,
/// refunded in full through the gateway, its quota given back, and never delivered. The hold and
/// its refund are written together.
#[tokio::test]
async fn a_failed_customs_inspection_holds_and_refunds_the_order() {
    let w = world().await;
    let (mut b, order, attempt) = paid_by_balance(&w, "13800007001", "key-inspection").await;
    let oid = order["id"].as_str().unwrap();
    let total = order["totals"]["total"]["minor"].as_i64().unwrap();
    let out = attempt["out_trade_no"].as_str().unwrap();
    w.run_jobs().await;
    assert_eq!(order_of(&w, &b, oid).await["status"], json!("customs_declared"));
    let r = w.http.post(w.url(&format!("test/orders/{oid}/inspection-fail"))).send().await.unwrap();
    assert_eq!(r.status(), 204);
    // Past every logistics step's time: the inspection stops the parcel at customs.
    w.clock.advance(chrono::Duration::minutes(49));
    w.run_jobs().await;
    w.settle().await;
    w.run_jobs().await;
    w.refresh(&mut b).await;
    let o = order_of(&w, &b, oid).await;
    assert_eq!(o["status"], json!("refunded"), "{o}");
    assert_eq!(o["refunded"]["minor"].as_i64(), Some(total), "{o}");
    let stages: Vec<&str> =
        o["tracking"].as_array().unwrap().iter().filter_map(|e| e["stage"].as_str()).collect();
    assert!(stages.contains(&"customs_inspection"), "{stages:?}");
    assert!(!stages.iter().any(|s| ["handed_to_courier", "delivered"].contains(s)), "{stages:?}");
    let refunds = refunds_of(&w, oid).await;
    assert_eq!(refunds.len(), 1, "one refund, for what was left");
    assert_eq!(refunds[0].out_request_no, format!("INSP{out}"));
    assert_eq!(refunds[0].amount.minor(), total);
    let t: TradeView = w.sandbox_get(&path::trade(out)).await;
    assert_eq!(t.merchant_net_fen, 0, "{t:?}");
    let quota = w.get("account/quota", &b.token).await;
    assert_eq!(quota["used"]["minor"], json!(0), "the quota is given back");
    // Later passes change nothing: no second refund, no delivery.
    w.clock.advance(chrono::Duration::days(3));
    w.run_jobs().await;
    w.refresh(&mut b).await;
    assert_eq!(refunds_of(&w, oid).await.len(), 1);
    assert_eq!(order_of(&w, &b, oid).await["status"], json!("refunded"));
    w.ledger_conserved().await;
}

/// The store's side of it: a hold records the refund of what is left of the paying payment after
/// an earlier refund and a pending one (a duplicate payment's refund does not count), in the same
/// write, and holding an order that is no longer in transit records nothing.
#[tokio::test]
async fn holding_for_inspection_writes_the_hold_and_its_refund_together() {
    use haitao_shop::store::RefundRow;
    let w = world().await;
    let (b, order, attempt) = paid_by_balance(&w, "13800007002", "key-inspection-store").await;
    let oid = order["id"].as_str().unwrap().to_owned();
    let total = order["totals"]["total"]["minor"].as_i64().unwrap();
    let r = w
        .post(
            &format!("orders/{oid}/refunds"),
            &b.token,
            json!({"amount": {"minor": 1000, "currency": "CNY"}, "reason": "少发一件"}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let now = haitao_alipay::time::Clock::now(&w.clock);
    let e = inspection_event(now);
    let row = RefundRow {
        out_request_no: "INSP-TEST-1".into(),
        ..refund_row(&oid, attempt["id"].as_str().unwrap(), "RF-TEST-1", 1)
    };
    // A refund of 5.00 still pending on the same payment counts; a duplicate payment's own full
    // refund (another attempt) does not: what is left is the total less 10.00 and 5.00.
    let extra = |id: &str, attempt: &str, fen: i64| {
        let r = refund_row(&oid, attempt, &format!("RF-{id}"), fen);
        w.shop.shop.blocking(move |s| s.insert_refund(&r, now))
    };
    extra("PENDING", attempt["id"].as_str().unwrap(), 500).await.unwrap();
    extra("DUPLICATE", "PA-DUPLICATE", total).await.unwrap();
    let hold = |row: RefundRow| {
        let (oid, e) = (oid.clone(), e.clone());
        w.shop.shop.blocking(move |s| s.hold_failed_inspection(&oid, &e, Some(row), now))
    };
    w.run_jobs().await;
    assert_eq!(order_of(&w, &b, &oid).await["status"], json!("customs_declared"));
    let (held, recorded) = hold(row.clone()).await.unwrap();
    assert!(held);
    let recorded = recorded.expect("a refund of what was left");
    assert_eq!(recorded.amount.minor(), total - 1000 - 500);
    let o = order_of(&w, &b, &oid).await;
    assert_eq!(o["status"], json!("held"), "{o}");
    let refunds = refunds_of(&w, &oid).await;
    assert!(refunds.iter().any(|r| r.id == "RF-TEST-1" && r.amount.minor() == total - 1500), "{refunds:?}");
    // Held: no longer in transit, a second hold writes nothing.
    assert_eq!(hold(RefundRow { id: "RF-TEST-2".into(), ..row }).await.unwrap(), (false, None));
}

/// A held order whose inspection refund the gateway refused — and whose earlier refund failed
/// after the hold — is still owed its money: an hour after the refusal a further refund of all
/// that is left goes through, and the order ends refunded with the gateway's books agreeing.
#[tokio::test]
async fn a_refused_inspection_refund_is_topped_up_an_hour_later() {
    let w = world().await;
    let (mut b, order, attempt) = paid_by_balance(&w, "13800007003", "key-inspection-topup").await;
    w.run_jobs().await;
    w.run_jobs().await;
    let oid = order["id"].as_str().unwrap().to_owned();
    let aid = attempt["id"].as_str().unwrap().to_owned();
    let out = attempt["out_trade_no"].as_str().unwrap().to_owned();
    let total = order["totals"]["total"]["minor"].as_i64().unwrap();
    assert_eq!(order_of(&w, &b, &oid).await["status"], json!("customs_declared"));
    let now = haitao_alipay::time::Clock::now(&w.clock);
    // A buyer's refund of 10.00 still pending when the parcel is held, and the hold's own refund
    // of the rest: both are then refused.
    let (earlier, inspection) = held_with_refunds(&w, &oid, &aid, now, 1000).await;
    assert_eq!(inspection.amount.minor(), total - 1000);
    for id in [earlier.id.clone(), inspection.id.clone()] {
        w.shop.shop.blocking(move |s| s.fail_refund(&id, now)).await.unwrap();
    }
    // Within the hour after the refusal nothing more is tried.
    w.clock.advance(chrono::Duration::minutes(59));
    w.run_jobs().await;
    assert_eq!(refunds_of(&w, &oid).await.len(), 2);
    w.refresh(&mut b).await;
    assert_eq!(order_of(&w, &b, &oid).await["status"], json!("held"));
    w.clock.advance(chrono::Duration::minutes(2));
    w.run_jobs().await;
    w.settle().await;
    let refunds = refunds_of(&w, &oid).await;
    assert_eq!(refunds.len(), 3, "{refunds:?}");
    let top_up = &refunds[2];
    assert_eq!(top_up.amount.minor(), total, "everything is still owed");
    assert_eq!(top_up.out_request_no, format!("INSP1{out}"));
    assert_eq!(top_up.status, haitao_shop_api::orders::RefundStatus::Succeeded);
    w.refresh(&mut b).await;
    let o = order_of(&w, &b, &oid).await;
    assert_eq!(o["status"], json!("refunded"), "{o}");
    assert_eq!(o["refunded"]["minor"].as_i64(), Some(total), "{o}");
    let t: TradeView = w.sandbox_get(&path::trade(&out)).await;
    assert_eq!(t.merchant_net_fen, 0, "{t:?}");
    assert_eq!(w.get("account/quota", &b.token).await["used"]["minor"], json!(0));
    // Refunded: later passes add nothing.
    w.clock.advance(chrono::Duration::hours(3));
    w.run_jobs().await;
    assert_eq!(refunds_of(&w, &oid).await.len(), 3);
    w.ledger_conserved().await;
}

/// The retries stop after five refused inspection refunds (customer service takes over), and a
/// top-up is never recorded while a refund of the order is pending or for an order not held.
#[tokio::test]
async fn inspection_refund_retries_are_bounded() {
    use haitao_shop::jobs::{INSPECTION_REFUND_RETRY as RETRY, INSPECTION_REFUND_TRIES as TRIES};
    let w = world().await;
    let (_, order, attempt) = paid_by_balance(&w, "13800007004", "key-inspection-bounded").await;
    w.run_jobs().await;
    w.run_jobs().await;
    let oid = order["id"].as_str().unwrap().to_owned();
    let aid = attempt["id"].as_str().unwrap().to_owned();
    let out = attempt["out_trade_no"].as_str().unwrap().to_owned();
    let clock = w.clock.clone();
    let now = move || haitao_alipay::time::Clock::now(&clock);
    let owed = |at: chrono::DateTime<chrono::Utc>| {
        w.shop.shop.blocking(move |s| s.inspection_refunds_owed(at - RETRY, TRIES))
    };
    let top_up = |n: u32, at: chrono::DateTime<chrono::Utc>| {
        let row = refund_row(&oid, &aid, &format!("RF-TOPUP-{n}"), 1);
        let out = out.clone();
        w.shop.shop.blocking(move |s| s.top_up_inspection_refund(row, &out, at - RETRY, TRIES, at))
    };
    // Not held yet: nothing is owed, nothing is recorded.
    assert!(owed(now()).await.unwrap().is_empty());
    assert_eq!(top_up(0, now()).await.unwrap(), None);
    let (_, first) = held_with_refunds(&w, &oid, &aid, now(), 0).await;
    // Pending: not owed.
    assert!(owed(now()).await.unwrap().is_empty());
    assert_eq!(top_up(0, now()).await.unwrap(), None);
    let t = now();
    w.shop.shop.blocking(move |s| s.fail_refund(&first.id, t)).await.unwrap();
    for n in 1..TRIES {
        assert_eq!(top_up(n, now()).await.unwrap(), None, "refused just now: wait");
        w.clock.advance(RETRY + chrono::Duration::seconds(1));
        let listed = owed(now()).await.unwrap();
        assert_eq!(listed.iter().map(|o| o.id.as_str()).collect::<Vec<_>>(), [oid.as_str()]);
        let r = top_up(n, now()).await.unwrap().expect("a top-up is due");
        assert_eq!(r.out_request_no, format!("INSP{n}{out}"));
        let t = now();
        w.shop.shop.blocking(move |s| s.fail_refund(&r.id, t)).await.unwrap();
    }
    w.clock.advance(chrono::Duration::days(30));
    assert!(owed(now()).await.unwrap().is_empty(), "five refusals end the retries");
    assert_eq!(top_up(TRIES, now()).await.unwrap(), None);
    assert_eq!(refunds_of(&w, &oid).await.len(), TRIES as usize);
}

/// An order of ¥300 for Zhang Wei, paid from his balance in the in-app window and confirmed.
async fn paid_by_balance(w: &World, phone: &str, key: &str) -> (common::Buyer, Value, Value) {
    let (b, order) = ordered(w, phone, ZHANG, 30_000, 200_000, key).await;
    let attempt = start(w, &b, &order, json!({"kind": "balance"}), "in_app").await;
    let (_, paid) = pay_in_sandbox(w, &attempt, "zhangwei@sandbox.haitao", PayWith::Balance, None).await;
    confirm(w, &b, &attempt, return_url(&paid)).await;
    (b, order, attempt)
}

/// The tracking event of a failed customs inspection at `now`.
fn inspection_event(now: chrono::DateTime<chrono::Utc>) -> haitao_shop_api::orders::TrackingEvent {
    let text = haitao_shop_api::catalog::Localized { zh: "查验".into(), en: "Inspection".into() };
    haitao_shop_api::orders::TrackingEvent {
        at: now,
        stage: haitao_shop_api::orders::TrackingStage::CustomsInspection,
        description: text.clone(),
        location: text,
    }
}

fn refund_row(order_id: &str, attempt_id: &str, id: &str, fen: i64) -> haitao_shop::store::RefundRow {
    haitao_shop::store::RefundRow {
        id: id.into(),
        order_id: order_id.into(),
        attempt_id: attempt_id.into(),
        out_request_no: format!("REQ-{id}"),
        amount: haitao_alipay::Money::from_minor(fen, haitao_alipay::Currency::Cny),
        reason: "customs inspection failed".into(),
        status: haitao_shop_api::orders::RefundStatus::Pending,
    }
}

async fn refunds_of(w: &World, order_id: &str) -> Vec<haitao_shop::store::RefundRow> {
    let oid = order_id.to_owned();
    w.shop.shop.blocking(move |s| s.refunds_of(&oid)).await.unwrap()
}

/// Records (without sending) a buyer's refund of `earlier_fen` if any, then holds the order for a
/// failed inspection through the store; returns the earlier refund and the hold's refund.
async fn held_with_refunds(
    w: &World,
    order_id: &str,
    attempt_id: &str,
    now: chrono::DateTime<chrono::Utc>,
    earlier_fen: i64,
) -> (haitao_shop::store::RefundRow, haitao_shop::store::RefundRow) {
    let earlier = refund_row(order_id, attempt_id, "RF-EARLIER", earlier_fen);
    if earlier_fen > 0 {
        let r = earlier.clone();
        w.shop.shop.blocking(move |s| s.insert_refund(&r, now)).await.unwrap();
    }
    let e = inspection_event(now);
    let row = haitao_shop::store::RefundRow {
        out_request_no: "INSP-HOLD".into(),
        ..refund_row(order_id, attempt_id, "RF-HOLD", 1)
    };
    let oid = order_id.to_owned();
    let (held, recorded) =
        w.shop.shop.blocking(move |s| s.hold_failed_inspection(&oid, &e, Some(row), now)).await.unwrap();
    assert!(held);
    (earlier, recorded.expect("the hold records a refund"))
}

/// Cancels an awaiting order through the API.
async fn cancel(w: &World, b: &common::Buyer, order: &Value) {
    let r = w.post(&format!("orders/{}/cancel", order["id"].as_str().unwrap()), &b.token, json!({})).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["status"], json!("closed"));
}

/// A cashier link started before the order was cancelled stays payable at the gateway until it
/// expires (Alipay creates a page-pay trade only when the buyer logs in, so closing it answered
/// TRADE_NOT_EXIST). Paid anyway, with its notification lost, the money is found by the jobs and
/// given back in full: nobody keeps a buyer's money for a cancelled order.
#[tokio::test]
async fn a_cancelled_orders_old_cashier_paid_without_a_notification_is_refunded() {
    let w = world().await;
    let (b, order) = ordered(&w, "13800003101", ZHANG, 5_000, 50_000, "key-stale-cashier").await;
    let attempt = start(&w, &b, &order, json!({"kind": "balance"}), "in_app").await;
    cancel(&w, &b, &order).await;
    let out = attempt["out_trade_no"].as_str().unwrap();
    let (s, _) = w.sandbox_post(path::SCENARIOS, &ForceRequest::order(out, Outcome::NotifyDrop)).await;
    assert!(s < 300, "{s}");
    let (s, v) = pay_in_sandbox(&w, &attempt, "zhangwei@sandbox.haitao", PayWith::Balance, None).await;
    assert_eq!(s, 200, "the old cashier still takes the money: {v:?}");
    w.settle().await;
    // The jobs ask about ended attempts once a minute until their cashier expires.
    w.clock.advance(chrono::Duration::minutes(2));
    w.run_jobs().await;
    w.settle().await;
    let oid = order["id"].as_str().unwrap();
    assert_eq!(order_of(&w, &b, oid).await["status"], json!("closed"), "a cancelled order stays cancelled");
    let refunds = refunds_of(&w, oid).await;
    assert_eq!(refunds.len(), 1, "{refunds:?}");
    assert_eq!(refunds[0].amount.minor(), order["totals"]["total"]["minor"].as_i64().unwrap());
    let t: TradeView = w.sandbox_get(&path::trade(out)).await;
    assert_eq!(t.merchant_net_fen, 0, "{t:?}");
    w.ledger_conserved().await;
}

/// The same while the shop was stopped past the cashier's expiry: the jobs' first run after the
/// restart still asks the gateway once (it used to give up on attempts whose expiry had passed
/// while nobody was looking, and the money stayed taken).
#[tokio::test]
async fn a_stale_cashier_paid_while_the_shop_was_stopped_is_refunded_after() {
    let w = world().await;
    let (b, order) = ordered(&w, "13800003104", ZHANG, 5_000, 50_000, "key-stale-stopped").await;
    let attempt = start(&w, &b, &order, json!({"kind": "balance"}), "in_app").await;
    cancel(&w, &b, &order).await;
    let out = attempt["out_trade_no"].as_str().unwrap();
    w.sandbox_post(path::SCENARIOS, &ForceRequest::order(out, Outcome::NotifyDrop)).await;
    let (s, v) = pay_in_sandbox(&w, &attempt, "zhangwei@sandbox.haitao", PayWith::Balance, None).await;
    assert_eq!(s, 200, "{v:?}");
    // No job runs for a day: the cashier's expiry and its margin pass unobserved.
    w.clock.advance(chrono::Duration::hours(26));
    w.sandbox.state.advance_clock(chrono::Duration::hours(26));
    w.run_jobs().await;
    w.settle().await;
    let oid = order["id"].as_str().unwrap();
    let refunds = refunds_of(&w, oid).await;
    assert_eq!(refunds.len(), 1, "{refunds:?}");
    let t: TradeView = w.sandbox_get(&path::trade(out)).await;
    assert_eq!(t.merchant_net_fen, 0, "{t:?}");
    // Asked once after the expiry, it is not asked again.
    w.clock.advance(chrono::Duration::minutes(5));
    w.run_jobs().await;
    assert_eq!(refunds_of(&w, oid).await.len(), 1);
    w.ledger_conserved().await;
}

/// Moves all the merchant can pay out (its balance and the sandbox's generous overdraft) away, as
/// a settlement to its bank, and returns how much; or moves `back` fen in again. Refunds meanwhile
/// meet ACQ.SELLER_BALANCE_NOT_ENOUGH.
fn settle_merchant(w: &World, back: Option<i64>) -> i64 {
    use haitao_alipay_sandbox::{ledger, model};
    let merchant = ledger::merchant_account(&w.shop.shop.payment_config.app_id);
    let now = haitao_alipay::time::Clock::now(&w.sandbox_clock);
    w.sandbox.state.store().sync(|c| {
        let held = model::account(c, &merchant).unwrap().unwrap().available();
        match back {
            None => ledger::post(c, &merchant, ledger::FEES, held, "settlement", None, now).unwrap(),
            Some(fen) => {
                ledger::post(c, ledger::FEES, &merchant, fen, "settlement_reversed", None, now).unwrap()
            }
        }
        held
    })
}

/// A duplicate payment whose automatic refund the gateway refuses (the merchant's balance was
/// settled away) is tried again with a growing pause until it goes through; it used to be marked
/// failed and left, the buyer's money kept.
#[tokio::test]
async fn a_refused_refund_of_a_duplicate_payment_is_retried_until_it_goes_through() {
    let w = world().await;
    let (mut b, order) = ordered(&w, "13800003105", ZHANG, 5_000, 50_000, "key-dup-refused").await;
    let first = start(&w, &b, &order, json!({"kind": "balance"}), "in_app").await;
    let second = start(&w, &b, &order, json!({"kind": "balance"}), "in_app").await;
    let out1 = out_trade_no(&first).to_owned();
    w.sandbox_post(path::SCENARIOS, &ForceRequest::order(&out1, Outcome::NotifyDrop)).await;
    let (s, paid) = pay_in_sandbox(&w, &second, "zhangwei@sandbox.haitao", PayWith::Balance, None).await;
    assert_eq!(s, 200, "{paid:?}");
    confirm(&w, &b, &second, return_url(&paid)).await;
    let (s, v) = pay_in_sandbox(&w, &first, "zhangwei@sandbox.haitao", PayWith::Balance, None).await;
    assert_eq!(s, 200, "the replaced cashier still takes the money: {v:?}");
    let settled = settle_merchant(&w, None);
    assert!(settled > 0);
    // The jobs find the second payment; its refund is refused, and refused again a minute on.
    w.clock.advance(chrono::Duration::minutes(2));
    w.run_jobs().await;
    w.clock.advance(chrono::Duration::minutes(2));
    w.run_jobs().await;
    let oid = order["id"].as_str().unwrap();
    let refunds = refunds_of(&w, oid).await;
    assert_eq!(refunds.len(), 1, "{refunds:?}");
    assert_eq!(refunds[0].status, haitao_shop_api::orders::RefundStatus::Pending, "refused, not given up");
    let t: TradeView = w.sandbox_get(&path::trade(&out1)).await;
    assert_eq!(t.merchant_net_fen, order["totals"]["total"]["minor"].as_i64().unwrap(), "{t:?}");
    // The money is back in the merchant's account; the next try after the pause refunds it.
    settle_merchant(&w, Some(settled));
    w.clock.advance(chrono::Duration::hours(1));
    w.run_jobs().await;
    w.settle().await;
    let refunds = refunds_of(&w, oid).await;
    assert_eq!(refunds.len(), 1, "{refunds:?}");
    assert_eq!(refunds[0].status, haitao_shop_api::orders::RefundStatus::Succeeded);
    let t: TradeView = w.sandbox_get(&path::trade(&out1)).await;
    assert_eq!(t.merchant_net_fen, 0, "{t:?}");
    w.refresh(&mut b).await;
    assert!(paid_status(&order_of(&w, &b, oid).await["status"]), "the order keeps its one payment");
    w.ledger_conserved().await;
}

/// The sweeper: a duplicate payment whose refund ended failed (as an older Haitao left refused
/// refunds) is found by the jobs and refunded under a new request number.
#[tokio::test]
async fn the_sweeper_refunds_a_duplicate_payment_left_without_a_live_refund() {
    let w = world().await;
    let (b, order) = ordered(&w, "13800003106", ZHANG, 5_000, 50_000, "key-dup-swept").await;
    let first = start(&w, &b, &order, json!({"kind": "balance"}), "in_app").await;
    let second = start(&w, &b, &order, json!({"kind": "balance"}), "in_app").await;
    let out1 = out_trade_no(&first).to_owned();
    w.sandbox_post(path::SCENARIOS, &ForceRequest::order(&out1, Outcome::NotifyDrop)).await;
    let (_, paid) = pay_in_sandbox(&w, &second, "zhangwei@sandbox.haitao", PayWith::Balance, None).await;
    confirm(&w, &b, &second, return_url(&paid)).await;
    pay_in_sandbox(&w, &first, "zhangwei@sandbox.haitao", PayWith::Balance, None).await;
    let settled = settle_merchant(&w, None);
    w.clock.advance(chrono::Duration::minutes(2));
    w.run_jobs().await;
    let oid = order["id"].as_str().unwrap();
    let refused = refunds_of(&w, oid).await.remove(0);
    let now = haitao_alipay::time::Clock::now(&w.clock);
    let id = refused.id.clone();
    w.shop.shop.blocking(move |s| s.fail_refund(&id, now)).await.unwrap();
    settle_merchant(&w, Some(settled));
    w.run_jobs().await;
    w.settle().await;
    let refunds = refunds_of(&w, oid).await;
    assert_eq!(refunds.len(), 2, "{refunds:?}");
    assert_eq!(refunds[1].out_request_no, format!("AUTO1{out1}"));
    assert_eq!(refunds[1].status, haitao_shop_api::orders::RefundStatus::Succeeded);
    let t: TradeView = w.sandbox_get(&path::trade(&out1)).await;
    assert_eq!(t.merchant_net_fen, 0, "{t:?}");
    // Covered: later passes add nothing.
    w.run_jobs().await;
    assert_eq!(refunds_of(&w, oid).await.len(), 2);
    w.ledger_conserved().await;
}

/// A refund whose answer was lost is sent again; the gateway answers the repeat with
/// `fund_change = N` (no money moved by this call), and the shop counts the refund done only
/// once the refund query says the first call made it.
#[tokio::test]
async fn a_repeated_refund_is_done_only_as_the_refund_query_says() {
    let w = world().await;
    let (mut b, order, attempt) = paid_by_balance(&w, "13800003107", "key-refund-repeat").await;
    // The jobs' customs declaration first, so the forced fault meets the refund and nothing else.
    w.run_jobs().await;
    let oid = order["id"].as_str().unwrap().to_owned();
    let out = attempt["out_trade_no"].as_str().unwrap().to_owned();
    w.sandbox_post(path::SCENARIOS, &ForceRequest::order(&out, Outcome::DropConnection)).await;
    // The refund's first answer is lost; the client sends it again, which the gateway answers
    // with fund_change = N; the refund query confirms it.
    let r = w.post(&format!("orders/{oid}/refunds"), &b.token, json!({"reason": "不想要了"})).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let t: TradeView = w.sandbox_get(&path::trade(&out)).await;
    assert_eq!(t.merchant_net_fen, 0, "refunded once: {t:?}");
    // The gateway's trace of a call lands just after its answer: look for a moment.
    let mut queried = 0i64;
    for _ in 0..50 {
        queried = w.sandbox.state.store().sync(|c| {
            c.query_row(
                "SELECT COUNT(*) FROM events WHERE out_trade_no = ?1 AND summary LIKE '%fastpay.refund.query%'",
                [&out],
                |r| r.get(0),
            )
            .unwrap()
        });
        if queried > 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(queried >= 1, "the shop asked the refund query after fund_change = N");
    let refunds = refunds_of(&w, &oid).await;
    assert_eq!(refunds.len(), 1);
    assert_eq!(refunds[0].status, haitao_shop_api::orders::RefundStatus::Succeeded);
    // The refund's time is the gateway's, from the refund query (which answers it only when
    // asked for it): reconciliation files the refund under the bill's day.
    let request = refunds[0].out_request_no.clone();
    let made = w.sandbox.state.store().sync(|c| {
        c.query_row("SELECT created_at FROM refunds WHERE out_request_no = ?1", [&request], |r| {
            r.get::<_, String>(0)
        })
        .unwrap()
    });
    let made = chrono::DateTime::parse_from_rfc3339(&made).unwrap().with_timezone(&chrono::Utc);
    let (from, to) = (made - chrono::Duration::seconds(1), made + chrono::Duration::seconds(1));
    let books = w.shop.shop.blocking(move |s| s.books(from, to, &[], &[])).await.unwrap();
    assert_eq!(books.refunds.len(), 1, "{books:?}");
    let kept = books.refunds[0].gateway_refunded_at.unwrap();
    assert_eq!(kept.timestamp(), made.timestamp(), "to the second, as Alipay writes it");
    w.refresh(&mut b).await;
    assert_eq!(order_of(&w, &b, &oid).await["status"], json!("refunded"));
    w.ledger_conserved().await;
}

/// The same with the notification delivered: the payment is refunded, and the order is not
/// re-opened past the buyer's annual quota (or its stock) as it once was.
#[tokio::test]
async fn a_payment_for_a_cancelled_order_is_refunded_not_reopened() {
    let w = world().await;
    let (b, order) = ordered(&w, "13800003102", ZHANG, 5_000, 50_000, "key-stale-notified").await;
    let attempt = start(&w, &b, &order, json!({"kind": "balance"}), "in_app").await;
    cancel(&w, &b, &order).await;
    let (s, v) = pay_in_sandbox(&w, &attempt, "zhangwei@sandbox.haitao", PayWith::Balance, None).await;
    assert_eq!(s, 200, "{v:?}");
    w.settle().await;
    w.run_jobs().await;
    w.settle().await;
    let oid = order["id"].as_str().unwrap();
    let o = order_of(&w, &b, oid).await;
    assert_eq!(o["status"], json!("closed"), "{o}");
    let quota = w.get("account/quota", &b.token).await;
    assert_eq!(quota["used"]["minor"], json!(0), "a cancelled order uses no quota");
    let out = attempt["out_trade_no"].as_str().unwrap();
    let t: TradeView = w.sandbox_get(&path::trade(out)).await;
    assert_eq!(t.merchant_net_fen, 0, "{t:?}");
    w.ledger_conserved().await;
}

/// Two attempts, both paid, the first one's notification lost: the first attempt was closed when
/// the second started, but its cashier still took money; the jobs find it and refund it, and the
/// order keeps exactly one payment.
#[tokio::test]
async fn a_replaced_attempt_paid_without_a_notification_is_refunded() {
    let w = world().await;
    let (b, order) = ordered(&w, "13800003103", ZHANG, 5_000, 50_000, "key-two-attempts").await;
    let first = start(&w, &b, &order, json!({"kind": "balance"}), "in_app").await;
    let second = start(&w, &b, &order, json!({"kind": "balance"}), "in_app").await;
    let out1 = first["out_trade_no"].as_str().unwrap();
    w.sandbox_post(path::SCENARIOS, &ForceRequest::order(out1, Outcome::NotifyDrop)).await;
    let (s, v) = pay_in_sandbox(&w, &first, "zhangwei@sandbox.haitao", PayWith::Balance, None).await;
    assert_eq!(s, 200, "{v:?}");
    let (s, paid) = pay_in_sandbox(&w, &second, "zhangwei@sandbox.haitao", PayWith::Balance, None).await;
    assert_eq!(s, 200, "{paid:?}");
    confirm(&w, &b, &second, return_url(&paid)).await;
    w.settle().await;
    w.clock.advance(chrono::Duration::minutes(2));
    w.run_jobs().await;
    w.settle().await;
    let oid = order["id"].as_str().unwrap();
    assert!(paid_status(&order_of(&w, &b, oid).await["status"]));
    let refunds = refunds_of(&w, oid).await;
    assert_eq!(refunds.len(), 1, "{refunds:?}");
    assert_eq!(refunds[0].attempt_id, first["id"].as_str().unwrap());
    let t1: TradeView = w.sandbox_get(&path::trade(out1)).await;
    assert_eq!(t1.merchant_net_fen, 0, "{t1:?}");
    let out2 = second["out_trade_no"].as_str().unwrap();
    let t2: TradeView = w.sandbox_get(&path::trade(out2)).await;
    assert_eq!(Some(t2.merchant_net_fen), order["totals"]["total"]["minor"].as_i64(), "{t2:?}");
    w.ledger_conserved().await;
}

/// An order paid twice keeps the payment that paid it: the order shows that payment (not the
/// newer duplicate, which is refunded), and the buyer's refund gives back that payment.
#[tokio::test]
async fn the_order_shows_and_refunds_the_payment_that_paid_it() {
    let w = world().await;
    let (mut b, order) = ordered(&w, "13800003104", ZHANG, 5_000, 50_000, "key-paying-attempt").await;
    let first = start(&w, &b, &order, json!({"kind": "balance"}), "in_app").await;
    let second = start(&w, &b, &order, json!({"kind": "balance"}), "in_app").await;
    let (s, paid) = pay_in_sandbox(&w, &first, "zhangwei@sandbox.haitao", PayWith::Balance, None).await;
    assert_eq!(s, 200, "{paid:?}");
    w.settle().await;
    let (s, again) = pay_in_sandbox(&w, &second, "zhangwei@sandbox.haitao", PayWith::Balance, None).await;
    assert_eq!(s, 200, "{again:?}");
    w.settle().await;
    w.run_jobs().await;
    w.settle().await;
    w.refresh(&mut b).await;
    let oid = order["id"].as_str().unwrap();
    let o = order_of(&w, &b, oid).await;
    assert_eq!(o["payment"]["id"], first["id"], "the paying attempt, not the newest: {o}");
    let r = w.post(&format!("orders/{oid}/refunds"), &b.token, json!({"reason": "不想要了"})).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["status"], json!("refunded"), "{}", r.body);
    w.settle().await;
    for a in [&first, &second] {
        let t: TradeView = w.sandbox_get(&path::trade(out_trade_no(a))).await;
        assert_eq!(t.merchant_net_fen, 0, "{t:?}");
    }
    w.ledger_conserved().await;
}

/// A shop whose Alipay app is in public-key certificate mode with content encryption: every call
/// (precreate, query on confirm, customs declaration, refund) carries the certificates' serial
/// numbers and ciphertext, and every answer and notification verifies with Alipay's certificate.
#[tokio::test]
async fn a_shop_in_certificate_mode_with_encryption_pays_declares_and_refunds() {
    shop_in_mode(true, true, haitao_alipay::Protocol::Gateway).await;
}

/// The same through OpenAPI v3 (the customs declaration stays on gateway.do, as at Alipay), in
/// public-key mode and in certificate mode with encryption.
#[tokio::test]
async fn a_shop_speaking_v3_pays_declares_and_refunds() {
    shop_in_mode(false, false, haitao_alipay::Protocol::V3).await;
    shop_in_mode(true, true, haitao_alipay::Protocol::V3).await;
}

async fn shop_in_mode(cert: bool, encrypted: bool, api: haitao_alipay::Protocol) {
    let w = world_with(|cfg| {
        if let haitao_shop::config::AlipaySettings::LocalSandbox { cert_mode, aes, protocol, .. } =
            &mut cfg.alipay
        {
            *cert_mode = cert;
            *aes = encrypted;
            *protocol = api;
        }
    })
    .await;
    let apps: Vec<haitao_sandbox_api::AppInfo> = w.sandbox_get(path::APPS).await;
    assert_eq!((apps[0].certificates.is_some(), apps[0].encrypted), (cert, encrypted), "{apps:?}");
    let (b, order, attempt) = paid_by_balance(&w, "13800009001", "key-cert-aes").await;
    let oid = order["id"].as_str().unwrap();
    w.run_jobs().await;
    assert_eq!(order_of(&w, &b, oid).await["status"], json!("customs_declared"));
    let r = w.post(&format!("orders/{oid}/refunds"), &b.token, json!({"reason": "不想要了"})).await;
    assert_eq!(r.body["status"], json!("refunded"), "{}", r.body);
    let t: TradeView = w.sandbox_get(&path::trade(out_trade_no(&attempt))).await;
    assert_eq!(t.merchant_net_fen, 0);
    // On the wire, as the sandbox's trace shows: each request in the configured protocol,
    // encrypted or not, naming the certificates or not; gateway.do answers naming the Alipay
    // certificate in certificate mode.
    let events: Vec<haitao_sandbox_api::Event> =
        w.sandbox_get(&format!("{}?limit=10000", path::EVENTS)).await;
    let requests: Vec<&serde_json::Value> = events
        .iter()
        .filter(|e| e.kind == "gateway.request")
        .map(|e| &e.detail)
        .filter(|d| d["method"] != "alipay.trade.page.pay")
        .collect();
    let v3: Vec<_> = requests.iter().filter(|d| d["protocol"] == "v3").collect();
    let v2: Vec<_> = requests.iter().filter(|d| d["protocol"] != "v3").collect();
    assert!(
        v2.iter().any(|d| d["method"] == "alipay.trade.customs.declare"),
        "the declaration is gateway.do"
    );
    let refund_protocol_v3 = v3.iter().any(|d| d["method"] == "alipay.trade.refund");
    assert_eq!(refund_protocol_v3, api == haitao_alipay::Protocol::V3);
    for d in &v2 {
        let p = &d["params"];
        assert_eq!(p["encrypt_type"] == "AES", encrypted, "{p}");
        assert_eq!(p["app_cert_sn"].is_string() && p["alipay_root_cert_sn"].is_string(), cert, "{p}");
    }
    for d in &v3 {
        assert_eq!(d["biz_content_decrypted"].is_string(), encrypted, "{d}");
        assert_eq!(d["authorization"].as_str().unwrap().contains("app_cert_sn="), cert, "{d}");
    }
    let v2_answers: Vec<&str> = events
        .iter()
        .filter(|e| e.kind == "gateway.response" && e.detail["protocol"] != "v3")
        .filter_map(|e| e.detail["body"].as_str())
        .collect();
    assert!(!v2_answers.is_empty());
    assert!(v2_answers.iter().all(|b| b.contains("\"alipay_cert_sn\":") == cert), "{v2_answers:?}");
    w.ledger_conserved().await;
}

/// `shop.json` for an app in certificate mode with encryption at a real gateway: the certificate
/// files and the content key read from files, as an operator configures them (here the gateway is
/// the sandbox, which issued them); and a configuration naming both or neither way of verifying
/// Alipay is refused.
#[tokio::test]
async fn a_gateway_configured_with_certificate_files_and_a_content_key_file() {
    use haitao_alipay::PrivateKey;
    use haitao_alipay::time::Clock as _;
    use haitao_shop::config::{CertificateFiles, KeySource};
    let sandbox_clock = haitao_alipay::time::ManualClock::new(haitao_alipay::time::SystemClock.now());
    let mut sc = haitao_alipay_sandbox::Config::new(None, "127.0.0.1:0".parse().unwrap());
    sc.clock = Some(std::sync::Arc::new(sandbox_clock.clone()));
    let sandbox = haitao_alipay_sandbox::start(sc).await.unwrap();
    let (key, der) = PrivateKey::generate().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let http = reqwest::Client::new();
    let info: haitao_sandbox_api::AppInfo = http
        .post(sandbox.base_url().join(path::APPS).unwrap())
        .json(&haitao_sandbox_api::AppRequest {
            public_key: Some(key.public_key().to_pem()),
            cert_mode: true,
            aes: true,
            ..haitao_sandbox_api::AppRequest::named("operator-shop")
        })
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let certs = info.certificates.clone().unwrap();
    let write = |name: &str, text: &str| {
        let p = dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        p
    };
    let files = CertificateFiles {
        app_cert: write("appCertPublicKey.crt", &certs.app_cert),
        alipay_cert: write("alipayCertPublicKey_RSA2.crt", &certs.alipay_cert),
        alipay_root_cert: write("alipayRootCert.crt", &certs.alipay_root_cert),
    };
    let merchant = write("merchant.pem", &haitao_alipay::keys::pem("PRIVATE KEY", &der));
    let aes = write("aes.key", info.aes_key.as_deref().unwrap());
    let settings = |public: Option<String>, certificates: Option<CertificateFiles>| {
        haitao_shop::AlipaySettings::Gateway {
            gateway: sandbox.gateway_url(),
            app_id: info.app_id.clone(),
            seller_id: Some(info.seller_id.clone()),
            merchant_key: KeySource::File { path: merchant.clone() },
            alipay_public_key: public,
            certificates: certificates.map(Box::new),
            encrypt_key: Some(KeySource::File { path: aes.clone() }),
            protocol: haitao_alipay::Protocol::Gateway,
            legacy_rsa: false,
        }
    };
    let config = |alipay| {
        let clock = haitao_alipay::time::ManualClock::new(haitao_alipay::time::SystemClock.now());
        let mut cfg =
            haitao_shop::ShopConfig::local(None, "127.0.0.1:0".parse().unwrap(), sandbox.base_url().clone());
        cfg.clock = std::sync::Arc::new(clock.clone());
        cfg.ids = std::sync::Arc::new(haitao_alipay::ids::SequentialIds::default());
        cfg.job_interval = std::time::Duration::from_secs(3600);
        cfg.test_controls = true;
        cfg.alipay = alipay;
        (cfg, clock)
    };
    for wrong in [settings(None, None), settings(Some(info.alipay_public_key.clone()), Some(files.clone()))] {
        let err = haitao_shop::start(config(wrong).0).await.unwrap_err();
        assert!(err.to_string().contains("exactly one"), "{err}");
    }
    let (cfg, clock) = config(settings(None, Some(files)));
    let shop = haitao_shop::start(cfg).await.unwrap();
    let w = World { sandbox, shop, clock, sandbox_clock, http };
    let (b, order, _) = paid_by_balance(&w, "13800009002", "key-operator").await;
    assert!(paid_status(&order_of(&w, &b, order["id"].as_str().unwrap()).await["status"]));
}
