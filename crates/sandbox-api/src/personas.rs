//! `GET/POST /sandbox/api/personas`: the test buyers.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::Bilingual;
use crate::ledger::{Account, AccountKind};

/// A test buyer with its funding sources, as `GET /sandbox/api/personas` lists them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, specta::Type)]
pub struct Persona {
    pub id: String,
    pub login: String,
    pub real_name: String,
    pub id_number: String,
    pub phone: String,
    /// What the persona is for ("Short balance (¥12.34), small card").
    pub description: Bilingual,
    /// Payment is locked until then after three wrong payment passwords.
    pub locked_until: Option<DateTime<Utc>>,
    pub accounts: Vec<Account>,
}

/// A funding source to create for a persona.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceSpec {
    pub kind: AccountKind,
    /// The source's name ("工商银行储蓄卡" / "ICBC debit card").
    pub label: Bilingual,
    /// Opening balance (debit-like sources) in fen.
    #[serde(default)]
    pub balance: i64,
    /// Credit line (Huabei, credit cards) in fen.
    #[serde(default)]
    pub credit_limit: i64,
    #[serde(default)]
    pub card_brand: Option<String>,
    #[serde(default)]
    pub card_last4: Option<String>,
}

/// The body of `POST /sandbox/api/personas`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PersonaSpec {
    pub login: String,
    #[serde(default = "default_password")]
    pub login_password: String,
    /// Six digits.
    #[serde(default = "default_password")]
    pub pay_password: String,
    pub real_name: String,
    pub id_number: String,
    pub phone: String,
    #[serde(default)]
    pub description: Bilingual,
    pub sources: Vec<SourceSpec>,
}

impl SourceSpec {
    /// An Alipay balance (账户余额) holding `fen`.
    pub fn balance(fen: i64) -> Self {
        SourceSpec {
            kind: AccountKind::Balance,
            label: Bilingual::new("账户余额", "Alipay balance"),
            balance: fen,
            credit_limit: 0,
            card_brand: None,
            card_last4: None,
        }
    }
}

impl PersonaSpec {
    /// A persona with the default passwords, no description and no sources yet.
    pub fn new(
        login: impl Into<String>,
        real_name: impl Into<String>,
        id_number: impl Into<String>,
        phone: impl Into<String>,
    ) -> Self {
        PersonaSpec {
            login: login.into(),
            login_password: default_password(),
            pay_password: default_password(),
            real_name: real_name.into(),
            id_number: id_number.into(),
            phone: phone.into(),
            description: Bilingual::default(),
            sources: Vec::new(),
        }
    }

    pub fn source(mut self, source: SourceSpec) -> Self {
        self.sources.push(source);
        self
    }
}

/// Every default persona's login and payment password.
pub const DEFAULT_PASSWORD: &str = "111111";

fn default_password() -> String {
    DEFAULT_PASSWORD.into()
}

/// What `POST /sandbox/api/personas` answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PersonaCreated {
    /// The new persona's buyer id (`2088…`).
    pub id: String,
}
