//! `haitao://` links from the system. On Linux and Windows a link starts `haitao <link>`: at the
//! first launch the plugin reads it from the arguments, and a later launch's arguments reach the
//! running app through the single-instance hand-over. On macOS the system hands the link to the
//! running app. The only links Haitao knows are payment returns
//! ([`haitao_client::deep_link`]); each is checked by the client like any return.

use tauri::{AppHandle, Manager};
use tauri_plugin_deep_link::DeepLinkExt;

use crate::payment_window::{self, PaymentStage};
use crate::state::AppState;

/// Listens for links, and takes the one this launch was started with.
pub fn listen(app: &AppHandle) {
    let handle = app.clone();
    app.deep_link().on_open_url(move |event| {
        for url in event.urls() {
            open(&handle, url.to_string());
        }
    });
    match app.deep_link().get_current() {
        Ok(Some(urls)) => urls.into_iter().for_each(|u| open(app, u.to_string())),
        Ok(None) => {}
        Err(e) => tracing::warn!(error = %e, "cannot read the link this launch was started with"),
    }
}

/// A later launch's arguments (Linux, Windows): a link among them is heard like any other.
pub fn from_later_launch(app: &AppHandle, args: &[String]) {
    app.deep_link().handle_cli_arguments(args.iter());
}

fn open(app: &AppHandle, link: String) {
    let app = app.clone();
    tauri::async_runtime::spawn(async move {
        let state = app.state::<AppState>();
        let Ok(client) = state.client().await else { return };
        match client.payment_link_returned(&link).await {
            // One of this install's payments: the shopper comes back to it.
            Ok((local_id, outcome)) => {
                crate::bring_forward(&app);
                payment_window::emit(&app, &local_id, PaymentStage::BrowserReturned, outcome);
            }
            // The link itself is not one of this app's payments: nothing changed. (Not logged
            // in full: it carries a payment's details.)
            Err(e) => tracing::warn!(error = %e, "a haitao:// link was refused"),
        }
    });
}

/// Whether the system sends `haitao://` links to this very program, so that a payment in the
/// browser can return through the shop's page. Otherwise the loopback listener is used.
pub async fn registered(app: &AppHandle) -> bool {
    let app = app.clone();
    tauri::async_runtime::spawn_blocking(move || registered_now(&app)).await.unwrap_or(false)
}

fn registered_now(app: &AppHandle) -> bool {
    let Ok(exe) = tauri::utils::platform::current_exe() else { return false };
    #[cfg(target_os = "linux")]
    {
        let _ = app;
        haitao_client::deep_link::registered_on_linux(&exe)
    }
    #[cfg(windows)]
    {
        let _ = exe;
        app.deep_link().is_registered(haitao_client::deep_link::SCHEME).unwrap_or(false)
    }
    #[cfg(target_os = "macos")]
    {
        // The scheme is declared in the bundle's Info.plist: a program run from a bundle has it.
        let _ = app;
        exe.ancestors().any(|p| p.extension().is_some_and(|e| e == "app"))
    }
    #[cfg(not(any(target_os = "linux", windows, target_os = "macos")))]
    {
        let _ = (app, exe);
        false
    }
}
