//! The catalog in PostgreSQL: seeding, repricing, products, search, categories, changes, meta.
//!
//! Search looks each query unit ([`query_units`]) up in the product's indexed terms as text
//! (`strpos`), with no extension and no text-search configuration, so it finds the same products
//! as the SQLite index. It ranks whole-word matches above matches inside compounds, then by
//! catalog order (SQLite ranks by bm25 within those).

use haitao_shop_api::catalog::{Category, Country, Facet, Fulfilment, Sort, TaxCategory};
use haitao_shop_api::search::{RANKED_MATCHES_MAX, index_terms, inner_terms, query_units};
use postgres::types::ToSql;

use super::*;
use crate::sqlite::SeedProduct;

impl CatalogStore for PgStore {
    fn seed_catalog(&self, fx: &FxRates) -> StoreResult<usize> {
        self.with(|tx| seed_if_empty(tx, fx))
    }

    fn reprice(&self, fx: &FxRates) -> StoreResult<usize> {
        self.with(|tx| reprice(tx, fx))
    }

    fn product(&self, id: &str) -> StoreResult<Option<ProductRow>> {
        self.with(|tx| get(tx, id))
    }

    fn search(&self, q: &ProductQuery) -> StoreResult<ProductPage> {
        self.with(|tx| search(tx, q))
    }

    fn categories(&self) -> StoreResult<Vec<CategoryInfo>> {
        self.with(categories)
    }

    fn facets(&self, q: &ProductQuery) -> StoreResult<CatalogFacets> {
        self.with(|tx| facets(tx, q))
    }

    fn catalog_changes(
        &self,
        since: i64,
        limit: u32,
        cfg: &PricingConfig,
        fx: &FxRates,
    ) -> StoreResult<CatalogChanges> {
        self.with(|tx| changes(tx, since, limit, cfg, fx))
    }

    fn meta(&self, key: &str) -> StoreResult<Option<String>> {
        self.with(|tx| Ok(tx.query_opt("SELECT value FROM meta WHERE key = $1", &[&key])?.map(|r| r.get(0))))
    }

    fn set_meta(&self, key: &str, value: &str) -> StoreResult<()> {
        self.with(|tx| {
            tx.execute(
                "INSERT INTO meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                &[&key, &value],
            )?;
            Ok(())
        })
    }
}

const COLUMNS: &str = "id, seq, category, brand, brand_zh, origin, currency, price_minor, price_cny_fen, fulfilment, \
     tax_category, weight_grams, stock, reserved, name_zh, name_en, description_zh, description_en, image, version";

fn parsed<T>(at: &At<'_>, i: usize, what: &str, parse: impl FnOnce(&str) -> Option<T>) -> R<T> {
    let text: String = at.get(i)?;
    parse(&text).ok_or_else(|| {
        Fail::Api(ApiError::internal(DamagedRow {
            table: "products",
            key: at.key().to_owned(),
            column: i.to_string(),
            source: format!("unknown {what} {text:?}").into(),
        }))
    })
}

pub(super) fn row_to_product(r: &Row) -> R<ProductRow> {
    let at = At::keyed(r, "products", 0)?;
    let currency: Currency = parsed(&at, 6, "currency", |s| s.parse().ok())?;
    Ok(ProductRow {
        id: at.key().to_owned(),
        seq: at.get(1)?,
        category: parsed(&at, 2, "category", Category::parse)?,
        brand: at.get(3)?,
        brand_zh: at.get(4)?,
        origin: parsed(&at, 5, "origin", Country::parse)?,
        price: Money::from_minor(at.get(7)?, currency),
        price_cny_fen: at.get(8)?,
        fulfilment: parsed(&at, 9, "fulfilment", Fulfilment::parse)?,
        tax_category: parsed(&at, 10, "tax category", TaxCategory::parse)?,
        weight_grams: at.get(11)?,
        stock: at.get(12)?,
        reserved: at.get(13)?,
        name: Localized { zh: at.get(14)?, en: at.get(15)? },
        description: Localized { zh: at.get(16)?, en: at.get(17)? },
        image: at.get(18)?,
        version: at.get(19)?,
    })
}

