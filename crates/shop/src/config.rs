//! Shop configuration: where it listens, where its data lives, which Alipay gateway it pays through
//! and with which keys, and the pricing rules.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use haitao_alipay::Protocol;
use haitao_alipay::ids::{IdGen, RandomIds};
use haitao_alipay::time::{Clock, OffsetClock};
use haitao_shop_api::secret::SecretString;
use serde::Deserialize;
use url::Url;

use crate::limits::AddressLimits;
use crate::pricing::{FxRates, PricingConfig};

/// Where the merchant's private key comes from. It is never written anywhere by the shop.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "from", rename_all = "snake_case")]
pub enum KeySource {
    /// A PEM or base64 file the operator manages.
    File { path: PathBuf },
    /// The OS keyring (`haitao-keyring`: Secret Service, Credential Manager or Keychain), under
    /// `service` / `user`.
    Keyring { service: String, user: String },
    /// Given in memory (the embedded demo receives a sandbox-generated test key this way).
    #[serde(skip)]
    Inline(SecretString),
}

/// Which Alipay gateway to use.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum AlipaySettings {
    /// Haitao's local sandbox: the shop registers (or finds) its app through the sandbox's tester
    /// API, which generates a demo key pair for it (and, when asked, puts the app in certificate
    /// mode and gives it a content key).
    LocalSandbox {
        url: Url,
        app_name: String,
        #[serde(default)]
        cert_mode: bool,
        #[serde(default)]
        aes: bool,
        #[serde(default)]
        protocol: Protocol,
    },
    /// Alipay itself (production or Alipay's own sandbox), or any compatible gateway.
    Gateway {
        gateway: Url,
        app_id: String,
        #[serde(default)]
        seller_id: Option<String>,
        merchant_key: KeySource,
        /// Public-key mode: Alipay's public key (PEM or the console's base64).
        #[serde(default)]
        alipay_public_key: Option<String>,
        /// Public-key certificate mode: the three certificate files from the console. Exactly one
        /// of `alipay_public_key` and `certificates` is given.
        #[serde(default)]
        certificates: Option<Box<CertificateFiles>>,
        /// Content encryption (`encrypt_type=AES`): the app's AES key, from the keyring or a file,
        /// like the merchant key.
        #[serde(default)]
        encrypt_key: Option<KeySource>,
        /// `gateway` (OpenAPI v2, the default) or `v3` for the API calls; the cashier page is
        /// `gateway.do` in both.
        #[serde(default)]
        protocol: Protocol,
        #[serde(default)]
        legacy_rsa: bool,
    },
}

/// The certificate files of an app in public-key certificate mode, as the console names them.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CertificateFiles {
    /// appCertPublicKey_<app_id>.crt
    pub app_cert: PathBuf,
    /// alipayCertPublicKey_RSA2.crt
    pub alipay_cert: PathBuf,
    /// alipayRootCert.crt
    pub alipay_root_cert: PathBuf,
}

/// Merchant details used for customs declarations.
#[derive(Debug, Clone, Deserialize)]
pub struct CustomsSettings {
    pub merchant_customs_code: String,
    pub merchant_customs_name: String,
    pub customs_place: String,
}

impl Default for CustomsSettings {
    fn default() -> Self {
        CustomsSettings {
            merchant_customs_code: "3301960HT1".into(),
            merchant_customs_name: "海淘跨境电子商务有限公司".into(),
            customs_place: "HANGZHOU".into(),
        }
    }
}

