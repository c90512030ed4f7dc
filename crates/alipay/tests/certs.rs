//! Certificate mode: serial numbers against values other SDKs' suites assert for real Alipay
//! certificates (tests/data/certs/README.md), chains checked against Alipay's real root, and the
//! full loop — signed request with SNs, response chosen by `alipay_cert_sn`, rotation downloaded
//! and checked — against certificates issued here.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use chrono::{TimeZone, Utc};
use haitao_alipay::cert::{CertError, CertMode, Certificate, root_cert_sn};
use haitao_alipay::client::decode_response;
use haitao_alipay::encrypt::AesKey;
use haitao_alipay::params::{Charset, Limits, Params};
use haitao_alipay::request::{Content, SignedRequest};
use haitao_alipay::response::{ResponseError, encode};
use haitao_alipay::time::ManualClock;
use haitao_alipay::{AppConfig, CallError, PrivateKey, SignType, Signer, UnknownCause};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, PKCS_RSA_SHA256, date_time_ymd,
};
use url::Url;

const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/certs");

fn read(name: &str) -> String {
    std::fs::read_to_string(format!("{DATA}/{name}")).unwrap()
}

fn first_sn(name: &str) -> String {
    Certificate::parse_pem(&read(name), "test").unwrap()[0].sn().to_string()
}

#[test]
fn serial_numbers_match_what_the_sdks_compute_for_real_certificates() {
    // Alipay's Node SDK suite (test/antcertutil.test.ts).
    assert_eq!(first_sn("node-sdk-app.crt"), "866efef280dec9137a87d047ac446315");
    assert_eq!(first_sn("node-sdk-alipay.crt"), "7513daaaa48aa3ba2e4018d84402479c");
    // yansongda/pay (tests/CertManagerTest.php) and go-pay/gopay (2019).
    assert_eq!(first_sn("yansongda-app.crt"), "e90dd23a37c5c7b616e003970817ff82");
    assert_eq!(first_sn("gopay-app.crt"), "4498aaa8ab0c8986c15c41b36186db7d");
    assert_eq!(first_sn("gopay-alipay.crt"), "04afd423ea5bd6f5c5482854ed73278c");
}

#[test]
fn the_root_sn_joins_only_the_rsa_signed_roots() {
    let roots = Certificate::parse_pem(&read("alipay-root.crt"), "root").unwrap();
    // NRCAC (SM2), Ant Financial R1 (RSA), Ant Financial E1 (ECDSA), iTrusChina G3 (RSA, SHA-1).
    assert_eq!(roots.iter().map(Certificate::is_rsa_signed).collect::<Vec<_>>(), [false, true, false, true]);
    assert_eq!(
        root_cert_sn(&roots).unwrap(),
        "687b59193f3f462dd5336e5abf83c5d8_02941eef3187dddf3d3b83462e1dfcf6"
    );
    // A 20-byte serial (hex 10C764E9…0FB396) is written in full decimal.
    assert_eq!(roots[3].serial(), "95790491425698859646659490580052089075020051350");
    assert_eq!(
        roots[1].issuer(),
        "CN=Ant Financial Certification Authority R1,OU=Certification Authority,O=Ant Financial,C=CN"
    );
    let only_ecc: Vec<Certificate> = vec![roots[0].clone(), roots[2].clone()];
    assert_eq!(root_cert_sn(&only_ecc), Err(CertError::NoRsaRoot { what: "Alipay root certificate" }));
}

#[test]
fn unreadable_files_are_named() {
    assert_eq!(
        Certificate::parse_pem("", "Alipay root certificate").unwrap_err(),
        CertError::Empty { what: "Alipay root certificate" }
    );
    let key = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/app-public-key.pem"))
        .unwrap();
    assert!(matches!(
        Certificate::parse_pem(&key, "application certificate"),
        Err(CertError::NotPem { what: "application certificate", .. })
    ));
    let broken = read("gopay-app.crt").replacen("MII", "MIA", 1);
    assert!(Certificate::parse_pem(&broken, "application certificate").is_err());
}

