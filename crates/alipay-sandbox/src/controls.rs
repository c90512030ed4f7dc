//! Tester controls, as a JSON API under `/sandbox/api` (documented in docs/sandbox.md): apps,
//! personas, forced outcomes, paying without HTML, the sandbox clock, the event log, notifications
//! and the ledger.

use crate::db::Cached as _;
use haitao_sandbox_api::Bilingual;
use rusqlite::OptionalExtension as _;
use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::extract::{FromRequest, Path, Query, Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use haitao_alipay::encrypt::AesKey;
use haitao_alipay::{PrivateKey, PublicKey};
use haitao_sandbox_api::{
    AdvanceClock, ApiError, AppQuery, Cleared, ClockAdvanced, ClockInfo, Event, EventExport, EventQuery,
    ForceRequest, Forced, Info, Notification, NotificationState, OutcomeInfo, Paid, PayAnswer, PayRequest,
    PayWith, Persona, PersonaCreated, Refused, SmsMessage, TradeView,
};
pub use haitao_sandbox_api::{AlipayCertRotated, AppCertificates, AppInfo, AppRequest, ExportedApp};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use crate::Sandbox;
use crate::db::StoreError;
use crate::events;
use crate::ledger;
use crate::model::{self, App, Stamp, digits};
use crate::personas::{self, PersonaSpec};
use crate::scenarios::{self, Outcome};
use crate::trades::{self, Choice, Confirmation, Ctx, PayError};

pub fn routes() -> Router<Arc<Sandbox>> {
    Router::new()
        .route("/sandbox/api/info", get(info))
        .route("/sandbox/api/apps", get(list_apps).post(ensure_app))
        .route("/sandbox/api/alipay-cert/rotate", post(rotate_alipay_cert))
        .route("/sandbox/api/personas", get(list_personas).post(create_persona))
        .route("/sandbox/api/personas/{login}/accounts", get(persona_accounts))
        .route("/sandbox/api/personas/{login}/payment-code", get(payment_code))
        .route("/sandbox/api/outcomes", get(outcomes))
        .route("/sandbox/api/scenarios", post(force))
        .route("/sandbox/api/scenarios/{out_trade_no}", axum::routing::delete(clear))
        .route("/sandbox/api/pay", post(pay))
        .route("/sandbox/api/clock", get(clock))
        .route("/sandbox/api/clock/advance", post(advance))
        .route("/sandbox/api/events", get(list_events))
        .route("/sandbox/api/events/export", get(export_events))
        .route("/sandbox/api/events/replay", post(crate::replay::replay))
        .route("/sandbox/api/trades/{out_trade_no}", get(trade))
        .route("/sandbox/api/notifications", get(notifications))
        .route("/sandbox/api/notifications/{id}/resend", post(resend_notification))
        .route("/sandbox/api/ledger/check", get(ledger_check))
        .route("/sandbox/api/ledger/accounts", get(ledger_accounts))
        .route("/sandbox/api/sms/{phone}", get(sms_inbox))
}

/// Who may use the control API: callers on this machine (unless the sandbox serves it to others
/// with `--public`), and no web page of another origin: a page the tester happens to open must not
/// move the clock or read the SMS inbox through the tester's browser.
pub async fn guard(State(sb): State<Arc<Sandbox>>, req: Request, next: axum::middleware::Next) -> Response {
    let peer = req.extensions().get::<axum::extract::ConnectInfo<std::net::SocketAddr>>().map(|c| c.0.ip());
    let origin = req.headers().get(header::ORIGIN).map(|v| v.to_str().unwrap_or("\u{0}"));
    match control_access(peer, sb.options.public_controls, origin, &sb.base_url) {
        Ok(()) => next.run(req).await,
        Err(why) => ControlError(StatusCode::FORBIDDEN, "forbidden".into(), why.into()).into_response(),
    }
}

fn control_access(
    peer: Option<std::net::IpAddr>,
    public: bool,
    origin: Option<&str>,
    own: &url::Url,
) -> Result<(), &'static str> {
    if !public && !peer.is_some_and(|ip| ip.is_loopback()) {
        return Err(
            "the tester controls answer only on this machine (start the sandbox with --public to share them)",
        );
    }
    if let Some(origin) = origin
        && origin != own.origin().ascii_serialization()
    {
        return Err("the tester controls do not answer web pages of other sites");
    }
    Ok(())
}

