//! Declares Haitao's own commands to Tauri's permission system, so each needs an explicit grant
//! (see capabilities/main.json and permissions/app.toml).

/// Every command; `src/commands.rs` registers the same list (a test checks they agree).
const COMMANDS: &[&str] = &[
    "app_info",
    "update_status",
    "update_check",
    "update_download",
    "update_install",
    "app_ready",
    "ui_rendered",
    "settings_get",
    "settings_set",
    "session_state",
    "sign_in",
    "register",
    "sign_out",
    "verify_real_name",
    "quota",
    "addresses",
    "address_save",
    "address_delete",
    "categories",
    "catalog_search",
    "catalog_facets",
    "product",
    "catalog_sync",
    "cart",
    "cart_set",
    "cart_clear",
    "checkout_quotes",
    "order_quotes",
    "order_place",
    "payment_config",
    "payment_start",
    "payment_check",
    "payment_abandon",
    "payments_reconcile",
    "payment_attempts",
    "orders",
    "order",
    "order_cancel",
    "order_refund",
    "order_correct_orderer",
    "invoice_save",
    "saved_open",
    "saved_reveal",
    "tickets",
    "ticket_open",
    "ticket",
    "ticket_reply",
    "qr_svg",
    "tester_personas",
    "tester_outcomes",
    "tester_force",
    "tester_trace",
    "tester_export",
    "tester_replay",
    "tester_notifications",
    "tester_resend",
    "tester_clock",
    "tester_advance_clock",
];

fn main() {
    println!("cargo:rerun-if-changed=permissions");
    let attributes =
        tauri_build::Attributes::new().app_manifest(tauri_build::AppManifest::new().commands(COMMANDS));
    if let Err(e) = tauri_build::try_build(attributes) {
        println!("cargo:warning=tauri build failed: {e:#}");
        std::process::exit(1);
    }
}