/// The indexed forms kept for search: each with a space before and after, so a unit is found as
/// ` unit ` (whole) or ` unit` (a word's start); Latin letters without their accents.
fn spaced(s: &str) -> String {
    format!(" {} ", fold(s))
}

/// Latin letters without their accents ("lumière" → "lumiere"), as SQLite's `unicode61` tokenizer
/// indexes and looks them up, so both stores find the same products; other scripts untouched.
fn fold(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c as u32, 0x00C0..=0x024F | 0x1E00..=0x1EFF) {
            unicode_normalization::char::decompose_canonical(c, |d| {
                if !unicode_normalization::char::is_combining_mark(d) {
                    out.push(d);
                }
            });
        } else {
            out.push(c);
        }
    }
    out
}

/// Next catalog version (monotonic).
pub(super) fn next_version(tx: &mut Tx<'_>) -> R<i64> {
    Ok(tx.query_one("SELECT COALESCE(MAX(version), 0) + 1 FROM products", &[])?.try_get(0)?)
}

/// Loads the shipped catalog into an empty database. Returns the number of products added.
fn seed_if_empty(tx: &mut Tx<'_>, fx: &FxRates) -> R<usize> {
    let count: i64 = tx.query_one("SELECT COUNT(*) FROM products", &[])?.try_get(0)?;
    if count > 0 {
        return Ok(0);
    }
    let seed = crate::sqlite::seed_file().map_err(ApiError::internal)?;
    const INSERT: &str = "INSERT INTO products (id, seq, category, brand, brand_zh, origin, currency, price_minor, \
         price_cny_fen, fulfilment, tax_category, weight_grams, stock, name_zh, name_en, description_zh, \
         description_en, image, reserved, version) \
         VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15,$16,$17,$18,0,$2::BIGINT + 1)";
    const SEARCH: &str = "INSERT INTO product_search (product_id, terms, inner_terms) VALUES ($1, $2, $3)";
    for (seq, p) in seed.products.iter().enumerate() {
        let SeedProduct {
            id,
            category,
            brand,
            brand_zh,
            origin,
            currency,
            price_minor,
            fulfilment,
            tax_category,
            weight_grams,
            stock,
            name_zh,
            name_en,
            description_zh,
            description_en,
            image,
        } = p;
        let cur: Currency = currency.parse().map_err(ApiError::internal)?;
        let cny = fx.to_cny(Money::from_minor(*price_minor, cur)).map_err(ApiError::internal)?.minor().max(1);
        let seq = i64::try_from(seq).unwrap_or(0);
        tx.execute(
            INSERT,
            &[
                id,
                &seq,
                category,
                brand,
                brand_zh,
                origin,
                currency,
                price_minor,
                &cny,
                fulfilment,
                tax_category,
                weight_grams,
                stock,
                name_zh,
                name_en,
                description_zh,
                description_en,
                image,
            ],
        )?;
        let text = crate::sqlite::search_text([name_zh, name_en, brand, brand_zh, category, origin]);
        tx.execute(SEARCH, &[id, &spaced(&index_terms(&text)), &spaced(&inner_terms(&text))])?;
    }
    Ok(seed.products.len())
}

/// Recomputes CNY prices after an FX change, bumping the version of every product whose CNY price moved.
fn reprice(tx: &mut Tx<'_>, fx: &FxRates) -> R<usize> {
    let rows = tx
        .query(&format!("SELECT {COLUMNS} FROM products"), &[])?
        .iter()
        .map(row_to_product)
        .collect::<R<Vec<_>>>()?;
    let mut version = next_version(tx)?;
    let mut changed = 0;
    for p in rows {
        let cny = fx.to_cny(p.price).map_err(ApiError::internal)?.minor().max(1);
        if cny != p.price_cny_fen {
            tx.execute(
                "UPDATE products SET price_cny_fen = $1, version = $2 WHERE id = $3",
                &[&cny, &version, &p.id],
            )?;
            version += 1;
            changed += 1;
        }
    }
    Ok(changed)
}

