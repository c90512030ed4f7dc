//! One simulated world: the Alipay sandbox and the shop in this process on manual clocks, the
//! shop's database in a temporary folder so it can be "restarted", and a switch that fails the
//! shop's writes.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use chrono::{DateTime, TimeZone, Utc};
use haitao_alipay::PrivateKey;
use haitao_alipay::ids::SequentialIds;
use haitao_alipay::time::ManualClock;
use haitao_alipay_sandbox as sandbox;
use haitao_sandbox_api::{AppInfo, AppRequest, path};
use haitao_shop::config::CertificateFiles;
use haitao_shop::{AlipaySettings, KeySource, RunningShop, ShopConfig, WriteFaults};
use haitao_shop_api::secret::SecretString;
use haitao_shop_api::{Currency, Money};
use serde_json::{Value, json};

/// Keys made once per process: generating RSA keys for every seed would cost more than the run.
struct Keys {
    gateway: PrivateKey,
    app_pem: String,
    app_public_pem: String,
    ca: sandbox::certs::CaKeys,
}

fn keys() -> Result<&'static Keys, String> {
    static KEYS: OnceLock<Result<Keys, String>> = OnceLock::new();
    KEYS.get_or_init(|| {
        let (gateway, _) = PrivateKey::generate().map_err(|e| format!("gateway key: {e}"))?;
        let (app, app_der) = PrivateKey::generate().map_err(|e| format!("app key: {e}"))?;
        let key = |what: &str| PrivateKey::generate().map(|(k, _)| k).map_err(|e| format!("{what} key: {e}"));
        Ok(Keys {
            gateway,
            app_pem: haitao_alipay::keys::pem("PRIVATE KEY", &app_der),
            app_public_pem: app.public_key().to_pem(),
            ca: sandbox::certs::CaKeys {
                root: key("root CA")?,
                class2: key("class 2 CA")?,
                alipay: key("Alipay")?,
            },
        })
    })
    .as_ref()
    .map_err(Clone::clone)
}

/// When the shop's next write fails, and whether the shop then stops (until it is restarted).
#[derive(Debug, Default)]
pub struct Faults {
    /// Commits to let through before the one that fails; negative: none planned.
    countdown: AtomicI64,
    crash: AtomicBool,
    crashed: AtomicBool,
    pub fired: AtomicU64,
}

impl Faults {
    fn on_commit(&self) -> bool {
        if self.crashed.load(Ordering::SeqCst) {
            return true;
        }
        let n = self.countdown.load(Ordering::SeqCst);
        if n < 0 {
            return false;
        }
        if n > 0 {
            self.countdown.store(n - 1, Ordering::SeqCst);
            return false;
        }
        self.countdown.store(-1, Ordering::SeqCst);
        self.fired.fetch_add(1, Ordering::SeqCst);
        if self.crash.load(Ordering::SeqCst) {
            self.crashed.store(true, Ordering::SeqCst);
        }
        true
    }

    /// Fails the write after `after` more commits; with `crash`, every write after it too.
    pub fn arm(&self, after: i64, crash: bool) {
        self.crash.store(crash, Ordering::SeqCst);
        self.countdown.store(after, Ordering::SeqCst);
    }

    pub fn disarm(&self) {
        self.countdown.store(-1, Ordering::SeqCst);
    }

    pub fn crashed(&self) -> bool {
        self.crashed.load(Ordering::SeqCst)
    }
}

/// How the shop's Alipay app is configured: public-key or certificate mode, with or without
/// content encryption, API calls through gateway.do or OpenAPI v3. Every money path runs in each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppMode {
    pub cert: bool,
    pub aes: bool,
    /// API calls through OpenAPI v3 rather than gateway.do.
    pub v3: bool,
}

/// The simulation's tight limits, so that runs reach them: per order and per orderer and year.
pub const ORDER_LIMIT_FEN: i64 = 200_000;
pub const ANNUAL_LIMIT_FEN: i64 = 600_000;

