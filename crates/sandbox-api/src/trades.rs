//! `GET /sandbox/api/trades/{out_trade_no}`: a trade as the gateway keeps it.

use chrono::{DateTime, Utc};
use haitao_alipay::api::TradeStatus;
use serde::{Deserialize, Serialize};

/// A trade as the gateway keeps it. Times are RFC 3339 (UTC).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Trade {
    pub trade_no: String,
    pub app_id: String,
    pub out_trade_no: String,
    /// The API method that created it (`alipay.trade.page.pay`, ...).
    pub method: String,
    pub product_code: Option<String>,
    pub status: TradeStatus,
    /// The order amount in minor units of `currency`.
    pub total_minor: i64,
    /// The order currency (ISO 4217).
    pub currency: String,
    /// The amount in CNY fen.
    pub cny_fen: i64,
    pub subject: String,
    pub biz_digest: String,
    pub biz_content: String,
    pub notify_url: Option<String>,
    pub return_url: Option<String>,
    pub buyer_id: Option<String>,
    pub channel: Option<String>,
    /// Alipay's `fund_bill_list`, as JSON text.
    pub fund_bills: Option<String>,
    pub surcharge_fen: i64,
    pub fee_fen: i64,
    pub refunded_fen: i64,
    pub created_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    pub paid_at: Option<DateTime<Utc>>,
    pub closed_at: Option<DateTime<Utc>>,
}

/// What `GET /sandbox/api/trades/{out_trade_no}` answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TradeView {
    pub trade: Trade,
    /// Money the trade moved into the merchant's account, payments minus refunds, in fen.
    pub merchant_net_fen: i64,
}

/// The query of `GET /sandbox/api/trades/{out_trade_no}`: one app's trade (any app's without it).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppQuery {
    #[serde(default)]
    pub app_id: Option<String>,
}