pub(super) fn get(tx: &mut Tx<'_>, id: &str) -> R<Option<ProductRow>> {
    tx.query_opt(&format!("SELECT {COLUMNS} FROM products WHERE id = $1"), &[&id])?
        .as_ref()
        .map(row_to_product)
        .transpose()
}

type Arg = Box<dyn ToSql + Sync>;

/// The products a query selects: the FROM clause, the WHERE clause and its arguments, without the
/// filter `skip`, and the ranking of text matches. `None` when the text has nothing searchable.
struct Selection {
    text: bool,
    from: &'static str,
    where_sql: String,
    rank: String,
    args: Vec<Arg>,
}

fn selection(q: &ProductQuery, skip: Option<Facet>) -> Option<Selection> {
    let mut where_: Vec<String> = Vec::new();
    let mut args: Vec<Arg> = Vec::new();
    let units = q.q.as_deref().map(query_units).unwrap_or_default();
    let mut from = "products p";
    let mut whole: Vec<String> = Vec::new();
    if !units.is_empty() {
        from = "product_search s JOIN products p ON p.id = s.product_id";
        for u in units {
            let text = fold(&u.text);
            args.push(Box::new(if u.prefix { format!(" {text}") } else { format!(" {text} ") }));
            let n = args.len();
            let in_terms = format!("strpos(s.terms, ${n}) > 0");
            whole.push(format!("(CASE WHEN {in_terms} THEN 1 ELSE 0 END)"));
            if u.inner {
                where_.push(format!("({in_terms} OR strpos(s.inner_terms, ${n}) > 0)"));
            } else {
                where_.push(in_terms);
            }
        }
    } else if q.q.as_deref().is_some_and(|t| !t.trim().is_empty()) {
        // Only punctuation: nothing can match.
        return None;
    }
    for facet in Facet::ALL.into_iter().filter(|f| Some(*f) != skip) {
        if let Some(v) = facet.value(q) {
            args.push(Box::new(v.to_owned()));
            where_.push(format!("p.{} = ${}", facet.column(), args.len()));
        }
    }
    if let Some(min) = q.min_price_fen {
        args.push(Box::new(min));
        where_.push(format!("p.price_cny_fen >= ${}", args.len()));
    }
    if let Some(max) = q.max_price_fen {
        args.push(Box::new(max));
        where_.push(format!("p.price_cny_fen <= ${}", args.len()));
    }
    let where_sql = if where_.is_empty() { String::new() } else { format!("WHERE {}", where_.join(" AND ")) };
    let text = !whole.is_empty();
    let rank = if text { format!("({}) DESC, p.seq", whole.join(" + ")) } else { "p.seq".to_owned() };
    Some(Selection { text, from, where_sql, rank, args })
}

fn refs(args: &[Arg]) -> Vec<&(dyn ToSql + Sync)> {
    args.iter().map(|a| a.as_ref() as &(dyn ToSql + Sync)).collect()
}

/// Searches the catalog.
fn search(tx: &mut Tx<'_>, q: &ProductQuery) -> R<ProductPage> {
    let per_page = q.per_page.unwrap_or(ProductQuery::DEFAULT_PER_PAGE).clamp(1, ProductQuery::MAX_PER_PAGE);
    let page = q.page.unwrap_or(1).max(1);
    let Some(Selection { text, from, where_sql, rank, mut args }) = selection(q, None) else {
        return Ok(ProductPage { items: Vec::new(), total: 0, page, per_page });
    };
    let total: i64 =
        tx.query_one(&format!("SELECT COUNT(*) FROM {from} {where_sql}"), &refs(&args))?.try_get(0)?;
    let broad = text && total > RANKED_MATCHES_MAX;
    let order = match (q.sort.unwrap_or_default(), text) {
        (Sort::Relevance, true) if broad => "p.seq",
        (Sort::Relevance, true) => rank.as_str(),
        (Sort::Relevance, false) => "p.seq",
        (Sort::PriceAsc, _) => "p.price_cny_fen, p.seq",
        (Sort::PriceDesc, _) => "p.price_cny_fen DESC, p.seq",
        (Sort::Newest, _) => "p.seq DESC",
        (Sort::Name, _) => "lower(p.name_en), p.seq",
    };
    let cols: String = COLUMNS.split(", ").map(|c| format!("p.{c}")).collect::<Vec<_>>().join(", ");
    args.push(Box::new(i64::from(per_page)));
    args.push(Box::new((i64::from(page) - 1).saturating_mul(i64::from(per_page))));
    let n = args.len();
    let sql = format!("SELECT {cols} FROM {from} {where_sql} ORDER BY {order} LIMIT ${} OFFSET ${n}", n - 1);
    let items = tx
        .query(&sql, &refs(&args))?
        .iter()
        .map(|r| row_to_product(r).map(|p| p.summary()))
        .collect::<R<Vec<_>>>()?;
    Ok(ProductPage { items, total, page, per_page })
}