/// A control API error.
#[derive(Debug)]
pub struct ControlError(StatusCode, String, String);

impl ControlError {
    pub(crate) fn internal(message: String) -> Self {
        ControlError(StatusCode::INTERNAL_SERVER_ERROR, "internal".into(), message)
    }
}

impl IntoResponse for ControlError {
    fn into_response(self) -> Response {
        (self.0, Json(ApiError { error: self.1, message: self.2 })).into_response()
    }
}

/// A JSON request body whose refusal is an [`ApiError`] like every other error of the API.
#[derive(Debug)]
pub struct Body<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for Body<T> {
    type Rejection = ControlError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match Json::<T>::from_request(req, state).await {
            Ok(Json(v)) => Ok(Body(v)),
            Err(e) => Err(ControlError(e.status(), "invalid_request".into(), e.body_text())),
        }
    }
}

/// Decodes a request body, answering an unknown value of its closed set `field` with the stable
/// `code` the API has always used for it (`unknown_outcome`, `unknown_channel`).
fn decode<T: DeserializeOwned>(
    body: Value,
    field: &str,
    known: impl Fn(&str) -> bool,
    code: &str,
    message: impl Fn(&str) -> String,
) -> Result<T, ControlError> {
    if let Some(v) = body.get(field).and_then(Value::as_str)
        && !known(v)
    {
        return Err(bad(code, message(v)));
    }
    serde_json::from_value(body)
        .map_err(|e| ControlError(StatusCode::UNPROCESSABLE_ENTITY, "invalid_request".into(), e.to_string()))
}

impl From<StoreError> for ControlError {
    fn from(e: StoreError) -> Self {
        tracing::error!(error = %e, "control api");
        ControlError(StatusCode::INTERNAL_SERVER_ERROR, "internal".into(), "sandbox store error".into())
    }
}

impl From<ledger::LedgerError> for ControlError {
    fn from(e: ledger::LedgerError) -> Self {
        ControlError(StatusCode::UNPROCESSABLE_ENTITY, "ledger".into(), e.to_string())
    }
}

fn bad(code: &str, msg: impl Into<String>) -> ControlError {
    ControlError(StatusCode::UNPROCESSABLE_ENTITY, code.into(), msg.into())
}

fn not_found(what: &str) -> ControlError {
    ControlError(StatusCode::NOT_FOUND, "not_found".into(), format!("{what} not found"))
}

type R<T> = Result<Json<T>, ControlError>;

async fn info(State(sb): State<Arc<Sandbox>>) -> Json<Info> {
    Json(Info {
        gateway_url: sb.gateway_url().to_string(),
        alipay_public_key: sb.public_key().to_base64(),
        now: sb.now(),
        version: env!("CARGO_PKG_VERSION").into(),
    })
}

impl From<crate::certs::CaError> for ControlError {
    fn from(e: crate::certs::CaError) -> Self {
        tracing::error!(error = %e, "certificate authority");
        ControlError(StatusCode::INTERNAL_SERVER_ERROR, "internal".into(), e.to_string())
    }
}

/// An app as the API shows it; `with_secrets` adds what only the answer to `POST` carries (a
/// generated private key, the AES key).
fn app_info(
    sb: &Sandbox,
    conn: &rusqlite::Connection,
    a: &App,
    with_secrets: bool,
) -> Result<AppInfo, ControlError> {
    let certificates = match &a.app_cert {
        None => None,
        Some(app_cert) => {
            let ca = sb.ca(conn)?;
            let alipay = sb.alipay_cert(conn)?;
            Some(AppCertificates {
                app_cert: app_cert.clone(),
                alipay_cert: alipay.pem.clone(),
                alipay_root_cert: ca.root_file.clone(),
                app_cert_sn: sb
                    .app_cert_sn(app_cert)
                    .map_err(|e| bad("invalid_certificate", e.to_string()))?,
                alipay_cert_sn: alipay.sn.to_string(),
                alipay_root_cert_sn: ca.root_cert_sn()?,
            })
        }
    };
    Ok(AppInfo {
        app_id: a.app_id.clone(),
        name: a.name.clone(),
        seller_id: a.seller_id.clone(),
        gateway_url: sb.gateway_url().to_string(),
        alipay_public_key: sb.public_key().to_base64(),
        app_private_key: if with_secrets { a.private_key.clone() } else { None },
        app_public_key: a.public_key.clone(),
        certificates,
        aes_key: if with_secrets { a.aes_key.clone() } else { None },
        encrypted: a.aes_key.is_some(),
    })
}