/// A test CA in Alipay's shape: a root, a "Class 2" intermediate, and certificates it issues.
struct TestCa {
    root_pem: String,
    intermediate_pem: String,
    intermediate: Issuer<'static, KeyPair>,
}

fn dn(params: &mut CertificateParams, cn: &str) {
    params.distinguished_name.push(DnType::CountryName, "CN");
    params.distinguished_name.push(DnType::OrganizationName, "Haitao Test");
    params.distinguished_name.push(DnType::OrganizationalUnitName, "Certification Authority");
    params.distinguished_name.push(DnType::CommonName, cn);
}

fn ca_params(cn: &str) -> CertificateParams {
    let mut p = CertificateParams::default();
    dn(&mut p, cn);
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.not_before = date_time_ymd(2024, 1, 1);
    p.not_after = date_time_ymd(2044, 1, 1);
    p
}

fn rsa_key() -> (PrivateKey, KeyPair) {
    let (key, der) = PrivateKey::generate().unwrap();
    let pair = KeyPair::from_pkcs8_der_and_sign_algo(&der.into(), &PKCS_RSA_SHA256).unwrap();
    (key, pair)
}

impl TestCa {
    fn new() -> Self {
        let (_, root_key) = rsa_key();
        let root_params = ca_params("Haitao Test Root R1");
        let root_pem = root_params.self_signed(&root_key).unwrap().pem();
        let root = Issuer::new(root_params, root_key);
        let (_, int_key) = rsa_key();
        let int_params = ca_params("Haitao Test Class 2 R1");
        let intermediate_pem = int_params.signed_by(&int_key, &root).unwrap().pem();
        TestCa { root_pem, intermediate_pem, intermediate: Issuer::new(int_params, int_key) }
    }

    /// A leaf for `key`, valid in 2025–2027, with the intermediate after it (as Alipay's files are).
    fn issue(&self, key: &impl rcgen::PublicKeyData, cn: &str, serial: u64) -> String {
        let mut p = CertificateParams::default();
        dn(&mut p, cn);
        p.serial_number = Some(serial.into());
        p.not_before = date_time_ymd(2025, 1, 1);
        p.not_after = date_time_ymd(2027, 1, 1);
        let leaf = p.signed_by(key, &self.intermediate).unwrap().pem();
        format!("{leaf}{}", self.intermediate_pem)
    }
}

struct Merchant {
    config: AppConfig,
    alipay: Signer,
    alipay_cert: String,
    ca: TestCa,
}

fn merchant() -> Merchant {
    let ca = TestCa::new();
    let (app_key, app_pair) = rsa_key();
    let (alipay_key, alipay_pair) = rsa_key();
    let app_cert = ca.issue(&app_pair, "2021000000000001", 1001);
    let alipay_cert = ca.issue(&alipay_pair, "支付宝(中国)网络技术有限公司-2088000000000001", 2001);
    let app_signer = Signer::new(app_key.clone(), SignType::Rsa2).unwrap();
    let mode = CertMode::new(&app_cert, &alipay_cert, &ca.root_pem, app_key.public_key()).unwrap();
    let config = AppConfig::with_cert_mode(
        "2021000000000001",
        Url::parse("http://127.0.0.1:1/gateway.do").unwrap(),
        app_signer,
        mode,
    )
    .unwrap();
    Merchant { config, alipay: Signer::new(alipay_key, SignType::Rsa2).unwrap(), alipay_cert, ca }
}

fn at(y: i32) -> chrono::DateTime<Utc> {
    Utc.with_ymd_and_hms(y, 6, 1, 0, 0, 0).unwrap()
}

