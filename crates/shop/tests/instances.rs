//! Two shop instances on one PostgreSQL database, behind no load balancer but the buyers
//! themselves: each buyer signs up and orders on one instance and pays through the other, while
//! both run their background jobs against the same books, and every notification from Alipay is
//! delivered to both instances at the same moment. Then every order is audited against the
//! sandbox's trades: each payment kept once or refunded once, stock sold once, the ledger whole.
//!
//! Needs a PostgreSQL server: `scripts/with-postgres cargo test -p haitao-shop --test instances --
//! --ignored` (make test runs it so).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::HashMap;
use std::sync::Arc;

use haitao_alipay::ids::SequentialIds;
use haitao_alipay::time::{Clock, ManualClock};
use haitao_sandbox_api::{
    ForceRequest, LedgerCheck, Outcome, PayAnswer, PayRequest, PayWith, TradeView, path,
};
use haitao_shop::store::Store;
use haitao_shop::{RunningShop, ShopConfig};
use haitao_shop_api::orders::{AttemptStatus, OrderStatus, RefundStatus, TrackingStage};
use serde_json::{Value, json};

const RETURN: &str = "http://127.0.0.1:45678/haitao/return";
const BUYERS: usize = 16;

struct Api {
    http: reqwest::Client,
    sandbox: String,
}

impl Api {
    async fn call(
        &self,
        shop: &RunningShop,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut rb = self.http.request(method, format!("{}api/v1/{path}", own(shop)));
        if let Some(t) = token {
            rb = rb.bearer_auth(t);
        }
        if let Some(b) = body {
            rb = rb.json(&b);
        }
        let r = rb.send().await.unwrap();
        let status = r.status().as_u16();
        let text = r.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
    }

    async fn post(&self, shop: &RunningShop, path: &str, token: &str, body: Value) -> Value {
        let (s, v) = self.call(shop, reqwest::Method::POST, path, Some(token), Some(body)).await;
        assert!((200..300).contains(&s), "POST {path}: {s} {v}");
        v
    }

    async fn sandbox_post(&self, path: &str, body: &impl serde::Serialize) -> (u16, Value) {
        let r = self.http.post(format!("{}{path}", self.sandbox)).json(body).send().await.unwrap();
        (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
    }

    async fn sandbox_get<T: serde::de::DeserializeOwned>(&self, path: &str) -> Option<T> {
        let r = self.http.get(format!("{}{path}", self.sandbox)).send().await.unwrap();
        if r.status() == 404 {
            return None;
        }
        Some(r.json().await.unwrap())
    }

    /// Pays an attempt in the sandbox's cashier from Zhang Wei's balance.
    async fn pay(&self, attempt: &Value) -> PayAnswer {
        let r = self.http.get(attempt["cashier_url"].as_str().unwrap()).send().await.unwrap();
        assert!(r.status().is_success());
        let req = PayRequest::new(
            attempt["out_trade_no"].as_str().unwrap(),
            "zhangwei@sandbox.haitao",
            PayWith::Balance,
        );
        let (s, v) = self.sandbox_post(path::PAY, &req).await;
        assert_eq!(s, 200, "{v}");
        serde_json::from_value(v).unwrap()
    }
}

/// An instance's own address (its public one is the forwarder's).
fn own(shop: &RunningShop) -> url::Url {
    format!("http://{}/", shop.addr).parse().unwrap()
}

/// What a buyer did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Story {
    /// Ordered on one instance, paid through the other.
    Paid,
    /// Paid twice: the first cashier, replaced by a second attempt on the other instance, took
    /// the money too (its notification lost).
    PaidTwice,
    /// Paid, then asked for all of it back on the other instance.
    Refunded,
    /// Never paid: the order closes.
    Abandoned,
    /// Clicked "pay" on both instances at the same moment: one start waits for the other, so
    /// only one cashier is open, and that one is paid.
    ClickedTwice,
}

