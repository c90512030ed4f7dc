//! What a shopper must hear about an order while Haitao is in the background: the payment
//! confirmed, customs holding the parcel, the parcel shipped or delivered, a refund completed.
//!
//! An event is a change of an order's status between what the cache held and what the shop now
//! says, found while the sync writes the order (in the same transaction, so two syncs never both
//! report one change). An order the cache never held (a new install catching up on history)
//! reports nothing. The texts are here, in both languages, so that every shell says the same.

use haitao_shop_api::orders::{Order, OrderStatus};

/// A change worth telling the shopper about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OrderEvent {
    /// The shop has the money: the order goes to customs.
    PaymentConfirmed,
    /// Customs holds the order (the orderer and the payer differ, or an inspection failed).
    CustomsHold,
    Shipped,
    Delivered,
    /// All the money came back.
    Refunded,
}

/// The event, if any, of an order going from `before` to `after` between two syncs. Several
/// steps at once (paid and already shipped) report where the order is now.
pub fn event_for(before: OrderStatus, after: OrderStatus) -> Option<OrderEvent> {
    use OrderStatus as S;
    if before == after {
        return None;
    }
    match after {
        S::Held => Some(OrderEvent::CustomsHold),
        S::Shipped => Some(OrderEvent::Shipped),
        S::Delivered => Some(OrderEvent::Delivered),
        S::Refunded => Some(OrderEvent::Refunded),
        S::Paid | S::CustomsDeclared | S::Cleared if before == S::AwaitingPayment => {
            Some(OrderEvent::PaymentConfirmed)
        }
        S::AwaitingPayment | S::Paid | S::CustomsDeclared | S::Cleared | S::Closed => None,
    }
}

/// An event of one order, with what to show.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderNotice {
    pub order_id: String,
    pub event: OrderEvent,
    /// The order as the shop now has it.
    pub order: Box<Order>,
}

impl OrderNotice {
    /// Title and text, in `language` (`zh-CN`, else English).
    pub fn text(&self, language: &str) -> (String, String) {
        let o = &self.order;
        let id = &o.id;
        let total = o.totals.total.to_decimal_string();
        let refunded = o.refunded.to_decimal_string();
        let waybill = o.waybill.as_ref().map(|w| w.number.as_str()).unwrap_or_default();
        let zh = language == "zh-CN";
        let (title, body) = match (self.event, zh) {
            (OrderEvent::PaymentConfirmed, true) => {
                ("付款成功", format!("订单 {id} 已确认收款 ¥{total}，即将申报海关。"))
            }
            (OrderEvent::PaymentConfirmed, false) => {
                ("Payment confirmed", format!("Order {id}: CN¥{total} received; it goes to customs next."))
            }
            (OrderEvent::CustomsHold, true) => {
                ("海关暂扣订单", format!("订单 {id} 被海关暂扣，请打开订单查看原因并处理。"))
            }
            (OrderEvent::CustomsHold, false) => (
                "Held by customs",
                format!("Order {id} is held by customs. Open the order to see why and fix it."),
            ),
            (OrderEvent::Shipped, true) => ("订单已发货", format!("订单 {id} 已发出，运单号 {waybill}。")),
            (OrderEvent::Shipped, false) => {
                ("Order shipped", format!("Order {id} is on its way, waybill {waybill}."))
            }
            (OrderEvent::Delivered, true) => ("订单已送达", format!("订单 {id} 已签收。")),
            (OrderEvent::Delivered, false) => ("Order delivered", format!("Order {id} has been delivered.")),
            (OrderEvent::Refunded, true) => {
                ("退款已完成", format!("订单 {id} 的 ¥{refunded} 已退回您的支付宝。"))
            }
            (OrderEvent::Refunded, false) => {
                ("Refund completed", format!("CN¥{refunded} for order {id} is back in your Alipay account."))
            }
        };
        (title.to_owned(), body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use OrderStatus as S;

    const ALL: [OrderStatus; 9] = [
        S::AwaitingPayment,
        S::Paid,
        S::CustomsDeclared,
        S::Held,
        S::Cleared,
        S::Shipped,
        S::Delivered,
        S::Closed,
        S::Refunded,
    ];

    #[test]
    fn each_change_a_shopper_must_hear_about_and_nothing_else() {
        for s in ALL {
            assert_eq!(event_for(s, s), None, "{s:?} unchanged");
            // Back to awaiting payment, or closed unpaid: nothing to tell.
            assert_eq!(event_for(s, S::AwaitingPayment), None);
            assert_eq!(event_for(s, S::Closed), None);
        }
        let cases = [
            (S::AwaitingPayment, S::Paid, Some(OrderEvent::PaymentConfirmed)),
            (S::AwaitingPayment, S::CustomsDeclared, Some(OrderEvent::PaymentConfirmed)),
            (S::AwaitingPayment, S::Cleared, Some(OrderEvent::PaymentConfirmed)),
            (S::AwaitingPayment, S::Held, Some(OrderEvent::CustomsHold)),
            (S::CustomsDeclared, S::Held, Some(OrderEvent::CustomsHold)),
            (S::Cleared, S::Shipped, Some(OrderEvent::Shipped)),
            // Paid and shipped between two syncs: where it is now.
            (S::AwaitingPayment, S::Shipped, Some(OrderEvent::Shipped)),
            (S::Shipped, S::Delivered, Some(OrderEvent::Delivered)),
            (S::Delivered, S::Refunded, Some(OrderEvent::Refunded)),
            (S::Held, S::Refunded, Some(OrderEvent::Refunded)),
            // The steps customs takes after the payment are not news.
            (S::Paid, S::CustomsDeclared, None),
            (S::CustomsDeclared, S::Cleared, None),
            // Held, corrected and cleared: not a second payment.
            (S::Held, S::Cleared, None),
            (S::Held, S::CustomsDeclared, None),
        ];
        for (before, after, expected) in cases {
            assert_eq!(event_for(before, after), expected, "{before:?} → {after:?}");
        }
    }
}
