//! What the shop reads from its database is never guessed: a status column accepts only its
//! vocabulary (CHECK constraints whose lists are the Rust enums' codes), and a value that got in
//! anyway — a damaged file, a hand edit, a newer build's status — is reported with its table, row
//! and column instead of being read as some default.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use haitao_shop::db;
use haitao_shop::sqlite::SqliteStore;
use haitao_shop::store::{OrderStore, PaymentStore, ReconciliationStore, SupportStore};
use haitao_shop_api::code::{Code, sql_list};
use haitao_shop_api::orders::{
    AttemptStatus, Carrier, HoldReason, OrderStatus, PayMode, PaymentFailure, RefundStatus, TrackingStage,
    Waybill,
};
use haitao_shop_api::support::{Author, TicketStatus, TicketTopic};
use rusqlite::Connection;
use rusqlite_migration::{M, Migrations};

fn table_sql(c: &Connection, table: &str) -> String {
    c.query_row("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?1", [table], |r| r.get(0))
        .unwrap()
}

fn assert_check<T: Code>(c: &Connection, table: &str, column: &str, nullable: bool) {
    let sql = table_sql(c, table);
    let list = sql_list(T::ALL);
    let check = if nullable {
        format!("CHECK ({column} IS NULL OR {column} IN ({list}))")
    } else {
        format!("CHECK ({column} IN ({list}))")
    };
    assert!(sql.contains(&check), "{table}.{column} should have {check}; the table is:\n{sql}");
}

#[test]
fn every_status_column_accepts_exactly_its_enums_codes() {
    let c = db::open_in_memory().unwrap();
    assert_check::<OrderStatus>(&c, "orders", "status", false);
    assert_check::<HoldReason>(&c, "orders", "hold_reason", true);
    assert_check::<AttemptStatus>(&c, "payment_attempts", "status", false);
    assert_check::<PayMode>(&c, "payment_attempts", "mode", false);
    assert_check::<PaymentFailure>(&c, "payment_attempts", "failure", true);
    assert_check::<RefundStatus>(&c, "refunds", "status", false);
    assert_check::<TrackingStage>(&c, "tracking_events", "stage", false);
    assert_check::<TicketTopic>(&c, "tickets", "topic", false);
    assert_check::<TicketStatus>(&c, "tickets", "status", false);
    assert_check::<Author>(&c, "ticket_messages", "author", false);
    assert_check::<haitao_shop_api::reconciliation::DifferenceKind>(
        &c,
        "reconciliation_differences",
        "kind",
        false,
    );
    // Payment methods carry their installment count: every code the enum can produce.
    let methods = table_sql(&c, "payment_attempts");
    for code in ["balance", "bank_card", "huabei", "huabei_3", "huabei_6", "huabei_12", "international_card"]
    {
        let method = haitao_shop_api::orders::PaymentMethod::parse_code(code).unwrap();
        assert_eq!(method.code(), code);
        assert!(methods.contains(&format!("'{code}'")), "{code} missing from payment_attempts.method");
    }
}

const ACCOUNT: &str = "INSERT INTO accounts (id, phone, password_hash, created_at)
     VALUES ('a1', '13800000000', 'x', '2026-12-01T00:00:00.000Z')";

const ADDRESS: &str = r#"{"id":"ad1","recipient":"张伟","phone":"13800000000","province":"北京市","city":"北京市","district":"朝阳区","street":"建国路 1 号"}"#;

fn order(status: &str, deadline: &str) -> String {
    format!(
        "INSERT INTO orders (id, account_id, status, idempotency_key, request_hash, orderer_name, orderer_id_number,
           quota_year, address_json, goods_fen, shipping_fen, tax_fen, dutiable_fen, total_fen, pay_deadline,
           created_at, updated_at, sync_seq)
         VALUES ('o1', 'a1', '{status}', 'k', 'h', '张伟', '110105198803151232', 2026, '{ADDRESS}', 100, 0, 9, 100, 109,
           '{deadline}', '2026-12-01T00:00:00.000Z', '2026-12-01T00:00:00.000Z', 1)"
    )
}

