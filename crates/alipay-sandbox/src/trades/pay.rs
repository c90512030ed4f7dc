//! Confirming a payment at the cashier, the signed `return_url` redirect, and the asynchronous
//! `trade_status_sync` notifications with their forced outcomes.

use chrono::{DateTime, Duration, Utc};
use haitao_alipay::api::{FeePayer, FundBill, PagePay, PayChannel, TradeStatus};
use haitao_alipay::money::{AmountText, Currency, Money};
use haitao_alipay::params::Params;
use haitao_alipay::status::Status;
use haitao_alipay::time::format_alipay;
use rusqlite::params;
use serde::Serialize;
use serde_json::{Value, json};

use super::card::{CardInput, check_sms, typed_card};
use super::channels::{Blocked, ChannelOption, InstallmentOption, allowed, channel_options};
use super::session::{PageRequest, attach_buyer, session_request};
use super::{Ctx, amount_text, cny_text, masked_logon, store_err};
use crate::db::Cached as _;
use crate::ledger::{self, FEES, merchant_account};
use crate::model::{self, Account, AccountKind, Buyer, Session, Trade, digits, ts};
use crate::scenarios::{self, CardBehaviour, Outcome};

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

pub use haitao_sandbox_api::PayError;

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
    let buyer = unlocked_buyer(ctx, &buyer.id)?;
    let opt = chosen_option(ctx, &req, &buyer, &outcomes, choice)?;
    let (source_id, card_behaviour) = if opt.account_id == "new_card" {
        typed_card(ctx, &buyer, choice.card.as_ref())?
    } else {
        (opt.account_id.clone(), CardBehaviour::Approve)
    };
    check_sms_if_required(ctx, &buyer, &trade, &outcomes, card_behaviour, sms_code)?;
    check_confirmation(ctx, &buyer, &trade, &outcomes, confirmation)?;
    refuse_declines(ctx, &trade, &opt, &outcomes, card_behaviour)?;
    let charge = move_money(ctx, &trade, &req, &opt, choice, &source_id)?;
    let paid = mark_paid(ctx, s, &trade, &buyer, &opt, &charge)?;
    enqueue_notify(ctx, &paid, &outcomes, None).map_err(|_| PayError::Processing)?;
    let return_url = return_url_unless_lost(ctx, &paid, &buyer, &outcomes)?;
    Ok(Paid { trade: paid, return_url, charged_fen: charge.buyer_pays() })
}

/// The buyer as stored now, unless payment is locked: a locked buyer cannot pay at all, so this is
/// checked first.
fn unlocked_buyer(ctx: &Ctx<'_>, buyer_id: &str) -> Result<Buyer, PayError> {
    let buyer =
        model::buyer(ctx.conn, buyer_id).map_err(|_| PayError::Processing)?.ok_or(PayError::Processing)?;
    if let Some(until) = buyer.locked_until
        && until > ctx.now
    {
        return Err(PayError::Locked { until: format_alipay(until) });
    }
    Ok(buyer)
}

