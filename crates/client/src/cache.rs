//! The local cache (SQLite, bundled): the catalog with full-text search for offline browsing,
//! catalog images, the cart mirror, orders with their tracking, payment attempts, the checkout in
//! progress, and sync cursors. The shop is the truth; the cache is what the app shows offline.
//!
//! Opening: WAL, busy timeout, migrations in one transaction, a schema-version guard. A damaged or
//! newer-than-known file is refused with a typed error and never wiped.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use haitao_alipay::time::{Clock, SystemClock};
use haitao_shop_api::catalog::{
    CatalogFacets, Facet, ProductDetail, ProductPage, ProductQuery, ProductSummary, Sort,
};
use haitao_shop_api::code::sql_list;
use haitao_shop_api::orders::{AttemptStatus, Cart, Order, OrderStatus, PayMode, PaymentMethod};
use haitao_shop_api::search::{RANK_WEIGHTS, RANKED_MATCHES_MAX, index_terms, inner_terms, match_expression};
use parking_lot::Mutex;
use rusqlite::{Connection, OptionalExtension, params};
use rusqlite_migration::{M, Migrations};
use serde::{Deserialize, Serialize};

#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    #[error(
        "the cache {path} is damaged or not a Haitao cache ({reason}); it was left untouched — move it away to start afresh"
    )]
    Corrupt { path: String, reason: String },
    #[error(
        "the cache {path} was written by a newer Haitao (schema {found}, this one knows {known}); it was left untouched"
    )]
    TooNew { path: String, found: i64, known: i64 },
    #[error("cache error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("cache data could not be read: {0}")]
    Data(String),
    #[error("the cache {path} cannot be made private to this user: {source}")]
    Private { path: String, source: std::io::Error },
}

const KNOWN: i64 = 8;

