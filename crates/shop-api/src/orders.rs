//! Cart, pricing, orders, payments, refunds, customs and logistics.

use chrono::{DateTime, Utc};
use haitao_alipay::money::Money;
use serde::{Deserialize, Serialize};

use crate::account::Address;
use crate::catalog::{Localized, Ppm, ProductSummary};

// ---------------------------------------------------------------------------------------------
// Pricing

/// The price of one cart or order line in CNY.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, specta::Type, utoipa::ToSchema)]
pub struct LinePricing {
    /// Unit price in the origin currency.
    pub unit_price: Money,
    /// Unit price converted to CNY.
    pub unit_price_cny: Money,
    pub quantity: i64,
    /// `unit_price_cny × quantity`.
    pub goods_cny: Money,
    /// This line's share of the order's shipping (part of the dutiable price).
    pub shipping_cny: Money,
    /// Composite tax on goods plus shipping.
    pub tax_cny: Money,
    pub tax_rate_ppm: Ppm,
    pub total_cny: Money,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, specta::Type, utoipa::ToSchema)]
pub struct Totals {
    pub goods: Money,
    pub shipping: Money,
    pub tax: Money,
    /// Goods plus shipping: what the cross-border limits count.
    pub dutiable: Money,
    /// What the buyer pays to the shop.
    pub total: Money,
}

/// Why checkout cannot go ahead, or what the buyer should know before it does.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, specta::Type, utoipa::ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum CartNotice {
    /// Over 5,000 CNY in one order (blocking unless it is a single indivisible item).
    OrderLimitExceeded { limit: Money, dutiable: Money },
    /// A single indivisible item over 5,000 CNY: allowed, but taxed in full at general-trade rates.
    SingleItemOverLimit { limit: Money, dutiable: Money },
    /// This order would take the orderer past the annual limit (blocking).
    AnnualQuotaExceeded { remaining: Money, dutiable: Money },
    /// Less stock than the quantity in the cart (blocking).
    StockShort { product_id: String, available: i64 },
    /// No verified real name yet (blocking at checkout).
    RealNameRequired,
    /// The cart is empty (blocking).
    EmptyCart,
}

impl CartNotice {
    pub fn is_blocking(&self) -> bool {
        !matches!(self, CartNotice::SingleItemOverLimit { .. })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, specta::Type, utoipa::ToSchema)]
pub struct CartLine {
    pub product: ProductSummary,
    pub pricing: LinePricing,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, specta::Type, utoipa::ToSchema)]
pub struct Cart {
    pub lines: Vec<CartLine>,
    pub totals: Totals,
    pub notices: Vec<CartNotice>,
    /// Remaining annual quota of the account's verified identity, if verified.
    pub quota_remaining: Option<Money>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, specta::Type, utoipa::ToSchema)]
pub struct SetQuantity {
    /// 0 removes the line.
    pub quantity: i64,
}

// ---------------------------------------------------------------------------------------------
// Payment methods

/// How the buyer pays inside Alipay.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, specta::Type, utoipa::ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum PaymentMethod {
    /// Alipay account balance (and Yu'e Bao).
    Balance,
    /// A bound debit or credit card.
    BankCard,
    /// Huabei, paid in one go.
    Huabei,
    /// Huabei in 3, 6 or 12 installments.
    HuabeiInstallments { periods: u32 },
    /// An international Visa or MasterCard bound to Alipay (a surcharge applies).
    InternationalCard,
}

impl PaymentMethod {
    pub fn code(self) -> String {
        match self {
            PaymentMethod::Balance => "balance".into(),
            PaymentMethod::BankCard => "bank_card".into(),
            PaymentMethod::Huabei => "huabei".into(),
            PaymentMethod::HuabeiInstallments { periods } => format!("huabei_{periods}"),
            PaymentMethod::InternationalCard => "international_card".into(),
        }
    }

