//! `haitao://` links: how a payment opened in the system browser comes back into the app.
//!
//! Alipay returns the buyer to an http(s) address only, so such a payment returns to the shop's
//! return page, which hands Alipay's signed query on as `haitao://alipay/return?<query>`
//! ([`haitao_shop_api::APP_RETURN_LINK`]). The system starts the app with that link (a running
//! app hears it through the single-instance hand-over). Any web page can open a `haitao://` link,
//! so nothing in one is trusted: it names which of this install's browser payments to check, and
//! that payment is checked exactly like a return in the payment window.
//!
//! Without a registered handler (a build run from source, a system without `xdg-mime`) the app
//! keeps using a one-shot loopback listener ([`crate::redirect::Loopback`]).

use std::ffi::OsStr;
use std::path::{Path, PathBuf};

use url::Url;

use crate::ClientError;

/// The scheme Haitao registers with the system.
pub const SCHEME: &str = "haitao";

/// A payment-return link, taken apart: Alipay's query as it came, and the one trade it names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentReturnLink {
    pub link: String,
    pub query: String,
    pub out_trade_no: String,
}

/// Reads a `haitao://alipay/return?…` link. Anything else (another host or path, user-info, a
/// port, no query, no or several `out_trade_no`) is refused with what is wrong.
pub fn payment_return(link: &str) -> Result<PaymentReturnLink, ClientError> {
    let invalid = |why: &str| ClientError::Invalid(format!("not a Haitao payment-return link: {why}"));
    let expected =
        Url::parse(haitao_shop_api::APP_RETURN_LINK).map_err(|e| ClientError::Internal(e.to_string()))?;
    let u = Url::parse(link).map_err(|e| invalid(&e.to_string()))?;
    if u.scheme() != expected.scheme()
        || u.host_str() != expected.host_str()
        || u.path() != expected.path()
        || u.port().is_some()
        || !u.username().is_empty()
        || u.password().is_some()
    {
        return Err(invalid("another address"));
    }
    let query = u.query().filter(|q| !q.is_empty()).ok_or_else(|| invalid("it carries no result"))?;
    let trades: Vec<String> = url::form_urlencoded::parse(query.as_bytes())
        .filter(|(k, _)| k == "out_trade_no")
        .map(|(_, v)| v.into_owned())
        .collect();
    match trades.as_slice() {
        [one] if !one.is_empty() => {
            Ok(PaymentReturnLink { link: u.to_string(), query: query.to_owned(), out_trade_no: one.clone() })
        }
        _ => Err(invalid("it names no single payment")),
    }
}

/// The program a desktop entry's `Exec` key starts (its `[Desktop Entry]` group only): the first
/// word, or the first quoted string, without field codes.
pub fn desktop_entry_program(entry: &str) -> Option<String> {
    let mut in_main = false;
    for line in entry.lines().map(str::trim) {
        if line.starts_with('[') {
            in_main = line == "[Desktop Entry]";
            continue;
        }
        let Some(value) = line.strip_prefix("Exec").map(str::trim_start).and_then(|l| l.strip_prefix('='))
        else {
            continue;
        };
        if !in_main {
            continue;
        }
        let value = value.trim();
        let program = if let Some(rest) = value.strip_prefix('"') {
            let mut out = String::new();
            let mut chars = rest.chars();
            loop {
                match chars.next()? {
                    '"' => break,
                    '\\' => out.push(chars.next()?),
                    c => out.push(c),
                }
            }
            out
        } else {
            value.split_whitespace().next()?.to_owned()
        };
        return (!program.is_empty()).then_some(program);
    }
    None
}

/// Whether `program` (as a desktop entry names it: a path, or a name looked up in `path_var`)
/// is the executable `exe`.
pub fn program_is(program: &str, exe: &Path, path_var: Option<&OsStr>) -> bool {
    let found = if program.contains('/') {
        Some(PathBuf::from(program))
    } else {
        path_var.and_then(|p| std::env::split_paths(p).map(|d| d.join(program)).find(|c| c.is_file()))
    };
    match (found.and_then(|f| f.canonicalize().ok()), exe.canonicalize().ok()) {
        (Some(a), Some(b)) => a == b,
        _ => false,
    }
}

/// Where a desktop entry id is found: `$XDG_DATA_HOME/applications`, then each of
/// `$XDG_DATA_DIRS` (the XDG defaults when unset).
pub fn desktop_entry_path(
    id: &str,
    data_home: Option<PathBuf>,
    data_dirs: Option<&OsStr>,
) -> Option<PathBuf> {
    if id.contains('/') || id.is_empty() {
        return None;
    }
    let home = data_home.or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share")));
    let dirs: Vec<PathBuf> = match data_dirs.filter(|d| !d.is_empty()) {
        Some(d) => std::env::split_paths(d).collect(),
        None => vec![PathBuf::from("/usr/local/share"), PathBuf::from("/usr/share")],
    };
    home.into_iter().chain(dirs).map(|d| d.join("applications").join(id)).find(|p| p.is_file())
}

