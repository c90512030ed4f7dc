//! The trade state machine and every API's business rules: page/wap/precreate sessions, payment at
//! the cashier, query, close, cancel, refund, refund query, customs declaration, timeouts.
//!
//! ```text
//! (buyer logs in / scans) ─► WAIT_BUYER_PAY ─pay─► TRADE_SUCCESS ─refunds reach 100%─► TRADE_CLOSED
//!                                  └─timeout / close / cancel─► TRADE_CLOSED
//! ```

use crate::db::Cached as _;
use chrono::{DateTime, Duration, Utc};
use haitao_alipay::api::{
    Cancel, Close, CustomsDeclare, FeePayer, FundBill, PagePay, PayChannel, Precreate, Query, Refund,
    RefundQuery, TimeoutExpress, TradeRef, TradeStatus,
};
use haitao_alipay::money::{AmountText, Currency, Money};
use haitao_alipay::params::Params;
use haitao_alipay::status::{Status, acq};
use haitao_alipay::time::format_alipay;
use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;
use serde_json::{Value, json};

use crate::Sandbox;
use crate::db::StoreError;
use crate::events::{self, Scope};
use crate::ledger::{self, FEES, merchant_account};
use crate::model::{self, Account, AccountKind, App, Buyer, Session, Trade, digits, parse_ts, ts};
use crate::scenarios::{self, CardBehaviour, Outcome};

/// A business failure answer (`40004` + `ACQ.*`).
pub fn biz(sub_code: &str, sub_msg: &str) -> Status {
    Status::failure("40004", sub_code, sub_msg)
}

fn invalid(msg: impl Into<String>) -> Status {
    Status::failure("40004", acq::INVALID_PARAMETER, msg)
}

fn store_err(e: impl std::fmt::Display) -> Status {
    tracing::error!(error = %e, "sandbox store error");
    Status::failure("40004", acq::SYSTEM_ERROR, "系统错误")
}

/// Everything an API call works with: one transaction, the app, the sandbox clock.
#[derive(Debug)]
pub struct Ctx<'a> {
    pub conn: &'a Connection,
    pub sb: &'a Sandbox,
    pub app: &'a App,
    pub now: DateTime<Utc>,
}

impl Ctx<'_> {
    fn scope<'b>(&'b self, trade: Option<&'b Trade>, out_trade_no: Option<&'b str>) -> Scope<'b> {
        Scope {
            app_id: Some(&self.app.app_id),
            trade_no: trade.map(|t| t.trade_no.as_str()),
            out_trade_no: out_trade_no.or(trade.map(|t| t.out_trade_no.as_str())),
        }
    }

    pub fn event(
        &self,
        kind: &str,
        trade: Option<&Trade>,
        out: Option<&str>,
        summary: impl Into<String>,
        detail: Value,
    ) {
        if let Err(e) = events::record(self.conn, self.now, kind, self.scope(trade, out), summary, detail) {
            tracing::warn!(error = %e, "could not record event");
        }
    }
}

fn valid_out_trade_no(s: &str) -> bool {
    (1..=64).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// Approximate demo rates (CNY per unit, ppm) for trades priced in a foreign `trans_currency`.
fn to_cny_fen(m: Money) -> Option<i64> {
    let ppm: i64 = match m.currency() {
        Currency::Cny => 1_000_000,
        Currency::Usd => 7_102_300,
        Currency::Eur => 7_748_600,
        Currency::Jpy => 47_520,
        Currency::Gbp => 9_052_100,
        Currency::Krw => 5_187,
        Currency::Aud => 4_702_500,
        Currency::Nzd => 4_291_800,
        Currency::Chf => 8_103_400,
        Currency::Hkd => 912_600,
        Currency::Cad => 5_198_700,
        Currency::Sgd => 5_280_000,
        _ => return None,
    };
    let scale = 10i128.pow(2 - m.currency().exponent());
    let n = i128::from(m.minor()) * i128::from(ppm) * scale;
    i64::try_from((n + 500_000) / 1_000_000).ok()
}

fn digest(parts: &[&str]) -> String {
    let d = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, parts.join("\u{1f}").as_bytes());
    d.as_ref().iter().take(16).map(|b| format!("{b:02x}")).collect()
}

/// The fields whose change makes a reused `out_trade_no` inconsistent.
fn page_digest(p: &PagePay) -> String {
    let ext = p.extend_params.clone().unwrap_or_default();
    digest(&[
        p.total_amount.as_str(),
        p.trans_currency.map(|c| c.code()).unwrap_or("CNY"),
        &p.subject,
        &serde_json::to_string(&ext.hb_fq_num).unwrap_or_default(),
        &serde_json::to_string(&ext.hb_fq_seller_percent).unwrap_or_default(),
        &serde_json::to_string(&p.enable_pay_channels).unwrap_or_default(),
        &serde_json::to_string(&p.disable_pay_channels).unwrap_or_default(),
    ])
}

/// A page request (page.pay, wap.pay or precreate) normalised.
#[derive(Debug, Clone)]
pub struct PageRequest {
    pub method: String,
    pub pay: PagePay,
    pub amount: Money,
    pub cny_fen: i64,
}

pub fn page_request_from(method: &str, biz: &str) -> Result<PageRequest, Status> {
    let pay: PagePay = if method == "alipay.trade.precreate" {
        let p: Precreate = serde_json::from_str(biz).map_err(|e| invalid(format!("biz_content: {e}")))?;
        let mut pp = PagePay::new(p.out_trade_no.clone(), Money::zero(Currency::Cny), p.subject.clone());
        pp.total_amount = p.total_amount;
        pp.trans_currency = p.trans_currency;
        pp.product_code = p.product_code.unwrap_or_else(|| "QR_CODE_OFFLINE".into());
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
    let cny_fen = to_cny_fen(amount).ok_or_else(|| invalid("trans_currency 不支持"))?;
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
        let (prev, _) = Params::parse_urlencoded(s.params.as_bytes(), Default::default(), Default::default())
            .map_err(store_err)?;
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
        created_at: ts(ctx.now),
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
    let (p, _) = Params::parse_urlencoded(s.params.as_bytes(), Default::default(), Default::default())
        .map_err(store_err)?;
    let req = page_request_from(&s.method, p.get("biz_content").unwrap_or_default())?;
    Ok((p, req))
}

/// When a session's trade must be paid by.
pub fn deadline(s: &Session, req: &PageRequest) -> DateTime<Utc> {
    let start = parse_ts(&s.created_at);
    if let Some(t) = req.pay.time_expire {
        return t.0;
    }
    req.pay.timeout_express.unwrap_or(TimeoutExpress::Days(15)).deadline(start)
}

/// Closes a trade whose deadline has passed (lazily, when it is touched, and by the timer).
pub fn expire_if_due(ctx: &Ctx<'_>, t: Trade) -> Result<Trade, Status> {
    if t.status == TradeStatus::WaitBuyerPay
        && let Some(exp) = &t.expires_at
        && parse_ts(exp) <= ctx.now
    {
        close_trade(ctx, &t, "timeout")?;
        return model::trade_by_no(ctx.conn, &t.app_id, &t.trade_no)
            .map_err(store_err)?
            .ok_or_else(|| store_err("trade vanished"));
    }
    Ok(t)
}

fn close_trade(ctx: &Ctx<'_>, t: &Trade, why: &str) -> Result<(), Status> {
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
        closed.closed_at = Some(ts(ctx.now));
        enqueue_notify(ctx, &closed, &[], None)?;
    }
    Ok(())
}

