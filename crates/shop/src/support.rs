//! Customer service: tickets tied to orders, with an automatic first answer for the common cases.

use std::sync::Arc;

use haitao_shop_api::support::{Author, NewTicket, Ticket, TicketMessage, TicketStatus, TicketTopic};

use crate::error::ApiError;
use crate::state::Shop;

/// The first answer for a topic, in both languages.
pub fn first_answer(topic: TicketTopic) -> Option<&'static str> {
    Some(match topic {
        TicketTopic::PaymentFailed => {
            "您好！如果付款时网络中断，请不要重复付款：Haitao 会向支付宝查询这笔付款的结果，通常几分钟内更新订单状态。\
             若订单显示“结果待确认”，请在订单页点击“重新检查”。如仍有疑问，客服会在 24 小时内回复。\n\n\
             Hello! If the network dropped while you paid, please do not pay again: Haitao asks Alipay for the result and \
             updates the order within minutes. If the order says \"awaiting result\", press \"Check again\" on the order page. \
             An agent will reply within 24 hours if this does not help."
        }
        TicketTopic::InsufficientBalance => {
            "您好！余额不足时，可在支付宝收银台改用银行卡、花呗或境外卡付款；订单会保留至付款截止时间。\n\n\
             Hello! When the balance is too low, pick a bank card, Huabei or an international card in the Alipay cashier; \
             the order stays open until its payment deadline."
        }
        TicketTopic::WhereIsMyParcel => {
            "您好！跨境包裹需先完成海关“三单对碰”并放行，保税仓发货通常 3–5 天送达，海外直邮 7–15 天。订单页的物流时间线会实时更新。\n\n\
             Hello! Cross-border parcels are cleared by customs first (order, payment and waybill are matched). Bonded \
             goods usually arrive in 3–5 days, direct mail in 7–15. The tracking timeline on the order page updates as it moves."
        }
        TicketTopic::Customs => {
            "您好！海关要求订购人与支付人为同一人。若订单因此被暂扣，可在订单页更正订购人信息后重新申报，或申请退款。\n\n\
             Hello! Customs requires the orderer and the payer to be the same person. If an order is held for this, \
             correct the orderer on the order page and declare again, or ask for a refund."
        }
        TicketTopic::Refund | TicketTopic::Other => return None,
    })
}

pub async fn open(shop: &Arc<Shop>, account_id: &str, t: NewTicket) -> Result<Ticket, ApiError> {
    let subject = t.subject.trim().to_owned();
    let body = t.body.trim().to_owned();
    if subject.is_empty() || subject.chars().count() > 100 {
        return Err(ApiError::validation("subject", "a subject has 1 to 100 characters"));
    }
    if body.is_empty() || body.chars().count() > 2000 {
        return Err(ApiError::validation("body", "a message has 1 to 2000 characters"));
    }
    if let Some(oid) = &t.order_id {
        let (aid, oid) = (account_id.to_owned(), oid.clone());
        if shop.blocking(move |s| s.order(Some(&aid), &oid)).await?.is_none() {
            return Err(ApiError::validation("order_id", "no such order"));
        }
    }
    let now = shop.now();
    let mut messages = vec![TicketMessage { author: Author::Customer, body, at: now }];
    let mut status = TicketStatus::Open;
    if let Some(answer) = first_answer(t.topic) {
        messages.push(TicketMessage { author: Author::Assistant, body: answer.to_owned(), at: now });
        status = TicketStatus::Answered;
    }
    let ticket = Ticket {
        id: shop.id("TK"),
        order_id: t.order_id,
        topic: t.topic,
        subject,
        status,
        messages,
        created_at: now,
        updated_at: now,
    };
    let (t2, aid) = (ticket.clone(), account_id.to_owned());
    shop.blocking(move |s| s.create_ticket(&t2, &aid)).await?;
    Ok(ticket)
}
