//! `GET /sandbox/api/info` and `GET/POST /sandbox/api/apps`.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// What `GET /sandbox/api/info` answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Info {
    pub gateway_url: String,
    /// The sandbox's Alipay public key (SPKI, base64).
    pub alipay_public_key: String,
    /// The sandbox's clock (it may run ahead, see [`crate::clock`]).
    pub now: DateTime<Utc>,
    pub version: String,
}

/// `POST /sandbox/api/apps`: registers an app, or returns the existing one with that name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppRequest {
    /// 1 to 64 characters.
    pub name: String,
    /// The merchant's public key. Without it the sandbox generates a demo key pair and returns the
    /// private key (test material only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public_key: Option<String>,
    /// The merchant's current base URL: pending notifications are redelivered there.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notify_base: Option<String>,
}

impl AppRequest {
    /// An app the sandbox makes a key pair for.
    pub fn named(name: impl Into<String>) -> Self {
        AppRequest { name: name.into(), public_key: None, notify_base: None }
    }
}

/// A registered app, as `POST` (one) and `GET` (a list) `/sandbox/api/apps` answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppInfo {
    pub app_id: String,
    pub name: String,
    pub seller_id: String,
    pub gateway_url: String,
    pub alipay_public_key: String,
    /// Only for apps whose key pair the sandbox generated, and only in the answer to `POST`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_private_key: Option<String>,
    pub app_public_key: String,
}
