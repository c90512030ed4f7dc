//! Public: health, payment configuration, exchange rates, the catalog and its images.

use axum::Json;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use haitao_shop_api::catalog::{
    CatalogChanges, CatalogFacets, CategoryInfo, FxQuote, FxTable, ProductDetail, ProductPage, ProductQuery,
};
use haitao_shop_api::error::Problem;
use haitao_shop_api::{Health, PaymentConfig};

use super::{P, Q, S, Since, in_range};
use crate::error::{ApiError, ApiResult};

#[utoipa::path(get, path = "/api/v1/health", tag = "shop", responses((status = 200, body = Health)))]
pub(super) async fn health(State(shop): S) -> Json<Health> {
    Json(Health { status: "ok".into(), version: env!("CARGO_PKG_VERSION").into(), now: shop.now() })
}

#[utoipa::path(get, path = "/api/v1/payment-config", tag = "shop", responses((status = 200, body = PaymentConfig)))]
pub(super) async fn payment_config(State(shop): S) -> Json<PaymentConfig> {
    Json(shop.payment_config.clone())
}

#[utoipa::path(get, path = "/api/v1/fx", tag = "catalog", responses((status = 200, body = FxTable)))]
pub(super) async fn fx(State(shop): S) -> Json<FxTable> {
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
pub(super) async fn categories(State(shop): S) -> ApiResult<Json<Vec<CategoryInfo>>> {
    Ok(Json(shop.blocking(|s| s.categories()).await?))
}

#[utoipa::path(get, path = "/api/v1/catalog/products", tag = "catalog", params(ProductQuery),
    responses((status = 200, body = ProductPage), (status = 400, body = Problem)))]
pub(super) async fn products(State(shop): S, Q(q): Q<ProductQuery>) -> ApiResult<Json<ProductPage>> {
    checked_query(&q)?;
    Ok(Json(shop.blocking(move |s| s.search(&q)).await?))
}

fn checked_query(q: &ProductQuery) -> ApiResult<()> {
    if q.q.as_deref().is_some_and(|t| t.chars().count() > 100) {
        return Err(ApiError::validation("q", "search text is limited to 100 characters"));
    }
    in_range("page", q.page, 1, ProductQuery::MAX_PAGE)?;
    in_range("per_page", q.per_page, 1, ProductQuery::MAX_PER_PAGE)
}

/// How many results the search has per category, origin and fulfilment (paging is ignored).
#[utoipa::path(get, path = "/api/v1/catalog/facets", tag = "catalog", params(ProductQuery),
    responses((status = 200, body = CatalogFacets), (status = 400, body = Problem)))]
pub(super) async fn facets(State(shop): S, Q(q): Q<ProductQuery>) -> ApiResult<Json<CatalogFacets>> {
    checked_query(&q)?;
    Ok(Json(shop.blocking(move |s| s.facets(&q)).await?))
}

#[utoipa::path(get, path = "/api/v1/catalog/products/{id}", tag = "catalog", params(("id" = String, Path)),
    responses((status = 200, body = ProductDetail), (status = 404, body = Problem)))]
pub(super) async fn product(State(shop): S, P(id): P<String>) -> ApiResult<Json<ProductDetail>> {
    let row = shop.blocking(move |s| s.product(&id)).await?.ok_or_else(|| ApiError::not_found("product"))?;
    Ok(Json(row.detail(&shop.pricing, &shop.fx())?))
}

#[utoipa::path(get, path = "/api/v1/catalog/changes", tag = "catalog", params(Since), responses((status = 200, body = CatalogChanges)))]
pub(super) async fn catalog_changes(State(shop): S, Q(q): Q<Since>) -> ApiResult<Json<CatalogChanges>> {
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
pub(super) async fn image(P(name): P<String>) -> Response {
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
