//! The app's state: settings, the client once it is ready, and the built-in services.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use haitao_client::{
    Cache, Client, ErrorCode, IpcError, KeyringStore, SecretStore, ShopApi, UnavailableStore,
};
use parking_lot::RwLock;
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use crate::commands::AppInfo;

/// The app identifier, used to namespace keyring entries.
pub const APP_ID: &str = "com.haitao.desktop";

/// User preferences (not secrets), kept in `settings.json` in the app's config directory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, specta::Type)]
pub struct Settings {
    /// `zh-CN` (default) or `en`.
    pub language: String,
    /// `system`, `light` or `dark`.
    pub theme: String,
    /// Shows the tester panel beside checkout.
    pub tester_mode: bool,
    /// A remote shop; `null` runs the built-in shop and Alipay sandbox.
    pub shop_url: Option<String>,
    /// Desktop notifications of order changes (payment confirmed, customs hold, shipped,
    /// delivered, refunded) while Haitao's window is not in front. On unless turned off; a
    /// settings file from before this setting existed reads as on.
    #[serde(default = "on")]
    pub notifications: bool,
}

fn on() -> bool {
    true
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            language: "zh-CN".into(),
            theme: "system".into(),
            tester_mode: true,
            shop_url: None,
            notifications: true,
        }
    }
}

/// Online/offline changes, pushed to the UI.
#[derive(Debug, Clone, Serialize, Deserialize, specta::Type, tauri_specta::Event)]
pub struct ConnectivityEvent {
    pub online: bool,
    /// Payments reconciled after reconnecting.
    pub reconciled: u32,
}

type Ready = Option<Result<Arc<Client>, IpcError>>;

#[derive(Debug)]
pub struct AppState {
    pub data_dir: PathBuf,
    pub log_dir: PathBuf,
    settings_path: PathBuf,
    settings: RwLock<Settings>,
    ready_tx: watch::Sender<Ready>,
    ready_rx: watch::Receiver<Ready>,
    pub keyring: RwLock<String>,
    pub shop_url: RwLock<String>,
    pub embedded: RwLock<Option<crate::embedded::Embedded>>,
    /// Another launch holds the data folder and did not answer: nothing may start on it.
    held_elsewhere: Option<String>,
}

pub fn startup_error(message: impl Into<String>) -> IpcError {
    IpcError { code: ErrorCode::StartupFailed, message: message.into(), field: None }
}

impl AppState {
    pub fn new(
        data_dir: PathBuf,
        config_dir: &Path,
        log_dir: PathBuf,
        held_elsewhere: Option<String>,
    ) -> Self {
        let settings_path = config_dir.join("settings.json");
        let settings = std::fs::read_to_string(&settings_path)
            .ok()
            .and_then(|t| serde_json::from_str::<Settings>(&t).ok())
            .unwrap_or_default();
        let (ready_tx, ready_rx) = watch::channel(None);
        AppState {
            data_dir,
            log_dir,
            settings_path,
            settings: RwLock::new(settings),
            ready_tx,
            ready_rx,
            keyring: RwLock::new(String::new()),
            shop_url: RwLock::new(String::new()),
            embedded: RwLock::new(None),
            held_elsewhere,
        }
    }

    pub fn settings(&self) -> Settings {
        self.settings.read().clone()
    }

    pub fn save_settings(&self, s: Settings) -> Result<Settings, IpcError> {
        let invalid = |field: &str, message: &str| IpcError {
            code: ErrorCode::Validation,
            message: message.into(),
            field: Some(field.into()),
        };
        if !matches!(s.language.as_str(), "zh-CN" | "en") {
            return Err(invalid("language", "zh-CN or en"));
        }
        if !matches!(s.theme.as_str(), "system" | "light" | "dark") {
            return Err(invalid("theme", "system, light or dark"));
        }
        if let Some(u) = &s.shop_url {
            let ok = url::Url::parse(u).is_ok_and(|u| haitao_client::api::shop_address_allowed(&u));
            if !ok {
                return Err(invalid(
                    "shop_url",
                    "an https:// address such as https://shop.example.com/ (http:// only for a shop on this machine)",
                ));
            }
        }
        if let Some(dir) = self.settings_path.parent() {
            haitao_files::private_dir(dir).map_err(|e| startup_error(e.to_string()))?;
        }
        let text = serde_json::to_string_pretty(&s).map_err(|e| startup_error(e.to_string()))?;
        haitao_files::write_private(&self.settings_path, text.as_bytes()).map_err(|e| IpcError {
            code: ErrorCode::Internal,
            message: e.to_string(),
            field: None,
        })?;
        *self.settings.write() = s.clone();
        Ok(s)
    }

    /// The client, once start-up finished (waits for it), or why start-up failed.
    pub async fn client(&self) -> Result<Arc<Client>, IpcError> {
        let mut rx = self.ready_rx.clone();
        loop {
            if let Some(r) = rx.borrow().clone() {
                return r;
            }
            if rx.changed().await.is_err() {
                return Err(startup_error("the app is shutting down"));
            }
        }
    }