async fn buyer(api: &Api, shops: [&RunningShop; 2], i: usize) -> (String, Story, String) {
    let story =
        [Story::Paid, Story::PaidTwice, Story::Refunded, Story::Abandoned, Story::ClickedTwice][i % 5];
    let (a, b) = (shops[i % 2], shops[(i + 1) % 2]);
    let (s, reg) = api
        .call(
            a,
            reqwest::Method::POST,
            "auth/register",
            None,
            Some(json!({"phone": format!("1390000{i:04}"), "password": "haitao2026"})),
        )
        .await;
    assert_eq!(s, 201, "{reg}");
    let token = reg["access_token"].as_str().unwrap().to_owned();
    api.post(b, "account/real-name", &token, json!({"name": "张伟", "id_number": "110105198803151232"}))
        .await;
    api.post(a, "account/addresses", &token, json!({"recipient": "张伟", "phone": "13900000000", "province": "浙江省", "city": "杭州市", "district": "西湖区", "street": "文三路 100 号"})).await;
    let (_, products) = api
        .call(
            b,
            reqwest::Method::GET,
            "catalog/products?min_price_fen=5000&max_price_fen=30000&per_page=60&sort=price_asc",
            None,
            None,
        )
        .await;
    let in_stock: Vec<&Value> =
        products["items"].as_array().unwrap().iter().filter(|p| p["stock"].as_i64().unwrap() >= 8).collect();
    let product = in_stock[i % 8]["id"].as_str().unwrap().to_owned();
    let (s, v) = api
        .call(
            a,
            reqwest::Method::PUT,
            &format!("cart/items/{product}"),
            Some(&token),
            Some(json!({"quantity": 1 + i % 2})),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    let (_, addresses) = api.call(a, reqwest::Method::GET, "account/addresses", Some(&token), None).await;
    let r = api
        .http
        .post(format!("{}api/v1/orders", own(b)))
        .bearer_auth(&token)
        .header("Idempotency-Key", format!("order-key-{i:04}"))
        .json(&json!({"address_id": addresses[0]["id"]}))
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let order: Value = r.json().await.unwrap();
    assert_eq!(status, 201, "{order}");
    let oid = order["id"].as_str().unwrap().to_owned();
    let start = |shop: &RunningShop| {
        let (token, oid) = (token.clone(), oid.clone());
        let shop_url = own(shop);
        async move {
            let r = api
                .http
                .post(format!("{shop_url}api/v1/orders/{oid}/payments"))
                .bearer_auth(&token)
                .json(&json!({"method": {"kind": "balance"}, "mode": "in_app", "return_url": RETURN}))
                .send()
                .await
                .unwrap();
            let s = r.status().as_u16();
            let v: Value = r.json().await.unwrap();
            assert_eq!(s, 200, "{v}");
            v
        }
    };
    let confirm = |shop: &RunningShop, attempt: &Value, answer: &PayAnswer| {
        let q = answer
            .paid()
            .and_then(|p| p.return_url.as_deref())
            .and_then(|u| u.split_once('?'))
            .map(|(_, q)| q.to_owned());
        let path = format!("payments/{}/confirm", attempt["id"].as_str().unwrap());
        let shop_url = own(shop);
        let token = token.clone();
        async move {
            let r = api
                .http
                .post(format!("{shop_url}api/v1/{path}"))
                .bearer_auth(&token)
                .json(&json!({"return_query": q}))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status().as_u16(), 200);
        }
    };
    match story {
        Story::Paid | Story::Refunded => {
            let attempt = start(b).await;
            let answer = api.pay(&attempt).await;
            confirm(a, &attempt, &answer).await;
            if story == Story::Refunded {
                api.post(b, &format!("orders/{oid}/refunds"), &token, json!({"reason": "不想要了"})).await;
            }
        }
        Story::PaidTwice => {
            let first = start(a).await;
            api.sandbox_post(
                path::SCENARIOS,
                &ForceRequest::order(first["out_trade_no"].as_str().unwrap(), Outcome::NotifyDrop),
            )
            .await;
            let second = start(b).await;
            let answer = api.pay(&second).await;
            confirm(a, &second, &answer).await;
            // The replaced cashier, still open in another window, takes the money again.
            api.pay(&first).await;
        }
        Story::Abandoned => {
            start(b).await;
        }
        Story::ClickedTwice => {
            let (x, y) = tokio::join!(start(a), start(b));
            let store = a.shop.store.clone();
            let order_id = oid.clone();
            let attempts =
                tokio::task::spawn_blocking(move || store.attempts_of(&order_id).unwrap()).await.unwrap();
            let open: Vec<_> = attempts.iter().filter(|t| !t.status.is_final()).collect();
            assert_eq!(open.len(), 1, "one cashier open after two starts at once: {attempts:?}");
            let live = if x["id"].as_str() == Some(open[0].id.as_str()) { x } else { y };
            let answer = api.pay(&live).await;
            confirm(a, &live, &answer).await;
        }
    }
    (token, story, oid)
}

