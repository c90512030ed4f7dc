//! The catalog in SQLite: seeding, repricing, products, search, categories, changes, meta.

use haitao_shop_api::catalog::{Category, Country, Facet, Fulfilment, Sort, TaxCategory};
use haitao_shop_api::search::{RANK_WEIGHTS, RANKED_MATCHES_MAX, index_terms, inner_terms, match_expression};
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

    fn facets(&self, q: &ProductQuery) -> StoreResult<CatalogFacets> {
        self.with(|c| facets(c, q))
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

/// The catalog shipped with the shop (`catalog/products.json`), which every store seeds.
#[derive(Deserialize)]
pub(crate) struct SeedFile {
    pub(crate) products: Vec<SeedProduct>,
}

pub(crate) fn seed_file() -> Result<SeedFile, serde_json::Error> {
    serde_json::from_str(include_str!("../../catalog/products.json"))
}

#[derive(Deserialize)]
pub(crate) struct SeedProduct {
    pub(crate) id: String,
    pub(crate) category: String,
    pub(crate) brand: String,
    pub(crate) brand_zh: String,
    pub(crate) origin: String,
    pub(crate) currency: String,
    pub(crate) price_minor: i64,
    pub(crate) fulfilment: String,
    pub(crate) tax_category: String,
    pub(crate) weight_grams: i64,
    pub(crate) stock: i64,
    pub(crate) name_zh: String,
    pub(crate) name_en: String,
    pub(crate) description_zh: String,
    pub(crate) description_en: String,
    pub(crate) image: String,
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

const INSERT_SEARCH: &str = "INSERT INTO product_search (product_id, terms, inner) VALUES (?1, ?2, ?3)";

/// What a product is found by: its names in both languages, its brand in both, its category and
/// its origin.
pub(crate) fn search_text(fields: [&str; 6]) -> String {
    fields.join(" ")
}

/// Fills the search index from the products (after the index was recreated by a migration).
pub(crate) fn refill_search(tx: &rusqlite::Transaction<'_>) -> rusqlite::Result<()> {
    tx.execute("DELETE FROM product_search", [])?;
    let mut read = tx.prepare(
        "SELECT id, name_zh, name_en, brand, brand_zh, category, origin FROM products ORDER BY seq",
    )?;
    let mut ins = tx.prepare(INSERT_SEARCH)?;
    let mut rows = read.query([])?;
    while let Some(r) = rows.next()? {
        let id: String = r.get(0)?;
        let f: [String; 6] = [r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?, r.get(6)?];
        let text = search_text([&f[0], &f[1], &f[2], &f[3], &f[4], &f[5]]);
        ins.execute(params![id, index_terms(&text), inner_terms(&text)])?;
    }
    Ok(())
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
    let seed = seed_file().map_err(ApiError::internal)?;
    let tx = conn.transaction().map_err(ApiError::internal)?;
    {
        let mut ins = tx
            .prepare(
                "INSERT INTO products (id, seq, category, brand, brand_zh, origin, currency, price_minor, \
                 price_cny_fen, fulfilment, tax_category, weight_grams, stock, name_zh, name_en, description_zh, \
                 description_en, image, reserved, version) \
                 VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13,?14,?15,?16,?17,?18,0,?2 + 1)",
            )
            .map_err(ApiError::internal)?;
        let mut search = tx.prepare(INSERT_SEARCH).map_err(ApiError::internal)?;
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
            let text = search_text([&p.name_zh, &p.name_en, &p.brand, &p.brand_zh, &p.category, &p.origin]);
            search
                .execute(params![p.id, index_terms(&text), inner_terms(&text)])
                .map_err(ApiError::internal)?;
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

/// The products a query selects: the FROM clause, the WHERE clause and its arguments, without the
/// filter `skip` (to count the results per value of that filter). `None` when the text has nothing
/// searchable, so nothing can match.
struct Selection {
    fts: Option<String>,
    from: &'static str,
    where_sql: String,
    args: Vec<rusqlite::types::Value>,
}

fn selection(q: &ProductQuery, skip: Option<Facet>) -> Option<Selection> {
    let mut where_: Vec<String> = Vec::new();
    let mut args: Vec<rusqlite::types::Value> = Vec::new();
    let fts = q.q.as_deref().and_then(match_expression);
    let mut from = "products p";
    if let Some(expr) = &fts {
        from = "product_search s JOIN products p ON p.id = s.product_id";
        where_.push("product_search MATCH ?".into());
        args.push(expr.clone().into());
    } else if q.q.as_deref().is_some_and(|t| !t.trim().is_empty()) {
        // Only punctuation: nothing can match.
        return None;
    }
    for facet in Facet::ALL.into_iter().filter(|f| Some(*f) != skip) {
        if let Some(v) = facet.value(q) {
            where_.push(format!("p.{} = ?", facet.column()));
            args.push(v.to_owned().into());
        }
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
    Some(Selection { fts, from, where_sql, args })
}

/// Searches the catalog.
fn search(conn: &Connection, q: &ProductQuery) -> Result<ProductPage, ApiError> {
    let per_page = q.per_page.unwrap_or(ProductQuery::DEFAULT_PER_PAGE).clamp(1, ProductQuery::MAX_PER_PAGE);
    let page = q.page.unwrap_or(1).max(1);
    let Some(Selection { fts, from, where_sql, args }) = selection(q, None) else {
        return Ok(ProductPage { items: Vec::new(), total: 0, page, per_page });
    };
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
    let ranked = format!("bm25(product_search, 0.0, {}, {}), p.seq", RANK_WEIGHTS.0, RANK_WEIGHTS.1);
    let order = match (q.sort.unwrap_or_default(), fts.is_some()) {
        (Sort::Relevance, true) if broad => "p.seq",
        (Sort::Relevance, true) => &ranked,
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

/// How many results a query has in each category, origin and fulfilment: each counted with every
/// other filter of the query applied and its own left out, as a shopper about to pick it expects.
fn facets(conn: &Connection, q: &ProductQuery) -> Result<CatalogFacets, ApiError> {
    let count = |facet: Facet| -> Result<Vec<(String, i64)>, ApiError> {
        let Some(Selection { from, where_sql, args, .. }) = selection(q, Some(facet)) else {
            return Ok(Vec::new());
        };
        let column = facet.column();
        let mut st = conn
            .prepare(&format!("SELECT p.{column}, COUNT(*) FROM {from} {where_sql} GROUP BY p.{column}"))
            .map_err(ApiError::internal)?;
        st.query_map(rusqlite::params_from_iter(args.iter()), |r| Ok((r.get(0)?, r.get(1)?)))
            .map_err(ApiError::internal)?
            .collect::<Result<_, _>>()
            .map_err(ApiError::internal)
    };
    let categories = count(Facet::Category)?;
    let origins = count(Facet::Origin)?;
    let fulfilments = count(Facet::Fulfilment)?;
    CatalogFacets::from_counts(&categories, &origins, &fulfilments)
        .map_err(|e| ApiError::internal(format!("the products table holds {e}")))
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

/// Products whose version is above `since`, oldest change first, about `limit` of them.
///
/// A batch never ends inside a version: the next batch starts after the last version sent, so the
/// rest of a split version would never be sent. (The seed gives each product its own version, but
/// one write may give several products the same one, and databases seeded before this gave every
/// product version 1.) A version with more products than `limit` is sent whole.
fn changes(
    conn: &Connection,
    since: i64,
    limit: u32,
    cfg: &PricingConfig,
    fx: &FxRates,
) -> Result<CatalogChanges, ApiError> {
    let limit = usize::try_from(limit.clamp(1, 1000)).unwrap_or(1000);
    let read = |sql: &str, args: &[i64]| -> Result<Vec<ProductRow>, ApiError> {
        let mut st =
            conn.prepare(&format!("SELECT {COLUMNS} FROM products {sql}")).map_err(ApiError::internal)?;
        st.query_map(rusqlite::params_from_iter(args), row_to_product)
            .map_err(ApiError::internal)?
            .collect::<Result<_, _>>()
            .map_err(ApiError::internal)
    };
    let mut rows = read(
        "WHERE version > ?1 ORDER BY version, id LIMIT ?2",
        &[since, i64::try_from(limit).unwrap_or(i64::MAX).saturating_add(1)],
    )?;
    let more = rows.len() > limit;
    if more {
        let next = rows[limit].version;
        rows.truncate(limit);
        if rows.last().is_some_and(|r| r.version == next) {
            rows.retain(|r| r.version < next);
            if rows.is_empty() {
                rows = read("WHERE version = ?1 ORDER BY id", &[next])?;
            }
        }
    }
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
    fn english_words_are_found_inside_compounds_whole_words_first() {
        let c = db();
        let vit = search(&c, &q("vitamin")).unwrap();
        let names: Vec<&str> = vit.items.iter().map(|p| p.name.en.as_str()).collect();
        let inner = names.iter().filter(|n| n.contains("Multivitamin")).count();
        assert_eq!(inner, 5, "{names:?}");
        assert_eq!(vit.total, 15, "{names:?}");
        // Whole-word matches rank above the compounds.
        let first_compound = names.iter().position(|n| n.contains("Multivitamin")).unwrap();
        assert!(names[first_compound..].iter().all(|n| n.contains("Multivitamin")), "{names:?}");
        // "Multi" still finds them from the start of the word; two letters do not look inside words.
        assert_eq!(search(&c, &q("multi")).unwrap().total, 5);
        let two = search(&c, &q("it")).unwrap();
        assert!(
            two.items.iter().all(|p| format!("{} {} {}", p.name.en, p.brand, p.origin.code())
                .to_lowercase()
                .split(|ch: char| !ch.is_alphanumeric())
                .any(|w| w.starts_with("it"))),
            "two letters match only the start of a word"
        );
        // Chinese two-character queries keep matching inside longer runs.
        let zh = search(&c, &q("维生")).unwrap();
        assert!(zh.total >= 15 && zh.items.iter().all(|p| p.name.zh.contains("维生")));
    }

    #[test]
    fn facet_counts_follow_the_query_and_the_other_filters() {
        let c = db();
        let text = ProductQuery { q: Some("vitamin".into()), ..Default::default() };
        let all = facets(&c, &text).unwrap();
        assert_eq!(all.categories.len(), Category::ALL.len());
        let total = search(&c, &text).unwrap().total;
        assert_eq!(all.categories.iter().map(|x| x.count).sum::<i64>(), total);
        assert_eq!(all.origins.iter().map(|x| x.count).sum::<i64>(), total);
        assert_eq!(all.fulfilments.iter().map(|x| x.count).sum::<i64>(), total);
        let health = all.categories.iter().find(|x| x.category == Category::Health).unwrap().count;
        assert_eq!(health, total, "every vitamin is a health product");
        assert_eq!(all.categories.iter().find(|x| x.category == Category::Luxury).unwrap().count, 0);

        // Within one origin: the categories count that origin's results; the origins still count
        // every origin (picking another replaces the filter).
        let nz = ProductQuery { origin: Some(Country::NZ), ..text.clone() };
        let within = facets(&c, &nz).unwrap();
        let nz_total = search(&c, &nz).unwrap().total;
        assert!(nz_total > 0 && nz_total < total);
        assert_eq!(within.categories.iter().map(|x| x.count).sum::<i64>(), nz_total);
        assert_eq!(within.origins, all.origins);
        for o in &within.origins {
            let n = search(&c, &ProductQuery { origin: Some(o.origin), ..text.clone() }).unwrap().total;
            assert_eq!(o.count, n, "{:?}", o.origin);
        }

        // Nothing searchable, nothing counted.
        let none = facets(&c, &q(" ,. ")).unwrap();
        assert!(none.categories.iter().all(|x| x.count == 0));
    }

    /// A database whose index was built before words were indexed inside compounds is refilled
    /// by the upgrade.
    #[test]
    fn an_older_index_is_refilled_with_inner_words() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("shop.db");
        {
            // The schema as the fifth version left it, the catalog as today's seeds it, and the
            // index as the fifth version built it.
            let seeded = dir.path().join("seeded.db");
            seed_if_empty(&mut crate::db::open(&seeded).unwrap(), &FxRates::demo()).unwrap();
            let mut c = Connection::open(&path).unwrap();
            c.pragma_update(None, "foreign_keys", "OFF").unwrap();
            crate::db::migrations().to_version(&mut c, 5).unwrap();
            c.execute("ATTACH DATABASE ?1 AS seeded", [seeded.to_str().unwrap()]).unwrap();
            c.execute_batch(
                "INSERT INTO products SELECT * FROM seeded.products;
                 DETACH DATABASE seeded;
                 DROP TABLE product_search;
                 CREATE VIRTUAL TABLE product_search USING fts5 (product_id UNINDEXED, terms, tokenize = 'unicode61');
                 INSERT INTO product_search (product_id, terms) SELECT id, lower(name_en) FROM products;",
            )
            .unwrap();
        }
        let c = crate::db::open(&path).unwrap();
        let vit = search(&c, &q("vitamin")).unwrap();
        assert_eq!(vit.total, 15);
        assert_eq!(search(&c, &q("维生")).unwrap().total, search(&db(), &q("维生")).unwrap().total);
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

    /// Read in batches smaller than the catalog, the changes feed brings every product once: also
    /// when many products share one version (a database seeded before each product got its own).
    #[test]
    fn changes_in_small_batches_bring_every_product() {
        let cfg = PricingConfig::default();
        let fx = FxRates::demo();
        let all_of = |c: &Connection, limit: u32| -> Vec<String> {
            let (mut since, mut ids, mut rounds) = (0, Vec::new(), 0);
            loop {
                let batch = changes(c, since, limit, &cfg, &fx).unwrap();
                assert!(batch.version > since || !batch.more, "a batch that says more moves on");
                ids.extend(batch.products.into_iter().map(|p| p.summary.id));
                since = batch.version;
                rounds += 1;
                assert!(rounds < 1000);
                if !batch.more {
                    return ids;
                }
            }
        };
        let c = db();
        let count = usize::try_from(
            c.query_row("SELECT COUNT(*) FROM products", [], |r| r.get::<_, i64>(0)).unwrap(),
        )
        .unwrap();
        let distinct = usize::try_from(
            c.query_row("SELECT COUNT(DISTINCT version) FROM products", [], |r| r.get::<_, i64>(0)).unwrap(),
        )
        .unwrap();
        assert_eq!(distinct, count, "a seeded product has its own version");
        for limit in [1, 7, 100, 500] {
            let mut ids = all_of(&c, limit);
            assert_eq!(ids.len(), count, "limit {limit}");
            ids.sort();
            ids.dedup();
            assert_eq!(ids.len(), count, "limit {limit}: each once");
        }
        // Older databases: every seeded product at version 1, a few changed since.
        c.execute_batch(
            "UPDATE products SET version = 1; UPDATE products SET version = 2 WHERE seq % 50 = 0;",
        )
        .unwrap();
        for limit in [7, 100, 500] {
            let mut ids = all_of(&c, limit);
            ids.sort();
            ids.dedup();
            assert_eq!(ids.len(), count, "limit {limit}");
        }
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
