//! The `/api/v1` HTTP API. Every error is `application/problem+json`; every private route needs a
//! bearer access token; request bodies are limited.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{DefaultBodyLimit, FromRequest, FromRequestParts, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use haitao_alipay::money::{Currency, Money};
use haitao_shop_api::account::{
    Account, Address, AddressInput, Credentials, Quota, RealName, RealNameRequest, RefreshRequest, TokenPair,
};
use haitao_shop_api::catalog::{
    CatalogChanges, CategoryInfo, FxQuote, FxTable, ProductDetail, ProductPage, ProductQuery,
};
use haitao_shop_api::error::{ErrorCode, Problem};
use haitao_shop_api::orders::{
    Cart, CartLine, CartNotice, ConfirmPayment, CorrectOrderer, CreateOrder, MethodQuote, Order,
    OrderChanges, OrderPage, OrderStatus, PaymentAttempt, PaymentMethod, RefundStatus, RequestRefund,
    SetQuantity, StartPayment,
};
use haitao_shop_api::support::{Author, NewMessage, NewTicket, Ticket, TicketStatus};
use haitao_shop_api::{Health, IDEMPOTENCY_KEY, PaymentConfig};
use serde::Deserialize;
use utoipa::OpenApi;

use crate::auth::{self, Authed};
use crate::error::{ApiError, ApiResult};
use crate::identity::{ResidentId, mask_id, mask_phone, normalise_phone, valid_name};
use crate::limits::ClientKey;
use crate::payments;
use crate::pricing::{limit_notices, price, quote_method};
use crate::sqlite::quota_year;
use crate::state::Shop;
use crate::store::{AccountRow, AddressEvent, Created, NewOrder, Refreshed, RefundRow};
use crate::support;

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
// Public

#[utoipa::path(get, path = "/api/v1/health", tag = "shop", responses((status = 200, body = Health)))]
async fn health(State(shop): S) -> Json<Health> {
    Json(Health { status: "ok".into(), version: env!("CARGO_PKG_VERSION").into(), now: shop.now() })
}

#[utoipa::path(get, path = "/api/v1/payment-config", tag = "shop", responses((status = 200, body = PaymentConfig)))]
async fn payment_config(State(shop): S) -> Json<PaymentConfig> {
    Json(shop.payment_config.clone())
}

#[utoipa::path(get, path = "/api/v1/fx", tag = "catalog", responses((status = 200, body = FxTable)))]
async fn fx(State(shop): S) -> Json<FxTable> {
    let fx = shop.fx();
    Json(FxTable {
        as_of: fx.as_of,
        source: fx.source.clone(),
        rates: fx
            .rates
            .iter()
            .map(|(c, r)| FxQuote {
                from: *c,
                cny_per_unit_ppm: *r,
                as_of: fx.as_of,
                source: fx.source.clone(),
            })
            .collect(),
    })
}

#[utoipa::path(get, path = "/api/v1/catalog/categories", tag = "catalog", responses((status = 200, body = [CategoryInfo])))]
async fn categories(State(shop): S) -> ApiResult<Json<Vec<CategoryInfo>>> {
    Ok(Json(shop.blocking(|s| s.categories()).await?))
}

#[utoipa::path(get, path = "/api/v1/catalog/products", tag = "catalog", params(ProductQuery),
    responses((status = 200, body = ProductPage), (status = 400, body = Problem)))]
async fn products(State(shop): S, Q(q): Q<ProductQuery>) -> ApiResult<Json<ProductPage>> {
    if q.q.as_deref().is_some_and(|t| t.chars().count() > 100) {
        return Err(ApiError::validation("q", "search text is limited to 100 characters"));
    }
    in_range("page", q.page, 1, ProductQuery::MAX_PAGE)?;
    in_range("per_page", q.per_page, 1, ProductQuery::MAX_PER_PAGE)?;
    Ok(Json(shop.blocking(move |s| s.search(&q)).await?))
}

#[utoipa::path(get, path = "/api/v1/catalog/products/{id}", tag = "catalog", params(("id" = String, Path)),
    responses((status = 200, body = ProductDetail), (status = 404, body = Problem)))]
async fn product(State(shop): S, P(id): P<String>) -> ApiResult<Json<ProductDetail>> {
    let row = shop.blocking(move |s| s.product(&id)).await?.ok_or_else(|| ApiError::not_found("product"))?;
    Ok(Json(row.detail(&shop.pricing, &shop.fx())?))
}

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

#[utoipa::path(get, path = "/api/v1/catalog/changes", tag = "catalog", params(Since), responses((status = 200, body = CatalogChanges)))]
async fn catalog_changes(State(shop): S, Q(q): Q<Since>) -> ApiResult<Json<CatalogChanges>> {
    in_range("limit", q.limit, 1, 500)?;
    let fx = shop.fx();
    let cfg = shop.pricing.clone();
    Ok(Json(
        shop.blocking(move |s| s.catalog_changes(q.since.unwrap_or(0), q.limit.unwrap_or(500), &cfg, &fx))
            .await?,
    ))
}

#[utoipa::path(get, path = "/api/v1/images/{name}", tag = "catalog", params(("name" = String, Path)),
    responses((status = 200, content_type = "image/svg+xml", body = String), (status = 404, body = Problem)))]
async fn image(P(name): P<String>) -> Response {
    match crate::catalog::image(&name) {
        Some((bytes, ct)) => (
            [
                (header::CONTENT_TYPE, ct),
                (header::CACHE_CONTROL, "public, max-age=86400"),
                (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            ],
            bytes,
        )
            .into_response(),
        None => ApiError::not_found("image").into_response(),
    }
}

// ---------------------------------------------------------------------------------------------
// Accounts

fn account_view(a: &AccountRow) -> Account {
    Account {
        id: a.id.clone(),
        phone_masked: mask_phone(&a.phone),
        real_name: match (&a.real_name, &a.id_number, a.birth_date, a.verified_at) {
            (Some(name), Some(id), Some(birth), Some(at)) => Some(RealName {
                name: name.clone(),
                id_number_masked: mask_id(id),
                birth_date: birth,
                verified_at: at,
            }),
            _ => None,
        },
        created_at: a.created_at,
    }
}

async fn new_session(shop: &Arc<Shop>, account_id: &str) -> ApiResult<TokenPair> {
    let now = shop.now();
    let (pair, hashes) = auth::issue(now)?;
    let family = shop.id("SF");
    let aid = account_id.to_owned();
    shop.blocking(move |s| s.create_session(&family, &aid, &hashes, now)).await?;
    Ok(pair)
}

#[utoipa::path(post, path = "/api/v1/auth/register", tag = "account", request_body = Credentials,
    responses((status = 201, body = TokenPair), (status = 409, body = Problem), (status = 422, body = Problem), (status = 429, body = Problem)))]
