//! # haitao-shop
//!
//! The storefront backend of Haitao (海淘): an HTTP JSON API (`/api/v1`, described at
//! `/api/v1/openapi.json`) with the catalog, real-name accounts, cross-border pricing and limits,
//! the cart, orders paid through Alipay, customs declarations, logistics, e-invoices and customer
//! service. It runs in-process inside the desktop app by default, or on its own (`haitao-shop serve`).

use std::net::SocketAddr;
use std::sync::Arc;

use haitao_alipay::cert::CertMode;
use haitao_alipay::encrypt::AesKey;
use haitao_alipay::{AlipayClient, AppConfig, InboundVerifier, PrivateKey, PublicKey, SignType, Signer};
use haitao_sandbox_api as sandbox_api;
use haitao_shop_api::PaymentConfig;
use haitao_shop_api::secret::SecretString;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use url::Url;

pub mod api;
pub mod auth;
pub mod catalog;
pub mod config;
pub mod db;
pub mod domain;
pub mod error;
pub mod identity;
pub mod invoice;
pub mod jobs;
pub mod leases;
pub mod limits;
pub mod payments;
#[cfg(feature = "postgres")]
pub mod postgres;
pub mod pricing;
pub mod reconcile;
pub mod sqlite;
pub mod state;
pub mod store;
pub mod support;

pub use config::{AlipaySettings, KeySource, PostgresSettings, ShopConfig, WriteFaults};
pub use state::Shop;

/// Why the shop could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot listen on {addr}: {source}")]
    Bind { addr: SocketAddr, source: std::io::Error },
    #[error("cannot create the data directory {path}: {source}")]
    DataDir { path: String, source: std::io::Error },
    #[error(transparent)]
    Db(#[from] db::DbError),
    #[cfg(feature = "postgres")]
    #[error(transparent)]
    Postgres(#[from] postgres::PgError),
    #[error(
        "this build of the shop has no PostgreSQL store (it was built without the `postgres` feature); leave out the database URL to keep the shop in SQLite"
    )]
    NoPostgres,
    #[error("the catalog could not be loaded: {0}")]
    Catalog(String),
    #[error("the Alipay configuration is unusable: {0}")]
    Alipay(String),
    #[error("the local Alipay sandbox at {url} could not register the shop: {reason}")]
    Sandbox { url: String, reason: String },
    #[error("the merchant key is unavailable: {0}")]
    MerchantKey(String),
    #[error("the write-fault hook could not be installed: {0}")]
    WriteFaults(rusqlite::Error),
    #[error("{0}")]
    Secret(String),
    #[error("the admin token is too short: give at least 24 characters")]
    AdminToken,
}

/// A shop serving on a socket.
#[derive(Debug)]
pub struct RunningShop {
    pub addr: SocketAddr,
    pub shop: Arc<Shop>,
    shutdown: Option<oneshot::Sender<()>>,
    server: tokio::task::JoinHandle<()>,
    jobs: Option<tokio::task::JoinHandle<()>>,
    job_interval: std::time::Duration,
}

impl RunningShop {
    pub fn base_url(&self) -> &Url {
        &self.shop.base_url
    }

    /// Starts the background jobs (every `ShopConfig::job_interval`) of a shop started without
    /// them (`ShopConfig::background_jobs` off), e.g. once a desktop app's first page is on
    /// screen. Nothing happens when they already run.
    pub fn start_jobs(&mut self) {
        if self.jobs.is_none() {
            self.jobs = Some(tokio::spawn(jobs::run(self.shop.clone(), self.job_interval)));
        }
    }

    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(jobs) = &self.jobs {
            jobs.abort();
            // A pass stopped half-way did not let go of the jobs' lease: let go of it here, or
            // every instance (this one restarted under a new name included) would skip its jobs
            // until the lease ran out.
            let (name, _) = leases::JOBS;
            let (store, holder) = (self.shop.store.clone(), self.shop.instance.clone());
            let released = tokio::task::spawn_blocking(move || store.release(name, &holder)).await;
            if !matches!(released, Ok(Ok(()))) {
                tracing::warn!("the background jobs' lease was not let go; it runs out on its own");
            }
        }
        let _ = (&mut self.server).await;
    }
}

