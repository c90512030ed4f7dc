//! What every payment costs in signing work: signing a page-pay request, verifying a gateway
//! response, and the full inbound check of an Alipay notification (parse, canonicalise, verify).
//! Uses the Node SDK's test keys and its Alipay-signed notification from crates/alipay/tests/data.
//!
//! `cargo bench -p haitao-alipay --bench signing`; figures are recorded in docs/PERFORMANCE.md.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::collections::BTreeMap;
use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use haitao_alipay::inbound::InboundVerifier;
use haitao_alipay::params::Params;
use haitao_alipay::response::{encode, extract};
use haitao_alipay::{PrivateKey, PublicKey, SignType, Signer, Verifier};

const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data");

fn read(file: &str) -> String {
    std::fs::read_to_string(format!("{DIR}/{file}")).unwrap()
}

fn vector(name: &str) -> serde_json::Value {
    let all: serde_json::Value = serde_json::from_str(&read("vectors.json")).unwrap();
    all["vectors"].as_array().unwrap().iter().find(|v| v["name"] == name).unwrap().clone()
}

fn page_pay_params() -> Params {
    let mut p = Params::new();
    for (k, v) in [
        ("app_id", "2021000000000000"),
        ("method", "alipay.trade.page.pay"),
        ("format", "JSON"),
        ("charset", "utf-8"),
        ("sign_type", "RSA2"),
        ("timestamp", "2026-11-27 10:00:00"),
        ("version", "1.0"),
        ("notify_url", "https://shop.example.com/api/v1/alipay/notify"),
        ("return_url", "http://127.0.0.1:43125/return/7f3a"),
        (
            "biz_content",
            r#"{"out_trade_no":"HT202611270000001","product_code":"FAST_INSTANT_TRADE_PAY","total_amount":"220.77","subject":"绮拉 经典保湿面霜 50ml 等 1 件","timeout_express":"30m","enable_pay_channels":"balance,moneyFund"}"#,
        ),
    ] {
        p.set(k, v);
    }
    p
}

fn bench(c: &mut Criterion) {
    let key = PrivateKey::parse(&read("app-private-key.pem")).unwrap();
    let signer = Signer::new(key, SignType::Rsa2).unwrap();
    let request = page_pay_params();
    let content = request.request_sign_content();
    c.bench_function("sign page-pay request (RSA2, 2048-bit)", |b| {
        b.iter(|| signer.sign(black_box(&content)).unwrap())
    });
    // What the Node SDK's pageExecute('GET') does: canonicalise, sign, render the query string.
    c.bench_function("page-pay request: canonicalise, sign, render GET query", |b| {
        b.iter(|| {
            let mut p = black_box(&request).clone();
            let sign = signer.sign(&p.request_sign_content()).unwrap();
            p.set("sign", sign);
            p.to_urlencoded()
        })
    });

    // The floor under every verification: one RSA2 check of a short text with a parsed key.
    let own_key = PublicKey::parse(&read("app-public-key.pem")).unwrap();
    let short = signer.sign("a=1").unwrap();
    let raw_verifier = Verifier::new(own_key);
    c.bench_function("verify RSA2 signature (key parsed once)", |b| {
        b.iter(|| raw_verifier.verify(SignType::Rsa2, black_box("a=1"), black_box(&short)).unwrap())
    });

    let v = vector("response_trade_query");
    let text = v["signed_text"].as_str().unwrap().to_owned();
    let body = encode("alipay_trade_query_response", &text, Some(&signer)).unwrap();
    let own = Verifier::new(PublicKey::parse(&read("app-public-key.pem")).unwrap());
    c.bench_function("extract and verify trade.query response", |b| {
        b.iter(|| {
            let env = extract(black_box(&body), "alipay_trade_query_response").unwrap();
            env.verify(&own, SignType::Rsa2).unwrap();
        })
    });

    let n = vector("notify_trade");
    let params: BTreeMap<String, String> = serde_json::from_value(n["params"].clone()).unwrap();
    let mut form: Params = params.into_iter().collect();
    form.set("sign", n["sign"].as_str().unwrap());
    let raw = form.to_urlencoded();
    let alipay = Verifier::new(PublicKey::parse(&read("alipay-public-key-notify.pem")).unwrap());
    let inbound =
        InboundVerifier::new("2019073166072302", Some("2088531891668739".into()), alipay, SignType::Rsa2);
    c.bench_function("inbound notify: parse, canonicalise, verify", |b| {
        b.iter(|| inbound.notify(black_box(raw.as_bytes())).unwrap())
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
