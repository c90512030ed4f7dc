//! The local cache's catalog search: re-synced products replace their index entries, and a cache
//! written by Haitao 0.1 (schema 1, search keyed by an unindexed product id) is migrated and
//! searchable after the upgrade.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use haitao_client::Cache;
use haitao_shop_api::catalog::{ProductDetail, ProductQuery, Sort};
use haitao_shop_api::search::index_terms;
use rusqlite::{Connection, params};

fn query(q: &str) -> ProductQuery {
    ProductQuery { q: Some(q.to_owned()), per_page: Some(200), ..Default::default() }
}

fn ids(cache: &Cache, q: &str) -> Vec<String> {
    cache.search(&query(q)).unwrap().items.into_iter().map(|p| p.id).collect()
}

async fn catalog() -> Vec<ProductDetail> {
    let w = common::world().await;
    let c = w.client();
    c.sync_catalog().await.unwrap();
    common::cached_products(&c)
}

#[tokio::test]
async fn a_re_synced_product_replaces_its_search_entry() {
    let products = catalog().await;
    assert!(products.len() >= 300);
    let cache = Cache::in_memory().unwrap();
    cache.put_products(&products).unwrap();
    let mut p = products[0].clone();
    assert!(ids(&cache, "Zyxwvut").is_empty());
    p.summary.name.en = "Zyxwvut limited edition".into();
    p.summary.name.zh = "限定版".into();
    cache.put_products(std::slice::from_ref(&p)).unwrap();
    cache.put_products(std::slice::from_ref(&p)).unwrap();
    assert_eq!(ids(&cache, "Zyxwvut"), [p.summary.id.clone()], "found once under its new name");
    assert_eq!(ids(&cache, "限定版"), [p.summary.id.clone()]);
    let old_name = &products[0].summary.name.en;
    assert!(!ids(&cache, old_name).contains(&p.summary.id), "{old_name:?} no longer finds it");
    assert_eq!(cache.product_count().unwrap(), i64::try_from(products.len()).unwrap());
}

/// A detail as caches before version 6 kept it: the FX source as one English string.
fn legacy_detail(p: &ProductDetail) -> String {
    let mut v = serde_json::to_value(p).unwrap();
    v["landed"]["fx"]["source"] = serde_json::Value::String(p.landed.fx.source.en.clone());
    v.to_string()
}

