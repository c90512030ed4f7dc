//! # haitao-alipay-sandbox
//!
//! A local Alipay gateway for testing: it speaks Alipay's OpenAPI v2 protocol (so any Alipay SDK can
//! talk to it), keeps trades in SQLite, renders the cashier buyers click through, sends signed
//! notifications on Alipay's retry ladder, moves money in a double-entry ledger, and lets testers
//! force every outcome. See `docs/sandbox.md`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use haitao_alipay::time::{Clock, OffsetClock};
use haitao_alipay::{PrivateKey, PublicKey, SignType, Signer};
use tokio::net::TcpListener;
use tokio::sync::{Notify, oneshot};
use url::Url;

mod bill;
mod cashier;
pub mod certs;
pub mod controls;
pub mod db;
pub mod events;
mod gateway;
mod gateway_v3;
mod html;
pub use html::LANG_COOKIE;
pub mod ledger;
pub mod model;
mod notify;
pub mod personas;
mod replay;
pub mod scenarios;
pub mod trades;

use db::{Store, StoreError};

/// Behaviour switches; the defaults follow the reference where it is confirmed and make the rest
/// configurable.
#[derive(Debug, Clone)]
pub struct Options {
    /// How long a `slow` outcome holds an answer.
    pub slow_answer: Duration,
    /// International-card surcharge (ppm) above `surcharge_threshold_fen`.
    pub card_surcharge_ppm: i64,
    pub surcharge_threshold_fen: i64,
    /// Huabei buyer fee rates (ppm) for 3, 6 and 12 periods.
    pub huabei_fee_ppm: [(u32, i64); 3],
    /// Notify `TRADE_CLOSED` when an unpaid trade is closed (Alipay does this for some products).
    pub notify_on_close: bool,
    /// Notify after refunds.
    pub notify_on_refund: bool,
    /// Echo `passback_params` in the return redirect (sources disagree; off by default).
    pub passback_in_return: bool,
    /// Reject requests whose `timestamp` is further than this from the sandbox clock (`None`: accept).
    pub max_clock_skew: Option<chrono::Duration>,
    /// Largest accepted request body.
    pub max_body_bytes: usize,
    /// How long an SMS code stays valid.
    pub sms_ttl: chrono::Duration,
    /// The wrong-password lock.
    pub password_tries: i64,
    pub password_lock: chrono::Duration,
    /// Serve the tester control API (`/sandbox/api`) to other machines too (a shared test
    /// sandbox). Off: only callers on this machine may force outcomes, move the clock or read
    /// the SMS inbox.
    pub public_controls: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            slow_answer: Duration::from_secs(6),
            card_surcharge_ppm: 30_000,
            surcharge_threshold_fen: 20_000,
            huabei_fee_ppm: [(3, 23_000), (6, 45_000), (12, 75_000)],
            notify_on_close: false,
            notify_on_refund: false,
            passback_in_return: false,
            max_clock_skew: None,
            max_body_bytes: 256 * 1024,
            sms_ttl: chrono::Duration::minutes(5),
            password_tries: 3,
            password_lock: chrono::Duration::hours(3),
            public_controls: false,
        }
    }
}

/// How to run a sandbox.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where the database lives; `None` keeps everything in memory.
    pub data_dir: Option<PathBuf>,
    pub addr: SocketAddr,
    /// The URL buyers' browsers use to reach the sandbox (defaults to `http://<bound address>`).
    pub public_url: Option<Url>,
    pub options: Options,
    /// The sandbox clock; testers can advance it.
    pub clock: Option<Arc<dyn Clock>>,
    /// The gateway's "Alipay" key for a new data folder (default: a fresh 2048-bit key). A folder
    /// that already has one keeps it.
    pub gateway_key: Option<PrivateKey>,
    /// Keys for the certification authority of certificate mode (default: made when first needed).
    pub ca_keys: Option<certs::CaKeys>,
    /// Sends notifications and expires trades on a timer of its own. Off when a driver calls
    /// [`Running::run_timers`] itself, as the deterministic simulation does.
    pub background: bool,
}

impl Config {
    pub fn new(data_dir: Option<PathBuf>, addr: SocketAddr) -> Self {
        Config {
            data_dir,
            addr,
            public_url: None,
            options: Options::default(),
            clock: None,
            gateway_key: None,
            ca_keys: None,
            background: true,
        }
    }
}

/// Why the sandbox could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot listen on {addr}: {source}")]
    Bind { addr: SocketAddr, source: std::io::Error },
    #[error("cannot create the data directory {path}: {source}")]
    DataDir { path: String, source: std::io::Error },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the sandbox key is unusable: {0}")]
    Key(String),
    #[error("seeding test data failed: {0}")]
    Seed(String),
}