/// A shop account and the sandbox personas who pay for it.
#[derive(Debug, Clone)]
pub struct Buyer {
    pub phone: String,
    pub name: &'static str,
    pub id_number: &'static str,
    pub token: String,
    pub refresh: String,
    pub address_id: String,
}

/// A sandbox persona: login, real name, resident id number.
pub const PERSONAS: [(&str, &str, &str); 3] = [
    ("zhangwei@sandbox.haitao", "张伟", "110105198803151232"),
    ("lina@sandbox.haitao", "李娜", "310104199207082344"),
    ("wangfang@sandbox.haitao", "王芳", "440305199502203459"),
];

#[derive(Debug, Clone)]
pub struct SimOrder {
    pub id: String,
    pub buyer: usize,
    /// The persona who last paid for it (for orderer corrections).
    pub payer: Option<usize>,
}

#[derive(Debug, Clone)]
pub struct SimAttempt {
    pub id: String,
    pub order: usize,
    pub out_trade_no: String,
    pub cashier: Option<String>,
    pub method: Value,
    /// The cashier answered "paid" for it, or that it can no longer be paid.
    pub done: bool,
}

#[allow(missing_debug_implementations, reason = "a running world; its parts are debugged one by one")]
pub struct World {
    pub dir: tempfile::TempDir,
    pub sandbox: sandbox::Running,
    pub shop: Option<RunningShop>,
    pub shop_clock: ManualClock,
    pub sandbox_clock: ManualClock,
    ids: Arc<SequentialIds>,
    pub faults: Arc<Faults>,
    pub http: reqwest::Client,
    pub app: AppInfo,
    pub mode: AppMode,
    shop_addr: SocketAddr,
    pub buyers: Vec<Buyer>,
    pub orders: Vec<SimOrder>,
    pub attempts: Vec<SimAttempt>,
    pub products: Vec<String>,
    pub initial_stock: Vec<(String, i64)>,
    pub restarts: u32,
    /// Fen the merchant moved out of its sandbox account (refunds are refused meanwhile).
    pub merchant_out: i64,
    /// What a step saw that must never happen (checked with the invariants).
    pub violations: Vec<String>,
    reader: std::cell::OnceCell<rusqlite::Connection>,
    /// The shop's PostgreSQL database, when it runs on one.
    pub database: Option<String>,
}

/// The instant every run starts at (a Tuesday morning in Hangzhou, mid-year).
pub fn epoch() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 6, 9, 1, 30, 0).single().unwrap_or_default()
}

#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub body: Value,
}