#[test]
fn the_database_refuses_a_status_outside_the_vocabulary() {
    let c = db::open_in_memory().unwrap();
    c.execute(ACCOUNT, []).unwrap();
    let err = c.execute(&order("shipped_twice", "2026-12-01T00:30:00.000Z"), []).unwrap_err();
    assert!(err.to_string().contains("CHECK constraint failed"), "{err}");
    c.execute(&order("awaiting_payment", "2026-12-01T00:30:00.000Z"), []).unwrap();
    let err = c.execute("UPDATE orders SET status = 'Paid' WHERE id = 'o1'", []).unwrap_err();
    assert!(err.to_string().contains("CHECK constraint failed"), "{err}");
}

/// A store over a database into which damaged values were written past the constraints.
fn damaged(order_status: &str, deadline: &str) -> SqliteStore {
    let c = db::open_in_memory().unwrap();
    c.pragma_update(None, "ignore_check_constraints", "ON").unwrap();
    c.execute(ACCOUNT, []).unwrap();
    c.execute(&order(order_status, deadline), []).unwrap();
    c.execute(
        "INSERT INTO tickets (id, account_id, order_id, topic, subject, status, created_at, updated_at)
         VALUES ('t1', 'a1', NULL, 'lost_in_space', 's', 'open', '2026-12-01T00:00:00.000Z', '2026-12-01T00:00:00.000Z')",
        [],
    )
    .unwrap();
    c.pragma_update(None, "ignore_check_constraints", "OFF").unwrap();
    SqliteStore::new(c)
}

