//! Saving a file the shopper asked for (an e-receipt, a tester's trace): a save dialog opened in
//! the user's Downloads folder (Documents, then home, when there is none), the file written
//! private to the user, and afterwards "Open" and "Show in folder" for exactly the files saved
//! this way in this run.
//!
//! For automated runs without a person at the dialog, `HAITAO_SAVE_DIR` answers it: the file is
//! saved there under its suggested name. Nothing else skips the dialog.
//!
//! Opening a file the tester picks (a trace to replay) works the same way: an open dialog, or
//! `HAITAO_OPEN_FILE` naming the file for automated runs.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use haitao_client::{ErrorCode, IpcError};
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use tauri::{AppHandle, Manager};
use tauri_plugin_dialog::DialogExt;
use tauri_plugin_opener::OpenerExt;

/// What kind of file is saved: names the dialog's filter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Pdf,
    Json,
}

/// A file saved for the shopper.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, specta::Type)]
pub struct SavedFile {
    pub path: String,
    /// The folder it is in, for "Show in folder".
    pub folder: String,
}

/// The files saved this run: the only ones "Open" and "Show in folder" act on.
#[derive(Debug, Default)]
pub struct Saved(Mutex<HashSet<PathBuf>>);

fn internal(e: impl ToString) -> IpcError {
    IpcError { code: ErrorCode::Internal, message: e.to_string(), field: None }
}

/// Where the dialog starts: the user's Downloads folder (XDG `user-dirs` on Linux), else
/// Documents, else home.
fn start_dir(app: &AppHandle) -> Option<PathBuf> {
    let p = app.path();
    [p.download_dir(), p.document_dir(), p.home_dir()].into_iter().flatten().find(|d| d.is_dir())
}

/// A file name made of letters, digits and `.-_` only.
pub fn safe_name(name: &str) -> String {
    name.chars().map(|c| if c.is_ascii_alphanumeric() || ".-_".contains(c) { c } else { '_' }).collect()
}

/// Asks where to save `name` and writes `bytes` there; `None` when the shopper cancels. The
/// dialog's title is in the app's `language`.
pub async fn save_as(
    app: &AppHandle,
    name: &str,
    kind: Kind,
    language: &str,
    bytes: &[u8],
) -> Result<Option<SavedFile>, IpcError> {
    let name = safe_name(name);
    let path = match std::env::var_os("HAITAO_SAVE_DIR") {
        Some(dir) => Some(PathBuf::from(dir).join(&name)),
        None => ask(app, &name, kind, language == "en").await?,
    };
    let Some(path) = path else { return Ok(None) };
    haitao_files::write_private(&path, bytes).map_err(|e| internal(format!("{}: {e}", path.display())))?;
    tracing::info!(path = %path.display(), "file saved");
    let folder = path.parent().map(Path::to_path_buf).unwrap_or_default();
    app.state::<Saved>().0.lock().insert(path.clone());
    Ok(Some(SavedFile { path: path.display().to_string(), folder: folder.display().to_string() }))
}

async fn ask(app: &AppHandle, name: &str, kind: Kind, en: bool) -> Result<Option<PathBuf>, IpcError> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    let title = match (kind, en) {
        (Kind::Pdf, false) => "保存电子税单",
        (Kind::Pdf, true) => "Save the e-receipt",
        (Kind::Json, false) => "保存支付追踪记录",
        (Kind::Json, true) => "Save the payment trace",
    };
    let mut dialog = app.dialog().file().set_file_name(name).set_title(title);
    dialog = match kind {
        Kind::Pdf => dialog.add_filter("PDF", &["pdf"]),
        Kind::Json => dialog.add_filter("JSON", &["json"]),
    };
    // In front of the app's window, which it belongs to.
    if let Some(main) = app.get_webview_window("main") {
        dialog = dialog.set_parent(&main);
    }
    if let Some(dir) = start_dir(app) {
        dialog = dialog.set_directory(dir);
    }
    dialog.save_file(move |p| {
        let _ = tx.send(p);
    });
    let chosen = rx.await.map_err(internal)?;
    chosen.map(|p| p.into_path().map_err(internal)).transpose()
}

/// Asks for a JSON file to open (titled in the app's `language`) and reads it, refusing one larger
/// than `limit` bytes; `None` when the tester cancels.
pub async fn open_json(app: &AppHandle, language: &str, limit: u64) -> Result<Option<Vec<u8>>, IpcError> {
    let path = match std::env::var_os("HAITAO_OPEN_FILE") {
        Some(p) => Some(PathBuf::from(p)),
        None => {
            let (tx, rx) = tokio::sync::oneshot::channel();
            let title = if language == "en" { "Replay a payment trace" } else { "回放支付追踪记录" };
            let mut dialog = app.dialog().file().set_title(title).add_filter("JSON", &["json"]);
            if let Some(main) = app.get_webview_window("main") {
                dialog = dialog.set_parent(&main);
            }
            if let Some(dir) = start_dir(app) {
                dialog = dialog.set_directory(dir);
            }
            dialog.pick_file(move |p| {
                let _ = tx.send(p);
            });
            rx.await.map_err(internal)?.map(|p| p.into_path().map_err(internal)).transpose()?
        }
    };
    let Some(path) = path else { return Ok(None) };
    // Read off the async runtime, and never more than `limit` bytes whatever the file claims (it
    // may grow, or be a pipe).
    let read = tokio::task::spawn_blocking(move || {
        use std::io::Read as _;
        let unreadable = |e: std::io::Error| IpcError {
            code: ErrorCode::Validation,
            message: format!("{} cannot be read: {e}", path.display()),
            field: None,
        };
        let mut bytes = Vec::new();
        std::fs::File::open(&path)
            .and_then(|f| f.take(limit.saturating_add(1)).read_to_end(&mut bytes))
            .map_err(unreadable)?;
        if u64::try_from(bytes.len()).unwrap_or(u64::MAX) > limit {
            return Err(IpcError {
                code: ErrorCode::Validation,
                message: format!("{} is larger than {limit} bytes", path.display()),
                field: None,
            });
        }
        Ok(bytes)
    });
    read.await.map_err(internal)?.map(Some)
}

fn saved_path(app: &AppHandle, path: &str) -> Result<PathBuf, IpcError> {
    let p = PathBuf::from(path);
    if app.state::<Saved>().0.lock().contains(&p) {
        Ok(p)
    } else {
        Err(IpcError {
            code: ErrorCode::Validation,
            message: "only a file saved by Haitao in this run can be opened from here".into(),
            field: Some("path".into()),
        })
    }
}

/// Opens a saved file with the system's default application.
pub fn open(app: &AppHandle, path: &str) -> Result<(), IpcError> {
    let p = saved_path(app, path)?;
    app.opener().open_path(p.display().to_string(), None::<&str>).map_err(internal)
}

/// Shows a saved file in the system's file manager.
pub fn reveal(app: &AppHandle, path: &str) -> Result<(), IpcError> {
    let p = saved_path(app, path)?;
    app.opener().reveal_item_in_dir(p).map_err(internal)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_keep_only_safe_characters() {
        assert_eq!(safe_name("haitao-invoice-HO1.pdf"), "haitao-invoice-HO1.pdf");
        assert_eq!(safe_name("../../etc/passwd"), ".._.._etc_passwd");
        assert_eq!(safe_name("订单 1.pdf"), "___1.pdf");
    }
}