/// How many results a query has in each category, origin and fulfilment, each counted with every
/// other filter of the query applied and its own left out.
fn facets(tx: &mut Tx<'_>, q: &ProductQuery) -> R<CatalogFacets> {
    let mut count = |facet: Facet| -> R<Vec<(String, i64)>> {
        let Some(Selection { from, where_sql, args, .. }) = selection(q, Some(facet)) else {
            return Ok(Vec::new());
        };
        let column = facet.column();
        let rows = tx.query(
            &format!("SELECT p.{column}, COUNT(*) FROM {from} {where_sql} GROUP BY p.{column}"),
            &refs(&args),
        )?;
        rows.iter().map(|r| Ok((r.try_get(0)?, r.try_get(1)?))).collect()
    };
    let categories = count(Facet::Category)?;
    let origins = count(Facet::Origin)?;
    let fulfilments = count(Facet::Fulfilment)?;
    Ok(CatalogFacets::from_counts(&categories, &origins, &fulfilments)
        .map_err(|e| ApiError::internal(format!("the products table holds {e}")))?)
}

fn categories(tx: &mut Tx<'_>) -> R<Vec<CategoryInfo>> {
    let counts: Vec<(String, i64)> = tx
        .query("SELECT category, COUNT(*) FROM products GROUP BY category", &[])?
        .iter()
        .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
        .collect::<R<_>>()?;
    Ok(Category::ALL
        .into_iter()
        .map(|c| CategoryInfo {
            category: c,
            name: crate::catalog::category_name(c),
            count: counts.iter().find(|(k, _)| k == c.as_str()).map(|(_, n)| *n).unwrap_or(0),
        })
        .collect())
}

/// Products whose version is above `since`, oldest change first, about `limit` of them; a batch
/// never ends inside a version (see the SQLite store's `changes`).
fn changes(tx: &mut Tx<'_>, since: i64, limit: u32, cfg: &PricingConfig, fx: &FxRates) -> R<CatalogChanges> {
    let limit = usize::try_from(limit.clamp(1, 1000)).unwrap_or(1000);
    let mut read = |sql: &str, args: &[&(dyn ToSql + Sync)]| -> R<Vec<ProductRow>> {
        tx.query(&format!("SELECT {COLUMNS} FROM products {sql}"), args)?.iter().map(row_to_product).collect()
    };
    let plus_one = i64::try_from(limit).unwrap_or(i64::MAX).saturating_add(1);
    let mut rows = read("WHERE version > $1 ORDER BY version, id LIMIT $2", &[&since, &plus_one])?;
    let more = rows.len() > limit;
    if more {
        let next = rows[limit].version;
        rows.truncate(limit);
        if rows.last().is_some_and(|r| r.version == next) {
            rows.retain(|r| r.version < next);
            if rows.is_empty() {
                rows = read("WHERE version = $1 ORDER BY id", &[&next])?;
            }
        }
    }
    let version = rows.last().map(|r| r.version).unwrap_or(since);
    let products = rows.iter().map(|r| r.detail(cfg, fx)).collect::<Result<Vec<_>, _>>()?;
    Ok(CatalogChanges { version, products, more })
}