#[test]
fn requests_carry_the_app_and_root_serial_numbers_inside_the_signature() {
    let m = merchant();
    let certs = m.config.cert_mode.as_ref().unwrap();
    let clock = ManualClock::new(at(2026));
    let biz = serde_json::json!({"out_trade_no": "T1"});
    let req = SignedRequest::build_for(
        &m.config,
        &clock,
        "alipay.trade.query",
        &biz,
        &Default::default(),
        Content::Api,
    )
    .unwrap();
    assert_eq!(req.params.get("app_cert_sn"), Some(certs.app_cert_sn().as_str()));
    assert_eq!(req.params.get("alipay_root_cert_sn"), Some(certs.root_cert_sn()));
    // One RSA root: the root SN is that certificate's SN alone.
    let root = Certificate::parse_pem(&m.ca.root_pem, "root").unwrap();
    assert_eq!(certs.root_cert_sn(), root[0].sn().as_str());
    let (url, body) = req.split();
    let query = url.query().unwrap();
    assert!(query.contains("app_cert_sn=") && query.contains("alipay_root_cert_sn="), "{query}");
    assert!(body.starts_with("biz_content="));
    let content = req.params.request_sign_content();
    assert!(content.contains(&format!("app_cert_sn={}", certs.app_cert_sn())));
    haitao_alipay::Verifier::new(m.config.signer.public_key().clone())
        .verify(SignType::Rsa2, &content, req.params.get("sign").unwrap())
        .unwrap();
}

#[test]
fn an_app_certificate_for_another_key_is_refused() {
    let m = merchant();
    let (other, _) = rsa_key();
    let root = m.ca.root_pem.clone();
    assert_eq!(
        CertMode::new(&read("node-sdk-app.crt"), &m.alipay_cert, &root, other.public_key()).unwrap_err(),
        CertError::AppCertKeyMismatch
    );
}

fn body_signed_by(signer: &Signer, sn: Option<&str>, node: &str) -> String {
    let body = encode("alipay_trade_query_response", node, Some(signer)).unwrap();
    match sn {
        Some(sn) => format!("{},\"alipay_cert_sn\":\"{sn}\"}}", &body[..body.len() - 1]),
        None => body,
    }
}

const NODE: &str = r#"{"code":"10000","msg":"Success","trade_no":"2026","out_trade_no":"T1","trade_status":"TRADE_SUCCESS","total_amount":"1.00","buyer_logon_id":"a***@b.com"}"#;

#[test]
fn responses_are_verified_with_the_certificate_they_name() {
    let m = merchant();
    let sn = m.config.cert_mode.as_ref().unwrap().alipay_cert_sn();
    let good = body_signed_by(&m.alipay, Some(sn.as_str()), NODE);
    let q: haitao_alipay::api::QueryResponse =
        decode_response(&m.config, "alipay.trade.query", &good).unwrap();
    assert_eq!(q.out_trade_no, "T1");
    // No SN: the configured certificate, as the SDKs do.
    decode_response::<haitao_alipay::api::QueryResponse>(
        &m.config,
        "alipay.trade.query",
        &body_signed_by(&m.alipay, None, NODE),
    )
    .unwrap();
    // An unknown SN is named, not guessed.
    let rotated = body_signed_by(&m.alipay, Some("0123456789abcdef0123456789abcdef"), NODE);
    let err = decode_response::<haitao_alipay::api::QueryResponse>(&m.config, "alipay.trade.query", &rotated)
        .unwrap_err();
    assert!(
        matches!(
            err,
            CallError::Unknown(UnknownCause::Response(ResponseError::Cert(CertError::UnknownAlipayCert { ref sn })))
                if sn == "0123456789abcdef0123456789abcdef"
        ),
        "{err:?}"
    );
    // The right SN with another key's signature fails.
    let (forger, _) = rsa_key();
    let forged = body_signed_by(&Signer::new(forger, SignType::Rsa2).unwrap(), Some(sn.as_str()), NODE);
    assert!(
        decode_response::<haitao_alipay::api::QueryResponse>(&m.config, "alipay.trade.query", &forged)
            .is_err()
    );
}

