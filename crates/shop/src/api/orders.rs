//! Orders: create, list, changes, one order, quotes, start payment, cancel, refund request,
//! orderer correction.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use haitao_alipay::money::{Currency, Money};
use haitao_shop_api::IDEMPOTENCY_KEY;
use haitao_shop_api::error::{ErrorCode, Problem};
use haitao_shop_api::orders::{
    CorrectOrderer, CreateOrder, MethodQuote, Order, OrderChanges, OrderPage, OrderStatus, PaymentAttempt,
    RefundStatus, RequestRefund, StartPayment,
};
use serde::Deserialize;

use super::{Body, P, Q, S, Since, all_methods, in_range};
use crate::auth::Authed;
use crate::error::{ApiError, ApiResult};
use crate::identity::{ResidentId, valid_name};
use crate::sqlite::quota_year;
use crate::state::Shop;
use crate::store::{Created, PlaceOrder, RefundRow};

fn request_hash(body: &CreateOrder) -> String {
    let text = serde_json::to_string(body).unwrap_or_default();
    crate::auth::token_hash(&text)
}

#[utoipa::path(post, path = "/api/v1/orders", tag = "orders", security(("bearer" = [])), request_body = CreateOrder,
    params(("Idempotency-Key" = String, Header, description = "Unique per order the buyer means to place")),
    responses((status = 201, body = Order), (status = 200, body = Order), (status = 409, body = Problem), (status = 422, body = Problem)))]
pub(super) async fn create_order(
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
    let now = shop.now();
    let unique: String = shop.id("").chars().take(10).collect();
    let place = PlaceOrder {
        id: format!("HO{}{}", now.with_timezone(&haitao_alipay::time::shanghai()).format("%Y%m%d"), unique)
            .to_uppercase(),
        account_id: a.account_id.clone(),
        idempotency_key: key,
        request_hash: hash,
        address_id: body.address_id.clone(),
        pricing: shop.pricing.clone(),
        fx: shop.fx(),
        quota_year: quota_year(now),
        pay_deadline: now + shop.order_timeout,
        now,
    };
    let created = shop.blocking(move |s| s.place_order(&place)).await?;
    let (status, id) = match created {
        Created::New(id) => {
            tracing::info!(order = %id, "order created");
            (StatusCode::CREATED, id)
        }
        Created::Existing(id) => (StatusCode::OK, id),
    };
    let aid = a.account_id.clone();
    let o = shop
        .blocking(move |s| s.order(Some(&aid), &id))
        .await?
        .ok_or_else(|| ApiError::not_found("order"))?;
    Ok((status, Json(o)))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(super) struct OrderList {
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
pub(super) async fn orders(State(shop): S, a: Authed, Q(q): Q<OrderList>) -> ApiResult<Json<OrderPage>> {
    in_range("page", q.page, 1, 1_000_000)?;
    in_range("per_page", q.per_page, 1, 100)?;
    let page = q.page.unwrap_or(1);
    let per_page = q.per_page.unwrap_or(20);
    let (items, total) = shop.blocking(move |s| s.orders(&a.account_id, q.status, page, per_page)).await?;
    Ok(Json(OrderPage { items, total, page, per_page }))
}

#[utoipa::path(get, path = "/api/v1/orders/changes", tag = "orders", security(("bearer" = [])), params(Since), responses((status = 200, body = OrderChanges)))]
pub(super) async fn order_changes(
    State(shop): S,
    a: Authed,
    Q(q): Q<Since>,
) -> ApiResult<Json<OrderChanges>> {
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
pub(super) async fn order(State(shop): S, a: Authed, P(id): P<String>) -> ApiResult<Json<Order>> {
    Ok(Json(own_order(&shop, &a.account_id, &id).await?))
}

#[utoipa::path(get, path = "/api/v1/orders/{id}/quotes", tag = "orders", security(("bearer" = [])), params(("id" = String, Path)),
    responses((status = 200, body = [MethodQuote])))]
pub(super) async fn order_quotes(
    State(shop): S,
    a: Authed,
    P(id): P<String>,
) -> ApiResult<Json<Vec<MethodQuote>>> {
    let o = own_order(&shop, &a.account_id, &id).await?;
    Ok(Json(all_methods(&shop, o.totals.total)?))
}

#[utoipa::path(post, path = "/api/v1/orders/{id}/payments", tag = "payments", security(("bearer" = [])), request_body = StartPayment,
    params(("id" = String, Path)), responses((status = 200, body = PaymentAttempt), (status = 409, body = Problem), (status = 422, body = Problem)))]
pub(super) async fn start_payment(
    State(shop): S,
    a: Authed,
    P(id): P<String>,
    Body(req): Body<StartPayment>,
) -> ApiResult<Json<PaymentAttempt>> {
    Ok(Json(crate::payments::start(&shop, &a.account_id, &id, req).await?))
}

#[utoipa::path(post, path = "/api/v1/orders/{id}/cancel", tag = "orders", security(("bearer" = [])), params(("id" = String, Path)),
    responses((status = 200, body = Order), (status = 409, body = Problem)))]
pub(super) async fn cancel_order(State(shop): S, a: Authed, P(id): P<String>) -> ApiResult<Json<Order>> {
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
        let r = crate::payments::reconcile(&shop, attempt, true).await?;
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
pub(super) async fn request_refund(
    State(shop): S,
    a: Authed,
    P(id): P<String>,
    Body(req): Body<RequestRefund>,
) -> ApiResult<Json<Order>> {
    let now = shop.now();
    // Amount, paying attempt and reason are set by the store from the order as it reads it.
    let row = RefundRow {
        id: shop.id("RF"),
        order_id: id.clone(),
        attempt_id: String::new(),
        out_request_no: format!("RF{}", shop.id("").chars().take(20).collect::<String>()),
        amount: Money::zero(Currency::Cny),
        reason: String::new(),
        status: RefundStatus::Pending,
    };
    let aid = a.account_id.clone();
    let row = shop.blocking(move |s| s.request_refund(&aid, &req, row, now)).await?;
    crate::payments::settle_refund(&shop, &row).await;
    Ok(Json(own_order(&shop, &a.account_id, &id).await?))
}

#[utoipa::path(post, path = "/api/v1/orders/{id}/orderer", tag = "orders", security(("bearer" = [])), request_body = CorrectOrderer,
    params(("id" = String, Path)), responses((status = 200, body = Order), (status = 409, body = Problem), (status = 422, body = Problem)))]
pub(super) async fn correct_orderer(
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
    // The payer's quota is checked in the same transaction as the change (two corrections to
    // one payer cannot both take the same room).
    let (oid, name, number, now) =
        (o.id.clone(), req.name.trim().to_owned(), rid.as_str().to_owned(), shop.now());
    let limit = shop.pricing.annual_limit.minor();
    shop.blocking(move |s| s.correct_orderer(&oid, &name, &number, limit, now)).await?;
    shop.wake.notify_waiters();
    Ok(Json(own_order(&shop, &a.account_id, &id).await?))
}
