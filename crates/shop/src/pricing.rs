//! Pricing rules: currency conversion, shipping, the cross-border composite tax, the 5,000 / 26,000 CNY
//! limits, the international-card surcharge and Huabei installment fees.
//!
//! All arithmetic is on integer minor units; every rounding is written down here and happens once:
//!
//! - **FX**: a foreign unit price is converted to CNY once, rounded half-up to the fen
//!   (`fen = round(minor × cny_per_unit_ppm × 10^(2−exponent) / 10^6)`), then multiplied by quantity.
//!   The rule and the demo table are [`haitao_alipay::fx`]'s, shared with the sandbox gateway.
//! - **Shipping** is split across lines in proportion to their goods value by the largest-remainder
//!   method, so the shares add up to the shipping exactly.
//! - **Tax** per line is `round(dutiable × (vat + ct) / (1 − ct) × 70%)` (full rate plus duty for a
//!   single indivisible item over the single-order limit), half-up to the fen.
//! - **Surcharge** and **installment fees** are rounded half-up to the fen; installment periods are
//!   equal, with any remainder fen on the first period.

use haitao_alipay::fx::{self, div_round_half_up};
use haitao_alipay::money::{Currency, Money, MoneyError};
use haitao_shop_api::catalog::{Fulfilment, Localized, Ppm, TaxCategory};
use haitao_shop_api::orders::{
    CartNotice, FeePayer, InstallmentPlan, LinePricing, MethodQuote, PaymentMethod, Totals,
};
use serde::{Deserialize, Serialize};

pub const PPM: i64 = 1_000_000;

fn fen(n: i128) -> Result<Money, MoneyError> {
    i64::try_from(n).map(|v| Money::from_minor(v, Currency::Cny)).map_err(|_| MoneyError::Overflow)
}

/// Why a price could not be computed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PricingError {
    #[error("no exchange rate for {0}")]
    NoRate(Currency),
    #[error(transparent)]
    Money(#[from] MoneyError),
    #[error("quantity {0} is not allowed")]
    BadQuantity(i64),
}

/// VAT and consumption-tax rates of a tax category, plus the duty charged outside the CBEC channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaxRates {
    pub vat_ppm: Ppm,
    pub consumption_ppm: Ppm,
    /// Import duty applied only when goods are taxed at general-trade rates.
    pub duty_ppm: Ppm,
}

impl TaxRates {
    /// The cross-border composite rate: `(ct + vat) / (1 − ct) × 70%`, in ppm (rounded for display;
    /// tax amounts use the exact fraction).
    pub fn composite_ppm(&self) -> Ppm {
        let (num, den) = self.composite_fraction();
        i64::try_from(div_round_half_up(num * i128::from(PPM), den)).unwrap_or(0)
    }

    /// The general-trade rate: full VAT and consumption tax (on a duty-inclusive base) plus duty.
    pub fn full_ppm(&self) -> Ppm {
        let (num, den) = self.full_fraction();
        i64::try_from(div_round_half_up(num * i128::from(PPM), den)).unwrap_or(0)
    }

    fn composite_fraction(&self) -> (i128, i128) {
        let vat = i128::from(self.vat_ppm);
        let ct = i128::from(self.consumption_ppm);
        ((vat + ct) * 7, (i128::from(PPM) - ct) * 10)
    }

    fn full_fraction(&self) -> (i128, i128) {
        // duty d, then CT and VAT on (1 + d) / (1 − ct): total = d + (1 + d)(vat + ct)/(1 − ct)
        let p = i128::from(PPM);
        let vat = i128::from(self.vat_ppm);
        let ct = i128::from(self.consumption_ppm);
        let d = i128::from(self.duty_ppm);
        let den = (p - ct) * p;
        let num = d * (p - ct) + (p + d) * (vat + ct);
        (num, den)
    }

    fn tax_on(&self, base: Money, full: bool) -> Result<Money, MoneyError> {
        let (num, den) = if full { self.full_fraction() } else { self.composite_fraction() };
        fen(div_round_half_up(i128::from(base.minor()) * num, den))
    }
}