#[test]
fn a_rotated_certificate_is_taken_only_when_it_chains_to_the_root_and_is_current() {
    let m = merchant();
    let certs = m.config.cert_mode.as_ref().unwrap();
    let (_, new_pair) = rsa_key();
    let rotated = m.ca.issue(&new_pair, "支付宝(中国)网络技术有限公司-2088000000000001", 2002);
    assert!(matches!(certs.add_alipay_cert(&rotated, at(2030)), Err(CertError::OutsideValidity { .. })));
    let sn = certs.add_alipay_cert(&rotated, at(2026)).unwrap();
    assert_eq!(
        certs.alipay_key(Some(sn.as_str())).unwrap().spki_der(),
        rcgen::PublicKeyData::subject_public_key_info(&new_pair)
    );
    // Issued by another CA with the same names: not trusted.
    let impostor = TestCa::new();
    let (_, pair) = rsa_key();
    let forged = impostor.issue(&pair, "支付宝(中国)网络技术有限公司-2088000000000001", 2003);
    assert!(matches!(certs.add_alipay_cert(&forged, at(2026)), Err(CertError::Untrusted { .. })));
    // Without its intermediate the leaf cannot reach the root.
    let leaf_only = rotated.split_inclusive("-----END CERTIFICATE-----").next().unwrap().to_owned();
    assert!(matches!(certs.add_alipay_cert(&leaf_only, at(2026)), Err(CertError::Untrusted { .. })));
}

#[test]
fn real_alipay_certificates_chain_to_the_real_root() {
    // go-pay/gopay's 2019 Alipay certificate: leaf + "Class 2 R1", issued under Ant Financial R1.
    let m = merchant();
    let mode = CertMode::new(
        &m.ca.issue(&rsa_key_for(&m), "app", 1),
        &read("gopay-alipay.crt"),
        &read("alipay-root.crt"),
        m.config.signer.public_key(),
    )
    .unwrap();
    assert_eq!(mode.root_cert_sn(), "687b59193f3f462dd5336e5abf83c5d8_02941eef3187dddf3d3b83462e1dfcf6");
    let sn = mode
        .add_alipay_cert(&read("gopay-alipay.crt"), Utc.with_ymd_and_hms(2020, 6, 1, 0, 0, 0).unwrap())
        .unwrap();
    assert_eq!(sn.as_str(), "04afd423ea5bd6f5c5482854ed73278c");
    // It expired in August 2021.
    assert!(matches!(
        mode.add_alipay_cert(&read("gopay-alipay.crt"), at(2022)),
        Err(CertError::OutsideValidity { .. })
    ));
    // The Node SDK's copy is issued to another Alipay entity and carries no intermediate.
    assert!(
        mode.add_alipay_cert(
            &read("node-sdk-alipay.crt"),
            Utc.with_ymd_and_hms(2021, 1, 1, 0, 0, 0).unwrap()
        )
        .is_err()
    );
}