#[test]
fn a_damaged_status_is_reported_with_its_row_not_guessed() {
    let store = damaged("shipped_twice", "2026-12-01T00:30:00.000Z");
    let err = store.order_core("o1").unwrap_err();
    let cause = err.cause.clone().unwrap_or_default();
    assert!(
        cause.contains(r#"orders row "o1", column status: unknown order status "shipped_twice""#),
        "{cause}"
    );
    // The whole order (the buyer's view) fails the same way rather than showing it as closed.
    let cause = store.order(Some("a1"), "o1").unwrap_err().cause.unwrap_or_default();
    assert!(cause.contains("unknown order status \"shipped_twice\""), "{cause}");

    let cause = store.ticket("a1", "t1").unwrap_err().cause.unwrap_or_default();
    assert!(
        cause.contains(r#"tickets row "t1", column topic: unknown ticket topic "lost_in_space""#),
        "{cause}"
    );
}

/// The gateway's time of a payment, kept for reconciliation, is read strictly too.
#[test]
fn a_damaged_gateway_time_is_reported_with_its_row() {
    let c = db::open_in_memory().unwrap();
    c.execute(ACCOUNT, []).unwrap();
    c.execute(&order("paid", "2026-12-01T00:30:00.000Z"), []).unwrap();
    c.execute(
        "INSERT INTO payment_attempts (id, order_id, out_trade_no, method, mode, amount_fen, status, return_url, created_at, updated_at, expires_at, gateway_paid_at)
         VALUES ('p1', 'o1', 'HT1', 'balance', 'in_app', 100, 'paid', 'http://127.0.0.1/r', '2026-12-01T00:00:00.000Z', '2026-12-01T00:00:00.000Z', '2026-12-01T00:15:00.000Z', '2026-12-01 08:00:00')",
        [],
    )
    .unwrap();
    let store = SqliteStore::new(c);
    let from =
        chrono::DateTime::parse_from_rfc3339("2026-11-30T16:00:00Z").unwrap().with_timezone(&chrono::Utc);
    let to = from + chrono::Duration::days(1);
    let cause = store.books(from, to, &["HT1".to_owned()], &[]).unwrap_err().cause.unwrap_or_default();
    assert!(
        cause.contains(r#"payment_attempts row "HT1", column gateway_paid_at: not an RFC 3339 timestamp: "2026-12-01 08:00:00""#),
        "{cause}"
    );
}

#[test]
fn a_damaged_timestamp_is_reported_not_read_as_1970() {
    let store = damaged("awaiting_payment", "yesterday-ish");
    let cause = store.order_core("o1").unwrap_err().cause.unwrap_or_default();
    assert!(
        cause.contains(r#"orders row "o1", column pay_deadline: not an RFC 3339 timestamp: "yesterday-ish""#),
        "{cause}"
    );
}

/// The schema before the status checks (migrations 1 and 2), with rows in it.
fn second_schema(path: &std::path::Path, status: &str) {
    let mut c = Connection::open(path).unwrap();
    Migrations::new(vec![
        M::up(include_str!("../migrations/001_init.sql")),
        M::up(include_str!("../migrations/002_address_limits.sql")),
    ])
    .to_latest(&mut c)
    .unwrap();
    c.execute(ACCOUNT, []).unwrap();
    c.execute(&order(status, "2026-12-01T00:30:00.000Z"), []).unwrap();
    c.execute(
        "INSERT INTO payment_attempts (id, order_id, out_trade_no, method, mode, amount_fen, status, return_url,
           created_at, updated_at, expires_at)
         VALUES ('p1', 'o1', 'T1', 'huabei_6', 'in_app', 109, 'redirected', 'haitao://pay',
           '2026-12-01T00:00:00.000Z', '2026-12-01T00:00:00.000Z', '2026-12-01T00:30:00.000Z')",
        [],
    )
    .unwrap();
    c.execute("UPDATE payment_attempts SET rowid = 41 WHERE id = 'p1'", []).unwrap();
}

#[test]
fn an_older_database_is_rebuilt_with_its_rows_rowids_and_references() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("shop.db");
    second_schema(&path, "awaiting_payment");
    Connection::open(&path)
        .unwrap()
        .execute("UPDATE orders SET waybill_no = 'HTX1', carrier = '海淘国际物流 Haitao Express'", [])
        .unwrap();
    let c = db::open(&path).unwrap();
    let v: i64 = c.pragma_query_value(None, "user_version", |r| r.get(0)).unwrap();
    assert_eq!(v, i64::try_from(db::known_version()).unwrap());
    let rowid: i64 =
        c.query_row("SELECT rowid FROM payment_attempts WHERE id = 'p1'", [], |r| r.get(0)).unwrap();
    assert_eq!(rowid, 41, "rowids order a payment's attempts");
    let fk: bool = c.pragma_query_value(None, "foreign_keys", |r| r.get(0)).unwrap();
    assert!(fk, "foreign keys are on again after migrating");
    // The rebuilt tables still refuse an attempt of an order that does not exist.
    let err = c
        .execute(
            "INSERT INTO payment_attempts (id, order_id, out_trade_no, method, mode, amount_fen, status, return_url,
               created_at, updated_at, expires_at)
             VALUES ('p2', 'nope', 'T2', 'balance', 'in_app', 1, 'started', 'x', 'a', 'b', 'c')",
            [],
        )
        .unwrap_err();
    assert!(err.to_string().contains("FOREIGN KEY"), "{err}");
    let store = SqliteStore::new(c);
    let a = store.attempt("p1").unwrap().unwrap();
    assert_eq!((a.status, a.mode), (AttemptStatus::Redirected, PayMode::InApp));
    assert_eq!(store.order_core("o1").unwrap().unwrap().status, OrderStatus::AwaitingPayment);
    // A carrier stored by its display name is stored by its code since version 5.
    let waybill = store.order(Some("a1"), "o1").unwrap().unwrap().waybill;
    assert_eq!(waybill, Some(Waybill { number: "HTX1".into(), carrier: Carrier::HaitaoExpress }));
}

#[test]
fn an_unknown_carrier_is_reported_with_its_row() {
    let c = db::open_in_memory().unwrap();
    c.execute(ACCOUNT, []).unwrap();
    c.execute(&order("shipped", "2026-12-01T00:30:00.000Z"), []).unwrap();
    c.execute("UPDATE orders SET waybill_no = 'HTX1', carrier = 'pigeon_post'", []).unwrap();
    let store = SqliteStore::new(c);
    let cause = store.order(Some("a1"), "o1").unwrap_err().cause.unwrap_or_default();
    assert!(cause.contains(r#"column carrier: unknown carrier "pigeon_post""#), "{cause}");
}

#[test]
fn an_older_database_holding_an_unknown_status_is_left_as_it_was() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("shop.db");
    second_schema(&path, "teleported");
    let err = db::open(&path).unwrap_err();
    assert!(matches!(err, db::DbError::Migration(_)), "{err}");
    let c = Connection::open(&path).unwrap();
    let v: i64 = c.pragma_query_value(None, "user_version", |r| r.get(0)).unwrap();
    assert_eq!(v, 2, "the failed migration changed nothing");
    let status: String = c.query_row("SELECT status FROM orders WHERE id = 'o1'", [], |r| r.get(0)).unwrap();
    assert_eq!(status, "teleported");
}
