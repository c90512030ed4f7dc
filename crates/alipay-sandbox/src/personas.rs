//! Test buyers ("personas") with real-name identities and funding sources, seeded on first start.

use crate::db::Cached as _;
use chrono::{DateTime, Utc};
use haitao_sandbox_api::Bilingual;
use rusqlite::Connection;

use crate::db::StoreError;
use crate::ledger::{self, FEES, MINT};
use crate::model::{AccountKind, Buyer, digits, insert_account, insert_buyer};

pub use haitao_sandbox_api::{PersonaSpec, SourceSpec};

fn default_password() -> String {
    haitao_sandbox_api::personas::DEFAULT_PASSWORD.into()
}

fn src(
    kind: AccountKind,
    label: (&str, &str),
    balance: i64,
    credit: i64,
    card: Option<(&str, &str)>,
) -> SourceSpec {
    SourceSpec {
        kind,
        label: Bilingual::new(label.0, label.1),
        balance,
        credit_limit: credit,
        card_brand: card.map(|c| c.0.to_owned()),
        card_last4: card.map(|c| c.1.to_owned()),
    }
}

/// The personas every fresh sandbox has. All passwords are `111111`.
pub fn defaults() -> Vec<PersonaSpec> {
    use AccountKind::*;
    let p = |login: &str, name: &str, id: &str, phone: &str, desc: (&str, &str), sources: Vec<SourceSpec>| {
        PersonaSpec {
            login: login.into(),
            login_password: default_password(),
            pay_password: default_password(),
            real_name: name.into(),
            id_number: id.into(),
            phone: phone.into(),
            description: Bilingual::new(desc.1, desc.0),
            sources,
        }
    };
    vec![
        p(
            "zhangwei@sandbox.haitao",
            "张伟",
            "110105198803151232",
            "13800138001",
            ("Every channel, plenty of money", "全渠道，余额充足"),
            vec![
                src(Balance, ("账户余额", "Alipay balance"), 5_000_000, 0, None),
                src(MoneyFund, ("余额宝", "Yu'e Bao"), 10_000_000, 0, None),
                src(Huabei, ("花呗", "Huabei"), 0, 3_000_000, None),
                src(DebitCard, ("工商银行储蓄卡", "ICBC debit card"), 8_000_000, 0, Some(("ICBC", "1234"))),
                src(CreditCard, ("招商银行信用卡", "CMB credit card"), 0, 5_000_000, Some(("CMB", "5678"))),
                src(InternationalCard, ("Visa", "Visa"), 0, 10_000_000, Some(("VISA", "4242"))),
            ],
        ),
        p(
            "lina@sandbox.haitao",
            "李娜",
            "310104199207082344",
            "13800138002",
            ("Short balance (¥12.34), small card", "余额不足"),
            vec![
                src(Balance, ("账户余额", "Alipay balance"), 1_234, 0, None),
                src(Huabei, ("花呗", "Huabei"), 0, 500_000, None),
                src(DebitCard, ("建设银行储蓄卡", "CCB debit card"), 20_000, 0, Some(("CCB", "2468"))),
            ],
        ),
        p(
            "wangfang@sandbox.haitao",
            "王芳",
            "440305199502203459",
            "13800138003",
            ("Huabei and an international MasterCard", "花呗与境外卡"),
            vec![
                src(Balance, ("账户余额", "Alipay balance"), 0, 0, None),
                src(Huabei, ("花呗", "Huabei"), 0, 2_000_000, None),
                src(
                    InternationalCard,
                    ("MasterCard", "MasterCard"),
                    0,
                    5_000_000,
                    Some(("MASTERCARD", "4444")),
                ),
            ],
        ),
        p(
            "zhaolei@sandbox.haitao",
            "赵磊",
            "330106199011114566",
            "13800138004",
            ("Risk-checked: every payment needs an SMS code", "每笔支付需短信验证"),
            vec![
                src(Balance, ("账户余额", "Alipay balance"), 3_000_000, 0, None),
                src(DebitCard, ("农业银行储蓄卡", "ABC debit card"), 3_000_000, 0, Some(("ABC", "1357"))),
            ],
        ),
        p(
            "chenjing@sandbox.haitao",
            "陈静",
            "510107198512055678",
            "13800138005",
            ("Only a bank card", "仅有银行卡"),
            vec![
                src(Balance, ("账户余额", "Alipay balance"), 0, 0, None),
                src(CreditCard, ("中国银行信用卡", "BOC credit card"), 0, 3_000_000, Some(("BOC", "9753"))),
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
    for (id, kind, label) in [
        (MINT, AccountKind::Mint, Bilingual::new("期初余额", "opening balances")),
        (FEES, AccountKind::Fees, Bilingual::new("支付宝手续费", "Alipay fees")),
    ] {
        if crate::model::account(conn, id)?.is_none() {
            insert_account(conn, id, "sandbox", kind, &label, 0, None, now)?;
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

#[cfg(test)]
mod tests {
    use super::*;
    use rusqlite_migration::{M, Migrations};

    #[test]
    fn descriptions_kept_as_one_string_are_split_into_both_languages() {
        let mut c = Connection::open_in_memory().unwrap();
        Migrations::new(vec![M::up(include_str!("../migrations/001_init.sql"))]).to_latest(&mut c).unwrap();
        for (login, description) in [
            ("a@sandbox.haitao", "Short balance (¥12.34), small card / 余额不足"),
            ("b@sandbox.haitao", "Created by a tester"),
        ] {
            c.execute(
                "INSERT INTO buyers (id, login, login_password, pay_password, real_name, id_number, phone, description, created_at)
                 VALUES (?1, ?1, '111111', '111111', 'x', 'x', 'x', ?2, '2026-01-01T00:00:00.000Z')",
                [login, description],
            )
            .unwrap();
        }
        crate::db::migrations().to_latest(&mut c).unwrap();
        let read = |login: &str| crate::model::buyer_by_login(&c, login).unwrap().unwrap().description;
        assert_eq!(
            read("a@sandbox.haitao"),
            Bilingual::new("余额不足", "Short balance (¥12.34), small card")
        );
        assert_eq!(read("b@sandbox.haitao"), Bilingual::new("Created by a tester", "Created by a tester"));
    }

    fn han(s: &str) -> bool {
        s.chars().any(|c| ('\u{4e00}'..='\u{9fff}').contains(&c))
    }

    #[test]
    fn every_default_persona_and_source_is_named_in_both_languages() {
        for p in defaults() {
            assert!(!p.description.en.is_empty() && !p.description.zh.is_empty(), "{}", p.login);
            assert!(!han(&p.description.en), "{}", p.login);
            for s in &p.sources {
                assert!(!s.label.zh.is_empty() && !s.label.en.is_empty() && !han(&s.label.en), "{s:?}");
            }
        }
    }

    #[test]
    fn account_names_kept_in_chinese_get_their_english_name() {
        let mut c = Connection::open_in_memory().unwrap();
        crate::db::migrations().to_version(&mut c, 3).unwrap();
        for (id, owner, kind, label) in [
            ("p1:debit", "p1", "debit_card", "工商银行储蓄卡"),
            ("p1:yeb", "p1", "money_fund", "余额宝"),
            ("p1:mine", "p1", "debit_card", "测试员的卡"),
            (FEES, "sandbox", "fees", "Alipay fees"),
        ] {
            c.execute(
                "INSERT INTO accounts (id, owner, kind, label, credit_limit, created_at)
                 VALUES (?1, ?2, ?3, ?4, 0, '2026-01-01T00:00:00.000Z')",
                [id, owner, kind, label],
            )
            .unwrap();
        }
        crate::db::migrations().to_latest(&mut c).unwrap();
        let label = |id: &str| crate::model::account(&c, id).unwrap().unwrap().label;
        assert_eq!(label("p1:debit"), Bilingual::new("工商银行储蓄卡", "ICBC debit card"));
        assert_eq!(label("p1:yeb"), Bilingual::new("余额宝", "Yu'e Bao"));
        assert_eq!(label("p1:mine"), Bilingual::new("测试员的卡", "测试员的卡"));
        assert_eq!(label(FEES), Bilingual::new("支付宝手续费", "Alipay fees"));
    }

    #[test]
    fn an_unknown_account_kind_is_reported_not_read_as_another() {
        let c = crate::db::open(None).unwrap();
        c.execute(
            "INSERT INTO accounts (id, owner, kind, label, credit_limit, created_at)
             VALUES ('p1:x', 'p1', 'gold_bars', 'x', 0, '2026-01-01T00:00:00.000Z')",
            [],
        )
        .unwrap();
        let err = crate::model::accounts_of(&c, "p1").unwrap_err();
        assert!(err.to_string().contains("account kind \"gold_bars\""), "{err}");
    }
}
