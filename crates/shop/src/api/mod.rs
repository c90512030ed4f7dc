//! The `/api/v1` HTTP API. Every error is `application/problem+json`; every private route needs a
//! bearer access token; request bodies are limited.
//!
//! Handlers live in one module per part of the API: `public` (health, payment config, fx, catalog,
//! images), `accounts`, `cart` (and checkout quotes), `orders`, `payments`, `support` and
//! `test_controls`. Each keeps what only it uses; what several of them use is here, beside the
//! extractors, the OpenAPI document and the router.

use std::sync::Arc;

use axum::Router;
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{DefaultBodyLimit, FromRequest, FromRequestParts, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use haitao_alipay::money::{Currency, Money};
use haitao_shop_api::account::Quota;
use haitao_shop_api::error::{ErrorCode, Problem};
use haitao_shop_api::orders::{MethodQuote, PaymentMethod};
use serde::Deserialize;
use utoipa::OpenApi;

use crate::error::{ApiError, ApiResult};
use crate::pricing::quote_method;
use crate::sqlite::quota_year;
use crate::state::Shop;
use crate::store::AccountRow;

mod accounts;
mod admin;
mod cart;
mod orders;
mod payments;
mod public;
mod support;
mod test_controls;

// ---------------------------------------------------------------------------------------------
// Extractors whose rejections are problem documents

impl From<JsonRejection> for ApiError {
    fn from(r: JsonRejection) -> Self {
        if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, ErrorCode::PayloadTooLarge, "request body too large")
        } else {
            ApiError::bad_request("the request body is not valid JSON for this endpoint")
                .detail(r.body_text())
        }
    }
}

impl From<QueryRejection> for ApiError {
    fn from(r: QueryRejection) -> Self {
        ApiError::bad_request("invalid query parameters").detail(r.body_text())
    }
}

impl From<PathRejection> for ApiError {
    fn from(r: PathRejection) -> Self {
        ApiError::bad_request("invalid path").detail(r.body_text())
    }
}

#[derive(Debug, FromRequest)]
#[from_request(via(axum::Json), rejection(ApiError))]
pub struct Body<T>(pub T);

#[derive(Debug, FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(ApiError))]
pub struct Q<T>(pub T);

#[derive(Debug, FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(ApiError))]
pub struct P<T>(pub T);

type S = State<Arc<Shop>>;

/// The largest JSON body accepted.
pub const MAX_BODY: usize = 64 * 1024;

// ---------------------------------------------------------------------------------------------
// Shared by the handler modules

/// A paging parameter outside the range the OpenAPI document states is refused, not clamped, so a
/// client learns of its mistake instead of silently getting another page size than it asked for.
fn in_range(field: &str, value: Option<u32>, min: u32, max: u32) -> ApiResult<()> {
    match value {
        Some(v) if !(min..=max).contains(&v) => {
            Err(ApiError::validation(field, format!("{field} must be between {min} and {max}")))
        }
        _ => Ok(()),
    }
}

/// The query of a changes feed (`/catalog/changes`, `/orders/changes`).
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct Since {
    /// Catalog version or order cursor already held.
    #[serde(default)]
    since: Option<i64>,
    /// At most this many changes in one answer.
    #[serde(default)]
    #[param(minimum = 1, maximum = 500)]
    limit: Option<u32>,
}

/// The signed-in account; one that no longer exists answers 401.
async fn load_account(shop: &Arc<Shop>, id: &str) -> ApiResult<AccountRow> {
    let id = id.to_owned();
    shop.blocking(move |s| s.account(&id)).await?.ok_or_else(ApiError::unauthorized)
}

/// The orderer's cross-border quota for the current year: what is used, reserved by unpaid
/// orders, and left.
async fn quota_for(shop: &Arc<Shop>, id_number: &str) -> ApiResult<Quota> {
    let year = quota_year(shop.now());
    let idn = id_number.to_owned();
    let (used, reserved) = shop.blocking(move |s| s.quota_usage(&idn, year)).await?;
    let limit = shop.pricing.annual_limit;
    let cny = |f| Money::from_minor(f, Currency::Cny);
    Ok(Quota {
        year,
        annual_limit: limit,
        order_limit: shop.pricing.order_limit,
        used: cny(used),
        reserved: cny(reserved),
        remaining: cny((limit.minor() - used - reserved).max(0)),
    })
}

