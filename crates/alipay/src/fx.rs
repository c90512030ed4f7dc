//! Foreign amounts in CNY: the one conversion rule, and the demo exchange table Haitao ships.
//!
//! A rate is CNY per one major unit of a currency, in millionths (ppm). An amount converts to fen
//! once, rounded half up (half away from zero for negative amounts):
//!
//! ```text
//! fen = round(minor × cny_per_unit_ppm × 10^(2 − exponent) / 10^6)
//! ```
//!
//! The shop prices goods with a configurable table that starts as [`DEMO_RATES`]; the sandbox gateway
//! converts `trans_currency` and `refund_currency` amounts at those rates. Money stays integer: the
//! product is taken in `i128` and an out-of-range result is an error, never a float.

use chrono::{DateTime, TimeZone, Utc};

use crate::money::{Currency, Money, MoneyError};

const PPM: i128 = 1_000_000;

/// Demo rates: CNY per unit of each currency, in ppm (approximate mid rates; not live market data).
pub const DEMO_RATES: [(Currency, i64); 12] = [
    (Currency::Cny, 1_000_000),
    (Currency::Usd, 7_102_300),
    (Currency::Eur, 7_748_600),
    (Currency::Jpy, 47_520),
    (Currency::Gbp, 9_052_100),
    (Currency::Krw, 5_187),
    (Currency::Aud, 4_702_500),
    (Currency::Nzd, 4_291_800),
    (Currency::Chf, 8_103_400),
    (Currency::Hkd, 912_600),
    (Currency::Cad, 5_198_700),
    (Currency::Sgd, 5_280_000),
];

/// When the demo rates were taken: 2026-11-27 02:00 UTC (10:00 in Shanghai).
pub fn demo_as_of() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 27, 2, 0, 0).single().unwrap_or_default()
}

/// The demo rate of a currency, or `None` when the table has none.
pub fn demo_rate(currency: Currency) -> Option<i64> {
    DEMO_RATES.iter().find(|(c, _)| *c == currency).map(|(_, r)| *r)
}

/// `round(n / d)`, half away from zero, for `d > 0` (`0` otherwise).
pub fn div_round_half_up(n: i128, d: i128) -> i128 {
    if d <= 0 {
        return 0;
    }
    let q = n / d;
    let r = n % d;
    if r.abs() * 2 >= d { q + n.signum() } else { q }
}

/// Converts an amount to CNY at `cny_per_unit_ppm`, rounded half up to the fen.
pub fn to_cny(amount: Money, cny_per_unit_ppm: i64) -> Result<Money, MoneyError> {
    let scale = 10i128.pow(2u32.saturating_sub(amount.currency().exponent()));
    let n = i128::from(amount.minor())
        .checked_mul(i128::from(cny_per_unit_ppm))
        .and_then(|n| n.checked_mul(scale))
        .ok_or(MoneyError::Overflow)?;
    i64::try_from(div_round_half_up(n, PPM))
        .map(|fen| Money::from_minor(fen, Currency::Cny))
        .map_err(|_| MoneyError::Overflow)
}

/// Converts an amount to CNY at the demo rates; `None` for a currency without a demo rate or a result
/// out of range.
pub fn demo_to_cny(amount: Money) -> Option<Money> {
    demo_rate(amount.currency()).and_then(|rate| to_cny(amount, rate).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fen(minor: i64) -> Money {
        Money::from_minor(minor, Currency::Cny)
    }

    #[test]
    fn half_a_fen_rounds_up() {
        // 0.01 USD at 0.5 CNY is exactly half a fen; at a millionth of a yuan less it is not.
        assert_eq!(to_cny(Money::from_minor(1, Currency::Usd), 500_000), Ok(fen(1)));
        assert_eq!(to_cny(Money::from_minor(1, Currency::Usd), 499_999), Ok(fen(0)));
        assert_eq!(to_cny(Money::from_minor(3, Currency::Usd), 500_000), Ok(fen(2)));
        // Away from zero below zero.
        assert_eq!(to_cny(Money::from_minor(-1, Currency::Usd), 500_000), Ok(fen(-1)));
        assert_eq!(div_round_half_up(5, 10), 1);
        assert_eq!(div_round_half_up(4, 10), 0);
        assert_eq!(div_round_half_up(15, 10), 2);
        assert_eq!(div_round_half_up(-15, 10), -2);
        assert_eq!(div_round_half_up(1, 0), 0);
    }

    #[test]
    fn demo_rates_convert_each_exponent() {
        // $10.00 at 7.1023 → ¥71.02 (71.023 rounds down).
        assert_eq!(demo_to_cny(Money::from_minor(1000, Currency::Usd)), Some(fen(7102)));
        // Exponent 0: ¥1,000 yen at 0.04752 → ¥47.52; ¥4,090 yen → ¥194.36 (194.3568).
        assert_eq!(demo_to_cny(Money::from_minor(1000, Currency::Jpy)), Some(fen(4752)));
        assert_eq!(demo_to_cny(Money::from_minor(4090, Currency::Jpy)), Some(fen(19_436)));
        // ₩1,000 at 0.005187 → ¥5.19 (5.187).
        assert_eq!(demo_to_cny(Money::from_minor(1000, Currency::Krw)), Some(fen(519)));
        // Half a fen in yen: ¥1 yen at 0.005 CNY.
        assert_eq!(to_cny(Money::from_minor(1, Currency::Jpy), 5_000), Ok(fen(1)));
        assert_eq!(demo_to_cny(fen(12_345)), Some(fen(12_345)));
    }

    #[test]
    fn unknown_currencies_and_overflow_have_no_price() {
        assert_eq!(demo_rate(Currency::Thb), None);
        assert_eq!(demo_to_cny(Money::from_minor(1000, Currency::Thb)), None);
        assert_eq!(to_cny(Money::from_minor(i64::MAX, Currency::Usd), 7_102_300), Err(MoneyError::Overflow));
        assert_eq!(to_cny(Money::from_minor(i64::MAX, Currency::Usd), i64::MAX), Err(MoneyError::Overflow));
        assert_eq!(demo_to_cny(Money::from_minor(i64::MAX, Currency::Gbp)), None);
    }

    #[test]
    fn the_demo_table_is_dated_and_has_each_currency_once() {
        assert_eq!(demo_as_of().to_rfc3339(), "2026-11-27T02:00:00+00:00");
        for (i, (c, rate)) in DEMO_RATES.iter().enumerate() {
            assert!(*rate > 0, "{c}");
            assert!(DEMO_RATES.iter().skip(i + 1).all(|(other, _)| other != c), "{c} twice");
        }
        assert_eq!(demo_rate(Currency::Cny), Some(1_000_000));
    }
}