/// The AES key an app request asks for: given (checked), made, or none.
fn requested_aes_key(req: &AppRequest) -> Result<Option<String>, ControlError> {
    match (&req.aes_key, req.aes) {
        (Some(k), _) => {
            let key = AesKey::parse(k).map_err(|e| bad("invalid_aes_key", e.to_string()))?;
            Ok(Some(key.to_base64()))
        }
        (None, true) => Ok(Some(AesKey::generate().map_err(|e| bad("keygen", e.to_string()))?.to_base64())),
        (None, false) => Ok(None),
    }
}

/// Registers (or finds) an app; shared by the HTTP API and the CLI.
pub fn ensure_app_in(
    sb: &Sandbox,
    conn: &rusqlite::Connection,
    req: &AppRequest,
) -> Result<AppInfo, ControlError> {
    if req.name.trim().is_empty() || req.name.chars().count() > 64 {
        return Err(bad("invalid_name", "name must be 1 to 64 characters"));
    }
    let aes_key = requested_aes_key(req)?;
    if let Some(existing) = model::app_by_name(conn, &req.name)? {
        if let Some(base) = &req.notify_base {
            conn.cached_exec("UPDATE apps SET notify_base = ?1 WHERE app_id = ?2", [base, &existing.app_id])
                .map_err(StoreError::from)?;
        }
        if let Some(pk) = &req.public_key {
            let k = PublicKey::parse(pk).map_err(|e| bad("invalid_public_key", e.to_string()))?;
            if k.to_base64() != existing.public_key {
                // A new key: a certificate of the old one no longer describes the app.
                let cert = match existing.app_cert {
                    Some(_) => {
                        Some(sb.ca(conn)?.issue_app_cert(&existing.app_id, &existing.name, &k, sb.now())?)
                    }
                    None => None,
                };
                conn.cached_exec(
                    "UPDATE apps SET public_key = ?1, private_key = NULL, app_cert = ?2 WHERE app_id = ?3",
                    rusqlite::params![k.to_base64(), cert, existing.app_id.clone()],
                )
                .map_err(StoreError::from)?;
            }
        }
        let current = model::app(conn, &existing.app_id)?.ok_or_else(|| not_found("app"))?;
        if req.cert_mode && current.app_cert.is_none() {
            let key = PublicKey::parse(&current.public_key)
                .map_err(|e| bad("invalid_public_key", e.to_string()))?;
            let cert = sb.ca(conn)?.issue_app_cert(&current.app_id, &current.name, &key, sb.now())?;
            conn.cached_exec(
                "UPDATE apps SET app_cert = ?1 WHERE app_id = ?2",
                [cert, current.app_id.clone()],
            )
            .map_err(StoreError::from)?;
        }
        // A key given replaces the app's; `aes` alone makes one only for an app without.
        let keep = req.aes_key.is_none() && current.aes_key.is_some();
        if let Some(k) = aes_key.as_ref().filter(|_| !keep) {
            conn.cached_exec("UPDATE apps SET aes_key = ?1 WHERE app_id = ?2", [k, &current.app_id])
                .map_err(StoreError::from)?;
        }
        let updated = model::app(conn, &existing.app_id)?.ok_or_else(|| not_found("app"))?;
        return app_info(sb, conn, &updated, true);
    }
    let (public, private) = match &req.public_key {
        Some(pk) => {
            (PublicKey::parse(pk).map_err(|e| bad("invalid_public_key", e.to_string()))?.to_base64(), None)
        }
        None => {
            let (k, der) = PrivateKey::generate().map_err(|e| bad("keygen", e.to_string()))?;
            (k.public_key().to_base64(), Some(haitao_alipay::keys::pem("PRIVATE KEY", &der)))
        }
    };
    if public == sb.public_key().to_base64() {
        return Err(bad("invalid_public_key", "that is the sandbox's own Alipay public key, not an app key"));
    }
    let app_id = format!("2021{}", digits(12));
    let app_cert = if req.cert_mode {
        let key = PublicKey::parse(&public).map_err(|e| bad("invalid_public_key", e.to_string()))?;
        Some(sb.ca(conn)?.issue_app_cert(&app_id, &req.name, &key, sb.now())?)
    } else {
        None
    };
    let app = App {
        app_id,
        name: req.name.clone(),
        seller_id: format!("2088{}", digits(12)),
        public_key: public,
        private_key: private,
        notify_base: req.notify_base.clone(),
        created_at: sb.now(),
        app_cert,
        aes_key,
    };
    register_app(sb, conn, &app)?;
    app_info(sb, conn, &app, true)
}