/// What `total` costs with each payment method the shop offers.
fn all_methods(shop: &Shop, total: Money) -> ApiResult<Vec<MethodQuote>> {
    let mut methods = vec![PaymentMethod::Balance, PaymentMethod::BankCard, PaymentMethod::Huabei];
    methods
        .extend(shop.pricing.huabei.iter().map(|t| PaymentMethod::HuabeiInstallments { periods: t.periods }));
    methods.push(PaymentMethod::InternationalCard);
    methods.into_iter().map(|m| quote_method(&shop.pricing, total, m).map_err(ApiError::internal)).collect()
}

// ---------------------------------------------------------------------------------------------
// The OpenAPI document, the router and its fallbacks

#[derive(Debug, OpenApi)]
#[openapi(
    info(title = "Haitao shop API", description = "The storefront API of Haitao (海淘): catalog, accounts, cart, orders, Alipay payments, customs, logistics and support. Errors are application/problem+json."),
    paths(
        public::health, public::payment_config, public::fx, public::categories, public::products, public::facets,
        public::product, public::catalog_changes, public::image,
        accounts::register, accounts::login, accounts::refresh, accounts::logout, accounts::logout_all,
        accounts::account, accounts::real_name, accounts::quota, accounts::addresses, accounts::add_address,
        accounts::update_address, accounts::delete_address,
        cart::cart, cart::set_item, cart::clear_cart, cart::cart_quotes,
        orders::create_order, orders::orders, orders::order_changes, orders::order, orders::order_quotes,
        orders::start_payment, orders::cancel_order, orders::request_refund, orders::correct_orderer,
        payments::payment, payments::confirm, payments::abandon, payments::alipay_notify,
        payments::alipay_return,
        support::tickets, support::new_ticket, support::ticket, support::ticket_message,
        test_controls::test_advance, test_controls::test_jobs, test_controls::test_inspection,
        admin::reconciliations, admin::reconciliation, admin::reconcile_day,
        crate::invoice::invoice,
    ),
    components(schemas(Problem, ErrorCode, haitao_shop_api::catalog::Sort)),
    modifiers(&Security),
)]
pub struct ApiDoc;

struct Security;

