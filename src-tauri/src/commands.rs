//! The commands the UI calls. Each is a thin adapter: take the state, call `haitao-client`, map the
//! error to the one IPC shape.

use haitao_client::tester::{
    Outcome, OutcomeInfo, Persona, ReplayReport, SentNotification, TesterClock, TraceEvent, TraceFilter,
};
use haitao_client::{
    CachedOrders, CatalogFacetsResult, CatalogResult, IpcError, LocalAttempt, PaymentLaunch, PaymentOutcome,
    SessionState,
};
use haitao_shop_api::PaymentConfig;
use haitao_shop_api::account::{Account, Address, AddressInput, Quota};
use haitao_shop_api::catalog::{CategoryInfo, ProductDetail, ProductQuery};
use haitao_shop_api::orders::{
    Cart, CorrectOrderer, MethodQuote, Order, OrderStatus, PayMode, PaymentMethod, RequestRefund,
};
use haitao_shop_api::support::{NewTicket, Ticket};
use serde::{Deserialize, Serialize};
use tauri::{AppHandle, State};

use crate::payment_window;
use crate::saving::{self, SavedFile};
use crate::state::{AppState, Settings};

type R<T> = Result<T, IpcError>;

/// What the About box and diagnostics show.
#[derive(Debug, Clone, Serialize, Deserialize, specta::Type)]
pub struct AppInfo {
    pub version: String,
    /// The built-in shop and sandbox are running in this process.
    pub embedded: bool,
    pub shop_url: String,
    pub data_dir: String,
    pub log_dir: String,
    /// Where the session is kept ("Secret Service", or "unavailable: ...").
    pub keyring: String,
}

#[tauri::command]
#[specta::specta]
pub async fn app_info(state: State<'_, AppState>) -> R<AppInfo> {
    state.info().await
}

/// A point in the page's own start-up, in milliseconds since the page began loading.
#[derive(Debug, Clone, serde::Deserialize, specta::Type)]
pub struct UiMark {
    pub name: String,
    pub ms: u32,
}

/// The UI reports a milestone ("catalog": the first page of products is on screen) with the marks
/// it passed on the way. Logged with the time since the process started, which
/// `scripts/bench-startup` reads.
#[tauri::command]
#[specta::specta]
pub fn ui_rendered(what: String, marks: Vec<UiMark>) {
    let clean =
        |s: &str| s.chars().filter(|c| c.is_ascii_alphanumeric() || *c == '_').take(32).collect::<String>();
    let marks: Vec<String> = marks.iter().take(16).map(|m| format!("{}={}", clean(&m.name), m.ms)).collect();
    tracing::info!(
        target: "haitao::timing",
        what = %clean(&what),
        since_start_ms = crate::started().elapsed().as_millis(),
        page = %marks.join(","),
        "first render"
    );
    crate::mark_first_render();
}

/// Whether this build updates itself, and what the last check found (no network).
#[tauri::command]
#[specta::specta]
pub async fn update_status(app: AppHandle) -> R<crate::updates::UpdateStatus> {
    crate::updates::current(&app)
}

/// Asks the update server for a newer Haitao.
#[tauri::command]
#[specta::specta]
pub async fn update_check(app: AppHandle) -> R<crate::updates::UpdateStatus> {
    crate::updates::check(&app).await
}

/// Downloads the found update and verifies its signature (progress as `UpdateProgressEvent`).
#[tauri::command]
#[specta::specta]
pub async fn update_download(app: AppHandle) -> R<crate::updates::UpdateStatus> {
    crate::updates::download(&app).await
}

/// Installs the verified update and restarts Haitao.
#[tauri::command]
#[specta::specta]
pub async fn update_install(app: AppHandle) -> R<()> {
    crate::updates::install(&app).await
}

/// Waits until the built-in services (or the remote shop client) are ready.
#[tauri::command]
#[specta::specta]
pub async fn app_ready(state: State<'_, AppState>) -> R<SessionState> {
    let c = state.client().await?;
    Ok(c.restore().await)
}

#[tauri::command]
#[specta::specta]
pub async fn settings_get(state: State<'_, AppState>) -> R<Settings> {
    Ok(state.settings())
}

/// Saves settings. A changed shop endpoint takes effect at the next start.
#[tauri::command]
#[specta::specta]
pub async fn settings_set(state: State<'_, AppState>, settings: Settings) -> R<Settings> {
    state.save_settings(settings)
}

#[tauri::command]
#[specta::specta]
pub async fn session_state(state: State<'_, AppState>) -> R<SessionState> {
    Ok(state.client().await?.session_state().await)
}

#[tauri::command]
#[specta::specta]
pub async fn sign_in(
    state: State<'_, AppState>,
    phone: String,
    password: String,
    remember: bool,
) -> R<SessionState> {
    Ok(state.client().await?.sign_in(&phone, &password, remember).await?)
}

