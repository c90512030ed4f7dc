//! Money as integer minor units with an ISO 4217 currency.
//!
//! Alipay speaks decimal strings (`"88.88"`, `"1000"` for yen). They are converted here, exactly, and
//! nowhere else: no amount ever passes through a float.

use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// An ISO 4217 currency that Alipay accepts as `trans_currency`, `settle_currency` or `refund_currency`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[cfg_attr(feature = "utoipa", derive(utoipa::ToSchema))]
#[serde(rename_all = "UPPERCASE")]
pub enum Currency {
    Cny,
    Usd,
    Eur,
    Jpy,
    Gbp,
    Krw,
    Aud,
    Hkd,
    Sgd,
    Cad,
    Nzd,
    Chf,
    Thb,
    Sek,
    Dkk,
    Nok,
    Myr,
    Idr,
    Php,
    Mur,
    Ils,
    Lkr,
    Rub,
    Aed,
    Czk,
    Zar,
    Twd,
}

impl Currency {
    /// Every currency this crate knows, in a stable order.
    pub const ALL: [Currency; 27] = [
        Currency::Cny,
        Currency::Usd,
        Currency::Eur,
        Currency::Jpy,
        Currency::Gbp,
        Currency::Krw,
        Currency::Aud,
        Currency::Hkd,
        Currency::Sgd,
        Currency::Cad,
        Currency::Nzd,
        Currency::Chf,
        Currency::Thb,
        Currency::Sek,
        Currency::Dkk,
        Currency::Nok,
        Currency::Myr,
        Currency::Idr,
        Currency::Php,
        Currency::Mur,
        Currency::Ils,
        Currency::Lkr,
        Currency::Rub,
        Currency::Aed,
        Currency::Czk,
        Currency::Zar,
        Currency::Twd,
    ];

    /// The three-letter ISO 4217 code.
    pub const fn code(self) -> &'static str {
        match self {
            Currency::Cny => "CNY",
            Currency::Usd => "USD",
            Currency::Eur => "EUR",
            Currency::Jpy => "JPY",
            Currency::Gbp => "GBP",
            Currency::Krw => "KRW",
            Currency::Aud => "AUD",
            Currency::Hkd => "HKD",
            Currency::Sgd => "SGD",
            Currency::Cad => "CAD",
            Currency::Nzd => "NZD",
            Currency::Chf => "CHF",
            Currency::Thb => "THB",
            Currency::Sek => "SEK",
            Currency::Dkk => "DKK",
            Currency::Nok => "NOK",
            Currency::Myr => "MYR",
            Currency::Idr => "IDR",
            Currency::Php => "PHP",
            Currency::Mur => "MUR",
            Currency::Ils => "ILS",
            Currency::Lkr => "LKR",
            Currency::Rub => "RUB",
            Currency::Aed => "AED",
            Currency::Czk => "CZK",
            Currency::Zar => "ZAR",
            Currency::Twd => "TWD",
        }
    }

    /// Number of decimal places of the minor unit (ISO 4217 exponent).
    pub const fn exponent(self) -> u32 {
        match self {
            Currency::Jpy | Currency::Krw => 0,
            _ => 2,
        }
    }

    /// `10^exponent`: how many minor units make one major unit.
    pub const fn minor_per_major(self) -> i64 {
        match self.exponent() {
            0 => 1,
            _ => 100,
        }
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

impl FromStr for Currency {
    type Err = MoneyError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Currency::ALL
            .iter()
            .copied()
            .find(|c| c.code().eq_ignore_ascii_case(s))
            .ok_or_else(|| MoneyError::UnknownCurrency(s.chars().take(16).collect()))
    }
}

/// Why an amount could not be built, parsed or computed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    #[error("unknown or unsupported currency {0:?}")]
    UnknownCurrency(String),
    #[error("{0:?} is not a decimal amount (expected digits with an optional '.' and fraction)")]
    Malformed(String),
    #[error("{text:?} has more decimal places than {currency} allows ({allowed})")]
    TooPrecise { text: String, currency: Currency, allowed: u32 },
    #[error("amount is out of range")]
    Overflow,
    #[error("cannot combine {0} with {1}")]
    CurrencyMismatch(Currency, Currency),
    #[error("{0} is outside Alipay's accepted range 0.01 to 100000000")]
    OutOfAlipayRange(String),
}

