//! `POST /sandbox/api/pay`: paying a merchant order as a persona, without the cashier's HTML.

use serde::{Deserialize, Serialize};

use crate::ledger::AccountKind;

/// How a persona pays.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PayWith {
    Balance,
    MoneyFund,
    Huabei,
    DebitCard,
    CreditCard,
    InternationalCard,
    /// A card typed in ([`PayRequest::card`]); magic numbers force card outcomes.
    NewCard,
}

impl PayWith {
    pub const ALL: [PayWith; 7] = [
        PayWith::Balance,
        PayWith::MoneyFund,
        PayWith::Huabei,
        PayWith::DebitCard,
        PayWith::CreditCard,
        PayWith::InternationalCard,
        PayWith::NewCard,
    ];

    pub fn as_str(self) -> &'static str {
        match self.account_kind() {
            Some(k) => k.as_str(),
            None => "new_card",
        }
    }

    /// The kind of the persona's own source this channel pays from (`None`: a card typed in).
    pub fn account_kind(self) -> Option<AccountKind> {
        match self {
            PayWith::Balance => Some(AccountKind::Balance),
            PayWith::MoneyFund => Some(AccountKind::MoneyFund),
            PayWith::Huabei => Some(AccountKind::Huabei),
            PayWith::DebitCard => Some(AccountKind::DebitCard),
            PayWith::CreditCard => Some(AccountKind::CreditCard),
            PayWith::InternationalCard => Some(AccountKind::InternationalCard),
            PayWith::NewCard => None,
        }
    }
}

/// A card typed in at the cashier (or sent with [`PayWith::NewCard`]).
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CardInput {
    pub number: String,
    /// `MM/YY`
    pub expiry: String,
    pub cvc: String,
    #[serde(default)]
    pub holder: String,
}

impl std::fmt::Debug for CardInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let last4: String = self.number.chars().rev().take(4).collect::<Vec<_>>().into_iter().rev().collect();
        f.debug_struct("CardInput")
            .field("number", &format!("****{last4}"))
            .field("expiry", &self.expiry)
            .field("cvc", &"<redacted>")
            .finish_non_exhaustive()
    }
}

/// The body of `POST /sandbox/api/pay`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PayRequest {
    /// Without it, the first app with an open cashier session for `out_trade_no`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_id: Option<String>,
    pub out_trade_no: String,
    /// Persona login.
    pub persona: String,
    pub channel: PayWith,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub installments: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub card: Option<CardInput>,
    /// Defaults to the persona's payment password; [`PayRequest::FINGERPRINT`] confirms by
    /// fingerprint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
    /// When an SMS code is needed, read it from the inbox automatically (default true).
    #[serde(default = "yes")]
    pub auto_sms: bool,
}

fn yes() -> bool {
    true
}

impl PayRequest {
    /// The `password` that confirms by fingerprint.
    pub const FINGERPRINT: &str = "fingerprint";

    /// Pays with the persona's own payment password, reading SMS codes automatically.
    pub fn new(out_trade_no: impl Into<String>, persona: impl Into<String>, channel: PayWith) -> Self {
        PayRequest {
            app_id: None,
            out_trade_no: out_trade_no.into(),
            persona: persona.into(),
            channel,
            installments: None,
            card: None,
            password: None,
            auto_sms: true,
        }
    }

    pub fn app_id(mut self, app_id: impl Into<String>) -> Self {
        self.app_id = Some(app_id.into());
        self
    }

    /// Huabei installments (3, 6 or 12).
    pub fn installments(mut self, n: u32) -> Self {
        self.installments = Some(n);
        self
    }

    pub fn card(mut self, card: CardInput) -> Self {
        self.card = Some(card);
        self
    }

    pub fn password(mut self, password: impl Into<String>) -> Self {
        self.password = Some(password.into());
        self
    }
}

/// Why a payment did not go through. The trade stays payable unless stated.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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
    /// The reason's code, as the wire's `error` tag writes it (`wrong_password`, `locked`, ...).
    pub fn code(&self) -> &'static str {
        match self {
            PayError::NotPayable { .. } => "not_payable",
            PayError::Locked { .. } => "locked",
            PayError::WrongPassword { .. } => "wrong_password",
            PayError::SmsRequired => "sms_required",
            PayError::SmsInvalid => "sms_invalid",
            PayError::SmsExpired => "sms_expired",
            PayError::Insufficient { .. } => "insufficient",
            PayError::Declined { .. } => "declined",
            PayError::ChannelNotAllowed => "channel_not_allowed",
            PayError::CardInvalid { .. } => "card_invalid",
            PayError::Processing => "processing",
        }
    }

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

