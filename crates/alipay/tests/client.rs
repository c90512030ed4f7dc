//! The async client against small local gateways that answer in every way a real one can: signed
//! success, business failures, result-unknown codes, HTTP errors, stalls, dropped connections,
//! oversized and forged answers.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::routing::post;
use haitao_alipay::api::{Close, Query, TradeRef};
use haitao_alipay::params::{Charset, Limits, Params};
use haitao_alipay::response::{encode, escape_slashes};
use haitao_alipay::time::SystemClock;
use haitao_alipay::{
    AlipayClient, AppConfig, CallError, PrivateKey, RetryPolicy, SignType, Signer, UnknownCause,
};

const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data");

struct Keys {
    app: PrivateKey,
    gateway: PrivateKey,
}

fn keys() -> Keys {
    let app =
        PrivateKey::parse(&std::fs::read_to_string(format!("{DIR}/app-private-key.pem")).unwrap()).unwrap();
    let (gateway, _) = PrivateKey::generate().unwrap();
    Keys { app, gateway }
}

#[derive(Clone, Copy)]
enum Behaviour {
    Success,
    BusinessFailure,
    SystemError,
    Unavailable20000,
    Http502,
    Stall,
    Oversized,
    SignedByAppKey,
    Tampered,
    UnsignedBusinessFailure,
}

#[derive(Clone)]
struct Gw {
    behaviour: Behaviour,
    hits: Arc<AtomicU32>,
    gateway: PrivateKey,
    app: PrivateKey,
}

const QUERY_NODE: &str = r#"{"code":"10000","msg":"Success","trade_no":"2026112722001","out_trade_no":"HT1","trade_status":"TRADE_SUCCESS","total_amount":"88.88","send_pay_date":"2026-11-27 12:00:00"}"#;