#[tauri::command]
#[specta::specta]
pub async fn register(
    state: State<'_, AppState>,
    phone: String,
    password: String,
    remember: bool,
) -> R<SessionState> {
    Ok(state.client().await?.register(&phone, &password, remember).await?)
}

#[tauri::command]
#[specta::specta]
pub async fn sign_out(state: State<'_, AppState>, everywhere: bool) -> R<()> {
    Ok(state.client().await?.sign_out(everywhere).await?)
}

#[tauri::command]
#[specta::specta]
pub async fn verify_real_name(state: State<'_, AppState>, name: String, id_number: String) -> R<Account> {
    Ok(state.client().await?.verify_real_name(&name, &id_number).await?)
}

#[tauri::command]
#[specta::specta]
pub async fn quota(state: State<'_, AppState>) -> R<Quota> {
    Ok(state.client().await?.quota().await?)
}

#[tauri::command]
#[specta::specta]
pub async fn addresses(state: State<'_, AppState>) -> R<Vec<Address>> {
    Ok(state.client().await?.addresses().await?)
}

#[tauri::command]
#[specta::specta]
pub async fn address_save(
    state: State<'_, AppState>,
    id: Option<String>,
    address: AddressInput,
) -> R<Address> {
    Ok(state.client().await?.save_address(id.as_deref(), &address).await?)
}

#[tauri::command]
#[specta::specta]
pub async fn address_delete(state: State<'_, AppState>, id: String) -> R<()> {
    Ok(state.client().await?.delete_address(&id).await?)
}

#[tauri::command]
#[specta::specta]
pub async fn categories(state: State<'_, AppState>) -> R<Vec<CategoryInfo>> {
    Ok(state.client().await?.categories().await?)
}

#[tauri::command]
#[specta::specta]
pub async fn catalog_search(state: State<'_, AppState>, query: ProductQuery) -> R<CatalogResult> {
    Ok(state.client().await?.catalog(&query).await?)
}

/// How many results the search has per category, origin and fulfilment.
#[tauri::command]
#[specta::specta]
pub async fn catalog_facets(state: State<'_, AppState>, query: ProductQuery) -> R<CatalogFacetsResult> {
    Ok(state.client().await?.catalog_facets(&query).await?)
}

#[tauri::command]
#[specta::specta]
pub async fn product(state: State<'_, AppState>, id: String) -> R<ProductDetail> {
    Ok(state.client().await?.product(&id).await?)
}

/// Refreshes the offline catalog. Returns how many products changed.
#[tauri::command]
#[specta::specta]
pub async fn catalog_sync(state: State<'_, AppState>) -> R<u32> {
    let n = state.client().await?.sync_catalog().await?;
    Ok(u32::try_from(n).unwrap_or(u32::MAX))
}

#[tauri::command]
#[specta::specta]
pub async fn cart(state: State<'_, AppState>) -> R<Cart> {
    Ok(state.client().await?.cart().await?)
}

#[tauri::command]
#[specta::specta]
pub async fn cart_set(state: State<'_, AppState>, product_id: String, quantity: i32) -> R<Cart> {
    Ok(state.client().await?.set_quantity(&product_id, i64::from(quantity)).await?)
}

#[tauri::command]
#[specta::specta]
pub async fn cart_clear(state: State<'_, AppState>) -> R<Cart> {
    Ok(state.client().await?.clear_cart().await?)
}

#[tauri::command]
#[specta::specta]
pub async fn checkout_quotes(state: State<'_, AppState>) -> R<Vec<MethodQuote>> {
    Ok(state.client().await?.quotes().await?)
}

#[tauri::command]
#[specta::specta]
pub async fn order_quotes(state: State<'_, AppState>, order_id: String) -> R<Vec<MethodQuote>> {
    Ok(state.client().await?.order_quotes(&order_id).await?)
}

#[tauri::command]
#[specta::specta]
pub async fn order_place(state: State<'_, AppState>, address_id: String) -> R<Order> {
    Ok(state.client().await?.place_order(&address_id).await?)
}

#[tauri::command]
#[specta::specta]
pub async fn payment_config(state: State<'_, AppState>) -> R<PaymentConfig> {
    Ok(state.client().await?.payment_config().await?)
}

/// Starts paying for an order: in the app's payment window, in the system browser, or by QR code.
#[tauri::command]
#[specta::specta]
pub async fn payment_start(
    app: AppHandle,
    state: State<'_, AppState>,
    order_id: String,
    method: PaymentMethod,
    mode: PayMode,
) -> R<PaymentLaunch> {
    payment_window::start(&app, &state, &order_id, method, mode).await
}

