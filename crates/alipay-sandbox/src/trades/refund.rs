//! Refunds (money back to the payment's source, with Huabei fees in proportion) and refund queries.

use haitao_alipay::api::{Refund, RefundQuery, TradeStatus};
use haitao_alipay::fx;
use haitao_alipay::status::{Status, acq};
use haitao_alipay::time::format_alipay;
use rusqlite::{OptionalExtension, params};
use serde_json::{Value, json};

use super::pay::enqueue_notify;
use super::{Ctx, amount_text, biz, cny_text, find, invalid, masked_logon, store_err};
use crate::db::Cached as _;
use crate::ledger::{self, FEES, merchant_account};
use crate::model::{self, Stamp, Trade, ts};

/// Refunds part of a paid trade: the money goes back to where it came from, Huabei installment fees
/// in proportion, the refund is recorded and the trade closes once fully refunded. Returns the trade
/// as stored.
pub(super) fn refund_inner(
    ctx: &Ctx<'_>,
    t: &Trade,
    amount_fen: i64,
    request_no: &str,
    reason: Option<&str>,
) -> Result<Trade, Status> {
    let source = payment_source(ctx, t)?;
    ledger::post(
        ctx.conn,
        &merchant_account(&t.app_id),
        &source,
        amount_fen,
        "refund",
        Some(&t.trade_no),
        ctx.now,
    )
    .map_err(|e| match e {
        ledger::LedgerError::Insufficient { .. } => biz(acq::SELLER_BALANCE_NOT_ENOUGH, "卖家余额不足"),
        other => store_err(other),
    })?;
    refund_installment_fees(ctx, t, &source, amount_fen)?;
    ctx.conn
        .cached_exec(
            "INSERT INTO refunds (trade_no, out_request_no, amount_fen, reason, created_at) VALUES (?1,?2,?3,?4,?5)",
            params![t.trade_no, request_no, amount_fen, reason, ts(ctx.now)],
        )
        .map_err(store_err)?;
    let refunded = t.refunded_fen + amount_fen;
    let fully = refunded >= t.cny_fen;
    ctx.conn
        .cached_exec(
            "UPDATE trades SET refunded_fen = ?1, status = CASE WHEN ?2 THEN 'TRADE_CLOSED' ELSE status END,
             closed_at = CASE WHEN ?2 THEN ?3 ELSE closed_at END WHERE trade_no = ?4",
            params![refunded, fully, ts(ctx.now), t.trade_no],
        )
        .map_err(store_err)?;
    let updated = model::trade_by_no(ctx.conn, &t.app_id, &t.trade_no)
        .map_err(store_err)?
        .ok_or_else(|| store_err("gone"))?;
    ctx.event(
        "trade.refunded",
        Some(&updated),
        None,
        format!(
            "refunded {} ({request_no}); total refunded {}{}",
            cny_text(amount_fen),
            cny_text(refunded),
            if fully { ", trade closed" } else { "" }
        ),
        json!({"out_request_no": request_no, "amount_fen": amount_fen, "refunded_fen": refunded}),
    );
    if ctx.sb.options.notify_on_refund {
        enqueue_notify(ctx, &updated, &[], Some(request_no))?;
    }
    Ok(updated)
}

/// The account a trade was paid from: the source of its payment entry.
fn payment_source(ctx: &Ctx<'_>, t: &Trade) -> Result<String, Status> {
    let buyer_id = t.buyer_id.clone().ok_or_else(|| store_err("paid trade without buyer"))?;
    let source: Option<String> = ctx
        .conn
        .cached_row(
            "SELECT from_acct FROM ledger WHERE trade_no = ?1 AND kind = 'payment' ORDER BY seq LIMIT 1",
            [&t.trade_no],
            |r| r.get(0),
        )
        .optional()
        .map_err(store_err)?;
    source.ok_or_else(|| store_err(format!("no payment entry for {buyer_id}")))
}

/// Huabei installment fees go back with the money, in proportion to what is refunded (all of them
/// once the trade is fully refunded), to whoever paid them: the buyer's source, or the merchant when
/// the seller paid the fee. Card surcharges are not refunded.
fn refund_installment_fees(ctx: &Ctx<'_>, t: &Trade, source: &str, amount_fen: i64) -> Result<(), Status> {
    let (before, after) = (i128::from(t.refunded_fen), i128::from(t.refunded_fen + amount_fen));
    let total = i128::from(t.cny_fen.max(1));
    for (kind, back_to) in
        [("installment_fee", source.to_owned()), ("installment_fee_seller", merchant_account(&t.app_id))]
    {
        let fee: i64 = ctx
            .conn
            .cached_row(
                "SELECT COALESCE(SUM(amount_fen), 0) FROM ledger WHERE trade_no = ?1 AND kind = ?2",
                params![t.trade_no, kind],
                |r| r.get(0),
            )
            .map_err(store_err)?;
        let share = |refunded: i128| i128::from(fee) * refunded.min(total) / total;
        let back = i64::try_from(share(after) - share(before)).map_err(store_err)?;
        if back > 0 {
            ledger::post(
                ctx.conn,
                FEES,
                &back_to,
                back,
                "installment_fee_refund",
                Some(&t.trade_no),
                ctx.now,
            )
            .map_err(store_err)?;
        }
    }
    Ok(())
}