/// Pricing configuration, with defaults taken from China's cross-border retail import rules.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PricingConfig {
    pub order_limit: Money,
    pub annual_limit: Money,
    /// Shipping per order for bonded goods.
    pub bonded_shipping: Money,
    /// Direct mail: a base per order plus a rate per started kilogram beyond the first.
    pub direct_mail_base: Money,
    pub direct_mail_per_kg: Money,
    /// Orders of at least this many CNY (goods) ship free.
    pub free_shipping_from: Money,
    /// International-card surcharge charged by Alipay above `surcharge_threshold`.
    pub card_surcharge_ppm: Ppm,
    pub surcharge_threshold: Money,
    /// Huabei fees for 3, 6 and 12 periods, and who pays them.
    pub huabei: Vec<HuabeiTerm>,
    pub taxes: Vec<(TaxCategory, TaxRates)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct HuabeiTerm {
    pub periods: u32,
    pub fee_ppm: Ppm,
    pub payer: FeePayer,
}

const fn cny(fen: i64) -> Money {
    Money::from_minor(fen, Currency::Cny)
}

impl Default for PricingConfig {
    fn default() -> Self {
        let rates = |vat, ct, duty| TaxRates { vat_ppm: vat, consumption_ppm: ct, duty_ppm: duty };
        PricingConfig {
            order_limit: cny(500_000),
            annual_limit: cny(2_600_000),
            bonded_shipping: cny(800),
            direct_mail_base: cny(3_000),
            direct_mail_per_kg: cny(1_000),
            free_shipping_from: cny(29_900),
            card_surcharge_ppm: 30_000,
            surcharge_threshold: cny(20_000),
            // Widely quoted buyer rates (2.3% / 4.5% / 7.5%); three periods are interest-free for the
            // buyer here, paid by the shop, to show both cases.
            huabei: vec![
                HuabeiTerm { periods: 3, fee_ppm: 23_000, payer: FeePayer::Seller },
                HuabeiTerm { periods: 6, fee_ppm: 45_000, payer: FeePayer::Buyer },
                HuabeiTerm { periods: 12, fee_ppm: 75_000, payer: FeePayer::Buyer },
            ],
            taxes: vec![
                (TaxCategory::General, rates(130_000, 0, 0)),
                (TaxCategory::Reduced, rates(90_000, 0, 0)),
                (TaxCategory::HighEndCosmetics, rates(130_000, 150_000, 0)),
                (TaxCategory::Wine, rates(130_000, 100_000, 140_000)),
                (TaxCategory::HighEndWatch, rates(130_000, 200_000, 80_000)),
                (TaxCategory::Jewelry, rates(130_000, 100_000, 80_000)),
            ],
        }
    }
}

impl PricingConfig {
    pub fn tax_rates(&self, cat: TaxCategory) -> TaxRates {
        self.taxes.iter().find(|(c, _)| *c == cat).map(|(_, r)| *r).unwrap_or(TaxRates {
            vat_ppm: 130_000,
            consumption_ppm: 0,
            duty_ppm: 0,
        })
    }

    pub fn huabei_term(&self, periods: u32) -> Option<HuabeiTerm> {
        self.huabei.iter().copied().find(|t| t.periods == periods)
    }
}

/// Where the demo rates come from, in Chinese and in English.
pub const DEMO_SOURCE: (&str, &str) =
    ("海淘演示汇率（可配置，非实时市场数据）", "Haitao demo rates (configurable; not live market data)");

/// Exchange rates: CNY per unit of each currency, in ppm, with their as-of time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FxRates {
    pub as_of: chrono::DateTime<chrono::Utc>,
    /// Where the rates come from, in both languages (the product page shows it).
    pub source: Localized,
    pub rates: Vec<(Currency, Ppm)>,
}

impl FxRates {
    /// Demo rates shipped with Haitao ([`fx::DEMO_RATES`]: approximate mid rates; not live data).
    pub fn demo() -> Self {
        FxRates {
            as_of: fx::demo_as_of(),
            source: Localized { zh: DEMO_SOURCE.0.into(), en: DEMO_SOURCE.1.into() },
            rates: fx::DEMO_RATES.to_vec(),
        }
    }

