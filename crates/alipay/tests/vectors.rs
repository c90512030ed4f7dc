//! Every vector in tests/data/vectors.json: Alipay-signed notifications and responses
//! published with the official Node SDK, and request/response signatures computed with its test key.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;

use haitao_alipay::inbound::{Expected, InboundVerifier, Rejection, SignRule};
use haitao_alipay::params::Params;
use haitao_alipay::response::extract;
use haitao_alipay::{Currency, Money, PrivateKey, PublicKey, SignType, Signer, Verifier, VerifyError};
use serde::Deserialize;

const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data");

#[derive(Deserialize)]
struct File {
    vectors: Vec<Vector>,
}

#[derive(Deserialize)]
struct Vector {
    name: String,
    public_key_file: String,
    private_key_file: Option<String>,
    params: Option<BTreeMap<String, String>>,
    sign: Option<String>,
    string_to_sign: Option<String>,
    raw_body: Option<String>,
    signed_text: Option<String>,
    expect_valid: bool,
}

fn vectors() -> Vec<Vector> {
    let text = std::fs::read_to_string(format!("{DIR}/vectors.json")).expect("vectors.json");
    let f: File = serde_json::from_str(&text).expect("vectors parse");
    assert_eq!(f.vectors.len(), 6, "every vector is covered below");
    f.vectors
}

fn vector(name: &str) -> Vector {
    vectors().into_iter().find(|v| v.name == name).unwrap_or_else(|| panic!("no vector {name}"))
}

fn public(file: &str) -> PublicKey {
    PublicKey::parse(&std::fs::read_to_string(format!("{DIR}/{file}")).unwrap()).unwrap()
}

fn private(file: &str) -> PrivateKey {
    PrivateKey::parse(&std::fs::read_to_string(format!("{DIR}/{file}")).unwrap()).unwrap()
}

fn params(v: &Vector) -> Params {
    v.params.clone().unwrap().into_iter().collect()
}

#[test]
fn every_vector_is_known() {
    let names: Vec<String> = vectors().into_iter().map(|v| v.name).collect();
    assert_eq!(
        names,
        [
            "notify_trade",
            "notify_servicemarket",
            "response_file_upload",
            "request_page_pay",
            "response_trade_query",
            "notify_trade_tampered"
        ]
    );
}

#[test]
fn notify_trade_verifies_with_v1_only() {
    let v = vector("notify_trade");
    assert!(v.expect_valid);
    let p = params(&v);
    assert_eq!(p.v1_sign_content(), v.string_to_sign.clone().unwrap());
    let verifier = Verifier::new(public(&v.public_key_file));
    let sign = v.sign.as_deref().unwrap();
    assert_eq!(verifier.verify(SignType::Rsa2, &p.v1_sign_content(), sign), Ok(()));
    assert_eq!(verifier.verify(SignType::Rsa2, &p.v2_sign_content(), sign), Err(VerifyError::Invalid));

    // The same notification as a raw form body through the inbound checks.
    let mut with_sign = p.clone();
    with_sign.set("sign", sign);
    let body = with_sign.to_urlencoded();
    let inbound = InboundVerifier::new(
        "2019073166072302",
        Some("2088531891668739".into()),
        verifier.clone(),
        SignType::Rsa2,
    );
    let notify = inbound.notify(body.as_bytes()).unwrap();
    assert_eq!(notify.out_trade_no, "20190815155618536-564-57");
    assert_eq!(notify.fund_bill_list.len(), 1);
    assert_eq!(notify.fund_bill_list[0].fund_channel, "ALIPAYACCOUNT");
    let expected = Expected { total_amount: Money::from_minor(10, Currency::Cny) };
    let matched = notify.clone().matched(Some(&expected)).unwrap();
    assert_eq!(matched.amount, Money::from_minor(10, Currency::Cny));
    let wrong = Expected { total_amount: Money::from_minor(11, Currency::Cny) };
    assert!(matches!(notify.clone().matched(Some(&wrong)), Err(Rejection::AmountMismatch { .. })));
    assert_eq!(notify.clone().matched(None), Err(Rejection::UnknownOrder("20190815155618536-564-57".into())));

    // V2 alone refuses it; the Node SDK's try-both behaviour accepts it.
    assert!(inbound.clone().with_rule(SignRule::V2).notify(body.as_bytes()).is_err());
    assert!(inbound.clone().with_rule(SignRule::Either).notify(body.as_bytes()).is_ok());

    // A downgrade: `sign_type` is outside what V1 signs, so the same signed body can declare RSA
    // (SHA-1) or anything else; only the configured type is accepted. No declared type means the
    // configured one (Alipay's own notifications always declare it).
    for declared in ["RSA", "MD5", "rsa2", "RSA2 "] {
        let mut downgraded = with_sign.clone();
        downgraded.set("sign_type", declared);
        assert!(
            matches!(
                inbound.notify(downgraded.to_urlencoded().as_bytes()),
                Err(Rejection::SignTypeMismatch { expected: SignType::Rsa2, .. })
            ),
            "{declared:?}"
        );
    }
    let rsa1 = InboundVerifier::new("2019073166072302", None, verifier.clone(), SignType::Rsa);
    assert!(matches!(rsa1.notify(body.as_bytes()), Err(Rejection::SignTypeMismatch { .. })));

    // Wrong app and wrong seller.
    let other_app = InboundVerifier::new("2019000000000000", None, verifier.clone(), SignType::Rsa2);
    assert!(matches!(other_app.notify(body.as_bytes()), Err(Rejection::WrongApp { .. })));
    let other_seller =
        InboundVerifier::new("2019073166072302", Some("2088000000000000".into()), verifier, SignType::Rsa2);
    assert!(matches!(other_seller.notify(body.as_bytes()), Err(Rejection::WrongSeller { .. })));
}

