//! The client's errors, and the one shape they take across the IPC boundary: `{code, message}`
//! (plus the field a validation error is about). The UI branches on `code`, never on `message`.

use haitao_shop_api::error::{ErrorCode as ShopCode, Problem};
use serde::{Deserialize, Serialize};

/// Stable codes the UI can branch on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, specta::Type)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// No OS keyring (Secret Service, Credential Manager, Keychain) is reachable: the session
    /// cannot be remembered.
    KeyringUnavailable,
    /// The keyring is locked and could not be unlocked.
    KeyringLocked,
    NotSignedIn,
    /// The session ended (signed out elsewhere, or expired): sign in again.
    SessionExpired,
    /// The shop cannot be reached; cached data is shown.
    Offline,
    Validation,
    NotFound,
    AlreadyRegistered,
    BadCredentials,
    RateLimited,
    OutOfStock,
    OrderLimitExceeded,
    AnnualQuotaExceeded,
    RealNameRequired,
    EmptyCart,
    /// A payment for this order may still succeed: wait for it.
    PaymentInProgress,
    /// The return from the cashier was not signed by Alipay, or not for this payment.
    PaymentSignatureInvalid,
    /// Alipay could not be reached; the payment will be checked again.
    GatewayUnavailable,
    /// The order or payment is not in a state that allows this.
    InvalidState,
    /// The local cache is damaged; it was left untouched.
    CacheCorrupt,
    /// The local cache was written by a newer Haitao; it was left untouched.
    CacheTooNew,
    /// The built-in shop or Alipay sandbox could not start.
    StartupFailed,
    /// The built-in shop or sandbox was told to use a port another program holds.
    PortInUse,
    /// The app's data folder cannot be created or written.
    DataDirUnwritable,
    /// A database of the built-in shop or sandbox is damaged; it was left untouched.
    DataCorrupt,
    /// A database of the built-in shop or sandbox was written by a newer Haitao; left untouched.
    DataTooNew,
    /// An update's signature does not verify against Haitao's update key: it was not installed.
    UpdateSignatureInvalid,
    /// The update server cannot be reached (or answered nonsense); checked again later.
    UpdateServerUnreachable,
    /// An update could not be downloaded or installed.
    UpdateFailed,
    Internal,
}

/// The error every command returns.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, specta::Type, thiserror::Error)]
#[error("{message}")]
pub struct IpcError {
    pub code: ErrorCode,
    /// A readable explanation (English; the UI shows its own translated text per code).
    pub message: String,
    /// The input field a validation error is about.
    pub field: Option<String>,
}

/// Errors inside the client.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("the shop answered: {0}")]
    Shop(Problem),
    #[error("the shop cannot be reached: {0}")]
    Offline(String),
    #[error("the shop sent an unreadable answer: {0}")]
    BadResponse(String),
    #[error(transparent)]
    Secret(#[from] crate::secrets::SecretError),
    #[error(transparent)]
    Cache(#[from] crate::cache::CacheError),
    #[error("not signed in")]
    NotSignedIn,
    #[error("the session ended; sign in again")]
    SessionExpired,
    #[error("{0}")]
    Invalid(String),
    #[error("{field}: {message}")]
    Validation { field: String, message: String },
    #[error("the return from the cashier was rejected: {0}")]
    ReturnRejected(String),
    #[error("{0}")]
    State(String),
    #[error("internal error: {0}")]
    Internal(String),
}

impl ClientError {
    pub fn code(&self) -> ErrorCode {
        use crate::secrets::SecretError;
        match self {
            ClientError::Shop(p) => match p.code {
                ShopCode::BadRequest
                | ShopCode::Validation
                | ShopCode::ReturnUrlNotAllowed
                | ShopCode::PayloadTooLarge => ErrorCode::Validation,
                ShopCode::Unauthorized | ShopCode::TokenExpired | ShopCode::TokenRevoked => {
                    ErrorCode::SessionExpired
                }
                ShopCode::BadCredentials => ErrorCode::BadCredentials,
                ShopCode::RateLimited => ErrorCode::RateLimited,
                ShopCode::NotFound => ErrorCode::NotFound,
                ShopCode::AlreadyRegistered => ErrorCode::AlreadyRegistered,
                ShopCode::OutOfStock => ErrorCode::OutOfStock,
                ShopCode::OrderLimitExceeded => ErrorCode::OrderLimitExceeded,
                ShopCode::AnnualQuotaExceeded => ErrorCode::AnnualQuotaExceeded,
                ShopCode::RealNameRequired => ErrorCode::RealNameRequired,
                ShopCode::EmptyCart => ErrorCode::EmptyCart,
                ShopCode::IdempotencyConflict | ShopCode::InvalidState => ErrorCode::InvalidState,
                ShopCode::PaymentInProgress => ErrorCode::PaymentInProgress,
                ShopCode::GatewayUnavailable => ErrorCode::GatewayUnavailable,
                ShopCode::Internal => ErrorCode::Internal,
            },
            ClientError::Offline(_) => ErrorCode::Offline,
            ClientError::BadResponse(_) | ClientError::Internal(_) => ErrorCode::Internal,
            ClientError::Secret(SecretError::Unavailable(_)) => ErrorCode::KeyringUnavailable,
            ClientError::Secret(SecretError::Locked(_)) => ErrorCode::KeyringLocked,
            ClientError::Secret(SecretError::Other(_)) => ErrorCode::KeyringUnavailable,
            ClientError::Cache(crate::cache::CacheError::Corrupt { .. }) => ErrorCode::CacheCorrupt,
            ClientError::Cache(crate::cache::CacheError::TooNew { .. }) => ErrorCode::CacheTooNew,
            ClientError::Cache(_) => ErrorCode::Internal,
            ClientError::NotSignedIn => ErrorCode::NotSignedIn,
            ClientError::SessionExpired => ErrorCode::SessionExpired,
            ClientError::Invalid(_) | ClientError::Validation { .. } => ErrorCode::Validation,
            ClientError::ReturnRejected(_) => ErrorCode::PaymentSignatureInvalid,
            ClientError::State(_) => ErrorCode::InvalidState,
        }
    }
}

impl From<ClientError> for IpcError {
    fn from(e: ClientError) -> Self {
        let field = match &e {
            ClientError::Shop(p) => p.field.clone(),
            ClientError::Validation { field, .. } => Some(field.clone()),
            _ => None,
        };
        let message = match &e {
            ClientError::Shop(p) => {
                p.detail.clone().map(|d| format!("{}: {d}", p.title)).unwrap_or_else(|| p.title.clone())
            }
            other => other.to_string(),
        };
        IpcError { code: e.code(), message, field }
    }
}

pub type Result<T, E = ClientError> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serialises_to_the_ipc_shape() {
        let e: IpcError =
            ClientError::Secret(crate::secrets::SecretError::Unavailable("no D-Bus".into())).into();
        let v = serde_json::to_value(&e).unwrap();
        assert_eq!(v["code"], "keyring_unavailable");
        assert!(v["message"].as_str().unwrap().contains("keyring"));
        let p = Problem::new(409, ShopCode::OrderLimitExceeded, "over 5,000").with_field("cart");
        let e: IpcError = ClientError::Shop(p).into();
        assert_eq!(
            serde_json::to_value(&e).unwrap(),
            serde_json::json!({"code": "order_limit_exceeded", "message": "over 5,000", "field": "cart"})
        );
    }
}
