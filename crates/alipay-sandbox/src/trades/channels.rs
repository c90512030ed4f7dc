//! The ways to pay a buyer sees at the cashier: their accounts and a new international card, filtered
//! by the merchant's enable/disable lists and forced outcomes, with card surcharges and Huabei
//! installment plans.

use haitao_alipay::api::{FeePayer, PayChannel};
use haitao_alipay::status::Status;
use haitao_sandbox_api::Bilingual;
use serde::Serialize;

use super::session::PageRequest;
use super::{Ctx, store_err};
use crate::Sandbox;
use crate::model::{self, AccountKind, Buyer};
use crate::scenarios::Outcome;

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
    pub label: Bilingual,
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

pub(super) fn allowed(req: &PageRequest, ch: PayChannel) -> bool {
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
                (Some(b), Some(l)) => Bilingual::new(
                    format!("{} ({b} ****{l})", a.label.zh),
                    format!("{} ({b} ****{l})", a.label.en),
                ),
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
            label: Bilingual::new("境外 Visa / MasterCard", "International Visa / MasterCard"),
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
