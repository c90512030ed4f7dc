//! The Haitao desktop shell: windows, commands, the catalog image protocol, the payment window.
//! Everything else lives in crates that test without a window.

use std::sync::Arc;
use std::time::Duration;

use haitao_alipay::ids::RandomIds;
use haitao_client::instance::{Claim, InstanceError};
use tauri::Manager;
use tauri::http::{Response, StatusCode, header};
use tauri_plugin_window_state::StateFlags;
use tauri_specta::Event;

pub mod commands;
mod deep_link;
pub mod embedded;
pub mod notices;
pub mod payment_window;
pub mod saving;
pub mod state;
pub mod updates;

use state::{AppState, ConnectivityEvent};

/// Where the generated TypeScript bindings live.
pub const BINDINGS: &str = "../ui/src/lib/bindings.ts";

/// Logs to stderr and to a daily-rotated file in the app's log folder. `RUST_LOG` overrides the
/// default level (`info`, `debug` for Haitao's own crates).
fn init_logging(log_dir: &std::path::Path) -> Option<tracing_appender::non_blocking::WorkerGuard> {
    use tracing_subscriber::prelude::*;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        "info,haitao_app=debug,haitao_client=debug,haitao_shop=info,haitao_alipay_sandbox=info".into()
    });
    // Colours only on a terminal: piped logs stay plain text for tools and log files.
    let stderr = tracing_subscriber::fmt::layer()
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    // The log folder is private (0700): the log files inside it are readable by this user only.
    let file = haitao_files::private_dir(log_dir).ok().and_then(|()| {
        tracing_appender::rolling::Builder::new()
            .rotation(tracing_appender::rolling::Rotation::DAILY)
            .filename_prefix("haitao")
            .filename_suffix("log")
            .max_log_files(7)
            .build(log_dir)
            .ok()
    });
    match file {
        Some(appender) => {
            let (writer, guard) = tracing_appender::non_blocking(appender);
            let _ = tracing_subscriber::registry()
                .with(filter)
                .with(stderr)
                .with(tracing_subscriber::fmt::layer().with_ansi(false).with_writer(writer))
                .try_init();
            Some(guard)
        }
        None => {
            let _ = tracing_subscriber::registry().with(filter).with(stderr).try_init();
            None
        }
    }
}

fn image_response(result: Result<(String, Vec<u8>), haitao_client::ClientError>) -> Response<Vec<u8>> {
    let builder = Response::builder().header(header::ACCESS_CONTROL_ALLOW_ORIGIN, "*");
    let r = match result {
        Ok((ct, bytes)) => builder
            .status(StatusCode::OK)
            .header(header::CONTENT_TYPE, ct)
            .header(header::CACHE_CONTROL, "max-age=86400")
            .header("x-content-type-options", "nosniff")
            .body(bytes),
        Err(e) => {
            tracing::debug!(error = %e, "catalog image unavailable");
            builder.status(StatusCode::NOT_FOUND).body(Vec::new())
        }
    };
    r.unwrap_or_else(|_| Response::new(Vec::new()))
}

/// Watches connectivity: when the shop becomes reachable again, open payments are reconciled and
/// the catalog and orders are synced.
async fn background(app: tauri::AppHandle) {
    let state = app.state::<AppState>();
    let client = state.client().await;
    // The first sync reads the whole catalog; let the first page reach the screen before it
    // competes for the shop's database and the CPU (at most a few seconds). The built-in shop's
    // jobs and the sandbox's notifications wait for the same moment.
    after_first_render(Duration::from_secs(3)).await;
    if let Some(embedded) = state.embedded.write().as_mut() {
        embedded.start_background();
        tracing::info!(
            target: "haitao::timing",
            since_start_ms = started().elapsed().as_millis(),
            "built-in shop's jobs and sandbox's worker started"
        );
    }
    let Ok(client) = client else { return };
    let mut was_online = true;
    let mut first = true;
    loop {
        let online = client.health().await.is_ok();
        if online && (first || !was_online) {
            let reconciled = match client.reconcile_open().await {
                Ok(list) => u32::try_from(list.len()).unwrap_or(u32::MAX),
                Err(e) => {
                    tracing::warn!(error = %e, "reconciliation failed");
                    0
                }
            };
            match client.sync_catalog().await {
                Ok(changed) => tracing::info!(changed, "catalog synced"),
                Err(e) => tracing::warn!(error = %e, "catalog sync failed"),
            }
            let _ = ConnectivityEvent { online, reconciled }.emit(&app);
        } else if online != was_online {
            let _ = ConnectivityEvent { online, reconciled: 0 }.emit(&app);
        }
        // The orders, every round: what changed (paid, held, shipped, delivered, refunded) is
        // told to a shopper who is not looking at the app.
        if online && let Err(e) = client.sync_orders().await {
            tracing::debug!(error = %e, "order sync");
        }
        notices::tell(&app, client.take_order_notices());
        first = false;
        was_online = online;
        tokio::time::sleep(Duration::from_secs(if online { 15 } else { 5 })).await;
    }
}

