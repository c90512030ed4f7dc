//! One store conformance suite, run against every store the shop has: SQLite always, and
//! PostgreSQL when the tests run beside a server (`scripts/with-postgres`, which `make test` does;
//! HAITAO_TEST_DATABASE). Each test builds the same world through the store seam and asserts the
//! same behaviour of both; the catalog test also asserts that both find the same products.
//!
//! The concurrent tests drive one store from several threads at once, as several shop instances
//! sharing one database would: a payment applied twice at the same moment is applied once, a
//! duplicate payment swept by every instance is refunded once, the last units of stock are sold
//! once, and a per-address limit holds across them.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::{Arc, Barrier};

use chrono::{DateTime, Duration, Utc};
use haitao_shop::domain::orders::PlaceOrder;
use haitao_shop::pricing::{FxRates, PricingConfig};
use haitao_shop::sqlite::SqliteStore;
use haitao_shop::store::{AddressEvent, Created, PaymentApplied, Refreshed, RefundRow, Store, TokenHashes};
use haitao_shop_api::account::AddressInput;
use haitao_shop_api::catalog::{Localized, ProductQuery, Sort};
use haitao_shop_api::error::ErrorCode;
use haitao_shop_api::orders::{
    AttemptStatus, OrderStatus, PayMode, PaymentAttempt, PaymentMethod, RefundStatus, TrackingEvent,
    TrackingStage,
};
use haitao_shop_api::{Currency, Money};

fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

