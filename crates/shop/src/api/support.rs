//! Support: tickets and their messages.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use haitao_shop_api::error::Problem;
use haitao_shop_api::support::{Author, NewMessage, NewTicket, Ticket, TicketStatus};

use super::{Body, P, S};
use crate::auth::Authed;
use crate::error::{ApiError, ApiResult};

#[utoipa::path(get, path = "/api/v1/tickets", tag = "support", security(("bearer" = [])), responses((status = 200, body = [Ticket])))]
pub(super) async fn tickets(State(shop): S, a: Authed) -> ApiResult<Json<Vec<Ticket>>> {
    Ok(Json(shop.blocking(move |s| s.tickets(&a.account_id)).await?))
}

#[utoipa::path(post, path = "/api/v1/tickets", tag = "support", security(("bearer" = [])), request_body = NewTicket,
    responses((status = 201, body = Ticket), (status = 422, body = Problem)))]
pub(super) async fn new_ticket(
    State(shop): S,
    a: Authed,
    Body(t): Body<NewTicket>,
) -> ApiResult<(StatusCode, Json<Ticket>)> {
    Ok((StatusCode::CREATED, Json(crate::support::open(&shop, &a.account_id, t).await?)))
}

#[utoipa::path(get, path = "/api/v1/tickets/{id}", tag = "support", security(("bearer" = [])), params(("id" = String, Path)),
    responses((status = 200, body = Ticket), (status = 404, body = Problem)))]
pub(super) async fn ticket(State(shop): S, a: Authed, P(id): P<String>) -> ApiResult<Json<Ticket>> {
    shop.blocking(move |s| s.ticket(&a.account_id, &id))
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::not_found("ticket"))
}

#[utoipa::path(post, path = "/api/v1/tickets/{id}/messages", tag = "support", security(("bearer" = [])), request_body = NewMessage,
    params(("id" = String, Path)), responses((status = 200, body = Ticket), (status = 404, body = Problem)))]
pub(super) async fn ticket_message(
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
