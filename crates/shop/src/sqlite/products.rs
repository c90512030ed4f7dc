//! The catalog in SQLite: seeding, repricing, products, search, categories, changes, meta.

use super::*;

impl CatalogStore for SqliteStore {
    fn seed_catalog(&self, fx: &FxRates) -> StoreResult<usize> {
        self.with(|c| catalog::seed_if_empty(c, fx))
    }

    fn reprice(&self, fx: &FxRates) -> StoreResult<usize> {
        self.with(|c| catalog::reprice(c, fx))
    }

    fn product(&self, id: &str) -> StoreResult<Option<ProductRow>> {
        self.with(|c| catalog::get(c, id))
    }

    fn search(&self, q: &ProductQuery) -> StoreResult<ProductPage> {
        self.with(|c| catalog::search(c, q))
    }

    fn categories(&self) -> StoreResult<Vec<CategoryInfo>> {
        self.with(|c| catalog::categories(c))
    }

    fn catalog_changes(
        &self,
        since: i64,
        limit: u32,
        cfg: &PricingConfig,
        fx: &FxRates,
    ) -> StoreResult<CatalogChanges> {
        self.with(|c| catalog::changes(c, since, limit, cfg, fx))
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
