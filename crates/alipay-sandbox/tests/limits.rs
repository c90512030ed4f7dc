//! The sandbox's payment password lock: it holds against the right password, a fingerprint and
//! another trade, and ends on the sandbox clock. (Its 413 on oversized gateway requests is tested
//! with the shop's in `crates/shop/tests/limits.rs`.)
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::harness;
use haitao_alipay::api::{PagePay, Query, TradeRef};
use haitao_alipay::{Currency, Money};
use serde_json::{Value, json};

const BUYER: &str = "zhangwei@sandbox.haitao";

async fn pay(h: &common::Harness, out: &str, password: Option<&str>) -> (u16, Value) {
    let mut body = json!({"out_trade_no": out, "persona": BUYER, "channel": "balance"});
    if let Some(p) = password {
        body["password"] = json!(p);
    }
    h.post("sandbox/api/pay", body).await
}

async fn balance_fen(h: &common::Harness) -> i64 {
    let accounts = h.get(&format!("sandbox/api/personas/{BUYER}/accounts")).await;
    accounts
        .as_array()
        .and_then(|a| a.iter().find(|x| x["kind"] == "balance"))
        .and_then(|x| x["balance"].as_i64())
        .unwrap_or_else(|| panic!("no balance in {accounts}"))
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
        let (s, v) = pay(&h, "HT-LOCK-1", Some("000000")).await;
        assert_eq!((s, v["error"]["error"].as_str()), (422, Some("wrong_password")), "{v}");
        assert_eq!(v["error"]["remaining"], json!(remaining), "{v}");
    }
    let (s, v) = pay(&h, "HT-LOCK-1", Some("000000")).await;
    assert_eq!((s, v["error"]["error"].as_str()), (422, Some("locked")), "{v}");
    let until = v["error"]["until"].as_str().unwrap().to_owned();

    // Locked: the right password, a fingerprint, and another trade are all refused, with the same
    // end of the lock, and no money moves.
    for (out, password) in [("HT-LOCK-1", None), ("HT-LOCK-1", Some("fingerprint")), ("HT-LOCK-2", None)] {
        let (s, v) = pay(&h, out, password).await;
        assert_eq!((s, v["error"]["error"].as_str()), (422, Some("locked")), "{out} {password:?}: {v}");
        assert_eq!(v["error"]["until"].as_str(), Some(until.as_str()));
    }
    assert_eq!(balance_fen(&h).await, before);

    // A minute before the end of the three hours: still locked. Two minutes later: the right
    // password pays, once.
    h.advance(3 * 3600 - 60).await;
    let (s, v) = pay(&h, "HT-LOCK-1", None).await;
    assert_eq!((s, v["error"]["error"].as_str()), (422, Some("locked")), "{v}");
    h.advance(120).await;
    let (s, v) = pay(&h, "HT-LOCK-1", None).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["charged_fen"], json!(1_000));
    assert_eq!(balance_fen(&h).await, before - 1_000);
    let q = h.client.execute(&Query::new(TradeRef::out_trade_no("HT-LOCK-1"))).await.unwrap();
    assert!(q.trade_status.is_paid());

    // The lock's count starts again from zero after it ended: one wrong try is not a lock.
    let (s, v) = pay(&h, "HT-LOCK-2", Some("000000")).await;
    assert_eq!((s, v["error"]["remaining"].as_i64()), (422, Some(2)), "{v}");
    h.ledger_conserved().await;
}