async fn register(
    State(shop): S,
    client: ClientKey,
    Body(c): Body<Credentials>,
) -> ApiResult<(StatusCode, Json<TokenPair>)> {
    let phone = normalise_phone(&c.phone)
        .ok_or_else(|| ApiError::validation("phone", "enter an 11-digit mainland mobile number"))?;
    auth::check_password_rules(c.password.expose())?;
    // Counted before the work, and kept whatever the outcome: a number already taken (409) is an
    // attempt too, or one address could probe which numbers are registered, hashing for free.
    let _counted = client.reserve(&shop, AddressEvent::Registration).await?;
    let hash = {
        let pw = c.password.clone();
        tokio::task::spawn_blocking(move || auth::hash_password(pw.expose()))
            .await
            .map_err(ApiError::internal)??
    };
    let id = shop.id("AC");
    let now = shop.now();
    let (id2, phone2) = (id.clone(), phone.clone());
    shop.blocking(move |s| s.create_account(&id2, &phone2, &hash, now)).await?;
    tracing::info!(account = %id, phone = %mask_phone(&phone), "account registered");
    Ok((StatusCode::CREATED, Json(new_session(&shop, &id).await?)))
}

#[utoipa::path(post, path = "/api/v1/auth/login", tag = "account", request_body = Credentials,
    responses((status = 200, body = TokenPair), (status = 401, body = Problem), (status = 429, body = Problem)))]
async fn login(State(shop): S, client: ClientKey, Body(c): Body<Credentials>) -> ApiResult<Json<TokenPair>> {
    let bad = || {
        ApiError::new(StatusCode::UNAUTHORIZED, ErrorCode::BadCredentials, "wrong phone number or password")
    };
    // Counted as a failure before the password is checked, and taken back if it was right.
    let counted = client.reserve(&shop, AddressEvent::LoginFailure).await?;
    let phone = normalise_phone(&c.phone).ok_or_else(bad)?;
    let now = shop.now();
    let since = now - auth::LOGIN_WINDOW;
    let p2 = phone.clone();
    let failures = shop.blocking(move |s| s.login_failures_since(&p2, since)).await?;
    if failures >= auth::LOGIN_ATTEMPTS {
        let secs = u32::try_from(auth::LOGIN_WINDOW.num_seconds()).unwrap_or(900);
        return Err(ApiError::rate_limited(secs));
    }
    let p2 = phone.clone();
    let account = shop.blocking(move |s| s.account_by_phone(&p2)).await?;
    let pw = c.password.clone();
    let hash = account.as_ref().map(|a| a.password_hash.clone());
    // Verify even for unknown numbers, so timing does not reveal which numbers are registered.
    let ok = tokio::task::spawn_blocking(move || {
        auth::verify_password(
            pw.expose(),
            hash.as_deref().unwrap_or(
                "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHQ$9sTbSlTio3Biev89thdrlKKiCaYsjjYVJxGAL3swxpQ",
            ),
        )
    })
    .await
    .map_err(ApiError::internal)?;
    match account {
        Some(a) if ok => {
            let p2 = phone.clone();
            shop.blocking(move |s| s.clear_login_failures(&p2)).await?;
            counted.undo(&shop).await?;
            Ok(Json(new_session(&shop, &a.id).await?))
        }
        _ => {
            shop.blocking(move |s| s.record_login_failure(&phone, now)).await?;
            Err(bad())
        }
    }
}

#[utoipa::path(post, path = "/api/v1/auth/refresh", tag = "account", request_body = RefreshRequest,
    responses((status = 200, body = TokenPair), (status = 401, body = Problem)))]
async fn refresh(State(shop): S, Body(r): Body<RefreshRequest>) -> ApiResult<Json<TokenPair>> {
    let now = shop.now();
    let (pair, hashes) = auth::issue(now)?;
    let hash = auth::token_hash(r.refresh_token.expose());
    match shop.blocking(move |s| s.refresh(&hash, &hashes, now)).await? {
        Refreshed::Rotated { .. } => Ok(Json(pair)),
        Refreshed::Reused => {
            tracing::warn!("a used refresh token was presented again; the session was revoked");
            Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                ErrorCode::TokenRevoked,
                "this session was ended; sign in again",
            ))
        }
        Refreshed::Invalid => {
            Err(ApiError::new(StatusCode::UNAUTHORIZED, ErrorCode::TokenRevoked, "sign in again"))
        }
    }
}

#[utoipa::path(post, path = "/api/v1/auth/logout", tag = "account", security(("bearer" = [])), responses((status = 204)))]
async fn logout(State(shop): S, a: Authed) -> ApiResult<StatusCode> {
    let now = shop.now();
    shop.blocking(move |s| s.revoke_family(&a.family_id, "signed out", now)).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(post, path = "/api/v1/auth/logout-all", tag = "account", security(("bearer" = [])), responses((status = 204)))]
async fn logout_all(State(shop): S, a: Authed) -> ApiResult<StatusCode> {
    let now = shop.now();
    shop.blocking(move |s| s.revoke_all(&a.account_id, now)).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn load_account(shop: &Arc<Shop>, id: &str) -> ApiResult<AccountRow> {
    let id = id.to_owned();
    shop.blocking(move |s| s.account(&id)).await?.ok_or_else(ApiError::unauthorized)
}

#[utoipa::path(get, path = "/api/v1/account", tag = "account", security(("bearer" = [])),
    responses((status = 200, body = Account), (status = 401, body = Problem)))]
