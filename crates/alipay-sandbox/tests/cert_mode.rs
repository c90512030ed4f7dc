//! Apps in public-key certificate mode and apps with content encryption, as merchants configure
//! them from what the sandbox hands out: every call through a real client, the gateway's refusals of
//! wrong serial numbers and keys, a rotation of Alipay's certificate picked up by the client, and
//! notifications signed with the certificate's key.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::harness_with;
use haitao_alipay::api::{PagePay, Precreate, Query, Refund, TradeRef};
use haitao_alipay::cert::Certificate;
use haitao_alipay::encrypt::AesKey;
use haitao_alipay::params::Params;
use haitao_alipay::{Currency, Expected, Money};
use haitao_sandbox_api::{AlipayCertRotated, PayRequest, PayWith};
use serde_json::Value;

const ZHANGWEI: &str = "zhangwei@sandbox.haitao";

fn cny(fen: i64) -> Money {
    Money::from_minor(fen, Currency::Cny)
}

fn query(out: &str) -> Query {
    Query::new(TradeRef::out_trade_no(out))
}

/// Posts `params` (re-signed by the harness's merchant key) to the gateway and returns the body.
async fn raw_call(h: &common::Harness, mut params: Params) -> Value {
    params.remove("sign");
    let sign = h.client.config().signer.sign(&params.request_sign_content()).unwrap();
    params.set("sign", sign);
    let body = h
        .http
        .post(h.sandbox.gateway_url())
        .header("content-type", "application/x-www-form-urlencoded;charset=utf-8")
        .body(params.to_urlencoded())
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    serde_json::from_str(&body).unwrap()
}

/// The signed parameters the client would send for a query.
fn query_params(h: &common::Harness, out: &str) -> Params {
    let clock = h.clock.clone();
    haitao_alipay::request::SignedRequest::build_for(
        h.client.config(),
        &clock,
        "alipay.trade.query",
        &query(out),
        &Default::default(),
        haitao_alipay::request::Content::Api,
    )
    .unwrap()
    .params
}

fn sub_code(v: &Value) -> &str {
    v["alipay_trade_query_response"]["sub_code"].as_str().unwrap_or_default()
}

#[tokio::test]
async fn a_certificate_mode_app_pays_queries_and_refunds_with_verified_answers() {
    let h = harness_with(None, true, false).await;
    let certs = h.client.config().cert_mode.clone().unwrap();
    // The root file has an ECDSA root beside the RSA one; only the RSA root names the chain.
    let info: Vec<haitao_sandbox_api::AppInfo> = h.get_as(haitao_sandbox_api::path::APPS).await;
    let handed = info[0].certificates.clone().unwrap();
    let roots = Certificate::parse_pem(&handed.alipay_root_cert, "root").unwrap();
    assert_eq!(roots.iter().filter(|c| c.is_rsa_signed()).count(), 1);
    assert_eq!(roots.len(), 2);
    assert_eq!(certs.root_cert_sn(), handed.alipay_root_cert_sn);
    assert_eq!(certs.app_cert_sn().as_str(), handed.app_cert_sn);

    let pc = Precreate::new("HT-CERT-1", cny(8_800), "证书模式订单");
    let cb = haitao_alipay::Callbacks { notify_url: Some(h.notify_url.clone()), return_url: None };
    h.client.execute_with(&pc, &cb).await.unwrap();
    h.pay_ok(&PayRequest::new("HT-CERT-1", ZHANGWEI, PayWith::Balance)).await;
    let q = h.client.execute(&query("HT-CERT-1")).await.unwrap();
    assert!(q.trade_status.is_paid());
    // Answers name the Alipay certificate whose key signed them.
    let raw = raw_call(&h, query_params(&h, "HT-CERT-1")).await;
    assert_eq!(raw["alipay_cert_sn"], handed.alipay_cert_sn.as_str());
    // The notification verifies with the key of Alipay's certificate.
    let notes = h.wait_notifications(1).await;
    let n = h.inbound.notify(&notes[0]).unwrap();
    n.matched(Some(&Expected { total_amount: cny(8_800) })).unwrap();
    let r =
        h.client.execute(&Refund::new(TradeRef::out_trade_no("HT-CERT-1"), cny(800), "R1")).await.unwrap();
    assert_eq!(r.refund_fee.to_money(Currency::Cny).unwrap(), cny(800));
}