/// An amount of money: integer minor units of one currency.
///
/// On the wire: `{"minor": 8888, "currency": "CNY"}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[cfg_attr(feature = "utoipa", derive(utoipa::ToSchema))]
pub struct Money {
    minor: i64,
    currency: Currency,
}

impl Money {
    pub const fn from_minor(minor: i64, currency: Currency) -> Self {
        Money { minor, currency }
    }

    pub const fn zero(currency: Currency) -> Self {
        Money { minor: 0, currency }
    }

    /// Whole major units (e.g. yuan), checked for overflow.
    pub fn from_major(major: i64, currency: Currency) -> Result<Self, MoneyError> {
        major
            .checked_mul(currency.minor_per_major())
            .map(|minor| Money { minor, currency })
            .ok_or(MoneyError::Overflow)
    }

    pub const fn minor(self) -> i64 {
        self.minor
    }

    pub const fn currency(self) -> Currency {
        self.currency
    }

    pub const fn is_zero(self) -> bool {
        self.minor == 0
    }

    pub const fn is_negative(self) -> bool {
        self.minor < 0
    }

    fn same(self, other: Money) -> Result<(), MoneyError> {
        if self.currency == other.currency {
            Ok(())
        } else {
            Err(MoneyError::CurrencyMismatch(self.currency, other.currency))
        }
    }

    pub fn checked_add(self, other: Money) -> Result<Money, MoneyError> {
        self.same(other)?;
        self.minor
            .checked_add(other.minor)
            .map(|minor| Money { minor, currency: self.currency })
            .ok_or(MoneyError::Overflow)
    }

    pub fn checked_sub(self, other: Money) -> Result<Money, MoneyError> {
        self.same(other)?;
        self.minor
            .checked_sub(other.minor)
            .map(|minor| Money { minor, currency: self.currency })
            .ok_or(MoneyError::Overflow)
    }

    pub fn checked_mul(self, factor: i64) -> Result<Money, MoneyError> {
        self.minor
            .checked_mul(factor)
            .map(|minor| Money { minor, currency: self.currency })
            .ok_or(MoneyError::Overflow)
    }

    /// Compares two amounts of the same currency.
    pub fn try_cmp(self, other: Money) -> Result<Ordering, MoneyError> {
        self.same(other)?;
        Ok(self.minor.cmp(&other.minor))
    }

    /// Sums amounts of one currency; an empty iterator sums to zero of `currency`.
    pub fn sum<I: IntoIterator<Item = Money>>(currency: Currency, items: I) -> Result<Money, MoneyError> {
        items.into_iter().try_fold(Money::zero(currency), Money::checked_add)
    }

    /// Renders the amount the way Alipay writes it: `"88.88"`, `"0.01"`, `"1000"` for JPY.
    pub fn to_decimal_string(self) -> String {
        let exp = self.currency.exponent();
        let sign = if self.minor < 0 { "-" } else { "" };
        let abs = self.minor.unsigned_abs();
        if exp == 0 {
            return format!("{sign}{abs}");
        }
        let scale = 10u64.pow(exp);
        let width = usize::try_from(exp).unwrap_or(2);
        format!("{sign}{}.{:0width$}", abs / scale, abs % scale, width = width)
    }