/// The option the buyer chose, if the cashier offers it, the merchant accepts it (Huabei without
/// installments needs `pcredit`; installments need an offered plan) and it can pay the trade.
fn chosen_option(
    ctx: &Ctx<'_>,
    req: &PageRequest,
    buyer: &Buyer,
    outcomes: &[Outcome],
    choice: &Choice,
) -> Result<ChannelOption, PayError> {
    let options = channel_options(ctx, req, buyer, outcomes).map_err(|_| PayError::Processing)?;
    let opt =
        options.into_iter().find(|o| o.account_id == choice.account_id).ok_or(PayError::ChannelNotAllowed)?;
    let wants_installments = choice.installments.is_some();
    if opt.kind == AccountKind::Huabei && !wants_installments && !allowed(req, PayChannel::Pcredit) {
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
    Ok(opt)
}

/// Asks for and checks an SMS code when one is required: forced, by persona rule, or by a 3-D
/// Secure-like card.
fn check_sms_if_required(
    ctx: &Ctx<'_>,
    buyer: &Buyer,
    trade: &Trade,
    outcomes: &[Outcome],
    card_behaviour: CardBehaviour,
    sms_code: Option<&str>,
) -> Result<(), PayError> {
    let sms_needed = outcomes.contains(&Outcome::SmsRequired)
        || outcomes.contains(&Outcome::SmsTimeout)
        || crate::personas::requires_sms(&buyer.login)
        || card_behaviour == CardBehaviour::RequiresSms;
    if !sms_needed {
        return Ok(());
    }
    match sms_code {
        None => Err(PayError::SmsRequired),
        Some(code) => check_sms(ctx, buyer, &format!("pay:{}", trade.trade_no), code),
    }
}

/// Checks the payment password (a fingerprint always passes). A wrong one counts towards the lock and
/// the last allowed try locks payment; a right one clears the count.
fn check_confirmation(
    ctx: &Ctx<'_>,
    buyer: &Buyer,
    trade: &Trade,
    outcomes: &[Outcome],
    confirmation: &Confirmation,
) -> Result<(), PayError> {
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
                        Some(trade),
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
                    Some(trade),
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
    Ok(())
}

/// Refuses the payment when a decline is forced on a card or Huabei, or when the typed card's number
/// declines, lacks funds or fails to process.
fn refuse_declines(
    ctx: &Ctx<'_>,
    trade: &Trade,
    opt: &ChannelOption,
    outcomes: &[Outcome],
    card_behaviour: CardBehaviour,
) -> Result<(), PayError> {
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
                Some(trade),
                None,
                "payment declined",
                json!({"channel": opt.label.en}),
            );
            Err(PayError::Declined {
                zh: "发卡行拒绝了本次支付".into(),
                en: "The issuer declined this payment".into(),
            })
        }
        (_, CardBehaviour::InsufficientFunds) => Err(PayError::Insufficient {
            zh: "卡内余额或额度不足".into(),
            en: "Not enough funds on the card".into(),
        }),
        (_, CardBehaviour::ProcessingError) => Err(PayError::Processing),
        _ => Ok(()),
    }
}

/// What a payment moved, in fen.
#[derive(Debug)]
struct Charge {
    /// The trade's amount, paid to the merchant.
    base: i64,
    /// The international-card surcharge, paid by the buyer.
    surcharge: i64,
    /// The Huabei installment fee the buyer pays.
    buyer_fee: i64,
    /// The Huabei installment fee the merchant pays.
    seller_fee: i64,
    plan: Option<InstallmentOption>,
    source: Account,
}

impl Charge {
    /// What leaves the buyer's account.
    fn buyer_pays(&self) -> i64 {
        self.base + self.surcharge + self.buyer_fee
    }
}

/// Moves the money: the trade's amount from the source to the merchant, the surcharge and installment
/// fees to the fees account. Refused when the source cannot cover what the buyer pays.
fn move_money(
    ctx: &Ctx<'_>,
    trade: &Trade,
    req: &PageRequest,
    opt: &ChannelOption,
    choice: &Choice,
    source_id: &str,
) -> Result<Charge, PayError> {
    let base = req.cny_fen;
    let surcharge = opt.surcharge_fen;
    let plan = choice.installments.and_then(|p| opt.installments.iter().find(|i| i.periods == p).cloned());
    let (buyer_fee, seller_fee) = match &plan {
        Some(i) if i.fee_payer == FeePayer::Buyer => (i.fee_fen, 0),
        Some(i) => (0, i.fee_fen),
        None => (0, 0),
    };
    let merchant = merchant_account(&ctx.app.app_id);
    let source: Account =
        model::account(ctx.conn, source_id).map_err(|_| PayError::Processing)?.ok_or(PayError::Processing)?;
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
    Ok(Charge { base, surcharge, buyer_fee, seller_fee, plan, source })
}

