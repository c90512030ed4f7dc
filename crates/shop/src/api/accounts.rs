//! Accounts: register, login, refresh, logout, the account, real name, quota, addresses.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use haitao_shop_api::account::{
    Account, Address, AddressInput, Credentials, Quota, RealName, RealNameRequest, RefreshRequest, TokenPair,
};
use haitao_shop_api::error::{ErrorCode, Problem};

use super::{Body, P, S, load_account, quota_for};
use crate::auth::{self, Authed};
use crate::error::{ApiError, ApiResult};
use crate::identity::{ResidentId, mask_id, mask_phone, normalise_phone, valid_name};
use crate::limits::ClientKey;
use crate::state::Shop;
use crate::store::{AccountRow, AddressEvent, Refreshed};

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
pub(super) async fn register(
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
pub(super) async fn login(
    State(shop): S,
    client: ClientKey,
    Body(c): Body<Credentials>,
) -> ApiResult<Json<TokenPair>> {
    let bad = || {
        ApiError::new(StatusCode::UNAUTHORIZED, ErrorCode::BadCredentials, "wrong phone number or password")
    };
    // Counted as a failure before the password is checked, and taken back if it was right.
    let counted = client.reserve(&shop, AddressEvent::LoginFailure).await?;
    let phone = normalise_phone(&c.phone).ok_or_else(bad)?;
    let now = shop.now();
    let since = now - auth::LOGIN_WINDOW;
    let p2 = phone.clone();
    // Counted as a failure of this number before the password is checked, in the same step that
    // checks the count, so a burst cannot all slip past it; cleared if the password is right.
    if !shop.blocking(move |s| s.count_login_attempt(&p2, since, auth::LOGIN_ATTEMPTS, now)).await? {
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
        _ => Err(bad()),
    }
}

#[utoipa::path(post, path = "/api/v1/auth/refresh", tag = "account", request_body = RefreshRequest,
    responses((status = 200, body = TokenPair), (status = 401, body = Problem)))]
pub(super) async fn refresh(State(shop): S, Body(r): Body<RefreshRequest>) -> ApiResult<Json<TokenPair>> {
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
pub(super) async fn logout(State(shop): S, a: Authed) -> ApiResult<StatusCode> {
    let now = shop.now();
    shop.blocking(move |s| s.revoke_family(&a.family_id, "signed out", now)).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(post, path = "/api/v1/auth/logout-all", tag = "account", security(("bearer" = [])), responses((status = 204)))]
pub(super) async fn logout_all(State(shop): S, a: Authed) -> ApiResult<StatusCode> {
    let now = shop.now();
    shop.blocking(move |s| s.revoke_all(&a.account_id, now)).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(get, path = "/api/v1/account", tag = "account", security(("bearer" = [])),
    responses((status = 200, body = Account), (status = 401, body = Problem)))]
pub(super) async fn account(State(shop): S, a: Authed) -> ApiResult<Json<Account>> {
    Ok(Json(account_view(&load_account(&shop, &a.account_id).await?)))
}

#[utoipa::path(post, path = "/api/v1/account/real-name", tag = "account", security(("bearer" = [])), request_body = RealNameRequest,
    responses((status = 200, body = Account), (status = 422, body = Problem)))]
pub(super) async fn real_name(
    State(shop): S,
    a: Authed,
    Body(r): Body<RealNameRequest>,
) -> ApiResult<Json<Account>> {
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

#[utoipa::path(get, path = "/api/v1/account/quota", tag = "account", security(("bearer" = [])),
    responses((status = 200, body = Quota), (status = 409, body = Problem)))]
pub(super) async fn quota(State(shop): S, a: Authed) -> ApiResult<Json<Quota>> {
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
pub(super) async fn addresses(State(shop): S, a: Authed) -> ApiResult<Json<Vec<Address>>> {
    Ok(Json(shop.blocking(move |s| s.addresses(&a.account_id)).await?))
}

#[utoipa::path(post, path = "/api/v1/account/addresses", tag = "account", security(("bearer" = [])), request_body = AddressInput,
    responses((status = 201, body = Address), (status = 422, body = Problem)))]
pub(super) async fn add_address(
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
pub(super) async fn update_address(
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
pub(super) async fn delete_address(State(shop): S, a: Authed, P(id): P<String>) -> ApiResult<StatusCode> {
    if shop.blocking(move |s| s.delete_address(&a.account_id, &id)).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found("address"))
    }
}