    pub fn rate(&self, c: Currency) -> Option<Ppm> {
        self.rates.iter().find(|(k, _)| *k == c).map(|(_, r)| *r)
    }

    /// Converts a price to CNY, rounding half-up to the fen.
    pub fn to_cny(&self, price: Money) -> Result<Money, PricingError> {
        let rate = self.rate(price.currency()).ok_or(PricingError::NoRate(price.currency()))?;
        Ok(fx::to_cny(price, rate)?)
    }
}

/// One line to price.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineInput {
    pub unit_price: Money,
    pub quantity: i64,
    pub tax_category: TaxCategory,
    pub fulfilment: Fulfilment,
    pub weight_grams: i64,
}

/// A priced order (or cart).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Priced {
    pub lines: Vec<LinePricing>,
    pub totals: Totals,
    /// Single indivisible item over the single-order limit: taxed at general-trade rates.
    pub full_rate: bool,
}

/// Shipping for a set of lines: free over the threshold; else bonded flat fee if any bonded goods,
/// plus direct-mail base and weight charges if any direct-mail goods.
pub fn shipping(cfg: &PricingConfig, lines: &[LineInput], goods: Money) -> Result<Money, PricingError> {
    if lines.is_empty() || goods.try_cmp(cfg.free_shipping_from)? != std::cmp::Ordering::Less {
        return Ok(cny(0));
    }
    let mut total = cny(0);
    if lines.iter().any(|l| l.fulfilment == Fulfilment::Bonded) {
        total = total.checked_add(cfg.bonded_shipping)?;
    }
    let mail_grams: i64 = lines
        .iter()
        .filter(|l| l.fulfilment == Fulfilment::DirectMail)
        .map(|l| l.weight_grams.saturating_mul(l.quantity))
        .sum();
    if lines.iter().any(|l| l.fulfilment == Fulfilment::DirectMail) {
        let extra_kg = (mail_grams.saturating_sub(1000) + 999) / 1000;
        total = total
            .checked_add(cfg.direct_mail_base)?
            .checked_add(cfg.direct_mail_per_kg.checked_mul(extra_kg.max(0))?)?;
    }
    Ok(total)
}

/// Splits `amount` across `weights` in proportion, by the largest-remainder method: the parts add up
/// to `amount` exactly. All-zero weights put everything on the first part.
pub fn allocate(amount: i64, weights: &[i64]) -> Vec<i64> {
    if weights.is_empty() {
        return Vec::new();
    }
    let total: i128 = weights.iter().map(|w| i128::from((*w).max(0))).sum();
    if total == 0 {
        let mut v = vec![0; weights.len()];
        if let Some(first) = v.first_mut() {
            *first = amount;
        }
        return v;
    }
    let mut parts: Vec<(usize, i64, i128)> = weights
        .iter()
        .enumerate()
        .map(|(i, w)| {
            let exact = i128::from(amount) * i128::from((*w).max(0));
            (i, i64::try_from(exact / total).unwrap_or(0), exact % total)
        })
        .collect();
    let assigned: i64 = parts.iter().map(|p| p.1).sum();
    let mut left = amount - assigned;
    parts.sort_by(|a, b| b.2.cmp(&a.2).then(a.0.cmp(&b.0)));
    for p in parts.iter_mut() {
        if left <= 0 {
            break;
        }
        p.1 += 1;
        left -= 1;
    }
    parts.sort_by_key(|p| p.0);
    parts.into_iter().map(|p| p.1).collect()
}