#[tokio::test]
async fn wrong_or_missing_serial_numbers_are_refused_as_alipay_refuses_them() {
    let h = harness_with(None, true, false).await;
    let mut p = query_params(&h, "HT-X");
    p.remove("app_cert_sn");
    assert_eq!(sub_code(&raw_call(&h, p).await), "isv.missing-app-cert-sn");
    let mut p = query_params(&h, "HT-X");
    p.set("app_cert_sn", "0123456789abcdef0123456789abcdef");
    assert_eq!(sub_code(&raw_call(&h, p).await), "isv.app-cert-not-exist");
    let mut p = query_params(&h, "HT-X");
    p.remove("alipay_root_cert_sn");
    assert_eq!(sub_code(&raw_call(&h, p).await), "isv.missing-alipay-root-cert-sn");
    let mut p = query_params(&h, "HT-X");
    // The real Alipay root's SN is not this sandbox's.
    p.set("alipay_root_cert_sn", "687b59193f3f462dd5336e5abf83c5d8_02941eef3187dddf3d3b83462e1dfcf6");
    assert_eq!(sub_code(&raw_call(&h, p).await), "isv.invalid-alipay-root-cert-sn");
    // The right serial numbers: an answer (the trade does not exist).
    assert_eq!(sub_code(&raw_call(&h, query_params(&h, "HT-X")).await), "ACQ.TRADE_NOT_EXIST");
}

#[tokio::test]
async fn a_rotated_alipay_certificate_is_downloaded_checked_and_used() {
    let h = harness_with(None, true, false).await;
    let before = h.client.config().cert_mode.as_ref().unwrap().alipay_cert_sn();
    let pc = Precreate::new("HT-ROT-1", cny(1_000), "轮换");
    let cb = haitao_alipay::Callbacks { notify_url: Some(h.notify_url.clone()), return_url: None };
    h.client.execute_with(&pc, &cb).await.unwrap();
    let (status, v) = h.post(haitao_sandbox_api::path::ALIPAY_CERT_ROTATE, serde_json::json!({})).await;
    assert_eq!(status, 200, "{v}");
    let rotated: AlipayCertRotated = serde_json::from_value(v).unwrap();
    assert_eq!(rotated.previous, before.as_str());
    assert_ne!(rotated.alipay_cert_sn, rotated.previous);
    // The next answer names the new certificate; the client downloads it, checks it against the
    // root and verifies with it.
    h.pay_ok(&PayRequest::new("HT-ROT-1", ZHANGWEI, PayWith::Balance)).await;
    let q = h.client.execute(&query("HT-ROT-1")).await.unwrap();
    assert!(q.trade_status.is_paid());
    let certs = h.client.config().cert_mode.as_ref().unwrap();
    assert!(certs.alipay_key(Some(&rotated.alipay_cert_sn)).is_ok());
    // Notifications signed with the new key verify too.
    let notes = h.wait_notifications(1).await;
    h.inbound.notify(&notes[0]).unwrap();
    // The download answers any certificate ever issued, and nothing else.
    let dl = |sn: &str| {
        let clock = h.clock.clone();
        haitao_alipay::request::SignedRequest::build_for(
            h.client.config(),
            &clock,
            "alipay.open.app.alipaycert.download",
            &haitao_alipay::api::AlipayCertDownload { alipay_cert_sn: sn.to_owned() },
            &Default::default(),
            haitao_alipay::request::Content::Api,
        )
        .unwrap()
        .params
    };
    let old = raw_call(&h, dl(before.as_str())).await;
    assert_eq!(old["alipay_open_app_alipaycert_download_response"]["code"], "10000");
    let none = raw_call(&h, dl("ffffffffffffffffffffffffffffffff")).await;
    assert_eq!(none["alipay_open_app_alipaycert_download_response"]["sub_code"], "isv.alipay-cert-not-exist");
}

