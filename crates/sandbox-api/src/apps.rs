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
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
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
    /// Public-key certificate mode (公钥证书模式): the sandbox issues the app a certificate for its
    /// public key and answers with it, the Alipay public-key certificate and the root certificate.
    /// Once an app is in certificate mode it stays so.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub cert_mode: bool,
    /// Content encryption (`encrypt_type=AES`) with a key the sandbox makes.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub aes: bool,
    /// Content encryption with this key (base64 of 16 or 32 bytes, as the Alipay console shows it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aes_key: Option<String>,
}

impl std::fmt::Debug for AppRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppRequest")
            .field("name", &self.name)
            .field("notify_base", &self.notify_base)
            .field("cert_mode", &self.cert_mode)
            .field("aes", &self.aes)
            .field("aes_key", &self.aes_key.as_ref().map(|_| "<redacted>"))
            .finish_non_exhaustive()
    }
}

impl AppRequest {
    /// An app the sandbox makes a key pair for.
    pub fn named(name: impl Into<String>) -> Self {
        AppRequest {
            name: name.into(),
            public_key: None,
            notify_base: None,
            cert_mode: false,
            aes: false,
            aes_key: None,
        }
    }
}

/// What an app in certificate mode configures: the three files (PEM text) and their serial numbers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppCertificates {
    /// The application's public-key certificate (appCertPublicKey_<app_id>.crt).
    pub app_cert: String,
    /// Alipay's public-key certificate (alipayCertPublicKey_RSA2.crt), the one that signs now.
    pub alipay_cert: String,
    /// Alipay's root certificate (alipayRootCert.crt).
    pub alipay_root_cert: String,
    pub app_cert_sn: String,
    pub alipay_cert_sn: String,
    pub alipay_root_cert_sn: String,
}

/// A registered app, as `POST` (one) and `GET` (a list) `/sandbox/api/apps` answer.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
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
    /// Present for apps in certificate mode.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificates: Option<AppCertificates>,
    /// The content-encryption key, for apps that have one. Only in the answer to `POST`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aes_key: Option<String>,
    /// Whether the app has a content-encryption key.
    #[serde(default)]
    pub encrypted: bool,
}

impl std::fmt::Debug for AppInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppInfo")
            .field("app_id", &self.app_id)
            .field("name", &self.name)
            .field("seller_id", &self.seller_id)
            .field("gateway_url", &self.gateway_url)
            .field("app_private_key", &self.app_private_key.as_ref().map(|_| "<redacted>"))
            .field("certificates", &self.certificates.as_ref().map(|c| &c.app_cert_sn))
            .field("aes_key", &self.aes_key.as_ref().map(|_| "<redacted>"))
            .field("encrypted", &self.encrypted)
            .finish_non_exhaustive()
    }
}

/// What `POST /sandbox/api/alipay-cert/rotate` answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlipayCertRotated {
    /// The SN answers named until now.
    pub previous: String,
    /// The SN answers name from now on.
    pub alipay_cert_sn: String,
    /// The new certificate file (PEM), as `alipay.open.app.alipaycert.download` serves it.
    pub alipay_cert: String,
}
