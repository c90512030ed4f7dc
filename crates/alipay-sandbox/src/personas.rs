//! Test buyers ("personas") with real-name identities and funding sources, seeded on first start.

use crate::db::Cached as _;
use chrono::{DateTime, Utc};
use rusqlite::Connection;
use serde::{Deserialize, Serialize};

use crate::db::StoreError;
use crate::ledger::{self, FEES, MINT};
use crate::model::{AccountKind, Buyer, digits, insert_account, insert_buyer};

/// A funding source to create for a persona.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceSpec {
    pub kind: AccountKind,
    pub label: String,
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

/// A persona to create.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PersonaSpec {
    pub login: String,
    #[serde(default = "default_password")]
    pub login_password: String,
    #[serde(default = "default_password")]
    pub pay_password: String,
    pub real_name: String,
    pub id_number: String,
    pub phone: String,
    #[serde(default)]
    pub description: String,
    pub sources: Vec<SourceSpec>,
}

fn default_password() -> String {
    "111111".into()
}

fn src(kind: AccountKind, label: &str, balance: i64, credit: i64, card: Option<(&str, &str)>) -> SourceSpec {
    SourceSpec {
        kind,
        label: label.into(),
        balance,
        credit_limit: credit,
        card_brand: card.map(|c| c.0.to_owned()),
        card_last4: card.map(|c| c.1.to_owned()),
    }
}

/// The personas every fresh sandbox has. All passwords are `111111`.
pub fn defaults() -> Vec<PersonaSpec> {
    use AccountKind::*;
    let p =
        |login: &str, name: &str, id: &str, phone: &str, desc: &str, sources: Vec<SourceSpec>| PersonaSpec {
            login: login.into(),
            login_password: default_password(),
            pay_password: default_password(),
            real_name: name.into(),
            id_number: id.into(),
            phone: phone.into(),
            description: desc.into(),
            sources,
        };
    vec![
        p(
            "zhangwei@sandbox.haitao",
            "张伟",
            "110105198803151232",
            "13800138001",
            "Every channel, plenty of money / 全渠道，余额充足",
            vec![
                src(Balance, "账户余额", 5_000_000, 0, None),
                src(MoneyFund, "余额宝", 10_000_000, 0, None),
                src(Huabei, "花呗", 0, 3_000_000, None),
                src(DebitCard, "工商银行储蓄卡", 8_000_000, 0, Some(("ICBC", "1234"))),
                src(CreditCard, "招商银行信用卡", 0, 5_000_000, Some(("CMB", "5678"))),
                src(InternationalCard, "Visa", 0, 10_000_000, Some(("VISA", "4242"))),
            ],
        ),
        p(
            "lina@sandbox.haitao",
            "李娜",
            "310104199207082344",
            "13800138002",
            "Short balance (¥12.34), small card / 余额不足",
            vec![
                src(Balance, "账户余额", 1_234, 0, None),
                src(Huabei, "花呗", 0, 500_000, None),
                src(DebitCard, "建设银行储蓄卡", 20_000, 0, Some(("CCB", "2468"))),
            ],
        ),
        p(
            "wangfang@sandbox.haitao",
            "王芳",
            "440305199502203459",
            "13800138003",
            "Huabei and an international MasterCard / 花呗与境外卡",
            vec![
                src(Balance, "账户余额", 0, 0, None),
                src(Huabei, "花呗", 0, 2_000_000, None),
                src(InternationalCard, "MasterCard", 0, 5_000_000, Some(("MASTERCARD", "4444"))),
            ],
        ),
        p(
            "zhaolei@sandbox.haitao",
            "赵磊",
            "330106199011114566",
            "13800138004",
            "Risk-checked: every payment needs an SMS code / 每笔支付需短信验证",
            vec![
                src(Balance, "账户余额", 3_000_000, 0, None),
                src(DebitCard, "农业银行储蓄卡", 3_000_000, 0, Some(("ABC", "1357"))),
            ],
        ),
        p(
            "chenjing@sandbox.haitao",
            "陈静",
            "510107198512055678",
            "13800138005",
            "Only a bank card / 仅有银行卡",
            vec![
                src(Balance, "账户余额", 0, 0, None),
                src(CreditCard, "中国银行信用卡", 0, 3_000_000, Some(("BOC", "9753"))),
            ],
        ),
    ]
}

/// Logins of personas whose payments always need an SMS code.
pub fn requires_sms(login: &str) -> bool {
    login.starts_with("zhaolei@")
}

/// Creates the sandbox's own accounts (mint, fees) if missing.
pub fn ensure_system_accounts(conn: &Connection, now: DateTime<Utc>) -> Result<(), StoreError> {
    for (id, kind, label) in
        [(MINT, AccountKind::Mint, "opening balances"), (FEES, AccountKind::Fees, "Alipay fees")]
    {
        if crate::model::account(conn, id)?.is_none() {
            insert_account(conn, id, "sandbox", kind, label, 0, None, now)?;
        }
    }
    Ok(())
}

/// Creates a persona with its sources and opening balances. Returns the buyer id.
pub fn create(
    conn: &Connection,
    spec: &PersonaSpec,
    now: DateTime<Utc>,
) -> Result<String, ledger::LedgerError> {
    ensure_system_accounts(conn, now)?;
    let id = format!("2088{}", digits(12));
    let buyer = Buyer {
        id: id.clone(),
        login: spec.login.clone(),
        login_password: spec.login_password.clone(),
        pay_password: spec.pay_password.clone(),
        real_name: spec.real_name.clone(),
        id_number: spec.id_number.clone(),
        phone: spec.phone.clone(),
        description: spec.description.clone(),
        failed_pay_pw: 0,
        locked_until: None,
    };
    insert_buyer(conn, &buyer, now)?;
    for (i, s) in spec.sources.iter().enumerate() {
        let acct = format!("{id}:{}:{i}", s.kind.as_str());
        let card = match (&s.card_brand, &s.card_last4) {
            (Some(b), Some(l)) => Some((b.as_str(), l.as_str())),
            _ => None,
        };
        insert_account(conn, &acct, &id, s.kind, &s.label, s.credit_limit.max(0), card, now)?;
        if s.balance > 0 {
            ledger::post(conn, MINT, &acct, s.balance, "opening", None, now)?;
        }
    }
    Ok(id)
}

/// Seeds the default personas into an empty sandbox.
pub fn seed(conn: &Connection, now: DateTime<Utc>) -> Result<(), ledger::LedgerError> {
    ensure_system_accounts(conn, now)?;
    let count: i64 =
        conn.cached_row("SELECT COUNT(*) FROM buyers", [], |r| r.get(0)).map_err(StoreError::from)?;
    if count > 0 {
        return Ok(());
    }
    for spec in defaults() {
        create(conn, &spec, now)?;
    }
    Ok(())
}