fn find(ctx: &Ctx<'_>, r: &TradeRef) -> Result<Option<Trade>, Status> {
    let t = match (&r.trade_no, &r.out_trade_no) {
        (Some(no), _) => model::trade_by_no(ctx.conn, &ctx.app.app_id, no).map_err(store_err)?,
        (None, Some(out)) => model::trade_by_out(ctx.conn, &ctx.app.app_id, out).map_err(store_err)?,
        (None, None) => return Err(invalid("out_trade_no 和 trade_no 不能同时为空")),
    };
    t.map(|t| expire_if_due(ctx, t)).transpose()
}

fn masked_logon(b: &Buyer) -> String {
    let (user, domain) = b.login.split_once('@').unwrap_or((&b.login, ""));
    let keep: String = user.chars().take(3).collect();
    if domain.is_empty() { format!("{keep}***") } else { format!("{keep}***@{domain}") }
}

fn amount_text(t: &Trade, minor: i64) -> String {
    let c: Currency = t.currency.parse().unwrap_or(Currency::Cny);
    Money::from_minor(minor, c).to_decimal_string()
}

fn cny_text(fen: i64) -> String {
    Money::from_minor(fen, Currency::Cny).to_decimal_string()
}

// ---------------------------------------------------------------------------------------------
// Payment at the cashier

/// Why a channel cannot be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Blocked {
    NotAccepted,
    InsufficientFunds,
}

/// A way to pay shown at the cashier.
#[derive(Debug, Clone, Serialize)]
pub struct ChannelOption {
    /// The funding account, or `new_card` for an international card typed in.
    pub account_id: String,
    pub kind: AccountKind,
    pub channel: PayChannel,
    pub label: String,
    pub available: bool,
    /// Why it cannot be used.
    pub blocked: Option<Blocked>,
    /// Why it cannot be used (zh, en).
    pub reason: Option<(String, String)>,
    /// What is spendable, in fen (for display).
    pub spendable_fen: i64,
    pub surcharge_fen: i64,
    /// Installment plans offered (periods, buyer fee in fen, per-period in fen, fee payer).
    pub installments: Vec<InstallmentOption>,
}

#[derive(Debug, Clone, Serialize)]
pub struct InstallmentOption {
    pub periods: u32,
    pub fee_fen: i64,
    pub per_period_fen: i64,
    pub first_period_fen: i64,
    pub fee_payer: FeePayer,
}

fn channel_of(kind: AccountKind) -> PayChannel {
    match kind {
        AccountKind::Balance => PayChannel::Balance,
        AccountKind::MoneyFund => PayChannel::MoneyFund,
        AccountKind::Huabei => PayChannel::Pcredit,
        AccountKind::DebitCard => PayChannel::DebitCardExpress,
        AccountKind::CreditCard => PayChannel::CreditCardExpress,
        // International cards are Alipay's generic "creditCard" channel, not a domestic quick-pay card.
        AccountKind::InternationalCard => PayChannel::CreditCard,
        AccountKind::Merchant | AccountKind::Fees | AccountKind::Mint => PayChannel::Balance,
    }
}

fn allowed(req: &PageRequest, ch: PayChannel) -> bool {
    let credit = matches!(
        ch,
        PayChannel::CreditCard
            | PayChannel::CreditCardExpress
            | PayChannel::Pcredit
            | PayChannel::PcreditInstallment
            | PayChannel::CreditCardCartoon
    );
    let listed = |l: &haitao_alipay::api::ChannelList| {
        l.contains(ch) || (credit && l.contains(PayChannel::CreditGroup))
    };
    match (&req.pay.enable_pay_channels, &req.pay.disable_pay_channels) {
        (Some(en), _) => listed(en),
        (None, Some(dis)) => !listed(dis),
        (None, None) => true,
    }
}

pub fn surcharge_fen(sb: &Sandbox, base_fen: i64) -> i64 {
    if base_fen > sb.options.surcharge_threshold_fen {
        let n = i128::from(base_fen) * i128::from(sb.options.card_surcharge_ppm);
        i64::try_from((n + 500_000) / 1_000_000).unwrap_or(0)
    } else {
        0
    }
}

fn installment(sb: &Sandbox, base_fen: i64, periods: u32, payer: FeePayer) -> InstallmentOption {
    let ppm = sb.options.huabei_fee_ppm.iter().find(|(p, _)| *p == periods).map(|(_, r)| *r).unwrap_or(0);
    let fee = i64::try_from((i128::from(base_fen) * i128::from(ppm) + 500_000) / 1_000_000).unwrap_or(0);
    let financed = if payer == FeePayer::Buyer { base_fen + fee } else { base_fen };
    let n = i64::from(periods.max(1));
    let per = financed / n;
    InstallmentOption {
        periods,
        fee_fen: fee,
        per_period_fen: per,
        first_period_fen: financed - per * (n - 1),
        fee_payer: payer,
    }
}