    /// Parses an Alipay decimal string losslessly.
    ///
    /// Accepts `"88.88"`, `"88.8"`, `"88"`, and trailing zero decimals beyond the currency's exponent
    /// (`"1000.00"` in JPY). Rejects signs, exponents, spaces, separators and any non-zero digit beyond
    /// the exponent: those would lose information or are not Alipay's format.
    pub fn parse_decimal(text: &str, currency: Currency) -> Result<Money, MoneyError> {
        let malformed = || MoneyError::Malformed(text.chars().take(40).collect());
        let (int_part, frac_part) = match text.split_once('.') {
            Some((i, f)) => (i, Some(f)),
            None => (text, None),
        };
        if int_part.is_empty() || !int_part.bytes().all(|b| b.is_ascii_digit()) {
            return Err(malformed());
        }
        let exp = currency.exponent();
        let mut minor: i64 = 0;
        for b in int_part.bytes() {
            minor = minor
                .checked_mul(10)
                .and_then(|m| m.checked_add(i64::from(b - b'0')))
                .ok_or(MoneyError::Overflow)?;
        }
        minor = minor.checked_mul(currency.minor_per_major()).ok_or(MoneyError::Overflow)?;
        if let Some(frac) = frac_part {
            if frac.is_empty() || !frac.bytes().all(|b| b.is_ascii_digit()) {
                return Err(malformed());
            }
            let mut place = currency.minor_per_major();
            for (i, b) in frac.bytes().enumerate() {
                let digit = i64::from(b - b'0');
                if u32::try_from(i).map_or(true, |i| i >= exp) {
                    if digit != 0 {
                        return Err(MoneyError::TooPrecise {
                            text: text.chars().take(40).collect(),
                            currency,
                            allowed: exp,
                        });
                    }
                    continue;
                }
                place /= 10;
                minor = minor.checked_add(digit * place).ok_or(MoneyError::Overflow)?;
            }
        }
        Ok(Money { minor, currency })
    }

    /// Checks Alipay's accepted range for `total_amount`, `refund_amount` and friends:
    /// 0.01 to 100,000,000 major units.
    pub fn check_alipay_range(self) -> Result<Money, MoneyError> {
        let max = 100_000_000i64.saturating_mul(self.currency.minor_per_major());
        if self.minor >= 1 && self.minor <= max {
            Ok(self)
        } else {
            Err(MoneyError::OutOfAlipayRange(self.to_decimal_string()))
        }
    }
}

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.to_decimal_string(), self.currency)
    }
}

/// A syntactically valid Alipay amount string whose currency is given by context
/// (`total_amount` is in `trans_currency`, or CNY when that is absent).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct AmountText(String);

impl AmountText {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The amount in `currency`, exactly.
    pub fn to_money(&self, currency: Currency) -> Result<Money, MoneyError> {
        Money::parse_decimal(&self.0, currency)
    }

    pub fn from_money(money: Money) -> Self {
        AmountText(money.to_decimal_string())
    }
}

impl FromStr for AmountText {
    type Err = MoneyError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        // Any currency with the largest exponent accepts every well-formed Alipay amount.
        Money::parse_decimal(s, Currency::Cny)?;
        Ok(AmountText(s.to_owned()))
    }
}

impl<'de> Deserialize<'de> for AmountText {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

impl fmt::Display for AmountText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn renders_alipay_decimals() {
        assert_eq!(Money::from_minor(8888, Currency::Cny).to_decimal_string(), "88.88");
        assert_eq!(Money::from_minor(1, Currency::Cny).to_decimal_string(), "0.01");
        assert_eq!(Money::from_minor(10, Currency::Cny).to_decimal_string(), "0.10");
        assert_eq!(Money::from_minor(1000, Currency::Jpy).to_decimal_string(), "1000");
        assert_eq!(Money::from_minor(50000, Currency::Krw).to_decimal_string(), "50000");
        assert_eq!(Money::from_minor(-5, Currency::Usd).to_decimal_string(), "-0.05");
    }

    #[test]
    fn parses_exactly() {
        let p = |s, c| Money::parse_decimal(s, c);
        assert_eq!(p("88.88", Currency::Cny), Ok(Money::from_minor(8888, Currency::Cny)));
        assert_eq!(p("88.8", Currency::Cny), Ok(Money::from_minor(8880, Currency::Cny)));
        assert_eq!(p("88", Currency::Cny), Ok(Money::from_minor(8800, Currency::Cny)));
        assert_eq!(p("0.01", Currency::Cny), Ok(Money::from_minor(1, Currency::Cny)));
        assert_eq!(p("1000", Currency::Jpy), Ok(Money::from_minor(1000, Currency::Jpy)));
        assert_eq!(p("1000.00", Currency::Jpy), Ok(Money::from_minor(1000, Currency::Jpy)));
        assert_eq!(p("0.100", Currency::Cny), Ok(Money::from_minor(10, Currency::Cny)));
    }