/// Prices lines in CNY: conversion, shipping allocation and tax.
pub fn price(cfg: &PricingConfig, fx: &FxRates, lines: &[LineInput]) -> Result<Priced, PricingError> {
    let mut unit_cny = Vec::with_capacity(lines.len());
    let mut goods = Vec::with_capacity(lines.len());
    for l in lines {
        if l.quantity <= 0 || l.quantity > 999 {
            return Err(PricingError::BadQuantity(l.quantity));
        }
        let u = fx.to_cny(l.unit_price)?;
        goods.push(u.checked_mul(l.quantity)?);
        unit_cny.push(u);
    }
    let goods_total = Money::sum(Currency::Cny, goods.iter().copied())?;
    let ship = shipping(cfg, lines, goods_total)?;
    let shares = allocate(ship.minor(), &goods.iter().map(|g| g.minor()).collect::<Vec<_>>());
    let dutiable = goods_total.checked_add(ship)?;
    let single_item = lines.len() == 1 && lines.iter().all(|l| l.quantity == 1);
    let full_rate = single_item && dutiable.try_cmp(cfg.order_limit)? == std::cmp::Ordering::Greater;

    let mut out = Vec::with_capacity(lines.len());
    for (i, l) in lines.iter().enumerate() {
        let g = goods.get(i).copied().unwrap_or(cny(0));
        let s = cny(shares.get(i).copied().unwrap_or(0));
        let rates = cfg.tax_rates(l.tax_category);
        let base = g.checked_add(s)?;
        let tax = rates.tax_on(base, full_rate)?;
        out.push(LinePricing {
            unit_price: l.unit_price,
            unit_price_cny: unit_cny.get(i).copied().unwrap_or(cny(0)),
            quantity: l.quantity,
            goods_cny: g,
            shipping_cny: s,
            tax_cny: tax,
            tax_rate_ppm: if full_rate { rates.full_ppm() } else { rates.composite_ppm() },
            total_cny: base.checked_add(tax)?,
        });
    }
    let tax_total = Money::sum(Currency::Cny, out.iter().map(|l| l.tax_cny))?;
    let totals = Totals {
        goods: goods_total,
        shipping: ship,
        tax: tax_total,
        dutiable,
        total: dutiable.checked_add(tax_total)?,
    };
    Ok(Priced { lines: out, totals, full_rate })
}

/// The limit notices for a priced order, given the orderer's remaining annual quota (`None` when
/// no identity is verified yet).
pub fn limit_notices(
    cfg: &PricingConfig,
    priced: &Priced,
    quota_remaining: Option<Money>,
) -> Vec<CartNotice> {
    let mut notices = Vec::new();
    let dutiable = priced.totals.dutiable;
    if dutiable.minor() > cfg.order_limit.minor() {
        if priced.full_rate {
            notices.push(CartNotice::SingleItemOverLimit { limit: cfg.order_limit, dutiable });
        } else {
            notices.push(CartNotice::OrderLimitExceeded { limit: cfg.order_limit, dutiable });
        }
    }
    if let Some(remaining) = quota_remaining
        && dutiable.minor() > remaining.minor()
    {
        notices.push(CartNotice::AnnualQuotaExceeded { remaining, dutiable });
    }
    notices
}

/// An amount as a message quotes it: whole units with thousands separators, the minor units only
/// when there are any, then the currency code (`5,000 CNY`, `4,999.50 CNY`). Integer arithmetic
/// only.
pub fn amount_text(amount: Money) -> String {
    let currency = amount.currency();
    let scale = currency.minor_per_major().unsigned_abs().max(1);
    let abs = amount.minor().unsigned_abs();
    let digits = (abs / scale).to_string();
    let mut text = String::with_capacity(digits.len() * 4 / 3 + 8);
    if amount.is_negative() {
        text.push('-');
    }
    for (i, digit) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            text.push(',');
        }
        text.push(digit);
    }
    let minor = abs % scale;
    if minor != 0 {
        let width = usize::try_from(currency.exponent()).unwrap_or(2);
        text.push_str(&format!(".{minor:0width$}"));
    }
    text.push(' ');
    text.push_str(currency.code());
    text
}