/// The channels a buyer sees for a trade, honouring enable/disable lists and forced outcomes.
pub fn channel_options(
    ctx: &Ctx<'_>,
    req: &PageRequest,
    buyer: &Buyer,
    outcomes: &[Outcome],
) -> Result<Vec<ChannelOption>, Status> {
    let base = req.cny_fen;
    let accounts = model::accounts_of(ctx.conn, &buyer.id).map_err(store_err)?;
    let ext = req.pay.extend_params.clone().unwrap_or_default();
    let mut out = Vec::new();
    let short = outcomes.contains(&Outcome::ShortBalance);
    for a in accounts.iter().filter(|a| a.kind != AccountKind::InternationalCard || a.card_last4.is_some()) {
        let ch = channel_of(a.kind);
        let mut opt = ChannelOption {
            account_id: a.id.clone(),
            kind: a.kind,
            channel: ch,
            label: match (&a.card_brand, &a.card_last4) {
                (Some(b), Some(l)) => format!("{} ({b} ****{l})", a.label),
                _ => a.label.clone(),
            },
            available: true,
            blocked: None,
            reason: None,
            spendable_fen: a.available(),
            surcharge_fen: if a.kind == AccountKind::InternationalCard {
                surcharge_fen(ctx.sb, base)
            } else {
                0
            },
            installments: Vec::new(),
        };
        if a.kind == AccountKind::Huabei {
            let payer = ext.hb_fq_seller_percent.unwrap_or(FeePayer::Buyer);
            let periods: Vec<u32> = match ext.hb_fq_num {
                Some(p) => vec![p.count()],
                None => vec![3, 6, 12],
            };
            if allowed(req, PayChannel::PcreditInstallment) {
                opt.installments = periods.into_iter().map(|p| installment(ctx.sb, base, p, payer)).collect();
            }
        }
        let need = base + opt.surcharge_fen;
        let channel_ok = allowed(req, ch) || (a.kind == AccountKind::Huabei && !opt.installments.is_empty());
        if !channel_ok {
            opt.available = false;
            opt.blocked = Some(Blocked::NotAccepted);
            opt.reason =
                Some(("商户未开通此付款方式".into(), "The merchant does not accept this method".into()));
        } else if short && matches!(a.kind, AccountKind::Balance | AccountKind::MoneyFund) {
            opt.available = false;
            opt.blocked = Some(Blocked::InsufficientFunds);
            opt.spendable_fen = 0;
            opt.reason = Some(("余额不足".into(), "Balance too low".into()));
        } else if a.available() < need {
            opt.available = false;
            opt.blocked = Some(Blocked::InsufficientFunds);
            opt.reason = Some(match a.kind {
                AccountKind::Balance | AccountKind::MoneyFund => {
                    ("余额不足".into(), "Balance too low".into())
                }
                AccountKind::Huabei => ("花呗额度不足".into(), "Huabei limit too low".into()),
                _ => ("卡内余额或额度不足".into(), "Not enough funds on the card".into()),
            });
        }
        out.push(opt);
    }
    // Typing in a new international card is offered whenever that channel is allowed.
    if allowed(req, PayChannel::CreditCard) {
        out.push(ChannelOption {
            account_id: "new_card".into(),
            kind: AccountKind::InternationalCard,
            channel: PayChannel::CreditCard,
            label: "境外 Visa / MasterCard".into(),
            available: true,
            blocked: None,
            reason: None,
            spendable_fen: 0,
            surcharge_fen: surcharge_fen(ctx.sb, base),
            installments: Vec::new(),
        });
    }
    Ok(out)
}

/// A card typed in at the cashier.
#[derive(Debug, Clone, Default, serde::Deserialize)]
pub struct CardInput {
    pub number: String,
    /// `MM/YY`
    pub expiry: String,
    pub cvc: String,
    #[serde(default)]
    pub holder: String,
}

/// What the buyer chose.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct Choice {
    pub account_id: String,
    #[serde(default)]
    pub installments: Option<u32>,
    #[serde(default)]
    pub card: Option<CardInput>,
}

/// How the buyer confirmed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Confirmation {
    Password(String),
    Fingerprint,
}

/// Why a payment did not go through. The trade stays payable unless stated.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "error", rename_all = "snake_case")]
pub enum PayError {
    NotPayable {
        zh: String,
        en: String,
    },
    Locked {
        until: String,
    },
    WrongPassword {
        remaining: i64,
    },
    SmsRequired,
    SmsInvalid,
    SmsExpired,
    Insufficient {
        zh: String,
        en: String,
    },
    Declined {
        zh: String,
        en: String,
    },
    ChannelNotAllowed,
    CardInvalid {
        field: String,
        zh: String,
        en: String,
    },
    /// The gateway could not process the payment; try again.
    Processing,
}

impl PayError {
    pub fn message(&self, en: bool) -> String {
        let pick = |zh: &str, e: &str| if en { e.to_owned() } else { zh.to_owned() };
        match self {
            PayError::NotPayable { zh, en: e }
            | PayError::Insufficient { zh, en: e }
            | PayError::Declined { zh, en: e } => pick(zh, e),
            PayError::CardInvalid { zh, en: e, .. } => pick(zh, e),
            PayError::Locked { until } => {
                if en {
                    format!("Too many wrong payment passwords. Payment is locked until {until} (China time).")
                } else {
                    format!("支付密码错误次数过多，支付功能已锁定，请于 {until}（北京时间）后重试。")
                }
            }
            PayError::WrongPassword { remaining } => {
                if en {
                    format!("Wrong payment password. {remaining} tries left before payment is locked.")
                } else {
                    format!("支付密码错误，还可以输入 {remaining} 次。")
                }
            }
            PayError::SmsRequired => {
                pick("为了您的资金安全，请输入短信验证码。", "For your security, enter the SMS code.")
            }
            PayError::SmsInvalid => pick("短信验证码错误。", "The SMS code is wrong."),
            PayError::SmsExpired => {
                pick("短信验证码已过期，请重新获取。", "The SMS code expired; request a new one.")
            }
            PayError::ChannelNotAllowed => {
                pick("商户未开通此付款方式。", "The merchant does not accept this method.")
            }
            PayError::Processing => pick("系统繁忙，请稍后再试。", "The system is busy; try again later."),
        }
    }
}

fn luhn(number: &str) -> bool {
    let mut sum = 0u32;
    for (i, c) in number.chars().rev().enumerate() {
        let Some(mut d) = c.to_digit(10) else { return false };
        if i % 2 == 1 {
            d *= 2;
            if d > 9 {
                d -= 9;
            }
        }
        sum += d;
    }
    sum.is_multiple_of(10)
}

/// Card brand from the number's prefix (`VISA`, `MASTERCARD`), or `None` for others.
pub fn brand(number: &str) -> Option<&'static str> {
    let two: u32 = number.get(..2).and_then(|s| s.parse().ok()).unwrap_or(0);
    let four: u32 = number.get(..4).and_then(|s| s.parse().ok()).unwrap_or(0);
    if number.starts_with('4') {
        Some("VISA")
    } else if (51..=55).contains(&two) || (2221..=2720).contains(&four) {
        Some("MASTERCARD")
    } else {
        None
    }
}

fn card_err(field: &str, zh: &str, en: &str) -> PayError {
    PayError::CardInvalid { field: field.into(), zh: zh.into(), en: en.into() }
}