pub fn refund(ctx: &Ctx<'_>, r: &Refund) -> Result<Value, Status> {
    let t = find(ctx, &r.trade)?.ok_or_else(|| biz(acq::TRADE_NOT_EXIST, "交易不存在"))?;
    let amount = r.amount().map_err(|e| invalid(format!("refund_amount: {e}")))?;
    let amount = amount.check_alipay_range().map_err(|e| invalid(format!("refund_amount: {e}")))?;
    let amount_fen = fx::demo_to_cny(amount).ok_or_else(|| invalid("refund_currency 不支持"))?.minor();
    let request_no = r.out_request_no.clone().unwrap_or_else(|| t.out_trade_no.clone());
    let existing: Option<i64> = ctx
        .conn
        .cached_row(
            "SELECT amount_fen FROM refunds WHERE trade_no = ?1 AND out_request_no = ?2",
            [&t.trade_no, &request_no],
            |r| r.get(0),
        )
        .optional()
        .map_err(store_err)?;
    let buyer =
        t.buyer_id.as_deref().map(|b| model::buyer(ctx.conn, b)).transpose().map_err(store_err)?.flatten();
    let body = |t: &Trade, change: &str| {
        json!({
            "trade_no": t.trade_no,
            "out_trade_no": t.out_trade_no,
            "buyer_logon_id": buyer.as_ref().map(masked_logon),
            "fund_change": change,
            "refund_fee": cny_text(t.refunded_fen),
            "gmt_refund_pay": format_alipay(ctx.now),
            "send_back_fee": cny_text(if change == "Y" { amount_fen } else { 0 }),
        })
    };
    if let Some(prev) = existing {
        if prev != amount_fen {
            return Err(biz(acq::DISCORDANT_REPEAT_REQUEST, "重复请求的退款金额与原请求不一致"));
        }
        return Ok(body(&t, "N"));
    }
    match t.status {
        TradeStatus::TradeSuccess => {}
        TradeStatus::TradeFinished => return Err(biz(acq::TRADE_HAS_FINISHED, "交易已完结")),
        TradeStatus::TradeClosed if t.paid_at.is_some() => {
            return Err(biz(acq::REASON_TRADE_REFUND_FEE_ERR, "退款金额超限"));
        }
        _ => return Err(biz(acq::TRADE_STATUS_ERROR, "交易状态不合法")),
    }
    if t.refunded_fen + amount_fen > t.cny_fen {
        return Err(biz(acq::REASON_TRADE_REFUND_FEE_ERR, "退款金额超限"));
    }
    let updated = refund_inner(ctx, &t, amount_fen, &request_no, r.refund_reason.as_deref())?;
    Ok(body(&updated, "Y"))
}

pub fn refund_query(ctx: &Ctx<'_>, q: &RefundQuery) -> Result<Value, Status> {
    let Some(t) = find(ctx, &q.trade)? else {
        return Err(biz(acq::TRADE_NOT_EXIST, "交易不存在"));
    };
    let row: Option<(i64, Option<String>, Stamp)> = ctx
        .conn
        .cached_row(
            "SELECT amount_fen, reason, created_at FROM refunds WHERE trade_no = ?1 AND out_request_no = ?2",
            [&t.trade_no, &q.out_request_no],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .optional()
        .map_err(store_err)?;
    Ok(match row {
        Some((amount, reason, at)) => {
            let mut v = json!({
                "out_request_no": q.out_request_no,
                "out_trade_no": t.out_trade_no,
                "trade_no": t.trade_no,
                "refund_amount": cny_text(amount),
                "total_amount": amount_text(&t, t.total_minor),
                "refund_reason": reason,
                "refund_status": "REFUND_SUCCESS",
            });
            // As at Alipay: the refund's time only when `query_options` asks for it.
            if q.query_options.iter().any(|o| o == "gmt_refund_pay") {
                v["gmt_refund_pay"] = json!(format_alipay(at.0));
            }
            v
        }
        // Alipay answers success with no refund fields when the request number is unknown.
        None => json!({}),
    })
}
