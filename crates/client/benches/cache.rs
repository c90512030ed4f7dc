//! The desktop client's local cache at scale: 100,000 cached products and 100,000 cached orders.
//!
//! Real records come from the in-process shop (its 515-product catalog and an order placed through
//! the client); they are cloned with new ids, names and times into a fresh cache file.
//!
//! `cargo bench -p haitao-client --bench cache`; figures are recorded in docs/PERFORMANCE.md.
//! `HAITAO_BENCH_PRODUCTS` / `HAITAO_BENCH_ORDERS` change the sizes; `HAITAO_BENCH_SKIP_UPGRADE=1`
//! skips the one-off schema-1 upgrade timing.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]
// A measuring tool: it reports in floating-point milliseconds and prints its figures.
#![allow(clippy::float_arithmetic, clippy::print_stdout, clippy::print_stderr)]
#![allow(clippy::cast_possible_truncation, clippy::cast_sign_loss, clippy::cast_precision_loss)]

#[path = "../tests/common/mod.rs"]
mod common;

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use haitao_client::Cache;
use haitao_shop_api::catalog::{Category, ProductDetail, ProductQuery, Sort};
use haitao_shop_api::orders::{Order, OrderStatus};

/// How many products and orders the cache holds: 100,000 each unless `HAITAO_BENCH_PRODUCTS` or
/// `HAITAO_BENCH_ORDERS` say otherwise (`scripts/perf` measures how the figures scale).
fn scale(var: &str) -> usize {
    let n = std::env::var(var).map_or(100_000, |v| {
        v.replace('_', "").parse().unwrap_or_else(|_| panic!("{var}={v}: a number of rows, like 10000"))
    });
    assert!(n >= 1_000, "{var}: at least 1000 rows");
    n
}

/// One real order and the real catalog, from the in-process shop and sandbox.
fn real_records() -> (Vec<ProductDetail>, Order) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let w = common::world().await;
        let c = w.client();
        c.sync_catalog().await.unwrap();
        let products = common::cached_products(&c);
        let address = common::shopper(&c, "13800138000").await;
        let order = c.place_order(&address).await.unwrap();
        (products, order)
    })
}

/// A cache file holding the products and orders [`scale`] asks for.
fn big_cache(dir: &std::path::Path, products: &[ProductDetail], order: &Order) -> std::path::PathBuf {
    let (n_products, n_orders) = (scale("HAITAO_BENCH_PRODUCTS"), scale("HAITAO_BENCH_ORDERS"));
    let path = dir.join("big.sqlite3");
    let cache = Cache::open(&path).unwrap();
    let started = Instant::now();
    let statuses = [
        OrderStatus::Delivered,
        OrderStatus::Shipped,
        OrderStatus::Paid,
        OrderStatus::Closed,
        OrderStatus::AwaitingPayment,
    ];
    let mut batch = Vec::with_capacity(1000);
    for i in 0..n_products {
        let mut p = products[i % products.len()].clone();
        p.summary.id = format!("P{:06}", i + 1);
        p.summary.name.en = format!("{} {}", p.summary.name.en, i / products.len());
        p.summary.name.zh = format!("{} 第{}批", p.summary.name.zh, i / products.len());
        batch.push(p);
        if batch.len() == 1000 {
            cache.put_products(&batch).unwrap();
            batch.clear();
        }
    }
    let products_took = started.elapsed();
    let started = Instant::now();
    let mut orders = Vec::with_capacity(1000);
    for i in 0..n_orders {
        let mut o = order.clone();
        o.id = format!("HT{:010}", i + 1);
        o.status = statuses[i % statuses.len()];
        o.created_at = order.created_at - chrono::Duration::minutes(i64::try_from(i).unwrap());
        o.updated_at = o.created_at;
        orders.push(o);
        if orders.len() == 1000 {
            cache.put_orders(&orders).unwrap();
            orders.clear();
        }
    }
    eprintln!(
        "filled the cache: {n_products} products in {:.1} s, {n_orders} orders in {:.1} s, file {} MB",
        products_took.as_secs_f64(),
        started.elapsed().as_secs_f64(),
        std::fs::metadata(&path).map(|m| m.len() / 1_000_000).unwrap_or(0)
    );
    path
}