/// Everything the shop needs to run.
#[derive(Debug, Clone)]
pub struct ShopConfig {
    /// Where the SQLite database lives (`shop.sqlite3` in it); `None`: in memory (tests).
    /// Not used when `database` is set.
    pub data_dir: Option<PathBuf>,
    /// A PostgreSQL database instead of SQLite (`postgres://user:password@host/db`): what a shop
    /// of several instances shares (docs/shop.md). `None`: SQLite, the embedded default.
    pub database: Option<PostgresSettings>,
    pub addr: SocketAddr,
    /// The URL browsers and Alipay use to reach the shop (default `http://<bound address>/`).
    pub public_url: Option<Url>,
    pub alipay: AlipaySettings,
    pub customs: CustomsSettings,
    pub pricing: PricingConfig,
    pub fx: FxRates,
    pub clock: Arc<dyn Clock>,
    pub ids: Arc<dyn IdGen>,
    /// How long an unpaid order waits.
    pub order_timeout: chrono::Duration,
    /// How long one payment attempt's cashier stays valid.
    pub attempt_timeout: chrono::Duration,
    /// Logistics runs this many times faster than real time (60: a tracking hour per minute).
    pub logistics_speed: i64,
    /// Enables `/api/v1/test/*` (clock, background jobs, forced customs outcomes): for tests only,
    /// off unless asked for. Anyone who can reach the shop could otherwise move its clock past
    /// every sign-in lockout and limit window.
    pub test_controls: bool,
    /// The merchant's admin token (`/api/v1/admin/*`, e.g. the daily reconciliation), at least
    /// 24 characters; `None` (the default) leaves those endpoints off.
    pub admin_token: Option<KeySource>,
    /// How often background jobs run.
    pub job_interval: std::time::Duration,
    /// Per-address limits on sign-in failures and registrations. Off for the shop embedded in the
    /// desktop app, which serves its one user over loopback; on by default for `haitao-shop serve`.
    pub address_limits: Option<AddressLimits>,
    /// Runs the background jobs on their own loop. Off when a driver runs them itself
    /// ([`crate::jobs::run_once`]), as the deterministic simulation does.
    pub background_jobs: bool,
    /// This instance's name in the leases it takes (see `crate::leases`); `None`: a new random
    /// name each start. A shop restarted under the same name takes back at once the leases it
    /// could not let go of; two instances running at once must never share one.
    pub instance_name: Option<String>,
    /// Consulted before every commit of the shop's database; `true` rolls that write back (a
    /// failed disk, or a process that stopped before the write). Only the simulation sets it.
    pub write_faults: Option<WriteFaults>,
}

/// The shop's PostgreSQL database.
#[derive(Clone)]
pub struct PostgresSettings {
    /// `postgres://user:password@host:port/database` (also key=value form).
    pub url: String,
    /// Connections this instance keeps at most.
    pub max_connections: u32,
}

impl PostgresSettings {
    pub fn new(url: impl Into<String>) -> Self {
        PostgresSettings { url: url.into(), max_connections: 16 }
    }
}

impl std::fmt::Debug for PostgresSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The URL may hold the password.
        f.debug_struct("PostgresSettings")
            .field("url", &display_target(&self.url))
            .field("max_connections", &self.max_connections)
            .finish()
    }
}

/// Where `url` points, without its password: for logs and errors.
pub fn display_target(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) => {
            if u.password().is_some() {
                let _ = u.set_password(Some("***"));
            }
            // A password may also come as a parameter (`?password=…`).
            if u.query_pairs().any(|(k, _)| k == "password") {
                let pairs: Vec<(String, String)> = u
                    .query_pairs()
                    .map(|(k, v)| {
                        let v = if k == "password" { "***".to_owned() } else { v.into_owned() };
                        (k.into_owned(), v)
                    })
                    .collect();
                u.query_pairs_mut().clear().extend_pairs(pairs);
            }
            u.to_string()
        }
        Err(_) => "(the configured database)".to_owned(),
    }
}

/// A decision made before each database commit: `true` refuses (rolls back) that write.
#[derive(Clone)]
pub struct WriteFaults(pub Arc<dyn Fn() -> bool + Send + Sync>);

impl std::fmt::Debug for WriteFaults {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WriteFaults")
    }
}

impl ShopConfig {
    /// Defaults for a shop against Haitao's local sandbox.
    pub fn local(data_dir: Option<PathBuf>, addr: SocketAddr, sandbox: Url) -> Self {
        ShopConfig {
            data_dir,
            database: None,
            addr,
            public_url: None,
            alipay: AlipaySettings::LocalSandbox {
                url: sandbox,
                app_name: "Haitao 海淘".into(),
                cert_mode: false,
                aes: false,
                protocol: Protocol::Gateway,
            },
            customs: CustomsSettings::default(),
            pricing: PricingConfig::default(),
            fx: FxRates::demo(),
            clock: Arc::new(OffsetClock::default()),
            ids: Arc::new(RandomIds),
            order_timeout: chrono::Duration::minutes(30),
            attempt_timeout: chrono::Duration::minutes(15),
            logistics_speed: 60,
            test_controls: false,
            admin_token: None,
            job_interval: std::time::Duration::from_secs(1),
            address_limits: None,
            background_jobs: true,
            write_faults: None,
            instance_name: None,
        }
    }
}
