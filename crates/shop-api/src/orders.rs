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

impl OrderStatus {
    pub const ALL: [OrderStatus; 9] = [
        OrderStatus::AwaitingPayment,
        OrderStatus::Paid,
        OrderStatus::CustomsDeclared,
        OrderStatus::Held,
        OrderStatus::Cleared,
        OrderStatus::Shipped,
        OrderStatus::Delivered,
        OrderStatus::Closed,
        OrderStatus::Refunded,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            OrderStatus::AwaitingPayment => "awaiting_payment",
            OrderStatus::Paid => "paid",
            OrderStatus::CustomsDeclared => "customs_declared",
            OrderStatus::Held => "held",
            OrderStatus::Cleared => "cleared",
            OrderStatus::Shipped => "shipped",
            OrderStatus::Delivered => "delivered",
            OrderStatus::Closed => "closed",
            OrderStatus::Refunded => "refunded",
        }
    }

    pub fn parse(s: &str) -> Option<OrderStatus> {
        OrderStatus::ALL.into_iter().find(|o| o.as_str() == s)
    }

    /// Money has been taken for this order (and not all returned).
    pub fn is_paid(self) -> bool {
        matches!(
            self,
            OrderStatus::Paid
                | OrderStatus::CustomsDeclared
                | OrderStatus::Held
                | OrderStatus::Cleared
                | OrderStatus::Shipped
                | OrderStatus::Delivered
        )
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

impl AttemptStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            AttemptStatus::Started => "started",
            AttemptStatus::Redirected => "redirected",
            AttemptStatus::Paid => "paid",
            AttemptStatus::Failed => "failed",
            AttemptStatus::Closed => "closed",
            AttemptStatus::Unknown => "unknown",
        }
    }

    pub fn parse(s: &str) -> Option<AttemptStatus> {
        [
            AttemptStatus::Started,
            AttemptStatus::Redirected,
            AttemptStatus::Paid,
            AttemptStatus::Failed,
            AttemptStatus::Closed,
            AttemptStatus::Unknown,
        ]
        .into_iter()
        .find(|a| a.as_str() == s)
    }

    /// No further change is possible.
    pub fn is_final(self) -> bool {
        matches!(self, AttemptStatus::Paid | AttemptStatus::Failed | AttemptStatus::Closed)
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
    pub carrier: String,
}

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