impl World {
    pub async fn new(
        notify_on_close: bool,
        notify_on_refund: bool,
        mode: AppMode,
        database: Option<&'static str>,
    ) -> Result<World, String> {
        let database = match database {
            None => None,
            Some(admin) => Some(
                tokio::task::spawn_blocking(move || {
                    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
                    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let stamp =
                        haitao_alipay::time::Clock::now(&haitao_alipay::time::SystemClock).timestamp_micros();
                    haitao_shop::postgres::create_database(
                        admin,
                        &format!("sim_{}_{stamp}_{n}", std::process::id()),
                    )
                })
                .await
                .map_err(|e| e.to_string())?
                .map_err(|e| format!("database: {e}"))?,
            ),
        };
        let base = std::path::Path::new("/dev/shm");
        let dir = if base.is_dir() { tempfile::tempdir_in(base) } else { tempfile::tempdir() }
            .map_err(|e| format!("temp dir: {e}"))?;
        let sandbox_clock = ManualClock::new(epoch());
        let mut sc = sandbox::Config::new(None, loopback());
        sc.clock = Some(Arc::new(sandbox_clock.clone()));
        sc.gateway_key = Some(keys()?.gateway.clone());
        sc.ca_keys = Some(keys()?.ca.clone());
        sc.background = false;
        sc.options.notify_on_close = notify_on_close;
        sc.options.notify_on_refund = notify_on_refund;
        sc.options.slow_answer = std::time::Duration::from_millis(1);
        let sandbox = sandbox::start(sc).await.map_err(|e| format!("sandbox: {e}"))?;
        let http = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(30))
            .build()
            .map_err(|e| e.to_string())?;
        let app = register_app(&http, &sandbox, &keys()?.app_public_pem, None, mode).await?;
        let mut w = World {
            dir,
            sandbox,
            shop: None,
            shop_clock: ManualClock::new(epoch()),
            sandbox_clock,
            ids: Arc::new(SequentialIds::default()),
            faults: Arc::new(Faults::default()),
            http,
            app,
            mode,
            shop_addr: loopback(),
            buyers: Vec::new(),
            orders: Vec::new(),
            attempts: Vec::new(),
            products: Vec::new(),
            initial_stock: Vec::new(),
            restarts: 0,
            merchant_out: 0,
            violations: Vec::new(),
            reader: std::cell::OnceCell::new(),
            database,
        };
        w.faults.disarm();
        w.start_shop().await?;
        Ok(w)
    }

    fn shop_config(&self) -> Result<ShopConfig, String> {
        let mut cfg = ShopConfig::local(
            Some(self.dir.path().join("shop")),
            self.shop_addr,
            self.sandbox.base_url().clone(),
        );
        // Certificate mode: the files as the sandbox first handed them out (a restarted shop meets
        // any rotation since and downloads it again).
        let certificates = match &self.app.certificates {
            Some(c) => {
                let dir = self.dir.path().join("certs");
                let write = |name: &str, text: &str| -> Result<std::path::PathBuf, String> {
                    let p = dir.join(name);
                    if !p.exists() {
                        std::fs::create_dir_all(&dir).map_err(|e| format!("certs: {e}"))?;
                        std::fs::write(&p, text).map_err(|e| format!("certs: {e}"))?;
                    }
                    Ok(p)
                };
                Some(Box::new(CertificateFiles {
                    app_cert: write("appCertPublicKey.crt", &c.app_cert)?,
                    alipay_cert: write("alipayCertPublicKey_RSA2.crt", &c.alipay_cert)?,
                    alipay_root_cert: write("alipayRootCert.crt", &c.alipay_root_cert)?,
                }))
            }
            None => None,
        };
        cfg.alipay = AlipaySettings::Gateway {
            gateway: url::Url::parse(&self.app.gateway_url).unwrap_or_else(|_| self.sandbox.gateway_url()),
            app_id: self.app.app_id.clone(),
            seller_id: Some(self.app.seller_id.clone()),
            merchant_key: KeySource::Inline(SecretString::new(keys()?.app_pem.clone())),
            alipay_public_key: certificates.is_none().then(|| self.app.alipay_public_key.clone()),
            certificates,
            encrypt_key: self.app.aes_key.clone().map(|k| KeySource::Inline(SecretString::new(k))),
            protocol: if self.mode.v3 {
                haitao_alipay::Protocol::V3
            } else {
                haitao_alipay::Protocol::Gateway
            },
            legacy_rsa: false,
        };
        cfg.database = self.database.clone().map(|url| {
            let mut pg = haitao_shop::PostgresSettings::new(url);
            pg.max_connections = 4;
            pg
        });
        // One shop, stopped and started again: its leases are its own across restarts.
        cfg.instance_name = Some("sim".into());
        cfg.clock = Arc::new(self.shop_clock.clone());
        cfg.ids = self.ids.clone();
        cfg.background_jobs = false;
        cfg.pricing.order_limit = Money::from_minor(ORDER_LIMIT_FEN, Currency::Cny);
        cfg.pricing.annual_limit = Money::from_minor(ANNUAL_LIMIT_FEN, Currency::Cny);
        let faults = self.faults.clone();
        cfg.write_faults = Some(WriteFaults(Arc::new(move || faults.on_commit())));
        Ok(cfg)
    }

    /// Starts the shop on its data folder (again, after a stop), on the same port when it is free.
    pub async fn start_shop(&mut self) -> Result<(), String> {
        let shop = match haitao_shop::start(self.shop_config()?).await {
            Ok(s) => s,
            Err(haitao_shop::StartError::Bind { .. }) => {
                self.shop_addr = loopback();
                haitao_shop::start(self.shop_config()?).await.map_err(|e| format!("shop: {e}"))?
            }
            Err(e) => return Err(format!("shop: {e}")),
        };
        self.shop_addr = shop.addr;
        register_app(
            &self.http,
            &self.sandbox,
            &keys()?.app_public_pem,
            Some(shop.base_url().to_string()),
            self.mode,
        )
        .await?;
        self.shop = Some(shop);
        Ok(())
    }

    /// The process stopped (its writes failing since): start it again from its database.
    pub async fn restart_shop(&mut self) -> Result<(), String> {
        if let Some(s) = self.shop.take() {
            s.stop().await;
        }
        self.faults.disarm();
        self.faults.crashed.store(false, Ordering::SeqCst);
        self.restarts += 1;
        self.start_shop().await
    }

    pub fn shop(&self) -> &Arc<haitao_shop::Shop> {
        match &self.shop {
            Some(s) => &s.shop,
            None => unreachable!("the shop runs between steps"),
        }
    }

    /// A read-only connection to the shop's database (WAL: it sees every committed write).
    pub fn shop_db(&self) -> Result<&rusqlite::Connection, String> {
        if let Some(c) = self.reader.get() {
            return Ok(c);
        }
        let c = rusqlite::Connection::open_with_flags(
            self.dir.path().join("shop").join("shop.sqlite3"),
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
        )
        .map_err(|e| format!("reading the shop database: {e}"))?;
        Ok(self.reader.get_or_init(|| c))
    }

    fn url(&self, p: &str) -> String {
        let base = self.shop.as_ref().map(|s| s.base_url().to_string()).unwrap_or_default();
        format!("{base}api/v1/{}", p.trim_start_matches('/'))
    }

    /// A shop API call as `buyer` (signing in again when the session has lapsed).
    pub async fn call(
        &mut self,
        buyer: Option<usize>,
        method: reqwest::Method,
        p: &str,
        body: Option<Value>,
        idempotency_key: Option<&str>,
    ) -> Answer {
        let mut a = self.call_once(buyer, method.clone(), p, body.clone(), idempotency_key).await;
        if a.status == 401
            && let Some(b) = buyer
        {
            self.sign_in(b).await;
            a = self.call_once(buyer, method, p, body, idempotency_key).await;
        }
        a
    }

    async fn call_once(
        &self,
        buyer: Option<usize>,
        method: reqwest::Method,
        p: &str,
        body: Option<Value>,
        idempotency_key: Option<&str>,
    ) -> Answer {
        let mut rb = self.http.request(method, self.url(p));
        if let Some(b) = buyer {
            rb = rb.bearer_auth(&self.buyers[b].token);
        }
        if let Some(k) = idempotency_key {
            rb = rb.header("Idempotency-Key", k);
        }
        if let Some(body) = body {
            rb = rb.json(&body);
        }
        match rb.send().await {
            Ok(r) => {
                let status = r.status().as_u16();
                let text = r.text().await.unwrap_or_default();
                Answer { status, body: serde_json::from_str(&text).unwrap_or(Value::String(text)) }
            }
            Err(e) => Answer { status: 0, body: Value::String(e.to_string()) },
        }
    }

    async fn sign_in(&mut self, b: usize) {
        let refresh = self.buyers[b].refresh.clone();
        let r = self
            .call_once(
                None,
                reqwest::Method::POST,
                "auth/refresh",
                Some(json!({"refresh_token": refresh})),
                None,
            )
            .await;
        let r = if r.status == 200 {
            r
        } else {
            let phone = self.buyers[b].phone.clone();
            self.call_once(
                None,
                reqwest::Method::POST,
                "auth/login",
                Some(json!({"phone": phone, "password": "haitao-sim-2026"})),
                None,
            )
            .await
        };
        if r.status == 200 {
            self.buyers[b].token = r.body["access_token"].as_str().unwrap_or_default().to_owned();
            self.buyers[b].refresh = r.body["refresh_token"].as_str().unwrap_or_default().to_owned();
        }
    }

    /// Registers a verified buyer with an address (before any fault is planned).
    pub async fn add_buyer(
        &mut self,
        phone: &str,
        name: &'static str,
        id_number: &'static str,
    ) -> Result<(), String> {
        let r = self
            .call_once(
                None,
                reqwest::Method::POST,
                "auth/register",
                Some(json!({"phone": phone, "password": "haitao-sim-2026"})),
                None,
            )
            .await;
        if r.status != 201 {
            return Err(format!("register: {} {}", r.status, r.body));
        }
        self.buyers.push(Buyer {
            phone: phone.to_owned(),
            name,
            id_number,
            token: r.body["access_token"].as_str().unwrap_or_default().to_owned(),
            refresh: r.body["refresh_token"].as_str().unwrap_or_default().to_owned(),
            address_id: String::new(),
        });
        let b = self.buyers.len() - 1;
        let rn = self
            .call(
                Some(b),
                reqwest::Method::POST,
                "account/real-name",
                Some(json!({"name": name, "id_number": id_number})),
                None,
            )
            .await;
        if rn.status != 200 {
            return Err(format!("real name: {} {}", rn.status, rn.body));
        }
        let a = self
            .call(
                Some(b),
                reqwest::Method::POST,
                "account/addresses",
                Some(json!({"recipient": name, "phone": phone, "province": "浙江省", "city": "杭州市", "district": "西湖区", "street": "文三路 100 号"})),
                None,
            )
            .await;
        if a.status != 201 {
            return Err(format!("address: {} {}", a.status, a.body));
        }
        self.buyers[b].address_id = a.body["id"].as_str().unwrap_or_default().to_owned();
        Ok(())
    }

    /// Picks the products runs buy (bonded goods across the price range) and notes their stock.
    pub async fn pick_products(&mut self) -> Result<(), String> {
        const BANDS: [(i64, i64); 4] =
            [(2_000, 20_000), (20_000, 60_000), (60_000, 140_000), (150_000, 300_000)];
        const PICK: &str =
            "SELECT id, stock FROM products WHERE fulfilment = 'bonded' AND price_cny_fen >= $1
                            AND price_cny_fen < $2 AND stock >= 3 ORDER BY seq LIMIT 1";
        let chosen: Vec<(String, i64)> = match &self.database {
            None => {
                let db = self.shop_db()?;
                BANDS
                    .iter()
                    .filter_map(|(lo, hi)| {
                        db.query_row(&PICK.replace('$', "?"), [lo, hi], |r| Ok((r.get(0)?, r.get(1)?))).ok()
                    })
                    .collect()
            }
            Some(url) => {
                let url = url.clone();
                tokio::task::spawn_blocking(move || -> Result<Vec<(String, i64)>, String> {
                    let mut c =
                        postgres::Client::connect(&url, postgres::NoTls).map_err(|e| e.to_string())?;
                    let mut out = Vec::new();
                    for (lo, hi) in BANDS {
                        if let Some(r) = c.query_opt(PICK, &[&lo, &hi]).map_err(|e| e.to_string())? {
                            out.push((r.get(0), r.get(1)));
                        }
                    }
                    Ok(out)
                })
                .await
                .map_err(|e| e.to_string())??
            }
        };
        for (id, stock) in chosen {
            self.products.push(id.clone());
            self.initial_stock.push((id, stock));
        }
        if self.products.len() < 3 {
            return Err(format!("the catalog has too few products in the price bands: {:?}", self.products));
        }
        Ok(())
    }

    /// The merchant settles all it could pay out to its bank (refunds are then refused with
    /// ACQ.SELLER_BALANCE_NOT_ENOUGH), or, when it had, the money comes back.
    /// Alipay issues a new public-key certificate: answers name it from now on, and the shop must
    /// fetch it (and check it against the root) before it can trust any answer again.
    pub async fn rotate_alipay_cert(&mut self) -> String {
        let url = match self.sandbox.base_url().join(path::ALIPAY_CERT_ROTATE) {
            Ok(u) => u,
            Err(e) => return format!("rotate Alipay's certificate: {e}"),
        };
        match self.http.post(url).json(&json!({})).send().await {
            Ok(r) if r.status().is_success() => "Alipay rotated its public-key certificate".into(),
            Ok(r) => {
                self.violations
                    .push(format!("the sandbox refused a certificate rotation: HTTP {}", r.status()));
                "rotate Alipay's certificate: refused".into()
            }
            Err(e) => format!("rotate Alipay's certificate: {e}"),
        }
    }

    pub fn merchant_settles(&mut self) -> String {
        use haitao_alipay_sandbox::{ledger, model};
        let merchant = ledger::merchant_account(&self.app.app_id);
        let now = haitao_alipay::time::Clock::now(&self.sandbox_clock);
        let out = self.merchant_out;
        let r = self.sandbox.state.store().sync(|c| {
            if out > 0 {
                ledger::post(c, ledger::FEES, &merchant, out, "settlement_reversed", None, now).map(|()| 0)
            } else {
                let available =
                    model::account(c, &merchant).ok().flatten().map(|a| a.available()).unwrap_or(0);
                ledger::post(c, &merchant, ledger::FEES, available, "settlement", None, now)
                    .map(|()| available)
            }
        });
        match r {
            Ok(moved) => {
                self.merchant_out = moved;
                if moved > 0 {
                    format!("the merchant settles {moved} fen away: refunds are refused")
                } else {
                    format!("the merchant's {out} fen come back")
                }
            }
            Err(e) => format!("the merchant's settlement failed: {e}"),
        }
    }

    pub async fn sandbox_post(&self, p: &str, body: &Value) -> Answer {
        let url = self.sandbox.base_url().join(p).map(|u| u.to_string()).unwrap_or_default();
        match self.http.post(url).json(body).send().await {
            Ok(r) => {
                let status = r.status().as_u16();
                Answer { status, body: r.json().await.unwrap_or(Value::Null) }
            }
            Err(e) => Answer { status: 0, body: Value::String(e.to_string()) },
        }
    }

    pub fn shop_base(&self) -> String {
        self.shop.as_ref().map(|s| s.base_url().to_string()).unwrap_or_default()
    }

    pub async fn stop(mut self) {
        if let Some(s) = self.shop.take() {
            s.stop().await;
        }
        self.sandbox.stop().await;
    }
}

fn loopback() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

async fn register_app(
    http: &reqwest::Client,
    sb: &sandbox::Running,
    public_pem: &str,
    notify_base: Option<String>,
    mode: AppMode,
) -> Result<AppInfo, String> {
    let url = sb.base_url().join(path::APPS).map_err(|e| e.to_string())?;
    let req = AppRequest {
        public_key: Some(public_pem.to_owned()),
        notify_base,
        cert_mode: mode.cert,
        aes: mode.aes,
        ..AppRequest::named("Haitao sim")
    };
    let r = http.post(url).json(&req).send().await.map_err(|e| format!("sandbox app: {e}"))?;
    if !r.status().is_success() {
        return Err(format!("sandbox app: HTTP {}", r.status()));
    }
    r.json().await.map_err(|e| format!("sandbox app: {e}"))
}
