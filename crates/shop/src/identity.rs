//! Real-name data: resident identity numbers (GB 11643-1999), mainland phone numbers, masking.

use chrono::NaiveDate;

/// Why an identity number was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    #[error("an identity number has 18 characters: 17 digits and a check digit (0-9 or X)")]
    Format,
    #[error("the region code {0} is not a mainland province code")]
    Region(String),
    #[error("the birth date {0} is not a real date")]
    BirthDate(String),
    #[error("the birth date is in the future")]
    FutureBirth,
    #[error("the check digit does not match (expected {expected})")]
    CheckDigit { expected: char },
}

const WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
const CHECK: [char; 11] = ['1', '0', 'X', '9', '8', '7', '6', '5', '4', '3', '2'];

/// Province-level codes (the first two digits of the address code).
const PROVINCES: [u32; 34] = [
    11, 12, 13, 14, 15, 21, 22, 23, 31, 32, 33, 34, 35, 36, 37, 41, 42, 43, 44, 45, 46, 50, 51, 52, 53, 54,
    61, 62, 63, 64, 65, 71, 81, 82,
];

/// The check character of the first 17 digits (ISO 7064 MOD 11-2).
pub fn check_char(first17: &[u32; 17]) -> char {
    let sum: u32 = first17.iter().zip(WEIGHTS).map(|(d, w)| d * w).sum();
    CHECK[(sum % 11) as usize]
}

/// A validated resident identity number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResidentId {
    number: String,
    birth: NaiveDate,
}

impl ResidentId {
    /// Validates format, region, birth date (a real date, not after `today`) and check digit.
    /// A lower-case `x` is accepted and normalised.
    pub fn parse(input: &str, today: NaiveDate) -> Result<ResidentId, IdError> {
        let s: String = input.trim().to_ascii_uppercase();
        let chars: Vec<char> = s.chars().collect();
        if chars.len() != 18 {
            return Err(IdError::Format);
        }
        let mut digits = [0u32; 17];
        for (i, d) in digits.iter_mut().enumerate() {
            *d = chars.get(i).and_then(|c| c.to_digit(10)).ok_or(IdError::Format)?;
        }
        let last = chars.get(17).copied().ok_or(IdError::Format)?;
        if !(last.is_ascii_digit() || last == 'X') {
            return Err(IdError::Format);
        }
        let province = digits[0] * 10 + digits[1];
        if !PROVINCES.contains(&province) {
            return Err(IdError::Region(s.get(..6).unwrap_or_default().to_owned()));
        }
        let date_text = s.get(6..14).unwrap_or_default();
        let birth = NaiveDate::parse_from_str(date_text, "%Y%m%d")
            .map_err(|_| IdError::BirthDate(date_text.to_owned()))?;
        if birth.format("%Y").to_string().parse::<i32>().unwrap_or(0) < 1900 {
            return Err(IdError::BirthDate(date_text.to_owned()));
        }
        if birth > today {
            return Err(IdError::FutureBirth);
        }
        let expected = check_char(&digits);
        if last != expected {
            return Err(IdError::CheckDigit { expected });
        }
        Ok(ResidentId { number: s, birth })
    }

    pub fn as_str(&self) -> &str {
        &self.number
    }

    pub fn birth_date(&self) -> NaiveDate {
        self.birth
    }

    /// `110105********002X`: region and last four kept.
    pub fn masked(&self) -> String {
        mask_id(&self.number)
    }
}

pub fn mask_id(number: &str) -> String {
    let chars: Vec<char> = number.chars().collect();
    if chars.len() < 10 {
        return "*".repeat(chars.len());
    }
    chars.iter().enumerate().map(|(i, c)| if i < 6 || i >= chars.len() - 4 { *c } else { '*' }).collect()
}