/// Writes a new app and its settlement account.
pub(crate) fn register_app(sb: &Sandbox, conn: &rusqlite::Connection, app: &App) -> Result<(), ControlError> {
    model::insert_app(conn, app)?;
    personas::ensure_system_accounts(conn, sb.now())?;
    // Merchants may overdraw a settlement account so refunds of older payments always work.
    model::insert_account(
        conn,
        &ledger::merchant_account(&app.app_id),
        &app.app_id,
        model::AccountKind::Merchant,
        &Bilingual::new(app.name.clone(), app.name.clone()),
        100_000_000_000,
        None,
        sb.now(),
    )?;
    Ok(())
}

/// A persona's payment code (付款码), which a merchant's scanner sends as `auth_code`.
async fn payment_code(State(sb): State<Arc<Sandbox>>, Path(login): Path<String>) -> R<Value> {
    let buyer =
        sb.store.run(move |c| model::buyer_by_login(c, &login)).await?.ok_or_else(|| not_found("persona"))?;
    Ok(Json(json!({"login": buyer.login, "auth_code": trades::face_to_face::payment_code(&buyer.id)})))
}

async fn ensure_app(State(sb): State<Arc<Sandbox>>, Body(req): Body<AppRequest>) -> R<AppInfo> {
    let sb2 = sb.clone();
    sb.store.run(move |c| ensure_app_in(&sb2, c, &req)).await.map(Json)
}

async fn list_apps(State(sb): State<Arc<Sandbox>>) -> R<Vec<AppInfo>> {
    let sb2 = sb.clone();
    sb.store
        .run(move |c| {
            model::apps(c)?.iter().map(|a| app_info(&sb2, c, a, false)).collect::<Result<Vec<_>, _>>()
        })
        .await
        .map(Json)
}

/// `POST /sandbox/api/alipay-cert/rotate`: Alipay changes its public-key certificate. Answers to
/// apps in certificate mode name the new SN from now on; merchants download it by that SN.
async fn rotate_alipay_cert(State(sb): State<Arc<Sandbox>>) -> R<AlipayCertRotated> {
    let sb2 = sb.clone();
    sb.store
        .run(move |c| {
            let previous = sb2.alipay_cert(c)?.sn.to_string();
            let now = sb2.rotate_alipay_cert(c)?;
            events::record(
                c,
                sb2.now(),
                "alipay_cert.rotated",
                events::Scope::default(),
                format!("Alipay public-key certificate rotated: {previous} → {}", now.sn),
                json!({"previous": previous, "alipay_cert_sn": now.sn.to_string()}),
            )?;
            Ok::<_, ControlError>(AlipayCertRotated {
                previous,
                alipay_cert_sn: now.sn.to_string(),
                alipay_cert: now.pem,
            })
        })
        .await
        .map(Json)
}

async fn list_personas(State(sb): State<Arc<Sandbox>>) -> R<Vec<Persona>> {
    let v = sb
        .store
        .run(|c| {
            let mut out = Vec::new();
            for b in model::buyers(c)? {
                let accounts = model::accounts_of(c, &b.id)?;
                out.push(Persona {
                    id: b.id,
                    login: b.login,
                    real_name: b.real_name,
                    id_number: b.id_number,
                    phone: b.phone,
                    description: b.description,
                    locked_until: b.locked_until,
                    accounts,
                });
            }
            Ok::<_, StoreError>(out)
        })
        .await?;
    Ok(Json(v))
}

