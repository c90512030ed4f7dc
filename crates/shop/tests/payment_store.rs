//! Applying a confirmed payment is one store step with what follows from it: the paid event of an
//! order that keeps it, or the refund of a payment that cannot be kept. A refund that cannot be
//! written leaves the payment unapplied (the notification is not acknowledged and comes again),
//! never a duplicate payment recorded as paid with no refund.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use chrono::{DateTime, Utc};
use haitao_shop::db;
use haitao_shop::sqlite::SqliteStore;
use haitao_shop::store::{FulfilmentStore, OrderStore, PaymentApplied, PaymentStore, RefundRow, RefundStore};
use haitao_shop_api::catalog::Localized;
use haitao_shop_api::orders::{
    AttemptStatus, OrderStatus, PayMode, PaymentAttempt, PaymentMethod, RefundStatus, TrackingEvent,
    TrackingStage,
};
use haitao_shop_api::{Currency, Money};

const ADDRESS: &str = r#"{"id":"ad1","recipient":"张伟","phone":"13800000000","province":"北京市","city":"北京市","district":"朝阳区","street":"建国路 1 号"}"#;

fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

/// A store with one account and awaiting-payment orders `o1` and `o2` of ¥206.80 each.
fn store() -> SqliteStore {
    let c = db::open_in_memory().unwrap();
    c.execute(
        "INSERT INTO accounts (id, phone, password_hash, created_at) VALUES ('a1', '13800000000', 'x', '2026-12-01T00:00:00.000Z')",
        [],
    )
    .unwrap();
    for (seq, id) in ["o1", "o2"].iter().enumerate() {
        c.execute(
            "INSERT INTO orders (id, account_id, status, idempotency_key, request_hash, orderer_name, orderer_id_number,
               quota_year, address_json, goods_fen, shipping_fen, tax_fen, dutiable_fen, total_fen, pay_deadline,
               created_at, updated_at, sync_seq)
             VALUES (?1, 'a1', 'awaiting_payment', ?1, 'h', '张伟', '110105198803151232', 2026, ?2, 18960, 0, 1720,
               18960, 20680, '2026-12-01T00:30:00.000Z', '2026-12-01T00:00:00.000Z', '2026-12-01T00:00:00.000Z', ?3)",
            rusqlite::params![id, ADDRESS, i64::try_from(seq).unwrap() + 1],
        )
        .unwrap();
    }
    SqliteStore::new(c)
}

fn attempt(id: &str, order: &str) -> PaymentAttempt {
    let now = at("2026-12-01T00:01:00.000Z");
    PaymentAttempt {
        id: id.into(),
        order_id: order.into(),
        out_trade_no: format!("HT{id}"),
        method: PaymentMethod::Balance,
        mode: PayMode::InApp,
        amount: Money::from_minor(20680, Currency::Cny),
        status: AttemptStatus::Redirected,
        failure: None,
        cashier_url: None,
        qr_code: None,
        return_url: "haitao://pay".into(),
        trade_no: None,
        created_at: now,
        updated_at: now,
        expires_at: at("2026-12-01T00:16:00.000Z"),
    }
}

fn paid_event(now: DateTime<Utc>) -> TrackingEvent {
    TrackingEvent {
        at: now,
        stage: TrackingStage::Paid,
        description: Localized { zh: "付款成功".into(), en: "Paid".into() },
        location: Localized { zh: "海淘".into(), en: "Haitao".into() },
    }
}

/// The refund the caller offers; the store fills in its order, payment, amount and reason.
fn offered(id: &str, a: &PaymentAttempt) -> RefundRow {
    RefundRow {
        id: id.into(),
        order_id: String::new(),
        attempt_id: String::new(),
        out_request_no: format!("AUTO{}", a.out_trade_no),
        amount: Money::from_minor(1, Currency::Cny),
        reason: String::new(),
        status: RefundStatus::Pending,
    }
}

#[test]
fn a_kept_payment_gets_its_event_and_a_duplicate_its_refund_in_the_same_step() {
    let s = store();
    let (first, second) = (attempt("p1", "o1"), attempt("p2", "o1"));
    s.insert_attempt(&first).unwrap();
    s.insert_attempt(&second).unwrap();
    let now = at("2026-12-01T00:05:00.000Z");

    let (outcome, refund) =
        s.apply_payment("p1", "T1", None, &paid_event(now), offered("RF1", &first), now).unwrap();
    assert_eq!((outcome, refund), (PaymentApplied::Paid, None));
    assert_eq!(s.order_core("o1").unwrap().unwrap().status, OrderStatus::Paid);
    assert_eq!(s.tracking("o1").unwrap().iter().map(|e| e.stage).collect::<Vec<_>>(), [TrackingStage::Paid]);

    let (outcome, refund) =
        s.apply_payment("p2", "T2", None, &paid_event(now), offered("RF2", &second), now).unwrap();
    assert_eq!(outcome, PaymentApplied::Duplicate);
    let refund = refund.expect("a duplicate payment is refunded");
    assert_eq!(
        (refund.order_id.as_str(), refund.attempt_id.as_str(), refund.amount.minor(), refund.reason.as_str()),
        ("o1", "p2", 20680, "duplicate payment")
    );
    assert_eq!(s.refunds_of("o1").unwrap(), std::slice::from_ref(&refund));
    assert_eq!(s.attempt("p2").unwrap().unwrap().status, AttemptStatus::Paid);
    assert_eq!(s.tracking("o1").unwrap().len(), 1, "no second paid event");

    // The same notification again: nothing more.
    let again = s.apply_payment("p2", "T2", None, &paid_event(now), offered("RF3", &second), now).unwrap();
    assert_eq!(again, (PaymentApplied::AlreadyApplied, None));
    assert_eq!(s.refunds_of("o1").unwrap(), [refund]);
}

#[test]
fn a_refund_that_cannot_be_written_leaves_the_duplicate_unapplied() {
    let s = store();
    let (first, second) = (attempt("p1", "o1"), attempt("p2", "o1"));
    s.insert_attempt(&first).unwrap();
    s.insert_attempt(&second).unwrap();
    let now = at("2026-12-01T00:05:00.000Z");
    s.apply_payment("p1", "T1", None, &paid_event(now), offered("RF1", &first), now).unwrap();
    // A refund id already taken (by another order's refund) makes the refund's write fail.
    let other = attempt("q1", "o2");
    s.insert_attempt(&other).unwrap();
    s.apply_payment("q1", "T3", None, &paid_event(now), offered("RF9", &other), now).unwrap();
    s.insert_refund(
        &RefundRow {
            id: "RF-TAKEN".into(),
            order_id: "o2".into(),
            attempt_id: "q1".into(),
            out_request_no: "R1".into(),
            amount: Money::from_minor(100, Currency::Cny),
            reason: "asked".into(),
            status: RefundStatus::Pending,
        },
        now,
    )
    .unwrap();

    assert!(s.apply_payment("p2", "T2", None, &paid_event(now), offered("RF-TAKEN", &second), now).is_err());
    // Nothing of it was applied: the payment is not recorded as paid without its refund, so the
    // next notification or query applies it whole.
    assert_eq!(s.attempt("p2").unwrap().unwrap().status, AttemptStatus::Redirected);
    assert!(s.refunds_of("o1").unwrap().is_empty());
    let (outcome, refund) =
        s.apply_payment("p2", "T2", None, &paid_event(now), offered("RF2", &second), now).unwrap();
    assert_eq!(outcome, PaymentApplied::Duplicate);
    assert_eq!(refund.map(|r| r.amount.minor()), Some(20680));
}
