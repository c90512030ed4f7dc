//! Opening the Alipay cashier: in a separate payment window whose label matches no capability (so
//! the gateway's pages get no IPC), in the system browser with a one-shot loopback listener, or as a
//! QR code. `on_navigation` watches for the exact return address, cancels that navigation and hands
//! the query to the client, which verifies it and asks the shop; the redirect alone never marks an
//! order paid.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use haitao_client::redirect::{Loopback, ReturnTarget};
use haitao_client::{IpcError, PaymentLaunch, PaymentOutcome};
use haitao_shop_api::orders::{PayMode, PaymentMethod};
use serde::{Deserialize, Serialize};
use tauri::{AppHandle, Manager, WebviewUrl, WebviewWindowBuilder, WindowEvent};
use tauri_specta::Event;

use crate::state::AppState;

/// The label of the payment window. No capability names it.
pub const PAYMENT_WINDOW: &str = "payment";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, specta::Type)]
#[serde(rename_all = "snake_case")]
pub enum PaymentStage {
    /// The cashier sent the buyer back to the return address.
    Returned,
    /// The payment window was closed before any return.
    WindowClosed,
    /// The system browser came back (to the loopback listener, or through a `haitao://` link).
    BrowserReturned,
    /// The browser did not come back in time; the payment was checked anyway.
    BrowserTimedOut,
}

/// Pushed to the UI when a payment's window or browser round trip ends.
#[derive(Debug, Clone, Serialize, Deserialize, specta::Type, Event)]
pub struct PaymentEvent {
    pub local_id: String,
    pub stage: PaymentStage,
    pub outcome: Option<PaymentOutcome>,
    pub error: Option<IpcError>,
}

pub(crate) fn emit(
    app: &AppHandle,
    local_id: &str,
    stage: PaymentStage,
    r: Result<PaymentOutcome, haitao_client::ClientError>,
) {
    let (outcome, error) = match r {
        Ok(o) => (Some(o), None),
        Err(e) => (None, Some(IpcError::from(e))),
    };
    tracing::info!(
        local_id,
        ?stage,
        status = outcome.as_ref().map(|o| o.local.status().as_str()),
        "payment update"
    );
    if let Err(e) = (PaymentEvent { local_id: local_id.to_owned(), stage, outcome, error }).emit(app) {
        tracing::warn!(error = %e, "could not notify the UI");
    }
}

/// Closes the payment window if it is open.
pub fn close(app: &AppHandle) {
    if let Some(w) = app.get_webview_window(PAYMENT_WINDOW) {
        let _ = w.destroy();
    }
}