#[tokio::test]
async fn a_schema_1_cache_is_migrated_and_searchable() {
    let products = catalog().await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cache.sqlite3");
    {
        let c = Connection::open(&path).unwrap();
        c.execute_batch(haitao_client::cache::SCHEMA_1).unwrap();
        c.pragma_update(None, "user_version", 1).unwrap();
        for p in &products {
            let s = &p.summary;
            c.execute(
                "INSERT INTO products VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                params![
                    s.id,
                    seq(&s.id),
                    s.category.as_str(),
                    s.origin.code(),
                    s.fulfilment.as_str(),
                    s.price_cny.minor(),
                    s.name.en,
                    p.version,
                    legacy_detail(p)
                ],
            )
            .unwrap();
            c.execute(
                "INSERT INTO product_search (product_id, terms) VALUES (?1, ?2)",
                params![s.id, index_terms(&format!("{} {}", s.name.zh, s.name.en))],
            )
            .unwrap();
        }
        c.execute("INSERT INTO meta VALUES ('catalog_version', '42')", []).unwrap();
        c.execute("INSERT INTO meta VALUES ('orders_cursor', '7')", []).unwrap();
        c.execute(
            "INSERT INTO orders (id, status, created_at, updated_at, total_fen, body)
             VALUES ('o1', 'paid', '2026-11-01T00:00:00Z', '2026-11-01T00:00:00Z', 100, '{\"id\":\"o1\"}')",
            [],
        )
        .unwrap();
    }
    let cache = Cache::open(&path).unwrap();
    assert_eq!(cache.product_count().unwrap(), i64::try_from(products.len()).unwrap());
    // The catalog is synced again from the start (a cache before version 8 may lack products).
    assert_eq!(cache.meta("catalog_version").unwrap(), None);
    // Orders cached without the shop's `paid` flag are fetched again, from the start.
    assert_eq!(cache.meta("orders_cursor").unwrap(), None);
    assert_eq!(cache.orders(None, 1, 10).unwrap().1, 0);
    assert_eq!(cache.meta("search_rebuild").unwrap(), None, "the rebuild finished");
    for p in &products {
        // Its FX source in both languages again, as the shop sends it.
        assert_eq!(cache.product(&p.summary.id).unwrap().as_ref(), Some(p), "every detail carried over");
    }
    for p in products.iter().step_by(37) {
        assert!(ids(&cache, &p.summary.name.en).contains(&p.summary.id), "{:?}", p.summary.name.en);
        assert!(ids(&cache, &p.summary.name.zh).contains(&p.summary.id), "{:?}", p.summary.name.zh);
    }
    assert_filters_rebuilt(&cache, &products);
    let inside = products.iter().filter(|p| p.summary.name.en.contains("Multivitamin")).count();
    let vitamin = products.iter().filter(|p| p.summary.name.en.to_lowercase().contains("vitamin")).count();
    assert!(inside > 0 && vitamin > inside);
    assert_eq!(ids(&cache, "vitamin").len(), vitamin, "the rebuilt index finds words inside compounds");
    // Every column was carried over: "newest" (by seq) still orders the catalog.
    let newest = cache
        .search(&ProductQuery { sort: Some(Sort::Newest), per_page: Some(5), ..Default::default() })
        .unwrap();
    let mut by_seq: Vec<&ProductDetail> = products.iter().collect();
    by_seq.sort_by_key(|p| std::cmp::Reverse(seq(&p.summary.id)));
    let expected: Vec<&str> = by_seq.iter().take(5).map(|p| p.summary.id.as_str()).collect();
    let got: Vec<&str> = newest.items.iter().map(|p| p.id.as_str()).collect();
    assert_eq!(got, expected);

    // Updates keep working on the migrated file.
    drop(cache);
    let cache = Cache::open(&path).unwrap();
    let mut p = products[1].clone();
    p.summary.name.en = "Qwertyuiop".into();
    cache.put_products(std::slice::from_ref(&p)).unwrap();
    assert_eq!(ids(&cache, "Qwertyuiop"), [p.summary.id.clone()]);
    assert_eq!(cache.product(&p.summary.id).unwrap().as_ref(), Some(&p), "the new detail replaced the old");
    assert_eq!(cache.product_count().unwrap(), i64::try_from(products.len()).unwrap());
    drop(cache);

    // Stopped between the migration and the rebuild (flag set, index empty): the next open
    // finishes the job.
    {
        let c = Connection::open(&path).unwrap();
        c.execute_batch("DELETE FROM product_search; INSERT INTO meta VALUES ('search_rebuild', '1');")
            .unwrap();
    }
    let cache = Cache::open(&path).unwrap();
    assert_eq!(cache.meta("search_rebuild").unwrap(), None);
    assert_eq!(ids(&cache, "Qwertyuiop"), [p.summary.id.clone()]);
    let mut now = products.clone();
    now[1] = p;
    assert_filters_rebuilt(&cache, &now);
}

/// After a rebuild of the search index, a name searched within its own category, origin and
/// fulfilment finds its product, and within another category does not.
fn assert_filters_rebuilt(cache: &Cache, products: &[ProductDetail]) {
    for p in products.iter().step_by(41) {
        let s = &p.summary;
        let q = ProductQuery {
            q: Some(s.name.en.clone()),
            category: Some(s.category),
            origin: Some(s.origin),
            fulfilment: Some(s.fulfilment),
            per_page: Some(200),
            ..Default::default()
        };
        let found: Vec<String> = cache.search(&q).unwrap().items.into_iter().map(|p| p.id).collect();
        assert!(found.contains(&s.id), "{:?} within its own filters", s.name.en);
        let other = haitao_shop_api::catalog::Category::ALL.into_iter().find(|c| *c != s.category).unwrap();
        let elsewhere = cache.search(&ProductQuery { category: Some(other), ..q }).unwrap();
        assert!(!elsewhere.items.iter().any(|x| x.id == s.id), "{:?} is not in {other:?}", s.name.en);
    }
}

