//! What a confirmed payment and an Alipay notification mean for an attempt and its order.
//!
//! These are the rules only: plain functions of what the store read, returning what it must
//! write. A store runs them inside the one transaction that reads their inputs and writes their
//! outcome (`PaymentStore::apply_payment`, `PaymentStore::apply_notification`), so a rule and
//! the writes that follow from it never drift apart.

use chrono::{DateTime, Utc};
use haitao_alipay::api::TradeStatus;
use haitao_alipay::inbound::{Expected, Notify, Rejection};
use haitao_shop_api::orders::{AttemptStatus, OrderStatus, PaymentAttempt, PaymentFailure};

use crate::store::{OrderCore, RefundRow};

/// What applying a confirmed payment did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PaymentApplied {
    /// The order is now paid by this attempt.
    Paid,
    /// Already applied (a repeated notification or confirmation).
    AlreadyApplied,
    /// The order was already paid by another attempt: this money must be refunded.
    Duplicate,
    /// The order was closed (cancelled, or not paid in time) before this payment: this money must
    /// be refunded. A closed order is never re-opened: its stock and the buyer's annual quota may
    /// have gone to other orders.
    OrderGone,
}

impl PaymentApplied {
    /// Why the payment is refunded, when it cannot be kept.
    pub fn refund_reason(&self) -> Option<&'static str> {
        // (The sweeper gives the same reasons: `SqliteStore::cover_payment`.)
        match self {
            PaymentApplied::Duplicate => Some("duplicate payment"),
            PaymentApplied::OrderGone => Some("order closed before payment"),
            PaymentApplied::Paid | PaymentApplied::AlreadyApplied => None,
        }
    }

    /// Whether the attempt is to be marked paid now (it was not yet).
    pub fn marks_attempt_paid(&self) -> bool {
        *self != PaymentApplied::AlreadyApplied
    }
}

/// What a payment the gateway confirmed for `attempt` does to `order`: it pays an order awaiting
/// payment, is a duplicate when another attempt paid the order, and cannot be kept by an order
/// that is gone. A payment already applied changes nothing.
pub fn on_payment(attempt: &PaymentAttempt, order: &OrderCore) -> PaymentApplied {
    if attempt.status == AttemptStatus::Paid {
        PaymentApplied::AlreadyApplied
    } else if order.paid_attempt_id.as_deref().is_some_and(|p| p != attempt.id) {
        PaymentApplied::Duplicate
    } else if order.status == OrderStatus::AwaitingPayment {
        PaymentApplied::Paid
    } else {
        PaymentApplied::OrderGone
    }
}

/// What a verified notification asks of the shop.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotificationEffect {
    /// The trade was paid: apply the payment (see [`on_payment`]).
    ApplyPayment { trade_no: String },
    /// The trade was closed unpaid: the attempt ends as expired.
    CloseAttempt(Box<PaymentAttempt>),
    /// Nothing changes: a stale "waiting" message, or a close for an attempt already final.
    Nothing,
}

/// Checks a notification against the attempt its `out_trade_no` names (an unknown trade or a
/// different amount is refused, and nothing is recorded) and says what it asks of the shop.
/// Never moves backwards: a "waiting" message after a payment, or a close after the attempt
/// ended, changes nothing.
pub fn on_notification(
    n: Notify,
    attempt: Option<&PaymentAttempt>,
    now: DateTime<Utc>,
) -> Result<(Notify, NotificationEffect), Rejection> {
    let expected = attempt.map(|a| Expected { total_amount: a.amount });
    let n = n.matched(expected.as_ref())?.message;
    let Some(attempt) = attempt else { return Err(Rejection::UnknownOrder(n.out_trade_no)) };
    let effect = match n.trade_status {
        TradeStatus::TradeSuccess | TradeStatus::TradeFinished => {
            NotificationEffect::ApplyPayment { trade_no: n.trade_no.clone() }
        }
        TradeStatus::TradeClosed if !attempt.status.is_final() => {
            NotificationEffect::CloseAttempt(Box::new(PaymentAttempt {
                status: AttemptStatus::Closed,
                failure: Some(PaymentFailure::Expired),
                updated_at: now,
                ..attempt.clone()
            }))
        }
        TradeStatus::TradeClosed | TradeStatus::WaitBuyerPay => NotificationEffect::Nothing,
    };
    Ok((n, effect))
}

/// What applying a notification did, once its transaction committed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotificationApplied {
    /// Refused: it names no attempt of this shop, or a different amount. Nothing was recorded.
    Rejected(Rejection),
    /// Recorded (once per `notify_id`) with the attempt it names, as it was found, and what it
    /// did: the payment it applied and the refund that payment needs, when it cannot be kept.
    Recorded { attempt: Box<PaymentAttempt>, payment: Option<(PaymentApplied, Option<RefundRow>)> },
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::fixtures::{order, t0};
    use haitao_alipay::money::{Currency, Money};
    use haitao_shop_api::orders::{PayMode, PaymentMethod};

    fn attempt(id: &str, status: AttemptStatus) -> PaymentAttempt {
        PaymentAttempt {
            id: id.into(),
            order_id: "O1".into(),
            out_trade_no: format!("HT-{id}"),
            method: PaymentMethod::Balance,
            mode: PayMode::InApp,
            amount: Money::from_minor(10_900, Currency::Cny),
            status,
            failure: None,
            cashier_url: None,
            qr_code: None,
            return_url: "haitao://pay".into(),
            trade_no: None,
            created_at: t0(),
            updated_at: t0(),
            expires_at: t0() + chrono::Duration::minutes(15),
        }
    }

    #[test]
    fn a_payment_pays_only_an_order_awaiting_it_and_is_refunded_otherwise() {
        let a = attempt("PA1", AttemptStatus::Redirected);
        assert_eq!(on_payment(&a, &order(OrderStatus::AwaitingPayment, None)), PaymentApplied::Paid);
        assert_eq!(on_payment(&a, &order(OrderStatus::Paid, Some("PA2"))), PaymentApplied::Duplicate);
        assert_eq!(on_payment(&a, &order(OrderStatus::Closed, None)), PaymentApplied::OrderGone);
        // Closed after another attempt paid and was refunded: still that other attempt's order.
        assert_eq!(on_payment(&a, &order(OrderStatus::Refunded, Some("PA2"))), PaymentApplied::Duplicate);
        // An ended attempt paid after all is still applied by the same rules.
        let ended = attempt("PA1", AttemptStatus::Failed);
        assert_eq!(on_payment(&ended, &order(OrderStatus::AwaitingPayment, None)), PaymentApplied::Paid);
        // Once applied, never again, whatever the order became since.
        let paid = attempt("PA1", AttemptStatus::Paid);
        for o in [order(OrderStatus::Paid, Some("PA1")), order(OrderStatus::Refunded, Some("PA1"))] {
            assert_eq!(on_payment(&paid, &o), PaymentApplied::AlreadyApplied);
        }
        assert_eq!(PaymentApplied::Duplicate.refund_reason(), Some("duplicate payment"));
        assert_eq!(PaymentApplied::Paid.refund_reason(), None);
        assert!(!PaymentApplied::AlreadyApplied.marks_attempt_paid());
    }
}