#[test]
fn notify_servicemarket_verifies_with_v2_only() {
    let v = vector("notify_servicemarket");
    let p = params(&v);
    assert_eq!(p.v2_sign_content(), v.string_to_sign.clone().unwrap());
    let verifier = Verifier::new(public(&v.public_key_file));
    let sign = v.sign.as_deref().unwrap();
    assert_eq!(verifier.verify(SignType::Rsa2, &p.v2_sign_content(), sign), Ok(()));
    assert_eq!(verifier.verify(SignType::Rsa2, &p.v1_sign_content(), sign), Err(VerifyError::Invalid));
    let mut tampered = p.clone();
    tampered.set("service_code", "58621634111");
    assert_eq!(verifier.verify(SignType::Rsa2, &tampered.v2_sign_content(), sign), Err(VerifyError::Invalid));
}

#[test]
fn response_file_upload_verifies_over_the_raw_node() {
    let v = vector("response_file_upload");
    let body = v.raw_body.clone().unwrap();
    let env = extract(&body, "alipay_open_file_upload_response").unwrap();
    assert_eq!(env.node, v.signed_text.clone().unwrap());
    let verifier = Verifier::new(public(&v.public_key_file));
    assert_eq!(env.verify(&verifier, SignType::Rsa2), Ok(()));
    // Re-serialised with a space, the same content no longer verifies: the raw text is what counts.
    let respaced = body.replacen("\"code\":\"10000\"", "\"code\": \"10000\"", 1);
    let env2 = extract(&respaced, "alipay_open_file_upload_response").unwrap();
    assert!(env2.verify(&verifier, SignType::Rsa2).is_err());
}

#[test]
fn request_page_pay_reproduces_the_signature_byte_for_byte() {
    let v = vector("request_page_pay");
    let p = params(&v);
    assert_eq!(p.request_sign_content(), v.string_to_sign.clone().unwrap());
    let signer = Signer::new(private(v.private_key_file.as_deref().unwrap()), SignType::Rsa2).unwrap();
    assert_eq!(signer.sign(&p.request_sign_content()).unwrap(), v.sign.clone().unwrap());
    // The PKCS#8 form of the same key signs identically.
    let signer8 = Signer::new(private("app-private-key-pkcs8.pem"), SignType::Rsa2).unwrap();
    assert_eq!(signer8.sign(&p.request_sign_content()).unwrap(), v.sign.clone().unwrap());
    let verifier = Verifier::new(public(&v.public_key_file));
    assert_eq!(
        verifier.verify(SignType::Rsa2, &p.request_sign_content(), v.sign.as_deref().unwrap()),
        Ok(())
    );
}

#[test]
fn response_trade_query_reproduces_the_signature() {
    let v = vector("response_trade_query");
    let signer = Signer::new(private(v.private_key_file.as_deref().unwrap()), SignType::Rsa2).unwrap();
    let text = v.signed_text.clone().unwrap();
    assert_eq!(signer.sign(&text).unwrap(), v.sign.clone().unwrap());
    let body = haitao_alipay::response::encode("alipay_trade_query_response", &text, Some(&signer)).unwrap();
    let env = extract(&body, "alipay_trade_query_response").unwrap();
    assert_eq!(env.verify(&Verifier::new(public(&v.public_key_file)), SignType::Rsa2), Ok(()));
}

#[test]
fn tampered_notify_fails() {
    let v = vector("notify_trade_tampered");
    assert!(!v.expect_valid);
    let p = params(&v);
    let verifier = Verifier::new(public(&v.public_key_file));
    assert_eq!(
        verifier.verify(SignType::Rsa2, &p.v1_sign_content(), v.sign.as_deref().unwrap()),
        Err(VerifyError::Invalid)
    );
    let mut with_sign = p.clone();
    with_sign.set("sign", v.sign.clone().unwrap());
    let inbound = InboundVerifier::new("2019073166072302", None, verifier, SignType::Rsa2);
    assert!(matches!(
        inbound.notify(with_sign.to_urlencoded().as_bytes()),
        Err(Rejection::BadSignature(VerifyError::Invalid))
    ));
}

#[test]
fn sha1_signatures_match_openssl() {
    // `printf 'a=1&b=2' | openssl dgst -sha1 -sign app-private-key.pem | base64 -w0`, checked by
    // running openssl when it is installed; otherwise the round trip must still hold.
    let signer = Signer::new(private("app-private-key.pem"), SignType::Rsa).unwrap();
    let ours = signer.sign("a=1&b=2").unwrap();
    let openssl = std::process::Command::new("openssl")
        .args(["dgst", "-sha1", "-sign", &format!("{DIR}/app-private-key.pem")])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write;
            child.stdin.take().unwrap().write_all(b"a=1&b=2")?;
            child.wait_with_output()
        });
    if let Ok(out) = openssl
        && out.status.success()
    {
        use base64::Engine;
        assert_eq!(ours, base64::engine::general_purpose::STANDARD.encode(out.stdout));
    }
    let v = Verifier::new(public("app-public-key.pem"));
    assert_eq!(v.verify(SignType::Rsa, "a=1&b=2", &ours), Ok(()));
}
