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

/// The same trade.query through each way a merchant configures an app: public-key mode,
/// certificate mode, certificate mode with AES content encryption, and OpenAPI v3. Certificates
/// and the "Alipay" key are test material in tests/data/bench; tests/node/bench.mjs does the same.
fn modes(c: &mut Criterion) {
    use haitao_alipay::cert::CertMode;
    use haitao_alipay::client::decode_response;
    use haitao_alipay::encrypt::AesKey;
    use haitao_alipay::request::{Content, SignedRequest};
    use haitao_alipay::response::encode_with_cert_sn;
    use haitao_alipay::time::ManualClock;
    use haitao_alipay::{AppConfig, v3};
    let app = PrivateKey::parse(&read("app-private-key.pem")).unwrap();
    let alipay = PrivateKey::parse(&read("bench/alipay-private-key.pem")).unwrap();
    let alipay_signer = Signer::new(alipay.clone(), SignType::Rsa2).unwrap();
    let gateway = url::Url::parse("https://openapi.alipay.com/gateway.do").unwrap();
    let signer = Signer::new(app.clone(), SignType::Rsa2).unwrap();
    let key_mode =
        AppConfig::new("2021000000000000", gateway.clone(), signer.clone(), alipay.public_key().clone())
            .unwrap();
    let certs = || {
        CertMode::new(
            &read("bench/app.crt"),
            &read("bench/alipay.crt"),
            &read("bench/root.crt"),
            app.public_key(),
        )
        .unwrap()
    };
    let cert_mode =
        AppConfig::with_cert_mode("2021000000000000", gateway.clone(), signer.clone(), certs()).unwrap();
    let mut cert_aes =
        AppConfig::with_cert_mode("2021000000000000", gateway, signer.clone(), certs()).unwrap();
    let aes = AesKey::parse("AAECAwQFBgcICQoLDA0ODw==").unwrap();
    cert_aes.encrypt_key = Some(aes.clone());
    let clock = ManualClock::new(haitao_alipay::time::parse_alipay("2026-11-27 10:00:00").unwrap());
    let query = serde_json::json!({"out_trade_no": "HT202611270000001"});
    for (name, config) in [
        ("public-key mode", &key_mode),
        ("certificate mode", &cert_mode),
        ("certificate mode + AES", &cert_aes),
    ] {
        c.bench_function(&format!("sign trade.query request, {name}"), |b| {
            b.iter(|| {
                let r = SignedRequest::build_for(
                    config,
                    &clock,
                    "alipay.trade.query",
                    black_box(&query),
                    &Default::default(),
                    Content::Api,
                )
                .unwrap();
                r.params.to_urlencoded()
            })
        });
    }
    let body = r#"{"out_trade_no":"HT202611270000001"}"#;
    c.bench_function("sign trade.query request, OpenAPI v3 Authorization", |b| {
        b.iter(|| {
            let auth = v3::auth_string(
                "2021000000000000",
                None,
                "0f9c2a4e5b6d7e8f9a0b1c2d3e4f5a6b",
                1_764_208_800_000,
            );
            v3::authorization(&signer, &auth, "POST", "/v3/alipay/trade/query", black_box(body), None)
                .unwrap()
        })
    });

    let node = r#"{"code":"10000","msg":"Success","trade_no":"2026112722001400001","out_trade_no":"HT202611270000001","trade_status":"TRADE_SUCCESS","total_amount":"220.77","buyer_logon_id":"zha***@sandbox.haitao","send_pay_date":"2026-11-27 10:01:05"}"#;
    let sn = cert_mode.cert_mode.as_ref().unwrap().alipay_cert_sn().to_string();
    let plain_body = encode("alipay_trade_query_response", node, Some(&alipay_signer)).unwrap();
    let cert_body =
        encode_with_cert_sn("alipay_trade_query_response", node, &alipay_signer, Some(&sn)).unwrap();
    let cipher = serde_json::to_string(&aes.encrypt(node).unwrap()).unwrap();
    let aes_body =
        encode_with_cert_sn("alipay_trade_query_response", &cipher, &alipay_signer, Some(&sn)).unwrap();
    for (name, config, body) in [
        ("public-key mode", &key_mode, &plain_body),
        ("certificate mode", &cert_mode, &cert_body),
        ("certificate mode + AES", &cert_aes, &aes_body),
    ] {
        c.bench_function(&format!("verify trade.query response, {name}"), |b| {
            b.iter(|| {
                decode_response::<haitao_alipay::api::QueryResponse>(
                    config,
                    "alipay.trade.query",
                    black_box(body),
                )
                .unwrap()
            })
        });
    }
    let v3_body = r#"{"trade_no":"2026112722001400001","out_trade_no":"HT202611270000001","trade_status":"TRADE_SUCCESS","total_amount":"220.77"}"#;
    let v3_sign = alipay_signer.sign(&v3::response_sign_content("1764208800000", "n1", v3_body)).unwrap();
    let v3_verifier = Verifier::new(alipay.public_key().clone());
    c.bench_function("verify trade.query response, OpenAPI v3 headers", |b| {
        b.iter(|| {
            let content = v3::response_sign_content("1764208800000", "n1", black_box(v3_body));
            v3_verifier.verify(SignType::Rsa2, &content, &v3_sign).unwrap()
        })
    });
}

criterion_group!(benches, bench, modes);
criterion_main!(benches);