/// Validates a typed card: Luhn, brand, expiry against the sandbox clock, CVC.
pub fn check_card(card: &CardInput, now: DateTime<Utc>) -> Result<(&'static str, String), PayError> {
    let number: String = card.number.chars().filter(|c| !c.is_whitespace() && *c != '-').collect();
    if !(13..=19).contains(&number.len()) || !number.bytes().all(|b| b.is_ascii_digit()) || !luhn(&number) {
        return Err(card_err("number", "卡号无效", "The card number is not valid"));
    }
    let brand = brand(&number).ok_or_else(|| {
        card_err("number", "仅支持 Visa 和 MasterCard", "Only Visa and MasterCard are accepted")
    })?;
    let (mm, yy) = card
        .expiry
        .trim()
        .split_once('/')
        .ok_or_else(|| card_err("expiry", "有效期格式为 MM/YY", "Expiry must be MM/YY"))?;
    let mm: u32 =
        mm.trim().parse().map_err(|_| card_err("expiry", "有效期格式为 MM/YY", "Expiry must be MM/YY"))?;
    let yy: i32 =
        yy.trim().parse().map_err(|_| card_err("expiry", "有效期格式为 MM/YY", "Expiry must be MM/YY"))?;
    if !(1..=12).contains(&mm) || !(0..=99).contains(&yy) {
        return Err(card_err("expiry", "有效期格式为 MM/YY", "Expiry must be MM/YY"));
    }
    let local = now.with_timezone(&haitao_alipay::time::shanghai());
    let (cy, cm) = (chrono::Datelike::year(&local) % 100, chrono::Datelike::month(&local));
    if yy < cy || (yy == cy && mm < cm) {
        return Err(card_err("expiry", "卡片已过期", "The card has expired"));
    }
    if card.cvc.len() != 3 || !card.cvc.bytes().all(|b| b.is_ascii_digit()) {
        return Err(card_err("cvc", "安全码为卡背面3位数字", "The CVC is the 3 digits on the back"));
    }
    Ok((brand, number))
}

/// Issues an SMS code to the buyer's phone inbox. `expired` issues one that has already timed out.
pub fn send_sms(ctx: &Ctx<'_>, buyer: &Buyer, purpose: &str, expired: bool) -> Result<String, Status> {
    let code = digits(6);
    let expires = if expired { ctx.now } else { ctx.now + ctx.sb.options.sms_ttl };
    ctx.conn
        .cached_exec(
            "INSERT INTO sms_inbox (phone, code, purpose, created_at, expires_at) VALUES (?1,?2,?3,?4,?5)",
            params![buyer.phone, code, purpose, ts(ctx.now), ts(expires)],
        )
        .map_err(store_err)?;
    ctx.event(
        "cashier.sms",
        None,
        None,
        format!("SMS code sent to {}", buyer.phone),
        json!({"purpose": purpose}),
    );
    Ok(code)
}

