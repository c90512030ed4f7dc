//! Money accounts and the ledger check (`GET /sandbox/api/ledger/check`, `.../ledger/accounts`,
//! `.../personas/{login}/accounts`). Amounts are fen of [`crate::LEDGER_CURRENCY`].

use crate::Bilingual;
use serde::{Deserialize, Serialize};

/// Kinds of money accounts: a persona's funding sources, and the sandbox's own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, specta::Type)]
#[serde(rename_all = "snake_case")]
pub enum AccountKind {
    /// 账户余额
    Balance,
    /// 余额宝
    MoneyFund,
    /// 花呗 (a credit line)
    Huabei,
    DebitCard,
    CreditCard,
    InternationalCard,
    /// A merchant's settlement account.
    Merchant,
    /// Where surcharges and installment fees go.
    Fees,
    /// Where opening balances come from.
    Mint,
}

impl AccountKind {
    pub const ALL: [AccountKind; 9] = [
        AccountKind::Balance,
        AccountKind::MoneyFund,
        AccountKind::Huabei,
        AccountKind::DebitCard,
        AccountKind::CreditCard,
        AccountKind::InternationalCard,
        AccountKind::Merchant,
        AccountKind::Fees,
        AccountKind::Mint,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            AccountKind::Balance => "balance",
            AccountKind::MoneyFund => "money_fund",
            AccountKind::Huabei => "huabei",
            AccountKind::DebitCard => "debit_card",
            AccountKind::CreditCard => "credit_card",
            AccountKind::InternationalCard => "international_card",
            AccountKind::Merchant => "merchant",
            AccountKind::Fees => "fees",
            AccountKind::Mint => "mint",
        }
    }

    pub fn parse(s: &str) -> Option<AccountKind> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// A money account with its current balance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, specta::Type)]
// Named so in TypeScript beside the shop's own `Account` (the name never reaches the JSON).
#[serde(rename = "SandboxAccount")]
pub struct Account {
    pub id: String,
    /// The persona's id, an app id (merchant accounts) or `sandbox`.
    pub owner: String,
    pub kind: AccountKind,
    /// The sandbox's own name for the account ("工商银行储蓄卡" / "ICBC debit card").
    pub label: Bilingual,
    /// Credit line in fen (Huabei, credit cards; 0 otherwise).
    pub credit_limit: i64,
    /// For cards: the bank or network ("ICBC", "VISA") and the last four digits, so the source can
    /// be named in any language.
    pub card_brand: Option<String>,
    pub card_last4: Option<String>,
    /// Current balance in fen (negative: credit used).
    pub balance: i64,
}

impl Account {
    /// What can be spent from this account now, in fen.
    pub fn available(&self) -> i64 {
        self.balance + self.credit_limit
    }
}

/// What `GET /sandbox/api/ledger/check` answers: whether the double-entry ledger still balances.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LedgerCheck {
    /// Money created as opening balances, in fen.
    pub minted: i64,
    /// Sum of the balances of every account but the mint, computed account by account, in fen.
    pub held: i64,
    /// `held == minted`: no payment, refund or fee created or destroyed money.
    pub conserved: bool,
    /// Accounts beyond their credit limit (never expected).
    pub overdrawn: Vec<String>,
    /// Ledger entries so far.
    pub entries: i64,
}

impl LedgerCheck {
    /// Conserved and nothing overdrawn.
    pub fn is_sound(&self) -> bool {
        self.conserved && self.overdrawn.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_are_strict() {
        for k in AccountKind::ALL {
            assert_eq!(serde_json::to_value(k).unwrap(), serde_json::json!(k.as_str()));
            assert_eq!(AccountKind::parse(k.as_str()), Some(k));
        }
        assert!(serde_json::from_str::<AccountKind>(r#""wallet""#).is_err());
        assert_eq!(AccountKind::parse("wallet"), None);
    }
}
