//! Errors of the shop API: `application/problem+json` (RFC 9457) bodies with a stable `code`.

use serde::{Deserialize, Serialize};

/// Stable, machine-readable error codes. Clients branch on these, never on messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, specta::Type, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The request could not be read (malformed JSON, wrong content type, bad query).
    BadRequest,
    /// A field is invalid; `field` names it.
    Validation,
    /// No valid access token.
    Unauthorized,
    /// The access token has expired: refresh it.
    TokenExpired,
    /// The refresh token was revoked or reused: sign in again.
    TokenRevoked,
    /// Wrong phone number or password.
    BadCredentials,
    /// Too many attempts; wait `retry_after_secs`.
    RateLimited,
    NotFound,
    /// The phone number is already registered.
    AlreadyRegistered,
    PayloadTooLarge,
    /// Not enough stock for the requested quantity.
    OutOfStock,
    /// The order would exceed the 5,000 CNY single-order limit.
    OrderLimitExceeded,
    /// The order would exceed the 26,000 CNY annual limit of the orderer.
    AnnualQuotaExceeded,
    /// Cross-border orders need a verified real name.
    RealNameRequired,
    /// The cart is empty.
    EmptyCart,
    /// The same idempotency key was used with a different request.
    IdempotencyConflict,
    /// The order or payment is not in a state that allows this.
    InvalidState,
    /// A payment attempt for this order may still succeed; wait for its result.
    PaymentInProgress,
    /// The return URL is not on the allow-list.
    ReturnUrlNotAllowed,
    /// The payment gateway could not be reached or did not answer; the outcome may be unknown.
    GatewayUnavailable,
    /// Something went wrong on the server; nothing was changed.
    Internal,
}

/// An `application/problem+json` body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, specta::Type, utoipa::ToSchema)]
pub struct Problem {
    /// A URI reference naming the problem type (`about:blank` or `urn:haitao:problem:<code>`).
    #[serde(rename = "type")]
    pub type_: String,
    pub title: String,
    pub status: u16,
    pub code: ErrorCode,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// The invalid field, for `validation` errors.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// Seconds to wait, for `rate_limited`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after_secs: Option<u32>,
}

impl Problem {
    pub const CONTENT_TYPE: &'static str = "application/problem+json";

    pub fn new(status: u16, code: ErrorCode, title: impl Into<String>) -> Self {
        let code_str =
            serde_json::to_value(code).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default();
        Problem {
            type_: format!("urn:haitao:problem:{code_str}"),
            title: title.into(),
            status,
            code,
            detail: None,
            field: None,
            retry_after_secs: None,
        }
    }

    pub fn with_detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = Some(detail.into());
        self
    }

    pub fn with_field(mut self, field: impl Into<String>) -> Self {
        self.field = Some(field.into());
        self
    }
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({:?})", self.title, self.code)?;
        if let Some(d) = &self.detail {
            write!(f, ": {d}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Problem {}