async fn account(State(shop): S, a: Authed) -> ApiResult<Json<Account>> {
    Ok(Json(account_view(&load_account(&shop, &a.account_id).await?)))
}

#[utoipa::path(post, path = "/api/v1/account/real-name", tag = "account", security(("bearer" = [])), request_body = RealNameRequest,
    responses((status = 200, body = Account), (status = 422, body = Problem)))]
async fn real_name(State(shop): S, a: Authed, Body(r): Body<RealNameRequest>) -> ApiResult<Json<Account>> {
    if !valid_name(&r.name) {
        return Err(ApiError::validation("name", "enter the name exactly as on the identity card"));
    }
    let today = shop.now().with_timezone(&haitao_alipay::time::shanghai()).date_naive();
    let id = ResidentId::parse(&r.id_number, today)
        .map_err(|e| ApiError::validation("id_number", e.to_string()))?;
    let now = shop.now();
    let (aid, name, number, birth) =
        (a.account_id.clone(), r.name.trim().to_owned(), id.as_str().to_owned(), id.birth_date());
    shop.blocking(move |s| s.set_real_name(&aid, &name, &number, birth, now)).await?;
    Ok(Json(account_view(&load_account(&shop, &a.account_id).await?)))
}

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

#[utoipa::path(get, path = "/api/v1/account/quota", tag = "account", security(("bearer" = [])),
    responses((status = 200, body = Quota), (status = 409, body = Problem)))]
async fn quota(State(shop): S, a: Authed) -> ApiResult<Json<Quota>> {
    let acc = load_account(&shop, &a.account_id).await?;
    let id = acc
        .id_number
        .ok_or_else(|| ApiError::conflict(ErrorCode::RealNameRequired, "verify your real name first"))?;
    Ok(Json(quota_for(&shop, &id).await?))
}

fn check_address(a: &AddressInput) -> ApiResult<()> {
    if !valid_name(&a.recipient) {
        return Err(ApiError::validation("recipient", "enter the recipient's name"));
    }
    if normalise_phone(&a.phone).is_none() {
        return Err(ApiError::validation("phone", "enter an 11-digit mainland mobile number"));
    }
    for (field, v, max) in [
        ("province", &a.province, 20),
        ("city", &a.city, 30),
        ("district", &a.district, 30),
        ("street", &a.street, 120),
    ] {
        let n = v.trim().chars().count();
        if n == 0 || n > max {
            return Err(ApiError::validation(
                field,
                format!("{field} is required (at most {max} characters)"),
            ));
        }
    }
    if let Some(p) = &a.postal_code
        && !(p.is_empty() || (p.len() == 6 && p.bytes().all(|b| b.is_ascii_digit())))
    {
        return Err(ApiError::validation("postal_code", "a postal code has 6 digits"));
    }
    Ok(())
}

#[utoipa::path(get, path = "/api/v1/account/addresses", tag = "account", security(("bearer" = [])), responses((status = 200, body = [Address])))]
async fn addresses(State(shop): S, a: Authed) -> ApiResult<Json<Vec<Address>>> {
    Ok(Json(shop.blocking(move |s| s.addresses(&a.account_id)).await?))
}

#[utoipa::path(post, path = "/api/v1/account/addresses", tag = "account", security(("bearer" = [])), request_body = AddressInput,
    responses((status = 201, body = Address), (status = 422, body = Problem)))]
async fn add_address(
    State(shop): S,
    a: Authed,
    Body(input): Body<AddressInput>,
) -> ApiResult<(StatusCode, Json<Address>)> {
    check_address(&input)?;
    let id = shop.id("AD");
    let now = shop.now();
    let saved = shop.blocking(move |s| s.save_address(&a.account_id, &id, &input, now)).await?;
    Ok((StatusCode::CREATED, Json(saved)))
}

#[utoipa::path(put, path = "/api/v1/account/addresses/{id}", tag = "account", security(("bearer" = [])), request_body = AddressInput,
    params(("id" = String, Path)), responses((status = 200, body = Address), (status = 404, body = Problem)))]
async fn update_address(
    State(shop): S,
    a: Authed,
    P(id): P<String>,
    Body(input): Body<AddressInput>,
) -> ApiResult<Json<Address>> {
    check_address(&input)?;
    let now = shop.now();
    let (aid, id2) = (a.account_id.clone(), id.clone());
    if shop.blocking(move |s| s.address(&aid, &id2)).await?.is_none() {
        return Err(ApiError::not_found("address"));
    }
    Ok(Json(shop.blocking(move |s| s.save_address(&a.account_id, &id, &input, now)).await?))
}

#[utoipa::path(delete, path = "/api/v1/account/addresses/{id}", tag = "account", security(("bearer" = [])),
    params(("id" = String, Path)), responses((status = 204), (status = 404, body = Problem)))]
async fn delete_address(State(shop): S, a: Authed, P(id): P<String>) -> ApiResult<StatusCode> {
    if shop.blocking(move |s| s.delete_address(&a.account_id, &id)).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found("address"))
    }
}

// ---------------------------------------------------------------------------------------------
// Cart and checkout