fn check_sms(ctx: &Ctx<'_>, buyer: &Buyer, purpose: &str, code: &str) -> Result<(), PayError> {
    let row: Option<(i64, String, String)> = ctx
        .conn
        .cached_row(
            "SELECT id, code, expires_at FROM sms_inbox WHERE phone = ?1 AND purpose = ?2 AND used = 0 ORDER BY id DESC LIMIT 1",
            params![buyer.phone, purpose],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .optional()
        .map_err(|_| PayError::Processing)?;
    let (id, expected, expires) = row.ok_or(PayError::SmsInvalid)?;
    if parse_ts(&expires) <= ctx.now {
        return Err(PayError::SmsExpired);
    }
    if expected != code.trim() {
        return Err(PayError::SmsInvalid);
    }
    ctx.conn
        .cached_exec("UPDATE sms_inbox SET used = 1 WHERE id = ?1", [id])
        .map_err(|_| PayError::Processing)?;
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
                created_at: ts(ctx.now),
                expires_at: Some(ts(due)),
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

/// The result of a successful payment.
#[derive(Debug, Clone, Serialize)]
pub struct Paid {
    pub trade: Trade,
    /// Where the browser goes next (absent when the return redirect is "lost").
    pub return_url: Option<String>,
    pub charged_fen: i64,
}

/// Confirms a payment: checks the lock, channel, funds, password/fingerprint and SMS code, moves the
/// money, marks the trade paid, queues the notification and builds the return redirect.
#[allow(clippy::too_many_lines)]
pub fn pay(
    ctx: &Ctx<'_>,
    s: &Session,
    buyer: &Buyer,
    choice: &Choice,
    confirmation: &Confirmation,
    sms_code: Option<&str>,
) -> Result<Paid, PayError> {
    let trade = attach_buyer(ctx, s, buyer)?;
    let (_, req) = session_request(s).map_err(|_| PayError::Processing)?;
    let outcomes = scenarios::for_trade(ctx.conn, &ctx.app.app_id, &trade.out_trade_no, Some(req.cny_fen))
        .map_err(|_| PayError::Processing)?;
    // Lock first: a locked buyer cannot pay at all.
    let buyer =
        model::buyer(ctx.conn, &buyer.id).map_err(|_| PayError::Processing)?.ok_or(PayError::Processing)?;
    if let Some(until) = buyer.locked_until.as_deref().map(parse_ts)
        && until > ctx.now
    {
        return Err(PayError::Locked { until: format_alipay(until) });
    }
    let options = channel_options(ctx, &req, &buyer, &outcomes).map_err(|_| PayError::Processing)?;
    let opt =
        options.iter().find(|o| o.account_id == choice.account_id).ok_or(PayError::ChannelNotAllowed)?;
    let wants_installments = choice.installments.is_some();
    if opt.kind == AccountKind::Huabei && !wants_installments && !allowed(&req, PayChannel::Pcredit) {
        return Err(PayError::ChannelNotAllowed);
    }
    if wants_installments && opt.installments.iter().all(|i| Some(i.periods) != choice.installments) {
        return Err(PayError::ChannelNotAllowed);
    }
    if !opt.available {
        return Err(match (opt.blocked, &opt.reason) {
            (Some(Blocked::InsufficientFunds), Some((zh, en))) => {
                PayError::Insufficient { zh: zh.clone(), en: en.clone() }
            }
            _ => PayError::ChannelNotAllowed,
        });
    }
    // A typed card.
    let mut card_behaviour = CardBehaviour::Approve;
    let mut source_id = opt.account_id.clone();
    if opt.account_id == "new_card" {
        let card =
            choice.card.as_ref().ok_or_else(|| card_err("number", "请填写卡号", "Enter the card number"))?;
        let (brand, number) = check_card(card, ctx.now)?;
        card_behaviour = scenarios::magic_card(&number);
        let last4: String = number.chars().rev().take(4).collect::<Vec<_>>().into_iter().rev().collect();
        let acct = format!("{}:card:{brand}:{last4}", buyer.id);
        if model::account(ctx.conn, &acct).map_err(|_| PayError::Processing)?.is_none() {
            model::insert_account(
                ctx.conn,
                &acct,
                &buyer.id,
                AccountKind::InternationalCard,
                brand,
                10_000_000,
                Some((brand, &last4)),
                ctx.now,
            )
            .map_err(|_| PayError::Processing)?;
        }
        source_id = acct;
        match card_behaviour {
            CardBehaviour::Expired => return Err(card_err("expiry", "卡片已过期", "The card has expired")),
            CardBehaviour::IncorrectCvc => return Err(card_err("cvc", "安全码错误", "The CVC is incorrect")),
            _ => {}
        }
    }
    // SMS: forced, persona rule, or a 3-D Secure-like card.
    let sms_needed = outcomes.contains(&Outcome::SmsRequired)
        || outcomes.contains(&Outcome::SmsTimeout)
        || crate::personas::requires_sms(&buyer.login)
        || card_behaviour == CardBehaviour::RequiresSms;
    let purpose = format!("pay:{}", trade.trade_no);
    if sms_needed {
        match sms_code {
            None => return Err(PayError::SmsRequired),
            Some(code) => check_sms(ctx, &buyer, &purpose, code)?,
        }
    }
    // Password or fingerprint.
    match confirmation {
        Confirmation::Fingerprint => {}
        Confirmation::Password(pw) => {
            let wrong = outcomes.contains(&Outcome::WrongPasswordLock) || *pw != buyer.pay_password;
            if wrong {
                let failed = buyer.failed_pay_pw + 1;
                let tries = ctx.sb.options.password_tries;
                if failed >= tries {
                    let until = ctx.now + ctx.sb.options.password_lock;
                    ctx.conn
                        .cached_exec(
                            "UPDATE buyers SET failed_pay_pw = 0, locked_until = ?1 WHERE id = ?2",
                            params![ts(until), buyer.id],
                        )
                        .map_err(|_| PayError::Processing)?;
                    ctx.event(
                        "cashier.locked",
                        Some(&trade),
                        None,
                        format!("{} locked until {}", buyer.login, format_alipay(until)),
                        json!({}),
                    );
                    return Err(PayError::Locked { until: format_alipay(until) });
                }
                ctx.conn
                    .cached_exec(
                        "UPDATE buyers SET failed_pay_pw = ?1 WHERE id = ?2",
                        params![failed, buyer.id],
                    )
                    .map_err(|_| PayError::Processing)?;
                ctx.event(
                    "cashier.password_wrong",
                    Some(&trade),
                    None,
                    format!("wrong payment password ({failed}/{tries})"),
                    json!({}),
                );
                return Err(PayError::WrongPassword { remaining: tries - failed });
            }
        }
    }
    ctx.conn
        .cached_exec("UPDATE buyers SET failed_pay_pw = 0, locked_until = NULL WHERE id = ?1", [&buyer.id])
        .map_err(|_| PayError::Processing)?;
    // Declines.
    let declined = outcomes.contains(&Outcome::Decline)
        && matches!(
            opt.kind,
            AccountKind::DebitCard
                | AccountKind::CreditCard
                | AccountKind::InternationalCard
                | AccountKind::Huabei
        );
    match (declined, card_behaviour) {
        (true, _) | (_, CardBehaviour::Decline) => {
            ctx.event(
                "cashier.declined",
                Some(&trade),
                None,
                "payment declined",
                json!({"channel": opt.label}),
            );
            return Err(PayError::Declined {
                zh: "发卡行拒绝了本次支付".into(),
                en: "The issuer declined this payment".into(),
            });
        }
        (_, CardBehaviour::InsufficientFunds) => {
            return Err(PayError::Insufficient {
                zh: "卡内余额或额度不足".into(),
                en: "Not enough funds on the card".into(),
            });
        }
        (_, CardBehaviour::ProcessingError) => return Err(PayError::Processing),
        _ => {}
    }
    // Money.
    let base = req.cny_fen;
    let surcharge = opt.surcharge_fen;
    let plan = choice.installments.and_then(|p| opt.installments.iter().find(|i| i.periods == p).cloned());
    let (buyer_fee, seller_fee) = match &plan {
        Some(i) if i.fee_payer == FeePayer::Buyer => (i.fee_fen, 0),
        Some(i) => (0, i.fee_fen),
        None => (0, 0),
    };
    let merchant = merchant_account(&ctx.app.app_id);
    let source: Account = model::account(ctx.conn, &source_id)
        .map_err(|_| PayError::Processing)?
        .ok_or(PayError::Processing)?;
    if source.available() < base + surcharge + buyer_fee {
        return Err(PayError::Insufficient {
            zh: "余额或额度不足".into(), en: "Not enough funds".into()
        });
    }
    let post = |from: &str, to: &str, amount: i64, kind: &str| {
        if amount > 0 {
            ledger::post(ctx.conn, from, to, amount, kind, Some(&trade.trade_no), ctx.now).map_err(
                |e| match e {
                    ledger::LedgerError::Insufficient { .. } => PayError::Insufficient {
                        zh: "余额或额度不足".into(),
                        en: "Not enough funds".into(),
                    },
                    _ => PayError::Processing,
                },
            )
        } else {
            Ok(())
        }
    };
    post(&source.id, &merchant, base, "payment")?;
    post(&source.id, FEES, surcharge, "card_surcharge")?;
    post(&source.id, FEES, buyer_fee, "installment_fee")?;
    post(&merchant, FEES, seller_fee, "installment_fee_seller")?;
    let fund_bills = vec![FundBill {
        fund_channel: source.kind.fund_channel().into(),
        amount: AmountText::from_money(Money::from_minor(base, Currency::Cny)),
    }];
    let channel = match &plan {
        Some(p) => format!("{}:{}", PayChannel::PcreditInstallment.code(), p.periods),
        None => opt.channel.code().to_owned(),
    };
    ctx.conn
        .cached_exec(
            "UPDATE trades SET status = 'TRADE_SUCCESS', paid_at = ?1, buyer_id = ?2, channel = ?3, fund_bills = ?4,
             surcharge_fen = ?5, fee_fen = ?6 WHERE trade_no = ?7 AND status = 'WAIT_BUYER_PAY'",
            params![
                ts(ctx.now),
                buyer.id,
                channel,
                serde_json::to_string(&fund_bills).unwrap_or_default(),
                surcharge,
                buyer_fee + seller_fee,
                trade.trade_no
            ],
        )
        .map_err(|_| PayError::Processing)?;
    ctx.conn
        .cached_exec("UPDATE cashier_sessions SET state = 'paid' WHERE token = ?1", [&s.token])
        .map_err(|_| PayError::Processing)?;
    let paid = model::trade_by_no(ctx.conn, &ctx.app.app_id, &trade.trade_no)
        .map_err(|_| PayError::Processing)?
        .ok_or(PayError::Processing)?;
    ctx.event(
        "trade.paid",
        Some(&paid),
        None,
        format!("paid {} by {} ({})", cny_text(base), buyer.login, opt.label),
        json!({"channel": channel, "surcharge_fen": surcharge, "fee_fen": buyer_fee + seller_fee, "source": source.id}),
    );
    enqueue_notify(ctx, &paid, &outcomes, None).map_err(|_| PayError::Processing)?;
    let return_url = if outcomes.contains(&Outcome::LostReturn) {
        ctx.event("redirect.lost", Some(&paid), None, "return redirect withheld (lost_return)", json!({}));
        None
    } else {
        return_redirect(ctx, &paid, &buyer).map_err(|_| PayError::Processing)?
    };
    Ok(Paid { trade: paid, return_url, charged_fen: base + surcharge + buyer_fee })
}

/// The signed `return_url` redirect after a payment.
pub fn return_redirect(ctx: &Ctx<'_>, t: &Trade, _buyer: &Buyer) -> Result<Option<String>, Status> {
    let Some(ret) = &t.return_url else { return Ok(None) };
    let mut p = Params::new();
    p.set("charset", "utf-8");
    p.set("out_trade_no", t.out_trade_no.clone());
    p.set("method", format!("{}.return", t.method));
    p.set("total_amount", amount_text(t, t.total_minor));
    p.set("trade_no", t.trade_no.clone());
    p.set("auth_app_id", t.app_id.clone());
    p.set("version", "1.0");
    p.set("app_id", t.app_id.clone());
    p.set("seller_id", ctx.app.seller_id.clone());
    p.set("timestamp", format_alipay(ctx.now));
    if ctx.sb.options.passback_in_return
        && let Ok(biz) = serde_json::from_str::<PagePay>(&t.biz_content)
        && let Some(pb) = biz.passback_params
    {
        p.set("passback_params", pb);
    }
    let signer = ctx.sb.signer(haitao_alipay::SignType::Rsa2).map_err(store_err)?;
    let signed = haitao_alipay::inbound::sign_v1(p, &signer).map_err(store_err)?;
    let sep = if ret.contains('?') { '&' } else { '?' };
    let url = format!("{ret}{sep}{}", signed.to_urlencoded());
    ctx.event(
        "redirect.return",
        Some(t),
        None,
        "browser sent back to return_url with V1-signed parameters",
        json!({"url": url}),
    );
    Ok(Some(url))
}

/// Builds the V1-signed `trade_status_sync` parameters for a trade.
pub fn notify_params(
    ctx: &Ctx<'_>,
    t: &Trade,
    notify_id: &str,
    status: TradeStatus,
) -> Result<Params, Status> {
    let buyer = match &t.buyer_id {
        Some(b) => model::buyer(ctx.conn, b).map_err(store_err)?,
        None => None,
    };
    let mut p = Params::new();
    p.set("notify_type", "trade_status_sync");
    p.set("notify_id", notify_id);
    p.set("notify_time", format_alipay(ctx.now));
    p.set("charset", "utf-8");
    p.set("version", "1.0");
    p.set("app_id", t.app_id.clone());
    p.set("auth_app_id", t.app_id.clone());
    p.set("trade_no", t.trade_no.clone());
    p.set("out_trade_no", t.out_trade_no.clone());
    p.set("trade_status", status.as_str());
    p.set("total_amount", amount_text(t, t.total_minor));
    p.set("subject", t.subject.clone());
    p.set("seller_id", ctx.app.seller_id.clone());
    p.set("gmt_create", format_alipay(parse_ts(&t.created_at)));
    if t.currency != "CNY" {
        p.set("trans_currency", t.currency.clone());
    }
    if let Some(b) = &buyer {
        p.set("buyer_id", b.id.clone());
        p.set("buyer_logon_id", masked_logon(b));
    }
    if status.is_paid() || t.paid_at.is_some() {
        let paid = cny_text(t.cny_fen);
        p.set("receipt_amount", paid.clone());
        p.set("invoice_amount", paid.clone());
        p.set("buyer_pay_amount", paid);
        p.set("point_amount", "0.00");
        if let Some(at) = &t.paid_at {
            p.set("gmt_payment", format_alipay(parse_ts(at)));
        }
        if let Some(fb) = &t.fund_bills {
            // Notifications write the list with camelCase `fundChannel`, as Alipay does.
            let bills: Vec<FundBill> = serde_json::from_str(fb).unwrap_or_default();
            let v: Vec<Value> =
                bills.iter().map(|b| json!({"amount": b.amount, "fundChannel": b.fund_channel})).collect();
            p.set("fund_bill_list", Value::Array(v).to_string());
        }
    }
    if t.refunded_fen > 0 {
        p.set("refund_fee", cny_text(t.refunded_fen));
    }
    if let Some(c) = &t.closed_at {
        p.set("gmt_close", format_alipay(parse_ts(c)));
    }
    if let Ok(biz) = serde_json::from_str::<PagePay>(&t.biz_content)
        && let Some(pb) = biz.passback_params
    {
        p.set("passback_params", pb);
    }
    let signer = ctx.sb.signer(haitao_alipay::SignType::Rsa2).map_err(store_err)?;
    haitao_alipay::inbound::sign_v1(p, &signer).map_err(store_err)
}

fn insert_notification(
    ctx: &Ctx<'_>,
    t: &Trade,
    notify_id: &str,
    url: &str,
    body: &str,
    at: DateTime<Utc>,
) -> Result<(), Status> {
    ctx.conn
        .cached_exec(
            "INSERT INTO notifications (notify_id, trade_no, app_id, url, body, next_at, created_at) VALUES (?1,?2,?3,?4,?5,?6,?7)",
            params![notify_id, t.trade_no, t.app_id, url, body, ts(at), ts(ctx.now)],
        )
        .map_err(store_err)?;
    Ok(())
}

/// Queues the asynchronous notification of a trade's current status, applying forced notify outcomes.
pub fn enqueue_notify(
    ctx: &Ctx<'_>,
    t: &Trade,
    outcomes: &[Outcome],
    refund: Option<&str>,
) -> Result<(), Status> {
    let Some(url) = t.notify_url.clone() else {
        ctx.event("notify.skipped", Some(t), None, "no notify_url: nothing to send", json!({}));
        return Ok(());
    };
    if outcomes.contains(&Outcome::NotifyDrop) {
        ctx.event("notify.dropped", Some(t), None, "notification dropped (notify_drop)", json!({}));
        return Ok(());
    }
    let notify_id =
        format!("{}{}", ctx.now.with_timezone(&haitao_alipay::time::shanghai()).format("%Y%m%d"), digits(26));
    let p = notify_params(ctx, t, &notify_id, t.status)?;
    let body = p.to_urlencoded();
    let delay =
        if outcomes.contains(&Outcome::NotifyDelay) { Duration::minutes(10) } else { Duration::zero() };
    if outcomes.contains(&Outcome::NotifyForged) {
        // Same content, signed by a key that is not the gateway's.
        let (forger, _) = haitao_alipay::PrivateKey::generate().map_err(store_err)?;
        let signer = haitao_alipay::Signer::new(forger, haitao_alipay::SignType::Rsa2).map_err(store_err)?;
        let forged = haitao_alipay::inbound::sign_v1(p.clone(), &signer).map_err(store_err)?;
        insert_notification(ctx, t, &format!("{notify_id}F"), &url, &forged.to_urlencoded(), ctx.now)?;
        ctx.event(
            "notify.forged",
            Some(t),
            None,
            "a notification with a forged signature was queued first",
            json!({}),
        );
    }
    if outcomes.contains(&Outcome::NotifyWrongAmount) {
        // Signed by the gateway's own key, one fen more than the trade.
        let mut wrong = p.clone();
        let amount = wrong
            .get("total_amount")
            .and_then(|a| haitao_alipay::Money::parse_decimal(a, haitao_alipay::Currency::Cny).ok())
            .ok_or_else(|| store_err("notification without an amount"))?;
        let more = haitao_alipay::Money::from_minor(amount.minor() + 1, haitao_alipay::Currency::Cny);
        wrong.set("total_amount", more.to_decimal_string());
        let signer = ctx.sb.signer(haitao_alipay::SignType::Rsa2).map_err(store_err)?;
        let signed = haitao_alipay::inbound::sign_v1(wrong, &signer).map_err(store_err)?;
        insert_notification(ctx, t, &format!("{notify_id}W"), &url, &signed.to_urlencoded(), ctx.now)?;
        ctx.event(
            "notify.wrong_amount",
            Some(t),
            None,
            "a validly signed notification for the wrong amount was queued first",
            json!({"total_amount": more.to_decimal_string()}),
        );
    }
    insert_notification(ctx, t, &notify_id, &url, &body, ctx.now + delay)?;
    if outcomes.contains(&Outcome::NotifyDuplicate) {
        insert_notification(ctx, t, &notify_id, &url, &body, ctx.now + delay + Duration::seconds(1))?;
    }
    if outcomes.contains(&Outcome::NotifyReorder) && t.status.is_paid() {
        // A validly signed but stale WAIT_BUYER_PAY notification arrives after the real one.
        let mut stale = t.clone();
        stale.paid_at = None;
        let stale_id = format!("{notify_id}S");
        let sp = notify_params(ctx, &stale, &stale_id, TradeStatus::WaitBuyerPay)?;
        insert_notification(
            ctx,
            t,
            &stale_id,
            &url,
            &sp.to_urlencoded(),
            ctx.now + delay + Duration::seconds(2),
        )?;
    }
    ctx.event(
        "notify.queued",
        Some(t),
        None,
        format!("{} notification queued{}", t.status, refund.map(|r| format!(" (refund {r})")).unwrap_or_default()),
        json!({"notify_id": notify_id, "url": url, "params": p.iter().collect::<std::collections::BTreeMap<_, _>>(), "delay_secs": delay.num_seconds()}),
    );
    ctx.sb.wake.notify_waiters();
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Server-to-server APIs

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
    if t.paid_at.is_some() {
        let paid = cny_text(t.cny_fen);
        obj.insert("receipt_amount".into(), json!(paid));
        obj.insert("buyer_pay_amount".into(), json!(paid));
        obj.insert(
            "send_pay_date".into(),
            json!(format_alipay(parse_ts(t.paid_at.as_deref().unwrap_or_default()))),
        );
        if let Some(fb) = &t.fund_bills {
            obj.insert("fund_bill_list".into(), serde_json::from_str(fb).unwrap_or(Value::Null));
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

fn refund_inner(
    ctx: &Ctx<'_>,
    t: &Trade,
    amount_fen: i64,
    request_no: &str,
    reason: Option<&str>,
) -> Result<Trade, Status> {
    let buyer_id = t.buyer_id.clone().ok_or_else(|| store_err("paid trade without buyer"))?;
    // Money goes back to where it came from: the source of the payment entry.
    let source: Option<String> = ctx
        .conn
        .cached_row(
            "SELECT from_acct FROM ledger WHERE trade_no = ?1 AND kind = 'payment' ORDER BY seq LIMIT 1",
            [&t.trade_no],
            |r| r.get(0),
        )
        .optional()
        .map_err(store_err)?;
    let source = source.ok_or_else(|| store_err(format!("no payment entry for {buyer_id}")))?;
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
    // Huabei installment fees go back with the money, in proportion to what is refunded (all of
    // them once the trade is fully refunded), to whoever paid them: the buyer's source, or the
    // merchant when the seller paid the fee. Card surcharges are not refunded.
    let (before, after) = (i128::from(t.refunded_fen), i128::from(t.refunded_fen + amount_fen));
    let total = i128::from(t.cny_fen.max(1));
    for (kind, back_to) in
        [("installment_fee", source.clone()), ("installment_fee_seller", merchant_account(&t.app_id))]
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

pub fn refund(ctx: &Ctx<'_>, r: &Refund) -> Result<Value, Status> {
    let t = find(ctx, &r.trade)?.ok_or_else(|| biz(acq::TRADE_NOT_EXIST, "交易不存在"))?;
    let amount = r.amount().map_err(|e| invalid(format!("refund_amount: {e}")))?;
    let amount = amount.check_alipay_range().map_err(|e| invalid(format!("refund_amount: {e}")))?;
    let amount_fen = to_cny_fen(amount).ok_or_else(|| invalid("refund_currency 不支持"))?;
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
    let row: Option<(i64, Option<String>, String)> = ctx
        .conn
        .cached_row(
            "SELECT amount_fen, reason, created_at FROM refunds WHERE trade_no = ?1 AND out_request_no = ?2",
            [&t.trade_no, &q.out_request_no],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .optional()
        .map_err(store_err)?;
    Ok(match row {
        Some((amount, reason, at)) => json!({
            "out_request_no": q.out_request_no,
            "out_trade_no": t.out_trade_no,
            "trade_no": t.trade_no,
            "refund_amount": cny_text(amount),
            "total_amount": amount_text(&t, t.total_minor),
            "refund_reason": reason,
            "refund_status": "REFUND_SUCCESS",
            "gmt_refund_pay": format_alipay(parse_ts(&at)),
        }),
        // Alipay answers success with no refund fields when the request number is unknown.
        None => json!({}),
    })
}

pub fn customs_declare(ctx: &Ctx<'_>, d: &CustomsDeclare) -> Result<Value, Status> {
    let ok_no = |s: &str| {
        (6..=32).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    };
    if !ok_no(&d.out_request_no) {
        return Err(invalid("out_request_no 须为6-32位字母、数字、下划线或短横线"));
    }
    if d.merchant_customs_code.trim().is_empty()
        || d.merchant_customs_name.trim().is_empty()
        || d.customs_place.trim().is_empty()
    {
        return Err(invalid("merchant_customs_code、merchant_customs_name、customs_place 不能为空"));
    }
    if matches!(d.is_split.as_deref(), Some("T" | "t"))
        && d.sub_out_biz_no.as_deref().unwrap_or_default().is_empty()
    {
        return Err(invalid("拆单时 sub_out_biz_no 必填"));
    }
    let t = model::trade_by_no(ctx.conn, &ctx.app.app_id, &d.trade_no)
        .map_err(store_err)?
        .ok_or_else(|| biz(acq::TRADE_NOT_EXIST, "交易不存在"))?;
    if t.paid_at.is_none() {
        return Err(biz(acq::TRADE_STATUS_ERROR, "交易未支付"));
    }
    let amount = d.amount.to_money(Currency::Cny).map_err(|e| invalid(format!("amount: {e}")))?;
    if amount.minor() <= 0 || amount.minor() > t.cny_fen {
        return Err(invalid("报关金额不能超过支付金额"));
    }
    let existing: Option<String> = ctx
        .conn
        .cached_row(
            "SELECT alipay_declare_no FROM customs_declarations WHERE trade_no = ?1 AND out_request_no = ?2",
            [&t.trade_no, &d.out_request_no],
            |r| r.get(0),
        )
        .optional()
        .map_err(store_err)?;
    let (name, cert) = d.buyer_info.as_ref().map(|b| (b.buyer_name.clone(), b.buyer_cert_no.clone())).unzip();
    let (declare_no, identity) = match existing {
        Some(no) => {
            ctx.conn
                .cached_exec(
                    "UPDATE customs_declarations SET pushes = pushes + 1, amount_fen = ?1, customs_place = ?2,
                     buyer_name = ?3, buyer_cert_no = ?4, updated_at = ?5 WHERE trade_no = ?6 AND out_request_no = ?7",
                    params![amount.minor(), d.customs_place, name, cert, ts(ctx.now), t.trade_no, d.out_request_no],
                )
                .map_err(store_err)?;
            (no, None)
        }
        None => {
            let payer = t
                .buyer_id
                .as_deref()
                .map(|b| model::buyer(ctx.conn, b))
                .transpose()
                .map_err(store_err)?
                .flatten();
            let identity = match (&d.buyer_info, &payer) {
                (Some(info), Some(p)) => {
                    let same = info.buyer_name.trim() == p.real_name
                        && info.buyer_cert_no.trim().eq_ignore_ascii_case(&p.id_number);
                    Some(if same { "T" } else { "F" })
                }
                _ => None,
            };
            let no = format!(
                "{}{}",
                ctx.now.with_timezone(&haitao_alipay::time::shanghai()).format("%Y%m%d"),
                digits(16)
            );
            ctx.conn
                .cached_exec(
                    "INSERT INTO customs_declarations (trade_no, out_request_no, alipay_declare_no, customs_place, amount_fen,
                     buyer_name, buyer_cert_no, identity_check, created_at, updated_at) VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?9)",
                    params![t.trade_no, d.out_request_no, no, d.customs_place, amount.minor(), name, cert, identity, ts(ctx.now)],
                )
                .map_err(store_err)?;
            (no, identity)
        }
    };
    ctx.event(
        "customs.declared",
        Some(&t),
        None,
        format!(
            "payment declared to {} ({}){}",
            d.customs_place,
            d.out_request_no,
            identity.map(|i| format!(", identity_check={i}")).unwrap_or_default()
        ),
        json!({"out_request_no": d.out_request_no, "identity_check": identity, "amount_fen": amount.minor()}),
    );
    let mut v = json!({
        "trade_no": t.trade_no,
        "alipay_declare_no": declare_no,
        "pay_code": "ALIPAY",
        "pay_transaction_id": t.trade_no,
        "total_amount": amount.minor().to_string(),
        "currency": "CNY",
        "ver_dept": "3",
    });
    if let (Some(i), Some(obj)) = (identity, v.as_object_mut()) {
        obj.insert("identity_check".into(), json!(i));
    }
    Ok(v)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cards() {
        let now = haitao_alipay::time::parse_alipay("2026-11-27 12:00:00").unwrap_or_default();
        let card = |n: &str, e: &str, c: &str| CardInput {
            number: n.into(),
            expiry: e.into(),
            cvc: c.into(),
            holder: String::new(),
        };
        assert_eq!(check_card(&card("4242 4242 4242 4242", "12/30", "123"), now).map(|c| c.0), Ok("VISA"));
        assert_eq!(check_card(&card("5555555555554444", "11/26", "123"), now).map(|c| c.0), Ok("MASTERCARD"));
        assert!(matches!(
            check_card(&card("4242424242424241", "12/30", "123"), now),
            Err(PayError::CardInvalid { .. })
        ));
        assert!(matches!(
            check_card(&card("4242424242424242", "10/26", "123"), now),
            Err(PayError::CardInvalid { .. })
        ));
        assert!(matches!(
            check_card(&card("4242424242424242", "13/30", "123"), now),
            Err(PayError::CardInvalid { .. })
        ));
        assert!(matches!(
            check_card(&card("4242424242424242", "12/30", "12"), now),
            Err(PayError::CardInvalid { .. })
        ));
        assert!(
            matches!(
                check_card(&card("378282246310005", "12/30", "1234"), now),
                Err(PayError::CardInvalid { .. })
            ),
            "Amex refused"
        );
        assert_eq!(to_cny_fen(Money::from_minor(1000, Currency::Jpy)), Some(4752));
    }
}