/// What paying `order_total` with `method` costs the buyer.
pub fn quote_method(
    cfg: &PricingConfig,
    order_total: Money,
    method: PaymentMethod,
) -> Result<MethodQuote, PricingError> {
    let zero = cny(0);
    let mut q = MethodQuote {
        method,
        order_total,
        surcharge: zero,
        surcharge_rate_ppm: 0,
        installments: None,
        buyer_pays: order_total,
    };
    match method {
        PaymentMethod::InternationalCard => {
            if order_total.minor() > cfg.surcharge_threshold.minor() {
                q.surcharge_rate_ppm = cfg.card_surcharge_ppm;
                q.surcharge = fen(div_round_half_up(
                    i128::from(order_total.minor()) * i128::from(cfg.card_surcharge_ppm),
                    i128::from(PPM),
                ))?;
                q.buyer_pays = order_total.checked_add(q.surcharge)?;
            }
        }
        PaymentMethod::HuabeiInstallments { periods } => {
            let term = cfg.huabei_term(periods).ok_or(PricingError::BadQuantity(i64::from(periods)))?;
            let plan = installment_plan(order_total, term)?;
            if term.payer == FeePayer::Buyer {
                q.buyer_pays = order_total.checked_add(plan.fee)?;
            }
            q.installments = Some(plan);
        }
        PaymentMethod::Balance | PaymentMethod::BankCard | PaymentMethod::Huabei => {}
    }
    Ok(q)
}

