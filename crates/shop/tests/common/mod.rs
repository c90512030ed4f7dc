//! The shop against an in-process Alipay sandbox, and a small API client for tests.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use haitao_alipay::ids::SequentialIds;
use haitao_alipay::time::{Clock, ManualClock};
use haitao_sandbox_api::{LedgerCheck, Notification, NotificationState, path};
use haitao_shop::{RunningShop, ShopConfig};
use serde_json::{Value, json};

pub struct World {
    pub sandbox: haitao_alipay_sandbox::Running,
    pub shop: RunningShop,
    pub clock: ManualClock,
    pub sandbox_clock: ManualClock,
    pub http: reqwest::Client,
}

pub async fn world() -> World {
    world_with(|_| {}).await
}

/// A world whose shop configuration `tune` adjusts first.
pub async fn world_with(tune: impl FnOnce(&mut ShopConfig)) -> World {
    let sandbox_clock = ManualClock::new(haitao_alipay::time::SystemClock.now());
    let mut sc = haitao_alipay_sandbox::Config::new(None, "127.0.0.1:0".parse().unwrap());
    sc.clock = Some(Arc::new(sandbox_clock.clone()));
    let sandbox = haitao_alipay_sandbox::start(sc).await.unwrap();
    let clock = ManualClock::new(haitao_alipay::time::SystemClock.now());
    let mut cfg = ShopConfig::local(None, "127.0.0.1:0".parse().unwrap(), sandbox.base_url().clone());
    cfg.clock = Arc::new(clock.clone());
    cfg.ids = Arc::new(SequentialIds::default());
    cfg.job_interval = std::time::Duration::from_secs(3600);
    cfg.test_controls = true;
    cfg.database = fresh_database().await;
    tune(&mut cfg);
    let shop = haitao_shop::start(cfg).await.unwrap();
    World { sandbox, shop, clock, sandbox_clock, http: reqwest::Client::new() }
}

/// A fresh PostgreSQL database for one test, when the tests run beside a PostgreSQL server
/// (`scripts/with-postgres` sets HAITAO_TEST_DATABASE); `None`, and the shop keeps SQLite, when
/// they do not.
pub async fn fresh_database() -> Option<haitao_shop::PostgresSettings> {
    let admin = std::env::var("HAITAO_TEST_DATABASE").ok()?;
    Some(new_database(admin).await)
}

/// A fresh database on the server `admin` points at.
pub async fn new_database(admin: String) -> haitao_shop::PostgresSettings {
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let name = format!(
        "haitao_{}_{}_{n}",
        std::process::id(),
        haitao_alipay::time::SystemClock.now().timestamp_micros()
    );
    let url = tokio::task::spawn_blocking(move || haitao_shop::postgres::create_database(&admin, &name))
        .await
        .unwrap()
        .unwrap();
    let mut pg = haitao_shop::PostgresSettings::new(url);
    pg.max_connections = 8;
    pg
}

/// A signed-in buyer.
#[derive(Clone)]
pub struct Buyer {
    pub token: String,
    pub refresh: String,
}

pub struct Resp {
    pub status: u16,
    pub body: Value,
    pub content_type: String,
}

impl World {
    pub fn url(&self, path: &str) -> String {
        format!("{}api/v1/{}", self.shop.base_url(), path.trim_start_matches('/'))
    }

    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Resp {
        let mut rb = self.http.request(method, self.url(path));
        if let Some(t) = token {
            rb = rb.bearer_auth(t);
        }
        if let Some(b) = body {
            rb = rb.json(&b);
        }
        let r = rb.send().await.unwrap();
        let status = r.status().as_u16();
        let content_type =
            r.headers().get("content-type").map(|v| v.to_str().unwrap_or("").to_owned()).unwrap_or_default();
        let text = r.text().await.unwrap();
        Resp { status, body: serde_json::from_str(&text).unwrap_or(Value::String(text)), content_type }
    }

    pub async fn get(&self, path: &str, token: &str) -> Value {
        let r = self.call(reqwest::Method::GET, path, Some(token), None).await;
        assert_eq!(r.status, 200, "GET {path}: {}", r.body);
        r.body
    }

    pub async fn post(&self, path: &str, token: &str, body: Value) -> Resp {
        self.call(reqwest::Method::POST, path, Some(token), Some(body)).await
    }