/// Every store under test, each fresh and seeded with the shipped catalog, with the URL of its
/// database when other instances can open it (PostgreSQL).
fn stores() -> Vec<(&'static str, Arc<dyn Store>, Option<String>)> {
    let mut out: Vec<(&'static str, Arc<dyn Store>, Option<String>)> =
        vec![("sqlite", Arc::new(SqliteStore::new(haitao_shop::db::open_in_memory().unwrap())), None)];
    if let Ok(admin) = std::env::var("HAITAO_TEST_DATABASE") {
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let stamp = haitao_alipay::time::SystemClock.now().timestamp_micros();
        let name = format!("conformance_{}_{stamp}_{n}", std::process::id());
        let url = haitao_shop::postgres::create_database(&admin, &name).unwrap();
        out.push((
            "postgres",
            Arc::new(haitao_shop::postgres::PgStore::connect(&url, 12).unwrap()),
            Some(url),
        ));
    }
    for (_, s, _) in &out {
        assert!(s.seed_catalog(&FxRates::demo()).unwrap() >= 300);
    }
    out
}

use haitao_alipay::time::Clock;

/// A verified buyer with a default address and `qty` of `product` in the cart.
fn buyer(s: &dyn Store, id: &str, product: &str, qty: i64, now: DateTime<Utc>) {
    s.create_account(id, &format!("1380000{id:0>4}"), "hash", now).unwrap();
    s.set_real_name(
        id,
        "张伟",
        "110105198803151232",
        chrono::NaiveDate::from_ymd_opt(1988, 3, 15).unwrap(),
        now,
    )
    .unwrap();
    let address = AddressInput {
        recipient: "张伟".into(),
        phone: "13800000000".into(),
        province: "北京市".into(),
        city: "北京市".into(),
        district: "朝阳区".into(),
        street: "建国路 1 号".into(),
        postal_code: None,
        is_default: true,
    };
    s.save_address(id, &format!("ad-{id}"), &address, now).unwrap();
    s.set_cart_quantity(id, product, qty, now).unwrap();
}

fn place(
    s: &dyn Store,
    account: &str,
    order: &str,
    key: &str,
    now: DateTime<Utc>,
) -> Result<Created, ErrorCode> {
    s.place_order(&PlaceOrder {
        id: order.into(),
        account_id: account.into(),
        idempotency_key: key.into(),
        request_hash: format!("hash-{key}"),
        address_id: format!("ad-{account}"),
        pricing: PricingConfig::default(),
        fx: FxRates::demo(),
        quota_year: haitao_shop::sqlite::quota_year(now),
        pay_deadline: now + Duration::minutes(30),
        now,
    })
    .map_err(|e| e.code())
}

/// A cheap product (so one buyer's quota holds several orders) with plenty of stock.
fn cheap_product(s: &dyn Store) -> (String, i64) {
    let page = s
        .search(&ProductQuery {
            sort: Some(Sort::PriceAsc),
            min_price_fen: Some(2_000),
            per_page: Some(50),
            ..Default::default()
        })
        .unwrap();
    let p = page.items.iter().find(|p| p.stock >= 20).expect("a product with stock");
    (p.id.clone(), p.stock)
}

fn attempt(id: &str, order: &str, amount: Money, now: DateTime<Utc>) -> PaymentAttempt {
    PaymentAttempt {
        id: id.into(),
        order_id: order.into(),
        out_trade_no: format!("HT{id}"),
        method: PaymentMethod::HuabeiInstallments { periods: 6 },
        mode: PayMode::InApp,
        amount,
        status: AttemptStatus::Redirected,
        failure: None,
        cashier_url: Some("https://cashier.example/pay".into()),
        qr_code: None,
        return_url: "haitao://pay".into(),
        trade_no: None,
        created_at: now,
        updated_at: now,
        expires_at: now + Duration::minutes(15),
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

/// An order placed for one unit of a cheap product, and its total.
fn one_order(s: &dyn Store, account: &str, order: &str, now: DateTime<Utc>) -> Money {
    let (product, _) = cheap_product(s);
    buyer(s, account, &product, 1, now);
    assert!(matches!(place(s, account, order, order, now), Ok(Created::New(_))));
    s.order_core(order).unwrap().unwrap().total
}

#[test]
fn the_catalog_is_found_alike_in_every_store() {
    let all = stores();
    let queries = [
        "面霜",
        "奶粉",
        "酒",
        "vitamin",
        "vitam",
        "multi",
        "it",
        "维生",
        "Kiwi Meadow 奶粉",
        "lumiere",
        "Lumière",
        "crème",
        " ,. ",
        "不存在的商品名",
    ];
    let mut found: Vec<Vec<(String, i64)>> = Vec::new();
    for (name, s, _) in &all {
        let mut per_store = Vec::new();
        for q in queries {
            let page = s
                .search(&ProductQuery { q: Some(q.into()), per_page: Some(200), ..Default::default() })
                .unwrap();
            let mut ids: Vec<String> = page.items.iter().map(|p| p.id.clone()).collect();
            ids.sort();
            per_store.push((ids.join(","), page.total));
        }
        // What the shoppers' searches rely on, in each store.
        let vit = s
            .search(&ProductQuery { q: Some("vitamin".into()), per_page: Some(200), ..Default::default() })
            .unwrap();
        let names: Vec<&str> = vit.items.iter().map(|p| p.name.en.as_str()).collect();
        assert_eq!(vit.total, 15, "{name}: {names:?}");
        let first_compound = names.iter().position(|n| n.contains("Multivitamin")).unwrap();
        assert!(
            names[first_compound..].iter().all(|n| n.contains("Multivitamin")),
            "{name}: whole words first: {names:?}"
        );
        let accents = s
            .search(&ProductQuery { q: Some("lumiere".into()), per_page: Some(200), ..Default::default() })
            .unwrap();
        assert!(accents.total > 0, "{name}: a word is found without its accents");
        let cream = s
            .search(&ProductQuery { q: Some("面霜".into()), per_page: Some(200), ..Default::default() })
            .unwrap();
        assert!(cream.total > 0 && cream.items.iter().all(|p| p.name.zh.contains("面霜")), "{name}");

        // Facets count what the search finds.
        let text = ProductQuery { q: Some("vitamin".into()), ..Default::default() };
        let facets = s.facets(&text).unwrap();
        assert_eq!(facets.categories.iter().map(|x| x.count).sum::<i64>(), vit.total, "{name}");
        assert_eq!(facets.origins.iter().map(|x| x.count).sum::<i64>(), vit.total, "{name}");

        // Pages cover the catalog once; sorted pages are sorted.
        let total = s.search(&ProductQuery::default()).unwrap().total;
        let mut seen = std::collections::HashSet::new();
        for page in 1..=20 {
            for item in s
                .search(&ProductQuery { page: Some(page), per_page: Some(37), ..Default::default() })
                .unwrap()
                .items
            {
                assert!(seen.insert(item.id), "{name}: a product on two pages");
            }
        }
        assert_eq!(i64::try_from(seen.len()).unwrap(), total, "{name}");
        let by_price = s
            .search(&ProductQuery { sort: Some(Sort::PriceDesc), per_page: Some(100), ..Default::default() })
            .unwrap();
        assert!(
            by_price.items.windows(2).all(|w| w[0].price_cny.minor() >= w[1].price_cny.minor()),
            "{name}"
        );

        // The changes feed brings every product once, in small batches too.
        let (cfg, fx) = (PricingConfig::default(), FxRates::demo());
        let (mut since, mut ids) = (0, Vec::new());
        loop {
            let batch = s.catalog_changes(since, 7, &cfg, &fx).unwrap();
            ids.extend(batch.products.into_iter().map(|p| p.summary.id));
            since = batch.version;
            if !batch.more {
                break;
            }
        }
        let count = ids.len();
        ids.sort();
        ids.dedup();
        assert_eq!((ids.len(), i64::try_from(count).unwrap()), (count, total), "{name}");
        found.push(per_store);
    }
    for (i, q) in queries.iter().enumerate() {
        let answers: Vec<&(String, i64)> = found.iter().map(|f| &f[i]).collect();
        assert!(answers.windows(2).all(|w| w[0] == w[1]), "{q:?} is answered differently: {answers:?}");
    }
}

#[test]
fn accounts_sessions_and_limits_behave_alike() {
    let now = at("2026-12-01T00:00:00.000Z");
    for (name, s, _) in stores() {
        s.create_account("a1", "13800000001", "h", now).unwrap();
        let again = s.create_account("a2", "13800000001", "h", now).unwrap_err();
        assert_eq!(again.code(), ErrorCode::AlreadyRegistered, "{name}");
        assert_eq!(s.account_by_phone("13800000001").unwrap().unwrap().id, "a1", "{name}");

        // Sign-in failures: the limit holds, a success clears them.
        let since = now - Duration::minutes(15);
        let counted: Vec<bool> =
            (0..7).map(|_| s.count_login_attempt("13800000001", since, 5, now).unwrap()).collect();
        assert_eq!(counted, [true, true, true, true, true, false, false], "{name}");
        s.clear_login_failures("13800000001").unwrap();
        assert!(s.count_login_attempt("13800000001", since, 5, now).unwrap(), "{name}");

        // Per-address events: counted up to the limit, the oldest told when refused.
        let first = now - Duration::minutes(3);
        let mut ids = Vec::new();
        for i in 0..3 {
            ids.push(
                s.reserve_address_event(
                    AddressEvent::Registration,
                    "10.0.0.1",
                    since,
                    3,
                    first + Duration::seconds(i),
                )
                .unwrap()
                .unwrap(),
            );
        }
        assert_eq!(
            s.reserve_address_event(AddressEvent::Registration, "10.0.0.1", since, 3, now).unwrap(),
            Err(first),
            "{name}"
        );
        s.forget_address_event(ids[1]).unwrap();
        assert!(
            s.reserve_address_event(AddressEvent::Registration, "10.0.0.1", since, 3, now).unwrap().is_ok(),
            "{name}"
        );
        assert_eq!(s.prune_address_events(now + Duration::seconds(1)).unwrap(), 3, "{name}");

        // Sessions: rotation, reuse ends the family, revoked tokens grant nothing.
        let tokens = |n: &str| TokenHashes {
            access_hash: format!("acc-{n}"),
            access_expires: now + Duration::minutes(15),
            refresh_hash: format!("ref-{n}"),
            refresh_expires: now + Duration::days(30),
        };
        s.create_session("f1", "a1", &tokens("1"), now).unwrap();
        let grant = s.access_grant("acc-1").unwrap().unwrap();
        assert_eq!((grant.account_id.as_str(), grant.family_id.as_str()), ("a1", "f1"), "{name}");
        assert_eq!(
            s.refresh("ref-1", &tokens("2"), now).unwrap(),
            Refreshed::Rotated { account_id: "a1".into() },
            "{name}"
        );
        assert!(
            s.access_grant("acc-1").unwrap().is_none() && s.access_grant("acc-2").unwrap().is_some(),
            "{name}"
        );
        assert_eq!(s.refresh("ref-1", &tokens("3"), now).unwrap(), Refreshed::Reused, "{name}");
        assert!(s.access_grant("acc-2").unwrap().is_none(), "{name}: the family ended");
        assert_eq!(s.refresh("nope", &tokens("4"), now).unwrap(), Refreshed::Invalid, "{name}");

        // Addresses: the first is the default; a new default takes over; deleted ones go.
        let input = |street: &str, is_default: bool| AddressInput {
            recipient: "李娜".into(),
            phone: "13900000000".into(),
            province: "上海市".into(),
            city: "上海市".into(),
            district: "徐汇区".into(),
            street: street.into(),
            postal_code: Some("200030".into()),
            is_default,
        };
        assert!(s.save_address("a1", "x1", &input("一号", false), now).unwrap().fields.is_default, "{name}");
        s.save_address("a1", "x2", &input("二号", true), now + Duration::seconds(1)).unwrap();
        let list = s.addresses("a1").unwrap();
        assert_eq!(
            list.iter().map(|a| (a.id.as_str(), a.fields.is_default)).collect::<Vec<_>>(),
            [("x2", true), ("x1", false)],
            "{name}"
        );
        assert!(s.delete_address("a1", "x2").unwrap() && !s.delete_address("a1", "x2").unwrap(), "{name}");
        assert_eq!(s.addresses("a1").unwrap().len(), 1, "{name}");
    }
}

#[test]
fn orders_reserve_stock_once_per_key() {
    let now = at("2026-12-01T00:00:00.000Z");
    for (name, s, _) in stores() {
        let (product, stock) = cheap_product(s.as_ref());
        buyer(s.as_ref(), "b1", &product, 2, now);
        let Ok(Created::New(id)) = place(s.as_ref(), "b1", "o1", "k1", now) else {
            panic!("{name}: not placed")
        };
        assert_eq!(s.product(&product).unwrap().unwrap().reserved, 2, "{name}");
        assert!(s.cart("b1").unwrap().is_empty(), "{name}: the cart became the order");
        // The same request again answers with the same order; another body under the key is refused.
        assert!(
            matches!(place(s.as_ref(), "b1", "o2", "k1", now), Ok(Created::Existing(ref e)) if *e == id),
            "{name}"
        );
        let other = s.place_order(&PlaceOrder {
            id: "o3".into(),
            account_id: "b1".into(),
            idempotency_key: "k1".into(),
            request_hash: "another".into(),
            address_id: "ad-b1".into(),
            pricing: PricingConfig::default(),
            fx: FxRates::demo(),
            quota_year: 2026,
            pay_deadline: now,
            now,
        });
        assert_eq!(other.unwrap_err().code(), ErrorCode::IdempotencyConflict, "{name}");
        let order = s.order(Some("b1"), &id).unwrap().unwrap();
        assert_eq!(
            (order.status, order.lines.len(), order.lines[0].pricing.quantity),
            (OrderStatus::AwaitingPayment, 1, 2),
            "{name}"
        );
        assert!(s.order(Some("someone else"), &id).unwrap().is_none(), "{name}");
        let (changes, cursor, more) = s.order_changes("b1", 0, 10).unwrap();
        assert_eq!((changes.len(), more), (1, false), "{name}");
        assert!(s.order_changes("b1", cursor, 10).unwrap().0.is_empty(), "{name}");

        // More than the stock left is refused and reserves nothing.
        s.set_cart_quantity("b1", &product, stock, now).unwrap();
        assert_eq!(place(s.as_ref(), "b1", "o4", "k2", now).unwrap_err(), ErrorCode::OutOfStock, "{name}");
        assert_eq!(s.product(&product).unwrap().unwrap().reserved, 2, "{name}");

        // Closing the unpaid order gives its stock back and moves its changes cursor.
        assert!(s.close_order(&id, now + Duration::minutes(31)).unwrap(), "{name}");
        assert!(!s.close_order(&id, now + Duration::minutes(31)).unwrap(), "{name}: once");
        assert_eq!(s.product(&product).unwrap().unwrap().reserved, 0, "{name}");
        assert_eq!(s.order_changes("b1", cursor, 10).unwrap().0[0].status, OrderStatus::Closed, "{name}");
    }
}

#[test]
fn a_kept_payment_and_a_duplicate_are_applied_alike() {
    let now = at("2026-12-01T00:05:00.000Z");
    for (name, s, _) in stores() {
        let total = one_order(s.as_ref(), "b1", "o1", now);
        let (first, second) = (attempt("p1", "o1", total, now), attempt("p2", "o1", total, now));
        s.insert_attempt(&first).unwrap();
        s.insert_attempt(&second).unwrap();
        assert_eq!(
            s.attempts_of("o1").unwrap().iter().map(|a| a.id.as_str()).collect::<Vec<_>>(),
            ["p1", "p2"],
            "{name}"
        );
        let (outcome, refund) =
            s.apply_payment("p1", "T1", Some(now), &paid_event(now), offered("RF1", &first), now).unwrap();
        assert_eq!((outcome, refund), (PaymentApplied::Paid, None), "{name}");
        let (outcome, refund) =
            s.apply_payment("p2", "T2", None, &paid_event(now), offered("RF2", &second), now).unwrap();
        assert_eq!(outcome, PaymentApplied::Duplicate, "{name}");
        let refund = refund.expect("a duplicate is refunded");
        assert_eq!(
            (refund.attempt_id.as_str(), refund.amount, refund.reason.as_str()),
            ("p2", total, "duplicate payment"),
            "{name}"
        );
        assert_eq!(
            s.apply_payment("p2", "T2", None, &paid_event(now), offered("RF3", &second), now).unwrap(),
            (PaymentApplied::AlreadyApplied, None),
            "{name}"
        );
        assert_eq!(s.tracking("o1").unwrap().len(), 1, "{name}: one paid event");
        let order = s.order(None, "o1").unwrap().unwrap();
        assert_eq!(
            (order.status, order.payment.map(|p| p.id)),
            (OrderStatus::Paid, Some("p1".into())),
            "{name}"
        );

        // The refund completes: the order's own money is untouched by a duplicate's refund.
        s.complete_refund("RF2", Some(now), now).unwrap();
        assert_eq!(s.order_core("o1").unwrap().unwrap().refunded.minor(), 0, "{name}");
        assert!(s.uncovered_payments().unwrap().is_empty(), "{name}");
        let (used, reserved) = s.quota_usage("110105198803151232", 2026).unwrap();
        assert_eq!((used, reserved), (s.order_core("o1").unwrap().unwrap().dutiable.minor(), 0), "{name}");
    }
}

/// `n` stores on the database of `s`, as `n` shop instances each have their own: on PostgreSQL, a
/// store (a pool) each; SQLite's one file has one store.
fn instances(s: &Arc<dyn Store>, url: &Option<String>, n: usize) -> Arc<Vec<Arc<dyn Store>>> {
    Arc::new(
        (0..n)
            .map(|_| match url {
                None => s.clone(),
                Some(url) => {
                    Arc::new(haitao_shop::postgres::PgStore::connect(url, 2).unwrap()) as Arc<dyn Store>
                }
            })
            .collect(),
    )
}

/// Runs `f(i)` on `n` threads released together, as `n` instances would at the same moment.
fn at_once<T: Send + 'static>(n: usize, f: impl Fn(usize) -> T + Send + Sync + 'static) -> Vec<T> {
    let f = Arc::new(f);
    let start = Arc::new(Barrier::new(n));
    let threads: Vec<_> = (0..n)
        .map(|i| {
            let (f, start) = (f.clone(), start.clone());
            std::thread::spawn(move || {
                start.wait();
                f(i)
            })
        })
        .collect();
    threads.into_iter().map(|t| t.join().unwrap()).collect()
}

#[test]
fn a_payment_applied_by_several_at_once_is_applied_once() {
    let now = at("2026-12-01T00:05:00.000Z");
    for (name, s, url) in stores() {
        let total = one_order(s.as_ref(), "b1", "o1", now);
        let product = s.order(None, "o1").unwrap().unwrap().lines[0].product_id.clone();
        let before = s.product(&product).unwrap().unwrap();
        let a = attempt("p1", "o1", total, now);
        s.insert_attempt(&a).unwrap();
        let s2 = instances(&s, &url, 6);
        let outcomes = at_once(6, move |i| {
            s2[i]
                .apply_payment("p1", "T1", Some(now), &paid_event(now), offered(&format!("RF{i}"), &a), now)
                .unwrap()
        });
        let paid = outcomes.iter().filter(|(o, _)| *o == PaymentApplied::Paid).count();
        assert_eq!(paid, 1, "{name}: {outcomes:?}");
        assert!(
            outcomes
                .iter()
                .all(|(o, r)| r.is_none()
                    && matches!(o, PaymentApplied::Paid | PaymentApplied::AlreadyApplied)),
            "{name}"
        );
        assert_eq!(s.tracking("o1").unwrap().len(), 1, "{name}");
        let after = s.product(&product).unwrap().unwrap();
        assert_eq!(
            (after.stock, after.reserved),
            (before.stock - 1, before.reserved - 1),
            "{name}: sold once"
        );
    }
}

#[test]
fn two_payments_of_one_order_at_once_keep_one_and_refund_the_other() {
    let now = at("2026-12-01T00:05:00.000Z");
    for (name, s, url) in stores() {
        let total = one_order(s.as_ref(), "b1", "o1", now);
        let attempts = [attempt("p0", "o1", total, now), attempt("p1", "o1", total, now)];
        for a in &attempts {
            s.insert_attempt(a).unwrap();
        }
        let s2 = instances(&s, &url, 2);
        let outcomes = at_once(2, move |i| {
            let a = &attempts[i];
            s2[i]
                .apply_payment(
                    &a.id,
                    &format!("T{i}"),
                    Some(now),
                    &paid_event(now),
                    offered(&format!("RF{i}"), a),
                    now,
                )
                .unwrap()
        });
        let mut kinds: Vec<PaymentApplied> = outcomes.iter().map(|(o, _)| *o).collect();
        kinds.sort_by_key(|k| format!("{k:?}"));
        assert_eq!(kinds, [PaymentApplied::Duplicate, PaymentApplied::Paid], "{name}");
        let refunds = s.refunds_of("o1").unwrap();
        assert_eq!(refunds.len(), 1, "{name}: {refunds:?}");
        let kept = s.order_core("o1").unwrap().unwrap().paid_attempt_id.unwrap();
        assert_ne!(refunds[0].attempt_id, kept, "{name}: the refund is of the other payment");
        assert_eq!(refunds[0].amount, total, "{name}");
    }
}

#[test]
fn a_duplicate_swept_by_every_instance_at_once_is_refunded_once() {
    let now = at("2026-12-01T00:05:00.000Z");
    for (name, s, url) in stores() {
        let total = one_order(s.as_ref(), "b1", "o1", now);
        let (first, second) = (attempt("p1", "o1", total, now), attempt("p2", "o1", total, now));
        s.insert_attempt(&first).unwrap();
        s.insert_attempt(&second).unwrap();
        s.apply_payment("p1", "T1", None, &paid_event(now), offered("RF1", &first), now).unwrap();
        s.apply_payment("p2", "T2", None, &paid_event(now), offered("RF2", &second), now).unwrap();
        // The duplicate's refund was refused by the gateway and failed: the money is uncovered.
        s.fail_refund("RF2", now).unwrap();
        assert_eq!(
            s.uncovered_payments().unwrap().iter().map(|a| a.id.as_str()).collect::<Vec<_>>(),
            ["p2"],
            "{name}"
        );
        let s2 = instances(&s, &url, 5);
        let covered = at_once(5, move |i| {
            s2[i]
                .cover_payment(
                    RefundRow {
                        attempt_id: "p2".into(),
                        order_id: "o1".into(),
                        ..offered(&format!("SW{i}"), &second)
                    },
                    now,
                )
                .unwrap()
        });
        assert_eq!(covered.iter().flatten().count(), 1, "{name}: {covered:?}");
        let pending: Vec<RefundRow> =
            s.refunds_of("o1").unwrap().into_iter().filter(|r| r.status == RefundStatus::Pending).collect();
        assert_eq!(pending.len(), 1, "{name}");
        assert_eq!(pending[0].amount, total, "{name}");
        assert!(pending[0].must_go_back(), "{name}");
        assert!(s.uncovered_payments().unwrap().is_empty(), "{name}");
    }
}

#[test]
fn the_last_units_are_sold_once_when_buyers_order_at_once() {
    let now = at("2026-12-01T00:05:00.000Z");
    for (name, s, url) in stores() {
        let (product, stock) = cheap_product(s.as_ref());
        // Six buyers each want a third of the stock: three orders fit.
        let each = stock / 3;
        for i in 0..6 {
            buyer(s.as_ref(), &format!("b{i}"), &product, each, now);
        }
        let s2 = instances(&s, &url, 6);
        let placed = at_once(6, move |i| {
            place(s2[i].as_ref(), &format!("b{i}"), &format!("o{i}"), &format!("k{i}"), now)
        });
        let ok = placed.iter().filter(|r| r.is_ok()).count();
        assert!(
            placed.iter().all(|r| matches!(
                r,
                Ok(Created::New(_)) | Err(ErrorCode::OutOfStock | ErrorCode::AnnualQuotaExceeded)
            )),
            "{name}: {placed:?}"
        );
        let p = s.product(&product).unwrap().unwrap();
        assert_eq!(p.reserved, each * i64::try_from(ok).unwrap(), "{name}: {placed:?}");
        assert!(p.reserved <= p.stock, "{name}");
        assert!(ok <= 3, "{name}: {placed:?}");
    }
}

#[test]
fn a_per_address_limit_holds_for_requests_at_once() {
    let now = at("2026-12-01T00:05:00.000Z");
    for (name, s, url) in stores() {
        let s2 = instances(&s, &url, 8);
        let since = now - Duration::minutes(15);
        let counted = at_once(8, move |i| {
            s2[i].reserve_address_event(AddressEvent::LoginFailure, "10.1.1.1", since, 3, now).unwrap()
        });
        assert_eq!(counted.iter().filter(|r| r.is_ok()).count(), 3, "{name}: {counted:?}");
    }
}

#[test]
fn leases_are_held_by_one_holder_until_let_go_or_run_out() {
    let now = at("2026-12-01T00:05:00.000Z");
    for (name, s, url) in stores() {
        let until = now + Duration::minutes(10);
        assert!(s.claim("jobs", "a", now, until).unwrap(), "{name}");
        assert!(!s.claim("jobs", "b", now, until).unwrap(), "{name}: held");
        assert!(
            s.claim("jobs", "a", now, until + Duration::minutes(1)).unwrap(),
            "{name}: its holder extends it"
        );
        s.release("jobs", "b").unwrap();
        assert!(!s.claim("jobs", "b", now, until).unwrap(), "{name}: only its holder lets go");
        s.release("jobs", "a").unwrap();
        assert!(s.claim("jobs", "b", now, until).unwrap(), "{name}: let go");
        assert!(s.claim("jobs", "c", until, until + Duration::minutes(10)).unwrap(), "{name}: run out");
        let s2 = instances(&s, &url, 6);
        let later = until + Duration::hours(1);
        let taken = at_once(6, move |i| {
            s2[i].claim("pay:o1", &format!("h{i}"), later, later + Duration::minutes(1)).unwrap()
        });
        assert_eq!(taken.iter().filter(|t| **t).count(), 1, "{name}: {taken:?}");
    }
}

#[test]
fn a_refund_that_cannot_be_written_leaves_the_duplicate_unapplied() {
    let now = at("2026-12-01T00:05:00.000Z");
    for (name, s, _) in stores() {
        let total = one_order(s.as_ref(), "b1", "o1", now);
        let other_total = one_order(s.as_ref(), "b2", "o2", now);
        let (first, second, other) = (
            attempt("p1", "o1", total, now),
            attempt("p2", "o1", total, now),
            attempt("q1", "o2", other_total, now),
        );
        for a in [&first, &second, &other] {
            s.insert_attempt(a).unwrap();
        }
        s.apply_payment("p1", "T1", None, &paid_event(now), offered("RF1", &first), now).unwrap();
        s.apply_payment("q1", "T3", None, &paid_event(now), offered("RF9", &other), now).unwrap();
        // A refund id already taken (by another order's refund) makes the duplicate's refund fail.
        let taken = RefundRow {
            id: "RF-TAKEN".into(),
            order_id: "o2".into(),
            attempt_id: "q1".into(),
            out_request_no: "R1".into(),
            amount: Money::from_minor(100, Currency::Cny),
            reason: "asked".into(),
            status: RefundStatus::Pending,
        };
        s.insert_refund(&taken, now).unwrap();
        assert!(
            s.apply_payment("p2", "T2", None, &paid_event(now), offered("RF-TAKEN", &second), now).is_err(),
            "{name}"
        );
        // Nothing of it was applied: the next notification or query applies it whole.
        assert_eq!(s.attempt("p2").unwrap().unwrap().status, AttemptStatus::Redirected, "{name}");
        assert!(s.refunds_of("o1").unwrap().is_empty(), "{name}");
        let (outcome, refund) =
            s.apply_payment("p2", "T2", None, &paid_event(now), offered("RF2", &second), now).unwrap();
        assert_eq!((outcome, refund.map(|r| r.amount)), (PaymentApplied::Duplicate, Some(total)), "{name}");
    }
}

/// The PostgreSQL schema's status columns accept exactly their enums' codes, as SQLite's do
/// (`strict_decoding.rs`).
#[test]
fn postgres_status_columns_accept_exactly_their_enums_codes() {
    use haitao_shop_api::code::{Code, sql_list};
    let schema = include_str!("../migrations/postgres/001_init.sql");
    let table = |name: &str| -> &str {
        let start =
            schema.find(&format!("CREATE TABLE {name} (")).unwrap_or_else(|| panic!("no table {name}"));
        let end = start + schema[start..].find("\n);").unwrap();
        &schema[start..end]
    };
    fn check<T: Code>(sql: &str, column: &str, nullable: bool) {
        let list = sql_list(T::ALL);
        let want = if nullable {
            format!("CHECK ({column} IS NULL OR {column} IN ({list}))")
        } else {
            format!("CHECK ({column} IN ({list}))")
        };
        assert!(sql.contains(&want), "{column} should have {want}:\n{sql}");
    }
    use haitao_shop_api::orders::{HoldReason, PaymentFailure};
    use haitao_shop_api::support::{Author, TicketStatus, TicketTopic};
    check::<OrderStatus>(table("orders"), "status", false);
    check::<HoldReason>(table("orders"), "hold_reason", true);
    check::<AttemptStatus>(table("payment_attempts"), "status", false);
    check::<PayMode>(table("payment_attempts"), "mode", false);
    check::<PaymentFailure>(table("payment_attempts"), "failure", true);
    check::<RefundStatus>(table("refunds"), "status", false);
    check::<TrackingStage>(table("tracking_events"), "stage", false);
    check::<TicketTopic>(table("tickets"), "topic", false);
    check::<TicketStatus>(table("tickets"), "status", false);
    check::<Author>(table("ticket_messages"), "author", false);
    check::<haitao_shop_api::reconciliation::DifferenceKind>(
        table("reconciliation_differences"),
        "kind",
        false,
    );
    for code in ["balance", "bank_card", "huabei", "huabei_3", "huabei_6", "huabei_12", "international_card"]
    {
        assert_eq!(PaymentMethod::parse_code(code).map(PaymentMethod::code).as_deref(), Some(code));
        assert!(table("payment_attempts").contains(&format!("'{code}'")), "{code}");
    }
}

/// A PostgreSQL server for the tests that need one.
fn server() -> String {
    std::env::var("HAITAO_TEST_DATABASE")
        .expect("run beside PostgreSQL: scripts/with-postgres cargo test -p haitao-shop --test store_conformance -- --ignored")
}

/// A value that got into PostgreSQL past its check (a hand edit, a newer build) is reported with
/// its table, row and column, never read as a default.
#[test]
#[ignore = "needs PostgreSQL: scripts/with-postgres … -- --ignored"]
fn a_damaged_status_on_postgres_is_reported_with_its_row() {
    let admin = server();
    let name = format!("damaged_{}", std::process::id());
    let url = haitao_shop::postgres::create_database(&admin, &name).unwrap();
    let s: Arc<dyn Store> = Arc::new(haitao_shop::postgres::PgStore::connect(&url, 2).unwrap());
    s.seed_catalog(&FxRates::demo()).unwrap();
    let now = at("2026-12-01T00:05:00.000Z");
    one_order(s.as_ref(), "b1", "o1", now);
    let mut c = postgres::Client::connect(&url, postgres::NoTls).unwrap();
    c.batch_execute(
        "ALTER TABLE orders DROP CONSTRAINT orders_status_check;
         UPDATE orders SET status = 'shipped_twice' WHERE id = 'o1';",
    )
    .unwrap();
    let err = s.order_core("o1").unwrap_err();
    let cause = err.cause.unwrap_or_default();
    assert!(cause.contains("orders row \"o1\", column status") && cause.contains("shipped_twice"), "{cause}");
    assert!(s.order(None, "o1").is_err());
}

/// A database URL asking for TLS is refused: the shop connects without TLS and never sends a
/// password in the clear to a server it was told to reach over TLS.
#[test]
#[ignore = "needs PostgreSQL: scripts/with-postgres … -- --ignored"]
fn a_url_asking_for_tls_is_refused_not_sent_in_the_clear() {
    let admin = server();
    let sep = if admin.contains('?') { '&' } else { '?' };
    let err =
        haitao_shop::postgres::PgStore::connect(&format!("{admin}{sep}sslmode=require"), 1).unwrap_err();
    assert!(matches!(err, haitao_shop::postgres::PgError::Connect { .. }), "{err}");
    assert!(!err.to_string().contains("password"), "{err}");
    // The same server without it: connected.
    assert!(haitao_shop::postgres::PgStore::connect(&admin, 1).is_ok());
}

/// A database written by a newer Haitao is left untouched.
#[test]
#[ignore = "needs PostgreSQL: scripts/with-postgres … -- --ignored"]
fn a_newer_postgres_schema_is_refused() {
    let admin = server();
    let url =
        haitao_shop::postgres::create_database(&admin, &format!("newer_{}", std::process::id())).unwrap();
    drop(haitao_shop::postgres::PgStore::connect(&url, 1).unwrap());
    let mut c = postgres::Client::connect(&url, postgres::NoTls).unwrap();
    c.batch_execute("INSERT INTO schema_migrations (version) VALUES (999)").unwrap();
    let err = haitao_shop::postgres::PgStore::connect(&url, 1).unwrap_err();
    assert!(matches!(err, haitao_shop::postgres::PgError::TooNew { found: 999, .. }), "{err}");
}