async fn create_persona(State(sb): State<Arc<Sandbox>>, Body(spec): Body<PersonaSpec>) -> R<PersonaCreated> {
    if spec.pay_password.len() != 6 || !spec.pay_password.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad("invalid_pay_password", "the payment password has 6 digits"));
    }
    let now = sb.now();
    let id = sb
        .store
        .run(move |c| {
            if model::buyer_by_login(c, &spec.login)?.is_some() {
                return Ok::<_, ControlError>(Err(bad("exists", "a persona with that login exists")));
            }
            let tx = c.transaction().map_err(StoreError::from)?;
            let id = personas::create(&tx, &spec, now)?;
            tx.commit().map_err(StoreError::from)?;
            Ok(Ok(id))
        })
        .await??;
    Ok(Json(PersonaCreated { id }))
}

async fn persona_accounts(
    State(sb): State<Arc<Sandbox>>,
    Path(login): Path<String>,
) -> R<Vec<model::Account>> {
    let v = sb
        .store
        .run(move |c| {
            let b = model::buyer_by_login(c, &login)?;
            match b {
                Some(b) => Ok::<_, StoreError>(Some(model::accounts_of(c, &b.id)?)),
                None => Ok(None),
            }
        })
        .await?;
    v.map(Json).ok_or_else(|| not_found("persona"))
}

async fn outcomes() -> Json<Vec<OutcomeInfo>> {
    Json(Outcome::ALL.into_iter().map(OutcomeInfo::of).collect())
}

async fn force(State(sb): State<Arc<Sandbox>>, Body(body): Body<Value>) -> R<Forced> {
    let req: ForceRequest = decode(
        body,
        "outcome",
        |o| Outcome::parse(o).is_some(),
        "unknown_outcome",
        |o| format!("unknown outcome {o:?}"),
    )?;
    let outcome = req.outcome;
    let now = sb.now();
    let id = sb
        .store
        .run(move |c| {
            let id = scenarios::force(c, req.app_id.as_deref(), req.out_trade_no.as_deref(), outcome, now)?;
            events::record(
                c,
                now,
                "scenario.forced",
                events::Scope {
                    app_id: req.app_id.as_deref(),
                    trade_no: None,
                    out_trade_no: req.out_trade_no.as_deref(),
                },
                format!("tester forced {}", outcome.as_str()),
                json!({}),
            )?;
            Ok::<_, StoreError>(id)
        })
        .await?;
    Ok(Json(Forced { id, outcome }))
}

async fn clear(State(sb): State<Arc<Sandbox>>, Path(out): Path<String>) -> R<Cleared> {
    let removed = sb.store.run(move |c| scenarios::clear(c, None, &out)).await?;
    Ok(Json(Cleared { removed }))
}