    pub fn parse_code(s: &str) -> Option<PaymentMethod> {
        match s {
            "balance" => Some(PaymentMethod::Balance),
            "bank_card" => Some(PaymentMethod::BankCard),
            "huabei" => Some(PaymentMethod::Huabei),
            "international_card" => Some(PaymentMethod::InternationalCard),
            other => {
                let n: u32 = other.strip_prefix("huabei_")?.parse().ok()?;
                matches!(n, 3 | 6 | 12).then_some(PaymentMethod::HuabeiInstallments { periods: n })
            }
        }
    }
}

#[cfg(feature = "sqlite")]
impl rusqlite::types::ToSql for PaymentMethod {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        Ok(rusqlite::types::ToSqlOutput::from(self.code()))
    }
}

#[cfg(feature = "sqlite")]
impl rusqlite::types::FromSql for PaymentMethod {
    fn column_result(value: rusqlite::types::ValueRef<'_>) -> rusqlite::types::FromSqlResult<Self> {
        let text = value.as_str()?;
        PaymentMethod::parse_code(text).ok_or_else(|| {
            rusqlite::types::FromSqlError::Other(Box::new(crate::code::UnknownCode {
                kind: "payment method",
                value: text.to_owned(),
            }))
        })
    }
}

/// Where the cashier is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, specta::Type, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PayMode {
    /// The Alipay PC cashier in a separate app window.
    InApp,
    /// The Alipay PC cashier in the system browser.
    Browser,
    /// A QR code scanned with the Alipay phone app.
    Qr,
}

crate::codes! { PayMode, "payment mode" {
    InApp => "in_app",
    Browser => "browser",
    Qr => "qr",
} }

/// Who pays the Huabei installment fee.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, specta::Type, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum FeePayer {
    Buyer,
    Seller,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, specta::Type, utoipa::ToSchema)]
pub struct InstallmentPlan {
    pub periods: u32,
    pub fee_rate_ppm: Ppm,
    pub fee: Money,
    pub fee_payer: FeePayer,
    /// Each period's payment; the first carries any rounding remainder.
    pub per_period: Vec<Money>,
}

/// What paying with one method costs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, specta::Type, utoipa::ToSchema)]
pub struct MethodQuote {
    pub method: PaymentMethod,
    /// The order total the shop charges.
    pub order_total: Money,
    /// Charged by Alipay on top, for international cards.
    pub surcharge: Money,
    pub surcharge_rate_ppm: Ppm,
    pub installments: Option<InstallmentPlan>,
    /// What leaves the buyer's pocket in all.
    pub buyer_pays: Money,
}

// ---------------------------------------------------------------------------------------------
// Orders

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, specta::Type, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum OrderStatus {
    AwaitingPayment,
    Paid,
    CustomsDeclared,
    /// Customs hold: orderer and payer differ, or an inspection failed.
    Held,
    Cleared,
    Shipped,
    Delivered,
    /// Unpaid and closed (timeout or cancel).
    Closed,
    /// Fully refunded.
    Refunded,
}

crate::codes! { OrderStatus, "order status" {
    AwaitingPayment => "awaiting_payment",
    Paid => "paid",
    CustomsDeclared => "customs_declared",
    Held => "held",
    Cleared => "cleared",
    Shipped => "shipped",
    Delivered => "delivered",
    Closed => "closed",
    Refunded => "refunded",
} }

impl OrderStatus {
    /// The statuses of an order whose money has been taken (and not all returned).
    pub const PAID: &'static [OrderStatus] = &[
        OrderStatus::Paid,
        OrderStatus::CustomsDeclared,
        OrderStatus::Held,
        OrderStatus::Cleared,
        OrderStatus::Shipped,
        OrderStatus::Delivered,
    ];

    /// The statuses of an order whose parcel is on its way, which logistics may move on.
    pub const IN_TRANSIT: &'static [OrderStatus] =
        &[OrderStatus::CustomsDeclared, OrderStatus::Cleared, OrderStatus::Shipped];

    /// Money has been taken for this order (and not all returned): the one home of that rule.
    pub fn is_paid(self) -> bool {
        OrderStatus::PAID.contains(&self)
    }
}