async fn shop(
    sandbox: &url::Url,
    pg: haitao_shop::PostgresSettings,
    clock: &ManualClock,
    ids: &Arc<SequentialIds>,
    public: &url::Url,
) -> RunningShop {
    let mut cfg = ShopConfig::local(None, "127.0.0.1:0".parse().unwrap(), sandbox.clone());
    cfg.database = Some(pg);
    // Alipay reaches the shop at its public address: the forwarder below.
    cfg.public_url = Some(public.clone());
    cfg.clock = Arc::new(clock.clone());
    cfg.ids = ids.clone();
    cfg.test_controls = true;
    // Both run their jobs all along, as deployed instances do.
    cfg.job_interval = std::time::Duration::from_millis(150);
    haitao_shop::start(cfg).await.unwrap()
}

/// What stands at the shop's public address for Alipay's notifications: each one it receives is
/// delivered to both instances at the same moment (a load balancer retrying on a slow answer, or
/// Alipay's retry crossing the first delivery), and the first instance's answer goes back.
struct Forwarder {
    instances: std::sync::OnceLock<Vec<url::Url>>,
    http: reqwest::Client,
    delivered: std::sync::atomic::AtomicUsize,
}

async fn forward(
    axum::extract::State(f): axum::extract::State<Arc<Forwarder>>,
    headers: axum::http::HeaderMap,
    body: axum::body::Bytes,
) -> (axum::http::StatusCode, String) {
    let send = |base: &url::Url| {
        let mut rb = f.http.post(format!("{base}api/v1/alipay/notify")).body(body.clone());
        if let Some(ct) = headers.get("content-type") {
            rb = rb.header("content-type", ct);
        }
        async move {
            let r = rb.send().await.unwrap();
            (r.status().as_u16(), r.text().await.unwrap())
        }
    };
    let instances = f.instances.get().expect("both instances started");
    let (first, second) = tokio::join!(send(&instances[0]), send(&instances[1]));
    f.delivered.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    // Both take a verified notification the same way, whichever applied it.
    assert_eq!(first, second, "the two instances answered one notification differently");
    (axum::http::StatusCode::from_u16(first.0).unwrap(), first.1)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "needs PostgreSQL: scripts/with-postgres cargo test -p haitao-shop --test instances -- --ignored"]
