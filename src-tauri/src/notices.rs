//! Desktop notifications of the order changes a shopper must hear about
//! (`haitao_client::order_events`), while Haitao's window is not in front and Settings allows
//! them. On Linux a click on one opens the order.
//!
//! Shown with `notify-rust` (the desktop backend of `tauri-plugin-notification`) because on the
//! desktop the plugin does not report a click, and opening the order is the point.

use haitao_client::order_events::OrderNotice;
use serde::{Deserialize, Serialize};
use tauri::{AppHandle, Manager};

use crate::state::AppState;

/// Asks the UI to show an order (a notification was clicked).
#[derive(Debug, Clone, Serialize, Deserialize, specta::Type, tauri_specta::Event)]
pub struct OpenOrderEvent {
    pub order_id: String,
}

/// Tells the shopper about `notices`, unless the window is in front or notifications are off.
pub fn tell(app: &AppHandle, notices: Vec<OrderNotice>) {
    if notices.is_empty() {
        return;
    }
    let settings = app.state::<AppState>().settings();
    if !settings.notifications {
        return;
    }
    let in_front = app.get_webview_window("main").and_then(|w| w.is_focused().ok()).unwrap_or(false);
    if in_front {
        tracing::debug!(
            count = notices.len(),
            "order changes seen with the window in front: shown in the app only"
        );
        return;
    }
    for notice in notices {
        let (title, body) = notice.text(&settings.language);
        let open = if settings.language == "zh-CN" { "查看订单" } else { "Open order" };
        show(app, notice.order_id, &title, &body, open);
    }
}

fn show(app: &AppHandle, order_id: String, title: &str, body: &str, open: &str) {
    let mut note = notify_rust::Notification::new();
    note.appname("Haitao").summary(title).body(body);
    #[cfg(all(unix, not(target_os = "macos")))]
    note.icon("haitao").action("default", open);
    #[cfg(not(all(unix, not(target_os = "macos"))))]
    let _ = open;
    let app = app.clone();
    // Waiting for a click blocks until the notification closes: on a thread of its own.
    let spawned = std::thread::Builder::new().name("haitao-notice".into()).spawn(move || match note.show() {
        Ok(handle) => {
            tracing::info!(order = %order_id, "order notification shown");
            #[cfg(all(unix, not(target_os = "macos")))]
            handle.wait_for_action(|action| {
                if action == "default" {
                    tracing::info!(order = %order_id, "order notification clicked");
                    crate::bring_forward(&app);
                    let _ = tauri_specta::Event::emit(&OpenOrderEvent { order_id: order_id.clone() }, &app);
                }
            });
            #[cfg(not(all(unix, not(target_os = "macos"))))]
            let _ = (handle, &app);
        }
        Err(e) => tracing::warn!(error = %e, "cannot show a desktop notification"),
    });
    if let Err(e) = spawned {
        tracing::warn!(error = %e, "cannot show a desktop notification");
    }
}