/// Reads a secret (`what`: "merchant key", "content key") from where the configuration says.
fn read_key(source: &KeySource, what: &str) -> Result<SecretString, StartError> {
    match source {
        KeySource::Inline(k) => Ok(k.clone()),
        KeySource::File { path } => std::fs::read_to_string(path).map(SecretString::new).map_err(|e| {
            StartError::Secret(format!("the {what} is unavailable: cannot read {}: {e}", path.display()))
        }),
        KeySource::Keyring { service, user } => {
            let unavailable = |e: String| StartError::Secret(format!("the {what} is unavailable: {e}"));
            haitao_keyring::install().map_err(|e| unavailable(e.to_string()))?;
            let entry = keyring_core::Entry::new(service, user).map_err(|e| unavailable(e.to_string()))?;
            entry
                .get_password()
                .map(SecretString::new)
                .map_err(|e| unavailable(format!("nothing in the keyring under {service}/{user}: {e}")))
        }
    }
}

/// Builds the Alipay client configuration, registering with the local sandbox when configured so.
async fn alipay_config(
    settings: &AlipaySettings,
    base: &Url,
) -> Result<(AppConfig, bool, Option<String>), StartError> {
    match settings {
        AlipaySettings::LocalSandbox { url, app_name, cert_mode, aes, protocol } => {
            let api = url.join(sandbox_api::path::APPS).map_err(|e| StartError::Alipay(e.to_string()))?;
            let http = reqwest::Client::builder()
                .timeout(std::time::Duration::from_secs(10))
                .build()
                .map_err(|e| StartError::Alipay(e.to_string()))?;
            let sandbox_err = |reason: String| StartError::Sandbox { url: url.to_string(), reason };
            let resp = http
                .post(api)
                .json(&sandbox_api::AppRequest {
                    notify_base: Some(base.to_string()),
                    cert_mode: *cert_mode,
                    aes: *aes,
                    ..sandbox_api::AppRequest::named(app_name)
                })
                .send()
                .await
                .map_err(|e| sandbox_err(e.to_string()))?;
            if !resp.status().is_success() {
                return Err(sandbox_err(format!("HTTP {}", resp.status())));
            }
            let app: sandbox_api::AppInfo = resp.json().await.map_err(|e| sandbox_err(e.to_string()))?;
            let key_text = app.app_private_key.ok_or_else(|| {
                sandbox_err("the app has no sandbox-generated key; configure its key explicitly".into())
            })?;
            let key = PrivateKey::parse(&key_text).map_err(|e| StartError::MerchantKey(e.to_string()))?;
            let signer =
                Signer::new(key, SignType::Rsa2).map_err(|e| StartError::MerchantKey(e.to_string()))?;
            let gateway = Url::parse(&app.gateway_url).map_err(|e| StartError::Alipay(e.to_string()))?;
            let mut cfg = match &app.certificates {
                None => {
                    let alipay = PublicKey::parse(&app.alipay_public_key)
                        .map_err(|e| StartError::Alipay(e.to_string()))?;
                    AppConfig::new(app.app_id, gateway, signer, alipay)
                        .map_err(|e| StartError::Alipay(e.to_string()))?
                }
                Some(c) => {
                    let mode =
                        CertMode::new(&c.app_cert, &c.alipay_cert, &c.alipay_root_cert, signer.public_key())
                            .map_err(|e| StartError::Alipay(e.to_string()))?;
                    AppConfig::with_cert_mode(app.app_id, gateway, signer, mode)
                        .map_err(|e| StartError::Alipay(e.to_string()))?
                }
            };
            cfg.encrypt_key = match (app.aes_key, *aes) {
                (Some(k), true) => Some(AesKey::parse(&k).map_err(|e| StartError::Alipay(e.to_string()))?),
                (None, true) => return Err(sandbox_err("the sandbox gave the app no content key".into())),
                (_, false) => None,
            };
            cfg.protocol = *protocol;
            cfg.seller_id = Some(app.seller_id);
            Ok((cfg, true, Some(url.to_string())))
        }
        AlipaySettings::Gateway {
            gateway,
            app_id,
            seller_id,
            merchant_key,
            alipay_public_key,
            certificates,
            encrypt_key,
            protocol,
            legacy_rsa,
        } => {
            let text = read_key(merchant_key, "merchant key")?;
            let key = PrivateKey::parse(text.expose()).map_err(|e| StartError::MerchantKey(e.to_string()))?;
            let sign_type = if *legacy_rsa { SignType::Rsa } else { SignType::Rsa2 };
            let signer = Signer::new(key, sign_type).map_err(|e| StartError::MerchantKey(e.to_string()))?;
            let mut cfg = match (alipay_public_key, certificates) {
                (Some(k), None) => {
                    let alipay = PublicKey::parse(k).map_err(|e| StartError::Alipay(e.to_string()))?;
                    AppConfig::new(app_id.clone(), gateway.clone(), signer, alipay)
                        .map_err(|e| StartError::Alipay(e.to_string()))?
                }
                (None, Some(files)) => {
                    let read = |p: &std::path::Path| {
                        std::fs::read_to_string(p)
                            .map_err(|e| StartError::Alipay(format!("cannot read {}: {e}", p.display())))
                    };
                    let mode = CertMode::new(
                        &read(&files.app_cert)?,
                        &read(&files.alipay_cert)?,
                        &read(&files.alipay_root_cert)?,
                        signer.public_key(),
                    )
                    .map_err(|e| StartError::Alipay(e.to_string()))?;
                    AppConfig::with_cert_mode(app_id.clone(), gateway.clone(), signer, mode)
                        .map_err(|e| StartError::Alipay(e.to_string()))?
                }
                _ => {
                    return Err(StartError::Alipay(
                        "configure exactly one of alipay_public_key (public-key mode) and certificates \
                         (certificate mode)"
                            .into(),
                    ));
                }
            };
            cfg.protocol = *protocol;
            if let Some(source) = encrypt_key {
                let text = read_key(source, "content key")?;
                cfg.encrypt_key = Some(
                    AesKey::parse(text.expose())
                        .map_err(|e| StartError::Alipay(format!("encrypt_key: {e}")))?,
                );
            }
            cfg.seller_id = seller_id.clone();
            Ok((cfg, false, None))
        }
    }
}