    /// Registers, verifies a real name and adds an address.
    pub async fn buyer(&self, phone: &str, name: &str, id_number: &str) -> Buyer {
        let r = self
            .call(
                reqwest::Method::POST,
                "auth/register",
                None,
                Some(json!({"phone": phone, "password": "haitao2026"})),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.body);
        let token = r.body["access_token"].as_str().unwrap().to_owned();
        let refresh = r.body["refresh_token"].as_str().unwrap().to_owned();
        let rn = self.post("account/real-name", &token, json!({"name": name, "id_number": id_number})).await;
        assert_eq!(rn.status, 200, "{}", rn.body);
        let a = self
            .post(
                "account/addresses",
                &token,
                json!({"recipient": name, "phone": phone, "province": "浙江省", "city": "杭州市", "district": "西湖区", "street": "文三路 100 号"}),
            )
            .await;
        assert_eq!(a.status, 201, "{}", a.body);
        Buyer { token, refresh }
    }

    /// Rotates the session (after the test clock moved past the access token's lifetime).
    pub async fn refresh(&self, b: &mut Buyer) {
        let r = self
            .call(reqwest::Method::POST, "auth/refresh", None, Some(json!({"refresh_token": b.refresh})))
            .await;
        assert_eq!(r.status, 200, "{}", r.body);
        b.token = r.body["access_token"].as_str().unwrap().to_owned();
        b.refresh = r.body["refresh_token"].as_str().unwrap().to_owned();
    }

    pub async fn address_id(&self, b: &Buyer) -> String {
        self.get("account/addresses", &b.token).await[0]["id"].as_str().unwrap().to_owned()
    }

    pub async fn add_to_cart(&self, b: &Buyer, product: &str, qty: i64) -> Value {
        let r = self
            .call(
                reqwest::Method::PUT,
                &format!("cart/items/{product}"),
                Some(&b.token),
                Some(json!({"quantity": qty})),
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.body);
        r.body
    }

    /// A product with stock whose CNY price is in `range` (fen).
    pub async fn product_between(&self, lo: i64, hi: i64) -> Value {
        let r = self
            .call(
                reqwest::Method::GET,
                &format!("catalog/products?min_price_fen={lo}&max_price_fen={hi}&per_page=200"),
                None,
                None,
            )
            .await;
        r.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["stock"].as_i64().unwrap() >= 5)
            .cloned()
            .expect("a product in range")
    }

    pub async fn order(&self, b: &Buyer, key: &str) -> Resp {
        let address_id = self.address_id(b).await;
        let r = self
            .http
            .post(self.url("orders"))
            .bearer_auth(&b.token)
            .header("Idempotency-Key", key)
            .json(&json!({"address_id": address_id}))
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        Resp { status, body: r.json().await.unwrap(), content_type: String::new() }
    }

    pub async fn sandbox_post(&self, path: &str, body: &impl serde::Serialize) -> (u16, Value) {
        let r = self.http.post(self.sandbox.base_url().join(path).unwrap()).json(body).send().await.unwrap();
        (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
    }

    pub async fn sandbox_get<T: serde::de::DeserializeOwned>(&self, path: &str) -> T {
        self.http.get(self.sandbox.base_url().join(path).unwrap()).send().await.unwrap().json().await.unwrap()
    }

    /// Opens the cashier URL of an attempt (so the sandbox knows the session), like a browser.
    pub async fn open_cashier(&self, attempt: &Value) {
        let url = attempt["cashier_url"].as_str().expect("cashier url");
        let r = self.http.get(url).send().await.unwrap();
        assert!(r.status().is_success(), "cashier: {}", r.status());
    }

    pub async fn run_jobs(&self) {
        haitao_shop::jobs::run_once(&self.shop.shop).await;
    }

    /// Waits for the sandbox to deliver pending notifications to the shop.
    pub async fn settle(&self) {
        for _ in 0..40 {
            let list: Vec<Notification> = self.sandbox_get(&path::notifications(None)).await;
            if list.iter().all(|n| n.state != NotificationState::Pending || n.attempts > 0) {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }

    pub async fn ledger_conserved(&self) {
        let check: LedgerCheck = self.sandbox_get(path::LEDGER_CHECK).await;
        assert!(check.conserved, "{check:?}");
    }
}

/// Statuses of an order whose money was taken.
pub fn paid_status(s: &Value) -> bool {
    matches!(s.as_str(), Some("paid" | "customs_declared" | "held" | "cleared" | "shipped" | "delivered"))
}

pub const ZHANG: (&str, &str) = ("张伟", "110105198803151232");
pub const LI: (&str, &str) = ("李娜", "310104199207082344");
