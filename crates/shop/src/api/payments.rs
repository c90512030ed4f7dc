//! Payments: one payment, confirm, abandon, and Alipay's notification and return page.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::header;
use axum::response::{Html, IntoResponse, Response};
use haitao_shop_api::error::Problem;
use haitao_shop_api::orders::{ConfirmPayment, PaymentAttempt};

use super::{Body, P, S};
use crate::auth::Authed;
use crate::error::{ApiError, ApiResult};
use crate::state::Shop;

async fn own_attempt(shop: &Arc<Shop>, account_id: &str, id: &str) -> ApiResult<PaymentAttempt> {
    let id2 = id.to_owned();
    let attempt =
        shop.blocking(move |s| s.attempt(&id2)).await?.ok_or_else(|| ApiError::not_found("payment"))?;
    let oid = attempt.order_id.clone();
    let owner = shop.blocking(move |s| s.order_core(&oid)).await?.map(|o| o.account_id);
    if owner.as_deref() == Some(account_id) { Ok(attempt) } else { Err(ApiError::not_found("payment")) }
}

#[utoipa::path(get, path = "/api/v1/payments/{id}", tag = "payments", security(("bearer" = [])), params(("id" = String, Path)),
    responses((status = 200, body = PaymentAttempt), (status = 404, body = Problem)))]
pub(super) async fn payment(State(shop): S, a: Authed, P(id): P<String>) -> ApiResult<Json<PaymentAttempt>> {
    Ok(Json(own_attempt(&shop, &a.account_id, &id).await?))
}

#[utoipa::path(post, path = "/api/v1/payments/{id}/confirm", tag = "payments", security(("bearer" = [])), request_body = ConfirmPayment,
    params(("id" = String, Path)), responses((status = 200, body = PaymentAttempt), (status = 404, body = Problem)))]
pub(super) async fn confirm(
    State(shop): S,
    a: Authed,
    P(id): P<String>,
    Body(req): Body<ConfirmPayment>,
) -> ApiResult<Json<PaymentAttempt>> {
    if req.return_query.as_deref().is_some_and(|q| q.len() > 8 * 1024) {
        return Err(ApiError::validation("return_query", "too long"));
    }
    Ok(Json(crate::payments::confirm(&shop, &a.account_id, &id, req, false).await?))
}

#[utoipa::path(post, path = "/api/v1/payments/{id}/abandon", tag = "payments", security(("bearer" = [])),
    params(("id" = String, Path)), responses((status = 200, body = PaymentAttempt), (status = 404, body = Problem)))]
pub(super) async fn abandon(State(shop): S, a: Authed, P(id): P<String>) -> ApiResult<Json<PaymentAttempt>> {
    Ok(Json(crate::payments::confirm(&shop, &a.account_id, &id, ConfirmPayment::default(), true).await?))
}

#[utoipa::path(post, path = "/api/v1/alipay/notify", tag = "payments",
    request_body(content = std::collections::BTreeMap<String, String>, content_type = "application/x-www-form-urlencoded",
        description = "Alipay's signed notification fields (notify_id, out_trade_no, trade_status, total_amount, sign, …)"),
    responses((status = 200, description = "exactly `success`", body = String), (status = 400, body = Problem)))]
pub(super) async fn alipay_notify(State(shop): S, body: Bytes) -> Response {
    match crate::payments::handle_notify(&shop, &body).await {
        Ok(()) => ([(header::CONTENT_TYPE, "text/plain")], haitao_alipay::NOTIFY_ACK).into_response(),
        Err(e) => e.into_response(),
    }
}

#[utoipa::path(get, path = "/api/v1/alipay/return", tag = "payments", responses((status = 200, content_type = "text/html", body = String)))]
pub(super) async fn alipay_return() -> Response {
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