/// Opens the configured store: PostgreSQL when `database` is set, else SQLite in `data_dir` (or
/// in memory).
async fn open_store(config: &ShopConfig) -> Result<Arc<dyn store::Store>, StartError> {
    #[cfg(not(feature = "postgres"))]
    if config.database.is_some() {
        return Err(StartError::NoPostgres);
    }
    #[cfg(feature = "postgres")]
    if let Some(pg) = config.database.clone() {
        let faults = config.write_faults.clone();
        // Connecting and migrating block; the store is used from blocking threads only.
        let store = tokio::task::spawn_blocking(move || {
            postgres::PgStore::connect(&pg.url, pg.max_connections).map(|s| s.with_write_faults(faults))
        })
        .await
        .map_err(|e| StartError::Catalog(e.to_string()))??;
        return Ok(Arc::new(store));
    }
    let conn = match &config.data_dir {
        Some(dir) => {
            // Private to the user who runs it: the folder 0700, the database (and its WAL) 0600.
            let file = dir.join("shop.sqlite3");
            haitao_files::private_dir(dir)
                .and_then(|()| haitao_files::private_database(&file))
                .map_err(|source| StartError::DataDir { path: dir.display().to_string(), source })?;
            db::open(&file)?
        }
        None => db::open_in_memory()?,
    };
    if let Some(WriteFaults(refuse)) = config.write_faults.clone() {
        conn.commit_hook(Some(move || refuse())).map_err(StartError::WriteFaults)?;
    }
    Ok(Arc::new(sqlite::SqliteStore::new(conn)))
}

