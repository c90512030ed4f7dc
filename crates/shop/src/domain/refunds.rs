//! What a buyer's refund request may take back, what a completed refund gives back of the annual
//! quota, and how long a refused refund waits.
//!
//! Rules only: each store runs them inside the transaction that read their inputs (e.g.
//! [`requested_amount`] in `RefundStore::request_refund`, which records the refund in the same
//! transaction).

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

/// Fen of an order's dutiable value given back to the orderer's annual quota once `refunded_fen`
/// of its `total_fen` is refunded: in proportion to the refunded share, all of it on a full refund.
pub fn quota_restored(refunded_fen: i64, dutiable_fen: i64, total_fen: i64) -> i64 {
    if refunded_fen >= total_fen {
        dutiable_fen
    } else {
        i64::try_from(i128::from(refunded_fen) * i128::from(dutiable_fen) / i128::from(total_fen.max(1)))
            .unwrap_or(0)
    }
}

/// The pause before a refused refund is sent again, after its `refusals`th refusal: `pauses` in
/// turn, the last one once they run out (an hour when none are given).
pub fn pause_after(refusals: u32, pauses: &[chrono::Duration]) -> chrono::Duration {
    let index =
        usize::try_from(refusals.saturating_sub(1)).unwrap_or(usize::MAX).min(pauses.len().saturating_sub(1));
    pauses.get(index).copied().unwrap_or_else(|| chrono::Duration::hours(1))
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

    #[test]
    fn quota_comes_back_in_proportion_and_whole_on_a_full_refund() {
        assert_eq!(quota_restored(0, 18_960, 20_680), 0);
        assert_eq!(quota_restored(10_340, 18_960, 20_680), 9_480);
        assert_eq!(quota_restored(20_680, 18_960, 20_680), 18_960);
        assert_eq!(quota_restored(20_681, 18_960, 20_680), 18_960);
    }

    #[test]
    fn refused_refunds_wait_the_pauses_in_turn_then_the_last() {
        let pauses = [chrono::Duration::minutes(1), chrono::Duration::hours(1)];
        let waits: Vec<_> = (1..=4).map(|n| pause_after(n, &pauses)).collect();
        assert_eq!(waits, [pauses[0], pauses[1], pauses[1], pauses[1]]);
        assert_eq!(pause_after(1, &[]), chrono::Duration::hours(1));
    }
}
