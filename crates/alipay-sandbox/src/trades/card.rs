//! Cards typed in at the cashier (Luhn, brand, expiry against the sandbox clock, CVC) and the SMS codes
//! sent to a buyer's phone inbox.

use chrono::{DateTime, Utc};
use haitao_alipay::status::Status;
use haitao_sandbox_api::Bilingual;
use rusqlite::{OptionalExtension, params};
use serde_json::json;

use super::pay::PayError;
use super::{Ctx, store_err};
use crate::db::Cached as _;
use crate::model::{self, AccountKind, Buyer, Stamp, digits, ts};
use crate::scenarios::{self, CardBehaviour};

pub use haitao_sandbox_api::CardInput;

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

/// Checks a card typed in at the cashier and keeps it as one of the buyer's accounts. Returns that
/// account and what the card's number makes it do; numbers that fail on expiry or CVC are refused here.
pub(super) fn typed_card(
    ctx: &Ctx<'_>,
    buyer: &Buyer,
    card: Option<&CardInput>,
) -> Result<(String, CardBehaviour), PayError> {
    let card = card.ok_or_else(|| card_err("number", "请填写卡号", "Enter the card number"))?;
    let (brand, number) = check_card(card, ctx.now)?;
    let card_behaviour = scenarios::magic_card(&number);
    let last4: String = number.chars().rev().take(4).collect::<Vec<_>>().into_iter().rev().collect();
    let acct = format!("{}:card:{brand}:{last4}", buyer.id);
    if model::account(ctx.conn, &acct).map_err(|_| PayError::Processing)?.is_none() {
        model::insert_account(
            ctx.conn,
            &acct,
            &buyer.id,
            AccountKind::InternationalCard,
            &Bilingual::new(brand, brand),
            10_000_000,
            Some((brand, &last4)),
            ctx.now,
        )
        .map_err(|_| PayError::Processing)?;
    }
    match card_behaviour {
        CardBehaviour::Expired => Err(card_err("expiry", "卡片已过期", "The card has expired")),
        CardBehaviour::IncorrectCvc => Err(card_err("cvc", "安全码错误", "The CVC is incorrect")),
        _ => Ok((acct, card_behaviour)),
    }
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

pub(super) fn check_sms(ctx: &Ctx<'_>, buyer: &Buyer, purpose: &str, code: &str) -> Result<(), PayError> {
    let row: Option<(i64, String, Stamp)> = ctx
        .conn
        .cached_row(
            "SELECT id, code, expires_at FROM sms_inbox WHERE phone = ?1 AND purpose = ?2 AND used = 0 ORDER BY id DESC LIMIT 1",
            params![buyer.phone, purpose],
            |r| Ok((r.get(0)?, r.get(1)?, r.get::<_, Stamp>(2)?)),
        )
        .optional()
        .map_err(|_| PayError::Processing)?;
    let (id, expected, expires) = row.ok_or(PayError::SmsInvalid)?;
    if expires.0 <= ctx.now {
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
    }
}
