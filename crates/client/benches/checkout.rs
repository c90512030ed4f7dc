//! The checkout's API path on the embedded services, excluding the person at the cashier: place the
//! order, record the attempt and get the cashier URL; then, after the buyer paid, verify the signed
//! return, confirm with the shop and cache the result.
//!
//! The shop and the sandbox run in this process on loopback with their databases in a temporary
//! folder, as the desktop app runs them. Shoppers (each with their own real name, resident ID and
//! sandbox persona, so the annual quota never runs out) check out one product at a time with the
//! account balance, one after another.
//!
//! Then a cold sync: one shopper places (and cancels, to keep within the annual quota) N orders,
//! and a fresh install of the app signs in and brings all N into an empty cache.
//!
//! `cargo bench -p haitao-client --bench checkout -- [--checkouts 300] [--sync-orders 10000]`;
//! figures in docs/PERFORMANCE.md.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]
// A measuring tool: it reports in floating-point milliseconds and prints its figures.
#![allow(clippy::float_arithmetic, clippy::print_stdout, clippy::print_stderr)]
#![allow(clippy::cast_possible_truncation, clippy::cast_sign_loss, clippy::cast_precision_loss)]

#[path = "../tests/common/mod.rs"]
mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use haitao_client::{Cache, Client, LocalStatus, MemoryStore, ShopApi};
use haitao_sandbox_api::{LedgerCheck, PayAnswer, PayRequest, PayWith, PersonaSpec, SourceSpec, path};
use haitao_shop_api::catalog::ProductQuery;
use haitao_shop_api::orders::{AttemptStatus, PayMode, PaymentMethod};
use serde_json::Value;

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn line(what: &str, mut v: Vec<Duration>) {
    v.sort();
    let at = |p: f64| v[((v.len() as f64 - 1.0) * p).round() as usize];
    println!(
        "{what:<52} p50 {:>7.2} ms  p90 {:>7.2} ms  p99 {:>7.2} ms  max {:>7.2} ms",
        ms(at(0.5)),
        ms(at(0.9)),
        ms(at(0.99)),
        ms(*v.last().unwrap())
    );
}