async fn two_instances_on_one_database_keep_or_refund_each_payment_once() {
    let _ = tracing_subscriber::fmt().with_env_filter("haitao_shop=warn").with_test_writer().try_init();
    let admin = std::env::var("HAITAO_TEST_DATABASE")
        .expect("run beside PostgreSQL: scripts/with-postgres cargo test -p haitao-shop --test instances -- --ignored");
    let pg = common::new_database(admin).await;
    let mut sc = haitao_alipay_sandbox::Config::new(None, "127.0.0.1:0".parse().unwrap());
    let sandbox_clock = ManualClock::new(haitao_alipay::time::SystemClock.now());
    sc.clock = Some(Arc::new(sandbox_clock.clone()));
    let sandbox = haitao_alipay_sandbox::start(sc).await.unwrap();
    let clock = ManualClock::new(haitao_alipay::time::SystemClock.now());
    // One id sequence, as instances with random ids never collide.
    let ids = Arc::new(SequentialIds::default());
    let forwarder = Arc::new(Forwarder {
        instances: std::sync::OnceLock::new(),
        http: reqwest::Client::new(),
        delivered: std::sync::atomic::AtomicUsize::new(0),
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let public: url::Url = format!("http://{}/", listener.local_addr().unwrap()).parse().unwrap();
    let routes = axum::Router::new()
        .route("/api/v1/alipay/notify", axum::routing::post(forward))
        .with_state(forwarder.clone());
    tokio::spawn(async move { axum::serve(listener, routes).await });
    let a = shop(sandbox.base_url(), pg.clone(), &clock, &ids, &public).await;
    let b = shop(sandbox.base_url(), pg, &clock, &ids, &public).await;
    forwarder.instances.set(vec![own(&a), own(&b)]).unwrap();
    let store: Arc<dyn Store> = a.shop.store.clone();
    let api = Arc::new(Api { http: reqwest::Client::new(), sandbox: sandbox.base_url().to_string() });
    let stock_before = stock(&store).await;

    // Every buyer at once.
    let shops = Arc::new([a, b]);
    let mut tasks = Vec::new();
    for i in 0..BUYERS {
        let (api, shops) = (api.clone(), shops.clone());
        tasks.push(tokio::spawn(async move { buyer(&api, [&shops[0], &shops[1]], i).await }));
    }
    let mut done = Vec::new();
    for t in tasks {
        done.push(t.await.unwrap());
    }

    // Time passes: unpaid orders close, stale cashiers are looked at again, refunds go through,
    // parcels are declared and delivered. Both instances' jobs run, and both are also made to run
    // a pass at the same moment, again and again.
    for _ in 0..12 {
        clock.advance(chrono::Duration::minutes(40));
        sandbox_clock.advance(chrono::Duration::minutes(40));
        let (x, y) = (shops[0].shop.clone(), shops[1].shop.clone());
        tokio::join!(haitao_shop::jobs::run_once(&x), haitao_shop::jobs::run_once(&y));
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }

    // The audit.
    let ids_of: Vec<(Story, String)> = done.iter().map(|(_, s, o)| (*s, o.clone())).collect();
    let s = store.clone();
    let books = tokio::task::spawn_blocking(move || {
        ids_of
            .into_iter()
            .map(|(story, oid)| {
                let core = s.order_core(&oid).unwrap().unwrap();
                let order = s.order(None, &oid).unwrap().unwrap();
                (story, core, order, s.attempts_of(&oid).unwrap(), s.refunds_of(&oid).unwrap())
            })
            .collect::<Vec<_>>()
    })
    .await
    .unwrap();
    let mut sold: HashMap<String, i64> = HashMap::new();
    for (story, core, order, attempts, refunds) in &books {
        let total = core.total.minor();
        let paid: Vec<_> = attempts.iter().filter(|a| a.status == AttemptStatus::Paid).collect();
        match story {
            Story::Abandoned => {
                assert_eq!(core.status, OrderStatus::Closed, "{order:?}");
                assert!(paid.is_empty() && refunds.is_empty(), "{attempts:?} {refunds:?}");
            }
            Story::Paid | Story::ClickedTwice => {
                assert!(core.status.is_paid() || core.status == OrderStatus::Delivered, "{:?}", core.status);
                assert_eq!((paid.len(), refunds.len()), (1, 0), "{attempts:?} {refunds:?}");
            }
            Story::Refunded => {
                assert_eq!(
                    (core.status, core.refunded.minor()),
                    (OrderStatus::Refunded, total),
                    "{refunds:?}"
                );
                assert_eq!(paid.len(), 1);
            }
            Story::PaidTwice => {
                assert_eq!(paid.len(), 2, "{attempts:?}");
                let kept = core.paid_attempt_id.clone().unwrap();
                let live: Vec<_> = refunds.iter().filter(|r| r.status != RefundStatus::Failed).collect();
                assert_eq!(live.len(), 1, "one refund of the duplicate: {refunds:?}");
                assert_ne!(live[0].attempt_id, kept);
                assert_eq!(
                    (live[0].status, live[0].amount.minor()),
                    (RefundStatus::Succeeded, total),
                    "{refunds:?}"
                );
            }
        }
        // Each payment, as the gateway has it: what the books kept of it, no more, no less.
        for a in attempts {
            let trade: Option<TradeView> = api.sandbox_get(&path::trade(&a.out_trade_no)).await;
            let net = trade.map_or(0, |t| t.merchant_net_fen);
            let refunded: i64 = refunds
                .iter()
                .filter(|r| r.attempt_id == a.id && r.status == RefundStatus::Succeeded)
                .map(|r| r.amount.minor())
                .sum();
            let expected = if a.status == AttemptStatus::Paid { a.amount.minor() - refunded } else { 0 };
            assert_eq!(net, expected, "{story:?} {a:?} {refunds:?}");
        }
        let paid_events = order.tracking.iter().filter(|e| e.stage == TrackingStage::Paid).count();
        assert_eq!(paid_events, usize::from(core.paid_at.is_some()), "{story:?}: {:?}", order.tracking);
        if core.paid_at.is_some() {
            for line in &order.lines {
                *sold.entry(line.product_id.clone()).or_default() += line.pricing.quantity;
            }
        }
    }
    // Every payment's notification came through the forwarder, to both instances at once.
    let paid =
        books.iter().map(|b| b.3.iter().filter(|a| a.status == AttemptStatus::Paid).count()).sum::<usize>();
    let delivered = forwarder.delivered.load(std::sync::atomic::Ordering::SeqCst);
    assert!(
        delivered >= paid - books.iter().filter(|b| b.0 == Story::PaidTwice).count(),
        "{delivered} of {paid}"
    );
    // Stock: sold once per paid order, nothing left reserved.
    for (id, (after, reserved)) in stock(&store).await {
        let (before, _) = stock_before[&id];
        assert_eq!((before - after, reserved), (sold.get(&id).copied().unwrap_or(0), 0), "{id}");
    }
    let check: LedgerCheck = api.sandbox_get(path::LEDGER_CHECK).await.unwrap();
    assert!(check.conserved, "{check:?}");
    for shop in Arc::try_unwrap(shops).ok().unwrap() {
        shop.stop().await;
    }
}

/// Every product's (stock, reserved).
async fn stock(store: &Arc<dyn Store>) -> HashMap<String, (i64, i64)> {
    let s = store.clone();
    tokio::task::spawn_blocking(move || {
        let mut out = HashMap::new();
        for page in 1.. {
            let q = haitao_shop_api::catalog::ProductQuery {
                page: Some(page),
                per_page: Some(200),
                ..Default::default()
            };
            let items = s.search(&q).unwrap().items;
            if items.is_empty() {
                return out;
            }
            for p in items {
                let row = s.product(&p.id).unwrap().unwrap();
                out.insert(p.id, (row.stock, row.reserved));
            }
        }
        out
    })
    .await
    .unwrap()
}

/// Two instances behind one proxy share each client's count through the database: of twelve
/// wrong sign-ins from one client at once, sent alternately to either instance, exactly three are
/// answered, and of six registrations at once exactly two make an account.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "needs PostgreSQL: scripts/with-postgres cargo test -p haitao-shop --test instances -- --ignored"]
async fn a_per_address_limit_holds_across_two_instances() {
    let admin = std::env::var("HAITAO_TEST_DATABASE")
        .expect("run beside PostgreSQL: scripts/with-postgres cargo test -p haitao-shop --test instances -- --ignored");
    let pg = common::new_database(admin).await;
    let sandbox = haitao_alipay_sandbox::start(haitao_alipay_sandbox::Config::new(
        None,
        "127.0.0.1:0".parse().unwrap(),
    ))
    .await
    .unwrap();
    let limited = || {
        let mut cfg = ShopConfig::local(None, "127.0.0.1:0".parse().unwrap(), sandbox.base_url().clone());
        cfg.database = Some(pg.clone());
        cfg.address_limits = Some(haitao_shop::limits::AddressLimits {
            login_failures: 3,
            registrations: 2,
            window_minutes: 60,
            trusted_proxies: vec!["127.0.0.1".parse().unwrap()],
        });
        haitao_shop::start(cfg)
    };
    let shops = Arc::new([limited().await.unwrap(), limited().await.unwrap()]);
    let http = reqwest::Client::new();
    // `n` requests at once from `client`, for numbers from `first` on; their statuses, sorted.
    let burst = |what: &'static str, n: usize, first: usize, client: &'static str, password: &'static str| {
        let tasks: Vec<_> = (0..n)
            .map(|i| {
                let (shops, http) = (shops.clone(), http.clone());
                tokio::spawn(async move {
                    http.post(format!("{}api/v1/auth/{what}", own(&shops[i % 2])))
                        .header("x-forwarded-for", client)
                        .json(&json!({"phone": format!("1390000{:04}", first + i), "password": password}))
                        .send()
                        .await
                        .unwrap()
                        .status()
                        .as_u16()
                })
            })
            .collect();
        async move {
            let mut statuses = Vec::new();
            for t in tasks {
                statuses.push(t.await.unwrap());
            }
            statuses.sort_unstable();
            statuses
        }
    };
    assert_eq!(
        burst("login", 12, 100, "203.0.113.40", "guess12345").await,
        [401, 401, 401, 429, 429, 429, 429, 429, 429, 429, 429, 429]
    );
    assert_eq!(burst("register", 6, 200, "203.0.113.41", "haitao2026").await, [201, 201, 429, 429, 429, 429]);
    // Another client is counted on its own, on either instance.
    assert_eq!(burst("register", 2, 300, "203.0.113.42", "haitao2026").await, [201, 201]);
}