#[tauri::command]
#[specta::specta]
pub async fn payment_check(state: State<'_, AppState>, local_id: String) -> R<PaymentOutcome> {
    Ok(state.client().await?.check_payment(&local_id).await?)
}

/// The buyer gave up on a payment (closes the payment window if open).
#[tauri::command]
#[specta::specta]
pub async fn payment_abandon(
    app: AppHandle,
    state: State<'_, AppState>,
    local_id: String,
) -> R<PaymentOutcome> {
    payment_window::close(&app);
    Ok(state.client().await?.payment_abandoned(&local_id).await?)
}

#[tauri::command]
#[specta::specta]
pub async fn payments_reconcile(state: State<'_, AppState>) -> R<Vec<PaymentOutcome>> {
    Ok(state.client().await?.reconcile_open().await?)
}

#[tauri::command]
#[specta::specta]
pub async fn payment_attempts(state: State<'_, AppState>, order_id: String) -> R<Vec<LocalAttempt>> {
    Ok(state.client().await?.local_attempts(&order_id)?)
}

#[tauri::command]
#[specta::specta]
pub async fn orders(
    state: State<'_, AppState>,
    status: Option<OrderStatus>,
    page: u32,
    per_page: u32,
) -> R<CachedOrders> {
    Ok(state.client().await?.orders(status, page, per_page).await?)
}

#[tauri::command]
#[specta::specta]
pub async fn order(state: State<'_, AppState>, id: String) -> R<Order> {
    Ok(state.client().await?.order(&id).await?)
}

#[tauri::command]
#[specta::specta]
pub async fn order_cancel(state: State<'_, AppState>, id: String) -> R<Order> {
    Ok(state.client().await?.cancel_order(&id).await?)
}

#[tauri::command]
#[specta::specta]
pub async fn order_refund(state: State<'_, AppState>, id: String, request: RequestRefund) -> R<Order> {
    Ok(state.client().await?.request_refund(&id, &request).await?)
}

#[tauri::command]
#[specta::specta]
pub async fn order_correct_orderer(
    state: State<'_, AppState>,
    id: String,
    orderer: CorrectOrderer,
) -> R<Order> {
    Ok(state.client().await?.correct_orderer(&id, &orderer).await?)
}

/// Saves the order's e-invoice into the Downloads folder and returns the file's path.
#[tauri::command]
#[specta::specta]
pub async fn invoice_save(app: AppHandle, state: State<'_, AppState>, id: String) -> R<Option<SavedFile>> {
    let pdf = state.client().await?.invoice(&id).await?;
    let language = state.settings().language;
    saving::save_as(&app, &format!("haitao-invoice-{id}.pdf"), saving::Kind::Pdf, &language, &pdf).await
}

/// Opens a file saved by `invoice_save` or `tester_export` with the default application.
#[tauri::command]
#[specta::specta]
pub async fn saved_open(app: AppHandle, path: String) -> R<()> {
    saving::open(&app, &path)
}

/// Shows a file saved by `invoice_save` or `tester_export` in the file manager.
#[tauri::command]
#[specta::specta]
pub async fn saved_reveal(app: AppHandle, path: String) -> R<()> {
    saving::reveal(&app, &path)
}

#[tauri::command]
#[specta::specta]
pub async fn tickets(state: State<'_, AppState>) -> R<Vec<Ticket>> {
    Ok(state.client().await?.tickets().await?)
}

#[tauri::command]
#[specta::specta]
pub async fn ticket_open(state: State<'_, AppState>, ticket: NewTicket) -> R<Ticket> {
    Ok(state.client().await?.open_ticket(&ticket).await?)
}

#[tauri::command]
#[specta::specta]
pub async fn ticket(state: State<'_, AppState>, id: String) -> R<Ticket> {
    Ok(state.client().await?.ticket(&id).await?)
}

#[tauri::command]
#[specta::specta]
pub async fn ticket_reply(state: State<'_, AppState>, id: String, body: String) -> R<Ticket> {
    Ok(state.client().await?.reply(&id, &body).await?)
}

#[tauri::command]
#[specta::specta]
pub async fn qr_svg(text: String) -> R<String> {
    Ok(haitao_client::qr_svg(&text)?)
}

#[tauri::command]
#[specta::specta]
pub async fn tester_personas(state: State<'_, AppState>) -> R<Vec<Persona>> {
    Ok(state.client().await?.tester_personas().await?)
}

#[tauri::command]
#[specta::specta]
pub async fn tester_outcomes(state: State<'_, AppState>) -> R<Vec<OutcomeInfo>> {
    Ok(state.client().await?.tester_outcomes().await?)
}