/// Marks the trade `TRADE_SUCCESS` with its channel, fund bills and fees, and the session paid.
/// Returns the trade as stored.
fn mark_paid(
    ctx: &Ctx<'_>,
    s: &Session,
    trade: &Trade,
    buyer: &Buyer,
    opt: &ChannelOption,
    charge: &Charge,
) -> Result<Trade, PayError> {
    let fund_bills = vec![FundBill {
        fund_channel: model::fund_channel(charge.source.kind).into(),
        amount: AmountText::from_money(Money::from_minor(charge.base, Currency::Cny)),
    }];
    let channel = match &charge.plan {
        Some(p) => format!("{}:{}", PayChannel::PcreditInstallment.code(), p.periods),
        None => opt.channel.code().to_owned(),
    };
    let fee_fen = charge.buyer_fee + charge.seller_fee;
    ctx.conn
        .cached_exec(
            "UPDATE trades SET status = 'TRADE_SUCCESS', paid_at = ?1, buyer_id = ?2, channel = ?3, fund_bills = ?4,
             surcharge_fen = ?5, fee_fen = ?6 WHERE trade_no = ?7 AND status = 'WAIT_BUYER_PAY'",
            params![
                ts(ctx.now),
                buyer.id,
                channel,
                serde_json::to_string(&fund_bills).unwrap_or_default(),
                charge.surcharge,
                fee_fen,
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
        format!("paid {} by {} ({})", cny_text(charge.base), buyer.login, opt.label.en),
        json!({"channel": channel, "surcharge_fen": charge.surcharge, "fee_fen": fee_fen, "source": charge.source.id}),
    );
    Ok(paid)
}

/// The return redirect, unless a forced outcome withholds it.
fn return_url_unless_lost(
    ctx: &Ctx<'_>,
    paid: &Trade,
    buyer: &Buyer,
    outcomes: &[Outcome],
) -> Result<Option<String>, PayError> {
    if outcomes.contains(&Outcome::LostReturn) {
        ctx.event("redirect.lost", Some(paid), None, "return redirect withheld (lost_return)", json!({}));
        return Ok(None);
    }
    return_redirect(ctx, paid, buyer).map_err(|_| PayError::Processing)
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
    let signer = ctx.sb.signer_for(ctx.conn, ctx.app, haitao_alipay::SignType::Rsa2).map_err(store_err)?.0;
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
    p.set("gmt_create", format_alipay(t.created_at));
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
        if let Some(at) = t.paid_at {
            p.set("gmt_payment", format_alipay(at));
        }
        if let Some(fb) = &t.fund_bills {
            // Notifications write the list with camelCase `fundChannel`, as Alipay does.
            let bills: Vec<FundBill> = serde_json::from_str(fb)
                .map_err(|e| store_err(format!("trade {} fund_bills: {e}", t.trade_no)))?;
            let v: Vec<Value> =
                bills.iter().map(|b| json!({"amount": b.amount, "fundChannel": b.fund_channel})).collect();
            p.set("fund_bill_list", Value::Array(v).to_string());
        }
    }
    if t.refunded_fen > 0 {
        p.set("refund_fee", cny_text(t.refunded_fen));
    }
    if let Some(c) = t.closed_at {
        p.set("gmt_close", format_alipay(c));
    }
    if let Ok(biz) = serde_json::from_str::<PagePay>(&t.biz_content)
        && let Some(pb) = biz.passback_params
    {
        p.set("passback_params", pb);
    }
    let signer = ctx.sb.signer_for(ctx.conn, ctx.app, haitao_alipay::SignType::Rsa2).map_err(store_err)?.0;
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
        let signer =
            ctx.sb.signer_for(ctx.conn, ctx.app, haitao_alipay::SignType::Rsa2).map_err(store_err)?.0;
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