async fn gateway(State(gw): State<Gw>, body: Bytes) -> axum::response::Response {
    use axum::response::IntoResponse;
    gw.hits.fetch_add(1, Ordering::SeqCst);
    let (p, _) = Params::parse_urlencoded(&body, Charset::Utf8, Limits::default()).unwrap();
    // The request must be signed by the app and carry the protocol parameters.
    let sig = p.get("sign").unwrap();
    let app_verifier = haitao_alipay::Verifier::new(gw.app.public_key().clone());
    assert_eq!(app_verifier.verify(SignType::Rsa2, &p.request_sign_content(), sig), Ok(()));
    let method = p.get("method").unwrap().to_owned();
    let key = haitao_alipay::response::response_key(&method);
    let gw_signer = Signer::new(gw.gateway.clone(), SignType::Rsa2).unwrap();
    let app_signer = Signer::new(gw.app.clone(), SignType::Rsa2).unwrap();
    let body = match gw.behaviour {
        Behaviour::Success => encode(&key, &escape_slashes(QUERY_NODE), Some(&gw_signer)).unwrap(),
        Behaviour::BusinessFailure => encode(
            &key,
            r#"{"code":"40004","msg":"Business Failed","sub_code":"ACQ.TRADE_NOT_EXIST","sub_msg":"交易不存在"}"#,
            Some(&gw_signer),
        )
        .unwrap(),
        Behaviour::SystemError => encode(
            &key,
            r#"{"code":"40004","msg":"Business Failed","sub_code":"ACQ.SYSTEM_ERROR","sub_msg":"系统错误"}"#,
            Some(&gw_signer),
        )
        .unwrap(),
        Behaviour::Unavailable20000 => {
            encode(&key, r#"{"code":"20000","msg":"Service Currently Unavailable","sub_code":"isp.unknow-error"}"#, None)
                .unwrap()
        }
        // Alipay signs business failures; one without a signature may come from anyone on the path.
        Behaviour::UnsignedBusinessFailure => encode(
            &key,
            r#"{"code":"40004","msg":"Business Failed","sub_code":"ACQ.TRADE_NOT_EXIST","sub_msg":"交易不存在"}"#,
            None,
        )
        .unwrap(),
        Behaviour::Http502 => return (axum::http::StatusCode::BAD_GATEWAY, "bad gateway").into_response(),
        Behaviour::Stall => {
            tokio::time::sleep(Duration::from_secs(5)).await;
            String::new()
        }
        Behaviour::Oversized => format!("{{\"{key}\":{{\"pad\":\"{}\"}}}}", "x".repeat(2 * 1024 * 1024)),
        Behaviour::SignedByAppKey => encode(&key, QUERY_NODE, Some(&app_signer)).unwrap(),
        Behaviour::Tampered => {
            let good = encode(&key, QUERY_NODE, Some(&gw_signer)).unwrap();
            good.replace("88.88", "0.01")
        }
    };
    ([(axum::http::header::CONTENT_TYPE, "text/html;charset=utf-8")], body).into_response()
}

async fn start(behaviour: Behaviour) -> (AlipayClient, Arc<AtomicU32>) {
    let k = keys();
    let hits = Arc::new(AtomicU32::new(0));
    let gw = Gw { behaviour, hits: hits.clone(), gateway: k.gateway.clone(), app: k.app.clone() };
    let app = Router::new().route("/gateway.do", post(gateway)).with_state(gw);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    client_for(&format!("http://{addr}/gateway.do"), &k, hits).await
}

async fn client_for(url: &str, k: &Keys, hits: Arc<AtomicU32>) -> (AlipayClient, Arc<AtomicU32>) {
    let config = AppConfig::new(
        "2021000000000001",
        url.parse().unwrap(),
        Signer::new(k.app.clone(), SignType::Rsa2).unwrap(),
        k.gateway.public_key().clone(),
    )
    .unwrap();
    let http = reqwest::Client::builder().timeout(Duration::from_millis(500)).build().unwrap();
    let client = AlipayClient::new(Arc::new(config), Arc::new(SystemClock))
        .unwrap()
        .with_http(http, Duration::from_millis(500))
        .with_retry(RetryPolicy {
            attempts: 3,
            first_delay: Duration::from_millis(1),
            max_delay: Duration::from_millis(5),
        });
    (client, hits)
}

fn query() -> Query {
    Query::new(TradeRef::out_trade_no("HT1"))
}

fn close() -> Close {
    Close { trade: TradeRef::out_trade_no("HT1"), operator_id: None }
}

#[tokio::test]
async fn success_is_verified_and_typed() {
    let (c, hits) = start(Behaviour::Success).await;
    let r = c.execute(&query()).await.unwrap();
    assert_eq!(r.out_trade_no, "HT1");
    assert!(r.trade_status.is_paid());
    assert_eq!(r.amount().unwrap().minor(), 8888);
    assert_eq!(hits.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn business_failure_is_definite_and_not_retried() {
    let (c, hits) = start(Behaviour::BusinessFailure).await;
    let e = c.execute(&query()).await.unwrap_err();
    assert!(matches!(e, CallError::Failed(_)), "{e:?}");
    assert_eq!(e.sub_code(), Some("ACQ.TRADE_NOT_EXIST"));
    assert_eq!(hits.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn unknown_outcomes_retry_idempotent_calls_only() {
    for b in [Behaviour::SystemError, Behaviour::Unavailable20000, Behaviour::Http502] {
        let (c, hits) = start(b).await;
        let e = c.execute(&query()).await.unwrap_err();
        assert!(e.is_result_unknown(), "{e:?}");
        assert_eq!(hits.load(Ordering::SeqCst), 3, "query is retried");

        let (c, hits) = start(b).await;
        let e = c.execute(&close()).await.unwrap_err();
        assert!(e.is_result_unknown(), "{e:?}");
        assert_eq!(hits.load(Ordering::SeqCst), 1, "close is never repeated blindly");
    }
}

#[tokio::test]
async fn stalls_time_out_as_unknown() {
    let (c, _) = start(Behaviour::Stall).await;
    let e = c.execute(&close()).await.unwrap_err();
    assert!(matches!(e, CallError::Unknown(UnknownCause::Timeout(_))), "{e:?}");
}

#[tokio::test]
async fn dropped_connections_are_unknown() {
    // A listener that accepts and immediately closes every connection.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((sock, _)) = listener.accept().await {
            drop(sock);
        }
    });
    let (c, _) = client_for(&format!("http://{addr}/gateway.do"), &keys(), Arc::new(AtomicU32::new(0))).await;
    let e = c.execute(&close()).await.unwrap_err();
    assert!(matches!(e, CallError::Unknown(UnknownCause::Connection(_))), "{e:?}");
    // Nothing listening at all.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let (c, _) =
        client_for(&format!("http://{closed}/gateway.do"), &keys(), Arc::new(AtomicU32::new(0))).await;
    assert!(c.execute(&close()).await.unwrap_err().is_result_unknown());
}

/// A business failure (`40004`) without a signature is not definite: Alipay signs those, so an
/// unsigned "trade does not exist" could make the shop give up on a trade that took money. (It
/// used to be taken as a definite failure.)
#[tokio::test]
async fn an_unsigned_business_failure_is_not_definite() {
    let (c, _) = start(Behaviour::UnsignedBusinessFailure).await;
    let e = c.execute(&close()).await.unwrap_err();
    assert!(
        matches!(
            e,
            CallError::Unknown(UnknownCause::Response(haitao_alipay::response::ResponseError::Unsigned))
        ),
        "{e:?}"
    );
    assert!(e.is_result_unknown());
    assert_eq!(e.sub_code(), None, "nothing to act on");
}

/// A verified answer about another trade is no answer to this call (it used to be taken: a query
/// for one trade answered "paid" about another would have marked the wrong attempt paid).
#[tokio::test]
async fn an_answer_about_another_trade_is_not_an_answer() {
    let (c, _) = start(Behaviour::Success).await;
    let e = c.execute(&Query::new(TradeRef::out_trade_no("HT2"))).await.unwrap_err();
    assert!(
        matches!(
            &e,
            CallError::Unknown(UnknownCause::Response(haitao_alipay::response::ResponseError::Mismatch {
                field: "out_trade_no",
                ..
            }))
        ),
        "{e:?}"
    );
    assert!(
        c.execute(&Query::new(TradeRef::trade_no("2026112722002"))).await.unwrap_err().is_result_unknown()
    );
    assert_eq!(
        c.execute(&Query::new(TradeRef::trade_no("2026112722001"))).await.unwrap().out_trade_no,
        "HT1"
    );
}

#[tokio::test]
async fn oversized_and_forged_answers_are_rejected() {
    let (c, _) = start(Behaviour::Oversized).await;
    let e = c.execute(&close()).await.unwrap_err();
    assert!(
        matches!(
            e,
            CallError::Unknown(UnknownCause::Response(
                haitao_alipay::response::ResponseError::TooLarge { .. }
            ))
        ),
        "{e:?}"
    );

    let (c, _) = start(Behaviour::Tampered).await;
    let e = c.execute(&close()).await.unwrap_err();
    assert!(e.to_string().contains("signature"), "{e}");

    let (c, _) = start(Behaviour::SignedByAppKey).await;
    let e = c.execute(&close()).await.unwrap_err();
    assert!(e.to_string().contains("your own application key"), "{e}");
}
