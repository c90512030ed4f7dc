//! In-store and in-app trades the merchant's server starts for a known buyer:
//! `alipay.trade.pay` (the cashier scans the buyer's payment code, `scene=bar_code`) and
//! `alipay.trade.create` (a trade for a buyer who pays it in the Alipay app or a mini program).
//!
//! A persona's payment code is fixed for the sandbox (`GET
//! /sandbox/api/personas/{login}/payment-code`), 18 digits starting `28` like Alipay's. A scanned
//! payment up to ¥2,000 is taken from the buyer's balance at once, without a password, as Alipay's
//! password-free limit allows; above it the buyer confirms on the phone, and the answer is `10003`
//! (waiting for the buyer): the merchant queries until the buyer has paid (through the cashier
//! session or `/sandbox/api/pay`).

use haitao_alipay::params::Params;
use haitao_alipay::status::Status;
use serde_json::{Value, json};

use super::{
    Choice, Confirmation, Ctx, PayError, attach_buyer, biz, invalid, open_session, page_request_from,
    store_err,
};
use crate::model::{self, AccountKind, Buyer};

/// The most a scanned payment takes without the buyer's password, in fen.
const PASSWORD_FREE_FEN: i64 = 200_000;

/// A persona's payment code: `28` and 16 digits derived from their id.
pub fn payment_code(buyer_id: &str) -> String {
    let d = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, buyer_id.as_bytes());
    let digits: String = d.as_ref().iter().take(16).map(|b| char::from(b'0' + b % 10)).collect();
    format!("28{digits}")
}

fn buyer_by_code(ctx: &Ctx<'_>, code: &str) -> Result<Option<Buyer>, Status> {
    for b in model::buyers(ctx.conn).map_err(store_err)? {
        if payment_code(&b.id) == code {
            return Ok(Some(b));
        }
    }
    Ok(None)
}

fn biz_json(params: &Params) -> Result<Value, Status> {
    serde_json::from_str(params.get("biz_content").unwrap_or_default())
        .map_err(|e| invalid(format!("biz_content: {e}")))
}

/// A buyer who could not be put on the trade: the store failing is no answer about the trade.
fn attach_failure(e: PayError) -> Status {
    match e {
        PayError::Processing => Status::failure("20000", "ACQ.SYSTEM_ERROR", "系统错误"),
        other => biz("ACQ.TRADE_HAS_CLOSE", &other.message(false)),
    }
}

/// What the answer of a paid or created trade carries.
fn trade_fields(t: &model::Trade, buyer: &Buyer) -> Value {
    json!({
        "trade_no": t.trade_no,
        "out_trade_no": t.out_trade_no,
        "buyer_logon_id": super::masked_logon(buyer),
        "buyer_user_id": buyer.id,
        "total_amount": super::amount_text(t, t.total_minor),
    })
}

/// A trade already under this `out_trade_no` must be this method's, and (if it has one) this buyer's:
/// nothing else is charged to a scanned buyer or reassigned to another.
fn same_trade_or_none(ctx: &Ctx<'_>, out_trade_no: &str, method: &str, buyer: &Buyer) -> Result<(), Status> {
    match model::trade_by_out(ctx.conn, &ctx.app.app_id, out_trade_no).map_err(store_err)? {
        Some(t) if t.method != method || t.buyer_id.as_deref().is_some_and(|b| b != buyer.id) => {
            Err(biz("ACQ.CONTEXT_INCONSISTENT", "交易信息被篡改：该商户订单号已用于另一笔交易"))
        }
        _ => Ok(()),
    }
}

/// `alipay.trade.pay` with `scene=bar_code`. Everything it writes is undone when the answer is a
/// definite failure: a refused scan leaves no trade the buyer could still pay.
pub fn pay_by_code(ctx: &Ctx<'_>, params: &Params) -> Result<Value, Status> {
    ctx.conn.execute_batch("SAVEPOINT scan").map_err(store_err)?;
    let result = scan(ctx, params);
    let keep = match &result {
        Ok(_) => true,
        Err(s) => crate::trades::certainty_unknown(s),
    };
    let end = if keep { "RELEASE scan" } else { "ROLLBACK TO scan; RELEASE scan" };
    ctx.conn.execute_batch(end).map_err(store_err)?;
    result
}

