//! The catalog in SQLite: seeding, repricing, products, search, categories, changes, meta.

use haitao_shop_api::catalog::{Category, Country, Fulfilment, Sort, TaxCategory};
use haitao_shop_api::search::{RANKED_MATCHES_MAX, index_terms, match_expression};
use serde::Deserialize;

use super::*;

impl CatalogStore for SqliteStore {
    fn seed_catalog(&self, fx: &FxRates) -> StoreResult<usize> {
        self.with(|c| seed_if_empty(c, fx))
    }

    fn reprice(&self, fx: &FxRates) -> StoreResult<usize> {
        self.with(|c| reprice(c, fx))
    }

    fn product(&self, id: &str) -> StoreResult<Option<ProductRow>> {
        self.with(|c| get(c, id))
    }

    fn search(&self, q: &ProductQuery) -> StoreResult<ProductPage> {
        self.with(|c| search(c, q))
    }

    fn categories(&self) -> StoreResult<Vec<CategoryInfo>> {
        self.with(|c| categories(c))
    }

    fn catalog_changes(
        &self,
        since: i64,
        limit: u32,
        cfg: &PricingConfig,
        fx: &FxRates,
    ) -> StoreResult<CatalogChanges> {
        self.with(|c| changes(c, since, limit, cfg, fx))
    }

    fn meta(&self, key: &str) -> StoreResult<Option<String>> {
        self.with(|c| {
            Ok(c.query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0)).optional()?)
        })
    }

    fn set_meta(&self, key: &str, value: &str) -> StoreResult<()> {
        self.with(|c| {
            c.execute(
                "INSERT INTO meta (key, value) VALUES (?1, ?2) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                [key, value],
            )?;
            Ok(())
        })
    }
}

#[derive(Deserialize)]
struct SeedFile {
    products: Vec<SeedProduct>,
}

#[derive(Deserialize)]
struct SeedProduct {
    id: String,
    category: String,
    brand: String,
    brand_zh: String,
    origin: String,
    currency: String,
    price_minor: i64,
    fulfilment: String,
    tax_category: String,
    weight_grams: i64,
    stock: i64,
    name_zh: String,
    name_en: String,
    description_zh: String,
    description_en: String,
    image: String,
}

const COLUMNS: &str = "id, seq, category, brand, brand_zh, origin, currency, price_minor, price_cny_fen, fulfilment, \
     tax_category, weight_grams, stock, reserved, name_zh, name_en, description_zh, description_en, image, version";

fn bad(what: &str, v: &str) -> rusqlite::Error {
    rusqlite::Error::InvalidColumnType(0, format!("{what} {v:?}"), rusqlite::types::Type::Text)
}

pub(super) fn row_to_product(r: &Row<'_>) -> rusqlite::Result<ProductRow> {
    let category: String = r.get(2)?;
    let origin: String = r.get(5)?;
    let currency: String = r.get(6)?;
    let fulfilment: String = r.get(9)?;
    let tax: String = r.get(10)?;
    let currency: Currency = currency.parse().map_err(|_| bad("currency", &currency))?;
    Ok(ProductRow {
        id: r.get(0)?,
        seq: r.get(1)?,
        category: Category::parse(&category).ok_or_else(|| bad("category", &category))?,
        brand: r.get(3)?,
        brand_zh: r.get(4)?,
        origin: Country::parse(&origin).ok_or_else(|| bad("origin", &origin))?,
        price: Money::from_minor(r.get(7)?, currency),
        price_cny_fen: r.get(8)?,
        fulfilment: Fulfilment::parse(&fulfilment).ok_or_else(|| bad("fulfilment", &fulfilment))?,
        tax_category: TaxCategory::parse(&tax).ok_or_else(|| bad("tax category", &tax))?,
        weight_grams: r.get(11)?,
        stock: r.get(12)?,
        reserved: r.get(13)?,
        name: Localized { zh: r.get(14)?, en: r.get(15)? },
        description: Localized { zh: r.get(16)?, en: r.get(17)? },
        image: r.get(18)?,
        version: r.get(19)?,
    })
}

/// Next catalog version (monotonic).
pub(super) fn next_version(conn: &Connection) -> rusqlite::Result<i64> {
    let v: i64 = conn.query_row("SELECT COALESCE(MAX(version), 0) + 1 FROM products", [], |r| r.get(0))?;
    Ok(v)
}