/// The person customs sees as buying the goods. Must be the account's verified real name, and must
/// match the Alipay payer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, specta::Type, utoipa::ToSchema)]
pub struct Orderer {
    pub name: String,
    pub id_number_masked: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, specta::Type, utoipa::ToSchema)]
pub struct OrderLine {
    pub product_id: String,
    pub name: Localized,
    pub image: String,
    pub pricing: LinePricing,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, specta::Type, utoipa::ToSchema)]
pub struct CreateOrder {
    pub address_id: String,
}

/// The three documents customs compares.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, specta::Type, utoipa::ToSchema)]
pub struct CustomsInfo {
    pub order_declared: bool,
    pub payment_declared: bool,
    pub waybill_declared: bool,
    /// Alipay's `identity_check`: orderer equals payer.
    pub identity_check: Option<bool>,
    pub declaration_no: Option<String>,
    pub hold_reason: Option<HoldReason>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, specta::Type, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum HoldReason {
    /// The Alipay payer is not the orderer.
    OrdererNotPayer,
    /// Customs inspection found a problem; the order will be cancelled and refunded.
    InspectionFailed,
}

crate::codes! { HoldReason, "customs hold reason" {
    OrdererNotPayer => "orderer_not_payer",
    InspectionFailed => "inspection_failed",
} }

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, specta::Type, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AttemptStatus {
    /// Created; the cashier has not been reached yet.
    Started,
    /// The buyer was sent to the cashier.
    Redirected,
    Paid,
    /// Definitely not paid (declined, closed by the gateway, cancelled).
    Failed,
    /// Closed before payment (order timed out or a newer attempt replaced it).
    Closed,
    /// The outcome is not known yet; only a status query resolves this.
    Unknown,
}

crate::codes! { AttemptStatus, "payment attempt status" {
    Started => "started",
    Redirected => "redirected",
    Paid => "paid",
    Failed => "failed",
    Closed => "closed",
    Unknown => "unknown",
} }

impl AttemptStatus {
    /// The statuses of an attempt whose outcome may still change: the one home of "not final".
    pub const OPEN: &'static [AttemptStatus] =
        &[AttemptStatus::Started, AttemptStatus::Redirected, AttemptStatus::Unknown];

    /// No further change is possible.
    pub fn is_final(self) -> bool {
        !AttemptStatus::OPEN.contains(&self)
    }
}

/// Why a payment attempt failed, in terms the buyer can act on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, specta::Type, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PaymentFailure {
    /// The chosen channel lacked funds: pick another.
    InsufficientFunds,
    /// The card or channel was declined.
    Declined,
    /// Too many wrong payment passwords: payment is locked for a while.
    PasswordLocked,
    /// The buyer left the cashier.
    Cancelled,
    /// The trade expired before payment.
    Expired,
    /// Alipay refused the request.
    Rejected,
}

crate::codes! { PaymentFailure, "payment failure" {
    InsufficientFunds => "insufficient_funds",
    Declined => "declined",
    PasswordLocked => "password_locked",
    Cancelled => "cancelled",
    Expired => "expired",
    Rejected => "rejected",
} }

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, specta::Type, utoipa::ToSchema)]
pub struct StartPayment {
    pub method: PaymentMethod,
    pub mode: PayMode,
    /// Where the cashier sends the buyer back. Must be on the shop's allow-list (loopback
    /// addresses, the shop's own return page, or the `haitao:` scheme).
    pub return_url: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, specta::Type, utoipa::ToSchema)]