async fn build_cart(shop: &Arc<Shop>, account_id: &str) -> ApiResult<Cart> {
    let aid = account_id.to_owned();
    let items = shop.blocking(move |s| s.cart(&aid)).await?;
    let acc = load_account(shop, account_id).await?;
    let quota = match &acc.id_number {
        Some(id) => Some(quota_for(shop, id).await?),
        None => None,
    };
    let fx = shop.fx();
    let mut notices = Vec::new();
    if items.is_empty() {
        notices.push(CartNotice::EmptyCart);
    }
    if acc.real_name.is_none() {
        notices.push(CartNotice::RealNameRequired);
    }
    for (p, q) in &items {
        if *q > p.available() {
            notices.push(CartNotice::StockShort { product_id: p.id.clone(), available: p.available() });
        }
    }
    let zero = Money::zero(Currency::Cny);
    let (lines, totals) = if items.is_empty() {
        (
            Vec::new(),
            haitao_shop_api::orders::Totals {
                goods: zero,
                shipping: zero,
                tax: zero,
                dutiable: zero,
                total: zero,
            },
        )
    } else {
        let inputs: Vec<_> = items.iter().map(|(p, q)| p.line(*q)).collect();
        let priced = price(&shop.pricing, &fx, &inputs).map_err(ApiError::internal)?;
        notices.extend(limit_notices(&shop.pricing, &priced, quota.as_ref().map(|q| q.remaining)));
        let lines = items
            .iter()
            .zip(priced.lines)
            .map(|((p, _), pricing)| CartLine { product: p.summary(), pricing })
            .collect();
        (lines, priced.totals)
    };
    Ok(Cart { lines, totals, notices, quota_remaining: quota.map(|q| q.remaining), updated_at: shop.now() })
}

#[utoipa::path(get, path = "/api/v1/cart", tag = "cart", security(("bearer" = [])), responses((status = 200, body = Cart)))]
async fn cart(State(shop): S, a: Authed) -> ApiResult<Json<Cart>> {
    Ok(Json(build_cart(&shop, &a.account_id).await?))
}

#[utoipa::path(put, path = "/api/v1/cart/items/{product_id}", tag = "cart", security(("bearer" = [])), request_body = SetQuantity,
    params(("product_id" = String, Path)), responses((status = 200, body = Cart), (status = 404, body = Problem), (status = 422, body = Problem)))]
async fn set_item(
    State(shop): S,
    a: Authed,
    P(pid): P<String>,
    Body(q): Body<SetQuantity>,
) -> ApiResult<Json<Cart>> {
    if !(0..=99).contains(&q.quantity) {
        return Err(ApiError::validation("quantity", "a quantity is between 0 and 99"));
    }
    let p2 = pid.clone();
    let product =
        shop.blocking(move |s| s.product(&p2)).await?.ok_or_else(|| ApiError::not_found("product"))?;
    if q.quantity > product.available() {
        return Err(ApiError::conflict(ErrorCode::OutOfStock, format!("only {} left", product.available())));
    }
    let now = shop.now();
    let aid = a.account_id.clone();
    shop.blocking(move |s| s.set_cart_quantity(&aid, &pid, q.quantity, now)).await?;
    Ok(Json(build_cart(&shop, &a.account_id).await?))
}

#[utoipa::path(delete, path = "/api/v1/cart", tag = "cart", security(("bearer" = [])), responses((status = 200, body = Cart)))]
async fn clear_cart(State(shop): S, a: Authed) -> ApiResult<Json<Cart>> {
    let aid = a.account_id.clone();
    shop.blocking(move |s| s.clear_cart(&aid)).await?;
    Ok(Json(build_cart(&shop, &a.account_id).await?))
}

fn all_methods(shop: &Shop, total: Money) -> ApiResult<Vec<MethodQuote>> {
    let mut methods = vec![PaymentMethod::Balance, PaymentMethod::BankCard, PaymentMethod::Huabei];
    methods
        .extend(shop.pricing.huabei.iter().map(|t| PaymentMethod::HuabeiInstallments { periods: t.periods }));
    methods.push(PaymentMethod::InternationalCard);
    methods.into_iter().map(|m| quote_method(&shop.pricing, total, m).map_err(ApiError::internal)).collect()
}

#[utoipa::path(get, path = "/api/v1/checkout/quotes", tag = "cart", security(("bearer" = [])), responses((status = 200, body = [MethodQuote])))]
async fn cart_quotes(State(shop): S, a: Authed) -> ApiResult<Json<Vec<MethodQuote>>> {
    let c = build_cart(&shop, &a.account_id).await?;
    Ok(Json(all_methods(&shop, c.totals.total)?))
}

// ---------------------------------------------------------------------------------------------
// Orders

fn request_hash(body: &CreateOrder) -> String {
    let text = serde_json::to_string(body).unwrap_or_default();
    crate::auth::token_hash(&text)
}

#[utoipa::path(post, path = "/api/v1/orders", tag = "orders", security(("bearer" = [])), request_body = CreateOrder,
    params(("Idempotency-Key" = String, Header, description = "Unique per order the buyer means to place")),
    responses((status = 201, body = Order), (status = 200, body = Order), (status = 409, body = Problem), (status = 422, body = Problem)))]