/// The one-off cost of upgrading a schema-1 cache of as many products on open (copy the table,
/// re-read every product, rebuild the search index).
fn upgrade_time(dir: &std::path::Path, products: &[ProductDetail]) {
    let n_products = scale("HAITAO_BENCH_PRODUCTS");
    let path = dir.join("v1.sqlite3");
    {
        let mut c = rusqlite::Connection::open(&path).unwrap();
        c.execute_batch(haitao_client::cache::SCHEMA_1).unwrap();
        c.pragma_update(None, "user_version", 1).unwrap();
        let tx = c.transaction().unwrap();
        for i in 0..n_products {
            let mut p = products[i % products.len()].clone();
            p.summary.id = format!("P{:06}", i + 1);
            let s = &p.summary;
            tx.execute(
                "INSERT INTO products VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                rusqlite::params![
                    s.id,
                    i64::try_from(i).unwrap(),
                    s.category.as_str(),
                    s.origin.code(),
                    s.fulfilment.as_str(),
                    s.price_cny.minor(),
                    s.name.en,
                    p.version,
                    serde_json::to_string(&p).unwrap()
                ],
            )
            .unwrap();
            tx.execute(
                "INSERT INTO product_search (product_id, terms) VALUES (?1, ?2)",
                rusqlite::params![s.id, haitao_shop_api::search::index_terms(&s.name.en)],
            )
            .unwrap();
        }
        tx.commit().unwrap();
    }
    let started = Instant::now();
    let cache = Cache::open(&path).unwrap();
    let took = started.elapsed();
    assert_eq!(cache.product_count().unwrap(), i64::try_from(n_products).unwrap());
    assert_eq!(cache.meta("search_rebuild").unwrap(), None);
    eprintln!("upgraded a schema-1 cache of {n_products} products on open in {:.2} s", took.as_secs_f64());
}

/// Search as typed, keystroke by keystroke, with p50 and p99 over repeated runs (criterion reports
/// medians; the goal is a p99).
fn as_typed(cache: &Cache) {
    let n_products = scale("HAITAO_BENCH_PRODUCTS");
    let typed: [(&str, Option<Category>); 8] = [
        ("vitamin", None),
        ("collagen", None),
        ("cream", None),
        ("面霜", None),
        ("奶粉", None),
        ("vitamin", Some(Category::Health)),
        ("c", Some(Category::Food)),
        ("s", Some(Category::Cosmetics)),
    ];
    eprintln!("search as typed over {n_products} cached products, first page of 40, 200 runs per keystroke:");
    let (mut whole, mut filtered) = (Vec::new(), Vec::new());
    for (word, category) in typed {
        let chars: Vec<char> = word.chars().collect();
        for n in 1..=chars.len() {
            let q: String = chars[..n].iter().collect();
            let query =
                ProductQuery { q: Some(q.clone()), category, per_page: Some(40), ..Default::default() };
            let total = cache.search(&query).unwrap().total;
            let mut times: Vec<Duration> = (0..200)
                .map(|_| {
                    let t = Instant::now();
                    black_box(cache.search(black_box(&query)).unwrap());
                    t.elapsed()
                })
                .collect();
            times.sort();
            if category.is_some() { &mut filtered } else { &mut whole }.extend_from_slice(&times);
            eprintln!(
                "  {q:<10} {:<12} {total:>6} matches  p50 {:>7.2} ms  p99 {:>7.2} ms",
                category.map_or("", |c| c.as_str()),
                times[times.len() / 2].as_secs_f64() * 1e3,
                times[times.len() * 99 / 100].as_secs_f64() * 1e3
            );
        }
    }
    // The counts beside the filters, asked for once per search after its first page.
    for (word, category) in [("v", None), ("vitamin", None), ("面霜", None), ("c", Some(Category::Food))] {
        let query = ProductQuery { q: Some(word.into()), category, ..Default::default() };
        let mut times: Vec<Duration> = (0..50)
            .map(|_| {
                let t = Instant::now();
                black_box(cache.facets(black_box(&query)).unwrap());
                t.elapsed()
            })
            .collect();
        times.sort();
        eprintln!(
            "  facets of {word:<8} {:<12} p50 {:>7.2} ms  p99 {:>7.2} ms",
            category.map_or("", |c| c.as_str()),
            times[times.len() / 2].as_secs_f64() * 1e3,
            times[times.len() * 99 / 100].as_secs_f64() * 1e3
        );
    }
    for (what, mut all) in [("over the whole catalog", whole), ("within a category", filtered)] {
        all.sort();
        let p99 = all[all.len() * 99 / 100];
        eprintln!("  every keystroke {what}: p99 {:.2} ms", p99.as_secs_f64() * 1e3);
    }
}

