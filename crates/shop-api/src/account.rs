//! Accounts: registration, sessions, real-name verification, addresses, the annual quota.

use chrono::{DateTime, NaiveDate, Utc};
use haitao_alipay::money::Money;
use serde::{Deserialize, Serialize};

use crate::secret::SecretString;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, specta::Type, utoipa::ToSchema)]
pub struct Credentials {
    /// Mainland mobile number, 11 digits starting with 1.
    pub phone: String,
    #[schema(value_type = String, format = Password)]
    pub password: SecretString,
}

/// A session: a short-lived access token and a rotating refresh token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, specta::Type, utoipa::ToSchema)]
pub struct TokenPair {
    #[schema(value_type = String)]
    pub access_token: SecretString,
    pub access_expires_at: DateTime<Utc>,
    /// Single use: each refresh returns a new one and revokes the old. Reusing a revoked one
    /// revokes the whole session.
    #[schema(value_type = String)]
    pub refresh_token: SecretString,
    pub refresh_expires_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, specta::Type, utoipa::ToSchema)]
pub struct RefreshRequest {
    #[schema(value_type = String)]
    pub refresh_token: SecretString,
}

/// A verified real-name identity, masked for display.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, specta::Type, utoipa::ToSchema)]
pub struct RealName {
    pub name: String,
    /// `110105********002X`
    pub id_number_masked: String,
    pub birth_date: NaiveDate,
    pub verified_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, specta::Type, utoipa::ToSchema)]
pub struct Account {
    pub id: String,
    /// `138****8000`
    pub phone_masked: String,
    pub real_name: Option<RealName>,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, specta::Type, utoipa::ToSchema)]
pub struct RealNameRequest {
    pub name: String,
    /// 18-character resident identity number (GB 11643).
    pub id_number: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, specta::Type, utoipa::ToSchema)]
pub struct AddressInput {
    pub recipient: String,
    pub phone: String,
    pub province: String,
    pub city: String,
    pub district: String,
    pub street: String,
    #[serde(default)]
    pub postal_code: Option<String>,
    #[serde(default)]
    pub is_default: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, specta::Type, utoipa::ToSchema)]
pub struct Address {
    pub id: String,
    #[serde(flatten)]
    pub fields: AddressInput,
}

/// The orderer's cross-border allowance for a calendar year (Asia/Shanghai).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, specta::Type, utoipa::ToSchema)]
pub struct Quota {
    pub year: i32,
    /// 26,000 CNY.
    pub annual_limit: Money,
    /// 5,000 CNY.
    pub order_limit: Money,
    /// Paid orders this year, net of refunds.
    pub used: Money,
    /// Orders created and awaiting payment.
    pub reserved: Money,
    pub remaining: Money,
}
