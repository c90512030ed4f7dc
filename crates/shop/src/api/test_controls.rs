//! Test controls (demo and tests only).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use haitao_shop_api::Health;
use serde::Deserialize;

use super::{Body, P, S};
use crate::error::{ApiError, ApiResult};
use crate::state::Shop;

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub(super) struct Advance {
    seconds: i64,
}

fn test_only(shop: &Shop) -> ApiResult<()> {
    if shop.test_controls { Ok(()) } else { Err(ApiError::not_found("endpoint")) }
}

#[utoipa::path(post, path = "/api/v1/test/clock/advance", tag = "test", request_body = Advance, responses((status = 200, body = Health)))]
pub(super) async fn test_advance(State(shop): S, Body(a): Body<Advance>) -> ApiResult<Json<Health>> {
    test_only(&shop)?;
    if !(1..=366 * 86_400).contains(&a.seconds) || !shop.clock.advance(chrono::Duration::seconds(a.seconds)) {
        return Err(ApiError::validation("seconds", "cannot move the clock by that much"));
    }
    crate::jobs::run_once(&shop).await;
    Ok(Json(Health { status: "ok".into(), version: env!("CARGO_PKG_VERSION").into(), now: shop.now() }))
}

#[utoipa::path(post, path = "/api/v1/test/jobs/run", tag = "test", responses((status = 204)))]
pub(super) async fn test_jobs(State(shop): S) -> ApiResult<StatusCode> {
    test_only(&shop)?;
    crate::jobs::run_once(&shop).await;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(post, path = "/api/v1/test/orders/{id}/inspection-fail", tag = "test", params(("id" = String, Path)), responses((status = 204)))]
pub(super) async fn test_inspection(State(shop): S, P(id): P<String>) -> ApiResult<StatusCode> {
    test_only(&shop)?;
    shop.blocking(move |s| s.set_meta(&format!("inspection_fail:{id}"), "1")).await?;
    Ok(StatusCode::NO_CONTENT)
}
