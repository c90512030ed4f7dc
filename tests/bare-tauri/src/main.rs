//! A bare Tauri 2 page: the window, one HTML page and one command. `scripts/bench-startup --bin
//! target/release/bare-tauri --what page` measures its start-up and memory exactly as it measures
//! Haitao's, so the two can be compared in one run (`scripts/perf`).
// No console window on Windows release builds.
#![cfg_attr(not(debug_assertions), windows_subsystem = "windows")]

use std::sync::OnceLock;
use std::time::Instant;

fn started() -> Instant {
    static STARTED: OnceLock<Instant> = OnceLock::new();
    *STARTED.get_or_init(Instant::now)
}

/// The page is on screen; `ms` is the page's own time since it began loading.
#[tauri::command]
fn rendered(ms: u64) {
    tracing::info!(
        target: "haitao::timing",
        what = %"page",
        since_start_ms = started().elapsed().as_millis(),
        page = %format!("painted={ms}"),
        "first render"
    );
}

fn main() {
    started();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_ansi(false)
        .with_writer(std::io::stderr)
        .init();
    if let Err(e) = tauri::Builder::default()
        .invoke_handler(tauri::generate_handler![rendered])
        .run(tauri::generate_context!())
    {
        tracing::error!(error = %e, "the bare page failed to start");
        std::process::exit(1);
    }
}