/// `POST /sandbox/api/pay`: pays a merchant order as a persona, without HTML.
async fn pay(State(sb): State<Arc<Sandbox>>, Body(body): Body<Value>) -> Result<Response, ControlError> {
    let req: PayRequest = decode(
        body,
        "channel",
        |c| PayWith::ALL.iter().any(|k| k.as_str() == c),
        "unknown_channel",
        str::to_owned,
    )?;
    let sb2 = sb.clone();
    let r = sb
        .store
        .run(move |c| {
            let tx = c.transaction().map_err(StoreError::from)?;
            let session: Option<model::Session> = match &req.app_id {
                Some(a) => model::session_for(&tx, a, &req.out_trade_no)?,
                None => {
                    let mut found = None;
                    for app in model::apps(&tx)? {
                        if let Some(s) = model::session_for(&tx, &app.app_id, &req.out_trade_no)? {
                            found = Some(s);
                            break;
                        }
                    }
                    found
                }
            };
            let s = session.ok_or_else(|| not_found("cashier session for that out_trade_no"))?;
            let app = model::app(&tx, &s.app_id)?.ok_or_else(|| not_found("app"))?;
            let buyer = model::buyer_by_login(&tx, &req.persona)?.ok_or_else(|| not_found("persona"))?;
            let ctx = Ctx { conn: &tx, sb: &sb2, app: &app, now: sb2.now() };
            let trade =
                trades::attach_buyer(&ctx, &s, &buyer).map_err(|e| bad("not_payable", e.message(true)))?;
            let account_id = match req.channel.account_kind() {
                None => "new_card".to_owned(),
                Some(kind) => model::accounts_of(&tx, &buyer.id)?
                    .into_iter()
                    .find(|a| a.kind == kind)
                    .map(|a| a.id)
                    .ok_or_else(|| {
                        bad("no_such_source", format!("{} has no {} source", buyer.login, kind.as_str()))
                    })?,
            };
            let choice = Choice { account_id, installments: req.installments, card: req.card.clone() };
            let confirmation = match req.password.as_deref() {
                Some(PayRequest::FINGERPRINT) => Confirmation::Fingerprint,
                Some(p) => Confirmation::Password(p.to_owned()),
                None => Confirmation::Password(buyer.pay_password.clone()),
            };
            let mut result = trades::pay(&ctx, &s, &buyer, &choice, &confirmation, None);
            if matches!(result, Err(PayError::SmsRequired)) && req.auto_sms {
                let outcomes = scenarios::for_trade(&tx, &app.app_id, &s.out_trade_no, None)?;
                let expired = outcomes.contains(&Outcome::SmsTimeout);
                let code = trades::send_sms(&ctx, &buyer, &format!("pay:{}", trade.trade_no), expired)
                    .map_err(|s| bad("sms", s.sub_msg.unwrap_or_default()))?;
                result = trades::pay(&ctx, &s, &buyer, &choice, &confirmation, Some(&code));
            }
            tx.commit().map_err(StoreError::from)?;
            Ok::<_, ControlError>(result)
        })
        .await?;
    Ok(match r {
        Ok(paid) => Json(PayAnswer::Paid(Paid {
            trade_no: paid.trade.trade_no,
            return_url: paid.return_url,
            charged_fen: paid.charged_fen,
        }))
        .into_response(),
        Err(error) => {
            let message = error.message(true);
            (StatusCode::UNPROCESSABLE_ENTITY, Json(PayAnswer::Refused(Refused { error, message })))
                .into_response()
        }
    })
}

async fn clock(State(sb): State<Arc<Sandbox>>) -> Json<ClockInfo> {
    let now = sb.now();
    Json(ClockInfo { now, alipay_time: haitao_alipay::time::format_alipay(now) })
}

async fn advance(State(sb): State<Arc<Sandbox>>, Body(a): Body<AdvanceClock>) -> R<ClockAdvanced> {
    if !(1..=366 * 86_400).contains(&a.seconds) {
        return Err(bad("invalid_seconds", "seconds must be between 1 and one year"));
    }
    let by = chrono::Duration::seconds(a.seconds);
    if !sb.advance_clock(by) {
        return Err(bad("fixed_clock", "this sandbox's clock cannot be moved"));
    }
    let now = sb.now();
    let _ = sb
        .store
        .run(move |c| {
            events::record(
                c,
                now,
                "clock.advanced",
                events::Scope::default(),
                format!("sandbox clock advanced by {}s", a.seconds),
                json!({}),
            )
        })
        .await;
    crate::notify::tick(&sb).await;
    Ok(Json(ClockAdvanced { now }))
}

/// The events after `q.since` that pass `q`'s filters, at most `limit`: read on in windows until
/// enough matched or the trace ends, so `since` pages through the filtered trace as through the
/// whole one (at most [`SCAN_LIMIT`] events are read per call; page on from the last `seq`).
fn filtered_events(c: &rusqlite::Connection, q: &EventQuery, limit: usize) -> Result<Vec<Event>, StoreError> {
    let filtered = q.kind.is_some() || q.method.is_some() || q.direction.is_some() || q.outcome.is_some();
    let window =
        if filtered { EventQuery::MAX_LIMIT } else { i64::try_from(limit).unwrap_or(EventQuery::MAX_LIMIT) };
    let mut out = Vec::new();
    let mut since = q.since.unwrap_or(0);
    let mut scanned = 0usize;
    loop {
        let batch = events::list(c, q.out_trade_no.as_deref(), since, window)?;
        let Some(last) = batch.last().map(|e| e.seq) else { break };
        let full = batch.len() >= usize::try_from(window).unwrap_or(usize::MAX);
        scanned += batch.len();
        out.extend(batch.into_iter().filter(|e| e.matches(q)));
        if out.len() >= limit || !full || scanned >= SCAN_LIMIT {
            break;
        }
        since = last;
    }
    out.truncate(limit);
    Ok(out)
}