/// The sequence number the cache derives from a product id (the digits in it).
fn seq(id: &str) -> i64 {
    id.trim_start_matches(|c: char| !c.is_ascii_digit()).parse().unwrap_or(0)
}

/// A first typed letter that matches thousands of products lists them in the order they were
/// cached instead of ranking them; totals come from the index alone without filters and agree with
/// the filtered totals; text search with a filter gives the same products as without it, filtered.
#[tokio::test]
async fn broad_searches_list_in_catalog_order_and_filters_keep_their_totals() {
    let products = catalog().await;
    let cache = Cache::in_memory().unwrap();
    let mut all = Vec::new();
    for round in 0..10 {
        for p in &products {
            let mut p = p.clone();
            p.summary.id = format!("P{:06}", all.len() + 1);
            p.summary.name.en = format!("{} {round}", p.summary.name.en);
            all.push(p);
        }
    }
    // Cached out of catalog order (as a sync by change version does): listing follows the catalog.
    for chunk in all.chunks(500).rev() {
        cache.put_products(chunk).unwrap();
    }
    let total = |q: &str, category| {
        cache
            .search(&ProductQuery { q: Some(q.into()), category, per_page: Some(1), ..Default::default() })
            .unwrap()
            .total
    };
    let letter = ('a'..='z')
        .map(String::from)
        .find(|l| total(l, None) > haitao_shop_api::search::RANKED_MATCHES_MAX)
        .expect("some letter matches more than the ranking limit");

    // Every match, page by page: each once, in the order they were cached.
    let mut seen = Vec::new();
    for page in 1.. {
        let got = cache
            .search(&ProductQuery {
                q: Some(letter.clone()),
                page: Some(page),
                per_page: Some(200),
                ..Default::default()
            })
            .unwrap();
        if got.items.is_empty() {
            break;
        }
        seen.extend(got.items.into_iter().map(|p| p.id));
    }
    assert_eq!(i64::try_from(seen.len()).unwrap(), total(&letter, None));
    let mut sorted = seen.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted, seen, "catalog order, each product once ({letter:?})");

    // The per-category totals add up to the unfiltered one, and each filtered list is the
    // unfiltered list's products of that category.
    let mut sum = 0;
    for category in haitao_shop_api::catalog::Category::ALL {
        let category = &category;
        let n = total(&letter, Some(*category));
        sum += n;
        let got = cache
            .search(&ProductQuery {
                q: Some(letter.clone()),
                category: Some(*category),
                per_page: Some(200),
                ..Default::default()
            })
            .unwrap();
        let expected: Vec<&String> = seen
            .iter()
            .filter(|id| all.iter().any(|p| &p.summary.id == *id && p.summary.category == *category))
            .take(200)
            .collect();
        assert_eq!(got.items.iter().map(|p| &p.id).collect::<Vec<_>>(), expected, "{category:?}");
    }
    assert_eq!(sum, total(&letter, None));

    // A narrower query is ranked again: an exact product name finds that product first.
    let name = &all[7].summary.name.en;
    assert!(total(name, None) <= haitao_shop_api::search::RANKED_MATCHES_MAX);
    assert_eq!(ids(&cache, name).first(), Some(&all[7].summary.id), "{name:?}");
}