/// The running gateway's shared state.
#[derive(Debug)]
pub struct Sandbox {
    pub(crate) store: Store,
    pub(crate) key: PrivateKey,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) base_url: Url,
    pub(crate) http: reqwest::Client,
    pub(crate) wake: Notify,
    /// Serialises timer ticks so a notification is never sent twice concurrently.
    pub(crate) tick_lock: tokio::sync::Mutex<()>,
    pub(crate) options: Options,
    /// Cards typed at the cashier, by cashier session, between choosing and confirming. Held in
    /// memory only: no full card number or CVC is ever written to the database.
    pub(crate) typed_cards: parking_lot::Mutex<std::collections::HashMap<String, trades::CardInput>>,
    /// Merchant public keys already parsed, by their PEM text (a rotated key is new text).
    merchant_keys: parking_lot::Mutex<std::collections::HashMap<String, PublicKey>>,
    /// Application certificates' serial numbers, by the certificate's PEM text.
    app_cert_sns: parking_lot::Mutex<std::collections::HashMap<String, String>>,
    /// The certification authority and the Alipay certificate that signs for apps in certificate
    /// mode, once made or read.
    ca: parking_lot::Mutex<Option<Arc<certs::Ca>>>,
    alipay_cert: parking_lot::Mutex<Option<certs::AlipayCert>>,
    ca_keys: Option<certs::CaKeys>,
    /// Bills built for download, by link token, until their link expires.
    pub(crate) bills: parking_lot::Mutex<std::collections::HashMap<String, bill::Pending>>,
}

impl Sandbox {
    /// The sandbox's "Alipay public key", as merchants configure it.
    pub fn public_key(&self) -> &PublicKey {
        self.key.public_key()
    }

    /// Signs as Alipay with the given sign type.
    pub(crate) fn signer(&self, sign_type: SignType) -> Result<Signer, haitao_alipay::KeyError> {
        Signer::new(self.key.clone(), sign_type)
    }

    pub fn now(&self) -> chrono::DateTime<chrono::Utc> {
        self.clock.now()
    }

    /// The sandbox's clock, for a merchant running beside it on the same time (the app's
    /// built-in shop): moving it (`POST /sandbox/api/clock/advance`) moves both.
    pub fn clock(&self) -> Arc<dyn Clock> {
        self.clock.clone()
    }

    /// A merchant app's public key, parsed once per key text rather than on every gateway call.
    pub(crate) fn merchant_key(&self, pem: &str) -> Result<PublicKey, haitao_alipay::KeyError> {
        if let Some(k) = self.merchant_keys.lock().get(pem) {
            return Ok(k.clone());
        }
        let k = PublicKey::parse(pem)?;
        let mut keys = self.merchant_keys.lock();
        // Bounded: a sandbox has a handful of apps; many rotations just start the cache again.
        if keys.len() >= 256 {
            keys.clear();
        }
        keys.insert(pem.to_owned(), k.clone());
        Ok(k)
    }

    /// The serial number of an application certificate, computed once per certificate.
    pub(crate) fn app_cert_sn(&self, pem: &str) -> Result<String, haitao_alipay::cert::CertError> {
        if let Some(sn) = self.app_cert_sns.lock().get(pem) {
            return Ok(sn.clone());
        }
        let sn =
            haitao_alipay::cert::Certificate::parse_pem(pem, "application certificate")?[0].sn().to_string();
        let mut sns = self.app_cert_sns.lock();
        if sns.len() >= 256 {
            sns.clear();
        }
        sns.insert(pem.to_owned(), sn.clone());
        Ok(sn)
    }

    /// What signs an answer to `app` ([`Sandbox::signer_for`]): from memory, and from the store
    /// (the writer, which may have to make the first certificate) only for an app in certificate
    /// mode before the Alipay certificate has been read.
    pub(crate) async fn answer_signer(
        self: &Arc<Self>,
        app: &model::App,
        sign_type: SignType,
    ) -> Result<(Signer, Option<String>), String> {
        if app.app_cert.is_none() {
            return self.signer(sign_type).map(|s| (s, None)).map_err(|e| e.to_string());
        }
        if let Some(cert) = self.alipay_cert.lock().clone() {
            return Signer::new(cert.key, sign_type)
                .map(|s| (s, Some(cert.sn.to_string())))
                .map_err(|e| e.to_string());
        }
        let (sb, app) = (self.clone(), app.clone());
        self.store
            .run(move |c| Ok(sb.signer_for(c, &app, sign_type)))
            .await
            .unwrap_or_else(|e: db::StoreError| Err(e.to_string()))
    }