/// Forces an outcome for a payment, or for the next one when `out_trade_no` is null.
#[tauri::command]
#[specta::specta]
pub async fn tester_force(
    state: State<'_, AppState>,
    out_trade_no: Option<String>,
    outcome: Outcome,
) -> R<()> {
    Ok(state.client().await?.tester_force(out_trade_no.as_deref(), outcome).await?)
}

#[tauri::command]
#[specta::specta]
pub async fn tester_trace(
    state: State<'_, AppState>,
    out_trade_no: String,
    since: i32,
    filter: TraceFilter,
) -> R<Vec<TraceEvent>> {
    Ok(state.client().await?.tester_trace(&out_trade_no, i64::from(since), &filter).await?)
}

/// Saves a payment's trace (as `filter` narrows it) as the sandbox exports it, for a bug report
/// or a replay.
#[tauri::command]
#[specta::specta]
pub async fn tester_export(
    app: AppHandle,
    state: State<'_, AppState>,
    out_trade_no: String,
    filter: TraceFilter,
) -> R<Option<SavedFile>> {
    let json = state.client().await?.tester_export(&out_trade_no, &filter).await?;
    let language = state.settings().language;
    let name = format!("haitao-trace-{out_trade_no}.json");
    saving::save_as(&app, &name, saving::Kind::Json, &language, json.as_bytes()).await
}

/// Asks for an exported trace and replays it against a fresh sandbox; `None` when cancelled.
#[tauri::command]
#[specta::specta]
pub async fn tester_replay(app: AppHandle, state: State<'_, AppState>) -> R<Option<ReplayReport>> {
    state.client().await?.require_sandbox().await?;
    let language = state.settings().language;
    let limit = u64::try_from(haitao_client::tester::REPLAY_MAX_BYTES).unwrap_or(u64::MAX);
    let Some(bytes) = saving::open_json(&app, &language, limit).await? else { return Ok(None) };
    Ok(Some(haitao_client::tester::replay_in_fresh_sandbox(&bytes).await?))
}

#[tauri::command]
#[specta::specta]
pub async fn tester_notifications(
    state: State<'_, AppState>,
    out_trade_no: String,
) -> R<Vec<SentNotification>> {
    Ok(state.client().await?.tester_notifications(&out_trade_no).await?)
}

/// Sends a past notification to the shop again, as it was signed.
#[tauri::command]
#[specta::specta]
pub async fn tester_resend(state: State<'_, AppState>, id: i32) -> R<()> {
    Ok(state.client().await?.tester_resend(i64::from(id)).await?)
}

#[tauri::command]
#[specta::specta]
pub async fn tester_clock(state: State<'_, AppState>) -> R<TesterClock> {
    Ok(state.client().await?.tester_clock().await?)
}

/// Moves the clock the sandbox and the built-in shop share forward by `seconds`.
#[tauri::command]
#[specta::specta]
pub async fn tester_advance_clock(state: State<'_, AppState>, seconds: i32) -> R<TesterClock> {
    Ok(state.client().await?.tester_advance_clock(i64::from(seconds)).await?)
}

/// Every command, in the order the UI bindings list them. `build.rs` declares the same names to
/// the permission system; a test keeps the two and `permissions/app.toml` in step.
pub fn builder() -> tauri_specta::Builder<tauri::Wry> {
    tauri_specta::Builder::<tauri::Wry>::new()
        .commands(tauri_specta::collect_commands![
            app_info,
            update_status,
            update_check,
            update_download,
            update_install,
            app_ready,
            ui_rendered,
            settings_get,
            settings_set,
            session_state,
            sign_in,
            register,
            sign_out,
            verify_real_name,
            quota,
            addresses,
            address_save,
            address_delete,
            categories,
            catalog_search,
            catalog_facets,
            product,
            catalog_sync,
            cart,
            cart_set,
            cart_clear,
            checkout_quotes,
            order_quotes,
            order_place,
            payment_config,
            payment_start,
            payment_check,
            payment_abandon,
            payments_reconcile,
            payment_attempts,
            orders,
            order,
            order_cancel,
            order_refund,
            order_correct_orderer,
            invoice_save,
            saved_open,
            saved_reveal,
            tickets,
            ticket_open,
            ticket,
            ticket_reply,
            qr_svg,
            tester_personas,
            tester_outcomes,
            tester_force,
            tester_trace,
            tester_export,
            tester_replay,
            tester_notifications,
            tester_resend,
            tester_clock,
            tester_advance_clock,
        ])
        .events(tauri_specta::collect_events![
            crate::payment_window::PaymentEvent,
            crate::state::ConnectivityEvent,
            crate::notices::OpenOrderEvent,
            crate::updates::UpdateProgressEvent,
            crate::updates::UpdateFoundEvent
        ])
        .dangerously_cast_bigints_to_number()
}