/// A mainland mobile number: 11 digits starting with 1 (a leading +86 is removed).
pub fn normalise_phone(input: &str) -> Option<String> {
    let s: String = input.chars().filter(|c| !c.is_whitespace() && *c != '-').collect();
    let s = s.strip_prefix("+86").unwrap_or(&s);
    let ok = s.len() == 11
        && s.starts_with('1')
        && s.bytes().all(|b| b.is_ascii_digit())
        && s.as_bytes().get(1).is_some_and(|b| (b'3'..=b'9').contains(b));
    ok.then(|| s.to_owned())
}

/// `138****8000`
pub fn mask_phone(phone: &str) -> String {
    phone.chars().enumerate().map(|(i, c)| if (3..7).contains(&i) { '*' } else { c }).collect()
}

/// A real name: 2 to 30 characters, letters (any script), with middle dots or spaces for
/// transliterated names; no digits or symbols.
pub fn valid_name(name: &str) -> bool {
    let n = name.trim();
    let count = n.chars().count();
    (2..=30).contains(&count) && n.chars().all(|c| c.is_alphabetic() || c == '·' || c == '•' || c == ' ')
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn today() -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 11, 27).unwrap()
    }

    #[test]
    fn canonical_examples() {
        let id = ResidentId::parse("11010519491231002X", today()).unwrap();
        assert_eq!(id.birth_date(), NaiveDate::from_ymd_opt(1949, 12, 31).unwrap());
        assert_eq!(id.masked(), "110105********002X");
        assert!(ResidentId::parse("11010519491231002x", today()).is_ok(), "lower-case x");
        assert!(ResidentId::parse("440524188001010014", today()).is_err(), "born before 1900");
        assert_eq!(
            ResidentId::parse("110105194912310021", today()),
            Err(IdError::CheckDigit { expected: 'X' })
        );
    }

    #[test]
    fn impossible_numbers() {
        assert_eq!(ResidentId::parse("12345", today()), Err(IdError::Format));
        assert!(matches!(ResidentId::parse("160105194912310021", today()), Err(IdError::Region(_))));
        assert!(matches!(ResidentId::parse("110105194902310021", today()), Err(IdError::BirthDate(_))));
        assert!(matches!(ResidentId::parse("110105203001010011", today()), Err(IdError::FutureBirth)));
        assert_eq!(ResidentId::parse("1101051949123100２X", today()), Err(IdError::Format));
    }

    #[test]
    fn phones_and_names() {
        assert_eq!(normalise_phone("+86 138-0013-8000"), Some("13800138000".into()));
        assert_eq!(normalise_phone("12800138000"), None);
        assert_eq!(normalise_phone("1380013800"), None);
        assert_eq!(mask_phone("13800138000"), "138****8000");
        assert!(valid_name("张三"));
        assert!(valid_name("阿卜杜·热合曼"));
        assert!(!valid_name("张"));
        assert!(!valid_name("张3"));
    }

    proptest! {
        #[test]
        fn every_generated_number_validates_and_any_digit_change_is_caught(
            prov in 0usize..31, area in 100u32..9999, days in 0i64..38000, seq in 0u32..1000, pos in 0usize..17, delta in 1u32..10
        ) {
            let birth = NaiveDate::from_ymd_opt(1920, 1, 1).unwrap() + chrono::Duration::days(days);
            let region = PROVINCES[prov] * 10000 + area;
            let first = format!("{region:06}{}{seq:03}", birth.format("%Y%m%d"));
            let mut digits = [0u32; 17];
            for (i, c) in first.chars().enumerate() { digits[i] = c.to_digit(10).unwrap(); }
            let full = format!("{first}{}", check_char(&digits));
            let id = ResidentId::parse(&full, today());
            prop_assert!(id.is_ok(), "{full}: {id:?}");
            // Changing any single digit of the first 17 breaks the check digit (weights are coprime to 11).
            let mut bad: Vec<char> = full.chars().collect();
            let d = bad[pos].to_digit(10).unwrap();
            bad[pos] = char::from_digit((d + delta) % 10, 10).unwrap();
            let bad: String = bad.into_iter().collect();
            prop_assert!(ResidentId::parse(&bad, today()).is_err(), "{bad}");
        }
    }
}