async fn create_order(
    State(shop): S,
    a: Authed,
    headers: HeaderMap,
    Body(body): Body<CreateOrder>,
) -> ApiResult<(StatusCode, Json<Order>)> {
    let key = headers
        .get(IDEMPOTENCY_KEY)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|k| (8..=128).contains(&k.len()) && k.bytes().all(|b| b.is_ascii_graphic()))
        .ok_or_else(|| {
            ApiError::validation(
                "Idempotency-Key",
                "an Idempotency-Key header of 8 to 128 printable characters is required",
            )
        })?
        .to_owned();
    let hash = request_hash(&body);
    // A repeat of a finished request answers with the same order.
    let (aid, k2) = (a.account_id.clone(), key.clone());
    if let Some((id, h)) = shop.blocking(move |s| s.order_by_key(&aid, &k2)).await? {
        if h != hash {
            return Err(ApiError::conflict(
                ErrorCode::IdempotencyConflict,
                "this idempotency key was used for a different request",
            ));
        }
        let aid = a.account_id.clone();
        let o = shop
            .blocking(move |s| s.order(Some(&aid), &id))
            .await?
            .ok_or_else(|| ApiError::not_found("order"))?;
        return Ok((StatusCode::OK, Json(o)));
    }
    let acc = load_account(&shop, &a.account_id).await?;
    let (Some(name), Some(id_number)) = (acc.real_name.clone(), acc.id_number.clone()) else {
        return Err(ApiError::conflict(
            ErrorCode::RealNameRequired,
            "verify your real name before ordering cross-border goods",
        ));
    };
    let (aid, adid) = (a.account_id.clone(), body.address_id.clone());
    let address = shop
        .blocking(move |s| s.address(&aid, &adid))
        .await?
        .ok_or_else(|| ApiError::validation("address_id", "no such address"))?;
    let aid = a.account_id.clone();
    let items = shop.blocking(move |s| s.cart(&aid)).await?;
    if items.is_empty() {
        return Err(ApiError::conflict(ErrorCode::EmptyCart, "the cart is empty"));
    }
    for (p, q) in &items {
        if *q > p.available() {
            return Err(ApiError::conflict(
                ErrorCode::OutOfStock,
                format!("only {} of {} left", p.available(), p.id),
            ));
        }
    }
    let fx = shop.fx();
    let inputs: Vec<_> = items.iter().map(|(p, q)| p.line(*q)).collect();
    let priced = price(&shop.pricing, &fx, &inputs).map_err(ApiError::internal)?;
    let quota = quota_for(&shop, &id_number).await?;
    for n in limit_notices(&shop.pricing, &priced, Some(quota.remaining)) {
        match n {
            CartNotice::OrderLimitExceeded { .. } => {
                return Err(ApiError::conflict(
                    ErrorCode::OrderLimitExceeded,
                    "a cross-border order is limited to 5,000 CNY; split the cart",
                ));
            }
            CartNotice::AnnualQuotaExceeded { .. } => {
                return Err(ApiError::conflict(
                    ErrorCode::AnnualQuotaExceeded,
                    "this order would exceed the orderer's 26,000 CNY annual limit",
                ));
            }
            _ => {}
        }
    }
    let now = shop.now();
    let unique: String = shop.id("").chars().take(10).collect();
    let order = NewOrder {
        id: format!("HO{}{}", now.with_timezone(&haitao_alipay::time::shanghai()).format("%Y%m%d"), unique)
            .to_uppercase(),
        account_id: a.account_id.clone(),
        idempotency_key: key,
        request_hash: hash,
        orderer_name: name,
        orderer_id_number: id_number,
        quota_year: quota_year(now),
        annual_limit_fen: shop.pricing.annual_limit.minor(),
        address,
        lines: items,
        priced,
        pay_deadline: now + shop.order_timeout,
        now,
    };
    let created = shop.blocking(move |s| s.create_order(&order)).await?;
    let (status, id) = match created {
        Created::New(id) => (StatusCode::CREATED, id),
        Created::Existing(id) => (StatusCode::OK, id),
    };
    let aid = a.account_id.clone();
    let o = shop
        .blocking(move |s| s.order(Some(&aid), &id))
        .await?
        .ok_or_else(|| ApiError::not_found("order"))?;
    tracing::info!(order = %o.id, total = %o.totals.total, "order created");
    Ok((status, Json(o)))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct OrderList {
    #[serde(default)]
    status: Option<OrderStatus>,
    /// 1-based.
    #[serde(default)]
    #[param(minimum = 1, maximum = 1_000_000)]
    page: Option<u32>,
    #[serde(default)]
    #[param(minimum = 1, maximum = 100)]
    per_page: Option<u32>,
}

#[utoipa::path(get, path = "/api/v1/orders", tag = "orders", security(("bearer" = [])), params(OrderList), responses((status = 200, body = OrderPage)))]
async fn orders(State(shop): S, a: Authed, Q(q): Q<OrderList>) -> ApiResult<Json<OrderPage>> {
    in_range("page", q.page, 1, 1_000_000)?;
    in_range("per_page", q.per_page, 1, 100)?;
    let page = q.page.unwrap_or(1);
    let per_page = q.per_page.unwrap_or(20);
    let (items, total) = shop.blocking(move |s| s.orders(&a.account_id, q.status, page, per_page)).await?;
    Ok(Json(OrderPage { items, total, page, per_page }))
}

#[utoipa::path(get, path = "/api/v1/orders/changes", tag = "orders", security(("bearer" = [])), params(Since), responses((status = 200, body = OrderChanges)))]
async fn order_changes(State(shop): S, a: Authed, Q(q): Q<Since>) -> ApiResult<Json<OrderChanges>> {
    in_range("limit", q.limit, 1, 500)?;
    let (orders, cursor, more) = shop
        .blocking(move |s| {
            s.order_changes(&a.account_id, q.since.unwrap_or(0), q.limit.unwrap_or(200).clamp(1, 500))
        })
        .await?;
    Ok(Json(OrderChanges { orders, cursor: cursor.to_string(), more }))
}

async fn own_order(shop: &Arc<Shop>, account_id: &str, id: &str) -> ApiResult<Order> {
    let (aid, id) = (account_id.to_owned(), id.to_owned());
    shop.blocking(move |s| s.order(Some(&aid), &id)).await?.ok_or_else(|| ApiError::not_found("order"))
}

#[utoipa::path(get, path = "/api/v1/orders/{id}", tag = "orders", security(("bearer" = [])), params(("id" = String, Path)),
    responses((status = 200, body = Order), (status = 404, body = Problem)))]
async fn order(State(shop): S, a: Authed, P(id): P<String>) -> ApiResult<Json<Order>> {
    Ok(Json(own_order(&shop, &a.account_id, &id).await?))
}

#[utoipa::path(get, path = "/api/v1/orders/{id}/quotes", tag = "orders", security(("bearer" = [])), params(("id" = String, Path)),
    responses((status = 200, body = [MethodQuote])))]
async fn order_quotes(State(shop): S, a: Authed, P(id): P<String>) -> ApiResult<Json<Vec<MethodQuote>>> {
    let o = own_order(&shop, &a.account_id, &id).await?;
    Ok(Json(all_methods(&shop, o.totals.total)?))
}

#[utoipa::path(post, path = "/api/v1/orders/{id}/payments", tag = "payments", security(("bearer" = [])), request_body = StartPayment,
    params(("id" = String, Path)), responses((status = 200, body = PaymentAttempt), (status = 409, body = Problem), (status = 422, body = Problem)))]
