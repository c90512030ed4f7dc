//! What merchants' SDKs send, accepted as Alipay accepts it (docs/sandbox.md has the table of who
//! sends what): amounts as JSON numbers, every parameter in the query string of a GET, `charset`
//! in both the URL and the body, GBK requests signed over their GBK bytes and answered in GBK,
//! `format` left out.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::harness;
use haitao_alipay::params::{Charset, Params};
use haitao_alipay::time::{Clock as _, format_alipay};
use haitao_sandbox_api::{PayRequest, PayWith, TradeView, path};
use serde_json::Value;

const ZHANGWEI: &str = "zhangwei@sandbox.haitao";

/// The common parameters of a call by the harness's app, unsigned.
fn base(h: &common::Harness, method: &str, biz: &str) -> Params {
    let mut p = Params::new();
    p.set("app_id", h.app_id.clone());
    p.set("method", method);
    p.set("charset", "utf-8");
    p.set("sign_type", "RSA2");
    p.set("timestamp", format_alipay(h.clock.now()));
    p.set("version", "1.0");
    p.set("biz_content", biz);
    p
}

/// Signs over the sign string's bytes in `charset`, as the Java and PHP SDKs do.
fn sign_in(h: &common::Harness, p: &mut Params, charset: Charset) {
    let bytes = charset.encode(&p.request_sign_content()).unwrap();
    p.set("sign", h.client.config().signer.sign_bytes(&bytes).unwrap());
}

/// `k=v&…` with every value percent-encoded from its bytes in `charset`.
fn encode_in(pairs: &[(&str, &str)], charset: Charset) -> String {
    pairs
        .iter()
        .map(|(k, v)| {
            let v: String = url::form_urlencoded::byte_serialize(&charset.encode(v).unwrap()).collect();
            format!("{k}={v}")
        })
        .collect::<Vec<_>>()
        .join("&")
}

async fn post_form(h: &common::Harness, query: &str, body: String, content_type: &str) -> (String, Vec<u8>) {
    let mut url = h.sandbox.gateway_url();
    if !query.is_empty() {
        url.set_query(Some(query));
    }
    let r = h.http.post(url).header("content-type", content_type).body(body).send().await.unwrap();
    let ct = r.headers()["content-type"].to_str().unwrap().to_owned();
    (ct, r.bytes().await.unwrap().to_vec())
}

fn node<'a>(v: &'a Value, method: &str) -> &'a Value {
    &v[haitao_alipay::response::response_key(method)]
}

