//! OpenAPI v3 through Haitao's client: the trade APIs in each key mode and with encryption, the
//! gateway's refusals, and answers the client must not trust.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::harness_with;
use haitao_alipay::api::{Close, Precreate, Query, Refund, RefundQuery, TradeRef};
use haitao_alipay::{Currency, Money};
use haitao_sandbox_api::{ForceRequest, Outcome, PayRequest, PayWith, path};
use serde_json::Value;

const ZHANGWEI: &str = "zhangwei@sandbox.haitao";

fn cny(fen: i64) -> Money {
    Money::from_minor(fen, Currency::Cny)
}

async fn every_trade_api(cert_mode: bool, aes: bool) {
    let h = harness_with(None, cert_mode, aes).await;
    let out = format!("V3-{cert_mode}-{aes}");
    let pre = h.client.execute_v3(&Precreate::new(out.clone(), cny(5_000), "v3 订单")).await.unwrap();
    assert!(pre.qr_code.contains("/qr/"), "{pre:?}");
    // Not paid yet: the trade does not exist, a definite answer.
    let e = h.client.execute_v3(&Query::new(TradeRef::out_trade_no(out.clone()))).await.unwrap_err();
    assert_eq!(e.sub_code(), Some("ACQ.TRADE_NOT_EXIST"), "{e:?}");
    assert!(!e.is_result_unknown());
    h.pay_ok(&PayRequest::new(out.clone(), ZHANGWEI, PayWith::Balance)).await;
    let q = h.client.execute_v3(&Query::new(TradeRef::out_trade_no(out.clone()))).await.unwrap();
    assert!(q.trade_status.is_paid());
    assert_eq!(q.total_amount.to_money(Currency::Cny).unwrap(), cny(5_000));
    let r = h
        .client
        .execute_v3(&Refund::new(TradeRef::out_trade_no(out.clone()), cny(1_000), "R1"))
        .await
        .unwrap();
    assert_eq!(r.refund_fee.to_money(Currency::Cny).unwrap(), cny(1_000));
    let rq = h
        .client
        .execute_v3(&RefundQuery::with_time(TradeRef::out_trade_no(out.clone()), "R1"))
        .await
        .unwrap();
    assert_eq!(rq.refund_status.as_deref(), Some("REFUND_SUCCESS"), "{rq:?}");
    let e = h
        .client
        .execute_v3(&Close { trade: TradeRef::out_trade_no(out), operator_id: None })
        .await
        .unwrap_err();
    assert_eq!(e.sub_code(), Some("ACQ.TRADE_STATUS_ERROR"), "a paid trade is not closed: {e:?}");
    // The trace keeps the v3 requests with their Authorization.
    let events: Vec<haitao_sandbox_api::Event> = h.get_as(&format!("{}?limit=10000", path::EVENTS)).await;
    let v3_requests: Vec<&Value> = events
        .iter()
        .filter(|e| e.kind == "gateway.request" && e.detail["protocol"] == "v3")
        .map(|e| &e.detail)
        .collect();
    assert!(v3_requests.len() >= 6);
    assert!(v3_requests.iter().all(|d| d["signature_valid"] == true && d["authorization"].is_string()));
    assert_eq!(
        v3_requests.iter().all(|d| d["biz_content_decrypted"].is_string()),
        aes,
        "encrypted bodies are kept with what they decrypted to"
    );
}

#[tokio::test]
async fn v3_in_public_key_mode() {
    every_trade_api(false, false).await;
}

#[tokio::test]
async fn v3_in_certificate_mode() {
    every_trade_api(true, false).await;
}

#[tokio::test]
async fn v3_with_encryption_in_both_modes() {
    every_trade_api(false, true).await;
    every_trade_api(true, true).await;
}

#[tokio::test]
async fn the_gateway_refuses_bad_requests_and_signs_its_refusals() {
    let h = harness_with(None, false, false).await;
    let url = |p: &str| h.sandbox.base_url().join(p).unwrap();
    // No Authorization.
    let r = h.http.post(url("v3/alipay/trade/query")).body("{}").send().await.unwrap();
    assert_eq!(r.status(), 400);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["code"], "missing-signature");
    // Unknown path and page pay (no v3 path at Alipay either).
    for p in ["v3/alipay/trade/nothing", "v3/alipay/trade/page/pay"] {
        let r = h.http.post(url(p)).body("{}").send().await.unwrap();
        assert_eq!(r.status(), 404, "{p}");
    }
    // A signature by another key: 401, signed by the sandbox (the app is known).
    let (stranger, _) = haitao_alipay::PrivateKey::generate().unwrap();
    let signer = haitao_alipay::Signer::new(stranger, haitao_alipay::SignType::Rsa2).unwrap();
    let auth = haitao_alipay::v3::auth_string(&h.app_id, None, "n1", 1);
    let body = r#"{"out_trade_no":"X"}"#;
    let authz =
        haitao_alipay::v3::authorization(&signer, &auth, "POST", "/v3/alipay/trade/query", body, None)
            .unwrap();
    let r = h
        .http
        .post(url("v3/alipay/trade/query"))
        .header("authorization", authz)
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let (ts, nonce, sig) = (
        r.headers()["alipay-timestamp"].to_str().unwrap().to_owned(),
        r.headers()["alipay-nonce"].to_str().unwrap().to_owned(),
        r.headers()["alipay-signature"].to_str().unwrap().to_owned(),
    );
    let text = r.text().await.unwrap();
    assert!(text.contains("invalid-signature"), "{text}");
    h.client
        .config()
        .verifier
        .verify(
            haitao_alipay::SignType::Rsa2,
            &haitao_alipay::v3::response_sign_content(&ts, &nonce, &text),
            &sig,
        )
        .unwrap();
}

#[tokio::test]
async fn forced_unknown_outcomes_are_unknown_through_v3() {
    let h = harness_with(None, false, false).await;
    h.client.execute_v3(&Precreate::new("V3-U", cny(3_000), "未知")).await.unwrap();
    h.pay_ok(&PayRequest::new("V3-U", ZHANGWEI, PayWith::Balance)).await;
    for outcome in [Outcome::ResultUnknown, Outcome::DropConnection, Outcome::GatewayError] {
        let (s, v) = h
            .post(path::SCENARIOS, serde_json::to_value(ForceRequest::order("V3-U", outcome)).unwrap())
            .await;
        assert_eq!(s, 200, "{v}");
        let e = h
            .client
            .execute_v3(&Refund::new(TradeRef::out_trade_no("V3-U"), cny(100), "RU"))
            .await
            .unwrap_err();
        assert!(e.is_result_unknown(), "{outcome:?}: {e:?}");
    }
}