/// Opens the store, seeds the catalog, binds, registers with the gateway and starts serving.
pub async fn start(config: ShopConfig) -> Result<RunningShop, StartError> {
    let store = open_store(&config).await?;
    let fx = config.fx.clone();
    let seeded = tokio::task::spawn_blocking(move || {
        let added = store.seed_catalog(&fx)?;
        if added > 0 {
            tracing::info!(products = added, "catalog seeded");
        } else {
            store.reprice(&fx)?;
        }
        Ok::<_, error::ApiError>(store)
    })
    .await
    .map_err(|e| StartError::Catalog(e.to_string()))?;
    let store = seeded.map_err(|e| StartError::Catalog(e.cause.unwrap_or(e.problem.title)))?;

    let listener = TcpListener::bind(config.addr)
        .await
        .map_err(|source| StartError::Bind { addr: config.addr, source })?;
    let addr = listener.local_addr().map_err(|source| StartError::Bind { addr: config.addr, source })?;
    let base_url = match &config.public_url {
        Some(u) => u.clone(),
        None => Url::parse(&format!("http://{addr}/")).map_err(|e| StartError::Alipay(e.to_string()))?,
    };
    let (app, sandbox, sandbox_url) = alipay_config(&config.alipay, &base_url).await?;
    let payment_config = PaymentConfig {
        app_id: app.app_id.clone(),
        seller_id: app.seller_id.clone(),
        gateway: app.gateway.to_string(),
        sign_type: app.sign_type().as_str().into(),
        alipay_public_key: app.verifier.public_key().to_base64(),
        return_page: base_url.join("api/v1/alipay/return").map(|u| u.to_string()).unwrap_or_default(),
        sandbox,
        sandbox_url,
    };
    let admin_token = match &config.admin_token {
        None => None,
        Some(source) => {
            let token = read_key(source, "admin token")?;
            let token = SecretString::new(token.expose().trim().to_owned());
            if token.expose().chars().count() < 24 {
                return Err(StartError::AdminToken);
            }
            Some(token)
        }
    };
    let inbound = InboundVerifier::from_config(&app);
    let alipay = AlipayClient::new(Arc::new(app), config.clock.clone())
        .map_err(|e| StartError::Alipay(e.to_string()))?;
    let shop = Arc::new(Shop {
        store,
        pricing: config.pricing.clone(),
        fx: parking_lot::RwLock::new(config.fx.clone()),
        customs: config.customs.clone(),
        clock: config.clock.clone(),
        ids: config.ids.clone(),
        alipay,
        inbound,
        payment_config,
        base_url,
        order_timeout: config.order_timeout,
        attempt_timeout: config.attempt_timeout,
        logistics_speed: config.logistics_speed,
        test_controls: config.test_controls,
        admin_token,
        address_limits: config.address_limits.clone(),
        wake: tokio::sync::Notify::new(),
        jobs_lock: tokio::sync::Mutex::new(()),
        instance: config.instance_name.clone().unwrap_or_else(leases::instance_name),
        payment_starts: leases::KeyedLocks::default(),
    });
    let app = api::router(shop.clone());
    let (tx, rx) = oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        let r = axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>())
            .with_graceful_shutdown(async {
                let _ = rx.await;
            })
            .await;
        if let Err(e) = r {
            tracing::error!(error = %e, "shop server stopped");
        }
    });
    let jobs = config.background_jobs.then(|| tokio::spawn(jobs::run(shop.clone(), config.job_interval)));
    tracing::info!(%addr, "shop listening");
    Ok(RunningShop { addr, shop, shutdown: Some(tx), server, jobs, job_interval: config.job_interval })
}