#[test]
fn only_a_certificate_issued_to_alipay_by_a_ca_is_taken_as_alipays() {
    let m = merchant();
    let certs = m.config.cert_mode.as_ref().unwrap();
    // The merchant's own certificate chains to the same root, but is not Alipay's.
    let (app_key, app_pair) = rsa_key();
    let app_cert = m.ca.issue(&app_pair, "2021000000000001", 3001);
    assert!(matches!(certs.add_alipay_cert(&app_cert, at(2026)), Err(CertError::NotAlipay { .. })));
    // A certificate with Alipay's name signed by an app's key (not a CA): not trusted.
    let mut app_params = CertificateParams::default();
    dn(&mut app_params, "2021000000000001");
    let app_issuer = Issuer::new(app_params, app_pair);
    let mut forged = CertificateParams::default();
    dn(&mut forged, "支付宝(中国)网络技术有限公司-2088000000000001");
    forged.not_before = date_time_ymd(2025, 1, 1);
    forged.not_after = date_time_ymd(2027, 1, 1);
    let (_, forged_pair) = rsa_key();
    let forged_pem = forged.signed_by(&forged_pair, &app_issuer).unwrap().pem();
    let chain = format!("{forged_pem}{app_cert}");
    assert!(matches!(certs.add_alipay_cert(&chain, at(2026)), Err(CertError::Untrusted { .. })));
    // A CA certificate with Alipay's name: a signing key is never a CA.
    let mut ca_named = ca_params("支付宝(中国)网络技术有限公司-2088000000000001");
    ca_named.distinguished_name = {
        let mut p = CertificateParams::default();
        dn(&mut p, "支付宝(中国)网络技术有限公司-2088000000000001");
        p.distinguished_name
    };
    let (_, ca_pair) = rsa_key();
    let ca_pem = ca_named.signed_by(&ca_pair, &m.ca.intermediate).unwrap().pem();
    assert!(certs.add_alipay_cert(&format!("{ca_pem}{}", m.ca.intermediate_pem), at(2026)).is_err());
    drop(app_key);
}

/// The merchant's own app public key, to issue it another certificate.
fn rsa_key_for(m: &Merchant) -> rcgen::SubjectPublicKeyInfo {
    rcgen::SubjectPublicKeyInfo::from_der(m.config.signer.public_key().spki_der()).unwrap()
}

