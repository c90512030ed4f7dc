//! The server-to-server trade APIs: query, precreate (a QR code of the phone cashier), close and
//! cancel, and the timer that closes trades whose deadline passed.

use haitao_alipay::api::{Cancel, Close, Query, TradeStatus};
use haitao_alipay::params::Params;
use haitao_alipay::status::{Status, acq};
use haitao_alipay::time::format_alipay;
use serde_json::{Value, json};

use super::refund::refund_inner;
use super::session::{PageRequest, close_trade, is_due, open_session, session_request};
use super::{Ctx, amount_text, biz, cny_text, find, look_up, masked_logon, page_digest, store_err};
use crate::db::Cached as _;
use crate::db::StoreError;
use crate::model::{self, Trade};

fn trade_body(ctx: &Ctx<'_>, t: &Trade) -> Result<Value, Status> {
    let buyer = match &t.buyer_id {
        Some(b) => model::buyer(ctx.conn, b).map_err(store_err)?,
        None => None,
    };
    let mut v = json!({
        "trade_no": t.trade_no,
        "out_trade_no": t.out_trade_no,
        "trade_status": t.status.as_str(),
        "total_amount": amount_text(t, t.total_minor),
    });
    let obj = v.as_object_mut().ok_or_else(|| store_err("json"))?;
    if let Some(b) = &buyer {
        obj.insert("buyer_logon_id".into(), json!(masked_logon(b)));
        obj.insert("buyer_user_id".into(), json!(b.id));
    }
    if let Some(paid_at) = t.paid_at {
        let paid = cny_text(t.cny_fen);
        obj.insert("receipt_amount".into(), json!(paid));
        obj.insert("buyer_pay_amount".into(), json!(paid));
        obj.insert("send_pay_date".into(), json!(format_alipay(paid_at)));
        if let Some(fb) = &t.fund_bills {
            let bills: Value = serde_json::from_str(fb)
                .map_err(|e| store_err(format!("trade {} fund_bills: {e}", t.trade_no)))?;
            obj.insert("fund_bill_list".into(), bills);
        }
    }
    if t.currency != "CNY" {
        obj.insert("trans_currency".into(), json!(t.currency));
    }
    Ok(v)
}

pub fn query(ctx: &Ctx<'_>, q: &Query) -> Result<Value, Status> {
    match find(ctx, &q.trade)? {
        Some(t) => trade_body(ctx, &t),
        None => Err(biz(acq::TRADE_NOT_EXIST, "交易不存在")),
    }
}

/// [`query`] without writing, for a read-only connection: `None` when the answer needs a write
/// first (the trade's deadline passed, so it closes before it is told).
pub fn query_read_only(ctx: &Ctx<'_>, q: &Query) -> Option<Result<Value, Status>> {
    match look_up(ctx, &q.trade) {
        Ok(Some(t)) if is_due(ctx, &t) => None,
        Ok(Some(t)) => Some(trade_body(ctx, &t)),
        Ok(None) => Some(Err(biz(acq::TRADE_NOT_EXIST, "交易不存在"))),
        Err(e) => Some(Err(e)),
    }
}

/// `precreate`: a QR code (a URL of the sandbox's phone cashier). The trade is created when it is
/// scanned.
pub fn precreate(ctx: &Ctx<'_>, req: &PageRequest, raw: &Params) -> Result<Value, Status> {
    // The same request again returns the same QR.
    if let Some(s) =
        model::session_for(ctx.conn, &ctx.app.app_id, &req.pay.out_trade_no).map_err(store_err)?
        && s.state == "open"
        && s.method == "alipay.trade.precreate"
        && let Ok((_, prev)) = session_request(&s)
        && page_digest(&prev.pay) == page_digest(&req.pay)
    {
        return Ok(json!({"out_trade_no": req.pay.out_trade_no, "qr_code": qr_url(ctx, &s.token)}));
    }
    let s = open_session(ctx, req, raw)?;
    Ok(json!({"out_trade_no": req.pay.out_trade_no, "qr_code": qr_url(ctx, &s.token)}))
}

pub fn qr_url(ctx: &Ctx<'_>, token: &str) -> String {
    ctx.sb.base_url.join(&format!("qr/{token}")).map(|u| u.to_string()).unwrap_or_default()
}

pub fn close(ctx: &Ctx<'_>, c: &Close) -> Result<Value, Status> {
    match find(ctx, &c.trade)? {
        Some(t) if t.status == TradeStatus::WaitBuyerPay => {
            close_trade(ctx, &t, "closed by merchant")?;
            Ok(json!({"trade_no": t.trade_no, "out_trade_no": t.out_trade_no}))
        }
        Some(_) => Err(biz(acq::TRADE_STATUS_ERROR, "交易状态不合法")),
        None => {
            // No trade yet: make sure the open cashier can no longer create one.
            if let Some(out) = &c.trade.out_trade_no {
                let n = ctx
                    .conn
                    .cached_exec(
                        "UPDATE cashier_sessions SET state = 'closed' WHERE app_id = ?1 AND out_trade_no = ?2 AND state = 'open'",
                        [&ctx.app.app_id, out],
                    )
                    .map_err(store_err)?;
                if n > 0 {
                    ctx.event(
                        "cashier.closed",
                        None,
                        Some(out),
                        "cashier closed before any buyer logged in",
                        json!({}),
                    );
                }
            }
            Err(biz(acq::TRADE_NOT_EXIST, "交易不存在"))
        }
    }
}

pub fn cancel(ctx: &Ctx<'_>, c: &Cancel) -> Result<Value, Status> {
    let out = c.trade.out_trade_no.clone().unwrap_or_default();
    match find(ctx, &c.trade)? {
        Some(t) if t.status == TradeStatus::WaitBuyerPay => {
            close_trade(ctx, &t, "cancelled")?;
            Ok(
                json!({"trade_no": t.trade_no, "out_trade_no": t.out_trade_no, "retry_flag": "N", "action": "close"}),
            )
        }
        Some(t) if t.status == TradeStatus::TradeSuccess => {
            let remaining = t.cny_fen - t.refunded_fen;
            if remaining > 0 {
                refund_inner(ctx, &t, remaining, &format!("cancel-{}", t.out_trade_no), Some("撤销"))?;
            }
            Ok(
                json!({"trade_no": t.trade_no, "out_trade_no": t.out_trade_no, "retry_flag": "N", "action": "refund",
                      "gmt_refund_pay": format_alipay(ctx.now)}),
            )
        }
        Some(t) => Ok(
            json!({"trade_no": t.trade_no, "out_trade_no": t.out_trade_no, "retry_flag": "N", "action": "close"}),
        ),
        None => {
            ctx.conn
                .cached_exec(
                    "UPDATE cashier_sessions SET state = 'closed' WHERE app_id = ?1 AND out_trade_no = ?2 AND state = 'open'",
                    [&ctx.app.app_id, &out],
                )
                .map_err(store_err)?;
            Ok(json!({"out_trade_no": out, "retry_flag": "N"}))
        }
    }
}

/// Closes every unpaid trade whose deadline passed. Returns how many were closed.
pub fn expire_due(ctx: &Ctx<'_>) -> Result<usize, StoreError> {
    let due = model::trades_due_to_expire(ctx.conn, ctx.now)?;
    let n = due.len();
    for t in due {
        if let Err(e) = close_trade(ctx, &t, "timeout") {
            tracing::warn!(trade_no = %t.trade_no, error = ?e, "could not expire trade");
        }
    }
    Ok(n)
}
