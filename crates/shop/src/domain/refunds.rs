//! What a buyer's refund request may take back.
//!
//! A rule only: the store runs [`requested_amount`] inside the transaction that read the order
//! and what is left of its payment, and records the refund in the same transaction
//! (`RefundStore::request_refund`).

use haitao_alipay::money::{Currency, Money};
use haitao_shop_api::error::ErrorCode;
use haitao_shop_api::orders::RequestRefund;

use crate::error::ApiError;
use crate::store::OrderCore;

/// The longest reason a buyer may give, in characters.
pub const REASON_MAX_CHARS: usize = 200;

/// The amount a buyer's request refunds on `order`, of which `refundable_fen` is left on the
/// payment that paid it: only a paid order is refunded, with a reason, in CNY, between one fen
/// and what is left (everything left when no amount is asked).
pub fn requested_amount(
    order: &OrderCore,
    refundable_fen: i64,
    req: &RequestRefund,
) -> Result<Money, ApiError> {
    if !order.status.is_paid() {
        return Err(ApiError::conflict(ErrorCode::InvalidState, "only paid orders can be refunded"));
    }
    let reason = req.reason.trim();
    if reason.is_empty() || reason.chars().count() > REASON_MAX_CHARS {
        return Err(ApiError::validation("reason", "give a reason of up to 200 characters"));
    }
    match req.amount {
        Some(m) if m.currency() != Currency::Cny => Err(ApiError::validation("amount", "refunds are in CNY")),
        Some(m) if m.minor() <= 0 || m.minor() > refundable_fen => Err(ApiError::validation(
            "amount",
            format!("between 0.01 and {}", Money::from_minor(refundable_fen, Currency::Cny)),
        )),
        Some(m) => Ok(m),
        None if refundable_fen > 0 => Ok(Money::from_minor(refundable_fen, Currency::Cny)),
        None => Err(ApiError::conflict(ErrorCode::InvalidState, "nothing left to refund")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::fixtures;
    use haitao_shop_api::orders::OrderStatus;

    fn order(status: OrderStatus) -> OrderCore {
        fixtures::order(status, Some("PA1"))
    }

    fn ask(amount: Option<i64>, reason: &str) -> RequestRefund {
        RequestRefund { amount: amount.map(|f| Money::from_minor(f, Currency::Cny)), reason: reason.into() }
    }

    fn code(r: Result<Money, ApiError>) -> Option<String> {
        r.err().map(|e| e.problem.field.unwrap_or_else(|| format!("{:?}", e.problem.code)))
    }

    #[test]
    fn a_request_takes_back_at_most_what_is_left_of_a_paid_order() {
        let paid = order(OrderStatus::Paid);
        assert_eq!(
            requested_amount(&paid, 10_900, &ask(None, "坏了")).ok(),
            Some(Money::from_minor(10_900, Currency::Cny))
        );
        assert_eq!(
            requested_amount(&paid, 900, &ask(Some(900), " size ")).ok(),
            Some(Money::from_minor(900, Currency::Cny))
        );
        assert_eq!(code(requested_amount(&paid, 900, &ask(Some(901), "x"))).as_deref(), Some("amount"));
        assert_eq!(code(requested_amount(&paid, 900, &ask(Some(0), "x"))).as_deref(), Some("amount"));
        assert_eq!(code(requested_amount(&paid, 900, &ask(Some(-1), "x"))).as_deref(), Some("amount"));
        let usd = RequestRefund { amount: Some(Money::from_minor(100, Currency::Usd)), reason: "x".into() };
        assert_eq!(code(requested_amount(&paid, 900, &usd)).as_deref(), Some("amount"));
        assert_eq!(code(requested_amount(&paid, 900, &ask(None, "  "))).as_deref(), Some("reason"));
        let long = "长".repeat(REASON_MAX_CHARS + 1);
        assert_eq!(code(requested_amount(&paid, 900, &ask(None, &long))).as_deref(), Some("reason"));
        assert!(requested_amount(&paid, 900, &ask(None, &"长".repeat(REASON_MAX_CHARS))).is_ok());
        assert_eq!(code(requested_amount(&paid, 0, &ask(None, "x"))).as_deref(), Some("InvalidState"));
        for status in [OrderStatus::AwaitingPayment, OrderStatus::Closed, OrderStatus::Refunded] {
            assert_eq!(
                code(requested_amount(&order(status), 900, &ask(None, "x"))).as_deref(),
                Some("InvalidState")
            );
        }
    }
}