/// Splits an amount into equal installment periods (remainder on the first).
pub fn installment_plan(principal: Money, term: HuabeiTerm) -> Result<InstallmentPlan, PricingError> {
    let fee =
        fen(div_round_half_up(i128::from(principal.minor()) * i128::from(term.fee_ppm), i128::from(PPM)))?;
    let financed = match term.payer {
        FeePayer::Buyer => principal.checked_add(fee)?,
        FeePayer::Seller => principal,
    };
    let n = i64::from(term.periods.max(1));
    let base = financed.minor() / n;
    let rem = financed.minor() - base * n;
    let per_period = (0..n).map(|i| cny(if i == 0 { base + rem } else { base })).collect();
    Ok(InstallmentPlan {
        periods: term.periods,
        fee_rate_ppm: term.fee_ppm,
        fee,
        fee_payer: term.payer,
        per_period,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn the_demo_rates_name_their_source_in_both_languages() {
        let source = FxRates::demo().source;
        assert_eq!(source.en, "Haitao demo rates (configurable; not live market data)");
        assert!(source.zh.starts_with("海淘演示汇率"), "{}", source.zh);
        assert!(!source.en.chars().any(|c| ('\u{4e00}'..='\u{9fff}').contains(&c)));
    }

    fn line(minor: i64, cur: Currency, qty: i64, tax: TaxCategory) -> LineInput {
        LineInput {
            unit_price: Money::from_minor(minor, cur),
            quantity: qty,
            tax_category: tax,
            fulfilment: Fulfilment::Bonded,
            weight_grams: 500,
        }
    }

    #[test]
    fn amount_text_groups_thousands_and_shows_fen_only_when_there_are_some() {
        for (fen, text) in [
            (500_000, "5,000 CNY"),
            (2_600_000, "26,000 CNY"),
            (499_950, "4,999.50 CNY"),
            (123_456_789, "1,234,567.89 CNY"),
            (100_000_000, "1,000,000 CNY"),
            (99_900, "999 CNY"),
            (100_001, "1,000.01 CNY"),
            (5, "0.05 CNY"),
            (0, "0 CNY"),
            (-150, "-1.50 CNY"),
        ] {
            assert_eq!(amount_text(cny(fen)), text, "{fen} fen");
        }
        assert_eq!(amount_text(Money::from_minor(1_234_567, Currency::Jpy)), "1,234,567 JPY");
        assert_eq!(amount_text(Money::from_minor(1_050, Currency::Usd)), "10.50 USD");
        assert_eq!(amount_text(cny(i64::MIN)), "-92,233,720,368,547,758.08 CNY");
        assert_eq!(amount_text(PricingConfig::default().order_limit), "5,000 CNY");
        assert_eq!(amount_text(PricingConfig::default().annual_limit), "26,000 CNY");
    }

    #[test]
    fn composite_rates_match_the_published_ones() {
        let cfg = PricingConfig::default();
        assert_eq!(cfg.tax_rates(TaxCategory::General).composite_ppm(), 91_000);
        assert_eq!(cfg.tax_rates(TaxCategory::Reduced).composite_ppm(), 63_000);
        // 0.28 / 0.85 × 0.7 = 23.0588%
        assert_eq!(cfg.tax_rates(TaxCategory::HighEndCosmetics).composite_ppm(), 230_588);
        // 0.23 / 0.9 × 0.7 = 17.888...%
        assert_eq!(cfg.tax_rates(TaxCategory::Wine).composite_ppm(), 178_889);
    }

    #[test]
    fn worked_examples() {
        let cfg = PricingConfig { bonded_shipping: cny(0), ..Default::default() };
        let fx = FxRates::demo();
        // ¥3,000 of milk powder → ¥273 tax (the published example).
        let p = price(&cfg, &fx, &[line(300_000, Currency::Cny, 1, TaxCategory::General)]).unwrap();
        assert_eq!(p.totals.tax, cny(27_300));
        // ¥1,000 cream → ¥230.59.
        let p = price(&cfg, &fx, &[line(100_000, Currency::Cny, 1, TaxCategory::HighEndCosmetics)]).unwrap();
        assert_eq!(p.totals.tax, cny(23_059));
        // $10.00 at 7.1023 → ¥71.02 (71.023 rounds down); ¥4,090 yen at 0.04752 → ¥194.36 (194.3568).
        assert_eq!(fx.to_cny(Money::from_minor(1000, Currency::Usd)), Ok(cny(7102)));
        assert_eq!(fx.to_cny(Money::from_minor(4090, Currency::Jpy)), Ok(cny(19_436)));
        // Half-up at exactly half a fen: 0.5 fen → 1 fen.
        assert_eq!(div_round_half_up(5, 10), 1);
        assert_eq!(div_round_half_up(4, 10), 0);
        assert_eq!(div_round_half_up(15, 10), 2);
    }

    #[test]
    fn single_indivisible_item_over_the_limit_pays_full_rate() {
        let cfg = PricingConfig::default();
        let fx = FxRates::demo();
        let watch = line(800_000, Currency::Cny, 1, TaxCategory::HighEndWatch);
        let p = price(&cfg, &fx, std::slice::from_ref(&watch)).unwrap();
        assert!(p.full_rate);
        assert_eq!(
            limit_notices(&cfg, &p, Some(cny(2_600_000))),
            vec![CartNotice::SingleItemOverLimit { limit: cfg.order_limit, dutiable: p.totals.dutiable }]
        );
        // Two of them are not one indivisible item: refused.
        let two = LineInput { quantity: 2, ..watch.clone() };
        let p2 = price(&cfg, &fx, &[two]).unwrap();
        assert!(!p2.full_rate);
        assert!(limit_notices(&cfg, &p2, Some(cny(2_600_000))).iter().any(|n| n.is_blocking()));
        // Over the remaining annual quota: refused even as a single item.
        assert!(
            limit_notices(&cfg, &p, Some(cny(100_000)))
                .iter()
                .any(|n| matches!(n, CartNotice::AnnualQuotaExceeded { .. }))
        );
    }

    #[test]
    fn surcharge_and_installments() {
        let cfg = PricingConfig::default();
        let q = quote_method(&cfg, cny(100_000), PaymentMethod::InternationalCard).unwrap();
        assert_eq!(q.surcharge, cny(3_000));
        assert_eq!(q.buyer_pays, cny(103_000));
        let q = quote_method(&cfg, cny(19_900), PaymentMethod::InternationalCard).unwrap();
        assert_eq!(q.surcharge, cny(0), "no surcharge at or below the threshold");
        let q = quote_method(&cfg, cny(100_001), PaymentMethod::HuabeiInstallments { periods: 6 }).unwrap();
        let plan = q.installments.unwrap();
        assert_eq!(plan.fee, cny(4_500));
        assert_eq!(plan.per_period.iter().map(|m| m.minor()).sum::<i64>(), 104_501);
        assert_eq!(q.buyer_pays, cny(104_501));
        let q3 = quote_method(&cfg, cny(100_000), PaymentMethod::HuabeiInstallments { periods: 3 }).unwrap();
        assert_eq!(q3.buyer_pays, cny(100_000), "the shop pays the 3-period fee");
        assert!(quote_method(&cfg, cny(100), PaymentMethod::HuabeiInstallments { periods: 4 }).is_err());
    }

    proptest! {
        #[test]
        fn conversion_is_within_half_a_fen(minor in 0i64..10_000_000_000, idx in 0usize..fx::DEMO_RATES.len()) {
            let fx = FxRates::demo();
            let (cur, rate) = fx.rates[idx];
            let got = fx.to_cny(Money::from_minor(minor, cur)).unwrap().minor();
            let scale = 10i128.pow(2 - cur.exponent());
            let exact_x2 = i128::from(minor) * i128::from(rate) * scale * 2; // 2 × 10^6 × exact fen
            let diff = (i128::from(got) * 2 * i128::from(PPM) - exact_x2).abs();
            prop_assert!(diff <= i128::from(PPM), "{minor} {cur}: {got}");
        }

        #[test]
        fn allocation_adds_up_and_is_proportional(amount in 0i64..1_000_000, weights in proptest::collection::vec(0i64..1_000_000, 1..10)) {
            let parts = allocate(amount, &weights);
            prop_assert_eq!(parts.iter().sum::<i64>(), amount);
            let total: i128 = weights.iter().map(|w| i128::from(*w)).sum();
            if total > 0 {
                for (p, w) in parts.iter().zip(&weights) {
                    let exact = i128::from(amount) * i128::from(*w);
                    prop_assert!((i128::from(*p) * total - exact).abs() < total, "share off by more than one fen");
                }
            }
        }

        #[test]
        fn totals_are_consistent(lines in proptest::collection::vec((1i64..500_000, 0usize..fx::DEMO_RATES.len(), 1i64..5, 0usize..6, any::<bool>()), 1..6)) {
            let cfg = PricingConfig::default();
            let fx = FxRates::demo();
            let inputs: Vec<LineInput> = lines.iter().map(|(m, c, q, t, b)| LineInput {
                unit_price: Money::from_minor(*m, fx.rates[*c].0),
                quantity: *q,
                tax_category: TaxCategory::ALL[*t],
                fulfilment: if *b { Fulfilment::Bonded } else { Fulfilment::DirectMail },
                weight_grams: 700,
            }).collect();
            let p = price(&cfg, &fx, &inputs).unwrap();
            let sum = |f: fn(&LinePricing) -> Money| p.lines.iter().map(f).map(|m| m.minor()).sum::<i64>();
            prop_assert_eq!(sum(|l| l.goods_cny), p.totals.goods.minor());
            prop_assert_eq!(sum(|l| l.shipping_cny), p.totals.shipping.minor());
            prop_assert_eq!(sum(|l| l.tax_cny), p.totals.tax.minor());
            prop_assert_eq!(sum(|l| l.total_cny), p.totals.total.minor());
            prop_assert_eq!(p.totals.total.minor(), p.totals.goods.minor() + p.totals.shipping.minor() + p.totals.tax.minor());
            prop_assert!(p.totals.tax.minor() >= 0);
            // Nothing over the single-order limit is ever left without a notice.
            let notices = limit_notices(&cfg, &p, Some(cfg.annual_limit));
            if p.totals.dutiable.minor() > cfg.order_limit.minor() {
                let single = notices.iter().any(|n| matches!(n, CartNotice::SingleItemOverLimit { .. }));
                let refused = notices.iter().any(|n| matches!(n, CartNotice::OrderLimitExceeded { .. }));
                prop_assert_eq!(p.full_rate, single);
                prop_assert_eq!(!p.full_rate, refused);
            }
        }

        #[test]
        fn installments_add_up(total in 1i64..50_000_000, pick in 0usize..3) {
            let cfg = PricingConfig::default();
            let term = cfg.huabei[pick];
            let plan = installment_plan(cny(total), term).unwrap();
            let financed = if term.payer == FeePayer::Buyer { total + plan.fee.minor() } else { total };
            prop_assert_eq!(plan.per_period.iter().map(|m| m.minor()).sum::<i64>(), financed);
            prop_assert_eq!(u32::try_from(plan.per_period.len()).ok(), Some(term.periods));
            let max = plan.per_period.iter().map(|m| m.minor()).max().unwrap_or(0);
            let min = plan.per_period.iter().map(|m| m.minor()).min().unwrap_or(0);
            prop_assert!(max - min < i64::from(term.periods));
        }
    }
}
