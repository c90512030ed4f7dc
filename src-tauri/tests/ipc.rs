//! The IPC boundary with Tauri's mock runtime and the app's real configuration (capabilities and
//! CSP): errors cross as `{code, message, field}`, and the payment window has no IPC at all.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use haitao_app::state::AppState;
use tauri::ipc::{CallbackFn, InvokeBody};
use tauri::test::{INVOKE_KEY, MockRuntime, get_ipc_response, mock_builder};
use tauri::webview::InvokeRequest;
use tauri::{Manager, WebviewWindowBuilder};

fn app(dir: &std::path::Path) -> tauri::App<MockRuntime> {
    let app = mock_builder()
        .invoke_handler(tauri::generate_handler![
            haitao_app::commands::settings_get,
            haitao_app::commands::settings_set,
            haitao_app::commands::qr_svg
        ])
        .build(tauri::generate_context!())
        .expect("app");
    app.manage(AppState::new(dir.join("data"), &dir.join("config"), dir.join("logs"), None));
    app
}

fn request(cmd: &str, body: serde_json::Value) -> InvokeRequest {
    InvokeRequest {
        cmd: cmd.into(),
        callback: CallbackFn(0),
        error: CallbackFn(1),
        url: "tauri://localhost".parse().unwrap(),
        body: InvokeBody::Json(body),
        headers: Default::default(),
        invoke_key: INVOKE_KEY.to_string(),
    }
}

#[test]
fn errors_cross_as_code_and_message() {
    let dir = tempfile::tempdir().unwrap();
    let app = app(dir.path());
    let main = WebviewWindowBuilder::new(&app, "main", Default::default()).build().unwrap();
    let ok = get_ipc_response(&main, request("settings_get", serde_json::json!({}))).unwrap();
    let settings: serde_json::Value = ok.deserialize().unwrap();
    assert_eq!(settings["language"], "zh-CN", "Chinese by default");
    let bad = serde_json::json!({"settings": {"language": "fr", "theme": "system", "tester_mode": false, "shop_url": null}});
    let err = get_ipc_response(&main, request("settings_set", bad)).unwrap_err();
    assert_eq!(err["code"], "validation");
    assert_eq!(err["field"], "language");
    assert!(err["message"].is_string());
    // A remote shop over plain http would carry the buyer's password in the clear.
    let plain = serde_json::json!({"settings": {"language": "en", "theme": "system", "tester_mode": false, "shop_url": "http://shop.example.com/"}});
    let err = get_ipc_response(&main, request("settings_set", plain)).unwrap_err();
    assert_eq!((err["code"].as_str(), err["field"].as_str()), (Some("validation"), Some("shop_url")));
    let qr = get_ipc_response(
        &main,
        request("qr_svg", serde_json::json!({"text": "https://example.invalid/qr/1"})),
    )
    .unwrap();
    assert!(qr.deserialize::<String>().unwrap().starts_with("<?xml"));
}

#[test]
fn the_payment_window_has_no_ipc() {
    let dir = tempfile::tempdir().unwrap();
    let app = app(dir.path());
    let payment =
        WebviewWindowBuilder::new(&app, haitao_app::payment_window::PAYMENT_WINDOW, Default::default())
            .build()
            .unwrap();
    let r = get_ipc_response(&payment, request("qr_svg", serde_json::json!({"text": "x"})));
    let err = r.expect_err("a window outside every capability must not reach commands");
    assert!(err.to_string().contains("not allowed"), "{err}");
    let r = get_ipc_response(&payment, request("settings_get", serde_json::json!({})));
    assert!(r.is_err());
}

/// The shipped CSP: scripts and styles only from the app itself (no inline, no eval), no plugins,
/// frames, form posts or base rewrites, and network access only to the IPC.
#[test]
fn the_csp_allows_no_inline_or_eval_and_connects_only_to_the_ipc() {
    let conf: serde_json::Value =
        serde_json::from_str(include_str!("../tauri.conf.json")).expect("tauri.conf.json");
    assert_eq!(conf["app"]["withGlobalTauri"], false);
    let csp = conf["app"]["security"]["csp"].as_object().expect("a directive map");
    let directive = |name: &str| csp.get(name).and_then(|v| v.as_str()).unwrap_or_default().to_owned();
    for (name, value) in csp {
        let value = value.as_str().unwrap_or_default();
        for bad in ["'unsafe-eval'", "'unsafe-inline'", "'wasm-unsafe-eval'", "*", "http:", "https:"] {
            assert!(!value.split_whitespace().any(|v| v == bad), "{name} allows {bad}");
        }
    }
    assert_eq!(directive("script-src"), "'self'");
    assert_eq!(directive("style-src"), "'self'");
    assert_eq!(directive("default-src"), "'self'");
    assert_eq!(directive("connect-src"), "ipc: http://ipc.localhost");
    for none in ["object-src", "frame-src", "base-uri", "form-action"] {
        assert_eq!(directive(none), "'none'", "{none}");
    }
    // Only the main window has a capability; the payment window matches none.
    let caps: Vec<&str> = conf["app"]["security"]["capabilities"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| c.as_str())
        .collect();
    assert_eq!(caps, ["main"]);
    let main: serde_json::Value =
        serde_json::from_str(include_str!("../capabilities/main.json")).expect("capabilities/main.json");
    assert_eq!(main["windows"], serde_json::json!(["main"]));
}