/// A payment that went through (HTTP 200).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Paid {
    pub trade_no: String,
    /// Where the browser would go next (`None` when the return redirect is "lost").
    pub return_url: Option<String>,
    /// What the persona was charged, in fen (surcharges and installment fees included).
    pub charged_fen: i64,
}

/// A payment the sandbox refused (HTTP 422), the trade usually still payable.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Refused {
    pub error: PayError,
    /// `error` in English.
    pub message: String,
}

/// What `POST /sandbox/api/pay` answers when it tried to pay: `{"paid": true, ...Paid}` or
/// `{"paid": false, ...Refused}`. (An unknown order, app or persona, or an order no longer payable,
/// is an [`crate::ApiError`] instead.)
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PayAnswer {
    Paid(Paid),
    Refused(Refused),
}

impl PayAnswer {
    pub fn paid(&self) -> Option<&Paid> {
        match self {
            PayAnswer::Paid(p) => Some(p),
            PayAnswer::Refused(_) => None,
        }
    }

    pub fn refused(&self) -> Option<&PayError> {
        match self {
            PayAnswer::Paid(_) => None,
            PayAnswer::Refused(r) => Some(&r.error),
        }
    }
}

#[derive(Serialize)]
struct Flagged<'a, T> {
    paid: bool,
    #[serde(flatten)]
    body: &'a T,
}

impl Serialize for PayAnswer {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            PayAnswer::Paid(body) => Flagged { paid: true, body }.serialize(s),
            PayAnswer::Refused(body) => Flagged { paid: false, body }.serialize(s),
        }
    }
}

#[derive(Deserialize)]
struct PaidWire {
    paid: bool,
    #[serde(flatten)]
    body: Paid,
}

#[derive(Deserialize)]
struct RefusedWire {
    paid: bool,
    #[serde(flatten)]
    body: Refused,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Wire {
    Paid(PaidWire),
    Refused(RefusedWire),
}

impl<'de> Deserialize<'de> for PayAnswer {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match Wire::deserialize(d)? {
            Wire::Paid(PaidWire { paid: true, body }) => Ok(PayAnswer::Paid(body)),
            Wire::Refused(RefusedWire { paid: false, body }) => Ok(PayAnswer::Refused(body)),
            _ => Err(serde::de::Error::custom("`paid` does not match the rest of the pay answer")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn requests_and_answers_keep_their_wire_form() {
        let r = PayRequest::new("HT-1", "zhangwei@sandbox.haitao", PayWith::Huabei).installments(6);
        assert_eq!(
            serde_json::to_value(&r).unwrap(),
            json!({"out_trade_no": "HT-1", "persona": "zhangwei@sandbox.haitao", "channel": "huabei",
                   "installments": 6, "auto_sms": true})
        );
        let back: PayRequest = serde_json::from_value(
            json!({"out_trade_no": "HT-1", "persona": "zhangwei@sandbox.haitao", "channel": "huabei", "installments": 6}),
        )
        .unwrap();
        assert_eq!(back, r);
        assert!(
            serde_json::from_value::<PayRequest>(
                json!({"out_trade_no": "HT-1", "persona": "p", "channel": "cash"})
            )
            .is_err()
        );
        for c in PayWith::ALL {
            assert_eq!(serde_json::to_value(c).unwrap(), json!(c.as_str()));
        }

        let paid = json!({"paid": true, "trade_no": "2026", "return_url": null, "charged_fen": 100});
        let a: PayAnswer = serde_json::from_value(paid.clone()).unwrap();
        assert_eq!(a.paid().map(|p| p.charged_fen), Some(100));
        assert_eq!(serde_json::to_value(&a).unwrap(), paid);

        let refused =
            json!({"paid": false, "error": {"error": "wrong_password", "remaining": 2}, "message": "Wrong"});
        let a: PayAnswer = serde_json::from_value(refused.clone()).unwrap();
        assert_eq!(a.refused(), Some(&PayError::WrongPassword { remaining: 2 }));
        for e in [
            PayError::NotPayable { zh: String::new(), en: String::new() },
            PayError::Locked { until: String::new() },
            PayError::SmsExpired,
            PayError::ChannelNotAllowed,
            PayError::CardInvalid { field: "cvc".into(), zh: String::new(), en: String::new() },
        ] {
            assert_eq!(serde_json::to_value(&e).unwrap()["error"], json!(e.code()));
        }
        assert_eq!(serde_json::to_value(&a).unwrap(), refused);

        assert!(
            serde_json::from_value::<PayAnswer>(
                json!({"paid": false, "trade_no": "1", "return_url": null, "charged_fen": 1})
            )
            .is_err()
        );
        assert!(
            serde_json::from_value::<PayAnswer>(
                json!({"paid": false, "error": {"error": "bribed"}, "message": ""})
            )
            .is_err()
        );
    }
}