    /// `alipay_root_cert_sn` apps in certificate mode must name: from memory once the authority
    /// has been read or made.
    pub(crate) async fn root_cert_sn(self: &Arc<Self>) -> Result<String, String> {
        if let Some(ca) = self.ca.lock().clone() {
            return ca.root_cert_sn().map_err(|e| e.to_string());
        }
        let sb = self.clone();
        self.store
            .run(move |c| Ok(sb.ca(c).and_then(|ca| ca.root_cert_sn()).map_err(|e| e.to_string())))
            .await
            .unwrap_or_else(|e: db::StoreError| Err(e.to_string()))
    }

    /// The sandbox's certification authority, made on first use.
    pub(crate) fn ca(&self, conn: &rusqlite::Connection) -> Result<Arc<certs::Ca>, certs::CaError> {
        if let Some(ca) = self.ca.lock().clone() {
            return Ok(ca);
        }
        let ca = Arc::new(certs::Ca::ensure(conn, self.now(), self.ca_keys.as_ref())?);
        *self.ca.lock() = Some(ca.clone());
        Ok(ca)
    }

    /// The Alipay certificate that signs for apps in certificate mode now.
    pub(crate) fn alipay_cert(
        &self,
        conn: &rusqlite::Connection,
    ) -> Result<certs::AlipayCert, certs::CaError> {
        if let Some(c) = self.alipay_cert.lock().clone() {
            return Ok(c);
        }
        let ca = self.ca(conn)?;
        let cert = certs::current(conn, &ca, self.now(), self.ca_keys.as_ref().map(|k| &k.alipay))?;
        *self.alipay_cert.lock() = Some(cert.clone());
        Ok(cert)
    }

    /// Issues a new Alipay certificate: answers from now on are signed with its key and name its
    /// SN; merchants download it by that SN.
    pub(crate) fn rotate_alipay_cert(
        &self,
        conn: &rusqlite::Connection,
    ) -> Result<certs::AlipayCert, certs::CaError> {
        let ca = self.ca(conn)?;
        let cert = certs::rotate(conn, &ca, self.now(), None)?;
        *self.alipay_cert.lock() = Some(cert.clone());
        Ok(cert)
    }

    /// What signs for `app`: the gateway key, or (certificate mode) the current Alipay
    /// certificate's key and its SN, which answers name.
    pub(crate) fn signer_for(
        &self,
        conn: &rusqlite::Connection,
        app: &model::App,
        sign_type: SignType,
    ) -> Result<(Signer, Option<String>), String> {
        if app.app_cert.is_none() {
            return self.signer(sign_type).map(|s| (s, None)).map_err(|e| e.to_string());
        }
        let cert = self.alipay_cert(conn).map_err(|e| e.to_string())?;
        let signer = Signer::new(cert.key, sign_type).map_err(|e| e.to_string())?;
        Ok((signer, Some(cert.sn.to_string())))
    }

    pub fn base_url(&self) -> &Url {
        &self.base_url
    }

    pub fn gateway_url(&self) -> Url {
        self.base_url.join("gateway.do").unwrap_or_else(|_| self.base_url.clone())
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Moves the sandbox clock forward and wakes timers (expiry, notification retries).
    pub fn advance_clock(&self, by: chrono::Duration) -> bool {
        let moved = self.clock.advance(by);
        if moved {
            let offset = by.num_milliseconds();
            let _ = self.store.sync(|c| {
                let prev: i64 = model::meta(c, "clock_offset_ms")
                    .ok()
                    .flatten()
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0);
                model::set_meta(c, "clock_offset_ms", &(prev + offset).to_string())
            });
            self.wake.notify_waiters();
        }
        moved
    }
}

/// A sandbox serving on a socket.
#[derive(Debug)]
pub struct Running {
    pub addr: SocketAddr,
    pub state: Arc<Sandbox>,
    shutdown: Option<oneshot::Sender<()>>,
    server: tokio::task::JoinHandle<()>,
    worker: Option<tokio::task::JoinHandle<()>>,
}

impl Running {
    pub fn base_url(&self) -> &Url {
        &self.state.base_url
    }

    pub fn gateway_url(&self) -> Url {
        self.state.gateway_url()
    }

    /// Starts the timers' worker (expiring trades, sending notifications) of a sandbox started
    /// without it (`Config::background` off), e.g. once a desktop app's first page is on screen.
    /// Nothing happens when it already runs.
    pub fn start_worker(&mut self) {
        if self.worker.is_none() {
            self.worker = Some(tokio::spawn(notify::run(self.state.clone())));
        }
    }

