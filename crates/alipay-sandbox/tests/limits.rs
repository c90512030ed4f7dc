//! The sandbox's payment password lock: it holds against the right password, a fingerprint and
//! another trade, and ends on the sandbox clock. (Its 413 on oversized gateway requests is tested
//! with the shop's in `crates/shop/tests/limits.rs`.)
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::harness;
use haitao_alipay::api::{PagePay, Query, TradeRef};
use haitao_alipay::{Currency, Money};
use haitao_sandbox_api::{Account, AccountKind, PayAnswer, PayError, PayRequest, PayWith, path};

const BUYER: &str = "zhangwei@sandbox.haitao";

async fn pay(h: &common::Harness, out: &str, password: Option<&str>) -> PayAnswer {
    let mut req = PayRequest::new(out, BUYER, PayWith::Balance);
    req.password = password.map(str::to_owned);
    let (s, v) = h.pay(&req).await;
    let answer: PayAnswer = serde_json::from_value(v).unwrap();
    assert_eq!(s, if answer.paid().is_some() { 200 } else { 422 }, "{answer:?}");
    answer
}

async fn balance_fen(h: &common::Harness) -> i64 {
    let accounts: Vec<Account> = h.get_as(&path::persona_accounts(BUYER)).await;
    accounts
        .iter()
        .find(|x| x.kind == AccountKind::Balance)
        .map(|x| x.balance)
        .unwrap_or_else(|| panic!("no balance in {accounts:?}"))
}

fn locked_until(a: &PayAnswer) -> String {
    match a.refused() {
        Some(PayError::Locked { until }) => until.clone(),
        _ => panic!("not locked: {a:?}"),
    }
}

#[tokio::test]
async fn a_locked_buyer_cannot_pay_with_the_right_password_until_the_lock_ends() {
    let h = harness().await;
    for out in ["HT-LOCK-1", "HT-LOCK-2"] {
        let r = h.open_page_pay(&PagePay::new(out, Money::from_minor(1_000, Currency::Cny), "order")).await;
        assert_eq!(r.status().as_u16(), 303);
    }
    let before = balance_fen(&h).await;

    // Two wrong tries count down; the third locks.
    for remaining in [2, 1] {
        let a = pay(&h, "HT-LOCK-1", Some("000000")).await;
        assert_eq!(a.refused(), Some(&PayError::WrongPassword { remaining }), "{a:?}");
    }
    let until = locked_until(&pay(&h, "HT-LOCK-1", Some("000000")).await);

    // Locked: the right password, a fingerprint, and another trade are all refused, with the same
    // end of the lock, and no money moves.
    for (out, password) in
        [("HT-LOCK-1", None), ("HT-LOCK-1", Some(PayRequest::FINGERPRINT)), ("HT-LOCK-2", None)]
    {
        assert_eq!(locked_until(&pay(&h, out, password).await), until, "{out} {password:?}");
    }
    assert_eq!(balance_fen(&h).await, before);

    // A minute before the end of the three hours: still locked. Two minutes later: the right
    // password pays, once.
    h.advance(3 * 3600 - 60).await;
    locked_until(&pay(&h, "HT-LOCK-1", None).await);
    h.advance(120).await;
    let a = pay(&h, "HT-LOCK-1", None).await;
    assert_eq!(a.paid().map(|p| p.charged_fen), Some(1_000), "{a:?}");
    assert_eq!(balance_fen(&h).await, before - 1_000);
    let q = h.client.execute(&Query::new(TradeRef::out_trade_no("HT-LOCK-1"))).await.unwrap();
    assert!(q.trade_status.is_paid());

    // The lock's count starts again from zero after it ended: one wrong try is not a lock.
    let a = pay(&h, "HT-LOCK-2", Some("000000")).await;
    assert_eq!(a.refused(), Some(&PayError::WrongPassword { remaining: 2 }), "{a:?}");
    h.ledger_conserved().await;
}