fn bench(c: &mut Criterion) {
    let (products, order) = real_records();
    let dir = tempfile::tempdir().unwrap();
    if std::env::var_os("HAITAO_BENCH_SKIP_UPGRADE").is_none() {
        upgrade_time(dir.path(), &products);
    }
    let path = big_cache(dir.path(), &products, &order);
    as_typed(&Cache::open(&path).unwrap());

    let (n_products, n_orders) = (scale("HAITAO_BENCH_PRODUCTS"), scale("HAITAO_BENCH_ORDERS"));
    c.bench_function(&format!("open a cache of {n_products} products and {n_orders} orders"), |b| {
        b.iter(|| Cache::open(black_box(&path)).unwrap())
    });
    let cache = Cache::open(&path).unwrap();

    let mut g = c.benchmark_group(format!("{n_products} cached products"));
    let query =
        |q: Option<&str>| ProductQuery { q: q.map(str::to_owned), per_page: Some(40), ..Default::default() };
    g.bench_function("first page, no query", |b| b.iter(|| cache.search(black_box(&query(None))).unwrap()));
    g.bench_function("search 面霜 (Chinese)", |b| {
        b.iter(|| cache.search(black_box(&query(Some("面霜")))).unwrap())
    });
    g.bench_function("search vitamin (English)", |b| {
        b.iter(|| cache.search(black_box(&query(Some("vitamin")))).unwrap())
    });
    g.bench_function("search as typed: v", |b| {
        b.iter(|| cache.search(black_box(&query(Some("v")))).unwrap())
    });
    let filtered = ProductQuery {
        category: Some(Category::Cosmetics),
        min_price_fen: Some(10_000),
        max_price_fen: Some(50_000),
        sort: Some(Sort::PriceAsc),
        per_page: Some(40),
        ..Default::default()
    };
    g.bench_function("category + price range, sorted by price", |b| {
        b.iter(|| cache.search(black_box(&filtered)).unwrap())
    });
    // Page 2,000 of 2,500 at 100,000 products: four fifths of the way in, at any size.
    let deep_page = u32::try_from((n_products / 40 * 4 / 5).max(1)).unwrap();
    let deep = ProductQuery { page: Some(deep_page), per_page: Some(40), ..Default::default() };
    assert_eq!(cache.search(&deep).unwrap().items.len(), 40);
    g.bench_function(format!("page {deep_page} of the catalog"), |b| {
        b.iter(|| cache.search(black_box(&deep)).unwrap())
    });
    g.finish();

    let mut g = c.benchmark_group(format!("{n_orders} cached orders"));
    g.bench_function("first page (20), all statuses", |b| b.iter(|| cache.orders(None, 1, 20).unwrap()));
    g.bench_function("first page (20), shipped only", |b| {
        b.iter(|| cache.orders(Some(OrderStatus::Shipped), 1, 20).unwrap())
    });
    let deep_page = u32::try_from((n_orders / 20 / 2).max(1)).unwrap();
    g.bench_function(format!("page {deep_page} (20 per page)"), |b| {
        b.iter(|| cache.orders(None, deep_page, 20).unwrap())
    });
    let middle = format!("HT{:010}", n_orders / 2);
    assert!(cache.order(&middle).unwrap().is_some());
    g.bench_function("one order by id", |b| b.iter(|| cache.order(black_box(&middle)).unwrap()));
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(30);
    targets = bench
}
criterion_main!(benches);