/// Whether the system sends `haitao://` links to this very executable (Linux: the default
/// `x-scheme-handler/haitao` entry by `xdg-mime` starts `exe`). `false` when `xdg-mime` is
/// missing or names another program: the caller then uses the loopback listener.
#[cfg(target_os = "linux")]
pub fn registered_on_linux(exe: &Path) -> bool {
    let out = match std::process::Command::new("xdg-mime")
        .args(["query", "default", &format!("x-scheme-handler/{SCHEME}")])
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .output()
    {
        Ok(o) if o.status.success() => o,
        Ok(_) => return false,
        Err(e) => {
            tracing::info!(error = %e, "xdg-mime is not available: payments in the browser return through a loopback listener");
            return false;
        }
    };
    let text = String::from_utf8_lossy(&out.stdout);
    let Some(id) = text.lines().next().map(str::trim) else { return false };
    let data_home = std::env::var_os("XDG_DATA_HOME").filter(|v| !v.is_empty()).map(PathBuf::from);
    let Some(entry) = desktop_entry_path(id, data_home, std::env::var_os("XDG_DATA_DIRS").as_deref()) else {
        return false;
    };
    let Ok(text) = std::fs::read_to_string(&entry) else { return false };
    desktop_entry_program(&text).is_some_and(|p| program_is(&p, exe, std::env::var_os("PATH").as_deref()))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn a_return_link_names_one_trade() {
        let l =
            payment_return("haitao://alipay/return?out_trade_no=HT1&total_amount=1.00&sign=a%2Bb").unwrap();
        assert_eq!(l.out_trade_no, "HT1");
        assert_eq!(l.query, "out_trade_no=HT1&total_amount=1.00&sign=a%2Bb");
        for bad in [
            "haitao://alipay/return",
            "haitao://alipay/return?",
            "haitao://alipay/return?total_amount=1.00",
            "haitao://alipay/return?out_trade_no=",
            "haitao://alipay/return?out_trade_no=HT1&out_trade_no=HT2",
            "haitao://alipay/returnx?out_trade_no=HT1",
            "haitao://alipay/return/?out_trade_no=HT1",
            "haitao://evil/return?out_trade_no=HT1",
            "haitao://alipay:99/return?out_trade_no=HT1",
            "haitao://x@alipay/return?out_trade_no=HT1",
            "https://alipay/return?out_trade_no=HT1",
            "haitaox://alipay/return?out_trade_no=HT1",
            "not a link",
        ] {
            assert!(matches!(payment_return(bad), Err(ClientError::Invalid(_))), "{bad}");
        }
    }

    #[test]
    fn the_program_of_a_desktop_entry() {
        let entry = "[Desktop Entry]\nName=Haitao\nExec=haitao %u\nMimeType=x-scheme-handler/haitao;\n";
        assert_eq!(desktop_entry_program(entry).as_deref(), Some("haitao"));
        let quoted = "[Desktop Entry]\nExec=\"/opt/Hai tao/haitao\" %u\n";
        assert_eq!(desktop_entry_program(quoted).as_deref(), Some("/opt/Hai tao/haitao"));
        // An action's Exec is not the entry's.
        let action = "[Desktop Action new]\nExec=other\n[Desktop Entry]\nExec = /usr/bin/haitao\n";
        assert_eq!(desktop_entry_program(action).as_deref(), Some("/usr/bin/haitao"));
        assert_eq!(desktop_entry_program("[Desktop Entry]\nName=x\n"), None);
        assert_eq!(desktop_entry_program("[Desktop Entry]\nExecutable=x\n"), None);
        assert_eq!(desktop_entry_program("[Desktop Entry]\nExec=\"unterminated\n"), None);
    }

    #[test]
    fn a_program_is_found_by_path_or_on_path() {
        let dir = tempfile::tempdir().unwrap();
        let bin = dir.path().join("bin");
        std::fs::create_dir(&bin).unwrap();
        let exe = bin.join("haitao");
        std::fs::write(&exe, b"").unwrap();
        let other = bin.join("other");
        std::fs::write(&other, b"").unwrap();
        let path = std::env::join_paths([dir.path().join("nothing"), bin.clone()]).unwrap();
        assert!(program_is("haitao", &exe, Some(&path)));
        assert!(program_is(exe.to_str().unwrap(), &exe, None));
        assert!(!program_is("other", &exe, Some(&path)));
        assert!(!program_is("haitao", &exe, None));
        assert!(!program_is("/nowhere/haitao", &exe, None));
    }

    #[test]
    fn desktop_entries_are_looked_up_home_first() {
        let dir = tempfile::tempdir().unwrap();
        let (home, sys) = (dir.path().join("home"), dir.path().join("sys"));
        for d in [&home, &sys] {
            std::fs::create_dir_all(d.join("applications")).unwrap();
        }
        std::fs::write(sys.join("applications/haitao.desktop"), "[Desktop Entry]\n").unwrap();
        let dirs = std::env::join_paths([&sys]).unwrap();
        let found = desktop_entry_path("haitao.desktop", Some(home.clone()), Some(&dirs)).unwrap();
        assert_eq!(found, sys.join("applications/haitao.desktop"));
        std::fs::write(home.join("applications/haitao.desktop"), "[Desktop Entry]\n").unwrap();
        let found = desktop_entry_path("haitao.desktop", Some(home.clone()), Some(&dirs)).unwrap();
        assert_eq!(found, home.join("applications/haitao.desktop"));
        assert_eq!(desktop_entry_path("../haitao.desktop", Some(home.clone()), Some(&dirs)), None);
        assert_eq!(desktop_entry_path("missing.desktop", Some(home), Some(&dirs)), None);
    }
}