#[tokio::main]
async fn main() {
    let (mut checkouts, mut sync_orders) = (300usize, 10_000usize);
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut value = || args.next().and_then(|v| v.parse().ok()).expect("a number after the flag");
        match a.as_str() {
            "--checkouts" => checkouts = value(),
            "--sync-orders" => sync_orders = value(),
            _ => {} // cargo bench passes --bench
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let sandbox = haitao_alipay_sandbox::start(haitao_alipay_sandbox::Config::new(
        Some(dir.path().join("sandbox")),
        "127.0.0.1:0".parse().unwrap(),
    ))
    .await
    .unwrap();
    let shop = haitao_shop::start(haitao_shop::ShopConfig::local(
        Some(dir.path().join("shop")),
        "127.0.0.1:0".parse().unwrap(),
        sandbox.base_url().clone(),
    ))
    .await
    .unwrap();
    let http = reqwest::Client::new();
    let sandbox_post = |route: &str, body: Value| {
        let req = http.post(sandbox.base_url().join(route).unwrap()).json(&body);
        async move {
            let r = req.send().await.unwrap();
            (r.status().as_u16(), r.json::<Value>().await.unwrap_or(Value::Null))
        }
    };

    let (mut place, mut start, mut returned, mut whole) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let per_shopper = 20;
    let mut client: Option<(Client, String, String, String)> = None;
    let mut products: Vec<String> = Vec::new();
    for i in 0..checkouts {
        if i % per_shopper == 0 {
            let n = i / per_shopper;
            let name = format!(
                "{}{}",
                ["王", "李", "张", "刘", "陈"][n % 5],
                ["芳", "伟", "娜", "敏", "静"][(n / 5) % 5]
            );
            let id_number = common::resident_id(n);
            let phone = format!("137{:08}", 10_000 + n);
            let persona = format!("bench{n}@sandbox.haitao");
            let spec =
                PersonaSpec::new(&persona, &name, &id_number, &phone).source(SourceSpec::balance(10_000_000));
            let (s, v) = sandbox_post(path::PERSONAS, serde_json::to_value(spec).unwrap()).await;
            assert_eq!(s, 200, "{v}");
            let cache_dir = dir.path().join(format!("client-{n}"));
            std::fs::create_dir_all(&cache_dir).unwrap();
            let c = Client::new(
                ShopApi::new(shop.base_url().clone()).unwrap(),
                Cache::open(&cache_dir.join("cache.sqlite3")).unwrap(),
                Arc::new(MemoryStore::default()),
            );
            c.register(&phone, "bench2026pw", true).await.unwrap();
            c.verify_real_name(&name, &id_number).await.unwrap();
            let address = c.save_address(None, &common::hangzhou_address(&name, &phone, n)).await.unwrap().id;
            if products.is_empty() {
                let page = c
                    .catalog(&ProductQuery {
                        min_price_fen: Some(2_000),
                        max_price_fen: Some(20_000),
                        per_page: Some(100),
                        ..Default::default()
                    })
                    .await
                    .unwrap();
                products = page.page.items.iter().filter(|p| p.stock >= 20).map(|p| p.id.clone()).collect();
                assert!(products.len() >= 20, "enough cheap products in stock");
            }
            client = Some((c, address, persona, phone));
        }
        let (c, address, persona, _) = client.as_ref().unwrap();
        c.set_quantity(&products[i % products.len()], 1).await.unwrap();
        let ret = c.payment_config().await.unwrap().return_page;

        let t0 = Instant::now();
        let order = c.place_order(address).await.unwrap();
        let t1 = Instant::now();
        let launch = c.start_payment(&order.id, PaymentMethod::Balance, PayMode::InApp, &ret).await.unwrap();
        let t2 = Instant::now();

        // The buyer at the cashier: not measured.
        http.get(launch.attempt.cashier_url.clone().unwrap()).send().await.unwrap();
        let pay = PayRequest::new(&launch.attempt.out_trade_no, persona, PayWith::Balance);
        let (s, v) = sandbox_post(path::PAY, serde_json::to_value(pay).unwrap()).await;
        assert_eq!(s, 200, "{v}");
        let paid: PayAnswer = serde_json::from_value(v).unwrap();

        let t3 = Instant::now();
        let out = c
            .payment_returned(&launch.local_id, paid.paid().and_then(|p| p.return_url.as_deref()).unwrap())
            .await
            .unwrap();
        let t4 = Instant::now();
        assert_eq!(out.return_verified, Some(true));
        assert_eq!(out.attempt.map(|a| a.status), Some(AttemptStatus::Paid));
        assert_eq!(out.local.status(), LocalStatus::Paid, "cached as paid");
        place.push(t1 - t0);
        start.push(t2 - t1);
        returned.push(t4 - t3);
        whole.push((t2 - t0) + (t4 - t3));
    }
    println!("{checkouts} checkouts, one after another, balance, in-app window:");
    line("place the order", place);
    line("record the attempt, get the cashier URL (gateway)", start);
    line("verify the return, confirm with the shop, cache", returned);
    line("the whole API path (the person excluded)", whole);

    // Cold sync: a shopper with `sync_orders` orders installs the app afresh.
    let (c, address, _, phone) = client.as_ref().unwrap();
    let made = Instant::now();
    for i in 0..sync_orders {
        c.set_quantity(&products[i % products.len()], 1).await.unwrap();
        let order = c.place_order(address).await.unwrap();
        c.cancel_order(&order.id).await.unwrap();
    }
    let made = made.elapsed();
    let fresh_dir = dir.path().join("fresh");
    std::fs::create_dir_all(&fresh_dir).unwrap();
    let fresh = Client::new(
        ShopApi::new(shop.base_url().clone()).unwrap(),
        Cache::open(&fresh_dir.join("cache.sqlite3")).unwrap(),
        Arc::new(MemoryStore::default()),
    );
    fresh.sign_in(phone, "bench2026pw", true).await.unwrap();
    let t = Instant::now();
    let synced = fresh.sync_orders().await.unwrap();
    let took = t.elapsed();
    let t = Instant::now();
    let first = fresh.cached_orders(None, 1, 20).unwrap();
    let first_page = t.elapsed();
    let t = Instant::now();
    let again = fresh.sync_orders().await.unwrap();
    let warm = t.elapsed();
    assert_eq!(first.total, i64::try_from(synced).unwrap());
    assert!(synced >= sync_orders, "{synced} of at least {sync_orders}");
    assert_eq!(again, 0, "nothing changed since");
    println!(
        "cold sync of {synced} orders into an empty cache: {:.2} s ({:.0} orders/s); first page of 20 after it: {:.2} ms; \
         sync again with nothing changed: {:.2} ms (placing and cancelling them took {:.1} s)",
        took.as_secs_f64(),
        synced as f64 / took.as_secs_f64(),
        ms(first_page),
        ms(warm),
        made.as_secs_f64()
    );

    let check: LedgerCheck = http
        .get(sandbox.base_url().join(path::LEDGER_CHECK).unwrap())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(check.conserved, "{check:?}");
    shop.stop().await;
    sandbox.stop().await;
}