/// Brings the main window forward (a later launch, a link that opens the app).
pub(crate) fn bring_forward(app: &tauri::AppHandle) {
    if let Some(w) = app.get_webview_window("main") {
        let _ = w.unminimize();
        let _ = w.show();
        let _ = w.set_focus();
    }
}

/// A window remembered on a larger screen (or on one no longer attached) is brought back within
/// the screen it opens on: no larger than it, and moved just enough to lie on it.
fn fit_on_screen(window: &tauri::WebviewWindow) {
    let (Ok(Some(monitor)), Ok(size), Ok(position)) = (
        window.current_monitor().or_else(|_| window.primary_monitor()),
        window.outer_size(),
        window.outer_position(),
    ) else {
        return;
    };
    let (screen, origin) = (monitor.size(), monitor.position());
    let width = size.width.min(screen.width);
    let height = size.height.min(screen.height);
    if (width, height) != (size.width, size.height) {
        tracing::info!(width, height, "the remembered window is larger than the screen: fitted");
        let _ = window.set_size(tauri::PhysicalSize::new(width, height));
    }
    let within = |at: i32, from: i32, screen: u32, own: u32| {
        let last = i64::from(from) + i64::from(screen) - i64::from(own);
        i32::try_from(i64::from(at).clamp(i64::from(from), last.max(i64::from(from)))).unwrap_or(from)
    };
    let (x, y) = (
        within(position.x, origin.x, screen.width, width),
        within(position.y, origin.y, screen.height, height),
    );
    if (x, y) != (position.x, position.y) {
        tracing::info!(x, y, "the remembered window lies off the screen: moved onto it");
        let _ = window.set_position(tauri::PhysicalPosition::new(x, y));
    }
}

/// The plugin saves the window's place when the app exits normally; a session that ends otherwise
/// (logging out, a crash) would lose it, so it is also saved a moment after the window last moved
/// or changed size.
fn save_window_place(window: &tauri::WebviewWindow) {
    use std::sync::atomic::{AtomicU64, Ordering};
    use tauri_plugin_window_state::AppHandleExt;
    let generation = Arc::new(AtomicU64::new(0));
    let app = window.app_handle().clone();
    window.on_window_event(move |event| {
        if !matches!(event, tauri::WindowEvent::Moved(_) | tauri::WindowEvent::Resized(_)) {
            return;
        }
        let mine = generation.fetch_add(1, Ordering::SeqCst) + 1;
        let (generation, app) = (generation.clone(), app.clone());
        tauri::async_runtime::spawn(async move {
            tokio::time::sleep(Duration::from_millis(700)).await;
            if generation.load(Ordering::SeqCst) == mine
                && let Err(e) = app.save_window_state(WINDOW_STATE)
            {
                tracing::warn!(error = %e, "cannot save the window's place");
            }
        });
    });
}

/// What is remembered of the main window.
const WINDOW_STATE: StateFlags = StateFlags::SIZE.union(StateFlags::POSITION).union(StateFlags::MAXIMIZED);

/// Set once the UI has put its first catalog page on screen; every waiter sees it, however late.
fn first_render() -> &'static tokio::sync::watch::Sender<bool> {
    static FIRST: std::sync::OnceLock<tokio::sync::watch::Sender<bool>> = std::sync::OnceLock::new();
    FIRST.get_or_init(|| tokio::sync::watch::channel(false).0)
}

/// Records that the first catalog page is on screen.
pub fn mark_first_render() {
    first_render().send_replace(true);
}

/// Waits until the first catalog page is on screen, or `limit` passed.
async fn after_first_render(limit: Duration) {
    let mut rendered = first_render().subscribe();
    let _ = tokio::time::timeout(limit, rendered.wait_for(|r| *r)).await;
}

/// When the process started (as near as Rust can tell: the first call to this, from `run`).
pub fn started() -> std::time::Instant {
    static STARTED: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
    *STARTED.get_or_init(std::time::Instant::now)
}

