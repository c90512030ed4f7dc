//! Haitao keeping itself up to date (`tauri-plugin-updater`). Update artifacts are signed with
//! Haitao's update key (minisign); its public half is built into the app
//! (`plugins.updater.pubkey`, which `make package` fills in), and a download whose signature does
//! not verify against it is refused before anything is installed. Checked quietly at start and
//! every six hours (an unreachable server is retried later without a word), and from Settings,
//! where the shopper downloads with progress and restarts to update.

use std::time::Duration;

use haitao_client::{ErrorCode, IpcError};
use serde::{Deserialize, Serialize};
use tauri::{AppHandle, Manager};
use tauri_plugin_updater::{Update, UpdaterExt};
use tauri_specta::Event;

/// Why a build does not update itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, specta::Type)]
#[serde(rename_all = "snake_case")]
pub enum UpdatesOff {
    /// Built without an update key (a build from source): it cannot tell a real update.
    NoKey,
    /// Built without an update server to ask.
    NoServer,
}

/// A newer Haitao the update server offers.
#[derive(Debug, Clone, Serialize, Deserialize, specta::Type)]
pub struct AvailableUpdate {
    pub version: String,
    pub notes: Option<String>,
    /// When it was published (RFC 3339), if the server says.
    pub published: Option<String>,
}

/// What Settings shows about updates.
#[derive(Debug, Clone, Serialize, Deserialize, specta::Type)]
pub struct UpdateStatus {
    pub current_version: String,
    pub off: Option<UpdatesOff>,
    /// The newer version found by the last check, if any.
    pub available: Option<AvailableUpdate>,
    /// That version is downloaded and its signature verified: ready to install.
    pub ready: bool,
    /// This copy came from a package the updater can replace (.deb, .rpm, AppImage, NSIS, MSI,
    /// macOS app). A build run from source cannot install an update.
    pub can_install: bool,
}

/// Download progress, pushed while an update downloads.
#[derive(Debug, Clone, Serialize, Deserialize, specta::Type, Event)]
pub struct UpdateProgressEvent {
    pub downloaded: u64,
    pub total: Option<u64>,
}

/// A newer version was found by the background check.
#[derive(Debug, Clone, Serialize, Deserialize, specta::Type, Event)]
pub struct UpdateFoundEvent {
    pub version: String,
}

/// The longest an update download may take, start to end.
const DOWNLOAD_TIME: Duration = Duration::from_secs(30 * 60);

/// The update state of the running app.
#[derive(Default)]
pub struct Updates {
    found: parking_lot::Mutex<Option<Update>>,
    downloaded: parking_lot::Mutex<Option<(String, Vec<u8>)>>,
    /// One check, download or install at a time.
    busy: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for Updates {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Updates")
            .field("found", &self.found.lock().as_ref().map(|u| u.version.clone()))
            .field("downloaded", &self.downloaded.lock().as_ref().map(|(v, b)| (v.clone(), b.len())))
            .finish_non_exhaustive()
    }
}

fn failure(code: ErrorCode, message: String) -> IpcError {
    IpcError { code, message, field: None }
}

/// The one IPC shape for the updater's errors: a signature that does not verify (or is missing,
/// or names another version) is `update_signature_invalid`; a server that cannot be reached or
/// answers nonsense is `update_server_unreachable`; the rest is `update_failed`.
fn update_error(e: tauri_plugin_updater::Error) -> IpcError {
    use tauri_plugin_updater::Error as E;
    let code = match &e {
        E::Minisign(_)
        | E::Base64(_)
        | E::SignatureUtf8(_)
        | E::SignedVersionMismatch { .. }
        | E::MissingSignedVersion => ErrorCode::UpdateSignatureInvalid,
        E::Reqwest(_) | E::Network(_) | E::ReleaseNotFound | E::Serialization(_) | E::Semver(_) => {
            ErrorCode::UpdateServerUnreachable
        }
        _ => ErrorCode::UpdateFailed,
    };
    failure(code, e.to_string())
}