pub async fn start(
    app: &AppHandle,
    state: &AppState,
    order_id: &str,
    method: PaymentMethod,
    mode: PayMode,
) -> Result<PaymentLaunch, IpcError> {
    let client = state.client().await?;
    match mode {
        PayMode::InApp => {
            let return_page = client.payment_config().await?.return_page;
            let launch = client.start_payment(order_id, method, mode, &return_page).await?;
            let url = launch
                .attempt
                .cashier_url
                .clone()
                .ok_or_else(|| haitao_client::ClientError::State("no cashier address".into()))?;
            open_window(app, &launch.local_id, &url, &launch.return_url, &state.settings().language)?;
            Ok(launch)
        }
        PayMode::Browser => {
            // Back through the shop's return page and a haitao:// link when the system sends
            // those links here (an installed Haitao); otherwise to a one-shot loopback listener.
            let listener = if crate::deep_link::registered(app).await {
                None
            } else {
                Some(
                    Loopback::bind(&launch_token())
                        .await
                        .map_err(|e| haitao_client::ClientError::Internal(e.to_string()))?,
                )
            };
            let return_url = match &listener {
                Some(lb) => lb.return_url.clone(),
                None => client.payment_config().await?.return_page,
            };
            let launch = client.start_payment(order_id, method, mode, &return_url).await?;
            let url = launch
                .attempt
                .cashier_url
                .clone()
                .ok_or_else(|| haitao_client::ClientError::State("no cashier address".into()))?;
            use tauri_plugin_opener::OpenerExt;
            app.opener()
                .open_url(url, None::<&str>)
                .map_err(|e| haitao_client::ClientError::Internal(e.to_string()))?;
            tracing::info!(
                local_id = launch.local_id,
                app_link = listener.is_none(),
                "cashier opened in the browser"
            );
            let (app2, local_id) = (app.clone(), launch.local_id.clone());
            tauri::async_runtime::spawn(async move {
                let query = match listener {
                    Some(lb) => lb.wait(BROWSER_WAIT).await,
                    None => {
                        tokio::time::sleep(BROWSER_WAIT).await;
                        None
                    }
                };
                let state = app2.state::<AppState>();
                let Ok(client) = state.client().await else { return };
                match query {
                    Some(q) => {
                        let r = client.payment_returned(&local_id, &format!("{return_url}?{q}")).await;
                        emit(&app2, &local_id, PaymentStage::BrowserReturned, r);
                    }
                    None => {
                        // Not back in time, or back without a final answer (a forged link,
                        // say): the shop is asked.
                        let waiting =
                            client.cache().attempt(&local_id).ok().flatten().is_some_and(|a| !a.is_final());
                        if waiting {
                            let r = client.check_payment(&local_id).await;
                            emit(&app2, &local_id, PaymentStage::BrowserTimedOut, r);
                        }
                    }
                }
            });
            Ok(launch)
        }
        PayMode::Qr => {
            let return_page = client.payment_config().await?.return_page;
            Ok(client.start_payment(order_id, method, mode, &return_page).await?)
        }
    }
}

/// How long a payment in the browser is waited for before the shop is asked anyway.
const BROWSER_WAIT: Duration = Duration::from_secs(20 * 60);

/// A random path segment for the loopback return listener (122 random bits), so no other local
/// process can guess where the browser will be sent.
#[allow(
    clippy::disallowed_methods,
    reason = "a secret, not an id: it must never come from a seeded generator"
)]
fn launch_token() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

/// The payment window's navigation handler: a navigation to exactly the return address is
/// cancelled (the return page is never loaded) and its URL handed to the client; every other
/// navigation, look-alikes included, goes ahead untouched.
fn return_interceptor(
    target: ReturnTarget,
    tx: tokio::sync::mpsc::Sender<String>,
) -> impl Fn(&url::Url) -> bool + Send + 'static {
    move |u| {
        if target.matches(u) {
            let _ = tx.try_send(u.to_string());
            false
        } else {
            true
        }
    }
}

/// The cookie that asks the cashier for a language, for the cashier's host. A Haitao sandbox's
/// cashier reads it (and keeps it when the shopper picks another language there); other cashiers
/// ignore it.
fn language_cookie(cashier: &url::Url, language: &str) -> Option<tauri::webview::Cookie<'static>> {
    let host = cashier.host_str()?.to_owned();
    Some(
        tauri::webview::cookie::Cookie::build((haitao_alipay_sandbox::LANG_COOKIE, language.to_owned()))
            .domain(host)
            .path("/")
            .same_site(tauri::webview::cookie::SameSite::Lax)
            .build(),
    )
}

