//! # haitao-shop-api
//!
//! The wire types of the Haitao storefront API (`/api/v1`), shared by the shop server and the
//! desktop client so both sides speak exactly the same JSON. Money is `{minor, currency}` in integer
//! minor units; times are RFC 3339 in UTC; errors are `application/problem+json` with a stable
//! [`error::ErrorCode`].

pub mod account;
pub mod catalog;
pub mod code;
pub mod error;
pub mod orders;
pub mod reconciliation;
pub mod search;
pub mod secret;
pub mod support;

pub use haitao_alipay::money::{Currency, Money};

use serde::{Deserialize, Serialize};

/// The API's path prefix.
pub const API_PREFIX: &str = "/api/v1";

/// The header that makes a POST idempotent.
pub const IDEMPOTENCY_KEY: &str = "Idempotency-Key";

/// What `GET /api/v1/health` answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, specta::Type, utoipa::ToSchema)]
pub struct Health {
    pub status: String,
    pub version: String,
    /// The shop's clock (it may run ahead in demos and tests).
    pub now: chrono::DateTime<chrono::Utc>,
}

/// The app link the shop's return page hands Alipay's return query to, as
/// `haitao://alipay/return?<query>`: how a payment opened in the system browser comes back into
/// the desktop app (Alipay itself only returns to http(s) addresses).
pub const APP_RETURN_LINK: &str = "haitao://alipay/return";

/// What a client needs to check Alipay's return redirects itself: the gateway's public key and who
/// the merchant is. Public information.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, specta::Type, utoipa::ToSchema)]
pub struct PaymentConfig {
    pub app_id: String,
    pub seller_id: Option<String>,
    pub gateway: String,
    pub sign_type: String,
    /// Alipay's public key (SPKI, base64), as the console shows it.
    pub alipay_public_key: String,
    /// The shop's own return page, usable as `return_url`.
    pub return_page: String,
    /// Whether the gateway is Haitao's local sandbox (tester controls available).
    pub sandbox: bool,
    /// The sandbox's base URL for tester controls, when `sandbox` is true.
    pub sandbox_url: Option<String>,
}
