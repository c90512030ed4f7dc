//! The shop's daily reconciliation with Alipay's trade bill, as its admin endpoints answer it
//! (`/api/v1/admin/reconciliations`).

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use crate::Money;

/// How a day's bill and the shop's books disagree.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, specta::Type, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DifferenceKind {
    /// Alipay took a payment the books do not record as paid.
    MissingPayment,
    /// The bill lists a trade whose `out_trade_no` the shop never made.
    UnknownTrade,
    /// The same payment or refund with another amount in the bill than in the books.
    AmountMismatch,
    /// The books record a payment that day that the bill does not list.
    PaymentNotInBill,
    /// The books record a refund as done that day that the bill does not list: the buyer may not
    /// have their money back.
    RefundMissing,
    /// The bill lists a refund the books do not record as done.
    UnknownRefund,
}

crate::codes! { DifferenceKind, "reconciliation difference" {
    MissingPayment => "missing_payment",
    UnknownTrade => "unknown_trade",
    AmountMismatch => "amount_mismatch",
    PaymentNotInBill => "payment_not_in_bill",
    RefundMissing => "refund_missing",
    UnknownRefund => "unknown_refund",
} }

/// One difference: which trade (and refund), and the amount each side has for it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, specta::Type, utoipa::ToSchema)]
pub struct Difference {
    pub kind: DifferenceKind,
    pub out_trade_no: String,
    /// The refund's request number, for a refund.
    #[serde(default)]
    pub out_request_no: Option<String>,
    /// What the books have (absent: nothing).
    #[serde(default)]
    pub books: Option<Money>,
    /// What the bill has (absent: nothing).
    #[serde(default)]
    pub bill: Option<Money>,
}

/// A day compared: what the bill held and every difference found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, specta::Type, utoipa::ToSchema)]
pub struct Reconciliation {
    /// The Alipay day (Asia/Shanghai).
    pub day: NaiveDate,
    pub ran_at: DateTime<Utc>,
    /// The bill file's name, as Alipay names it.
    pub bill_file: String,
    /// Payments and refunds the bill lists.
    pub payments: u32,
    pub refunds: u32,
    /// The bill's income and refunds (a positive amount each).
    pub income: Money,
    pub refunded: Money,
    pub differences: Vec<Difference>,
}

/// A day the shop could not reconcile yet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, specta::Type, utoipa::ToSchema)]
pub struct FailingDay {
    pub day: NaiveDate,
    pub tries: u32,
    pub last_error: String,
    pub tried_at: DateTime<Utc>,
    /// When the job tries it again; absent once the day is older than the job looks back (31
    /// days): only a rerun through the admin endpoint takes it then.
    pub next_try_at: Option<DateTime<Utc>>,
}

/// What `GET /api/v1/admin/reconciliations` answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, specta::Type, utoipa::ToSchema)]
pub struct Reconciliations {
    /// The latest days reconciled, newest first.
    pub reconciled: Vec<Reconciliation>,
    /// Days not reconciled yet that the job tried, oldest first.
    pub failing: Vec<FailingDay>,
}