fn open_window(
    app: &AppHandle,
    local_id: &str,
    cashier_url: &str,
    return_url: &str,
    language: &str,
) -> Result<(), IpcError> {
    let internal = |e: String| IpcError::from(haitao_client::ClientError::Internal(e));
    close(app);
    let target = ReturnTarget::parse(return_url).ok_or_else(|| internal("invalid return address".into()))?;
    let url: url::Url = cashier_url.parse().map_err(|e: url::ParseError| internal(e.to_string()))?;
    let (tx, mut rx) = tokio::sync::mpsc::channel::<String>(1);
    let handled = Arc::new(AtomicBool::new(false));
    // Opened blank: the cashier's language cookie is set before its first page is asked for.
    let blank: url::Url = "about:blank".parse().map_err(|e: url::ParseError| internal(e.to_string()))?;
    let window = WebviewWindowBuilder::new(app, PAYMENT_WINDOW, WebviewUrl::External(blank))
        .title("支付宝 · Alipay — Haitao")
        .inner_size(1000.0, 760.0)
        .min_inner_size(420.0, 480.0)
        .on_navigation(return_interceptor(target, tx))
        .build()
        .map_err(|e| internal(e.to_string()))?;
    if let Some(cookie) = language_cookie(&url, language) {
        // Without it the cashier follows the system's language: worth a line in the log, not a
        // failed payment.
        if let Err(e) = window.set_cookie(cookie) {
            tracing::warn!(error = %e, "could not ask the cashier for the app's language");
        }
    }
    window.navigate(url).map_err(|e| internal(e.to_string()))?;
    let (closed_tx, mut closed_rx) = tokio::sync::mpsc::channel::<()>(1);
    window.on_window_event(move |e| {
        if matches!(e, WindowEvent::Destroyed) {
            let _ = closed_tx.try_send(());
        }
    });
    let (app2, local_id) = (app.clone(), local_id.to_owned());
    tauri::async_runtime::spawn(async move {
        let state = app2.state::<AppState>();
        let Ok(client) = state.client().await else { return };
        tokio::select! {
            Some(url) = rx.recv() => {
                handled.store(true, Ordering::SeqCst);
                close(&app2);
                let r = client.payment_returned(&local_id, &url).await;
                emit(&app2, &local_id, PaymentStage::Returned, r);
            }
            Some(()) = closed_rx.recv() => {
                if !handled.load(Ordering::SeqCst) {
                    let r = client.payment_abandoned(&local_id).await;
                    emit(&app2, &local_id, PaymentStage::WindowClosed, r);
                }
            }
        }
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    /// What the payment window does with each navigation: look-alikes of the return address load
    /// as ordinary pages and nothing reaches the client; the exact address is cancelled and handed
    /// over once.
    #[test]
    fn only_the_exact_return_address_is_intercepted() {
        let ret = "http://127.0.0.1:8080/api/v1/alipay/return";
        let (tx, mut rx) = tokio::sync::mpsc::channel::<String>(1);
        let navigate = return_interceptor(ReturnTarget::parse(ret).unwrap(), tx);
        for look_alike in [
            "https://127.0.0.1:8080/api/v1/alipay/return?out_trade_no=HT1&sign=x",
            "http://127.0.0.1:8081/api/v1/alipay/return?out_trade_no=HT1&sign=x",
            "http://localhost:8080/api/v1/alipay/return?out_trade_no=HT1&sign=x",
            "http://127.0.0.1.evil.example:8080/api/v1/alipay/return?out_trade_no=HT1",
            "http://127.0.0.1:8080/api/v1/alipay/return/?out_trade_no=HT1",
            "http://127.0.0.1:8080/api/v1/alipay/returnx?out_trade_no=HT1",
            "http://127.0.0.1:8080/api/v1/alipay/Return?out_trade_no=HT1",
            "http://shop@127.0.0.1:8080/api/v1/alipay/return?out_trade_no=HT1",
            "http://127.0.0.1:8080/gateway.do?return_url=http://127.0.0.1:8080/api/v1/alipay/return",
            "http://127.0.0.1:8080/cashier/abc#http://127.0.0.1:8080/api/v1/alipay/return",
        ] {
            assert!(navigate(&url::Url::parse(look_alike).unwrap()), "{look_alike} loads as a page");
            assert!(rx.try_recv().is_err(), "{look_alike} reached the client");
        }
        let real = format!("{ret}?out_trade_no=HT1&total_amount=1.00&sign=x");
        assert!(!navigate(&url::Url::parse(&real).unwrap()), "the return page is never loaded");
        assert_eq!(rx.try_recv().unwrap(), real);
    }
}