    #[test]
    fn rejects_what_is_not_alipay_decimal() {
        for bad in ["", ".", "1.", ".5", "-1", "+1", "1e3", " 1", "1 ", "1,000", "1.2.3", "0x10", "１"] {
            assert!(Money::parse_decimal(bad, Currency::Cny).is_err(), "{bad:?} accepted");
        }
        assert!(matches!(Money::parse_decimal("1.001", Currency::Cny), Err(MoneyError::TooPrecise { .. })));
        assert!(matches!(Money::parse_decimal("100.5", Currency::Jpy), Err(MoneyError::TooPrecise { .. })));
        assert_eq!(Money::parse_decimal("99999999999999999999", Currency::Cny), Err(MoneyError::Overflow));
    }

    #[test]
    fn arithmetic_refuses_mixed_currencies_and_overflow() {
        let cny = Money::from_minor(100, Currency::Cny);
        let usd = Money::from_minor(100, Currency::Usd);
        assert_eq!(cny.checked_add(usd), Err(MoneyError::CurrencyMismatch(Currency::Cny, Currency::Usd)));
        assert_eq!(Money::from_minor(i64::MAX, Currency::Cny).checked_add(cny), Err(MoneyError::Overflow));
        assert_eq!(cny.checked_mul(3).map(Money::minor), Ok(300));
        assert_eq!(Money::sum(Currency::Cny, [cny, cny, cny]).map(Money::minor), Ok(300));
    }

    #[test]
    fn alipay_range() {
        assert!(Money::from_minor(0, Currency::Cny).check_alipay_range().is_err());
        assert!(Money::from_minor(1, Currency::Cny).check_alipay_range().is_ok());
        assert!(Money::from_minor(10_000_000_000, Currency::Cny).check_alipay_range().is_ok());
        assert!(Money::from_minor(10_000_000_001, Currency::Cny).check_alipay_range().is_err());
        assert!(Money::from_minor(100_000_000, Currency::Jpy).check_alipay_range().is_ok());
    }

    #[test]
    fn currency_codes_round_trip() {
        for c in Currency::ALL {
            assert_eq!(c.code().parse::<Currency>(), Ok(c));
            assert_eq!(c.code().to_lowercase().parse::<Currency>(), Ok(c));
        }
        assert!("XXX".parse::<Currency>().is_err());
    }

    proptest! {
        #[test]
        fn render_parse_round_trip(minor in 0i64..=i64::MAX, idx in 0usize..27) {
            let c = Currency::ALL[idx];
            let m = Money::from_minor(minor, c);
            prop_assert_eq!(Money::parse_decimal(&m.to_decimal_string(), c), Ok(m));
        }

        #[test]
        fn parse_render_is_canonical(int in 0u64..1_000_000_000, frac in 0u64..100) {
            let text = format!("{int}.{frac:02}");
            let m = Money::parse_decimal(&text, Currency::Cny).map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert_eq!(m.to_decimal_string(), text);
        }

        #[test]
        fn add_then_sub_is_identity(a in -1_000_000_000_000i64..1_000_000_000_000, b in -1_000_000_000_000i64..1_000_000_000_000) {
            let x = Money::from_minor(a, Currency::Cny);
            let y = Money::from_minor(b, Currency::Cny);
            prop_assert_eq!(x.checked_add(y).and_then(|s| s.checked_sub(y)), Ok(x));
        }

        #[test]
        fn parse_never_panics(s in "\\PC{0,30}") {
            let _ = Money::parse_decimal(&s, Currency::Cny);
            let _ = Money::parse_decimal(&s, Currency::Jpy);
        }
    }
}