async fn start_payment(
    State(shop): S,
    a: Authed,
    P(id): P<String>,
    Body(req): Body<StartPayment>,
) -> ApiResult<Json<PaymentAttempt>> {
    Ok(Json(payments::start(&shop, &a.account_id, &id, req).await?))
}

#[utoipa::path(post, path = "/api/v1/orders/{id}/cancel", tag = "orders", security(("bearer" = [])), params(("id" = String, Path)),
    responses((status = 200, body = Order), (status = 409, body = Problem)))]
async fn cancel_order(State(shop): S, a: Authed, P(id): P<String>) -> ApiResult<Json<Order>> {
    let o = own_order(&shop, &a.account_id, &id).await?;
    if o.status != OrderStatus::AwaitingPayment {
        return Err(ApiError::conflict(
            ErrorCode::InvalidState,
            "only unpaid orders can be cancelled; ask for a refund instead",
        ));
    }
    let oid = o.id.clone();
    for attempt in
        shop.blocking(move |s| s.attempts_of(&oid)).await?.into_iter().filter(|x| !x.status.is_final())
    {
        let r = payments::reconcile(&shop, attempt, true).await?;
        if r.status == haitao_shop_api::orders::AttemptStatus::Paid {
            return Err(ApiError::conflict(ErrorCode::InvalidState, "this order was just paid"));
        }
        if r.status == haitao_shop_api::orders::AttemptStatus::Unknown {
            return Err(ApiError::conflict(
                ErrorCode::PaymentInProgress,
                "a payment may still complete; try again in a moment",
            ));
        }
    }
    let now = shop.now();
    let oid = o.id.clone();
    shop.blocking(move |s| s.close_order(&oid, now)).await?;
    Ok(Json(own_order(&shop, &a.account_id, &id).await?))
}

#[utoipa::path(post, path = "/api/v1/orders/{id}/refunds", tag = "orders", security(("bearer" = [])), request_body = RequestRefund,
    params(("id" = String, Path)), responses((status = 200, body = Order), (status = 409, body = Problem), (status = 422, body = Problem)))]
async fn request_refund(
    State(shop): S,
    a: Authed,
    P(id): P<String>,
    Body(req): Body<RequestRefund>,
) -> ApiResult<Json<Order>> {
    let o = own_order(&shop, &a.account_id, &id).await?;
    if !o.status.is_paid() {
        return Err(ApiError::conflict(ErrorCode::InvalidState, "only paid orders can be refunded"));
    }
    let reason = req.reason.trim();
    if reason.is_empty() || reason.chars().count() > 200 {
        return Err(ApiError::validation("reason", "give a reason of up to 200 characters"));
    }
    let attempt_id = o
        .payment
        .as_ref()
        .filter(|p| p.status == haitao_shop_api::orders::AttemptStatus::Paid)
        .map(|p| p.id.clone());
    let oid = o.id.clone();
    let paid_attempt = match attempt_id {
        Some(x) => x,
        None => shop
            .blocking(move |s| s.order_core(&oid))
            .await?
            .and_then(|c| c.paid_attempt_id)
            .ok_or_else(|| ApiError::internal("paid order without attempt"))?,
    };
    let (oid, aid) = (o.id.clone(), paid_attempt.clone());
    let remaining = shop.blocking(move |s| s.refundable(&oid, &aid)).await?;
    let amount = match req.amount {
        Some(m) if m.currency() != Currency::Cny => {
            return Err(ApiError::validation("amount", "refunds are in CNY"));
        }
        Some(m) if m.minor() <= 0 || m.minor() > remaining => {
            return Err(ApiError::validation(
                "amount",
                format!("between 0.01 and {}", Money::from_minor(remaining, Currency::Cny)),
            ));
        }
        Some(m) => m,
        None if remaining > 0 => Money::from_minor(remaining, Currency::Cny),
        None => return Err(ApiError::conflict(ErrorCode::InvalidState, "nothing left to refund")),
    };
    let now = shop.now();
    let row = RefundRow {
        id: shop.id("RF"),
        order_id: o.id.clone(),
        attempt_id: paid_attempt,
        out_request_no: format!("RF{}", shop.id("").chars().take(20).collect::<String>()),
        amount,
        reason: reason.to_owned(),
        status: RefundStatus::Pending,
    };
    let r2 = row.clone();
    shop.blocking(move |s| s.insert_refund(&r2, now)).await?;
    payments::settle_refund(&shop, &row).await;
    Ok(Json(own_order(&shop, &a.account_id, &id).await?))
}

#[utoipa::path(post, path = "/api/v1/orders/{id}/orderer", tag = "orders", security(("bearer" = [])), request_body = CorrectOrderer,
    params(("id" = String, Path)), responses((status = 200, body = Order), (status = 409, body = Problem), (status = 422, body = Problem)))]
async fn correct_orderer(
    State(shop): S,
    a: Authed,
    P(id): P<String>,
    Body(req): Body<CorrectOrderer>,
) -> ApiResult<Json<Order>> {
    let o = own_order(&shop, &a.account_id, &id).await?;
    if o.status != OrderStatus::Held
        || o.customs.hold_reason != Some(haitao_shop_api::orders::HoldReason::OrdererNotPayer)
    {
        return Err(ApiError::conflict(
            ErrorCode::InvalidState,
            "only orders held because the orderer is not the payer can be corrected",
        ));
    }
    if !valid_name(&req.name) {
        return Err(ApiError::validation("name", "enter the payer's name exactly as on the identity card"));
    }
    let today = shop.now().with_timezone(&haitao_alipay::time::shanghai()).date_naive();
    let rid = ResidentId::parse(&req.id_number, today)
        .map_err(|e| ApiError::validation("id_number", e.to_string()))?;
    // The new orderer's quota must have room for this order.
    let q = quota_for(&shop, rid.as_str()).await?;
    if q.remaining.minor() < o.totals.dutiable.minor() {
        return Err(ApiError::conflict(
            ErrorCode::AnnualQuotaExceeded,
            "the payer's annual cross-border limit has no room for this order",
        ));
    }
    let (oid, name, number, now) =
        (o.id.clone(), req.name.trim().to_owned(), rid.as_str().to_owned(), shop.now());
    shop.blocking(move |s| s.correct_orderer(&oid, &name, &number, now)).await?;
    shop.wake.notify_waiters();
    Ok(Json(own_order(&shop, &a.account_id, &id).await?))
}