impl utoipa::Modify for Security {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
        // The merchant's admin token (not a buyer's access token).
        components.add_security_scheme(
            "admin",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// The media type of every error answer.
const PROBLEM_JSON: &str = "application/problem+json";

/// The OpenAPI document the shop serves: the one generated from the handlers, completed with the
/// answers every route can give besides its own (a malformed request, a missing sign-in, an
/// oversized body, a field that fails validation, an unknown id), all as `application/problem+json`.
/// Generated clients and schema-driven testers (`make test` runs schemathesis against it) see the
/// API as it really behaves.
pub fn openapi_document() -> Result<serde_json::Value, serde_json::Error> {
    let mut doc = serde_json::to_value(ApiDoc::openapi())?;
    complete_error_answers(&mut doc);
    Ok(doc)
}

fn complete_error_answers(doc: &mut serde_json::Value) {
    use serde_json::{Value, json};
    const PROBLEM_REF: &str = "#/components/schemas/Problem";
    let problem = |description: &str| json!({ "description": description, "content": { PROBLEM_JSON: { "schema": { "$ref": PROBLEM_REF } } } });
    let Some(paths) = doc.get_mut("paths").and_then(Value::as_object_mut) else { return };
    for (path, item) in paths.iter_mut() {
        let Some(item) = item.as_object_mut() else { continue };
        for (method, op) in item.iter_mut() {
            if !matches!(method.as_str(), "get" | "post" | "put" | "delete" | "patch") {
                continue;
            }
            let has_body = op.get("requestBody").is_some();
            let has_params = op.get("parameters").and_then(Value::as_array).is_some_and(|p| !p.is_empty());
            let private = op.get("security").is_some();
            let may_be_missing =
                path.contains('{') || path.starts_with("/api/v1/test/") || path.starts_with("/api/v1/admin/");
            let Some(responses) = op.get_mut("responses").and_then(Value::as_object_mut) else { continue };
            for answer in responses.values_mut() {
                let Some(content) = answer.get_mut("content").and_then(Value::as_object_mut) else {
                    continue;
                };
                let is_problem = content
                    .get("application/json")
                    .and_then(|c| c.pointer("/schema/$ref"))
                    .and_then(Value::as_str)
                    == Some(PROBLEM_REF);
                if let Some(media) = is_problem.then(|| content.remove("application/json")).flatten() {
                    content.insert(PROBLEM_JSON.to_owned(), media);
                }
            }
            let mut add = |status: &str, description: &str| {
                responses.entry(status).or_insert_with(|| problem(description));
            };
            if has_body || has_params {
                add(
                    "400",
                    "The request is malformed: a body that is not the expected JSON, or a parameter of the wrong type.",
                );
                add("422", "A field is outside its allowed range or fails validation; `field` names it.");
            }
            if has_body {
                add("413", "The body is larger than the shop accepts.");
            }
            if private {
                add("401", "Sign-in required: the access token is missing, expired or revoked.");
            }
            if may_be_missing {
                add(
                    "404",
                    "No such resource for this account (or test controls or admin endpoints are off).",
                );
            }
        }
    }
}

async fn openapi_json() -> Response {
    match openapi_document().and_then(|doc| serde_json::to_string(&doc)) {
        Ok(json) => ([(header::CONTENT_TYPE, "application/json")], json).into_response(),
        Err(e) => ApiError::internal(e).into_response(),
    }
}

async fn not_found() -> ApiError {
    ApiError::not_found("endpoint")
}

pub(super) async fn method_not_allowed() -> ApiError {
    ApiError::new(StatusCode::METHOD_NOT_ALLOWED, ErrorCode::BadRequest, "method not allowed")
}

pub fn router(shop: Arc<Shop>) -> Router {
    let api = Router::new()
        .route("/health", get(public::health))
        .route("/payment-config", get(public::payment_config))
        .route("/fx", get(public::fx))
        .route("/openapi.json", get(openapi_json))
        .route("/catalog/categories", get(public::categories))
        .route("/catalog/products", get(public::products))
        .route("/catalog/facets", get(public::facets))
        .route("/catalog/products/{id}", get(public::product))
        .route("/catalog/changes", get(public::catalog_changes))
        .route("/images/{name}", get(public::image))
        .route("/auth/register", post(accounts::register))
        .route("/auth/login", post(accounts::login))
        .route("/auth/refresh", post(accounts::refresh))
        .route("/auth/logout", post(accounts::logout))
        .route("/auth/logout-all", post(accounts::logout_all))
        .route("/account", get(accounts::account))
        .route("/account/real-name", post(accounts::real_name))
        .route("/account/quota", get(accounts::quota))
        .route("/account/addresses", get(accounts::addresses).post(accounts::add_address))
        .route("/account/addresses/{id}", put(accounts::update_address).delete(accounts::delete_address))
        .route("/cart", get(cart::cart).delete(cart::clear_cart))
        .route("/cart/items/{product_id}", put(cart::set_item))
        .route("/checkout/quotes", get(cart::cart_quotes))
        .route("/orders", get(orders::orders).post(orders::create_order))
        .route("/orders/changes", get(orders::order_changes))
        .route("/orders/{id}", get(orders::order))
        .route("/orders/{id}/quotes", get(orders::order_quotes))
        .route("/orders/{id}/payments", post(orders::start_payment))
        .route("/orders/{id}/cancel", post(orders::cancel_order))
        .route("/orders/{id}/refunds", post(orders::request_refund))
        .route("/orders/{id}/orderer", post(orders::correct_orderer))
        .route("/orders/{id}/invoice.pdf", get(crate::invoice::invoice))
        .route("/payments/{id}", get(payments::payment))
        .route("/payments/{id}/confirm", post(payments::confirm))
        .route("/payments/{id}/abandon", post(payments::abandon))
        .route("/alipay/notify", post(payments::alipay_notify))
        .route("/alipay/return", get(payments::alipay_return))
        .route("/tickets", get(support::tickets).post(support::new_ticket))
        .route("/tickets/{id}", get(support::ticket))
        .route("/tickets/{id}/messages", post(support::ticket_message))
        .route("/test/clock/advance", post(test_controls::test_advance))
        .route("/test/jobs/run", post(test_controls::test_jobs))
        .route("/test/orders/{id}/inspection-fail", post(test_controls::test_inspection))
        .merge(admin::routes(shop.clone()))
        .method_not_allowed_fallback(method_not_allowed);
    Router::new()
        .nest("/api/v1", api)
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(shop)
}
