//! Payments: one payment, confirm, abandon, and Alipay's notification and return page.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
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

#[utoipa::path(get, path = "/api/v1/alipay/return", tag = "payments",
    params(("query" = Option<String>, Query, description = "Alipay's signed return parameters, if any")),
    responses((status = 200, content_type = "text/html", body = String)))]
pub(super) async fn alipay_return(RawQuery(query): RawQuery) -> Response {
    ([(header::CACHE_CONTROL, "no-store")], Html(return_page(query.as_deref()))).into_response()
}

/// The page a system browser lands on after the Alipay cashier. With Alipay's result it hands that
/// result to the desktop app as a `haitao://alipay/return?…` link (opened at once, and as a button
/// when the browser asks first); the app checks it like any return. The parameters are decoded and
/// encoded again, so the link holds nothing but URL-safe text.
pub(crate) fn return_page(query: Option<&str>) -> String {
    const HEAD: &str = "<!doctype html><html lang=\"zh-CN\"><head><meta charset=\"utf-8\"><title>Haitao 海淘</title>\
        <style>body{font-family:system-ui,sans-serif;display:grid;place-items:center;min-height:100vh;margin:0;text-align:center}\
        a.open{display:inline-block;margin:1rem;padding:.7rem 1.4rem;border-radius:6px;background:#1677ff;color:#fff;text-decoration:none;font-size:1.1rem}</style>";
    let pairs: Vec<(String, String)> = url::form_urlencoded::parse(query.unwrap_or_default().as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    if pairs.is_empty() {
        return format!(
            "{HEAD}</head><body><main><h1>请返回 Haitao 海淘应用</h1><p>支付结果将在应用内确认。您可以关闭此页面。</p>\
             <p lang=\"en\">Return to the Haitao app: it confirms the payment. You can close this tab.</p></main></body></html>"
        );
    }
    let encoded = url::form_urlencoded::Serializer::new(String::new()).extend_pairs(&pairs).finish();
    // Only `&` of the encoded text means something in HTML.
    let link = format!("{}?{}", haitao_shop_api::APP_RETURN_LINK, encoded).replace('&', "&amp;");
    format!(
        "{HEAD}<meta http-equiv=\"refresh\" content=\"0;url={link}\"></head><body><main>\
         <h1>正在返回 Haitao 海淘</h1><p>支付结果将在应用内确认。如果应用没有打开，请点击：</p>\
         <p><a class=\"open\" id=\"open-app\" href=\"{link}\">打开 Haitao 海淘 · Open Haitao</a></p>\
         <p lang=\"en\">Returning to Haitao, which confirms the payment. If the app does not open, use the button. \
         You can close this tab afterwards.</p></main></body></html>"
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::return_page;

    /// The page hands Alipay's result to the app link unchanged in meaning, and nothing a crafted
    /// address carries can leave the attribute it sits in.
    #[test]
    fn the_return_page_hands_the_result_to_the_app() {
        let page =
            return_page(Some("out_trade_no=HT1&total_amount=88.88&sign=a%2Bb%3D%3D&subject=%E6%B5%B7"));
        let link = "haitao://alipay/return?out_trade_no=HT1&amp;total_amount=88.88&amp;sign=a%2Bb%3D%3D&amp;subject=%E6%B5%B7";
        assert!(page.contains(&format!("href=\"{link}\"")), "{page}");
        assert!(page.contains(&format!("content=\"0;url={link}\"")), "{page}");

        let hostile = return_page(Some("out_trade_no=%22%3E%3Cscript%3Ealert(1)%3C/script%3E&x=\"><b>'"));
        assert!(!hostile.contains("<script") && !hostile.contains("<b>"), "{hostile}");
        let href = hostile.split("href=\"").nth(1).unwrap().split('"').next().unwrap();
        assert!(href.chars().all(|c| c.is_ascii_alphanumeric() || "%+=&;:/?*-._".contains(c)), "{href}");

        for empty in [None, Some("")] {
            let page = return_page(empty);
            assert!(!page.contains("haitao://") && page.contains("请返回 Haitao 海淘应用"), "{page}");
        }
    }
}