#[tokio::test]
async fn amounts_sent_as_json_numbers_are_read_from_their_digits() {
    let h = harness().await;
    for (out, amount, fen) in
        [("NUM-1", "66.6", Some(6_660)), ("NUM-2", "0.3", Some(30)), ("NUM-3", "88.888", None)]
    {
        let biz = format!(r#"{{"out_trade_no":"{out}","total_amount":{amount},"subject":"数字金额"}}"#);
        let mut p = base(&h, "alipay.trade.precreate", &biz);
        sign_in(&h, &mut p, Charset::Utf8);
        let (_, body) = post_form(&h, "", p.to_urlencoded(), "application/x-www-form-urlencoded").await;
        let v: Value = serde_json::from_slice(&body).unwrap();
        let n = node(&v, "alipay.trade.precreate");
        match fen {
            Some(fen) => {
                assert_eq!(n["code"], "10000", "{v}");
                h.pay_ok(&PayRequest::new(out, ZHANGWEI, PayWith::Balance)).await;
                let t: TradeView = h.get_as(&path::trade(out)).await;
                assert_eq!(t.trade.cny_fen, fen, "{amount}");
            }
            None => assert_eq!(n["sub_code"], "ACQ.INVALID_PARAMETER", "three decimals are refused: {v}"),
        }
    }
}

#[tokio::test]
async fn everything_in_the_query_string_of_a_get_without_format() {
    let h = harness().await;
    let mut p = base(&h, "alipay.trade.query", r#"{"out_trade_no":"GET-1"}"#);
    assert_eq!(p.get("format"), None);
    sign_in(&h, &mut p, Charset::Utf8);
    let mut url = h.sandbox.gateway_url();
    url.set_query(Some(&p.to_urlencoded()));
    let v: Value = h.http.get(url).send().await.unwrap().json().await.unwrap();
    assert_eq!(node(&v, "alipay.trade.query")["sub_code"], "ACQ.TRADE_NOT_EXIST", "{v}");
    assert!(v["sign"].is_string());
}

#[tokio::test]
async fn charset_in_both_the_url_and_the_body_is_one_parameter() {
    let h = harness().await;
    let mut p = base(&h, "alipay.trade.query", r#"{"out_trade_no":"BOTH-1"}"#);
    sign_in(&h, &mut p, Charset::Utf8);
    let all = p.to_urlencoded();
    // The .NET SDK's shape: everything in the body, charset in the URL too.
    let (_, body) = post_form(&h, "charset=utf-8", all.clone(), "application/x-www-form-urlencoded").await;
    let v: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(node(&v, "alipay.trade.query")["sub_code"], "ACQ.TRADE_NOT_EXIST", "{v}");
    // Two different values are ambiguous.
    let (_, body) = post_form(&h, "charset=GBK", all, "application/x-www-form-urlencoded").await;
    let v: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["error_response"]["sub_code"], "isv.invalid-parameter", "{v}");
}

#[tokio::test]
async fn gbk_requests_are_verified_over_gbk_bytes_and_answered_in_gbk() {
    let h = harness().await;
    let biz = r#"{"out_trade_no":"GBK-1","total_amount":"12.34","subject":"海淘测试商品"}"#;
    let mut p = base(&h, "alipay.trade.precreate", biz);
    p.set("charset", "GBK");
    sign_in(&h, &mut p, Charset::Gbk);
    let pairs: Vec<(&str, &str)> = p.iter().collect();
    let (ct, body) =
        post_form(&h, "", encode_in(&pairs, Charset::Gbk), "application/x-www-form-urlencoded;charset=GBK")
            .await;
    assert!(ct.to_ascii_lowercase().contains("charset=gbk"), "{ct}");
    let text = Charset::Gbk.decode(&body).expect("the answer is GBK text");
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(node(&v, "alipay.trade.precreate")["code"], "10000", "{v}");
    h.pay_ok(&PayRequest::new("GBK-1", ZHANGWEI, PayWith::Balance)).await;
    let t: TradeView = h.get_as(&path::trade("GBK-1")).await;
    assert_eq!(t.trade.subject, "海淘测试商品", "decoded from GBK");
    // The signature covers the node's GBK bytes.
    let env = haitao_alipay::response::extract(&text, "alipay_trade_precreate_response").unwrap();
    h.client
        .config()
        .verifier
        .verify_bytes(
            haitao_alipay::SignType::Rsa2,
            &Charset::Gbk.encode(env.node).unwrap(),
            env.sign.as_deref().unwrap(),
        )
        .unwrap();

    // Signed over the UTF-8 bytes while declaring GBK: not what was sent, refused as Alipay does.
    let mut p = base(&h, "alipay.trade.precreate", &biz.replace("GBK-1", "GBK-2"));
    p.set("charset", "GBK");
    sign_in(&h, &mut p, Charset::Utf8);
    let pairs: Vec<(&str, &str)> = p.iter().collect();
    let (_, body) =
        post_form(&h, "", encode_in(&pairs, Charset::Gbk), "application/x-www-form-urlencoded").await;
    let v: Value = serde_json::from_str(&Charset::Gbk.decode(&body).unwrap()).unwrap();
    assert_eq!(node(&v, "alipay.trade.precreate")["sub_code"], "isv.invalid-signature", "{v}");
}
