//! `make soak`: a bounded chaos soak of the whole checkout, on loopback only.
//!
//! Concurrent simulated shoppers buy through `haitao_client::Client` (the desktop app's core) from
//! a real shop and a real Alipay sandbox, while faults are injected from three sides:
//! - the network between client and shop, by a fault proxy: refused requests, answers lost after
//!   the shop did the work, 502s, slow answers;
//! - the sandbox's tester controls, per trade: declines, short balance, SMS, result unknown (20000),
//!   gateway 502s, slow and dropped API answers, lost returns, late / duplicated / reordered /
//!   forged / wrong-amount / dropped notifications;
//! - the processes: the app killed and restarted mid-payment (a new `Client` on the same cache and
//!   keyring), the shop stopped and restarted on its data, the sandbox clock moved on.
//!
//! Shoppers also tamper with returns, close the payment window, click twice, pick another method
//! after a decline and ask for refunds. Afterwards the faults stop, clocks move past every retry and
//! deadline, every client reconciles, and an auditor checks: every order is paid exactly once or not
//! at all (by the sandbox's own books), the sandbox ledger conserves money, shop orders and every
//! client cache agree, the annual quota has not drifted, nothing is left awaiting a result, and no
//! token or key reached a log, database or file. It prints the totals and exits non-zero on any
//! mismatch.
//!
//! ```text
//! cargo run -p haitao-client --example soak -- --shoppers 24 --checkouts 1500 --seed 7
//! ```
// A harness: a broken harness stops loudly. Floats only for the seconds and rates it prints.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stdout,
    clippy::print_stderr,
    clippy::float_arithmetic,
    clippy::cast_precision_loss
)]

#[path = "../tests/common/mod.rs"]
mod common;

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use haitao_client::secrets::SecretError;
use haitao_client::{Cache, Client, ClientError, LocalStatus, MemoryStore, SecretStore, ShopApi};
use haitao_sandbox_api::{
    AccountKind, AdvanceClock, ApiError, Bilingual, ForceRequest, LedgerCheck, Outcome, PayAnswer, PayError,
    PayRequest, PayWith, PersonaSpec, SourceSpec, TradeView, path,
};
use haitao_shop_api::catalog::ProductQuery;
use haitao_shop_api::error::ErrorCode;
use haitao_shop_api::orders::{AttemptStatus, OrderStatus, PayMode, PaymentMethod, RequestRefund};
use haitao_shop_api::secret::SecretString;
use parking_lot::Mutex;
use serde_json::{Value, json};
use url::Url;

// ---------------------------------------------------------------------------------------------
// Settings, randomness, tallies

struct Args {
    shoppers: usize,
    checkouts: usize,
    seed: u64,
    /// Percent of client→shop requests the proxy interferes with.
    net_faults: u32,
    /// Seconds between shop restarts (0: never).
    restart_every: u64,
    /// No faults at all: a load run of ordinary shoppers (`--calm`).
    calm: bool,
    keep: Option<PathBuf>,
    /// A PostgreSQL server (a user who may create databases): the shop runs on a fresh database
    /// there instead of SQLite.
    postgres: Option<String>,
    /// Shop instances on that one database, the proxy spreading requests over them.
    instances: usize,
    /// Connections each instance keeps to PostgreSQL at most.
    connections: u32,
}

fn args() -> Args {
    let mut a = Args {
        shoppers: 16,
        checkouts: 600,
        seed: 1,
        net_faults: 8,
        restart_every: 15,
        calm: false,
        keep: None,
        postgres: None,
        instances: 1,
        connections: haitao_shop::PostgresSettings::new("").max_connections,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().unwrap_or_else(|| panic!("{flag} needs a value"));
        match flag.as_str() {
            "--shoppers" => a.shoppers = value().parse().expect("--shoppers N"),
            "--checkouts" => a.checkouts = value().parse().expect("--checkouts N"),
            "--seed" => a.seed = value().parse().expect("--seed N"),
            "--net-faults" => a.net_faults = value().parse().expect("--net-faults PERCENT"),
            "--restart-every" => a.restart_every = value().parse().expect("--restart-every SECONDS"),
            "--keep" => a.keep = Some(PathBuf::from(value())),
            "--postgres" => a.postgres = Some(value()),
            "--instances" => a.instances = value().parse().expect("--instances N"),
            "--connections" => a.connections = value().parse().expect("--connections N"),
            "--calm" => {
                a.calm = true;
                a.net_faults = 0;
                a.restart_every = 0;
            }
            other => panic!(
                "unknown argument {other}; use --shoppers N --checkouts N --seed N --net-faults PCT --restart-every S --calm --keep DIR --postgres URL --instances N --connections N"
            ),
        }
    }
    assert!(a.shoppers >= 1 && a.shoppers <= 800, "--shoppers 1..=800 (one identity and persona each)");
    assert!(a.instances >= 1 && (a.instances == 1 || a.postgres.is_some()), "--instances N needs --postgres");
    a
}

/// SplitMix64: small, seedable, good enough to pick faults reproducibly.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
    fn pick<'a, T>(&mut self, xs: &'a [T]) -> &'a T {
        let i = usize::try_from(self.below(u64::try_from(xs.len()).unwrap_or(u64::MAX))).unwrap_or(0);
        &xs[i]
    }
}

#[derive(Default)]
struct Tally(Mutex<BTreeMap<String, u64>>);

impl Tally {
    fn bump(&self, key: impl Into<String>) {
        *self.0.lock().entry(key.into()).or_default() += 1;
    }
    fn get(&self, key: &str) -> u64 {
        self.0.lock().get(key).copied().unwrap_or(0)
    }
}

// ---------------------------------------------------------------------------------------------
// The fault proxy between the clients and the shop

struct Proxy {
    /// The shop instances, taken in turn.
    upstreams: Vec<Url>,
    next: AtomicUsize,
    http: reqwest::Client,
    percent: AtomicU32,
    rng: Mutex<Rng>,
    tally: Arc<Tally>,
    /// How long the shop took to answer each request passed through untouched, in microseconds,
    /// by route (`POST orders/{id}/payments`).
    latencies: Mutex<BTreeMap<String, Vec<u64>>>,
    /// Every access token a client sent (`Authorization: Bearer …`): the clients hold them in
    /// memory only, so the proxy is where the disk search learns them.
    bearer: Mutex<std::collections::BTreeSet<String>>,
}