/// Schema 1, exactly as Haitao 0.1 created it. Migrations are never edited once released; this one
/// is public so upgrade tests and benchmarks can build a cache as an older Haitao left it.
pub const SCHEMA_1: &str = r#"
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE products (
    id TEXT PRIMARY KEY,
    seq INTEGER NOT NULL,
    category TEXT NOT NULL,
    origin TEXT NOT NULL,
    fulfilment TEXT NOT NULL,
    price_cny_fen INTEGER NOT NULL,
    name_en TEXT NOT NULL,
    version INTEGER NOT NULL,
    detail TEXT NOT NULL
);
CREATE INDEX products_by_seq ON products (seq);
CREATE INDEX products_by_price ON products (price_cny_fen);
CREATE VIRTUAL TABLE product_search USING fts5 (product_id UNINDEXED, terms, tokenize = 'unicode61');
CREATE TABLE images (name TEXT PRIMARY KEY, content_type TEXT NOT NULL, bytes BLOB NOT NULL);
CREATE TABLE cart (id INTEGER PRIMARY KEY CHECK (id = 1), cart TEXT NOT NULL, synced_at TEXT NOT NULL);
CREATE TABLE orders (
    id TEXT PRIMARY KEY,
    status TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    total_fen INTEGER NOT NULL,
    body TEXT NOT NULL
);
CREATE INDEX orders_by_created ON orders (created_at DESC, id DESC);
CREATE INDEX orders_by_status ON orders (status, created_at DESC);
-- Payment attempts as the client knows them; recorded before any cashier opens.
CREATE TABLE attempts (
    local_id TEXT PRIMARY KEY,
    order_id TEXT NOT NULL,
    attempt_id TEXT,
    out_trade_no TEXT,
    method TEXT NOT NULL,
    mode TEXT NOT NULL,
    amount_fen INTEGER NOT NULL,
    status TEXT NOT NULL,
    return_url TEXT NOT NULL,
    last_error TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX attempts_by_status ON attempts (status);
CREATE TABLE checkout (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    state TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE TABLE invoices (order_id TEXT PRIMARY KEY, pdf BLOB NOT NULL, fetched_at TEXT NOT NULL);
"#;

/// Version 2: the search index is keyed by the product's row (an integer key) instead of an
/// unindexed id column, which made every re-synced product scan the whole index (a 100k catalog
/// took hours to cache); indexes for category + price browsing and for paging one order status
/// in a stable order. The index terms are computed by the app, so the migration only marks the
/// index for a rebuild, which [`Cache::init`] does right after (in its own transaction).
///
/// `rid` is reused after a delete (no AUTOINCREMENT): whatever deletes a product must delete its
/// `product_search` row (same rowid) and, from version 4, its `product_details` row in the same
/// transaction.
const SEARCH_BY_ROW: &str = r#"
CREATE TABLE products_v2 (
    rid INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    seq INTEGER NOT NULL,
    category TEXT NOT NULL,
    origin TEXT NOT NULL,
    fulfilment TEXT NOT NULL,
    price_cny_fen INTEGER NOT NULL,
    name_en TEXT NOT NULL,
    version INTEGER NOT NULL,
    detail TEXT NOT NULL
);
INSERT INTO products_v2 (id, seq, category, origin, fulfilment, price_cny_fen, name_en, version, detail)
    SELECT id, seq, category, origin, fulfilment, price_cny_fen, name_en, version, detail FROM products;
DROP TABLE products;
ALTER TABLE products_v2 RENAME TO products;
CREATE INDEX products_by_seq ON products (seq);
CREATE INDEX products_by_price ON products (price_cny_fen);
CREATE INDEX products_by_category_price ON products (category, price_cny_fen, seq);
DROP INDEX orders_by_status;
CREATE INDEX orders_by_status ON orders (status, created_at DESC, id DESC);
DROP TABLE product_search;
CREATE VIRTUAL TABLE product_search USING fts5 (terms, tokenize = 'unicode61');
INSERT INTO meta (key, value) VALUES ('search_rebuild', '1')
    ON CONFLICT (key) DO UPDATE SET value = excluded.value;
"#;

/// Whether product `p` matches the search (the match expression is the statement's parameter):
/// one index lookup, for walking the catalog in order when matches are a large part of it.
const PROBE: &str =
    "EXISTS (SELECT 1 FROM product_search s WHERE s.rowid = p.rid AND product_search MATCH ?)";

/// A page of a product search: a statement that lists its products (before LIMIT and OFFSET),
/// or the products themselves when they were picked out already.
enum PageRows {
    Sql(String, Vec<rusqlite::types::Value>),
    Rids(Vec<i64>),
}

/// Version 3: the search index keeps prefix indexes for the first one and two characters of every
/// term, so search-as-you-type's first letters read one list instead of merging every term that
/// starts with them (a one-letter search of 100,000 products took 50–70 ms). Rebuilt like version 2.
const SEARCH_PREFIXES: &str = r#"
DROP TABLE product_search;
CREATE VIRTUAL TABLE product_search USING fts5 (terms, tokenize = 'unicode61', prefix = '1 2');
INSERT INTO meta (key, value) VALUES ('search_rebuild', '1')
    ON CONFLICT (key) DO UPDATE SET value = excluded.value;
"#;

/// Version 4, for searches that match a large part of the catalog (a first typed letter, within a
/// category or not):
/// - a product's stored detail (its whole JSON, ~4 KB) moves out of `products` into
///   `product_details`, keyed by the same `rid`, so walking products reads narrow rows; the details
///   of the page shown are read by `rid`;
/// - the search index gains a `facets` column (category, origin and fulfilment as tokens, see
///   [`product_facets`]), so a text search within those filters is counted by the index alone.
///
/// Rebuilt like version 2.
const DETAILS_APART: &str = r#"
CREATE TABLE product_details (rid INTEGER PRIMARY KEY, detail TEXT NOT NULL);
INSERT INTO product_details (rid, detail) SELECT rid, detail FROM products;
ALTER TABLE products DROP COLUMN detail;
DROP TABLE product_search;
CREATE VIRTUAL TABLE product_search USING fts5 (terms, facets, tokenize = 'unicode61', prefix = '1 2');
INSERT INTO meta (key, value) VALUES ('search_rebuild', '1')
    ON CONFLICT (key) DO UPDATE SET value = excluded.value;
"#;

/// Version 5: orders carry the shop's `paid` flag, which bodies cached before it lack; they are
/// dropped and fetched again by the next order sync (from the start: its cursor goes too).
const ORDERS_REFETCH: &str = r#"
DELETE FROM orders;
DELETE FROM meta WHERE key IN ('orders_cursor', 'orders_synced_at');
"#;

/// Version 6: a price's FX source is in both languages (`{zh, en}`) where the shop used to send one
/// English string. Cached details are rewritten in place: the demo rates' label gets its Chinese
/// text, any other label is the same text in both languages (the next catalog sync brings the
/// shop's own).
const FX_SOURCE_BILINGUAL: &str = r#"
UPDATE product_details SET detail = json_set(detail, '$.landed.fx.source', json_object(
    'zh', CASE json_extract(detail, '$.landed.fx.source')
        WHEN 'Haitao demo rates (configurable; not live market data)' THEN '海淘演示汇率（可配置，非实时市场数据）'
        ELSE json_extract(detail, '$.landed.fx.source') END,
    'en', json_extract(detail, '$.landed.fx.source')))
WHERE json_type(detail, '$.landed.fx.source') = 'text';
"#;

/// Version 7: a waybill names its carrier by code (`haitao_express`) where the shop used to send
/// the display name; cached orders are rewritten in place.
const CARRIER_CODE: &str = r#"
UPDATE orders SET body = json_set(body, '$.waybill.carrier', 'haitao_express')
WHERE json_extract(body, '$.waybill.carrier') = '海淘国际物流 Haitao Express';
"#;

/// Version 8: the search index gains the `inner` column (the tails of each word, so "vitamin"
/// finds "Multivitamin" offline as online). Rebuilt like version 2. The catalog is also synced
/// again from the start: shops seeded every product with one version and sent the first 500, so a
/// cache synced from one may lack the rest.
const SEARCH_INSIDE_WORDS: &str = r#"
DELETE FROM meta WHERE key = 'catalog_version';
DROP TABLE product_search;
CREATE VIRTUAL TABLE product_search USING fts5 (terms, inner, facets, tokenize = 'unicode61', prefix = '1 2');
INSERT INTO meta (key, value) VALUES ('search_rebuild', '1')
    ON CONFLICT (key) DO UPDATE SET value = excluded.value;
"#;

fn migrations() -> Migrations<'static> {
    Migrations::new(vec![
        M::up(SCHEMA_1),
        M::up(SEARCH_BY_ROW),
        M::up(SEARCH_PREFIXES),
        M::up(DETAILS_APART),
        M::up(ORDERS_REFETCH),
        M::up(FX_SOURCE_BILINGUAL),
        M::up(CARRIER_CODE),
        M::up(SEARCH_INSIDE_WORDS),
    ])
}

/// The ORDER BY clause for a sort; `relevance` is what relevance means for the query at hand.
fn order_by(sort: Sort, relevance: &str) -> &str {
    match sort {
        Sort::Relevance => relevance,
        Sort::PriceAsc => "p.price_cny_fen, p.seq",
        Sort::PriceDesc => "p.price_cny_fen DESC, p.seq",
        Sort::Newest => "p.seq DESC",
        Sort::Name => "p.name_en COLLATE NOCASE, p.seq",
    }
}

/// The filter values of a product as search tokens (`catfood`, `orgjp`, `fuldirectmail`), for the
/// index's `facets` column: one token per filter, letters and digits only so the tokenizer keeps it
/// whole.
fn product_facets(p: &ProductDetail) -> String {
    let s = &p.summary;
    format!(
        "{} {} {}",
        facet_token("cat", s.category.as_str()),
        facet_token("org", s.origin.code()),
        facet_token("ful", s.fulfilment.as_str())
    )
}

fn facet_token(kind: &str, value: &str) -> String {
    let mut t = kind.to_owned();
    t.extend(value.chars().filter(char::is_ascii_alphanumeric).map(|c| c.to_ascii_lowercase()));
    t
}

/// What a cached product is found by (its names in both languages, brand, category and origin).
fn product_text(p: &ProductDetail) -> String {
    let s = &p.summary;
    format!("{} {} {} {} {}", s.name.zh, s.name.en, s.brand, s.category.as_str(), s.origin.code())
}

/// The words a cached product is found by, as the search index's `terms` column holds them.
pub fn product_terms(p: &ProductDetail) -> String {
    index_terms(&product_text(p))
}

/// The tails of a cached product's words, as the search index's `inner` column holds them.
pub fn product_inner(p: &ProductDetail) -> String {
    inner_terms(&product_text(p))
}

/// Where a payment attempt stands as this client knows it: the shop's own statuses, and two that
/// only the client sees (recorded before the shop answered; back from the cashier, being confirmed).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, specta::Type)]
#[serde(rename_all = "snake_case")]
pub enum LocalStatus {
    /// Recorded before the shop was asked; the shop may not know it yet.
    Starting,
    Started,
    Redirected,
    /// The cashier sent the buyer back; the shop is confirming.
    Returned,
    Paid,
    Failed,
    Closed,
    Unknown,
}

haitao_shop_api::codes! { LocalStatus, "local payment status" {
    Starting => "starting",
    Started => "started",
    Redirected => "redirected",
    Returned => "returned",
    Paid => "paid",
    Failed => "failed",
    Closed => "closed",
    Unknown => "unknown",
} }

impl LocalStatus {
    /// The shop's status this one mirrors; `None` for the client's own two.
    pub fn shop(self) -> Option<AttemptStatus> {
        match self {
            LocalStatus::Starting | LocalStatus::Returned => None,
            LocalStatus::Started => Some(AttemptStatus::Started),
            LocalStatus::Redirected => Some(AttemptStatus::Redirected),
            LocalStatus::Paid => Some(AttemptStatus::Paid),
            LocalStatus::Failed => Some(AttemptStatus::Failed),
            LocalStatus::Closed => Some(AttemptStatus::Closed),
            LocalStatus::Unknown => Some(AttemptStatus::Unknown),
        }
    }

    /// What the shop's answer makes of an attempt.
    pub fn from_shop(s: AttemptStatus) -> LocalStatus {
        match s {
            AttemptStatus::Started => LocalStatus::Started,
            AttemptStatus::Redirected => LocalStatus::Redirected,
            AttemptStatus::Paid => LocalStatus::Paid,
            AttemptStatus::Failed => LocalStatus::Failed,
            AttemptStatus::Closed => LocalStatus::Closed,
            AttemptStatus::Unknown => LocalStatus::Unknown,
        }
    }

    /// Nothing will change this attempt any more: the shop's rule ([`AttemptStatus::is_final`]).
    pub fn is_final(self) -> bool {
        self.shop().is_some_and(AttemptStatus::is_final)
    }
}

/// A payment attempt as the client records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, specta::Type)]
pub struct LocalAttempt {
    pub local_id: String,
    pub order_id: String,
    /// The shop's id, once the shop answered.
    pub attempt_id: Option<String>,
    pub out_trade_no: Option<String>,
    pub method: PaymentMethod,
    pub mode: PayMode,
    pub amount_fen: i64,
    status: LocalStatus,
    /// `status.is_final()`, computed here so that the UI never restates the rule.
    is_final: bool,
    pub return_url: String,
    pub last_error: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

impl LocalAttempt {
    /// A new attempt, recorded before the shop is asked.
    pub fn starting(
        local_id: String,
        order_id: &str,
        method: PaymentMethod,
        mode: PayMode,
        return_url: &str,
        now: String,
    ) -> LocalAttempt {
        LocalAttempt {
            local_id,
            order_id: order_id.to_owned(),
            attempt_id: None,
            out_trade_no: None,
            method,
            mode,
            amount_fen: 0,
            status: LocalStatus::Starting,
            is_final: false,
            return_url: return_url.to_owned(),
            last_error: None,
            created_at: now.clone(),
            updated_at: now,
        }
    }

    pub fn status(&self) -> LocalStatus {
        self.status
    }

    /// The shop's answer about this attempt: the truth, whatever the client thought before (a
    /// payment that arrives after a close makes a closed attempt paid).
    pub fn adopt(&mut self, shop: AttemptStatus) {
        self.set(LocalStatus::from_shop(shop));
    }

    /// What the client itself learned (back from the cashier, the shop unreachable, the shop never
    /// started it). Only an attempt that is not final moves; a final one keeps its status, so a
    /// lost connection never turns a paid attempt into an unknown one. Returns whether it moved.
    pub fn mark(&mut self, status: LocalStatus) -> bool {
        if self.is_final {
            return false;
        }
        self.set(status);
        true
    }

    fn set(&mut self, status: LocalStatus) {
        self.status = status;
        self.is_final = status.is_final();
    }

    pub fn is_final(&self) -> bool {
        self.is_final
    }
}

/// The local cache.
#[derive(Debug)]
pub struct Cache {
    conn: Mutex<Connection>,
    /// When rows were written (sync and fetch times); the client's own clock (`Client::with_clock`).
    pub(crate) clock: Arc<dyn Clock>,
}

fn classify(path: &str, e: rusqlite::Error) -> CacheError {
    match e.sqlite_error_code() {
        Some(rusqlite::ErrorCode::NotADatabase | rusqlite::ErrorCode::DatabaseCorrupt) => {
            CacheError::Corrupt { path: path.to_owned(), reason: e.to_string() }
        }
        _ => CacheError::Sqlite(e),
    }
}

/// A time as the cache and the client store it (RFC 3339, UTC, milliseconds).
pub fn time_text(t: chrono::DateTime<chrono::Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

impl Cache {
    /// Opens (creating) the cache file.
    pub fn open(path: &Path) -> Result<Cache, CacheError> {
        let shown = path.display().to_string();
        // Orders and addresses are the user's own: the file (and so its WAL) is 0600.
        haitao_files::private_database(path)
            .map_err(|e| CacheError::Private { path: shown.clone(), source: e })?;
        let conn = Connection::open(path).map_err(|e| classify(&shown, e))?;
        Self::init(conn, &shown)
    }

    pub fn in_memory() -> Result<Cache, CacheError> {
        Self::init(Connection::open_in_memory()?, ":memory:")
    }

    fn init(mut conn: Connection, shown: &str) -> Result<Cache, CacheError> {
        let setup = |c: &Connection| -> rusqlite::Result<i64> {
            c.busy_timeout(Duration::from_secs(5))?;
            let _: String = c.pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0))?;
            c.pragma_update(None, "synchronous", "NORMAL")?;
            c.pragma_query_value(None, "user_version", |r| r.get(0))
        };
        let found = setup(&conn).map_err(|e| classify(shown, e))?;
        if found > KNOWN {
            return Err(CacheError::TooNew { path: shown.to_owned(), found, known: KNOWN });
        }
        migrations().to_latest(&mut conn).map_err(|e| CacheError::Data(e.to_string()))?;
        let cache = Cache { conn: Mutex::new(conn), clock: Arc::new(SystemClock) };
        if cache.meta("search_rebuild")?.is_some() {
            // Without its index the cache still browses, pages and pays; the flag stays set and the
            // rebuild is tried again at the next open.
            if let Err(e) = cache.rebuild_search() {
                tracing::warn!(error = %e, "rebuilding the catalog search index failed; offline search is incomplete");
            }
        }
        Ok(cache)
    }

    /// Recomputes the search index from the cached products, in one transaction.
    fn rebuild_search(&self) -> Result<(), CacheError> {
        let mut c = self.conn.lock();
        let tx = c.transaction()?;
        {
            tx.execute("DELETE FROM product_search", [])?;
            let mut read = tx.prepare("SELECT rid, detail FROM product_details")?;
            let mut ins = tx.prepare(
                "INSERT INTO product_search (rowid, terms, inner, facets) VALUES (?1, ?2, ?3, ?4)",
            )?;
            let mut rows = read.query([])?;
            while let Some(row) = rows.next()? {
                let rid: i64 = row.get(0)?;
                let detail: String = row.get(1)?;
                // A product that no longer reads stays cached but unsearchable until the next sync.
                if let Ok(p) = serde_json::from_str::<ProductDetail>(&detail) {
                    ins.execute(params![rid, product_terms(&p), product_inner(&p), product_facets(&p)])?;
                }
            }
        }
        tx.execute("DELETE FROM meta WHERE key = 'search_rebuild'", [])?;
        tx.commit()?;
        // An upgrade rewrites the catalog in one transaction: give the write-ahead log's space back
        // now rather than at the next checkpoint. (The pages it freed in the file are reused as the
        // cache fills again; a cache file never shrinks by itself.)
        if let Err(e) = c.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| r.get::<_, i64>(0)) {
            // The index is rebuilt and committed; the log just stays its size until later.
            tracing::warn!(error = %e, "could not truncate the cache's write-ahead log after the rebuild");
        }
        Ok(())
    }

    pub fn meta(&self, key: &str) -> Result<Option<String>, CacheError> {
        Ok(self
            .conn
            .lock()
            .query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
            .optional()?)
    }

    pub fn set_meta(&self, key: &str, value: &str) -> Result<(), CacheError> {
        self.conn.lock().execute(
            "INSERT INTO meta (key, value) VALUES (?1, ?2) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            [key, value],
        )?;
        Ok(())
    }

    // -----------------------------------------------------------------------------------------
    // Catalog

    /// Stores products (a page seen online, or a sync batch).
    pub fn put_products(&self, products: &[ProductDetail]) -> Result<(), CacheError> {
        let mut c = self.conn.lock();
        let tx = c.transaction()?;
        {
            let mut up = tx.prepare(
                "INSERT INTO products (id, seq, category, origin, fulfilment, price_cny_fen, name_en, version)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
                 ON CONFLICT (id) DO UPDATE SET category = excluded.category, origin = excluded.origin,
                 fulfilment = excluded.fulfilment, price_cny_fen = excluded.price_cny_fen, name_en = excluded.name_en,
                 version = excluded.version
                 RETURNING rid",
            )?;
            let mut detail = tx.prepare(
                "INSERT INTO product_details (rid, detail) VALUES (?1, ?2)
                 ON CONFLICT (rid) DO UPDATE SET detail = excluded.detail",
            )?;
            let mut del = tx.prepare("DELETE FROM product_search WHERE rowid = ?1")?;
            let mut ins = tx.prepare(
                "INSERT INTO product_search (rowid, terms, inner, facets) VALUES (?1, ?2, ?3, ?4)",
            )?;
            for p in products {
                let s = &p.summary;
                let seq: i64 = s.id.trim_start_matches(|c: char| !c.is_ascii_digit()).parse().unwrap_or(0);
                let rid: i64 = up.query_row(
                    params![
                        s.id,
                        seq,
                        s.category.as_str(),
                        s.origin.code(),
                        s.fulfilment.as_str(),
                        s.price_cny.minor(),
                        s.name.en,
                        p.version,
                    ],
                    |r| r.get(0),
                )?;
                detail.execute(params![
                    rid,
                    serde_json::to_string(p).map_err(|e| CacheError::Data(e.to_string()))?
                ])?;
                del.execute([rid])?;
                ins.execute(params![rid, product_terms(p), product_inner(p), product_facets(p)])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    pub fn product(&self, id: &str) -> Result<Option<ProductDetail>, CacheError> {
        let text: Option<String> = self
            .conn
            .lock()
            .query_row(
                "SELECT d.detail FROM products p JOIN product_details d ON d.rid = p.rid WHERE p.id = ?1",
                [id],
                |r| r.get(0),
            )
            .optional()?;
        text.map(|t| serde_json::from_str(&t).map_err(|e| CacheError::Data(e.to_string()))).transpose()
    }

    pub fn product_count(&self) -> Result<i64, CacheError> {
        Ok(self.conn.lock().query_row("SELECT COUNT(*) FROM products", [], |r| r.get(0))?)
    }

    /// Searches the cached catalog with the same rules as the shop.
    ///
    /// A text search runs on the search index, with the category, origin and fulfilment filters as
    /// tokens of its `facets` column, so its count comes from the index alone; only a price range
    /// is checked on the products' rows. A relevance search matching more than
    /// [`RANKED_MATCHES_MAX`] products lists them in catalog order: when they are a large part of
    /// the catalog the catalog is walked in order and each product looked up in the index until
    /// the page is full (a handful of lookups per product shown), otherwise the set of matches is
    /// built once and the catalog walked through it.
    pub fn search(&self, q: &ProductQuery) -> Result<ProductPage, CacheError> {
        let per_page =
            q.per_page.unwrap_or(ProductQuery::DEFAULT_PER_PAGE).clamp(1, ProductQuery::MAX_PER_PAGE);
        let page = q.page.unwrap_or(1).max(1);
        let offset = (i64::from(page) - 1).saturating_mul(i64::from(per_page));
        let text = match q.q.as_deref().map(str::trim) {
            Some(t) if !t.is_empty() => match match_expression(t) {
                Some(e) => Some(e),
                None => return Ok(ProductPage { items: Vec::new(), total: 0, page, per_page }),
            },
            _ => None,
        };
        let mut filters: Vec<&str> = Vec::new();
        let mut args: Vec<rusqlite::types::Value> = Vec::new();
        let mut facets: Vec<String> = Vec::new();
        let mut facet = |column: &'static str, kind: &str, value: &str| {
            if text.is_some() {
                facets.push(format!("\"{}\"", facet_token(kind, value)));
            } else {
                filters.push(column);
                args.push(value.to_owned().into());
            }
        };
        if let Some(c) = q.category {
            facet("p.category = ?", "cat", c.as_str());
        }
        if let Some(o) = q.origin {
            facet("p.origin = ?", "org", o.code());
        }
        if let Some(f) = q.fulfilment {
            facet("p.fulfilment = ?", "ful", f.as_str());
        }
        if let Some(v) = q.min_price_fen {
            filters.push("p.price_cny_fen >= ?");
            args.push(v.into());
        }
        if let Some(v) = q.max_price_fen {
            filters.push("p.price_cny_fen <= ?");
            args.push(v.into());
        }
        // The text names the columns it matches (`terms`, `inner`): "cat" must not find every
        // `catfood` of the facets column.
        let text = text.map(|e| format!("({e})"));
        let fts = text.as_ref().map(|t| {
            let mut x = t.clone();
            for f in &facets {
                x.push_str(" AND {facets} : ");
                x.push_str(f);
            }
            x
        });
        let sort = q.sort.unwrap_or_default();
        let c = self.conn.lock();
        let and = |extra: &[&str]| -> String {
            let all: Vec<&str> = extra.iter().chain(filters.iter()).copied().collect();
            if all.is_empty() { String::new() } else { format!("WHERE {}", all.join(" AND ")) }
        };
        let limit = |mut a: Vec<rusqlite::types::Value>| {
            a.push(i64::from(per_page).into());
            a.push(offset.into());
            a
        };
        // Broad or not is decided by the text alone, as the shop does, so a filter lists the same
        // products in the same order as the unfiltered search, filtered. Counting stops at the
        // first match past the threshold.
        let broad_within_facets = match &text {
            Some(t) if sort == Sort::Relevance && !facets.is_empty() => {
                c.prepare_cached(
                    "SELECT COUNT(*) FROM (SELECT 1 FROM product_search WHERE product_search MATCH ?1 LIMIT ?2)",
                )?
                .query_row(params![t, RANKED_MATCHES_MAX + 1], |r| r.get::<_, i64>(0))?
                    > RANKED_MATCHES_MAX
            }
            _ => false,
        };
        let (total, rows) = match &fts {
            // A broad search within filters the index holds, without a price range: the matches
            // are read once, and both the count and the page come from them (counting them in
            // the index and then building their set for the walk read the index twice).
            Some(e) if broad_within_facets && filters.is_empty() => {
                let mut ids = c
                    .prepare_cached("SELECT rowid FROM product_search WHERE product_search MATCH ?1")?
                    .query_map([e], |r| r.get::<_, i64>(0))?
                    .collect::<Result<Vec<i64>, _>>()?;
                ids.sort_unstable();
                let matches = i64::try_from(ids.len()).unwrap_or(i64::MAX);
                let catalog: i64 =
                    c.query_row("SELECT COALESCE(MAX(rid), 0) FROM products", [], |r| r.get(0))?;
                let walked = (offset + i64::from(per_page)).saturating_mul(catalog) / matches.max(1);
                if walked.saturating_mul(100) <= matches && walked <= 400 {
                    let sql = format!(
                        "SELECT p.rid FROM products p INDEXED BY products_by_seq WHERE {PROBE} ORDER BY p.seq"
                    );
                    (matches, PageRows::Sql(sql, limit(vec![e.clone().into()])))
                } else {
                    // The catalog in order, each product tested against the matches read above.
                    let mut st =
                        c.prepare_cached("SELECT rid FROM products INDEXED BY products_by_seq ORDER BY seq")?;
                    let mut rows = st.query([])?;
                    let (mut skipped, mut rids) = (0_i64, Vec::new());
                    while let Some(r) = rows.next()? {
                        let rid: i64 = r.get(0)?;
                        if ids.binary_search(&rid).is_err() {
                            continue;
                        }
                        if skipped < offset {
                            skipped += 1;
                            continue;
                        }
                        rids.push(rid);
                        if rids.len() >= usize::try_from(per_page).unwrap_or(usize::MAX) {
                            break;
                        }
                    }
                    (matches, PageRows::Rids(rids))
                }
            }
            None => {
                let w = and(&[]);
                let total: i64 = c.query_row(
                    &format!("SELECT COUNT(*) FROM products p {w}"),
                    rusqlite::params_from_iter(args.iter()),
                    |r| r.get(0),
                )?;
                let order = order_by(sort, "p.seq");
                (
                    total,
                    PageRows::Sql(format!("SELECT p.rid FROM products p {w} ORDER BY {order}"), limit(args)),
                )
            }
            Some(e) => {
                // How many products the text (and the filters in the index) match, no rows read.
                let matches: i64 = c
                    .prepare_cached("SELECT COUNT(*) FROM product_search WHERE product_search MATCH ?1")?
                    .query_row([e], |r| r.get(0))?;
                let price_filtered = !filters.is_empty();
                // The match expression, then the price range: the order of every query below.
                let mut a: Vec<rusqlite::types::Value> = vec![e.clone().into()];
                a.extend(args.iter().cloned());
                let total: i64 = if price_filtered {
                    c.query_row(
                        &format!(
                            "SELECT COUNT(*) FROM product_search s CROSS JOIN products p ON p.rid = s.rowid {}",
                            and(&["product_search MATCH ?"])
                        ),
                        rusqlite::params_from_iter(a.iter()),
                        |r| r.get(0),
                    )?
                } else {
                    matches
                };
                let broad = sort == Sort::Relevance
                    && if facets.is_empty() { matches > RANKED_MATCHES_MAX } else { broad_within_facets };
                if broad {
                    // Walking the catalog in order with one index lookup per product stops after
                    // about (offset + page) × catalog / matches products; building the set of
                    // matches costs about as much as 1 lookup per 100 matches.
                    let catalog: i64 =
                        c.query_row("SELECT COALESCE(MAX(rid), 0) FROM products", [], |r| r.get(0))?;
                    let walked = (offset + i64::from(per_page)).saturating_mul(catalog) / matches.max(1);
                    // Not with a price range: the planner then picks its own index, and the
                    // estimate does not know how many of the matches are in the range.
                    let probe = !price_filtered && walked.saturating_mul(100) <= matches && walked <= 400;
                    let text_test = if probe {
                        PROBE
                    } else {
                        "p.rid IN (SELECT rowid FROM product_search WHERE product_search MATCH ?)"
                    };
                    // Without a price filter SQLite must be told to walk the catalog order's index;
                    // left to itself it sorted every match.
                    let from =
                        if price_filtered { "products p" } else { "products p INDEXED BY products_by_seq" };
                    let sql = format!("SELECT p.rid FROM {from} {} ORDER BY p.seq", and(&[text_test]));
                    (total, PageRows::Sql(sql, limit(a)))
                } else {
                    // CROSS JOIN keeps the search index as the outer loop: left to itself SQLite's
                    // planner walked a category's products and ran the text search once per
                    // product (0.4–1.4 s at 100,000 products). The facets weigh nothing in bm25,
                    // but their three tokens count in every product's length, where the shop's
                    // index has the terms alone: near-ties may rank in another order than online.
                    let ranked =
                        format!("bm25(product_search, {}, {}, 0.0), p.seq", RANK_WEIGHTS.0, RANK_WEIGHTS.1);
                    let order = order_by(sort, &ranked);
                    let sql = format!(
                        "SELECT p.rid FROM product_search s CROSS JOIN products p ON p.rid = s.rowid {} ORDER BY {order}",
                        and(&["product_search MATCH ?"])
                    );
                    (total, PageRows::Sql(sql, limit(a)))
                }
            }
        };
        // The page's products in order (narrow rows only), then each one's detail by `rid`.
        let rids = match rows {
            PageRows::Rids(rids) => rids,
            PageRows::Sql(sql, args) => c
                .prepare(&format!("{sql} LIMIT ? OFFSET ?"))?
                .query_map(rusqlite::params_from_iter(args.iter()), |r| r.get::<_, i64>(0))?
                .collect::<Result<Vec<i64>, _>>()?,
        };
        let mut detail = c.prepare_cached("SELECT detail FROM product_details WHERE rid = ?1")?;
        let items = rids
            .into_iter()
            .map(|rid| {
                let text: String = detail.query_row([rid], |r| r.get(0))?;
                serde_json::from_str::<ProductDetail>(&text)
                    .map(|d| d.summary)
                    .map_err(|e| CacheError::Data(e.to_string()))
            })
            .collect::<Result<Vec<ProductSummary>, _>>()?;
        Ok(ProductPage { items, total, page, per_page })
    }

    /// How many cached products a search finds per category, origin and fulfilment, each counted
    /// with the search's other filters and its own left out, as the shop counts them.
    pub fn facets(&self, q: &ProductQuery) -> Result<CatalogFacets, CacheError> {
        let text = match q.q.as_deref().map(str::trim) {
            Some(t) if !t.is_empty() => match match_expression(t) {
                Some(e) => Some(e),
                None => {
                    return CatalogFacets::from_counts(&[], &[], &[]).map_err(CacheError::Data);
                }
            },
            _ => None,
        };
        let c = self.conn.lock();
        let count = |facet: Facet| -> Result<Vec<(String, i64)>, CacheError> {
            let mut filters: Vec<String> = Vec::new();
            let mut args: Vec<rusqlite::types::Value> = Vec::new();
            let from = match &text {
                Some(e) => {
                    filters.push("product_search MATCH ?".into());
                    args.push(e.clone().into());
                    "product_search s CROSS JOIN products p ON p.rid = s.rowid"
                }
                None => "products p",
            };
            for other in Facet::ALL.into_iter().filter(|f| *f != facet) {
                if let Some(v) = other.value(q) {
                    filters.push(format!("p.{} = ?", other.column()));
                    args.push(v.to_owned().into());
                }
            }
            if let Some(v) = q.min_price_fen {
                filters.push("p.price_cny_fen >= ?".into());
                args.push(v.into());
            }
            if let Some(v) = q.max_price_fen {
                filters.push("p.price_cny_fen <= ?".into());
                args.push(v.into());
            }
            let where_sql =
                if filters.is_empty() { String::new() } else { format!("WHERE {}", filters.join(" AND ")) };
            let column = facet.column();
            let rows = c
                .prepare(&format!("SELECT p.{column}, COUNT(*) FROM {from} {where_sql} GROUP BY p.{column}"))?
                .query_map(rusqlite::params_from_iter(args.iter()), |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<Result<Vec<(String, i64)>, _>>()?;
            Ok(rows)
        };
        let categories = count(Facet::Category)?;
        let origins = count(Facet::Origin)?;
        let fulfilments = count(Facet::Fulfilment)?;
        CatalogFacets::from_counts(&categories, &origins, &fulfilments)
            .map_err(|e| CacheError::Data(format!("the cached catalog holds {e}")))
    }

    pub fn image(&self, name: &str) -> Result<Option<(String, Vec<u8>)>, CacheError> {
        Ok(self
            .conn
            .lock()
            .query_row("SELECT content_type, bytes FROM images WHERE name = ?1", [name], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .optional()?)
    }

    pub fn put_image(&self, name: &str, content_type: &str, bytes: &[u8]) -> Result<(), CacheError> {
        self.conn.lock().execute(
            "INSERT INTO images (name, content_type, bytes) VALUES (?1, ?2, ?3)
             ON CONFLICT (name) DO UPDATE SET content_type = excluded.content_type, bytes = excluded.bytes",
            params![name, content_type, bytes],
        )?;
        Ok(())
    }

    // -----------------------------------------------------------------------------------------
    // Cart

    pub fn put_cart(&self, cart: &Cart) -> Result<(), CacheError> {
        let text = serde_json::to_string(cart).map_err(|e| CacheError::Data(e.to_string()))?;
        self.conn.lock().execute(
            "INSERT INTO cart (id, cart, synced_at) VALUES (1, ?1, ?2) ON CONFLICT (id) DO UPDATE SET cart = excluded.cart, synced_at = excluded.synced_at",
            params![text, time_text(self.clock.now())],
        )?;
        Ok(())
    }

    /// Forgets the cached cart (an order was placed from it: the shop has emptied it).
    pub fn forget_cart(&self) -> Result<(), CacheError> {
        self.conn.lock().execute("DELETE FROM cart", [])?;
        Ok(())
    }

    pub fn cart(&self) -> Result<Option<Cart>, CacheError> {
        let t: Option<String> =
            self.conn.lock().query_row("SELECT cart FROM cart WHERE id = 1", [], |r| r.get(0)).optional()?;
        t.map(|t| serde_json::from_str(&t).map_err(|e| CacheError::Data(e.to_string()))).transpose()
    }

    // -----------------------------------------------------------------------------------------
    // Orders

    /// Stores orders as the shop sent them, and says which changed in a way the shopper must hear
    /// about (read in the same transaction as the write, so one change is told once).
    pub fn put_orders(&self, orders: &[Order]) -> Result<Vec<crate::order_events::OrderNotice>, CacheError> {
        let mut c = self.conn.lock();
        let tx = c.transaction()?;
        let mut notices = Vec::new();
        {
            let mut before = tx.prepare("SELECT status FROM orders WHERE id = ?1")?;
            for o in orders {
                let held: Option<String> = before.query_row([&o.id], |r| r.get(0)).optional()?;
                let Some(held) = held else { continue };
                let was = OrderStatus::parse(&held).ok_or_else(|| {
                    CacheError::Data(format!(
                        "order {} has the status {held:?} in the cache, which is not one",
                        o.id
                    ))
                })?;
                if let Some(event) = crate::order_events::event_for(was, o.status) {
                    notices.push(crate::order_events::OrderNotice {
                        order_id: o.id.clone(),
                        event,
                        order: Box::new(o.clone()),
                    });
                }
            }
            let mut st = tx.prepare(
                "INSERT INTO orders (id, status, created_at, updated_at, total_fen, body) VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                 ON CONFLICT (id) DO UPDATE SET status = excluded.status, updated_at = excluded.updated_at,
                 total_fen = excluded.total_fen, body = excluded.body",
            )?;
            for o in orders {
                st.execute(params![
                    o.id,
                    o.status.as_str(),
                    o.created_at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
                    o.updated_at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
                    o.totals.total.minor(),
                    serde_json::to_string(o).map_err(|e| CacheError::Data(e.to_string()))?
                ])?;
            }
        }
        tx.commit()?;
        Ok(notices)
    }

    pub fn order(&self, id: &str) -> Result<Option<Order>, CacheError> {
        let t: Option<String> = self
            .conn
            .lock()
            .query_row("SELECT body FROM orders WHERE id = ?1", [id], |r| r.get(0))
            .optional()?;
        t.map(|t| serde_json::from_str(&t).map_err(|e| CacheError::Data(e.to_string()))).transpose()
    }

    /// A page of cached orders, newest first, optionally one status.
    pub fn orders(
        &self,
        status: Option<OrderStatus>,
        page: u32,
        per_page: u32,
    ) -> Result<(Vec<Order>, i64), CacheError> {
        let c = self.conn.lock();
        // Two shapes of query, so each uses its index (`?1 IS NULL OR status = ?1` would use neither).
        let (count_sql, page_sql) = match status {
            None => (
                "SELECT COUNT(*) FROM orders WHERE ?1 IS NULL",
                "SELECT body FROM orders WHERE ?1 IS NULL ORDER BY created_at DESC, id DESC LIMIT ?2 OFFSET ?3",
            ),
            Some(_) => (
                "SELECT COUNT(*) FROM orders WHERE status = ?1",
                "SELECT body FROM orders WHERE status = ?1 ORDER BY created_at DESC, id DESC LIMIT ?2 OFFSET ?3",
            ),
        };
        let st = status.map(|s| s.as_str().to_owned());
        let total: i64 = c.prepare_cached(count_sql)?.query_row([&st], |r| r.get(0))?;
        let mut q = c.prepare_cached(page_sql)?;
        let rows = q
            .query_map(
                params![st, i64::from(per_page), i64::from(page.saturating_sub(1)) * i64::from(per_page)],
                |r| r.get::<_, String>(0),
            )?
            .map(|r| {
                r.map_err(CacheError::from)
                    .and_then(|t| serde_json::from_str(&t).map_err(|e| CacheError::Data(e.to_string())))
            })
            .collect::<Result<Vec<Order>, _>>()?;
        Ok((rows, total))
    }

    // -----------------------------------------------------------------------------------------
    // Payment attempts and checkout

    pub fn put_attempt(&self, a: &LocalAttempt) -> Result<(), CacheError> {
        self.conn.lock().execute(
            "INSERT INTO attempts (local_id, order_id, attempt_id, out_trade_no, method, mode, amount_fen, status, return_url,
             last_error, created_at, updated_at) VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12)
             ON CONFLICT (local_id) DO UPDATE SET attempt_id = excluded.attempt_id, out_trade_no = excluded.out_trade_no,
             amount_fen = excluded.amount_fen, status = excluded.status, last_error = excluded.last_error,
             updated_at = excluded.updated_at",
            params![
                a.local_id,
                a.order_id,
                a.attempt_id,
                a.out_trade_no,
                a.method,
                a.mode,
                a.amount_fen,
                a.status,
                a.return_url,
                a.last_error,
                a.created_at,
                a.updated_at
            ],
        )?;
        Ok(())
    }

    fn attempts_where(&self, clause: &str, arg: &str) -> Result<Vec<LocalAttempt>, CacheError> {
        let c = self.conn.lock();
        let mut st = c.prepare(&format!(
            "SELECT local_id, order_id, attempt_id, out_trade_no, method, mode, amount_fen, status, return_url, last_error,
             created_at, updated_at FROM attempts WHERE {clause} ORDER BY created_at"
        ))?;
        let rows = st
            .query_map([arg], |r| {
                let status: LocalStatus = r.get(7)?;
                Ok(LocalAttempt {
                    local_id: r.get(0)?,
                    order_id: r.get(1)?,
                    attempt_id: r.get(2)?,
                    out_trade_no: r.get(3)?,
                    method: r.get(4)?,
                    mode: r.get(5)?,
                    amount_fen: r.get(6)?,
                    status,
                    is_final: status.is_final(),
                    return_url: r.get(8)?,
                    last_error: r.get(9)?,
                    created_at: r.get(10)?,
                    updated_at: r.get(11)?,
                })
            })?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(rows)
    }

    pub fn attempt(&self, local_id: &str) -> Result<Option<LocalAttempt>, CacheError> {
        Ok(self.attempts_where("local_id = ?1", local_id)?.into_iter().next())
    }

    /// The attempt that sent `out_trade_no` to Alipay, if this install started it.
    pub fn attempt_for_trade(&self, out_trade_no: &str) -> Result<Option<LocalAttempt>, CacheError> {
        Ok(self.attempts_where("out_trade_no = ?1", out_trade_no)?.into_iter().next())
    }

    pub fn attempts_for(&self, order_id: &str) -> Result<Vec<LocalAttempt>, CacheError> {
        self.attempts_where("order_id = ?1", order_id)
    }

    /// Attempts whose outcome is not known yet.
    pub fn open_attempts(&self) -> Result<Vec<LocalAttempt>, CacheError> {
        let open: Vec<LocalStatus> = LocalStatus::ALL.iter().copied().filter(|s| !s.is_final()).collect();
        self.attempts_where(&format!("status IN ({}) AND ?1 = ?1", sql_list(&open)), "")
    }

    pub fn checkout(&self) -> Result<Option<String>, CacheError> {
        Ok(self
            .conn
            .lock()
            .query_row("SELECT state FROM checkout WHERE id = 1", [], |r| r.get(0))
            .optional()?)
    }

    pub fn set_checkout(&self, state: Option<&str>) -> Result<(), CacheError> {
        let c = self.conn.lock();
        match state {
            Some(s) => c.execute(
                "INSERT INTO checkout (id, state, updated_at) VALUES (1, ?1, ?2) ON CONFLICT (id) DO UPDATE SET state = excluded.state, updated_at = excluded.updated_at",
                params![s, time_text(self.clock.now())],
            )?,
            None => c.execute("DELETE FROM checkout WHERE id = 1", [])?,
        };
        Ok(())
    }

    pub fn put_invoice(&self, order_id: &str, pdf: &[u8]) -> Result<(), CacheError> {
        self.conn.lock().execute(
            "INSERT INTO invoices (order_id, pdf, fetched_at) VALUES (?1, ?2, ?3) ON CONFLICT (order_id) DO UPDATE SET pdf = excluded.pdf",
            params![order_id, pdf, time_text(self.clock.now())],
        )?;
        Ok(())
    }

    pub fn invoice(&self, order_id: &str) -> Result<Option<Vec<u8>>, CacheError> {
        Ok(self
            .conn
            .lock()
            .query_row("SELECT pdf FROM invoices WHERE order_id = ?1", [order_id], |r| r.get(0))
            .optional()?)
    }

    /// Forgets everything belonging to the signed-in buyer (on sign-out); the catalog stays.
    pub fn clear_account_data(&self) -> Result<(), CacheError> {
        let c = self.conn.lock();
        c.execute_batch(
            "DELETE FROM cart; DELETE FROM orders; DELETE FROM attempts; DELETE FROM checkout; DELETE FROM invoices;
             DELETE FROM meta WHERE key IN ('orders_cursor', 'orders_synced_at');",
        )?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_attempt_is_final_exactly_when_the_shop_says_so() {
        for s in LocalStatus::ALL {
            assert_eq!(s.is_final(), s.shop().is_some_and(AttemptStatus::is_final), "{s}");
            if let Some(shop) = s.shop() {
                assert_eq!(LocalStatus::from_shop(shop), *s);
            }
        }
        assert!(!LocalStatus::Starting.is_final() && !LocalStatus::Returned.is_final());
        let mut a =
            LocalAttempt::starting("LA1".into(), "o1", PaymentMethod::Huabei, PayMode::Qr, "x", "t".into());
        assert!(!a.is_final());
        assert!(a.mark(LocalStatus::Unknown), "the shop could not be reached");
        a.adopt(AttemptStatus::Closed);
        assert!(a.is_final());
        let json = serde_json::to_value(&a).unwrap();
        assert_eq!((json["status"].as_str(), json["is_final"].as_bool()), (Some("closed"), Some(true)));
        // What the client learns by itself never moves a final attempt; the shop's answer does.
        assert!(!a.mark(LocalStatus::Unknown));
        assert!(!a.mark(LocalStatus::Returned));
        assert_eq!(a.status(), LocalStatus::Closed);
        a.adopt(AttemptStatus::Paid);
        assert_eq!(a.status(), LocalStatus::Paid);
        assert!(!a.mark(LocalStatus::Unknown), "a paid attempt stays paid when the network drops");
        assert_eq!(a.status(), LocalStatus::Paid);
    }

    /// The cache holds the user's orders and addresses: private, with its WAL, whatever the umask.
    #[cfg(unix)]
    #[test]
    fn the_cache_file_is_private_to_the_user() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cache.sqlite3");
        let cache = Cache::open(&path).unwrap();
        cache.set_meta("probe", "1").unwrap();
        let wal = dir.path().join("cache.sqlite3-wal");
        assert_eq!(haitao_files::mode(&path).unwrap(), 0o600);
        assert_eq!(haitao_files::mode(&wal).unwrap(), 0o600, "the WAL takes the file's mode");
        drop(cache);
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let _again = Cache::open(&path).unwrap();
        assert_eq!(haitao_files::mode(&path).unwrap(), 0o600, "a looser file is tightened");
    }

    #[test]
    fn open_attempts_are_the_unfinished_ones_and_a_damaged_status_is_an_error() {
        let cache = Cache::in_memory().unwrap();
        for (i, s) in LocalStatus::ALL.iter().enumerate() {
            let mut a = LocalAttempt::starting(
                format!("LA{i}"),
                "o1",
                PaymentMethod::HuabeiInstallments { periods: 6 },
                PayMode::InApp,
                "x",
                format!("2026-12-01T00:00:0{i}.000Z"),
            );
            a.set(*s);
            cache.put_attempt(&a).unwrap();
        }
        let open: Vec<LocalStatus> =
            cache.open_attempts().unwrap().iter().map(LocalAttempt::status).collect();
        let want: Vec<LocalStatus> = LocalStatus::ALL.iter().copied().filter(|s| !s.is_final()).collect();
        assert_eq!(open, want);
        let back = cache.attempt("LA0").unwrap().unwrap();
        assert_eq!(back.method, PaymentMethod::HuabeiInstallments { periods: 6 });

        cache.conn.lock().execute("UPDATE attempts SET status = 'payed' WHERE local_id = 'LA1'", []).unwrap();
        let err = cache.attempt("LA1").unwrap_err();
        assert!(err.to_string().contains("unknown local payment status \"payed\""), "{err}");
        cache
            .conn
            .lock()
            .execute("UPDATE attempts SET status = 'started', method = 'huabei_7' WHERE local_id = 'LA1'", [])
            .unwrap();
        let err = cache.attempt("LA1").unwrap_err();
        assert!(err.to_string().contains("unknown payment method \"huabei_7\""), "{err}");
    }

    #[test]
    fn version_7_rewrites_cached_carrier_names_as_codes() {
        let mut conn = Connection::open_in_memory().unwrap();
        migrations().to_version(&mut conn, 6).unwrap();
        let insert = "INSERT INTO orders (id, status, created_at, updated_at, total_fen, body) VALUES (?1, 'shipped', 't', 't', 1, ?2)";
        let old = r#"{"id":"O-1","waybill":{"number":"HT1","carrier":"海淘国际物流 Haitao Express"}}"#;
        conn.execute(insert, params!["O-1", old]).unwrap();
        conn.execute(insert, params!["O-2", r#"{"id":"O-2","waybill":null}"#]).unwrap();
        conn.execute(insert, params!["O-3", r#"{"id":"O-3","waybill":{"number":"X","carrier":"other"}}"#])
            .unwrap();
        migrations().to_latest(&mut conn).unwrap();
        let carrier = |id: &str| -> Option<String> {
            conn.query_row(
                "SELECT json_extract(body, '$.waybill.carrier') FROM orders WHERE id = ?1",
                [id],
                |r| r.get(0),
            )
            .unwrap()
        };
        assert_eq!(carrier("O-1").as_deref(), Some("haitao_express"));
        assert_eq!(carrier("O-2"), None);
        assert_eq!(
            carrier("O-3").as_deref(),
            Some("other"),
            "an unknown name is left for the decoder to report"
        );
    }

    #[test]
    fn refuses_damaged_and_newer_files_without_touching_them() {
        let dir = tempfile::tempdir().unwrap();
        let bad = dir.path().join("bad.sqlite3");
        std::fs::write(&bad, vec![0x42u8; 4096]).unwrap();
        assert!(matches!(Cache::open(&bad), Err(CacheError::Corrupt { .. })));
        assert_eq!(std::fs::read(&bad).unwrap(), vec![0x42u8; 4096]);
        let newer = dir.path().join("newer.sqlite3");
        Connection::open(&newer).unwrap().pragma_update(None, "user_version", KNOWN + 1).unwrap();
        assert!(matches!(Cache::open(&newer), Err(CacheError::TooNew { found, .. }) if found == KNOWN + 1));
        let ok = dir.path().join("ok.sqlite3");
        Cache::open(&ok).unwrap().set_meta("a", "1").unwrap();
        assert_eq!(
            Cache::open(&ok).unwrap().meta("a").unwrap().as_deref(),
            Some("1"),
            "reopening keeps data"
        );
    }
}