/// The most events one trace call reads.
const SCAN_LIMIT: usize = 100_000;

async fn list_events(State(sb): State<Arc<Sandbox>>, Query(q): Query<EventQuery>) -> R<Vec<Event>> {
    let limit = usize::try_from(q.limit.unwrap_or(500).clamp(1, EventQuery::MAX_LIMIT)).unwrap_or(500);
    // Through the writer, which lands the gateway's deferred trace first.
    Ok(Json(sb.store.run(move |c| filtered_events(c, &q, limit)).await?))
}

async fn export_events(
    State(sb): State<Arc<Sandbox>>,
    Query(q): Query<EventQuery>,
) -> Result<Response, ControlError> {
    let (events, apps) = sb
        .store
        .run(move |c| {
            // The whole (filtered) trace, from the start.
            let from_start = EventQuery { since: None, ..q.clone() };
            let events = filtered_events(c, &from_start, SCAN_LIMIT)?;
            // The apps whose requests are in it, so another sandbox can take them again.
            let mut apps = Vec::new();
            for a in model::apps(c)? {
                if events.iter().any(|e| e.app_id.as_deref() == Some(a.app_id.as_str())) {
                    apps.push(ExportedApp {
                        app_id: a.app_id,
                        name: a.name,
                        seller_id: a.seller_id,
                        public_key: a.public_key,
                        app_cert: a.app_cert,
                        aes_key: a.aes_key.filter(|_| q.with_keys),
                    });
                }
            }
            Ok::<_, StoreError>((events, apps))
        })
        .await?;
    let body = serde_json::to_string_pretty(&EventExport { exported_at: sb.now(), events, apps })
        .unwrap_or_default();
    Ok((
        [
            (header::CONTENT_TYPE, "application/json"),
            (header::CONTENT_DISPOSITION, "attachment; filename=\"sandbox-events.json\""),
        ],
        body,
    )
        .into_response())
}

/// `POST /sandbox/api/notifications/{id}/resend`: sends a past notification again, now, exactly as
/// it was signed (the same `notify_id`: a merchant must take it as the same message), to the URL
/// it went to. A notification still being retried is sent now instead of later.
async fn resend_notification(State(sb): State<Arc<Sandbox>>, Path(id): Path<i64>) -> R<Value> {
    let sb2 = sb.clone();
    let resent = sb
        .store
        .run(move |c| {
            let now = sb2.now();
            let row: Option<(String, String, Option<String>)> = c
                .query_row(
                    "SELECT n.notify_id, n.state, t.out_trade_no FROM notifications n                      LEFT JOIN trades t ON t.trade_no = n.trade_no WHERE n.id = ?1",
                    [id],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                )
                .optional()
                .map_err(StoreError::from)?;
            let Some((notify_id, state, out_trade_no)) = row else { return Err(not_found("notification")) };
            c.execute(
                "UPDATE notifications SET state = 'pending', next_at = ?1 WHERE id = ?2",
                rusqlite::params![Stamp(now), id],
            )
            .map_err(StoreError::from)?;
            events::record(
                c,
                now,
                "notify.resent",
                events::Scope { out_trade_no: out_trade_no.as_deref(), ..Default::default() },
                format!("notification {notify_id} sent again by a tester (was {state})"),
                json!({"notification": id, "notify_id": notify_id, "was": state}),
            )?;
            Ok::<_, ControlError>(json!({"id": id, "notify_id": notify_id, "was": state}))
        })
        .await?;
    sb.wake.notify_waiters();
    Ok(Json(resent))
}

async fn trade(
    State(sb): State<Arc<Sandbox>>,
    Path(out): Path<String>,
    Query(q): Query<AppQuery>,
) -> R<TradeView> {
    let v = sb
        .store
        .run(move |c| {
            let apps = match q.app_id {
                Some(a) => model::app(c, &a)?.into_iter().collect(),
                None => model::apps(c)?,
            };
            for app in apps {
                if let Some(t) = model::trade_by_out(c, &app.app_id, &out)? {
                    let net = ledger::merchant_net_for_trade(c, &app.app_id, &t.trade_no)?;
                    return Ok::<_, StoreError>(Some(TradeView { trade: t, merchant_net_fen: net }));
                }
            }
            Ok(None)
        })
        .await?;
    v.map(Json).ok_or_else(|| not_found("trade"))
}

