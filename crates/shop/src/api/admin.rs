//! The merchant's admin endpoints: the daily reconciliation's results, and running a day again.
//! Off unless the shop is given an admin token (`--admin-token-file`, or `admin_token` in
//! shop.json); they then need `Authorization: Bearer <that token>`.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::Response;
use axum::routing::get;
use axum::{Json, Router};
use chrono::NaiveDate;
use haitao_shop_api::error::{ErrorCode, Problem};
use haitao_shop_api::reconciliation::{FailingDay, Reconciliation, Reconciliations};
use serde::Deserialize;

use super::{P, Q, S, in_range};
use crate::error::{ApiError, ApiResult};
use crate::reconcile::{self, ReconcileError};
use crate::state::Shop;

/// The admin routes, each behind the token check, which runs before anything of the request is
/// read: without the token nothing tells whether a parameter would have been accepted.
pub(super) fn routes(shop: Arc<Shop>) -> Router<Arc<Shop>> {
    Router::new()
        .route("/admin/reconciliations", get(reconciliations))
        .route("/admin/reconciliations/{day}", get(reconciliation).post(reconcile_day))
        // Its own answer to another method, inside the guard: without the token nothing says
        // which methods exist.
        .method_not_allowed_fallback(super::method_not_allowed)
        .route_layer(axum::middleware::from_fn_with_state(shop, guard))
}

/// Lets the request through when it carries the shop's admin token. Without a configured token
/// the endpoints do not exist (404).
async fn guard(State(shop): S, request: Request, next: Next) -> Result<Response, ApiError> {
    let Some(token) = &shop.admin_token else { return Err(ApiError::not_found("endpoint")) };
    let given = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map_or("", |(_, t)| t.trim());
    aws_lc_rs::constant_time::verify_slices_are_equal(given.as_bytes(), token.expose().as_bytes())
        .map_err(|_| ApiError::unauthorized())?;
    Ok(next.run(request).await)
}

fn parse_day(text: &str) -> ApiResult<NaiveDate> {
    NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .map_err(|_| ApiError::validation("day", "day must be YYYY-MM-DD"))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(super) struct Recent {
    /// At most this many days, newest first.
    #[serde(default)]
    #[param(minimum = 1, maximum = 366)]
    limit: Option<u32>,
}

#[utoipa::path(get, path = "/api/v1/admin/reconciliations", tag = "admin", params(Recent),
    security(("admin" = [])), responses((status = 200, body = Reconciliations)))]
pub(super) async fn reconciliations(State(shop): S, Q(q): Q<Recent>) -> ApiResult<Json<Reconciliations>> {
    in_range("limit", q.limit, 1, 366)?;
    let limit = q.limit.unwrap_or(31);
    let (reconciled, failing) =
        shop.blocking(move |s| Ok((s.reconciliations(limit)?, s.failing_days()?))).await?;
    // Days older than the job's window are no longer tried by it (a rerun still can).
    let window_start = reconcile::latest_ready_day(shop.now()) - chrono::Days::new(reconcile::CATCH_UP_DAYS);
    let failing = failing
        .into_iter()
        .map(|f| FailingDay {
            next_try_at: (f.day >= window_start).then(|| f.tried_at + reconcile::retry_pause(f.tries)),
            day: f.day,
            tries: f.tries,
            last_error: f.last_error,
            tried_at: f.tried_at,
        })
        .collect();
    Ok(Json(Reconciliations { reconciled, failing }))
}

#[utoipa::path(get, path = "/api/v1/admin/reconciliations/{day}", tag = "admin",
    params(("day" = String, Path, description = "The Alipay day, YYYY-MM-DD (Asia/Shanghai)")),
    security(("admin" = [])), responses((status = 200, body = Reconciliation)))]
pub(super) async fn reconciliation(State(shop): S, P(day): P<String>) -> ApiResult<Json<Reconciliation>> {
    let day = parse_day(&day)?;
    shop.blocking(move |s| s.reconciliation(day))
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::not_found("reconciliation of that day"))
}

#[utoipa::path(post, path = "/api/v1/admin/reconciliations/{day}", tag = "admin",
    params(("day" = String, Path, description = "The Alipay day, YYYY-MM-DD (Asia/Shanghai)")),
    security(("admin" = [])), responses((status = 200, body = Reconciliation),
        (status = 409, description = "Alipay has not published that day's bill yet", body = Problem),
        (status = 502, description = "The bill could not be had or read", body = Problem)))]
pub(super) async fn reconcile_day(State(shop): S, P(day): P<String>) -> ApiResult<Json<Reconciliation>> {
    let day = parse_day(&day)?;
    match reconcile::reconcile_day(&shop, day).await {
        Ok(r) => Ok(Json(r)),
        Err(ReconcileError::Store(e)) => Err(e),
        Err(e @ ReconcileError::NotReady(_)) => {
            Err(ApiError::conflict(ErrorCode::InvalidState, e.to_string()))
        }
        Err(e) => Err(ApiError::new(
            StatusCode::BAD_GATEWAY,
            ErrorCode::GatewayUnavailable,
            "the bill could not be had",
        )
        .detail(e.to_string())),
    }
}
