//! The shop's error type and its `application/problem+json` rendering.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use haitao_shop_api::error::{ErrorCode, Problem};

use crate::db::DbError;

/// An API error: a status, a stable code, and a message safe to show.
#[derive(Debug, thiserror::Error)]
#[error("{}", problem)]
pub struct ApiError {
    pub problem: Problem,
    /// Internal cause for the log only; never sent to clients.
    pub cause: Option<String>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: ErrorCode, title: impl Into<String>) -> Self {
        ApiError { problem: Problem::new(status.as_u16(), code, title), cause: None }
    }

    pub fn detail(mut self, d: impl Into<String>) -> Self {
        self.problem.detail = Some(d.into());
        self
    }

    pub fn validation(field: &str, message: impl Into<String>) -> Self {
        let mut e = ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, ErrorCode::Validation, message);
        e.problem.field = Some(field.to_owned());
        e
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::BAD_REQUEST, ErrorCode::BadRequest, message)
    }

    pub fn not_found(what: &str) -> Self {
        ApiError::new(StatusCode::NOT_FOUND, ErrorCode::NotFound, format!("{what} not found"))
    }

    pub fn unauthorized() -> Self {
        ApiError::new(StatusCode::UNAUTHORIZED, ErrorCode::Unauthorized, "sign-in required")
    }

    pub fn conflict(code: ErrorCode, message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::CONFLICT, code, message)
    }

    pub fn rate_limited(secs: u32) -> Self {
        let mut e = ApiError::new(StatusCode::TOO_MANY_REQUESTS, ErrorCode::RateLimited, "too many attempts");
        e.problem.retry_after_secs = Some(secs);
        e
    }

    /// An unexpected failure: logged with its cause, reported as a generic 500.
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        let mut e = ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, ErrorCode::Internal, "internal error");
        e.cause = Some(cause.to_string());
        e
    }

    pub fn gateway(cause: impl std::fmt::Display) -> Self {
        let mut e = ApiError::new(
            StatusCode::BAD_GATEWAY,
            ErrorCode::GatewayUnavailable,
            "the payment gateway did not answer; the payment will be checked again",
        );
        e.cause = Some(cause.to_string());
        e
    }

    pub fn code(&self) -> ErrorCode {
        self.problem.code
    }
}

impl From<DbError> for ApiError {
    fn from(e: DbError) -> Self {
        ApiError::internal(e)
    }
}

impl From<rusqlite::Error> for ApiError {
    fn from(e: rusqlite::Error) -> Self {
        ApiError::internal(e)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.problem.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        if status.is_server_error() {
            tracing::error!(code = ?self.problem.code, cause = self.cause.as_deref().unwrap_or(""), "request failed");
        } else {
            tracing::debug!(code = ?self.problem.code, title = %self.problem.title, "request refused");
        }
        let body = serde_json::to_vec(&self.problem).unwrap_or_default();
        let mut resp = (status, body).into_response();
        resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(Problem::CONTENT_TYPE));
        if let Some(secs) = self.problem.retry_after_secs
            && let Ok(v) = HeaderValue::from_str(&secs.to_string())
        {
            resp.headers_mut().insert(header::RETRY_AFTER, v);
        }
        resp
    }
}

pub type ApiResult<T> = Result<T, ApiError>;