async fn notifications(State(sb): State<Arc<Sandbox>>, Query(q): Query<EventQuery>) -> R<Vec<Notification>> {
    let v = sb
        .store
        .run(move |c| {
            let mut st = c.prepare(
                "SELECT n.id, n.notify_id, n.trade_no, n.url, n.attempts, n.state, n.next_at, n.last_error, n.delivered_at, t.out_trade_no
                 FROM notifications n LEFT JOIN trades t ON t.trade_no = n.trade_no
                 WHERE (?1 IS NULL OR t.out_trade_no = ?1) ORDER BY n.id",
            )?;
            let rows = st
                .query_map([q.out_trade_no], |r| {
                    let state: String = r.get(5)?;
                    Ok(Notification {
                        id: r.get(0)?,
                        notify_id: r.get(1)?,
                        trade_no: r.get(2)?,
                        url: r.get(3)?,
                        attempts: r.get(4)?,
                        state: NotificationState::parse(&state)
                            .ok_or_else(|| model::unknown(5, "notification state", &state))?,
                        next_at: r.get::<_, Stamp>(6)?.0,
                        last_error: r.get(7)?,
                        delivered_at: r.get::<_, Option<Stamp>>(8)?.map(|s| s.0),
                        out_trade_no: r.get(9)?,
                    })
                })?
                .collect::<Result<Vec<_>, _>>()?;
            Ok::<_, StoreError>(rows)
        })
        .await?;
    Ok(Json(v))
}

async fn ledger_check(State(sb): State<Arc<Sandbox>>) -> R<ledger::Check> {
    Ok(Json(sb.store.run(|c| ledger::check(c)).await?))
}

async fn ledger_accounts(State(sb): State<Arc<Sandbox>>) -> R<Vec<model::Account>> {
    let v = sb
        .store
        .run(|c| {
            let mut st = c.prepare("SELECT DISTINCT owner FROM accounts ORDER BY owner")?;
            let owners: Vec<String> = st.query_map([], |r| r.get(0))?.collect::<Result<_, _>>()?;
            let mut all = Vec::new();
            for o in owners {
                all.extend(model::accounts_of(c, &o)?);
            }
            Ok::<_, StoreError>(all)
        })
        .await?;
    Ok(Json(v))
}

async fn sms_inbox(State(sb): State<Arc<Sandbox>>, Path(phone): Path<String>) -> R<Vec<SmsMessage>> {
    let v = sb
        .store
        .run(move |c| {
            let mut st = c.prepare("SELECT code, purpose, created_at, expires_at, used FROM sms_inbox WHERE phone = ?1 ORDER BY id DESC LIMIT 20")?;
            let rows = st
                .query_map([phone], |r| {
                    Ok(SmsMessage {
                        code: r.get(0)?,
                        purpose: r.get(1)?,
                        created_at: r.get::<_, Stamp>(2)?.0,
                        expires_at: r.get::<_, Stamp>(3)?.0,
                        used: r.get::<_, i64>(4)? == 1,
                    })
                })?
                .collect::<Result<Vec<_>, _>>()?;
            Ok::<_, StoreError>(rows)
        })
        .await?;
    Ok(Json(v))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn controls_answer_this_machine_and_no_foreign_page() {
        let own: url::Url = "http://127.0.0.1:9090/".parse().unwrap();
        let here = Some("127.0.0.1".parse().unwrap());
        let v6 = Some("::1".parse().unwrap());
        let lan = Some("192.0.2.7".parse().unwrap());
        assert_eq!(control_access(here, false, None, &own), Ok(()));
        assert_eq!(control_access(v6, false, None, &own), Ok(()));
        assert_eq!(control_access(here, false, Some("http://127.0.0.1:9090"), &own), Ok(()));
        assert!(control_access(lan, false, None, &own).is_err());
        assert!(control_access(None, false, None, &own).is_err());
        assert_eq!(control_access(lan, true, None, &own), Ok(()));
        assert!(control_access(here, false, Some("https://evil.example"), &own).is_err());
        assert!(control_access(lan, true, Some("null"), &own).is_err());
    }
}