/// A response body that fails at once: the connection is cut before the answer arrives.
struct Cut;

impl axum::body::HttpBody for Cut {
    type Data = Bytes;
    type Error = std::io::Error;
    fn poll_frame(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Bytes>, std::io::Error>>> {
        std::task::Poll::Ready(Some(Err(std::io::Error::other("connection cut by the soak proxy"))))
    }
}

fn cut() -> Response {
    let mut r = Response::new(Body::new(Cut));
    r.headers_mut().insert("content-length", "64".parse().unwrap());
    r
}

async fn forward(p: &Proxy, req: Request) -> Result<Response, ()> {
    let (parts, body) = req.into_parts();
    let body = axum::body::to_bytes(body, 1 << 20).await.map_err(|_| ())?;
    let path = parts.uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
    let upstream = &p.upstreams[p.next.fetch_add(1, Ordering::Relaxed) % p.upstreams.len()];
    let url = upstream.join(path.trim_start_matches('/')).map_err(|_| ())?;
    let mut headers = HeaderMap::new();
    for (k, v) in &parts.headers {
        if k != "host" && k != "content-length" && k != "connection" {
            headers.insert(k.clone(), v.clone());
        }
    }
    let resp = p.http.request(parts.method, url).headers(headers).body(body).send().await.map_err(|_| ())?;
    let status = resp.status();
    let mut out_headers = HeaderMap::new();
    for (k, v) in resp.headers() {
        if k != "content-length" && k != "transfer-encoding" && k != "connection" {
            out_headers.insert(k.clone(), v.clone());
        }
    }
    let bytes = resp.bytes().await.map_err(|_| ())?;
    let mut r = Response::new(Body::from(bytes));
    *r.status_mut() = status;
    *r.headers_mut() = out_headers;
    Ok(r)
}

/// `GET /api/v1/orders/HO2026…/quotes` → `GET orders/{id}/quotes`.
fn route_of(method: &axum::http::Method, path: &str) -> String {
    let parts: Vec<&str> = path
        .trim_start_matches("/api/v1/")
        .split('/')
        .map(|seg| if seg.chars().any(|c| c.is_ascii_digit()) { "{id}" } else { seg })
        .collect();
    format!("{method} {}", parts.join("/"))
}

async fn proxy_handler(State(p): State<Arc<Proxy>>, req: Request) -> Response {
    if let Some(token) = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
    {
        p.bearer.lock().insert(token.to_owned());
    }
    let percent = u64::from(p.percent.load(Ordering::Relaxed));
    let fault = {
        let mut rng = p.rng.lock();
        if rng.chance(percent) { Some(rng.below(4)) } else { None }
    };
    match fault {
        Some(0) => {
            p.tally.bump("net: request refused");
            cut()
        }
        Some(1) => {
            p.tally.bump("net: 502 from a middlebox");
            (StatusCode::BAD_GATEWAY, "bad gateway").into_response()
        }
        Some(2) => {
            // The shop does the work; its answer never arrives.
            p.tally.bump("net: answer lost after the work");
            let _ = forward(&p, req).await;
            cut()
        }
        Some(_) => {
            p.tally.bump("net: slow answer");
            let ms = 300 + p.rng.lock().below(1200);
            tokio::time::sleep(Duration::from_millis(ms)).await;
            forward(&p, req).await.unwrap_or_else(|()| cut())
        }
        None => {
            let began = Instant::now();
            let route = route_of(req.method(), req.uri().path());
            match forward(&p, req).await {
                Ok(r) => {
                    let us = u64::try_from(began.elapsed().as_micros()).unwrap_or(u64::MAX);
                    p.latencies.lock().entry(route).or_default().push(us);
                    r
                }
                Err(()) => {
                    // The shop is down (restarting): the client sees a failed connection.
                    p.tally.bump("net: shop unreachable (restart)");
                    cut()
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// A keyring that remembers every secret it was given, so the audit can look for them on disk

#[derive(Debug, Clone, Default)]
struct RecordingStore {
    inner: MemoryStore,
    seen: Arc<Mutex<Vec<String>>>,
}

impl SecretStore for RecordingStore {
    fn get(&self, key: &str) -> Result<Option<SecretString>, SecretError> {
        self.inner.get(key)
    }
    fn set(&self, key: &str, value: &SecretString) -> Result<(), SecretError> {
        self.seen.lock().push(value.expose().to_owned());
        self.inner.set(key, value)
    }
    fn delete(&self, key: &str) -> Result<(), SecretError> {
        self.inner.delete(key)
    }
    fn kind(&self) -> &'static str {
        "memory (soak)"
    }
}

// ---------------------------------------------------------------------------------------------
// The world

struct World {
    dir: PathBuf,
    sandbox: haitao_alipay_sandbox::Running,
    shop: tokio::sync::Mutex<Option<haitao_shop::RunningShop>>,
    shop_addr: SocketAddr,
    /// Instances beside the first, on the same database (never restarted).
    others: tokio::sync::Mutex<Vec<haitao_shop::RunningShop>>,
    /// The shop's PostgreSQL database, when it runs on one, and each instance's connections.
    database: Option<(String, u32)>,
    proxy_url: Url,
    proxy: Arc<Proxy>,
    http: reqwest::Client,
    tally: Arc<Tally>,
    stop_chaos: AtomicBool,
    calm: bool,
}

impl World {
    fn shop_config(&self) -> haitao_shop::ShopConfig {
        shop_config(&self.dir, self.shop_addr, self.sandbox.base_url().clone(), self.database.clone())
    }

    async fn restart_shop(&self) {
        let mut slot = self.shop.lock().await;
        if let Some(running) = slot.take() {
            running.stop().await;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
        for attempt in 0.. {
            match haitao_shop::start(self.shop_config()).await {
                Ok(r) => {
                    *slot = Some(r);
                    break;
                }
                Err(e) if attempt < 50 => {
                    eprintln!("soak: shop restart failed ({e}); retrying");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                Err(e) => panic!("the shop does not come back: {e}"),
            }
        }
        self.tally.bump("process: shop restarted");
    }

    /// A tester-API call: the status and the raw answer (decoded by the caller, which knows what
    /// the status means).
    async fn sandbox_post(&self, path: &str, body: &impl serde::Serialize) -> (u16, Value) {
        let r = self.http.post(self.sandbox.base_url().join(path).unwrap()).json(body).send().await.unwrap();
        (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
    }

    /// A tester-API answer; `None` when the sandbox answers with an error.
    async fn sandbox_get<T: serde::de::DeserializeOwned>(&self, path: &str) -> Option<T> {
        let r = self.http.get(self.sandbox.base_url().join(path).unwrap()).send().await.unwrap();
        if !r.status().is_success() {
            return None;
        }
        r.json().await.ok()
    }

    /// The shop's own API, bypassing the fault proxy (test controls), on every instance (each
    /// keeps its own clock); the first instance's answer.
    async fn shop_post(&self, path: &str, body: Value) -> u16 {
        let others: Vec<SocketAddr> = self.others.lock().await.iter().map(|s| s.addr).collect();
        let mut first = 0;
        for (i, addr) in std::iter::once(self.shop_addr).chain(others).enumerate() {
            let url = format!("http://{addr}/api/v1/{path}");
            let status =
                self.http.post(url).json(&body).send().await.map(|r| r.status().as_u16()).unwrap_or(0);
            if i == 0 {
                first = status;
            }
        }
        first
    }
}

fn shop_config(
    dir: &Path,
    addr: SocketAddr,
    sandbox: Url,
    database: Option<(String, u32)>,
) -> haitao_shop::ShopConfig {
    let mut cfg = haitao_shop::ShopConfig::local(Some(dir.join("shop")), addr, sandbox);
    cfg.database =
        database.map(|(url, max_connections)| haitao_shop::PostgresSettings { url, max_connections });
    cfg.job_interval = Duration::from_millis(500);
    // The soak moves the shop's clock (order timeouts, lockouts) through the test endpoints.
    cfg.test_controls = true;
    cfg
}

// ---------------------------------------------------------------------------------------------
// Shoppers

const SURNAMES: [&str; 10] = ["王", "李", "张", "刘", "陈", "杨", "黄", "赵", "吴", "周"];
const GIVEN: [&str; 10] = ["芳", "伟", "娜", "敏", "静", "磊", "洋", "艳", "勇", "军"];

struct Shopper {
    n: usize,
    phone: String,
    persona: String,
    cache_path: PathBuf,
    secrets: RecordingStore,
    client: Client,
    address_id: String,
    rng: Rng,
}

fn transient(e: &ClientError) -> bool {
    match e {
        ClientError::Offline(_) | ClientError::BadResponse(_) => true,
        ClientError::Shop(p) => p.status >= 500,
        _ => false,
    }
}

/// Retries what a person would click again: while the shop is unreachable or answers 5xx.
macro_rules! again {
    ($w:expr, $e:expr) => {{
        let mut n = 0u64;
        loop {
            match $e {
                Err(e) if transient(&e) && n < 40 => {
                    n += 1;
                    $w.tally.bump("client: retried after a network or 5xx failure");
                    tokio::time::sleep(Duration::from_millis(50 * n.min(10))).await;
                }
                other => break other,
            }
        }
    }};
}

fn new_client(w: &World, cache_path: &Path, secrets: &RecordingStore) -> Client {
    let api = ShopApi::new(w.proxy_url.clone()).unwrap();
    Client::new(api, Cache::open(cache_path).unwrap(), Arc::new(secrets.clone()))
}

async fn sign_up(w: &World, n: usize, seed: u64) -> Shopper {
    let name = format!("{}{}", SURNAMES[n % 10], GIVEN[(n / 10) % 10]);
    let id_number = common::resident_id(n);
    let phone = format!("139{:08}", 10_000 + n);
    let persona = format!("soak{n}@sandbox.haitao");
    let card = |kind, label: (&str, &str), balance, credit_limit, brand: &str, last4: &str| SourceSpec {
        kind,
        label: Bilingual::new(label.0, label.1),
        balance,
        credit_limit,
        card_brand: Some(brand.into()),
        card_last4: Some(last4.into()),
    };
    let spec = PersonaSpec::new(&persona, &name, &id_number, &phone)
        .source(SourceSpec::balance(5_000_000))
        .source(SourceSpec {
            kind: AccountKind::Huabei,
            label: Bilingual::new("花呗", "Huabei"),
            credit_limit: 5_000_000,
            ..SourceSpec::balance(0)
        })
        .source(card(AccountKind::DebitCard, ("储蓄卡", "Debit card"), 5_000_000, 0, "ICBC", "1234"))
        .source(card(AccountKind::InternationalCard, ("Visa", "Visa"), 0, 5_000_000, "VISA", "4242"));
    let (s, v) = w.sandbox_post(path::PERSONAS, &spec).await;
    assert_eq!(s, 200, "persona: {v}");
    let secrets = RecordingStore::default();
    let cache_path = w.dir.join(format!("client-{n}")).join("cache.sqlite3");
    std::fs::create_dir_all(cache_path.parent().unwrap()).unwrap();
    let client = new_client(w, &cache_path, &secrets);
    // An answer lost after the shop did the work leaves the account made, or the name verified:
    // then the shopper signs in, or finds it verified, as a person would.
    match again!(w, client.register(&phone, "soak2026pw", true).await) {
        Ok(_) => {}
        Err(ClientError::Shop(p)) if p.code == ErrorCode::AlreadyRegistered => {
            w.tally.bump("client: registered already (answer lost), signed in");
            again!(w, client.sign_in(&phone, "soak2026pw", true).await).unwrap();
        }
        Err(e) => panic!("register: {e}"),
    }
    if let Err(e) = again!(w, client.verify_real_name(&name, &id_number).await) {
        let account = again!(w, client.account().await).unwrap();
        assert!(account.real_name.is_some(), "real-name verification: {e}");
        w.tally.bump("client: verified already (answer lost)");
    }
    let address = common::hangzhou_address(&name, &phone, n);
    let address_id = again!(w, client.save_address(None, &address).await).unwrap().id;
    Shopper {
        n,
        phone,
        persona,
        cache_path,
        secrets,
        client,
        address_id,
        rng: Rng(seed ^ (n as u64).wrapping_mul(0x2545_F491_4F6C_DD1D)),
    }
}

/// The outcomes the soak forces: every one but the password lock, which would lock the shared demo
/// buyer for hours.
fn soak_outcomes() -> Vec<Outcome> {
    Outcome::ALL.into_iter().filter(|o| *o != Outcome::WrongPasswordLock).collect()
}

fn channel(m: PaymentMethod) -> (PayWith, Option<u32>) {
    match m {
        PaymentMethod::Balance => (PayWith::Balance, None),
        PaymentMethod::BankCard => (PayWith::DebitCard, None),
        PaymentMethod::Huabei => (PayWith::Huabei, None),
        PaymentMethod::HuabeiInstallments { periods } => (PayWith::Huabei, Some(periods)),
        PaymentMethod::InternationalCard => (PayWith::InternationalCard, None),
    }
}

/// What `POST /sandbox/api/pay` answered: a payment or a refusal, or an error before either (an
/// order the sandbox no longer lets anyone pay, say).
#[derive(Debug)]
enum PayReply {
    Answer(PayAnswer),
    Error(ApiError),
    /// Neither (logged as it came).
    Other,
}

impl PayReply {
    fn of((_, v): (u16, Value)) -> Self {
        match serde_json::from_value::<PayAnswer>(v.clone()) {
            Ok(a) => PayReply::Answer(a),
            Err(_) => serde_json::from_value(v.clone()).map_or_else(
                |_| {
                    tracing::warn!(answer = %v, "soak: the sandbox's pay answer does not decode");
                    PayReply::Other
                },
                PayReply::Error,
            ),
        }
    }

    fn refused(&self) -> Option<&PayError> {
        match self {
            PayReply::Answer(a) => a.refused(),
            _ => None,
        }
    }

    /// Why nothing was paid: the refusal's or the error's code, `?` when neither.
    fn why(&self) -> String {
        match self {
            PayReply::Answer(a) => a.refused().map_or("?", PayError::code).to_owned(),
            PayReply::Error(e) => e.error.clone(),
            PayReply::Other => "?".to_owned(),
        }
    }
}

const METHODS: [PaymentMethod; 7] = [
    PaymentMethod::Balance,
    PaymentMethod::BankCard,
    PaymentMethod::Huabei,
    PaymentMethod::HuabeiInstallments { periods: 3 },
    PaymentMethod::HuabeiInstallments { periods: 6 },
    PaymentMethod::HuabeiInstallments { periods: 12 },
    PaymentMethod::InternationalCard,
];

/// After the app restarted: a signed-out shopper signs in again, as a person would.
async fn ensure_signed_in(w: &World, s: &Shopper) {
    let state = s.client.restore().await;
    if !state.signed_in {
        w.tally.bump("client: signed in again after the session ended");
        again!(w, s.client.sign_in(&s.phone, "soak2026pw", true).await).unwrap();
    }
}

/// One checkout with whatever chaos the dice pick. Returns false when the shopper cannot go on
/// (stock or quota exhausted).
async fn checkout(w: &World, s: &mut Shopper, products: &[(String, i64)]) -> bool {
    // Cart: one item, another product if that one is gone.
    let mut carted = false;
    for _ in 0..5 {
        let (id, _) = s.rng.pick(products).clone();
        let _ = again!(w, s.client.clear_cart().await);
        match again!(w, s.client.set_quantity(&id, 1).await) {
            Ok(c) if !c.lines.is_empty() => {
                carted = true;
                break;
            }
            _ => w.tally.bump("shopper: product unavailable, picked another"),
        }
    }
    if !carted {
        return false;
    }
    let order = match again!(w, s.client.place_order(&s.address_id).await) {
        Ok(o) => o,
        Err(ClientError::SessionExpired | ClientError::NotSignedIn) => {
            ensure_signed_in(w, s).await;
            return true;
        }
        Err(e) => {
            w.tally.bump(format!("shopper: order refused ({:?})", e.code()));
            return !matches!(
                e,
                ClientError::Shop(ref p) if matches!(p.code, ErrorCode::AnnualQuotaExceeded | ErrorCode::OutOfStock)
            );
        }
    };
    w.tally.bump("checkouts");
    let ret = again!(w, s.client.payment_config().await).unwrap().return_page;
    let mut method = *s.rng.pick(&METHODS);
    for round in 0..2 {
        let launch = match again!(w, s.client.start_payment(&order.id, method, PayMode::InApp, &ret).await) {
            Ok(l) => l,
            Err(e) => {
                w.tally.bump(format!("shopper: payment not started ({:?})", e.code()));
                return true;
            }
        };
        let out_no = launch.attempt.out_trade_no.clone();
        let chaos = !w.calm;
        if chaos && s.rng.chance(5) {
            // A double click: the attempt under way comes back, never a second one.
            w.tally.bump("shopper: double click on pay");
            if let Ok(l2) = s.client.start_payment(&order.id, method, PayMode::InApp, &ret).await
                && l2.attempt.out_trade_no != out_no
            {
                w.tally.bump("MISMATCH: a double click started a second payment");
            }
        }
        let forced = if chaos && s.rng.chance(45) { Some(*s.rng.pick(&soak_outcomes())) } else { None };
        if let Some(o) = forced {
            let (st, v) = w.sandbox_post(path::SCENARIOS, &ForceRequest::order(&out_no, o)).await;
            assert_eq!(st, 200, "forcing {}: {v}", o.as_str());
            w.tally.bump(format!("sandbox: {}", o.as_str()));
        }
        if chaos && s.rng.chance(8) {
            // The buyer closes the payment window without paying.
            w.tally.bump("shopper: closed the payment window");
            let _ = again!(w, s.client.payment_abandoned(&launch.local_id).await);
            if round == 0 && s.rng.chance(50) {
                method = *s.rng.pick(&METHODS);
                continue;
            }
            if s.rng.chance(50) {
                let _ = again!(w, s.client.cancel_order(&order.id).await);
            }
            return true;
        }
        // The cashier: open it, pay as this shopper's persona.
        let cashier = launch.attempt.cashier_url.clone().unwrap_or_default();
        let _ = w.http.get(&cashier).send().await;
        let (ch, inst) = channel(method);
        let pay = |channel: PayWith| {
            let mut req = PayRequest::new(&out_no, &s.persona, channel);
            req.installments = inst;
            async move { PayReply::of(w.sandbox_post(path::PAY, &req).await) }
        };
        let mut reply = pay(ch).await;
        if matches!(reply.refused(), Some(PayError::Insufficient { .. })) {
            // The cashier offers the other channels.
            w.tally.bump("shopper: short balance, paid by card instead");
            reply = pay(PayWith::DebitCard).await;
        }
        let paid = match &reply {
            PayReply::Answer(PayAnswer::Paid(p)) => Some(p.clone()),
            _ => None,
        };
        let Some(paid) = paid else {
            let why = reply.why();
            let v = &reply;
            w.tally.bump(format!("cashier: not paid ({why})"));
            if why == "?" || why == "not_payable" {
                tracing::warn!(out_trade_no = %out_no, answer = ?v, "soak: the cashier refused to pay");
            }
            let _ = again!(w, s.client.payment_abandoned(&launch.local_id).await);
            if round == 0 && s.rng.chance(60) {
                w.tally.bump("shopper: tried another method");
                method = *s.rng.pick(&METHODS);
                continue;
            }
            return true;
        };
        let return_url = paid.return_url;
        let roll = if chaos { s.rng.below(100) } else { 100 };
        if roll < 10 {
            // The app is killed before the return arrives; a new process starts on the same data.
            w.tally.bump("process: app killed mid-payment");
            s.client = new_client(w, &s.cache_path, &s.secrets);
            ensure_signed_in(w, s).await;
            let _ = again!(w, s.client.reconcile_open().await);
        } else if roll < 16 {
            if let Some(u) = &return_url {
                // A tampered return: a different amount, same signature.
                w.tally.bump("shopper: tampered return");
                let forged = u.replacen("total_amount=", "total_amount=1", 1);
                if let Ok(o) = s.client.payment_returned(&launch.local_id, &forged).await
                    && o.return_verified == Some(true)
                {
                    w.tally.bump("MISMATCH: a tampered return verified");
                }
            }
        } else if roll < 24 || return_url.is_none() {
            w.tally.bump("shopper: return lost");
        } else if let Some(u) = &return_url {
            let _ = again!(w, s.client.payment_returned(&launch.local_id, u).await);
        }
        // Until the client knows: check again with backoff, as the UI's "check again" does.
        for i in 0..12u64 {
            match s.client.check_payment(&launch.local_id).await {
                Ok(o) if o.local.is_final() => break,
                Err(ClientError::SessionExpired | ClientError::NotSignedIn) => ensure_signed_in(w, s).await,
                _ => {}
            }
            tokio::time::sleep(Duration::from_millis(100 * (i + 1))).await;
        }
        break;
    }
    // Sometimes the shopper changes their mind and asks for the money back.
    if !w.calm && s.rng.chance(6) {
        let r = again!(
            w,
            s.client
                .request_refund(&order.id, &RequestRefund { amount: None, reason: "不想要了".into() })
                .await
        );
        w.tally.bump(if r.is_ok() { "shopper: refund requested" } else { "shopper: refund refused" });
    }
    true
}

// ---------------------------------------------------------------------------------------------
// Audit

struct Audit {
    mismatches: Vec<String>,
}

impl Audit {
    fn fail(&mut self, m: String) {
        eprintln!("MISMATCH: {m}");
        self.mismatches.push(m);
    }
}

async fn settle(w: &World, shoppers: &mut [Shopper]) {
    let began = Instant::now();
    w.stop_chaos.store(true, Ordering::SeqCst);
    w.proxy.percent.store(0, Ordering::SeqCst);
    // Alipay's retry ladder spans 25 hours: walk the sandbox clock through it an hour at a time.
    for _ in 0..30 {
        w.sandbox_post(path::CLOCK_ADVANCE, &AdvanceClock { seconds: 3600 }).await;
    }
    tracing::warn!(took = ?began.elapsed(), "soak: settle: notifications delivered");
    // Past every payment deadline and parcel step: the shop closes what was never paid and delivers
    // the rest, a batch per job run, until no order will change again.
    assert_eq!(w.shop_post("test/clock/advance", json!({"seconds": 7200})).await, 200);
    let mut open = -1;
    for _ in 0..600 {
        open = shop_count(
            w,
            "SELECT (SELECT COUNT(*) FROM orders
                     WHERE status IN ('awaiting_payment', 'paid', 'customs_declared', 'cleared', 'shipped'))
                  + (SELECT COUNT(*) FROM payment_attempts WHERE status IN ('started', 'redirected', 'unknown'))",
        );
        if open == 0 {
            break;
        }
        // Parcels declared during settling still have their own way to go: ten more minutes each
        // round (advancing runs the jobs too).
        assert_eq!(w.shop_post("test/clock/advance", json!({"seconds": 600})).await, 200);
    }
    assert_eq!(open, 0, "after settling, orders or attempts are still open in the shop (stuck)");
    tracing::warn!(took = ?began.elapsed(), "soak: settle: every order closed, refunded or delivered");
    for s in shoppers.iter_mut() {
        ensure_signed_in(w, s).await;
        for _ in 0..5 {
            if again!(w, s.client.reconcile_open().await).is_ok()
                && s.client.cache().open_attempts().unwrap().is_empty()
            {
                break;
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        again!(w, s.client.sync_orders().await).unwrap();
    }
    tracing::warn!(took = ?began.elapsed(), "soak: settle: clients reconciled");
}

async fn audit(w: &World, shoppers: &[Shopper]) -> Audit {
    let mut a = Audit { mismatches: Vec::new() };
    let mut attempts_by_order: HashMap<String, Vec<(String, String, i64, String)>> = HashMap::new();
    for (order, out, status, amount, method) in shop_attempts(w) {
        attempts_by_order.entry(order).or_default().push((out, status, amount, method));
    }
    let stuck = shop_count(
        w,
        "SELECT COUNT(*) FROM payment_attempts WHERE status IN ('started', 'redirected', 'unknown')",
    );
    if stuck > 0 {
        a.fail(format!("{stuck} shop payment attempts still open after settling"));
    }
    // The sandbox's books: what the merchant account received, net, for each out_trade_no.
    let books = rusqlite::Connection::open_with_flags(
        w.dir.join("sandbox").join("sandbox.sqlite3"),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .unwrap();
    let nets_by_out: HashMap<String, i64> = books
        .prepare(
            "SELECT t.out_trade_no,
                    COALESCE(SUM(CASE WHEN l.to_acct = 'merchant:' || t.app_id THEN l.amount_fen
                                      WHEN l.from_acct = 'merchant:' || t.app_id THEN -l.amount_fen
                                      ELSE 0 END), 0)
             FROM trades t LEFT JOIN ledger l ON l.trade_no = t.trade_no GROUP BY t.out_trade_no",
        )
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    // Spot-check the query against the sandbox's own API.
    for (out, net) in nets_by_out.iter().take(20) {
        let t: Option<TradeView> = w.sandbox_get(&path::trade(out)).await;
        assert_eq!(t.map(|t| t.merchant_net_fen), Some(*net), "the books query disagrees for {out}");
    }
    let mut paid_orders = 0;
    let mut net_total = 0i64;
    for s in shoppers {
        // The shop's books for this shopper, straight from its database.
        let account_id = again!(w, s.client.account().await).unwrap().id;
        let shop_orders = shop_orders_of(w, &account_id);
        let mut used = 0i64;
        let mut reserved = 0i64;
        for (id, status, total, refunded, dutiable, restored) in &shop_orders {
            let mut nets = Vec::new();
            for (out, a_status, amount, method) in attempts_by_order.get(id).into_iter().flatten() {
                let net = nets_by_out.get(out).copied().unwrap_or(0);
                net_total += net;
                nets.push((out.clone(), a_status.clone(), *amount, method.clone(), net));
            }
            let positive: Vec<_> = nets.iter().filter(|n| n.4 != 0).collect();
            let paid_like = OrderStatus::parse(status).is_some_and(OrderStatus::is_paid);
            if paid_like {
                paid_orders += 1;
                // Only full refunds are asked for, so the quota counts an order whole or not at all.
                used += if *refunded == 0 { *dutiable } else { dutiable - restored };
                match positive.as_slice() {
                    [(out, a_status, amount, method, net)] => {
                        if a_status != "paid" {
                            a.fail(format!("order {id} paid by {out}, which the shop records as {a_status}"));
                        }
                        // Installments whose fee the seller pays leave the merchant that fee less.
                        let seller_ppm = haitao_shop::pricing::PricingConfig::default()
                            .huabei
                            .iter()
                            .find(|t| {
                                *method == format!("huabei_{}", t.periods)
                                    && t.payer == haitao_shop_api::orders::FeePayer::Seller
                            })
                            .map(|t| t.fee_ppm);
                        let ok = match seller_ppm {
                            None => net == amount,
                            Some(ppm) => {
                                let fee = amount * ppm / 1_000_000;
                                (amount - fee - 1..=amount - fee + 1).contains(net) && fee > 0
                            }
                        };
                        if !ok && *refunded == 0 {
                            a.fail(format!("order {id}: merchant received {net} for a {amount} payment"));
                        }
                    }
                    [] => a.fail(format!("order {id} is {status} but no money reached the merchant")),
                    many => a.fail(format!("order {id} was paid {} times: {many:?}", many.len())),
                }
            } else {
                if status == "awaiting_payment" {
                    reserved += dutiable;
                }
                if status == "refunded" && (refunded != total || restored != dutiable) {
                    a.fail(format!(
                        "order {id} refunded {refunded} of {total}, quota restored {restored} of {dutiable}"
                    ));
                }
                if !positive.is_empty() {
                    a.fail(format!("order {id} is {status} but the merchant kept {positive:?}"));
                }
            }
        }
        // The client's cache agrees with the shop, and nothing is left open.
        let cached = s.client.cached_orders(None, 1, 200).unwrap();
        let mut cached_status = HashMap::new();
        let pages = u32::try_from((cached.total + 199) / 200).unwrap().max(1);
        for page in 1..=pages {
            for o in s.client.cached_orders(None, page, 200).unwrap().items {
                cached_status.insert(o.id.clone(), o.status.as_str().to_owned());
            }
        }
        for (id, status, ..) in &shop_orders {
            if cached_status.get(id) != Some(status) {
                a.fail(format!(
                    "shopper {}: order {id} is {status} in the shop, {:?} in the cache",
                    s.n,
                    cached_status.get(id)
                ));
            }
        }
        let open = s.client.cache().open_attempts().unwrap();
        if !open.is_empty() {
            a.fail(format!("shopper {}: {} attempts still awaiting a result: {open:?}", s.n, open.len()));
        }
        for (id, ..) in &shop_orders {
            for l in s.client.local_attempts(id).unwrap() {
                let shop_status = l
                    .out_trade_no
                    .as_ref()
                    .and_then(|out| attempts_by_order.get(id)?.iter().find(|x| &x.0 == out))
                    .map(|x| x.1.clone());
                if l.status() == LocalStatus::Paid
                    && shop_status.as_deref() != Some(AttemptStatus::Paid.as_str())
                {
                    a.fail(format!(
                        "shopper {}: attempt {} paid locally, {shop_status:?} at the shop",
                        s.n, l.local_id
                    ));
                }
            }
        }
        // The annual quota: paid orders net of refunds, nothing reserved after settling.
        let q = again!(w, s.client.quota().await).unwrap();
        if q.used.minor() != used || q.reserved.minor() != reserved {
            a.fail(format!(
                "shopper {}: quota used {} reserved {}, orders say {used} and {reserved}",
                s.n,
                q.used.minor(),
                q.reserved.minor()
            ));
        }
        if reserved != 0 {
            a.fail(format!(
                "shopper {}: {reserved} fen of orders still awaiting payment after settling",
                s.n
            ));
        }
    }
    // The sandbox's double-entry ledger.
    let check: Option<LedgerCheck> = w.sandbox_get(path::LEDGER_CHECK).await;
    if !check.as_ref().is_some_and(LedgerCheck::is_sound) {
        a.fail(format!("sandbox ledger: {check:?}"));
    }
    w.tally.bump(format!("audit: paid orders {paid_orders}"));
    println!("merchant received, net of refunds: ¥{}.{:02}", net_total / 100, net_total % 100);
    a
}

/// The shop's database: its SQLite file, or its PostgreSQL database (a connection per read, made
/// and dropped off the async workers).
fn with_postgres<T>(w: &World, read: impl FnOnce(&mut postgres::Client) -> Result<T, postgres::Error>) -> T {
    let (url, _) = w.database.clone().expect("a PostgreSQL database");
    tokio::task::block_in_place(|| {
        let mut c = postgres::Client::connect(&url, postgres::NoTls).expect("the shop's database");
        read(&mut c).expect("reading the shop's database")
    })
}

fn shop_sqlite(w: &World) -> rusqlite::Connection {
    rusqlite::Connection::open_with_flags(
        w.dir.join("shop").join("shop.sqlite3"),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .unwrap()
}

/// A count the shop's database answers.
fn shop_count(w: &World, sql: &str) -> i64 {
    match w.database {
        None => shop_sqlite(w).query_row(sql, [], |r| r.get(0)).unwrap(),
        Some(_) => with_postgres(w, |c| c.query_one(sql, &[]).map(|r| r.get(0))),
    }
}

/// Every payment attempt: order, out_trade_no, status, amount, method.
fn shop_attempts(w: &World) -> Vec<(String, String, String, i64, String)> {
    const SQL: &str = "SELECT order_id, out_trade_no, status, amount_fen, method FROM payment_attempts";
    match w.database {
        None => shop_sqlite(w)
            .prepare(SQL)
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap(),
        Some(_) => with_postgres(w, |c| {
            Ok(c.query(SQL, &[])?
                .iter()
                .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4)))
                .collect())
        }),
    }
}

/// An account's orders: id, status, total, refunded, dutiable, quota restored.
fn shop_orders_of(w: &World, account_id: &str) -> Vec<(String, String, i64, i64, i64, i64)> {
    const SQL: &str = "SELECT id, status, total_fen, refunded_fen, dutiable_fen, quota_restored_fen
                       FROM orders WHERE account_id = $1";
    match w.database {
        None => shop_sqlite(w)
            .prepare(&SQL.replace("$1", "?1"))
            .unwrap()
            .query_map([account_id], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?))
            })
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap(),
        Some(_) => with_postgres(w, |c| {
            Ok(c.query(SQL, &[&account_id])?
                .iter()
                .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4), r.get(5)))
                .collect())
        }),
    }
}

/// No refresh token or merchant key in any file under the data folder (databases, their WAL
/// files, logs).
fn secrets_on_disk(dir: &Path, secrets: &[String]) -> Vec<String> {
    let finder = aho_corasick::AhoCorasick::new(secrets).unwrap();
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                if p.file_name().is_some_and(|n| n != "sandbox") {
                    stack.push(p);
                }
            } else if let Ok(bytes) = std::fs::read(&p) {
                for m in finder.find_iter(&bytes) {
                    let s = &secrets[m.pattern().as_usize()];
                    found.push(format!("{} holds a secret starting {}", p.display(), &s[..6.min(s.len())]));
                }
            }
        }
    }
    found
}

