//! The daily reconciliation against the sandbox's real bill: a day of sales and refunds matches the
//! books; each kind of difference, forced the way it happens to merchants (a payment the shop
//! never heard of, a sale at a till on the same app, a refund made in Alipay's console, a refund
//! the books record but Alipay never made, a payment the books record but Alipay never took), is
//! found, listed by the admin endpoint and gone once the books are right.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use chrono::{DateTime, NaiveDate, Utc};
use common::{LI, World, ZHANG, world_with};
use haitao_alipay::api::{BarcodePay, Refund, TradeRef};
use haitao_alipay::money::{Currency, Money};
use haitao_alipay::time::{Clock, shanghai};
use haitao_sandbox_api::{ForceRequest, Outcome, PayRequest, PayWith, path};
use haitao_shop::KeySource;
use haitao_shop::reconcile::day_bounds;
use haitao_shop::store::RefundRow;
use haitao_shop_api::catalog::Localized;
use haitao_shop_api::orders::{RefundStatus, TrackingEvent, TrackingStage};
use haitao_shop_api::reconciliation::{Difference, DifferenceKind, Reconciliation};
use haitao_shop_api::secret::SecretString;
use serde_json::{Value, json};

const TOKEN: &str = "reconciliation-admin-token-0123456789";
const PERSONA: &str = "zhangwei@sandbox.haitao";
const RETURN: &str = "http://127.0.0.1:45678/haitao/return";

async fn shop_with_admin() -> World {
    world_with(|c| {
        c.admin_token = Some(KeySource::Inline(SecretString::new(TOKEN)));
        // Jobs run only when a test runs them: nothing learns of a payment behind its back.
        c.background_jobs = false;
    })
    .await
}

fn cny(fen: i64) -> Money {
    Money::from_minor(fen, Currency::Cny)
}