/// The update key: the one built in. A debug build (a developer's, or the test suite's) also takes
/// `HAITAO_UPDATER_PUBKEY` from its environment; a release build never does.
fn pubkey(app: &AppHandle) -> Option<String> {
    #[cfg(debug_assertions)]
    if let Some(k) = std::env::var("HAITAO_UPDATER_PUBKEY").ok().filter(|k| !k.is_empty()) {
        return Some(k);
    }
    app.config()
        .plugins
        .0
        .get("updater")
        .and_then(|u| u.get("pubkey"))
        .and_then(|k| k.as_str())
        .filter(|k| !k.is_empty())
        .map(str::to_owned)
}

/// Where to ask: `HAITAO_UPDATE_URL` when set (a tester's or a mirror's server: what it offers
/// must still be signed with the built-in key), else the built-in endpoints.
fn endpoints(app: &AppHandle) -> Result<Vec<url::Url>, IpcError> {
    let configured: Vec<String> = match std::env::var("HAITAO_UPDATE_URL").ok().filter(|u| !u.is_empty()) {
        Some(u) => vec![u],
        None => app
            .config()
            .plugins
            .0
            .get("updater")
            .and_then(|u| u.get("endpoints"))
            .and_then(|e| e.as_array())
            .map(|a| a.iter().filter_map(|v| v.as_str().map(str::to_owned)).collect())
            .unwrap_or_default(),
    };
    configured
        .iter()
        .map(|u| u.parse().map_err(|e| failure(ErrorCode::UpdateFailed, format!("update server {u}: {e}"))))
        .collect()
}

/// The key and the servers this copy asks, or why it does not update itself. (A server address
/// that does not parse is an error of `check`, not a reason to say updates are off.)
fn source(app: &AppHandle) -> Result<Result<(String, Vec<url::Url>), UpdatesOff>, IpcError> {
    let Some(key) = pubkey(app) else { return Ok(Err(UpdatesOff::NoKey)) };
    let urls = endpoints(app)?;
    Ok(if urls.is_empty() { Err(UpdatesOff::NoServer) } else { Ok((key, urls)) })
}

fn can_install() -> bool {
    tauri::utils::platform::bundle_type().is_some()
}

fn status(app: &AppHandle, u: &Updates) -> UpdateStatus {
    let found = u.found.lock().clone();
    let ready = match (&found, &*u.downloaded.lock()) {
        (Some(f), Some((v, _))) => *v == f.version,
        _ => false,
    };
    UpdateStatus {
        current_version: app.package_info().version.to_string(),
        off: source(app).ok().and_then(Result::err),
        available: found.map(|f| AvailableUpdate {
            version: f.version.clone(),
            notes: f.body.clone().filter(|b| !b.trim().is_empty()),
            published: f.raw_json.get("pub_date").and_then(|d| d.as_str()).map(str::to_owned),
        }),
        ready,
        can_install: can_install(),
    }
}

/// The status without asking the server.
pub fn current(app: &AppHandle) -> Result<UpdateStatus, IpcError> {
    Ok(status(app, &app.state::<Updates>()))
}

/// Asks the update server whether a newer Haitao is published.
pub async fn check(app: &AppHandle) -> Result<UpdateStatus, IpcError> {
    let u = app.state::<Updates>();
    let _one = u.busy.lock().await;
    let Ok((key, urls)) = source(app)? else { return Ok(status(app, &u)) };
    let updater = app
        .updater_builder()
        .pubkey(key)
        .endpoints(urls)
        .and_then(|b| b.timeout(Duration::from_secs(60)).build())
        .map_err(update_error)?;
    let found = updater.check().await.map_err(update_error)?;
    match &found {
        Some(f) => tracing::info!(version = %f.version, "an update is available"),
        None => tracing::info!("Haitao is up to date"),
    }
    *u.found.lock() = found;
    Ok(status(app, &u))
}