    /// One pass of the timers: expires overdue trades and sends the notifications that are due.
    /// Returns when the next one falls due.
    pub async fn run_timers(&self) -> Option<chrono::DateTime<chrono::Utc>> {
        notify::tick(&self.state).await
    }

    /// Stops serving and waits for the server to finish.
    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(worker) = &self.worker {
            worker.abort();
        }
        let _ = (&mut self.server).await;
        // Land the trace of the last answers before the caller reopens the data folder.
        self.state.store.sync(|_| ());
    }
}

fn load_or_create_key(store: &Store, given: Option<PrivateKey>) -> Result<PrivateKey, StartError> {
    store.sync(|c| {
        if let Some(der_b64) = model::meta(c, "gateway_key_pkcs8")? {
            let der = base64::Engine::decode(&base64::engine::general_purpose::STANDARD, der_b64)
                .map_err(|e| StartError::Key(e.to_string()))?;
            return PrivateKey::from_der(&der).map_err(|e| StartError::Key(e.to_string()));
        }
        let (key, der) = match given {
            Some(k) => {
                let der = k.to_pkcs8_der().map_err(|e| StartError::Key(e.to_string()))?;
                (k, der)
            }
            None => PrivateKey::generate().map_err(|e| StartError::Key(e.to_string()))?,
        };
        model::set_meta(
            c,
            "gateway_key_pkcs8",
            &base64::Engine::encode(&base64::engine::general_purpose::STANDARD, der),
        )?;
        Ok(key)
    })
}

/// Opens the store, seeds test data, binds the socket and starts serving.
pub async fn start(config: Config) -> Result<Running, StartError> {
    let conn = match &config.data_dir {
        Some(dir) => {
            // Private to the user who runs it: the folder 0700, the database (and its WAL) 0600.
            let file = dir.join("sandbox.sqlite3");
            haitao_files::private_dir(dir)
                .and_then(|()| haitao_files::private_database(&file))
                .map_err(|source| StartError::DataDir { path: dir.display().to_string(), source })?;
            db::open(Some(&file))?
        }
        None => db::open(None)?,
    };
    let store = Store::new(conn);
    let key = load_or_create_key(&store, config.gateway_key)?;
    let clock: Arc<dyn Clock> = match config.clock {
        Some(c) => c,
        None => {
            let offset_ms: i64 =
                store.sync(|c| model::meta(c, "clock_offset_ms"))?.and_then(|v| v.parse().ok()).unwrap_or(0);
            Arc::new(OffsetClock::new(chrono::Duration::milliseconds(offset_ms)))
        }
    };
    let now = clock.now();
    store.sync(|c| personas::seed(c, now)).map_err(|e| StartError::Seed(e.to_string()))?;

    let listener = TcpListener::bind(config.addr)
        .await
        .map_err(|source| StartError::Bind { addr: config.addr, source })?;
    let addr = listener.local_addr().map_err(|source| StartError::Bind { addr: config.addr, source })?;
    let base_url = match config.public_url {
        Some(u) => u,
        None => Url::parse(&format!("http://{addr}/")).map_err(|e| StartError::Key(e.to_string()))?,
    };
    let http = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(15))
        .build()
        .map_err(|e| StartError::Key(e.to_string()))?;
    let state = Arc::new(Sandbox {
        store,
        key,
        clock,
        base_url,
        http,
        wake: Notify::new(),
        tick_lock: tokio::sync::Mutex::new(()),
        options: config.options,
        typed_cards: parking_lot::Mutex::new(std::collections::HashMap::new()),
        merchant_keys: parking_lot::Mutex::new(std::collections::HashMap::new()),
        app_cert_sns: parking_lot::Mutex::new(std::collections::HashMap::new()),
        ca: parking_lot::Mutex::new(None),
        alipay_cert: parking_lot::Mutex::new(None),
        ca_keys: config.ca_keys,
        bills: parking_lot::Mutex::new(std::collections::HashMap::new()),
    });
    let app = gateway::router(state.clone());
    let (tx, rx) = oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        let result = axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>())
            .with_graceful_shutdown(async {
                let _ = rx.await;
            })
            .await;
        if let Err(e) = result {
            tracing::error!(error = %e, "sandbox server stopped");
        }
    });
    let worker = config.background.then(|| tokio::spawn(notify::run(state.clone())));
    tracing::info!(%addr, "Alipay sandbox listening");
    Ok(Running { addr, state, shutdown: Some(tx), server, worker })
}