// ---------------------------------------------------------------------------------------------

fn main() {
    let args = args();
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    std::process::exit(rt.block_on(run(args)));
}

async fn run(args: Args) -> i32 {
    let temp = tempfile::tempdir().unwrap();
    let dir = args.keep.clone().unwrap_or_else(|| temp.path().to_path_buf());
    std::fs::create_dir_all(&dir).unwrap();
    // Everything the servers and clients log, at debug level, goes to a file the audit searches.
    let log = std::fs::File::create(dir.join("soak.log")).unwrap();
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(
            "debug,hyper=info,reqwest=info,h2=info,rustls=info",
        ))
        .with_writer(std::sync::Mutex::new(log))
        .with_ansi(false)
        .init();
    let started = Instant::now();
    let tally = Arc::new(Tally::default());
    let sandbox = haitao_alipay_sandbox::start(haitao_alipay_sandbox::Config::new(
        Some(dir.join("sandbox")),
        "127.0.0.1:0".parse().unwrap(),
    ))
    .await
    .unwrap();
    let database = match &args.postgres {
        None => None,
        Some(admin) => {
            let admin = admin.clone();
            let name = format!("soak_{}_{}", std::process::id(), args.seed);
            Some((
                tokio::task::spawn_blocking(move || haitao_shop::postgres::create_database(&admin, &name))
                    .await
                    .unwrap()
                    .expect("a database for the soak"),
                args.connections,
            ))
        }
    };
    let shop_addr = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let shop = haitao_shop::start(shop_config(&dir, shop_addr, sandbox.base_url().clone(), database.clone()))
        .await
        .unwrap();
    let mut others = Vec::new();
    for _ in 1..args.instances {
        let addr = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
        let cfg = shop_config(&dir, addr, sandbox.base_url().clone(), database.clone());
        others.push(haitao_shop::start(cfg).await.unwrap());
    }
    let proxy = Arc::new(Proxy {
        upstreams: std::iter::once(&shop).chain(&others).map(|s| s.base_url().clone()).collect(),
        next: AtomicUsize::new(0),
        http: reqwest::Client::builder().timeout(Duration::from_secs(30)).build().unwrap(),
        percent: AtomicU32::new(args.net_faults),
        rng: Mutex::new(Rng(args.seed.wrapping_mul(31))),
        tally: tally.clone(),
        latencies: Mutex::new(BTreeMap::new()),
        bearer: Mutex::new(std::collections::BTreeSet::new()),
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let proxy_url: Url = format!("http://{}/", listener.local_addr().unwrap()).parse().unwrap();
    let app = axum::Router::new().fallback(proxy_handler).with_state(proxy.clone());
    tokio::spawn(async move { axum::serve(listener, app).await });
    let w = Arc::new(World {
        dir: dir.clone(),
        sandbox,
        shop: tokio::sync::Mutex::new(Some(shop)),
        shop_addr,
        others: tokio::sync::Mutex::new(others),
        database: database.clone(),
        proxy_url,
        proxy,
        http: reqwest::Client::builder().timeout(Duration::from_secs(60)).build().unwrap(),
        tally: tally.clone(),
        stop_chaos: AtomicBool::new(false),
        calm: args.calm,
    });
    println!(
        "soak: the shop on {}",
        match &database {
            None => "SQLite".to_owned(),
            Some(_) => format!("PostgreSQL, {} instance(s) on one database", args.instances),
        }
    );
    println!(
        "soak: {} shoppers, {} checkouts, seed {}, {}% network faults, shop restart every {}s, data in {}",
        args.shoppers,
        args.checkouts,
        args.seed,
        args.net_faults,
        args.restart_every,
        dir.display()
    );

    // Products a shopper can afford many times over within the annual quota.
    let browse = Client::new(
        ShopApi::new(format!("http://{shop_addr}/").parse().unwrap()).unwrap(),
        Cache::open(&dir.join("browse.sqlite3")).unwrap(),
        Arc::new(RecordingStore::default()),
    );
    let mut products = Vec::new();
    for page in 1..=20 {
        let q = ProductQuery {
            min_price_fen: Some(3_000),
            max_price_fen: Some(25_000),
            per_page: Some(200),
            page: Some(page),
            ..Default::default()
        };
        let p = browse.catalog(&q).await.unwrap().page;
        let done = p.items.len() < 200;
        products.extend(p.items.into_iter().filter(|p| p.stock > 0).map(|p| (p.id, p.price_cny.minor())));
        if done {
            break;
        }
    }
    assert!(products.len() >= 20, "too few products to shop: {}", products.len());
    let products = Arc::new(products);

    let mut shoppers = Vec::new();
    for n in 0..args.shoppers {
        shoppers.push(sign_up(&w, n, args.seed).await);
    }

    // Chaos in the background: clocks that move on, and shop restarts.
    let clocks = {
        let w = w.clone();
        tokio::spawn(async move {
            while !w.stop_chaos.load(Ordering::SeqCst) {
                tokio::time::sleep(Duration::from_secs(2)).await;
                // Both clocks move together (30× real time), so retry ladders, deadlines and token
                // lifetimes come into play without the shop and Alipay disagreeing.
                w.sandbox_post(path::CLOCK_ADVANCE, &AdvanceClock { seconds: 60 }).await;
                w.shop_post("test/clock/advance", json!({"seconds": 60})).await;
            }
        })
    };
    let restarts = {
        let w = w.clone();
        let every = args.restart_every;
        tokio::spawn(async move {
            while every > 0 && !w.stop_chaos.load(Ordering::SeqCst) {
                tokio::time::sleep(Duration::from_secs(every)).await;
                if !w.stop_chaos.load(Ordering::SeqCst) {
                    w.restart_shop().await;
                }
            }
        })
    };

    let remaining = Arc::new(AtomicUsize::new(args.checkouts));
    let mut tasks = Vec::new();
    for mut s in shoppers {
        let (w, products, remaining) = (w.clone(), products.clone(), remaining.clone());
        tasks.push(tokio::spawn(async move {
            while remaining.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |r| r.checked_sub(1)).is_ok() {
                if !checkout(&w, &mut s, &products).await {
                    w.tally.bump("shopper: stopped (stock or quota)");
                    break;
                }
            }
            s
        }));
    }
    let mut shoppers = Vec::new();
    for t in tasks {
        shoppers.push(t.await.unwrap());
    }
    w.stop_chaos.store(true, Ordering::SeqCst);
    clocks.await.unwrap();
    restarts.await.unwrap();
    let shopping = started.elapsed();

    settle(&w, &mut shoppers).await;
    let mut audit = audit(&w, &shoppers).await;
    let mut secrets: Vec<String> = shoppers.iter().flat_map(|s| s.secrets.seen.lock().clone()).collect();
    // The merchant's private key, which the sandbox generated for the shop and keeps in its own
    // database (that folder is the one place it may be; the shop holds it in memory only).
    let books = rusqlite::Connection::open_with_flags(
        dir.join("sandbox").join("sandbox.sqlite3"),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .unwrap();
    let keys: Vec<String> = books
        .prepare("SELECT private_key FROM apps WHERE private_key IS NOT NULL")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let before = secrets.len();
    for k in keys {
        // The key's base64 body, without the PEM armour.
        secrets.extend(k.lines().filter(|l| l.len() > 40 && !l.starts_with("-----")).map(str::to_owned));
    }
    assert!(secrets.len() > before, "the merchant key is among the secrets searched for");
    let before = secrets.len();
    secrets.extend(w.proxy.bearer.lock().iter().cloned());
    assert!(secrets.len() > before, "the access tokens the clients sent are among them");
    assert!(secrets.len() > args.shoppers, "every shopper's refresh tokens and the merchant key");
    let leaked = secrets_on_disk(&dir, &secrets);
    // The search itself works: a planted secret is found.
    let canary = tempfile::tempdir().unwrap();
    std::fs::write(canary.path().join("planted.log"), format!("token={}", secrets[0])).unwrap();
    assert_eq!(secrets_on_disk(canary.path(), &secrets).len(), 1, "the secret search finds a planted secret");
    for l in leaked {
        audit.fail(l);
    }
    for (k, _) in tally.0.lock().iter().filter(|(k, _)| k.starts_with("MISMATCH")) {
        audit.fail(k.clone());
    }

    println!("\n{:<58} {:>8}", "what happened", "count");
    for (k, v) in tally.0.lock().iter() {
        println!("{k:<58} {v:>8}");
    }
    println!("{:<58} {:>8}", "secrets searched for on disk", secrets.len());
    println!("{:<58} {:>8}", "mismatches", audit.mismatches.len());
    let by_route = w.proxy.latencies.lock().clone();
    let quantiles = |mut lat: Vec<u64>| {
        lat.sort_unstable();
        let q = |f: usize| lat[(lat.len() * f / 1000).min(lat.len() - 1)] as f64 / 1000.0;
        format!("{:>7} {:>9.1} {:>9.1} {:>9.1} {:>9.1}", lat.len(), q(500), q(900), q(990), q(1000))
    };
    let all: Vec<u64> = by_route.values().flatten().copied().collect();
    if !all.is_empty() {
        println!(
            "\nshop API through the proxy (untouched requests), {:.0} answered/s\n{:<42} {:>7} {:>9} {:>9} {:>9} {:>9}",
            all.len() as f64 / shopping.as_secs_f64(),
            "route",
            "count",
            "p50 ms",
            "p90 ms",
            "p99 ms",
            "max ms"
        );
        for (route, lat) in by_route.iter().filter(|(_, l)| l.len() >= 20) {
            println!("{route:<42} {}", quantiles(lat.clone()));
        }
        println!("{:<42} {}", "all", quantiles(all));
    }
    println!(
        "shopping took {:.1}s ({:.1} checkouts/s); settling and audit {:.1}s",
        shopping.as_secs_f64(),
        tally.get("checkouts") as f64 / shopping.as_secs_f64(),
        started.elapsed().as_secs_f64() - shopping.as_secs_f64()
    );
    if let Some(shop) = w.shop.lock().await.take() {
        shop.stop().await;
    }
    for shop in std::mem::take(&mut *w.others.lock().await) {
        shop.stop().await;
    }
    i32::from(!audit.mismatches.is_empty())
}
