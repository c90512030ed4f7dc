//! Cart and checkout: the cart and the payment method quotes for it.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use haitao_alipay::money::{Currency, Money};
use haitao_shop_api::error::{ErrorCode, Problem};
use haitao_shop_api::orders::{Cart, CartLine, CartNotice, MethodQuote, SetQuantity};

use super::{Body, P, S, all_methods, load_account, quota_for};
use crate::auth::Authed;
use crate::error::{ApiError, ApiResult};
use crate::pricing::{limit_notices, price};
use crate::state::Shop;

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
pub(super) async fn cart(State(shop): S, a: Authed) -> ApiResult<Json<Cart>> {
    Ok(Json(build_cart(&shop, &a.account_id).await?))
}

#[utoipa::path(put, path = "/api/v1/cart/items/{product_id}", tag = "cart", security(("bearer" = [])), request_body = SetQuantity,
    params(("product_id" = String, Path)), responses((status = 200, body = Cart), (status = 404, body = Problem), (status = 422, body = Problem)))]
pub(super) async fn set_item(
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
pub(super) async fn clear_cart(State(shop): S, a: Authed) -> ApiResult<Json<Cart>> {
    let aid = a.account_id.clone();
    shop.blocking(move |s| s.clear_cart(&aid)).await?;
    Ok(Json(build_cart(&shop, &a.account_id).await?))
}

#[utoipa::path(get, path = "/api/v1/checkout/quotes", tag = "cart", security(("bearer" = [])), responses((status = 200, body = [MethodQuote])))]
pub(super) async fn cart_quotes(State(shop): S, a: Authed) -> ApiResult<Json<Vec<MethodQuote>>> {
    let c = build_cart(&shop, &a.account_id).await?;
    Ok(Json(all_methods(&shop, c.totals.total)?))
}