/// Loads the shipped catalog into an empty database. Returns the number of products added.
fn seed_if_empty(conn: &mut Connection, fx: &FxRates) -> Result<usize, ApiError> {
    let count: i64 =
        conn.query_row("SELECT COUNT(*) FROM products", [], |r| r.get(0)).map_err(ApiError::internal)?;
    if count > 0 {
        return Ok(0);
    }
    let seed: SeedFile =
        serde_json::from_str(include_str!("../../catalog/products.json")).map_err(ApiError::internal)?;
    let tx = conn.transaction().map_err(ApiError::internal)?;
    {
        let mut ins = tx
            .prepare(
                "INSERT INTO products (id, seq, category, brand, brand_zh, origin, currency, price_minor, \
                 price_cny_fen, fulfilment, tax_category, weight_grams, stock, name_zh, name_en, description_zh, \
                 description_en, image, reserved, version) \
                 VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13,?14,?15,?16,?17,?18,0,1)",
            )
            .map_err(ApiError::internal)?;
        let mut search = tx
            .prepare("INSERT INTO product_search (product_id, terms) VALUES (?1, ?2)")
            .map_err(ApiError::internal)?;
        for (seq, p) in seed.products.iter().enumerate() {
            let currency: Currency = p.currency.parse().map_err(ApiError::internal)?;
            let cny = fx.to_cny(Money::from_minor(p.price_minor, currency)).map_err(ApiError::internal)?;
            ins.execute(params![
                p.id,
                i64::try_from(seq).unwrap_or(0),
                p.category,
                p.brand,
                p.brand_zh,
                p.origin,
                p.currency,
                p.price_minor,
                cny.minor().max(1),
                p.fulfilment,
                p.tax_category,
                p.weight_grams,
                p.stock,
                p.name_zh,
                p.name_en,
                p.description_zh,
                p.description_en,
                p.image,
            ])
            .map_err(ApiError::internal)?;
            let terms = index_terms(&format!(
                "{} {} {} {} {} {}",
                p.name_zh, p.name_en, p.brand, p.brand_zh, p.category, p.origin
            ));
            search.execute(params![p.id, terms]).map_err(ApiError::internal)?;
        }
    }
    tx.commit().map_err(ApiError::internal)?;
    Ok(seed.products.len())
}

/// Recomputes CNY prices after an FX change, bumping the version of every product whose CNY price moved.
fn reprice(conn: &mut Connection, fx: &FxRates) -> Result<usize, ApiError> {
    let tx = conn.transaction().map_err(ApiError::internal)?;
    let mut changed = 0;
    {
        let rows: Vec<ProductRow> = {
            let mut st =
                tx.prepare(&format!("SELECT {COLUMNS} FROM products")).map_err(ApiError::internal)?;
            st.query_map([], row_to_product)
                .map_err(ApiError::internal)?
                .collect::<Result<_, _>>()
                .map_err(ApiError::internal)?
        };
        let mut version = next_version(&tx).map_err(ApiError::internal)?;
        for p in rows {
            let cny = fx.to_cny(p.price).map_err(ApiError::internal)?.minor().max(1);
            if cny != p.price_cny_fen {
                tx.execute(
                    "UPDATE products SET price_cny_fen = ?1, version = ?2 WHERE id = ?3",
                    params![cny, version, p.id],
                )
                .map_err(ApiError::internal)?;
                version += 1;
                changed += 1;
            }
        }
    }
    tx.commit().map_err(ApiError::internal)?;
    Ok(changed)
}

pub(super) fn get(conn: &Connection, id: &str) -> Result<Option<ProductRow>, ApiError> {
    conn.query_row(&format!("SELECT {COLUMNS} FROM products WHERE id = ?1"), [id], row_to_product)
        .optional()
        .map_err(ApiError::internal)
}