#[tokio::test]
async fn encrypted_apps_send_and_receive_ciphertext() {
    let h = harness_with(None, false, true).await;
    let key = h.client.config().encrypt_key.clone().unwrap();
    let pc = Precreate::new("HT-AES-1", cny(2_000), "加密订单");
    let cb = haitao_alipay::Callbacks { notify_url: Some(h.notify_url.clone()), return_url: None };
    let a = h.client.execute_with(&pc, &cb).await.unwrap();
    assert!(a.qr_code.contains("/qr/"));
    h.pay_ok(&PayRequest::new("HT-AES-1", ZHANGWEI, PayWith::Balance)).await;
    assert!(h.client.execute(&query("HT-AES-1")).await.unwrap().trade_status.is_paid());
    // On the wire: biz_content and the answer's node are ciphertext.
    let p = query_params(&h, "HT-AES-1");
    assert_eq!(p.get("encrypt_type"), Some("AES"));
    assert!(serde_json::from_str::<Value>(p.get("biz_content").unwrap()).is_err());
    let raw = raw_call(&h, p).await;
    let node = raw["alipay_trade_query_response"].as_str().expect("the node is a string of ciphertext");
    let plain: Value = serde_json::from_str(&key.decrypt(node).unwrap()).unwrap();
    assert_eq!(plain["out_trade_no"], "HT-AES-1");
    // Another key: Alipay's signed "cannot decrypt", in the clear.
    let mut p = query_params(&h, "HT-AES-1");
    let other = AesKey::generate().unwrap();
    p.set("biz_content", other.encrypt(r#"{"out_trade_no":"HT-AES-1"}"#).unwrap());
    let v = raw_call(&h, p).await;
    assert_eq!(sub_code(&v), "isv.decryption-error-unknown");
    assert!(v["sign"].is_string());
    // An unknown scheme.
    let mut p = query_params(&h, "HT-AES-1");
    p.set("encrypt_type", "DES");
    assert_eq!(sub_code(&raw_call(&h, p).await), "isv.decryption-error-not-valid-encrypt-type");
    // Plain requests still work for an app with a key.
    let mut p = query_params(&h, "HT-AES-1");
    p.remove("encrypt_type");
    p.set("biz_content", r#"{"out_trade_no":"HT-AES-1"}"#);
    let v = raw_call(&h, p).await;
    assert_eq!(v["alipay_trade_query_response"]["code"], "10000");
}

#[tokio::test]
async fn an_app_without_a_key_refuses_encrypted_requests() {
    let h = harness_with(None, false, false).await;
    let mut p = query_params(&h, "HT-AES-2");
    p.set("encrypt_type", "AES");
    p.set("biz_content", AesKey::generate().unwrap().encrypt(r#"{"out_trade_no":"HT-AES-2"}"#).unwrap());
    assert_eq!(sub_code(&raw_call(&h, p).await), "isv.decryption-error-not-valid-encrypt-key");
}

#[tokio::test]
async fn certificate_mode_and_encryption_together_and_page_payments_stay_plain() {
    let h = harness_with(None, true, true).await;
    let pay = PagePay::new("HT-BOTH-1", cny(3_000), "证书加密");
    let resp = h.open_page_pay(&pay).await;
    assert_eq!(resp.status().as_u16(), 303);
    let paid = h.pay_ok(&PayRequest::new("HT-BOTH-1", ZHANGWEI, PayWith::Balance)).await;
    // The return redirect is signed with the certificate's key.
    let ret = paid.return_url.as_deref().unwrap();
    h.inbound.return_redirect(ret.split_once('?').unwrap().1).unwrap();
    let q = h.client.execute(&query("HT-BOTH-1")).await.unwrap();
    assert!(q.trade_status.is_paid());
}
