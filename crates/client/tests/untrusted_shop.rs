//! What the client does not take from a shop on trust: change feeds that say "more" without moving
//! on stop the sync with a clear error instead of asking forever, and a cursor that is not a
//! number is an error, not a restart from wherever the client was; a cashier is opened only on
//! the Alipay gateway the shop named. And a sign-in that is not remembered takes an earlier
//! remembered session out of the keyring.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use haitao_client::{Cache, Client, ClientError, MemoryStore, SecretStore, ShopApi};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A one-route-per-path HTTP shop answering every request with a fixed JSON body; counts requests.
async fn fake_shop(answer: fn(&str) -> String) -> (url::Url, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let hits = Arc::new(AtomicUsize::new(0));
    let counted = hits.clone();
    tokio::spawn(async move {
        loop {
            let Ok((mut sock, _)) = listener.accept().await else { return };
            let counted = counted.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 16 * 1024];
                let n = sock.read(&mut buf).await.unwrap_or(0);
                let head = String::from_utf8_lossy(&buf[..n]).to_string();
                let path = head.split_whitespace().nth(1).unwrap_or("/").to_owned();
                counted.fetch_add(1, Ordering::SeqCst);
                let body = answer(&path);
                let reply = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = sock.write_all(reply.as_bytes()).await;
            });
        }
    });
    (format!("http://{addr}/").parse().unwrap(), hits)
}

const TOKENS: &str = r#"{"access_token":"a","access_expires_at":"2099-01-01T00:00:00Z","refresh_token":"r","refresh_expires_at":"2099-01-01T00:00:00Z"}"#;

fn client(base: url::Url, secrets: MemoryStore) -> (Client, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let cache = Cache::open(&dir.path().join("cache.sqlite3")).unwrap();
    (Client::new(ShopApi::new(base).unwrap(), cache, Arc::new(secrets)), dir)
}

#[tokio::test]
async fn a_catalog_feed_that_never_moves_on_stops_the_sync() {
    let (base, hits) = fake_shop(|_| r#"{"version":7,"products":[],"more":true}"#.to_owned()).await;
    let (c, _dir) = client(base, MemoryStore::default());
    let r = tokio::time::timeout(Duration::from_secs(10), c.sync_catalog()).await.expect("the sync stops");
    assert!(matches!(r, Err(ClientError::BadResponse(_))), "{r:?}");
    assert!(hits.load(Ordering::SeqCst) <= 3, "asked {} times", hits.load(Ordering::SeqCst));
}

#[tokio::test]
async fn an_order_feed_that_never_moves_on_or_sends_no_number_stops_the_sync() {
    let (base, hits) = fake_shop(|path| {
        if path.contains("auth/login") {
            TOKENS.to_owned()
        } else {
            r#"{"orders":[],"cursor":"0","more":true}"#.to_owned()
        }
    })
    .await;
    let (c, _dir) = client(base, MemoryStore::default());
    c.sign_in("13800000000", "haitao2026", false).await.unwrap();
    let r = tokio::time::timeout(Duration::from_secs(10), c.sync_orders()).await.expect("the sync stops");
    assert!(matches!(r, Err(ClientError::BadResponse(_))), "{r:?}");
    assert!(hits.load(Ordering::SeqCst) <= 4, "asked {} times", hits.load(Ordering::SeqCst));

    let (base, _) = fake_shop(|path| {
        if path.contains("auth/login") {
            TOKENS.to_owned()
        } else {
            r#"{"orders":[],"cursor":"next-page","more":false}"#.to_owned()
        }
    })
    .await;
    let (c, _dir) = client(base, MemoryStore::default());
    c.sign_in("13800000000", "haitao2026", false).await.unwrap();
    let r = c.sync_orders().await;
    assert!(matches!(&r, Err(ClientError::BadResponse(m)) if m.contains("next-page")), "{r:?}");
}

#[tokio::test]
async fn signing_in_without_remembering_forgets_an_earlier_remembered_session() {
    let remembered = |s: &MemoryStore| s.get("refresh-token").unwrap().is_some();
    let w = common::world().await;
    let secrets = w.secrets.clone();
    let c = w.client();
    c.register("13800007001", "haitao2026", true).await.unwrap();
    assert!(remembered(&secrets));
    // Someone else signs in on this machine without "remember".
    c.register("13800007002", "haitao2026", false).await.unwrap();
    assert!(!remembered(&secrets), "the earlier remembered session is gone from the keyring");
    // The next start does not bring the first buyer back.
    let state = w.client().restore().await;
    assert!(!state.signed_in, "{state:?}");
}

/// The shop's payment config (its gateway on loopback port 1) and one payment attempt whose
/// cashier is elsewhere.
fn cashier_elsewhere(path: &str) -> String {
    let key: String = include_str!("../../alipay/tests/data/alipay-public-key.pem")
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect();
    if path.contains("auth/login") {
        TOKENS.to_owned()
    } else if path.contains("payment-config") {
        serde_json::json!({
            "app_id": "2021000000000001", "seller_id": null, "gateway": "http://127.0.0.1:1/gateway.do",
            "sign_type": "RSA2", "alipay_public_key": key, "return_page": "http://127.0.0.1:1/return",
            "sandbox": false, "sandbox_url": null
        })
        .to_string()
    } else {
        serde_json::json!({
            "id": "PA1", "order_id": "O1", "out_trade_no": "HT1", "method": {"kind": "balance"},
            "mode": "in_app", "amount": {"minor": 100, "currency": "CNY"}, "status": "redirected",
            "failure": null, "cashier_url": "https://alipay.example.net/gateway.do?method=alipay.trade.page.pay",
            "qr_code": null, "return_url": "http://127.0.0.1:1/return", "trade_no": null,
            "created_at": "2026-12-01T00:00:00Z", "updated_at": "2026-12-01T00:00:00Z",
            "expires_at": "2099-01-01T00:00:00Z"
        })
        .to_string()
    }
}

#[tokio::test]
async fn a_cashier_off_the_shops_gateway_is_never_opened() {
    let (base, _) = fake_shop(cashier_elsewhere).await;
    let (c, _dir) = client(base, MemoryStore::default());
    c.sign_in("13800000000", "haitao2026", false).await.unwrap();
    let r = c
        .start_payment(
            "O1",
            haitao_shop_api::orders::PaymentMethod::Balance,
            haitao_shop_api::orders::PayMode::InApp,
            "http://127.0.0.1:1/return",
        )
        .await;
    assert!(
        matches!(&r, Err(ClientError::BadResponse(m)) if m.contains("alipay.example.net") && m.contains("127.0.0.1:1")),
        "{r:?}"
    );
}