/// Searches the catalog.
fn search(conn: &Connection, q: &ProductQuery) -> Result<ProductPage, ApiError> {
    let per_page = q.per_page.unwrap_or(ProductQuery::DEFAULT_PER_PAGE).clamp(1, ProductQuery::MAX_PER_PAGE);
    let page = q.page.unwrap_or(1).max(1);
    let mut where_: Vec<String> = Vec::new();
    let mut args: Vec<rusqlite::types::Value> = Vec::new();
    let fts = q.q.as_deref().and_then(match_expression);
    let mut from = "products p".to_owned();
    if let Some(expr) = &fts {
        from = "product_search s JOIN products p ON p.id = s.product_id".to_owned();
        where_.push("product_search MATCH ?".into());
        args.push(expr.clone().into());
    } else if q.q.as_deref().is_some_and(|t| !t.trim().is_empty()) {
        // Only punctuation: nothing can match.
        return Ok(ProductPage { items: Vec::new(), total: 0, page, per_page });
    }
    if let Some(c) = q.category {
        where_.push("p.category = ?".into());
        args.push(c.as_str().to_owned().into());
    }
    if let Some(o) = q.origin {
        where_.push("p.origin = ?".into());
        args.push(o.code().to_owned().into());
    }
    if let Some(f) = q.fulfilment {
        where_.push("p.fulfilment = ?".into());
        args.push(f.as_str().to_owned().into());
    }
    if let Some(min) = q.min_price_fen {
        where_.push("p.price_cny_fen >= ?".into());
        args.push(min.into());
    }
    if let Some(max) = q.max_price_fen {
        where_.push("p.price_cny_fen <= ?".into());
        args.push(max.into());
    }
    let where_sql = if where_.is_empty() { String::new() } else { format!("WHERE {}", where_.join(" AND ")) };
    let broad = match &fts {
        Some(e) if q.sort.unwrap_or_default() == Sort::Relevance => {
            conn.query_row("SELECT COUNT(*) FROM product_search WHERE product_search MATCH ?1", [e], |r| {
                r.get::<_, i64>(0)
            })
            .map_err(ApiError::internal)?
                > RANKED_MATCHES_MAX
        }
        _ => false,
    };
    let order = match (q.sort.unwrap_or_default(), fts.is_some()) {
        (Sort::Relevance, true) if broad => "p.seq",
        (Sort::Relevance, true) => "bm25(product_search), p.seq",
        (Sort::Relevance, false) => "p.seq",
        (Sort::PriceAsc, _) => "p.price_cny_fen, p.seq",
        (Sort::PriceDesc, _) => "p.price_cny_fen DESC, p.seq",
        (Sort::Newest, _) => "p.seq DESC",
        (Sort::Name, _) => "p.name_en COLLATE NOCASE, p.seq",
    };
    let total: i64 = conn
        .query_row(
            &format!("SELECT COUNT(*) FROM {from} {where_sql}"),
            rusqlite::params_from_iter(args.iter()),
            |r| r.get(0),
        )
        .map_err(ApiError::internal)?;
    let cols: String = COLUMNS.split(", ").map(|c| format!("p.{c}")).collect::<Vec<_>>().join(", ");
    let sql = format!("SELECT {cols} FROM {from} {where_sql} ORDER BY {order} LIMIT ? OFFSET ?");
    let mut all_args = args;
    all_args.push(i64::from(per_page).into());
    all_args.push((i64::from(page) - 1).saturating_mul(i64::from(per_page)).into());
    let mut st = conn.prepare(&sql).map_err(ApiError::internal)?;
    let items = st
        .query_map(rusqlite::params_from_iter(all_args.iter()), row_to_product)
        .map_err(ApiError::internal)?
        .map(|r| r.map(|p| p.summary()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(ApiError::internal)?;
    Ok(ProductPage { items, total, page, per_page })
}

fn categories(conn: &Connection) -> Result<Vec<CategoryInfo>, ApiError> {
    let mut st = conn
        .prepare("SELECT category, COUNT(*) FROM products GROUP BY category")
        .map_err(ApiError::internal)?;
    let counts: Vec<(String, i64)> = st
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .map_err(ApiError::internal)?
        .collect::<Result<_, _>>()
        .map_err(ApiError::internal)?;
    Ok(Category::ALL
        .into_iter()
        .map(|c| CategoryInfo {
            category: c,
            name: crate::catalog::category_name(c),
            count: counts.iter().find(|(k, _)| k == c.as_str()).map(|(_, n)| *n).unwrap_or(0),
        })
        .collect())
}

/// Products whose version is above `since`, oldest change first.
fn changes(
    conn: &Connection,
    since: i64,
    limit: u32,
    cfg: &PricingConfig,
    fx: &FxRates,
) -> Result<CatalogChanges, ApiError> {
    let limit = limit.clamp(1, 1000);
    let mut st = conn
        .prepare(&format!("SELECT {COLUMNS} FROM products WHERE version > ?1 ORDER BY version, id LIMIT ?2"))
        .map_err(ApiError::internal)?;
    let rows: Vec<ProductRow> = st
        .query_map(params![since, i64::from(limit) + 1], row_to_product)
        .map_err(ApiError::internal)?
        .collect::<Result<_, _>>()
        .map_err(ApiError::internal)?;
    let more = rows.len() > usize::try_from(limit).unwrap_or(usize::MAX);
    let rows: Vec<ProductRow> = rows.into_iter().take(usize::try_from(limit).unwrap_or(usize::MAX)).collect();
    let version = rows.last().map(|r| r.version).unwrap_or(since);
    let products = rows.iter().map(|r| r.detail(cfg, fx)).collect::<Result<Vec<_>, _>>()?;
    Ok(CatalogChanges { version, products, more })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pricing::FxRates;

    fn db() -> Connection {
        let mut c = crate::db::open_in_memory().unwrap();
        let n = seed_if_empty(&mut c, &FxRates::demo()).unwrap();
        assert!(n >= 300, "the shipped catalog has at least 300 products, got {n}");
        c
    }

    fn q(text: &str) -> ProductQuery {
        ProductQuery { q: Some(text.into()), per_page: Some(200), ..Default::default() }
    }

    #[test]
    fn shipped_catalog_is_broad() {
        let c = db();
        let cats = categories(&c).unwrap();
        assert_eq!(cats.len(), 8);
        assert!(cats.iter().all(|c| c.count > 0));
        let origins: i64 =
            c.query_row("SELECT COUNT(DISTINCT origin) FROM products", [], |r| r.get(0)).unwrap();
        assert!(origins >= 8);
        let missing: Vec<String> = c
            .prepare("SELECT image FROM products")
            .unwrap()
            .query_map([], |r| r.get::<_, String>(0))
            .unwrap()
            .filter_map(Result::ok)
            .filter(|i| crate::catalog::image(i).is_none())
            .collect();
        assert!(missing.is_empty(), "products without images: {missing:?}");
    }

    #[test]
    fn chinese_one_and_two_character_queries() {
        let c = db();
        let cream = search(&c, &q("面霜")).unwrap();
        assert!(cream.total > 0);
        assert!(
            cream.items.iter().all(|p| p.name.zh.contains("面霜")),
            "{:?}",
            cream.items.iter().map(|p| &p.name.zh).collect::<Vec<_>>()
        );
        let powder = search(&c, &q("奶粉")).unwrap();
        assert!(powder.total > 0 && powder.items.iter().all(|p| p.name.zh.contains("奶粉")));
        let one = search(&c, &q("酒")).unwrap();
        assert!(one.total > 0 && one.items.iter().all(|p| p.name.zh.contains('酒')));
        assert_eq!(search(&c, &q("不存在的商品名")).unwrap().total, 0);
    }

    #[test]
    fn english_prefix_and_filters() {
        let c = db();
        let vit = search(&c, &q("vitam")).unwrap();
        assert!(vit.total > 0 && vit.items.iter().all(|p| p.name.en.to_lowercase().contains("vitamin")));
        let filtered = search(
            &c,
            &ProductQuery {
                category: Some(Category::Food),
                origin: Some(Country::NZ),
                fulfilment: Some(Fulfilment::Bonded),
                min_price_fen: Some(10_000),
                max_price_fen: Some(50_000),
                sort: Some(Sort::PriceAsc),
                per_page: Some(200),
                ..Default::default()
            },
        )
        .unwrap();
        assert!(filtered.total > 0);
        let prices: Vec<i64> = filtered.items.iter().map(|p| p.price_cny.minor()).collect();
        assert!(prices.windows(2).all(|w| w[0] <= w[1]));
        assert!(filtered.items.iter().all(|p| p.category == Category::Food
            && p.origin == Country::NZ
            && p.fulfilment == Fulfilment::Bonded
            && (10_000..=50_000).contains(&p.price_cny.minor())));
    }

    #[test]
    fn pagination_covers_everything_once() {
        let c = db();
        let total = search(&c, &ProductQuery::default()).unwrap().total;
        let mut seen = std::collections::HashSet::new();
        for page in 1..=20 {
            let p = search(&c, &ProductQuery { page: Some(page), per_page: Some(37), ..Default::default() })
                .unwrap();
            for item in p.items {
                assert!(seen.insert(item.id));
            }
        }
        assert_eq!(i64::try_from(seen.len()).unwrap(), total);
    }

    #[test]
    fn changes_feed_is_incremental() {
        let mut c = db();
        let cfg = PricingConfig::default();
        let fx = FxRates::demo();
        let first = changes(&c, 0, 1000, &cfg, &fx).unwrap();
        assert!(!first.more);
        assert_eq!(changes(&c, first.version, 1000, &cfg, &fx).unwrap().products.len(), 0);
        let mut fx2 = fx.clone();
        fx2.rates.retain(|(cur, _)| *cur != Currency::Jpy);
        fx2.rates.push((Currency::Jpy, 50_000));
        let moved = reprice(&mut c, &fx2).unwrap();
        let delta = changes(&c, first.version, 1000, &cfg, &fx2).unwrap();
        assert_eq!(delta.products.len(), moved);
        assert!(delta.products.iter().all(|p| p.summary.price.currency() == Currency::Jpy));
    }

    #[test]
    fn landed_cost_adds_up() {
        let c = db();
        let p = get(&c, "P0001").unwrap().unwrap();
        let d = p.detail(&PricingConfig::default(), &FxRates::demo()).unwrap();
        let l = &d.landed;
        assert_eq!(l.total_cny.minor(), l.price_cny.minor() + l.tax_cny.minor() + l.shipping_cny.minor());
        assert!(get(&c, "nope").unwrap().is_none());
    }
}