fn scan(ctx: &Ctx<'_>, params: &Params) -> Result<Value, Status> {
    let body = biz_json(params)?;
    let scene = body["scene"].as_str().unwrap_or_default();
    if scene != "bar_code" {
        return Err(invalid("scene 只支持 bar_code"));
    }
    let code = body["auth_code"].as_str().unwrap_or_default();
    let req = page_request_from("alipay.trade.pay", params.get("biz_content").unwrap_or_default())?;
    let buyer = buyer_by_code(ctx, code)?.ok_or_else(|| {
        biz("ACQ.PAYMENT_AUTH_CODE_INVALID", "支付失败，获取顾客账户信息失败，请顾客刷新付款码后重新收款")
    })?;
    same_trade_or_none(ctx, &req.pay.out_trade_no, "alipay.trade.pay", &buyer)?;
    let session = open_session(ctx, &req, params)?;
    let waiting = || Status::failure("10003", "ACQ.WAIT_BUYER_PAY", "等待用户付款（买家须在手机上确认）");
    if req.cny_fen > PASSWORD_FREE_FEN {
        attach_buyer(ctx, &session, &buyer).map_err(attach_failure)?;
        return Err(waiting());
    }
    let balance = model::accounts_of(ctx.conn, &buyer.id)
        .map_err(store_err)?
        .into_iter()
        .find(|a| a.kind == AccountKind::Balance)
        .ok_or_else(|| biz("ACQ.BUYER_BALANCE_NOT_ENOUGH", "买家余额不足"))?;
    let choice = Choice { account_id: balance.id, installments: None, card: None };
    match super::pay(ctx, &session, &buyer, &choice, &Confirmation::Fingerprint, None) {
        Ok(paid) => {
            let mut v = trade_fields(&paid.trade, &buyer);
            v["receipt_amount"] = v["total_amount"].clone();
            v["gmt_payment"] = json!(paid.trade.paid_at.map(haitao_alipay::time::format_alipay));
            v["fund_bill_list"] =
                serde_json::from_str(paid.trade.fund_bills.as_deref().unwrap_or("[]")).unwrap_or(json!([]));
            Ok(v)
        }
        // The phone asks the buyer for an SMS code: waiting for them, as above the limit.
        Err(PayError::SmsRequired) => Err(waiting()),
        Err(PayError::Insufficient { .. }) => Err(biz("ACQ.BUYER_BALANCE_NOT_ENOUGH", "买家余额不足")),
        Err(PayError::Locked { .. }) => Err(biz("ACQ.BUYER_PAYMENT_AMOUNT_DAY_LIMIT_ERROR", "买家付款受限")),
        Err(PayError::NotPayable { zh, .. }) => Err(biz("ACQ.TRADE_HAS_CLOSE", &zh)),
        Err(PayError::Processing) => Err(Status::failure("20000", "ACQ.SYSTEM_ERROR", "系统错误")),
        Err(e) => Err(biz("ACQ.PAYMENT_FAIL", &e.message(false))),
    }
}

/// `alipay.trade.create`: a trade for `buyer_id`, waiting for them to pay.
pub fn create(ctx: &Ctx<'_>, params: &Params) -> Result<Value, Status> {
    let body = biz_json(params)?;
    let buyer_id = body["buyer_id"].as_str().or_else(|| body["buyer_open_id"].as_str()).unwrap_or_default();
    if buyer_id.is_empty() {
        return Err(invalid("buyer_id 或 buyer_open_id 必填"));
    }
    let buyer = model::buyer(ctx.conn, buyer_id)
        .map_err(store_err)?
        .ok_or_else(|| biz("ACQ.BUYER_NOT_EXIST", "买家不存在"))?;
    let req = page_request_from("alipay.trade.create", params.get("biz_content").unwrap_or_default())?;
    let session = open_session(ctx, &req, params)?;
    let trade =
        attach_buyer(ctx, &session, &buyer).map_err(|e| biz("ACQ.TRADE_HAS_CLOSE", &e.message(false)))?;
    Ok(json!({"trade_no": trade.trade_no, "out_trade_no": trade.out_trade_no}))
}