    pub fn ready(&self) -> Option<Arc<Client>> {
        self.ready_rx.borrow().clone().and_then(Result::ok)
    }

    fn publish(&self, r: Result<Arc<Client>, IpcError>) {
        let _ = self.ready_tx.send(Some(r));
    }

    pub async fn info(&self) -> Result<AppInfo, IpcError> {
        let _ = self.client().await;
        Ok(AppInfo {
            version: env!("CARGO_PKG_VERSION").into(),
            embedded: self.embedded.read().is_some(),
            shop_url: self.shop_url.read().clone(),
            data_dir: self.data_dir.display().to_string(),
            log_dir: self.log_dir.display().to_string(),
            keyring: self.keyring.read().clone(),
        })
    }

    /// Starts the built-in services (or connects to the configured shop) and builds the client.
    pub async fn start(&self) {
        match self.start_inner().await {
            Ok(c) => self.publish(Ok(c)),
            Err(e) => {
                tracing::error!(code = ?e.code, message = %e.message, "start-up failed");
                self.publish(Err(e));
            }
        }
    }

    async fn start_inner(&self) -> Result<Arc<Client>, IpcError> {
        if let Some(why) = &self.held_elsewhere {
            return Err(startup_error(why.clone()));
        }
        let configured = std::env::var("HAITAO_SHOP_URL").ok().or_else(|| self.settings().shop_url);
        // The data folder holds the order cache (and the built-in shop): private to this user.
        haitao_files::private_dir(&self.data_dir).map_err(|e| IpcError {
            code: ErrorCode::DataDirUnwritable,
            message: format!("the data folder {} cannot be created: {e}", self.data_dir.display()),
            field: None,
        })?;
        // An existing folder can still be read-only: find out now, not at the first order.
        let probe = self.data_dir.join(".write-test");
        std::fs::write(&probe, b"ok").and_then(|()| std::fs::remove_file(&probe)).map_err(|e| IpcError {
            code: ErrorCode::DataDirUnwritable,
            message: format!("the data folder {} is not writable: {e}", self.data_dir.display()),
            field: None,
        })?;
        let remote = match configured {
            Some(u) => Some(
                url::Url::parse(&u)
                    .map_err(|e| startup_error(format!("the shop address {u} is invalid: {e}")))?,
            ),
            None => None,
        };
        let (namespace, cache_name) = match &remote {
            Some(url) => {
                let origin = url.origin().ascii_serialization();
                let digest = origin_key(&origin);
                (origin, format!("cache-{digest}.sqlite3"))
            }
            // The built-in shop's accounts live in this data folder, so its keyring entries are
            // namespaced by the folder too: another profile (another HOME or HAITAO_DATA_DIR)
            // never picks up a token its shop has never issued.
            None => (
                format!("embedded-{}", origin_key(&self.data_dir.display().to_string())),
                "cache-embedded.sqlite3".to_owned(),
            ),
        };
        // The order cache and the keyring do not depend on the shop: they open on blocking threads
        // while the built-in shop starts, so the first catalog page waits for the slowest of them,
        // not for their sum.
        let cache_path = self.data_dir.join(cache_name);
        let cache = tokio::task::spawn_blocking(move || Cache::open(&cache_path));
        let ns = haitao_client::secrets::namespace(APP_ID, &namespace);
        let keyring = tokio::task::spawn_blocking(move || KeyringStore::connect(ns));
        let shop_url = match remote {
            Some(url) => url,
            None => {
                let emb = crate::embedded::start(&self.data_dir).await?;
                let url = emb.shop_url();
                *self.embedded.write() = Some(emb);
                url
            }
        };
        *self.shop_url.write() = shop_url.to_string();
        let cache = cache
            .await
            .map_err(|e| startup_error(e.to_string()))?
            .map_err(|e| IpcError::from(haitao_client::ClientError::from(e)))?;
        let secrets: Arc<dyn SecretStore> = match keyring.await {
            Ok(Ok(k)) => {
                *self.keyring.write() = k.kind().to_owned();
                Arc::new(k)
            }
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "the OS keyring is unavailable; sessions will not be remembered");
                *self.keyring.write() = format!("unavailable: {e}");
                Arc::new(UnavailableStore(e.to_string()))
            }
            Err(e) => return Err(startup_error(e.to_string())),
        };
        let api = ShopApi::new(shop_url).map_err(IpcError::from)?;
        Ok(Arc::new(Client::new(api, cache, secrets)))
    }
}

fn origin_key(s: &str) -> String {
    // A short, stable file name for a shop origin (not a security measure).
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in s.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{h:016x}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_settings_file_from_before_notifications_keeps_its_choices_and_reads_them_as_on() {
        let old = r#"{"language":"en","theme":"dark","tester_mode":false,"shop_url":null}"#;
        let s: Settings = serde_json::from_str(old).unwrap();
        assert_eq!((s.language.as_str(), s.theme.as_str(), s.tester_mode), ("en", "dark", false));
        assert!(s.notifications);
        let off: Settings = serde_json::from_str(&old.replace('}', r#","notifications":false}"#)).unwrap();
        assert!(!off.notifications);
    }
}
