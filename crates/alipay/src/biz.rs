//! Reading `biz_content` as merchants' SDKs send it. Many send amounts as JSON numbers
//! (`"total_amount": 88.88`) where Alipay documents strings; Alipay accepts both. Amounts are read
//! from their decimal text, never through a float: [`amounts_as_text`] turns every number given for
//! an amount field into the same digits as a string before the JSON is decoded, so the typed
//! amount (`AmountText`, then `Money`) parses it exactly as it parses the string form and refuses
//! what it would refuse there (more decimals than the currency has, exponents).

use std::borrow::Cow;

/// Whether a member named `key` holds an amount: `total_amount`, `refund_amount`,
/// `discountable_amount`, `amount` (fund bills), `price` (goods details) and the like.
pub fn is_amount_key(key: &str) -> bool {
    key.ends_with("amount") || key == "price"
}

/// Returns `json` with every number that is the value of an amount member written as a string of
/// the same characters. Everything else, strings included, is left byte for byte. Text that is not
/// JSON is returned unchanged (decoding it then reports the error).
pub fn amounts_as_text(json: &str) -> Cow<'_, str> {
    let b = json.as_bytes();
    let mut out: Option<String> = None;
    let mut copied = 0;
    let mut i = 0;
    // Set after a member name and its colon: the next token is that member's value.
    let mut value_of: Option<(usize, usize)> = None;
    while i < b.len() {
        match b[i] {
            b'"' => {
                let start = i;
                let Some(end) = string_end(b, i) else { return Cow::Borrowed(json) };
                i = end;
                let mut j = i;
                while j < b.len() && b[j].is_ascii_whitespace() {
                    j += 1;
                }
                if value_of.is_none() && b.get(j) == Some(&b':') {
                    value_of = Some((start, end));
                    i = j + 1;
                } else {
                    value_of = None;
                }
                continue;
            }
            c if c == b'-' || c.is_ascii_digit() => {
                let start = i;
                while i < b.len() && matches!(b[i], b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E') {
                    i += 1;
                }
                let key = value_of.take().and_then(|(s, e)| serde_json::from_str::<String>(&json[s..e]).ok());
                if key.as_deref().is_some_and(is_amount_key) {
                    let o = out.get_or_insert_with(|| String::with_capacity(json.len() + 8));
                    o.push_str(&json[copied..start]);
                    o.push('"');
                    o.push_str(&json[start..i]);
                    o.push('"');
                    copied = i;
                }
                continue;
            }
            c if c.is_ascii_whitespace() => {}
            _ => value_of = None,
        }
        i += 1;
    }
    match out {
        None => Cow::Borrowed(json),
        Some(mut o) => {
            o.push_str(&json[copied..]);
            Cow::Owned(o)
        }
    }
}

/// The index just past the string that opens at `start` (a `"`), honouring escapes.
fn string_end(b: &[u8], start: usize) -> Option<usize> {
    let mut i = start + 1;
    while i < b.len() {
        match b[i] {
            b'\\' => i += 2,
            b'"' => return Some(i + 1),
            _ => i += 1,
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::PagePay;
    use crate::money::{Currency, Money};
    use proptest::prelude::*;

    #[test]
    fn numbers_for_amounts_become_their_own_digits_as_text() {
        let sent = r#"{"out_trade_no":"T1","total_amount": 88.88,"subject":"a \"total_amount\": 1","goods_detail":[{"goods_id":"g","quantity":2,"price":10.5}],"n":7}"#;
        let got = amounts_as_text(sent);
        assert_eq!(
            got,
            r#"{"out_trade_no":"T1","total_amount": "88.88","subject":"a \"total_amount\": 1","goods_detail":[{"goods_id":"g","quantity":2,"price":"10.5"}],"n":7}"#
        );
        let strings = r#"{"total_amount":"88.88"}"#;
        assert!(matches!(amounts_as_text(strings), Cow::Borrowed(_)), "nothing to change, nothing copied");
    }

    #[test]
    fn a_numeric_amount_reads_exactly_as_its_string_and_is_refused_where_the_string_is() {
        let read = |amount: &str| -> Option<Money> {
            let json = format!(
                r#"{{"out_trade_no":"T1","total_amount":{amount},"subject":"s","product_code":"FAST_INSTANT_TRADE_PAY"}}"#
            );
            let pay: PagePay = serde_json::from_str(&amounts_as_text(&json)).ok()?;
            pay.total_amount.to_money(Currency::Cny).ok()
        };
        assert_eq!(read("88.88"), Some(Money::from_minor(8888, Currency::Cny)));
        assert_eq!(read("0.1"), Some(Money::from_minor(10, Currency::Cny)));
        assert_eq!(read("100"), Some(Money::from_minor(10_000, Currency::Cny)));
        // 0.1 + 0.2 as a float is 0.30000000000000004; the text is 0.3.
        assert_eq!(read("0.3"), Some(Money::from_minor(30, Currency::Cny)));
        assert_eq!(read("88.888"), None, "three decimals are refused, as in a string");
        assert_eq!(read("1e2"), None, "no exponents");
        assert_eq!(read("-1"), None);
        assert_eq!(read(r#""88.88""#), Some(Money::from_minor(8888, Currency::Cny)));
    }

    proptest! {
        /// Any fen amount sent as a bare number reads back as exactly that amount.
        #[test]
        fn every_cent_survives_as_a_number(fen in 1i64..10_000_000_000) {
            let text = Money::from_minor(fen, Currency::Cny).to_decimal_string();
            let json = format!(r#"{{"refund_amount":{text}}}"#);
            let v: serde_json::Value = serde_json::from_str(&amounts_as_text(&json)).unwrap();
            prop_assert_eq!(v["refund_amount"].as_str(), Some(text.as_str()));
        }

        /// Text without amount numbers is returned as it was.
        #[test]
        fn other_text_is_untouched(s in "[ -~]{0,64}") {
            let json = serde_json::to_string(&serde_json::json!({"subject": s, "quantity": 3})).unwrap();
            prop_assert_eq!(amounts_as_text(&json), json.as_str());
        }
    }
}