pub struct PaymentAttempt {
    pub id: String,
    pub order_id: String,
    /// Unique per attempt.
    pub out_trade_no: String,
    pub method: PaymentMethod,
    pub mode: PayMode,
    /// What the shop asks Alipay for (`total_amount`).
    pub amount: Money,
    pub status: AttemptStatus,
    pub failure: Option<PaymentFailure>,
    /// The cashier URL (in-app and browser modes).
    pub cashier_url: Option<String>,
    /// QR content (QR mode).
    pub qr_code: Option<String>,
    pub return_url: String,
    pub trade_no: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

/// What the client learned from the return redirect, handed over for confirmation.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, specta::Type, utoipa::ToSchema)]
pub struct ConfirmPayment {
    /// The raw query string of the return redirect, if one arrived.
    #[serde(default)]
    pub return_query: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, specta::Type, utoipa::ToSchema)]
pub struct RefundRecord {
    pub id: String,
    pub amount: Money,
    pub reason: String,
    pub status: RefundStatus,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, specta::Type, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RefundStatus {
    Pending,
    Succeeded,
    Failed,
}

crate::codes! { RefundStatus, "refund status" {
    Pending => "pending",
    Succeeded => "succeeded",
    Failed => "failed",
} }

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, specta::Type, utoipa::ToSchema)]
pub struct RequestRefund {
    /// `None` refunds everything not yet refunded.
    #[serde(default)]
    pub amount: Option<Money>,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, specta::Type, utoipa::ToSchema)]
pub struct CorrectOrderer {
    pub name: String,
    pub id_number: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, specta::Type, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TrackingStage {
    Paid,
    Picked,
    CustomsDeclared,
    CustomsCleared,
    CustomsInspection,
    CustomsHold,
    HandedToCourier,
    OutForDelivery,
    Delivered,
    Cancelled,
}

crate::codes! { TrackingStage, "tracking stage" {
    Paid => "paid",
    Picked => "picked",
    CustomsDeclared => "customs_declared",
    CustomsCleared => "customs_cleared",
    CustomsInspection => "customs_inspection",
    CustomsHold => "customs_hold",
    HandedToCourier => "handed_to_courier",
    OutForDelivery => "out_for_delivery",
    Delivered => "delivered",
    Cancelled => "cancelled",
} }

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, specta::Type, utoipa::ToSchema)]
pub struct TrackingEvent {
    pub at: DateTime<Utc>,
    pub stage: TrackingStage,
    pub description: Localized,
    pub location: Localized,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, specta::Type, utoipa::ToSchema)]
pub struct Waybill {
    pub number: String,
    pub carrier: Carrier,
}

/// Who carries a parcel. The app shows the carrier's name in the reader's language.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, specta::Type, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Carrier {
    /// 海淘国际物流 / Haitao Express: Haitao's own cross-border line, from the bonded warehouse to
    /// the door.
    HaitaoExpress,
}

crate::codes! { Carrier, "carrier" {
    HaitaoExpress => "haitao_express",
}}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, specta::Type, utoipa::ToSchema)]
pub struct Order {
    pub id: String,
    pub status: OrderStatus,
    pub lines: Vec<OrderLine>,
    pub totals: Totals,
    pub address: Address,
    pub orderer: Orderer,
    /// The latest payment attempt.
    pub payment: Option<PaymentAttempt>,
    pub customs: CustomsInfo,
    pub waybill: Option<Waybill>,
    pub tracking: Vec<TrackingEvent>,
    pub refunds: Vec<RefundRecord>,
    pub refunded: Money,
    /// Money has been taken for the order and not all returned ([`OrderStatus::is_paid`]), sent so
    /// that no client restates the rule.
    pub paid: bool,
    pub invoice_available: bool,
    pub pay_deadline: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// One page of a buyer's orders, newest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, specta::Type, utoipa::ToSchema)]
pub struct OrderPage {
    pub items: Vec<Order>,
    pub total: i64,
    pub page: u32,
    pub per_page: u32,
}

/// Orders changed after a point in time, for incremental client sync.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, specta::Type, utoipa::ToSchema)]
pub struct OrderChanges {
    pub orders: Vec<Order>,
    /// Pass as `since` next time.
    pub cursor: String,
    pub more: bool,
}