/// Text with every filter, every sort: the cache finds exactly the products whose own words and
/// fields say they match, page after page — whether it counts them from the search index alone (a
/// category, origin or fulfilment filter), on the rows (a price range), walks the catalog looking
/// each product up, or builds the set of matches first. Typed text never matches the index's
/// filter tokens (`catfood`).
#[tokio::test]
async fn text_with_filters_finds_exactly_the_matching_products() {
    use haitao_shop_api::catalog::{Category, Country, Fulfilment};
    let products = catalog().await;
    let cache = Cache::in_memory().unwrap();
    let mut all = Vec::new();
    for round in 0..8 {
        for p in &products {
            let mut p = p.clone();
            p.summary.id = format!("P{:06}", all.len() + 1);
            p.summary.name.en = format!("{} {round}", p.summary.name.en);
            all.push(p);
        }
    }
    for chunk in all.chunks(400).rev() {
        cache.put_products(chunk).unwrap();
    }
    // The words the index holds for each product; which of them a query matches is worked out
    // here independently (a prefix for Latin text, and from three letters on also any part of a
    // word made of letters; the exact term for CJK).
    let words = |p: &ProductDetail| -> Vec<String> {
        haitao_client::cache::product_terms(p).split(' ').map(str::to_lowercase).collect()
    };
    let finds = |word: &str, text: &str| -> bool {
        if !text.is_ascii() {
            return word == text;
        }
        word.starts_with(text)
            || (text.len() >= 3 && word.chars().all(char::is_alphabetic) && word.contains(text))
    };
    let prices: Vec<i64> = {
        let mut v: Vec<i64> = all.iter().map(|p| p.summary.price_cny.minor()).collect();
        v.sort_unstable();
        v
    };
    let (low, high) = (prices[prices.len() / 4], prices[prices.len() * 3 / 4]);
    let filters: Vec<ProductQuery> = vec![
        ProductQuery::default(),
        ProductQuery { category: Some(Category::Cosmetics), ..Default::default() },
        ProductQuery { category: Some(Category::Food), ..Default::default() },
        ProductQuery { origin: Some(Country::JP), ..Default::default() },
        ProductQuery { fulfilment: Some(Fulfilment::DirectMail), ..Default::default() },
        ProductQuery { min_price_fen: Some(low), max_price_fen: Some(high), ..Default::default() },
        ProductQuery {
            category: Some(Category::Health),
            fulfilment: Some(Fulfilment::Bonded),
            min_price_fen: Some(low),
            ..Default::default()
        },
    ];
    let (mut checked, mut broad_seen) = (0, 0);
    // The catalog walk with one index lookup per product is taken for a first page of 10 when the
    // matches are at least sqrt(100 × 10 × catalog) (`Cache::search`): some text here must be that
    // broad for the small pages below to go through it (a mutation of either path fails this test).
    let catalog = all.len();
    let broadest = ["a", "c", "s"]
        .iter()
        .map(|t| all.iter().filter(|p| words(p).iter().any(|w| w.starts_with(t))).count())
        .max()
        .unwrap();
    assert!(broadest * broadest >= 1000 * catalog, "{broadest} matches of {catalog}");
    for text in ["a", "c", "s", "v", "co", "vitamin", "面", "catfood", "cat", "amin"] {
        for f in &filters {
            let expected: Vec<&ProductDetail> = all
                .iter()
                .filter(|p| {
                    let s = &p.summary;
                    let w = words(p);
                    let text_ok = w.iter().any(|t| finds(t, text));
                    text_ok
                        && f.category.is_none_or(|c| s.category == c)
                        && f.origin.is_none_or(|o| s.origin == o)
                        && f.fulfilment.is_none_or(|x| s.fulfilment == x)
                        && f.min_price_fen.is_none_or(|m| s.price_cny.minor() >= m)
                        && f.max_price_fen.is_none_or(|m| s.price_cny.minor() <= m)
                })
                .collect();
            let text_matches = all.iter().filter(|p| words(p).iter().any(|t| finds(t, text))).count();
            for sort in [Sort::Relevance, Sort::PriceAsc, Sort::PriceDesc, Sort::Newest, Sort::Name] {
                let mut got = Vec::new();
                for page in 1.. {
                    let r = cache
                        .search(&ProductQuery {
                            q: Some(text.into()),
                            sort: Some(sort),
                            page: Some(page),
                            per_page: Some(100),
                            ..f.clone()
                        })
                        .unwrap();
                    assert_eq!(r.total, i64::try_from(expected.len()).unwrap(), "{text:?} {f:?} {sort:?}");
                    if r.items.is_empty() {
                        break;
                    }
                    got.extend(r.items.into_iter().map(|p| p.id));
                }
                let mut want: Vec<&ProductDetail> = expected.clone();
                match sort {
                    Sort::PriceAsc => want.sort_by_key(|p| (p.summary.price_cny.minor(), seq(&p.summary.id))),
                    Sort::PriceDesc => {
                        want.sort_by_key(|p| {
                            (std::cmp::Reverse(p.summary.price_cny.minor()), seq(&p.summary.id))
                        });
                    }
                    Sort::Newest => want.sort_by_key(|p| std::cmp::Reverse(seq(&p.summary.id))),
                    // SQLite's NOCASE folds ASCII letters only, then compares bytes.
                    Sort::Name => {
                        want.sort_by_key(|p| (p.summary.name.en.to_ascii_lowercase(), seq(&p.summary.id)))
                    }
                    Sort::Relevance => want.sort_by_key(|p| seq(&p.summary.id)),
                }
                let want: Vec<&String> = want.iter().map(|p| &p.summary.id).collect();
                let broad =
                    i64::try_from(text_matches).unwrap() > haitao_shop_api::search::RANKED_MATCHES_MAX;
                broad_seen += usize::from(broad);
                if broad && sort == Sort::Relevance {
                    // Small first pages of a broad match: the catalog walk with a lookup per
                    // product (chosen when the matches are a large part of the catalog; with a
                    // page of one, also within a category, origin or fulfilment).
                    // Pages of one product take it within the filters too.
                    for per_page in [1, 10] {
                        let mut first = Vec::new();
                        for page in 1..=3 {
                            let r = cache
                                .search(&ProductQuery {
                                    q: Some(text.into()),
                                    page: Some(page),
                                    per_page: Some(per_page),
                                    ..f.clone()
                                })
                                .unwrap();
                            assert_eq!(r.total, i64::try_from(expected.len()).unwrap(), "{text:?} {f:?}");
                            first.extend(r.items.into_iter().map(|p| p.id));
                        }
                        let n = want.len().min(3 * per_page as usize);
                        assert_eq!(first.iter().collect::<Vec<_>>(), want[..n], "{text:?} {f:?} {per_page}");
                    }
                }
                if sort == Sort::Relevance && !broad {
                    // Ranked by relevance: the same products, in an order of the index's choosing.
                    got.sort_by_key(|id| seq(id));
                }
                assert_eq!(got.iter().collect::<Vec<_>>(), want, "{text:?} {f:?} {sort:?}");
                checked += 1;
            }
        }
    }
    assert_eq!(checked, 10 * 7 * 5);
    assert!(broad_seen >= 2 * 7, "some texts match more products than are ranked");
    assert_eq!(cache.search(&query("fulbonded")).unwrap().total, 0, "filter tokens are not words");
    assert_eq!(cache.search(&query("catfood")).unwrap().total, 0, "filter tokens are not words");
}

