//! Passwords (argon2id) and sessions: a short-lived access token and a rotating refresh token, both
//! random, both stored only as SHA-256 hashes.

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use base64::Engine as _;
use chrono::{DateTime, Duration, Utc};
use haitao_shop_api::account::TokenPair;
use haitao_shop_api::error::ErrorCode;
use haitao_shop_api::secret::SecretString;
use std::sync::Arc;

use crate::error::ApiError;
use crate::state::Shop;
use crate::store::TokenHashes;

pub const ACCESS_TTL: Duration = Duration::minutes(15);
pub const REFRESH_TTL: Duration = Duration::days(30);
/// Wrong passwords allowed per phone number in `LOGIN_WINDOW` before sign-in is paused.
pub const LOGIN_ATTEMPTS: i64 = 5;
pub const LOGIN_WINDOW: Duration = Duration::minutes(15);

pub fn hash_password(password: &str) -> Result<String, ApiError> {
    let mut raw = [0u8; 16];
    aws_lc_rs::rand::fill(&mut raw).map_err(|_| ApiError::internal("no system randomness"))?;
    let salt = SaltString::encode_b64(&raw).map_err(ApiError::internal)?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(ApiError::internal)
}

pub fn verify_password(password: &str, hash: &str) -> bool {
    PasswordHash::new(hash).is_ok_and(|h| Argon2::default().verify_password(password.as_bytes(), &h).is_ok())
}

/// A password must have 8 to 64 characters and mix letters and digits.
pub fn check_password_rules(password: &str) -> Result<(), ApiError> {
    let n = password.chars().count();
    if !(8..=64).contains(&n)
        || !password.chars().any(char::is_alphabetic)
        || !password.chars().any(|c| c.is_ascii_digit())
    {
        return Err(ApiError::validation("password", "use 8 to 64 characters with letters and digits"));
    }
    Ok(())
}

fn random_token(prefix: &str) -> Result<String, ApiError> {
    let mut bytes = [0u8; 32];
    aws_lc_rs::rand::fill(&mut bytes).map_err(|_| ApiError::internal("no system randomness"))?;
    Ok(format!("{prefix}{}", base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)))
}

/// SHA-256 of a token, hex.
pub fn token_hash(token: &str) -> String {
    let d = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, token.as_bytes());
    d.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

/// A new token pair: what the client gets, and what the store keeps.
pub fn issue(now: DateTime<Utc>) -> Result<(TokenPair, TokenHashes), ApiError> {
    let access = random_token("at_")?;
    let refresh = random_token("rt_")?;
    let hashes = TokenHashes {
        access_hash: token_hash(&access),
        access_expires: now + ACCESS_TTL,
        refresh_hash: token_hash(&refresh),
        refresh_expires: now + REFRESH_TTL,
    };
    let pair = TokenPair {
        access_token: SecretString::new(access),
        access_expires_at: hashes.access_expires,
        refresh_token: SecretString::new(refresh),
        refresh_expires_at: hashes.refresh_expires,
    };
    Ok((pair, hashes))
}

/// An authenticated request: the bearer token named a live session.
#[derive(Debug, Clone)]
pub struct Authed {
    pub account_id: String,
    pub family_id: String,
}

impl FromRequestParts<Arc<Shop>> for Authed {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, shop: &Arc<Shop>) -> Result<Self, Self::Rejection> {
        let token = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or_else(ApiError::unauthorized)?
            .to_owned();
        let hash = token_hash(&token);
        let grant =
            shop.blocking(move |s| s.access_grant(&hash)).await?.ok_or_else(ApiError::unauthorized)?;
        if grant.expires_at <= shop.now() {
            return Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                ErrorCode::TokenExpired,
                "the access token has expired",
            ));
        }
        Ok(Authed { account_id: grant.account_id, family_id: grant.family_id })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_and_tokens() {
        let h = hash_password("correct horse 1").unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(verify_password("correct horse 1", &h));
        assert!(!verify_password("correct horse 2", &h));
        assert!(!verify_password("x", "not a hash"));
        assert!(check_password_rules("abc12345").is_ok());
        assert!(check_password_rules("abcdefgh").is_err());
        assert!(check_password_rules("1234567").is_err());
        let (pair, hashes) =
            issue(haitao_alipay::time::Clock::now(&haitao_alipay::time::SystemClock)).unwrap();
        assert_eq!(token_hash(pair.access_token.expose()), hashes.access_hash);
        assert_ne!(pair.access_token, pair.refresh_token);
        assert!(!format!("{pair:?}").contains(pair.access_token.expose()));
    }
}