/// An order of `who` with a payment attempt by balance, started in the app (not yet paid).
async fn started(w: &World, phone: &str, who: (&str, &str), key: &str) -> (common::Buyer, Value, Value) {
    let b = w.buyer(phone, who.0, who.1).await;
    let p = w.product_between(5_000, 50_000).await;
    w.add_to_cart(&b, p["id"].as_str().unwrap(), 1).await;
    let o = w.order(&b, key).await;
    assert_eq!(o.status, 201, "{}", o.body);
    let r = w
        .post(
            &format!("orders/{}/payments", o.body["id"].as_str().unwrap()),
            &b.token,
            json!({"method": {"kind": "balance"}, "mode": "in_app", "return_url": RETURN}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    (b, o.body, r.body)
}

/// Pays an attempt from Zhang Wei's balance at the sandbox.
async fn pay(w: &World, attempt: &Value) {
    w.open_cashier(attempt).await;
    let req = PayRequest::new(attempt["out_trade_no"].as_str().unwrap(), PERSONA, PayWith::Balance);
    let (s, v) = w.sandbox_post(path::PAY, &req).await;
    assert_eq!(s, 200, "{v}");
}

/// The buyer's app asks the shop to check the payment (as after the return).
async fn confirm(w: &World, b: &common::Buyer, attempt: &Value) {
    let r =
        w.post(&format!("payments/{}/confirm", attempt["id"].as_str().unwrap()), &b.token, json!({})).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["status"], json!("paid"), "{}", r.body);
}

async fn paid(w: &World, phone: &str, who: (&str, &str), key: &str) -> (common::Buyer, Value, Value) {
    let (b, o, a) = started(w, phone, who, key).await;
    pay(w, &a).await;
    confirm(w, &b, &a).await;
    (b, o, a)
}

fn total(order: &Value) -> Money {
    cny(order["totals"]["total"]["minor"].as_i64().unwrap())
}

/// The sandbox's day (Asia/Shanghai), the day its bill files what happens now.
fn gateway_day(w: &World) -> NaiveDate {
    w.sandbox_clock.now().with_timezone(&shanghai()).date_naive()
}

/// Moves both clocks to 11:00 of the next day (Alipay's bill of today is out by then); returns
/// the day that ended.
fn next_morning(w: &World) -> NaiveDate {
    let day = gateway_day(w);
    let target = day_bounds(day).1 + chrono::Duration::hours(11);
    assert!(w.sandbox.state.advance_clock(target - w.sandbox_clock.now()));
    w.clock.advance(target - w.clock.now());
    day
}

async fn admin(w: &World, method: reqwest::Method, path: &str, token: Option<&str>) -> (u16, Value) {
    let mut rb = w.http.request(method, w.url(path));
    if let Some(t) = token {
        rb = rb.bearer_auth(t);
    }
    let r = rb.send().await.unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

async fn reconcile(w: &World, day: NaiveDate) -> Reconciliation {
    let (s, v) = admin(w, reqwest::Method::POST, &format!("admin/reconciliations/{day}"), Some(TOKEN)).await;
    assert_eq!(s, 200, "{v}");
    serde_json::from_value(v).unwrap()
}

fn sorted(mut d: Vec<Difference>) -> Vec<Difference> {
    d.sort_by(|a, b| {
        (a.kind.as_str(), &a.out_trade_no, &a.out_request_no).cmp(&(
            b.kind.as_str(),
            &b.out_trade_no,
            &b.out_request_no,
        ))
    });
    d
}

/// A refund the books record as done at `at` (the gateway's time), without asking the gateway.
async fn booked_refund(
    w: &World,
    order: &Value,
    attempt: &Value,
    request: &str,
    fen: i64,
    at: DateTime<Utc>,
) {
    let row = RefundRow {
        id: format!("RF-{request}"),
        order_id: order["id"].as_str().unwrap().to_owned(),
        attempt_id: attempt["id"].as_str().unwrap().to_owned(),
        out_request_no: request.to_owned(),
        amount: cny(fen),
        reason: "entered by hand".into(),
        status: RefundStatus::Pending,
    };
    let now = w.clock.now();
    w.shop
        .shop
        .blocking(move |s| {
            s.insert_refund(&row, now)?;
            s.complete_refund(&row.id, Some(at), now)
        })
        .await
        .unwrap();
}

#[tokio::test]
async fn a_day_of_sales_and_refunds_matches_the_books_and_the_job_records_it() {
    let w = shop_with_admin().await;
    let (zb, zo, za) = paid(&w, "13800007001", ZHANG, "rec-day-1").await;
    let (_, lo, la) = paid(&w, "13800007002", LI, "rec-day-2").await;
    let (zo_out, lo_out) =
        (za["out_trade_no"].as_str().unwrap().to_owned(), la["out_trade_no"].as_str().unwrap().to_owned());
    let r = w
        .post(
            &format!("orders/{}/refunds", zo["id"].as_str().unwrap()),
            &zb.token,
            json!({"amount": {"minor": 1_000, "currency": "CNY"}, "reason": "尺码不合适"}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["refunds"][0]["status"], json!("succeeded"), "{}", r.body);

    let day = next_morning(&w);
    // The books file both payments and the refund under the gateway's day by the gateway's own
    // times (from its notification or query, and its refund answer).
    let (from, to) = day_bounds(day);
    let books = w.shop.shop.blocking(move |s| s.books(from, to, &[], &[])).await.unwrap();
    let mut outs: Vec<&str> = books.payments.iter().map(|p| p.out_trade_no.as_str()).collect();
    outs.sort_unstable();
    let mut want = [zo_out.as_str(), lo_out.as_str()];
    want.sort_unstable();
    assert_eq!(outs, want, "{books:?}");
    assert_eq!(books.refunds.len(), 1, "{books:?}");
    assert!(books.payments.iter().all(|p| p.gateway_paid_at.is_some_and(|t| from <= t && t < to)));
    // Before anything ran, the day has no result.
    let (s, _) = admin(&w, reqwest::Method::GET, &format!("admin/reconciliations/{day}"), Some(TOKEN)).await;
    assert_eq!(s, 404);
    // The morning's job downloads the bill and compares it.
    w.run_jobs().await;
    let (s, v) = admin(&w, reqwest::Method::GET, &format!("admin/reconciliations/{day}"), Some(TOKEN)).await;
    assert_eq!(s, 200, "{v}");
    let rec: Reconciliation = serde_json::from_value(v).unwrap();
    assert_eq!(rec.day, day);
    assert_eq!((rec.payments, rec.refunds), (2, 1), "{rec:?}");
    assert_eq!(rec.income, total(&zo).checked_add(total(&lo)).unwrap());
    assert_eq!(rec.refunded, cny(1_000));
    assert!(rec.differences.is_empty(), "{:?}", rec.differences);
    assert!(rec.bill_file.ends_with(&format!("_{}.csv.zip", day.format("%Y%m%d"))), "{}", rec.bill_file);
    // Running the job again the same morning asks for nothing more.
    w.run_jobs().await;
    let (_, list) = admin(&w, reqwest::Method::GET, "admin/reconciliations", Some(TOKEN)).await;
    assert_eq!(list["reconciled"].as_array().map(Vec::len), Some(1), "{list}");
    assert_eq!(list["failing"], json!([]), "{list}");

    // Today's bill is not out: asking for it is refused, nothing is recorded.
    let today = gateway_day(&w);
    let (s, v) =
        admin(&w, reqwest::Method::POST, &format!("admin/reconciliations/{today}"), Some(TOKEN)).await;
    assert_eq!(s, 409, "{v}");

    // Only the admin token opens the endpoints.
    for token in [None, Some("reconciliation-admin-token-0123456788"), Some("")] {
        let (s, v) = admin(&w, reqwest::Method::GET, "admin/reconciliations", token).await;
        assert_eq!(s, 401, "{token:?}: {v}");
        assert_eq!(v["code"], json!("unauthorized"), "{v}");
    }
    let (s, _) = admin(&w, reqwest::Method::GET, "admin/reconciliations/2026-13-01", Some(TOKEN)).await;
    assert_eq!(s, 422);
    // The token is checked before anything else of the request is read.
    let (s, _) = admin(&w, reqwest::Method::GET, "admin/reconciliations?limit=oops", None).await;
    assert_eq!(s, 401);
    let r = w
        .http
        .get(w.url("admin/reconciliations"))
        .header("authorization", format!("bEaReR {TOKEN}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200, "the scheme's name is not case-sensitive");
    // Another method says nothing without the token either.
    let (s, _) = admin(&w, reqwest::Method::PUT, "admin/reconciliations", None).await;
    assert_eq!(s, 401);
    let (s, _) = admin(&w, reqwest::Method::PUT, "admin/reconciliations", Some(TOKEN)).await;
    assert_eq!(s, 405);
}

/// A log kept in memory, for reading what was logged.
#[derive(Clone, Default)]
struct Log(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl Log {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

impl std::io::Write for Log {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Log {
    type Writer = Log;

    fn make_writer(&'a self) -> Log {
        self.clone()
    }
}

async fn list(w: &World) -> Value {
    admin(w, reqwest::Method::GET, "admin/reconciliations", Some(TOKEN)).await.1
}

/// The morning job catches up on missed days one per pass, oldest first; a day it cannot have
/// yet is listed as failing and tried again after its pause, while the days after it go on.
#[tokio::test]
async fn the_job_catches_up_day_by_day_and_lists_what_it_could_not_do() {
    let w = shop_with_admin().await;
    paid(&w, "13800007201", ZHANG, "rec-job-1").await;
    let first = next_morning(&w);
    w.run_jobs().await;
    let days = |v: &Value| -> Vec<String> {
        v["reconciled"].as_array().unwrap().iter().map(|r| r["day"].as_str().unwrap().to_owned()).collect()
    };
    assert_eq!(days(&list(&w).await), [first.to_string()], "a new shop starts at the latest day");

    // Three days pass with the shop stopped: the next passes take them one by one, oldest first.
    let by = chrono::Duration::days(3);
    assert!(w.sandbox.state.advance_clock(by));
    w.clock.advance(by);
    let d = |n: u64| (first + chrono::Days::new(n)).to_string();
    w.run_jobs().await;
    assert_eq!(days(&list(&w).await), [d(1), d(0)]);
    w.run_jobs().await;
    w.run_jobs().await;
    assert_eq!(days(&list(&w).await), [d(3), d(2), d(1), d(0)]);
    w.run_jobs().await;
    assert_eq!(days(&list(&w).await).len(), 4, "nothing more to do");

    // A bill that cannot be had: the shop's clock runs a day ahead of Alipay's, which has not
    // finished that day. Listed as failing; the job waits its pause before asking again instead
    // of asking at every pass, and takes the day once the bill is out.
    w.clock.advance(chrono::Duration::days(1));
    w.run_jobs().await;
    let v = list(&w).await;
    assert_eq!(v["failing"][0]["day"], json!(d(4)), "{v}");
    assert_eq!(v["failing"][0]["tries"], json!(1), "{v}");
    assert!(v["failing"][0]["last_error"].as_str().unwrap().contains("no bill"), "{v}");
    w.run_jobs().await;
    assert_eq!(list(&w).await["failing"][0]["tries"], json!(1), "no second try within the pause");
    assert!(w.sandbox.state.advance_clock(chrono::Duration::days(1)));
    w.clock.advance(chrono::Duration::minutes(16));
    w.run_jobs().await;
    let v = list(&w).await;
    assert_eq!(v["failing"], json!([]), "{v}");
    assert_eq!(days(&v)[0], d(4));
}

#[tokio::test]
async fn without_an_admin_token_the_endpoints_do_not_exist() {
    let w = world_with(|_| {}).await;
    for path in ["admin/reconciliations", "admin/reconciliations/2026-12-01"] {
        for method in [reqwest::Method::GET, reqwest::Method::POST, reqwest::Method::DELETE] {
            let (s, _) = admin(&w, method.clone(), path, Some(TOKEN)).await;
            assert_eq!(s, 404, "{method} {path}");
        }
    }
}

#[tokio::test]
async fn each_kind_of_difference_is_found_and_goes_once_the_books_are_right() {
    let w = shop_with_admin().await;
    // The first day: two orders paid, both reconciled clean.
    let (_, ao, aa) = paid(&w, "13800007101", ZHANG, "rec-diff-a").await;
    let (_, bo, ba) = paid(&w, "13800007102", LI, "rec-diff-b").await;
    let first = next_morning(&w);
    assert!(reconcile(&w, first).await.differences.is_empty());

    let at = w.sandbox_clock.now();
    // Missing payment: paid at Alipay, its notification lost, the buyer never came back.
    let (mut cb, co, ca) = started(&w, "13800007103", ZHANG, "rec-diff-c").await;
    let c_out = ca["out_trade_no"].as_str().unwrap().to_owned();
    let (s, _) = w.sandbox_post(path::SCENARIOS, &ForceRequest::order(&c_out, Outcome::NotifyDrop)).await;
    assert!(s < 300);
    pay(&w, &ca).await;
    // Unknown trade: a sale at a till scanning a payment code, on the same Alipay app.
    let code: Value = w.sandbox_get(&format!("sandbox/api/personas/{PERSONA}/payment-code")).await;
    let till =
        BarcodePay::new("TILL-20261207-1", code["auth_code"].as_str().unwrap(), cny(1_234), "门店销售");
    w.shop.shop.alipay.execute(&till).await.unwrap();
    // Unknown refund: a refund made in Alipay's merchant console.
    let a_out = aa["out_trade_no"].as_str().unwrap().to_owned();
    let console = Refund::new(TradeRef::out_trade_no(a_out.clone()), cny(100), "CONSOLE-1");
    assert_eq!(w.shop.shop.alipay.execute(&console).await.unwrap().fund_change, "Y");
    // Amount mismatch: a console refund of ¥2.00 entered in the books as ¥1.50.
    let typo = Refund::new(TradeRef::out_trade_no(a_out.clone()), cny(200), "CONSOLE-2");
    assert_eq!(w.shop.shop.alipay.execute(&typo).await.unwrap().fund_change, "Y");
    booked_refund(&w, &ao, &aa, "CONSOLE-2", 150, at).await;
    // Refund missing: the books say ¥1.00 went back to Li Na; Alipay never moved it.
    booked_refund(&w, &bo, &ba, "BOOKS-ONLY-1", 100, at).await;
    // Payment not in the bill: the books record a payment Alipay never took.
    let (_, eo, ea) = started(&w, "13800007105", LI, "rec-diff-e").await;
    let event = TrackingEvent {
        at,
        stage: TrackingStage::Paid,
        description: Localized { zh: "付款".into(), en: "Paid".into() },
        location: Localized { zh: "海淘".into(), en: "Haitao".into() },
    };
    let auto = RefundRow {
        id: "RF-AUTO-E".into(),
        order_id: String::new(),
        attempt_id: String::new(),
        out_request_no: "AUTO-E".into(),
        amount: cny(0),
        reason: String::new(),
        status: RefundStatus::Pending,
    };
    let (eid, now) = (ea["id"].as_str().unwrap().to_owned(), w.clock.now());
    w.shop
        .shop
        .blocking(move |s| s.apply_payment(&eid, "2026FORGED0001", Some(at), &event, auto, now))
        .await
        .unwrap();

    let second = next_morning(&w);
    // What the shop logs as it compares (this test's thread only).
    let log = Log::default();
    let subscriber = tracing_subscriber::fmt().with_writer(log.clone()).with_ansi(false).finish();
    let guard = tracing::subscriber::set_default(subscriber);
    let rec = reconcile(&w, second).await;
    drop(guard);
    let logged = log.text();
    let lines: Vec<&str> = logged.lines().filter(|l| l.contains("the bill and the books differ")).collect();
    assert_eq!(lines.len(), 6, "one error line per difference:\n{logged}");
    assert!(lines.iter().all(|l| l.contains("ERROR") && l.contains(&second.to_string())), "{lines:?}");
    assert!(
        lines.iter().any(|l| l.contains("kind=refund_missing")
            && l.contains("out_request_no=BOOKS-ONLY-1 books=1.00 CNY bill=-")),
        "{lines:?}"
    );
    let b_out = ba["out_trade_no"].as_str().unwrap().to_owned();
    let e_out = ea["out_trade_no"].as_str().unwrap().to_owned();
    let d = |kind, out: &str, request: Option<&str>, books: Option<i64>, bill: Option<i64>| Difference {
        kind,
        out_trade_no: out.to_owned(),
        out_request_no: request.map(str::to_owned),
        books: books.map(cny),
        bill: bill.map(cny),
    };
    let expected = sorted(vec![
        d(DifferenceKind::MissingPayment, &c_out, None, None, Some(total(&co).minor())),
        d(DifferenceKind::UnknownTrade, "TILL-20261207-1", None, None, Some(1_234)),
        d(DifferenceKind::UnknownRefund, &a_out, Some("CONSOLE-1"), None, Some(100)),
        d(DifferenceKind::AmountMismatch, &a_out, Some("CONSOLE-2"), Some(150), Some(200)),
        d(DifferenceKind::RefundMissing, &b_out, Some("BOOKS-ONLY-1"), Some(100), None),
        d(DifferenceKind::PaymentNotInBill, &e_out, None, Some(total(&eo).minor()), None),
    ]);
    assert_eq!(sorted(rec.differences.clone()), expected);
    assert_eq!((rec.payments, rec.refunds), (2, 2), "the bill: C and the till; two console refunds");
    // Kept as found.
    let (_, v) =
        admin(&w, reqwest::Method::GET, &format!("admin/reconciliations/{second}"), Some(TOKEN)).await;
    let kept: Reconciliation = serde_json::from_value(v).unwrap();
    assert_eq!(sorted(kept.differences), expected);

    // The buyer comes back: the shop learns of C's payment; a second run no longer lists it.
    w.refresh(&mut cb).await;
    confirm(&w, &cb, &ca).await;
    let again = reconcile(&w, second).await;
    let rest: Vec<Difference> =
        expected.iter().filter(|d| d.kind != DifferenceKind::MissingPayment).cloned().collect();
    assert_eq!(sorted(again.differences), rest, "only the missing payment is gone");
    let (_, list) = admin(&w, reqwest::Method::GET, "admin/reconciliations", Some(TOKEN)).await;
    let days: Vec<&str> =
        list["reconciled"].as_array().unwrap().iter().map(|r| r["day"].as_str().unwrap()).collect();
    assert_eq!(days, [second.to_string(), first.to_string()], "newest first");
}