/// Downloads the update found by the last check and verifies its signature; progress goes to
/// the UI as [`UpdateProgressEvent`]s. A download that does not verify is dropped.
pub async fn download(app: &AppHandle) -> Result<UpdateStatus, IpcError> {
    let u = app.state::<Updates>();
    let _one = u.busy.lock().await;
    let mut found = u
        .found
        .lock()
        .clone()
        .ok_or_else(|| failure(ErrorCode::InvalidState, "no update was found to download".into()))?;
    // The check's timeout does not reach the download: a server that stops sending would hold
    // every later check behind it.
    found.timeout = Some(DOWNLOAD_TIME);
    let handle = app.clone();
    let mut downloaded: u64 = 0;
    let mut last_told = std::time::Instant::now() - Duration::from_secs(1);
    let bytes = found
        .download(
            |chunk, total| {
                downloaded += chunk as u64;
                // A few updates a second are enough for a progress bar.
                if last_told.elapsed() >= Duration::from_millis(100) || total == Some(downloaded) {
                    last_told = std::time::Instant::now();
                    let _ = UpdateProgressEvent { downloaded, total }.emit(&handle);
                }
            },
            || {},
        )
        .await
        .map_err(|e| {
            let e = update_error(e);
            tracing::warn!(version = %found.version, code = ?e.code, error = %e.message, "the update download was refused");
            e
        })?;
    tracing::info!(version = %found.version, bytes = bytes.len(), "update downloaded, signature verified");
    *u.downloaded.lock() = Some((found.version.clone(), bytes));
    Ok(status(app, &u))
}

/// Installs the downloaded update (verified again) and restarts Haitao.
pub async fn install(app: &AppHandle) -> Result<(), IpcError> {
    let u = app.state::<Updates>();
    let _one = u.busy.lock().await;
    if !can_install() {
        return Err(failure(
            ErrorCode::UpdateFailed,
            "this copy of Haitao runs from a source build; install the update from its package".into(),
        ));
    }
    let found = u.found.lock().clone();
    let bytes = u.downloaded.lock().take();
    let (Some(found), Some((version, bytes))) = (found, bytes) else {
        return Err(failure(ErrorCode::InvalidState, "no verified update is ready".into()));
    };
    if version != found.version {
        return Err(failure(ErrorCode::InvalidState, "the downloaded update is not the one found".into()));
    }
    tracing::info!(version = %found.version, "installing the update");
    let (installed, bytes) = tauri::async_runtime::spawn_blocking(move || {
        let r = found.install(&bytes);
        (r, bytes)
    })
    .await
    .map_err(|e| failure(ErrorCode::Internal, e.to_string()))?;
    if let Err(e) = installed {
        // Still downloaded and verified: "restart to update" can be tried again.
        *u.downloaded.lock() = Some((version, bytes));
        let e = update_error(e);
        tracing::warn!(code = ?e.code, error = %e.message, "the update could not be installed");
        return Err(e);
    }
    tracing::info!("update installed; restarting");
    restart(app)
}

/// The argument of the launch that follows an update: it waits for this one to let go of the data
/// folder instead of handing itself over to it (which would leave no Haitao running). An argument,
/// not an environment variable, so that nothing Haitao starts later inherits it.
pub const AFTER_UPDATE_ARG: &str = "--after-update";

/// Starts the updated Haitao (the same program path, the same arguments) and leaves.
fn restart(app: &AppHandle) -> Result<(), IpcError> {
    let env = app.env();
    let exe =
        tauri::process::current_binary(&env).map_err(|e| failure(ErrorCode::UpdateFailed, e.to_string()))?;
    std::process::Command::new(&exe)
        .args(env.args_os.iter().skip(1).filter(|a| *a != AFTER_UPDATE_ARG))
        .arg(AFTER_UPDATE_ARG)
        .spawn()
        .map_err(|e| {
            failure(ErrorCode::UpdateFailed, format!("the update is installed; start Haitao again ({e})"))
        })?;
    app.exit(0);
    Ok(())
}

/// The quiet background check: at start (after the app has settled) and every six hours. A
/// server that cannot be reached is tried again in half an hour, with no message; a newer
/// version is told to the UI once per version.
pub async fn background(app: AppHandle) {
    tokio::time::sleep(Duration::from_secs(5)).await;
    let mut told: Option<String> = None;
    loop {
        let wait = match check(&app).await {
            Ok(s) => {
                if let Some(a) = s.available
                    && told.as_deref() != Some(a.version.as_str())
                {
                    let _ = UpdateFoundEvent { version: a.version.clone() }.emit(&app);
                    told = Some(a.version);
                }
                if s.off.is_some() {
                    return;
                }
                Duration::from_secs(6 * 3600)
            }
            Err(e) => {
                tracing::info!(error = %e.message, "update check failed; trying again later");
                Duration::from_secs(30 * 60)
            }
        };
        tokio::time::sleep(wait).await;
    }
}