// ---------------------------------------------------------------------------------------------
// Payments

async fn own_attempt(shop: &Arc<Shop>, account_id: &str, id: &str) -> ApiResult<crate::store::AttemptRow> {
    let id2 = id.to_owned();
    let attempt =
        shop.blocking(move |s| s.attempt(&id2)).await?.ok_or_else(|| ApiError::not_found("payment"))?;
    let oid = attempt.order_id.clone();
    let owner = shop.blocking(move |s| s.order_core(&oid)).await?.map(|o| o.account_id);
    if owner.as_deref() == Some(account_id) { Ok(attempt) } else { Err(ApiError::not_found("payment")) }
}

#[utoipa::path(get, path = "/api/v1/payments/{id}", tag = "payments", security(("bearer" = [])), params(("id" = String, Path)),
    responses((status = 200, body = PaymentAttempt), (status = 404, body = Problem)))]
async fn payment(State(shop): S, a: Authed, P(id): P<String>) -> ApiResult<Json<PaymentAttempt>> {
    Ok(Json(own_attempt(&shop, &a.account_id, &id).await?.wire()))
}

#[utoipa::path(post, path = "/api/v1/payments/{id}/confirm", tag = "payments", security(("bearer" = [])), request_body = ConfirmPayment,
    params(("id" = String, Path)), responses((status = 200, body = PaymentAttempt), (status = 404, body = Problem)))]
async fn confirm(
    State(shop): S,
    a: Authed,
    P(id): P<String>,
    Body(req): Body<ConfirmPayment>,
) -> ApiResult<Json<PaymentAttempt>> {
    if req.return_query.as_deref().is_some_and(|q| q.len() > 8 * 1024) {
        return Err(ApiError::validation("return_query", "too long"));
    }
    Ok(Json(payments::confirm(&shop, &a.account_id, &id, req, false).await?))
}

#[utoipa::path(post, path = "/api/v1/payments/{id}/abandon", tag = "payments", security(("bearer" = [])),
    params(("id" = String, Path)), responses((status = 200, body = PaymentAttempt), (status = 404, body = Problem)))]
async fn abandon(State(shop): S, a: Authed, P(id): P<String>) -> ApiResult<Json<PaymentAttempt>> {
    Ok(Json(payments::confirm(&shop, &a.account_id, &id, ConfirmPayment::default(), true).await?))
}

#[utoipa::path(post, path = "/api/v1/alipay/notify", tag = "payments",
    request_body(content = std::collections::BTreeMap<String, String>, content_type = "application/x-www-form-urlencoded",
        description = "Alipay's signed notification fields (notify_id, out_trade_no, trade_status, total_amount, sign, …)"),
    responses((status = 200, description = "exactly `success`", body = String), (status = 400, body = Problem)))]
async fn alipay_notify(State(shop): S, body: Bytes) -> Response {
    match payments::handle_notify(&shop, &body).await {
        Ok(()) => ([(header::CONTENT_TYPE, "text/plain")], haitao_alipay::NOTIFY_ACK).into_response(),
        Err(e) => e.into_response(),
    }
}

#[utoipa::path(get, path = "/api/v1/alipay/return", tag = "payments", responses((status = 200, content_type = "text/html", body = String)))]
async fn alipay_return() -> Response {
    (
        [(header::CACHE_CONTROL, "no-store")],
        Html(
            "<!doctype html><html lang=\"zh-CN\"><head><meta charset=\"utf-8\"><title>Haitao 海淘</title>\
             <style>body{font-family:system-ui,sans-serif;display:grid;place-items:center;height:100vh;margin:0}</style></head>\
             <body><main><h1>请返回 Haitao 海淘应用</h1><p>支付结果将在应用内确认。您可以关闭此页面。</p>\
             <p lang=\"en\">Return to the Haitao app: it confirms the payment. You can close this tab.</p></main></body></html>",
        ),
    )
        .into_response()
}

// ---------------------------------------------------------------------------------------------
// Support

#[utoipa::path(get, path = "/api/v1/tickets", tag = "support", security(("bearer" = [])), responses((status = 200, body = [Ticket])))]
async fn tickets(State(shop): S, a: Authed) -> ApiResult<Json<Vec<Ticket>>> {
    Ok(Json(shop.blocking(move |s| s.tickets(&a.account_id)).await?))
}

#[utoipa::path(post, path = "/api/v1/tickets", tag = "support", security(("bearer" = [])), request_body = NewTicket,
    responses((status = 201, body = Ticket), (status = 422, body = Problem)))]
async fn new_ticket(
    State(shop): S,
    a: Authed,
    Body(t): Body<NewTicket>,
) -> ApiResult<(StatusCode, Json<Ticket>)> {
    Ok((StatusCode::CREATED, Json(support::open(&shop, &a.account_id, t).await?)))
}

#[utoipa::path(get, path = "/api/v1/tickets/{id}", tag = "support", security(("bearer" = [])), params(("id" = String, Path)),
    responses((status = 200, body = Ticket), (status = 404, body = Problem)))]
async fn ticket(State(shop): S, a: Authed, P(id): P<String>) -> ApiResult<Json<Ticket>> {
    shop.blocking(move |s| s.ticket(&a.account_id, &id))
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::not_found("ticket"))
}

#[utoipa::path(post, path = "/api/v1/tickets/{id}/messages", tag = "support", security(("bearer" = [])), request_body = NewMessage,
    params(("id" = String, Path)), responses((status = 200, body = Ticket), (status = 404, body = Problem)))]