/// The counts beside the filters follow the search, and the cache counts as the shop does.
#[tokio::test]
async fn facet_counts_offline_are_the_shops() {
    use haitao_shop_api::catalog::{Category, Country, Fulfilment};
    let w = common::world().await;
    let c = w.client();
    c.sync_catalog().await.unwrap();
    let queries = [
        ProductQuery::default(),
        query("vitamin"),
        query("维生"),
        query("am"),
        ProductQuery { origin: Some(Country::JP), ..query("cream") },
        ProductQuery {
            category: Some(Category::Health),
            fulfilment: Some(Fulfilment::Bonded),
            ..query("vitamin")
        },
        ProductQuery { min_price_fen: Some(10_000), max_price_fen: Some(30_000), ..Default::default() },
        query(" ,. "),
    ];
    for q in &queries {
        let online = c.catalog_facets(q).await.unwrap();
        assert!(!online.offline);
        let offline = c.cache().facets(q).unwrap();
        assert_eq!(offline, online.facets, "{q:?}");
        // Each category's count is what the search finds within it.
        for cat in &offline.categories {
            let within =
                c.cache().search(&ProductQuery { category: Some(cat.category), ..q.clone() }).unwrap();
            assert_eq!(cat.count, within.total, "{q:?} {:?}", cat.category);
        }
    }
    let vit = c.cache().facets(&query("vitamin")).unwrap();
    assert_eq!(
        vit.categories.iter().map(|x| x.count).sum::<i64>(),
        15,
        "Multivitamin counted with Vitamin C"
    );
}
