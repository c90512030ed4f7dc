//! Page requests (page.pay, wap.pay, precreate), the cashier sessions they open, their deadlines and
//! expiry, and a buyer logging in to a session, which creates or attaches to its trade.

use chrono::{DateTime, Utc};
use haitao_alipay::api::{PagePay, Precreate, TimeoutExpress, TradeStatus};
use haitao_alipay::fx;
use haitao_alipay::money::{Currency, Money};
use haitao_alipay::params::Params;
use haitao_alipay::status::{Status, acq};
use haitao_alipay::time::format_alipay;
use rusqlite::params;
use serde_json::json;

use super::pay::{PayError, enqueue_notify};
use super::{Ctx, biz, invalid, page_digest, store_err};
use crate::db::Cached as _;
use crate::model::{self, Buyer, Session, Trade, digits, ts};
use crate::scenarios;

fn valid_out_trade_no(s: &str) -> bool {
    (1..=64).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// A page request (page.pay, wap.pay or precreate) normalised.
#[derive(Debug, Clone)]
pub struct PageRequest {
    pub method: String,
    pub pay: PagePay,
    pub amount: Money,
    pub cny_fen: i64,
}

/// `product_code` of `alipay.trade.app.pay` (the order string an app hands to the Alipay app).
const APP_PRODUCT_CODE: &str = "QUICK_MSECURITY_PAY";

pub fn page_request_from(method: &str, biz: &str) -> Result<PageRequest, Status> {
    let pay: PagePay = if matches!(
        method,
        "alipay.trade.precreate" | "alipay.trade.app.pay" | "alipay.trade.pay" | "alipay.trade.create"
    ) {
        // None requires product_code (the app's order string usually has none).
        let p: Precreate = serde_json::from_str(biz).map_err(|e| invalid(format!("biz_content: {e}")))?;
        let default_code = match method {
            "alipay.trade.app.pay" => APP_PRODUCT_CODE,
            "alipay.trade.pay" => "FACE_TO_FACE_PAYMENT",
            "alipay.trade.create" => "JSAPI_PAY",
            _ => "QR_CODE_OFFLINE",
        };
        let mut pp = PagePay::new(p.out_trade_no.clone(), Money::zero(Currency::Cny), p.subject.clone());
        pp.total_amount = p.total_amount;
        pp.trans_currency = p.trans_currency;
        pp.product_code = p.product_code.unwrap_or_else(|| default_code.into());
        pp.extend_params = p.extend_params;
        pp.timeout_express = p.timeout_express;
        pp.enable_pay_channels = p.enable_pay_channels;
        pp.disable_pay_channels = p.disable_pay_channels;
        pp.body = p.body;
        pp.goods_detail = p.goods_detail;
        pp
    } else {
        serde_json::from_str(biz).map_err(|e| invalid(format!("biz_content: {e}")))?
    };
    if !valid_out_trade_no(&pay.out_trade_no) {
        return Err(invalid("out_trade_no 须为1-64位字母、数字、下划线或短横线"));
    }
    if pay.subject.trim().is_empty() || pay.subject.chars().count() > 256 {
        return Err(invalid("subject 不能为空且不超过256字符"));
    }
    let expected_code = match method {
        "alipay.trade.page.pay" => Some(PagePay::PRODUCT_CODE),
        "alipay.trade.wap.pay" => Some(PagePay::WAP_PRODUCT_CODE),
        "alipay.trade.app.pay" => Some(APP_PRODUCT_CODE),
        _ => None,
    };
    if let Some(code) = expected_code
        && pay.product_code != code
    {
        return Err(invalid(format!("product_code 须为 {code}")));
    }
    if pay.enable_pay_channels.is_some() && pay.disable_pay_channels.is_some() {
        return Err(invalid("enable_pay_channels 与 disable_pay_channels 不可同时使用"));
    }
    let amount = pay.amount().map_err(|e| invalid(format!("total_amount: {e}")))?;
    amount.check_alipay_range().map_err(|e| invalid(format!("total_amount: {e}")))?;
    let cny_fen = fx::demo_to_cny(amount).ok_or_else(|| invalid("trans_currency 不支持"))?.minor();
    if let Some(ext) = &pay.extend_params
        && ext.hb_fq_num.is_some()
        && pay.goods_type.as_deref() == Some("0")
    {
        return Err(invalid("虚拟类商品不支持使用花呗渠道"));
    }
    Ok(PageRequest { method: method.to_owned(), pay, amount, cny_fen })
}

/// Opens a cashier session for a page request (the trade is created when a buyer logs in).
pub fn open_session(ctx: &Ctx<'_>, req: &PageRequest, raw_params: &Params) -> Result<Session, Status> {
    let out = &req.pay.out_trade_no;
    let dg = page_digest(&req.pay);
    if let Some(t) = model::trade_by_out(ctx.conn, &ctx.app.app_id, out).map_err(store_err)? {
        let t = expire_if_due(ctx, t)?;
        match t.status {
            TradeStatus::TradeSuccess | TradeStatus::TradeFinished => {
                return Err(biz(acq::TRADE_HAS_SUCCESS, "交易已被支付"));
            }
            TradeStatus::TradeClosed => return Err(biz(acq::TRADE_HAS_CLOSE, "交易已经关闭")),
            TradeStatus::WaitBuyerPay if t.biz_digest != dg => {
                return Err(biz(acq::CONTEXT_INCONSISTENT, "交易信息被篡改"));
            }
            TradeStatus::WaitBuyerPay => {}
        }
    }
    if let Some(s) = model::session_for(ctx.conn, &ctx.app.app_id, out).map_err(store_err)? {
        let prev = Params::parse_stored(s.params.as_bytes()).map_err(store_err)?;
        let prev_req = page_request_from(&s.method, prev.get("biz_content").unwrap_or_default())?;
        if page_digest(&prev_req.pay) != dg {
            return Err(biz(acq::CONTEXT_INCONSISTENT, "交易信息被篡改"));
        }
        if s.state == "closed" {
            return Err(biz(acq::TRADE_HAS_CLOSE, "交易已经关闭"));
        }
    }
    scenarios::bind_next(ctx.conn, &ctx.app.app_id, out).map_err(store_err)?;
    let token = format!("{}{}", digits(10), digits(14));
    let s = Session {
        token: token.clone(),
        app_id: ctx.app.app_id.clone(),
        out_trade_no: out.clone(),
        method: req.method.clone(),
        params: raw_params.to_urlencoded(),
        created_at: ctx.now,
        buyer_id: None,
        trade_no: model::trade_by_out(ctx.conn, &ctx.app.app_id, out).map_err(store_err)?.map(|t| t.trade_no),
        choice: None,
        state: "open".into(),
    };
    model::insert_session(ctx.conn, &s).map_err(store_err)?;
    ctx.event(
        "cashier.session",
        None,
        Some(out),
        format!("{} opened a cashier for {} {}", req.method, req.amount, req.pay.subject),
        json!({"token": token, "method": req.method, "total_amount": req.pay.total_amount, "channels": {
            "enable": req.pay.enable_pay_channels, "disable": req.pay.disable_pay_channels},
            "extend_params": req.pay.extend_params}),
    );
    Ok(s)
}

/// The request a session was opened with.
pub fn session_request(s: &Session) -> Result<(Params, PageRequest), Status> {
    let p = Params::parse_stored(s.params.as_bytes()).map_err(store_err)?;
    let req = page_request_from(&s.method, p.get("biz_content").unwrap_or_default())?;
    Ok((p, req))
}

/// When a session's trade must be paid by.
pub fn deadline(s: &Session, req: &PageRequest) -> DateTime<Utc> {
    let start = s.created_at;
    if let Some(t) = req.pay.time_expire {
        return t.0;
    }
    req.pay.timeout_express.unwrap_or(TimeoutExpress::Days(15)).deadline(start)
}

/// Whether a trade still waiting for its buyer is past its deadline.
pub fn is_due(ctx: &Ctx<'_>, t: &Trade) -> bool {
    t.status == TradeStatus::WaitBuyerPay && t.expires_at.is_some_and(|exp| exp <= ctx.now)
}

/// Closes a trade whose deadline has passed (lazily, when it is touched, and by the timer).
pub fn expire_if_due(ctx: &Ctx<'_>, t: Trade) -> Result<Trade, Status> {
    if is_due(ctx, &t) {
        close_trade(ctx, &t, "timeout")?;
        return model::trade_by_no(ctx.conn, &t.app_id, &t.trade_no)
            .map_err(store_err)?
            .ok_or_else(|| store_err("trade vanished"));
    }
    Ok(t)
}

pub(super) fn close_trade(ctx: &Ctx<'_>, t: &Trade, why: &str) -> Result<(), Status> {
    ctx.conn
        .cached_exec(
            "UPDATE trades SET status = 'TRADE_CLOSED', closed_at = ?1 WHERE trade_no = ?2 AND status = 'WAIT_BUYER_PAY'",
            params![ts(ctx.now), t.trade_no],
        )
        .map_err(store_err)?;
    ctx.conn
        .cached_exec(
            "UPDATE cashier_sessions SET state = 'closed' WHERE trade_no = ?1 AND state = 'open'",
            [&t.trade_no],
        )
        .map_err(store_err)?;
    ctx.event("trade.closed", Some(t), None, format!("trade closed ({why})"), json!({"reason": why}));
    if ctx.sb.options.notify_on_close {
        let mut closed = t.clone();
        closed.status = TradeStatus::TradeClosed;
        closed.closed_at = Some(ctx.now);
        enqueue_notify(ctx, &closed, &[], None)?;
    }
    Ok(())
}

/// Logs a buyer into a session: creates the trade (`WAIT_BUYER_PAY`) or attaches to it.
pub fn attach_buyer(ctx: &Ctx<'_>, s: &Session, buyer: &Buyer) -> Result<Trade, PayError> {
    let not_payable = |zh: &str, en: &str| PayError::NotPayable { zh: zh.into(), en: en.into() };
    if s.state == "closed" {
        return Err(not_payable("交易已关闭", "This payment was closed"));
    }
    let (params, req) = session_request(s).map_err(|st| PayError::NotPayable {
        zh: st.sub_msg.clone().unwrap_or_default(),
        en: st.sub_msg.unwrap_or_default(),
    })?;
    let due = deadline(s, &req);
    let existing = model::trade_by_out(ctx.conn, &ctx.app.app_id, &req.pay.out_trade_no)
        .map_err(|_| PayError::Processing)?;
    let trade = match existing {
        Some(t) => {
            let t = expire_if_due(ctx, t).map_err(|_| PayError::Processing)?;
            match t.status {
                TradeStatus::WaitBuyerPay => {}
                TradeStatus::TradeClosed => return Err(not_payable("交易已关闭", "This payment was closed")),
                _ => return Err(not_payable("交易已支付", "This order is already paid")),
            }
            ctx.conn
                .cached_exec(
                    "UPDATE trades SET buyer_id = ?1 WHERE trade_no = ?2",
                    params![buyer.id, t.trade_no],
                )
                .map_err(|_| PayError::Processing)?;
            Trade { buyer_id: Some(buyer.id.clone()), ..t }
        }
        None => {
            if due <= ctx.now {
                return Err(not_payable("订单已超时", "This payment has expired"));
            }
            let trade_no = format!(
                "{}22001{}",
                ctx.now.with_timezone(&haitao_alipay::time::shanghai()).format("%Y%m%d"),
                digits(15)
            );
            let t = Trade {
                trade_no,
                app_id: ctx.app.app_id.clone(),
                out_trade_no: req.pay.out_trade_no.clone(),
                method: req.method.clone(),
                product_code: Some(req.pay.product_code.clone()),
                status: TradeStatus::WaitBuyerPay,
                total_minor: req.amount.minor(),
                currency: req.amount.currency().code().into(),
                cny_fen: req.cny_fen,
                subject: req.pay.subject.clone(),
                biz_digest: page_digest(&req.pay),
                biz_content: params.get("biz_content").unwrap_or_default().to_owned(),
                notify_url: params.get_nonempty("notify_url").map(str::to_owned),
                return_url: params.get_nonempty("return_url").map(str::to_owned),
                buyer_id: Some(buyer.id.clone()),
                channel: None,
                fund_bills: None,
                surcharge_fen: 0,
                fee_fen: 0,
                refunded_fen: 0,
                created_at: ctx.now,
                expires_at: Some(due),
                paid_at: None,
                closed_at: None,
            };
            model::insert_trade(ctx.conn, &t).map_err(|_| PayError::Processing)?;
            ctx.event(
                "trade.created",
                Some(&t),
                None,
                format!("trade {} created, WAIT_BUYER_PAY until {}", t.trade_no, format_alipay(due)),
                json!({"buyer": buyer.login}),
            );
            t
        }
    };
    ctx.conn
        .cached_exec(
            "UPDATE cashier_sessions SET buyer_id = ?1, trade_no = ?2 WHERE token = ?3",
            params![buyer.id, trade.trade_no, s.token],
        )
        .map_err(|_| PayError::Processing)?;
    Ok(trade)
}