/// Builds and runs the app.
pub fn run() {
    started();
    let context = tauri::generate_context!();
    // Where the shopper's data lives: `$HAITAO_DATA_DIR`, else the OS's data folder for the app
    // (what Tauri's `app_data_dir` gives: `dirs::data_dir()` / identifier).
    let data_dir: std::path::PathBuf = match std::env::var_os("HAITAO_DATA_DIR") {
        Some(d) => d.into(),
        None => match dirs::data_dir() {
            Some(d) => d.join(&context.config().identifier),
            None => {
                #[allow(clippy::print_stderr, reason = "no window yet: the terminal is all there is")]
                {
                    eprintln!("Haitao cannot find this user's data folder (set HAITAO_DATA_DIR)");
                }
                std::process::exit(1);
            }
        },
    };
    // One Haitao per data folder, settled before any window or service exists: a later launch
    // on the folder brings the running window forward and exits.
    // The launch that follows an update waits for the one leaving (see `updates::restart`).
    let leaving = if std::env::args().any(|a| a == updates::AFTER_UPDATE_ARG) {
        Duration::from_secs(20)
    } else {
        Duration::ZERO
    };
    let (instance, blocked) = match haitao_client::instance::claim_after(
        &data_dir,
        &RandomIds,
        std::env::args().collect(),
        leaving,
    ) {
        Ok(Claim::First(instance)) => (Some(instance), None),
        Ok(Claim::Running { pid }) => {
            #[allow(clippy::print_stdout, reason = "for whoever started this launch from a terminal")]
            {
                println!(
                    "Haitao already runs on this data folder (process {pid}); its window was brought forward."
                );
            }
            std::process::exit(0);
        }
        // The folder itself is unusable: the start-up says so in the window, translated.
        Err(InstanceError::Folder { .. }) => (None, None),
        // Held by a launch that does not answer: the window says so, and nothing starts.
        Err(e @ InstanceError::NoAnswer { .. }) => (None, Some(e.to_string())),
    };
    let builder = commands::builder();
    let invoke = builder.invoke_handler();
    let result = tauri::Builder::default()
        .plugin(tauri_plugin_opener::init())
        .plugin(tauri_plugin_deep_link::init())
        .plugin(tauri_plugin_updater::Builder::new().build())
        .plugin(tauri_plugin_dialog::init())
        // The main window opens where and as large as it was left (not the payment window, which
        // sizes itself to the cashier); see `fit_on_screen` for a smaller screen.
        .plugin(
            tauri_plugin_window_state::Builder::new()
                .with_state_flags(WINDOW_STATE)
                .with_filter(|label| label == "main")
                .build(),
        )
        .invoke_handler(invoke)
        .register_asynchronous_uri_scheme_protocol("himg", |ctx, request, responder| {
            let app = ctx.app_handle().clone();
            let name = request.uri().path().trim_start_matches('/').to_owned();
            tauri::async_runtime::spawn(async move {
                let state = app.state::<AppState>();
                let result = match state.client().await {
                    Ok(c) => c.image(&name).await,
                    Err(e) => Err(haitao_client::ClientError::Internal(e.message)),
                };
                responder.respond(image_response(result));
            });
        })
        .setup(move |app| {
            let paths = app.path();
            let config_dir = paths.app_config_dir()?;
            let log_dir = paths.app_log_dir()?;
            let guard = init_logging(&log_dir);
            // The config folder holds settings and the remembered window: private like the rest.
            // (The window-state plugin writes its file with the default mode: made private first,
            // it stays so, as writing keeps an existing file's mode.)
            if let Err(e) = haitao_files::private_dir(&config_dir)
                .and_then(|()| haitao_files::private_file(&config_dir.join(tauri_plugin_window_state::DEFAULT_FILENAME)))
            {
                tracing::warn!(error = %e, dir = %config_dir.display(), "cannot make the config folder private");
            }
            if let Some(main) = app.get_webview_window("main") {
                save_window_place(&main);
                // Closing the main window ends Haitao, a payment window open or not (that payment
                // is checked at the next start): a Haitao left with only its payment window could
                // not be brought back by a later launch.
                let handle = app.handle().clone();
                main.on_window_event(move |event| {
                    if matches!(event, tauri::WindowEvent::Destroyed) {
                        payment_window::close(&handle);
                    }
                });
                // The remembered size and place reach the screen asynchronously: fit them once
                // the first page is up (or after a while), when the window has settled.
                tauri::async_runtime::spawn(async move {
                    after_first_render(Duration::from_secs(10)).await;
                    fit_on_screen(&main);
                });
            }
            tracing::info!(version = env!("CARGO_PKG_VERSION"), data = %data_dir.display(), logs = %log_dir.display(), "Haitao starting");
            builder.mount_events(app);
            let blocked = match instance {
                Some(instance) => {
                    let handle = app.handle().clone();
                    instance.serve(move |args| {
                        tracing::info!(args = args.len(), "a later launch asked for the window");
                        bring_forward(&handle);
                        deep_link::from_later_launch(&handle, &args);
                    })?;
                    None
                }
                None => blocked,
            };
            app.manage(AppState::new(data_dir, &config_dir, log_dir, blocked));
            deep_link::listen(app.handle());
            app.manage(saving::Saved::default());
            app.manage(updates::Updates::default());
            tauri::async_runtime::spawn(updates::background(app.handle().clone()));
            app.manage(Arc::new(guard));
            let handle = app.handle().clone();
            tauri::async_runtime::spawn(async move {
                handle.state::<AppState>().start().await;
                background(handle).await;
            });
            Ok(())
        })
        .run(context);
    if let Err(e) = result {
        tracing::error!(error = %e, "Haitao stopped with an error");
        std::process::exit(1);
    }
}