async fn ticket_message(
    State(shop): S,
    a: Authed,
    P(id): P<String>,
    Body(m): Body<NewMessage>,
) -> ApiResult<Json<Ticket>> {
    let body = m.body.trim().to_owned();
    if body.is_empty() || body.chars().count() > 2000 {
        return Err(ApiError::validation("body", "a message has 1 to 2000 characters"));
    }
    let (aid, tid) = (a.account_id.clone(), id.clone());
    if shop.blocking(move |s| s.ticket(&aid, &tid)).await?.is_none() {
        return Err(ApiError::not_found("ticket"));
    }
    let now = shop.now();
    let tid = id.clone();
    shop.blocking(move |s| {
        s.add_message(&tid, Author::Customer, &body, now)?;
        s.set_ticket_status(&tid, TicketStatus::Open, now)
    })
    .await?;
    shop.blocking(move |s| s.ticket(&a.account_id, &id))
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::not_found("ticket"))
}

// ---------------------------------------------------------------------------------------------
// Test controls (demo and tests only)

#[derive(Debug, Deserialize, utoipa::ToSchema)]
struct Advance {
    seconds: i64,
}

fn test_only(shop: &Shop) -> ApiResult<()> {
    if shop.test_controls { Ok(()) } else { Err(ApiError::not_found("endpoint")) }
}

#[utoipa::path(post, path = "/api/v1/test/clock/advance", tag = "test", request_body = Advance, responses((status = 200, body = Health)))]
async fn test_advance(State(shop): S, Body(a): Body<Advance>) -> ApiResult<Json<Health>> {
    test_only(&shop)?;
    if !(1..=366 * 86_400).contains(&a.seconds) || !shop.clock.advance(chrono::Duration::seconds(a.seconds)) {
        return Err(ApiError::validation("seconds", "cannot move the clock by that much"));
    }
    crate::jobs::run_once(&shop).await;
    Ok(Json(Health { status: "ok".into(), version: env!("CARGO_PKG_VERSION").into(), now: shop.now() }))
}

#[utoipa::path(post, path = "/api/v1/test/jobs/run", tag = "test", responses((status = 204)))]
async fn test_jobs(State(shop): S) -> ApiResult<StatusCode> {
    test_only(&shop)?;
    crate::jobs::run_once(&shop).await;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(post, path = "/api/v1/test/orders/{id}/inspection-fail", tag = "test", params(("id" = String, Path)), responses((status = 204)))]
async fn test_inspection(State(shop): S, P(id): P<String>) -> ApiResult<StatusCode> {
    test_only(&shop)?;
    shop.blocking(move |s| s.set_meta(&format!("inspection_fail:{id}"), "1")).await?;
    Ok(StatusCode::NO_CONTENT)
}

// ---------------------------------------------------------------------------------------------

#[derive(Debug, OpenApi)]
#[openapi(
    info(title = "Haitao shop API", description = "The storefront API of Haitao (海淘): catalog, accounts, cart, orders, Alipay payments, customs, logistics and support. Errors are application/problem+json."),
    paths(
        health, payment_config, fx, categories, products, product, catalog_changes, image,
        register, login, refresh, logout, logout_all, account, real_name, quota, addresses, add_address, update_address, delete_address,
        cart, set_item, clear_cart, cart_quotes,
        create_order, orders, order_changes, order, order_quotes, start_payment, cancel_order, request_refund, correct_orderer,
        payment, confirm, abandon, alipay_notify, alipay_return,
        tickets, new_ticket, ticket, ticket_message,
        test_advance, test_jobs, test_inspection,
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
            let may_be_missing = path.contains('{') || path.starts_with("/api/v1/test/");
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
                add("404", "No such resource for this account (or test controls are off).");
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

async fn method_not_allowed() -> ApiError {
    ApiError::new(StatusCode::METHOD_NOT_ALLOWED, ErrorCode::BadRequest, "method not allowed")
}

pub fn router(shop: Arc<Shop>) -> Router {
    let api = Router::new()
        .route("/health", get(health))
        .route("/payment-config", get(payment_config))
        .route("/fx", get(fx))
        .route("/openapi.json", get(openapi_json))
        .route("/catalog/categories", get(categories))
        .route("/catalog/products", get(products))
        .route("/catalog/products/{id}", get(product))
        .route("/catalog/changes", get(catalog_changes))
        .route("/images/{name}", get(image))
        .route("/auth/register", post(register))
        .route("/auth/login", post(login))
        .route("/auth/refresh", post(refresh))
        .route("/auth/logout", post(logout))
        .route("/auth/logout-all", post(logout_all))
        .route("/account", get(account))
        .route("/account/real-name", post(real_name))
        .route("/account/quota", get(quota))
        .route("/account/addresses", get(addresses).post(add_address))
        .route("/account/addresses/{id}", put(update_address).delete(delete_address))
        .route("/cart", get(cart).delete(clear_cart))
        .route("/cart/items/{product_id}", put(set_item))
        .route("/checkout/quotes", get(cart_quotes))
        .route("/orders", get(orders).post(create_order))
        .route("/orders/changes", get(order_changes))
        .route("/orders/{id}", get(order))
        .route("/orders/{id}/quotes", get(order_quotes))
        .route("/orders/{id}/payments", post(start_payment))
        .route("/orders/{id}/cancel", post(cancel_order))
        .route("/orders/{id}/refunds", post(request_refund))
        .route("/orders/{id}/orderer", post(correct_orderer))
        .route("/orders/{id}/invoice.pdf", get(crate::invoice::invoice))
        .route("/payments/{id}", get(payment))
        .route("/payments/{id}/confirm", post(confirm))
        .route("/payments/{id}/abandon", post(abandon))
        .route("/alipay/notify", post(alipay_notify))
        .route("/alipay/return", get(alipay_return))
        .route("/tickets", get(tickets).post(new_ticket))
        .route("/tickets/{id}", get(ticket))
        .route("/tickets/{id}/messages", post(ticket_message))
        .route("/test/clock/advance", post(test_advance))
        .route("/test/jobs/run", post(test_jobs))
        .route("/test/orders/{id}/inspection-fail", post(test_inspection))
        .method_not_allowed_fallback(method_not_allowed);
    Router::new()
        .nest("/api/v1", api)
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(shop)
}