#[test]
fn encrypted_requests_and_responses_round_trip_and_the_signature_covers_the_ciphertext() {
    let mut m = merchant();
    let key = AesKey::generate().unwrap();
    m.config.encrypt_key = Some(key.clone());
    let clock = ManualClock::new(at(2026));
    let biz = serde_json::json!({"out_trade_no": "T1"});
    let api = SignedRequest::build_for(
        &m.config,
        &clock,
        "alipay.trade.query",
        &biz,
        &Default::default(),
        Content::Api,
    )
    .unwrap();
    assert_eq!(api.params.get("encrypt_type"), Some("AES"));
    assert_eq!(key.decrypt(api.params.get("biz_content").unwrap()).unwrap(), r#"{"out_trade_no":"T1"}"#);
    let page = SignedRequest::build_for(
        &m.config,
        &clock,
        "alipay.trade.page.pay",
        &biz,
        &Default::default(),
        Content::Page,
    )
    .unwrap();
    assert_eq!(page.params.get("encrypt_type"), None, "pages the browser opens stay plain");

    let sn = m.config.cert_mode.as_ref().unwrap().alipay_cert_sn();
    let cipher = serde_json::to_string(&key.encrypt(NODE).unwrap()).unwrap();
    let good = body_signed_by(&m.alipay, Some(sn.as_str()), &cipher);
    let q: haitao_alipay::api::QueryResponse =
        decode_response(&m.config, "alipay.trade.query", &good).unwrap();
    assert_eq!(q.trade_no, "2026");
    // Signed over the decrypted text instead: refused.
    let wrong = encode("alipay_trade_query_response", &cipher, None).unwrap();
    let sig = m.alipay.sign(NODE).unwrap();
    let wrong = format!("{},\"sign\":\"{sig}\"}}", &wrong[..wrong.len() - 1]);
    assert!(
        decode_response::<haitao_alipay::api::QueryResponse>(&m.config, "alipay.trade.query", &wrong)
            .is_err()
    );
    // Without the key an encrypted answer is named as such.
    m.config.encrypt_key = None;
    let err = decode_response::<haitao_alipay::api::QueryResponse>(&m.config, "alipay.trade.query", &good)
        .unwrap_err();
    assert!(matches!(err, CallError::Unknown(UnknownCause::Response(ResponseError::Encrypted))), "{err:?}");
    // Another key: the ciphertext does not decrypt.
    m.config.encrypt_key = Some(AesKey::generate().unwrap());
    assert!(
        decode_response::<haitao_alipay::api::QueryResponse>(&m.config, "alipay.trade.query", &good).is_err()
    );
}

/// A gateway that has rotated to `signer`/`pem` and serves the certificate download.
#[derive(Clone)]
struct Rotated {
    signer: Signer,
    pem: String,
    sn: String,
    downloads: Arc<AtomicU32>,
    app_cert_sn: String,
}

async fn rotated_gateway(
    axum::extract::State(gw): axum::extract::State<Rotated>,
    uri: axum::http::Uri,
    body: axum::body::Bytes,
) -> String {
    use base64::Engine as _;
    let mut p =
        Params::parse_urlencoded(uri.query().unwrap_or("").as_bytes(), Charset::Utf8, Limits::default())
            .unwrap()
            .0;
    for (k, v) in Params::parse_urlencoded(&body, Charset::Utf8, Limits::default()).unwrap().0.iter() {
        p.set(k, v);
    }
    assert_eq!(
        p.get("app_cert_sn"),
        Some(gw.app_cert_sn.as_str()),
        "every request names the app certificate"
    );
    let method = p.get("method").unwrap().to_owned();
    let node = if method == "alipay.open.app.alipaycert.download" {
        gw.downloads.fetch_add(1, Ordering::SeqCst);
        let biz: serde_json::Value = serde_json::from_str(p.get("biz_content").unwrap()).unwrap();
        assert_eq!(biz["alipay_cert_sn"], gw.sn.as_str());
        let content = base64::engine::general_purpose::STANDARD.encode(gw.pem.as_bytes());
        format!(r#"{{"code":"10000","msg":"Success","alipay_cert_content":"{content}"}}"#)
    } else {
        NODE.to_owned()
    };
    let node = if method == "alipay.open.app.alipaycert.download" && gw.pem.is_empty() {
        r#"{"code":"40004","msg":"Business Failed","sub_code":"isv.alipay-cert-not-exist","sub_msg":"x"}"#
            .to_owned()
    } else {
        node
    };
    let key = haitao_alipay::response::response_key(&method);
    let body = encode(&key, &node, Some(&gw.signer)).unwrap();
    format!("{},\"alipay_cert_sn\":\"{}\"}}", &body[..body.len() - 1], gw.sn)
}

async fn client_against(m: &Merchant, gw: Rotated) -> haitao_alipay::AlipayClient {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = axum::Router::new().route("/gateway.do", axum::routing::post(rotated_gateway)).with_state(gw);
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let mut config = m.config.clone();
    config.gateway = Url::parse(&format!("http://{addr}/gateway.do")).unwrap();
    haitao_alipay::AlipayClient::new(Arc::new(config), Arc::new(ManualClock::new(at(2026))))
        .unwrap()
        .with_retry(haitao_alipay::RetryPolicy::none())
}

fn query_t1() -> haitao_alipay::api::Query {
    haitao_alipay::api::Query::new(haitao_alipay::api::TradeRef::out_trade_no("T1"))
}

#[tokio::test]
async fn the_client_downloads_a_rotated_certificate_once_and_checks_it_against_the_root() {
    let m = merchant();
    let (new_key, new_pair) = rsa_key();
    let pem = m.ca.issue(&new_pair, "支付宝(中国)网络技术有限公司-2088000000000001", 2002);
    let sn = Certificate::parse_pem(&pem, "t").unwrap()[0].sn().to_string();
    let downloads = Arc::new(AtomicU32::new(0));
    let gw = Rotated {
        signer: Signer::new(new_key, SignType::Rsa2).unwrap(),
        pem,
        sn: sn.clone(),
        downloads: downloads.clone(),
        app_cert_sn: m.config.cert_mode.as_ref().unwrap().app_cert_sn().to_string(),
    };
    let client = client_against(&m, gw).await;
    let q = client.execute(&query_t1()).await.unwrap();
    assert_eq!(q.out_trade_no, "T1");
    client.execute(&query_t1()).await.unwrap();
    assert_eq!(downloads.load(Ordering::SeqCst), 1, "a certificate once known is kept");
    assert!(m.config.cert_mode.as_ref().unwrap().alipay_key(Some(&sn)).is_ok());
}

#[tokio::test]
async fn a_downloaded_certificate_from_another_ca_is_refused() {
    let m = merchant();
    let impostor = TestCa::new();
    let (new_key, new_pair) = rsa_key();
    let pem = impostor.issue(&new_pair, "支付宝(中国)网络技术有限公司-2088000000000001", 2002);
    let sn = Certificate::parse_pem(&pem, "t").unwrap()[0].sn().to_string();
    let gw = Rotated {
        signer: Signer::new(new_key, SignType::Rsa2).unwrap(),
        pem,
        sn,
        downloads: Arc::new(AtomicU32::new(0)),
        app_cert_sn: m.config.cert_mode.as_ref().unwrap().app_cert_sn().to_string(),
    };
    let client = client_against(&m, gw).await;
    let err = client.execute(&query_t1()).await.unwrap_err();
    assert!(
        matches!(
            err,
            CallError::Unknown(UnknownCause::Response(ResponseError::Cert(CertError::Untrusted { .. })))
        ),
        "{err:?}"
    );
}

#[tokio::test]
async fn a_certificate_that_cannot_be_downloaded_leaves_the_call_unknown_not_failed() {
    let m = merchant();
    let (new_key, _) = rsa_key();
    let gw = Rotated {
        signer: Signer::new(new_key, SignType::Rsa2).unwrap(),
        pem: String::new(),
        sn: "0123456789abcdef0123456789abcdef".into(),
        downloads: Arc::new(AtomicU32::new(0)),
        app_cert_sn: m.config.cert_mode.as_ref().unwrap().app_cert_sn().to_string(),
    };
    let client = client_against(&m, gw).await;
    let err = client.execute(&query_t1()).await.unwrap_err();
    assert!(err.is_result_unknown(), "the query was answered, only not verifiably: {err:?}");
}

/// A signed v3 server error says nothing about what happened, whatever its code: unknown.
#[tokio::test]
async fn a_signed_v3_server_error_leaves_the_outcome_unknown() {
    let m = merchant();
    let sn = m.config.cert_mode.as_ref().unwrap().alipay_cert_sn().to_string();
    let signer = m.alipay.clone();
    let app = axum::Router::new().route(
        "/v3/alipay/trade/refund",
        axum::routing::post(move || {
            let (signer, sn) = (signer.clone(), sn.clone());
            async move {
                let body = r#"{"code":"service-busy","message":"系统繁忙"}"#.to_owned();
                let sign = signer.sign(&haitao_alipay::v3::response_sign_content("1", "n", &body)).unwrap();
                (
                    axum::http::StatusCode::SERVICE_UNAVAILABLE,
                    [
                        ("alipay-timestamp", "1".to_owned()),
                        ("alipay-nonce", "n".to_owned()),
                        ("alipay-signature", sign),
                        ("alipay-sn", sn),
                    ],
                    body,
                )
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let mut config = m.config.clone();
    config.gateway = Url::parse(&format!("http://{addr}/gateway.do")).unwrap();
    let client = haitao_alipay::AlipayClient::new(Arc::new(config), Arc::new(ManualClock::new(at(2026))))
        .unwrap()
        .with_retry(haitao_alipay::RetryPolicy::none());
    let refund = haitao_alipay::api::Refund::new(
        haitao_alipay::api::TradeRef::out_trade_no("T1"),
        haitao_alipay::Money::from_minor(100, haitao_alipay::Currency::Cny),
        "R1",
    );
    let err = client.execute_v3(&refund).await.unwrap_err();
    assert!(err.is_result_unknown(), "{err:?}");
}
