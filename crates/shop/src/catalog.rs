//! The catalog's products as the shop prices them (landed cost in yuan, FX quote), category names,
//! and the shipped images. Storing, seeding and searching them is the store's (src/sqlite/products.rs).

use haitao_alipay::money::{Currency, Money};
use haitao_shop_api::catalog::{
    Category, Country, Fulfilment, FxQuote, LandedCost, Localized, ProductDetail, ProductSummary, TaxCategory,
};

use crate::error::ApiError;
use crate::pricing::{FxRates, LineInput, PricingConfig, price};

include!(concat!(env!("OUT_DIR"), "/images.rs"));

/// The image bytes and content type of a shipped catalog image.
pub fn image(name: &str) -> Option<(&'static [u8], &'static str)> {
    let idx = IMAGES.binary_search_by(|(n, _)| (*n).cmp(name)).ok()?;
    let (_, bytes) = IMAGES.get(idx)?;
    let ct = if name.ends_with(".svg") { "image/svg+xml" } else { "application/octet-stream" };
    Some((bytes, ct))
}

/// A product as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProductRow {
    pub id: String,
    pub seq: i64,
    pub category: Category,
    pub brand: String,
    pub brand_zh: String,
    pub origin: Country,
    pub price: Money,
    pub price_cny_fen: i64,
    pub fulfilment: Fulfilment,
    pub tax_category: TaxCategory,
    pub weight_grams: i64,
    pub stock: i64,
    pub reserved: i64,
    pub name: Localized,
    pub description: Localized,
    pub image: String,
    pub version: i64,
}

impl ProductRow {
    pub fn available(&self) -> i64 {
        (self.stock - self.reserved).max(0)
    }

    pub fn summary(&self) -> ProductSummary {
        ProductSummary {
            id: self.id.clone(),
            name: self.name.clone(),
            brand: self.brand.clone(),
            category: self.category,
            origin: self.origin,
            fulfilment: self.fulfilment,
            tax_category: self.tax_category,
            price: self.price,
            price_cny: Money::from_minor(self.price_cny_fen, Currency::Cny),
            stock: self.available(),
            image: self.image.clone(),
        }
    }

    pub fn line(&self, quantity: i64) -> LineInput {
        LineInput {
            unit_price: self.price,
            quantity,
            tax_category: self.tax_category,
            fulfilment: self.fulfilment,
            weight_grams: self.weight_grams,
        }
    }

    /// The product page view with its landed cost for one unit.
    pub fn detail(&self, cfg: &PricingConfig, fx: &FxRates) -> Result<ProductDetail, ApiError> {
        let priced = price(cfg, fx, &[self.line(1)]).map_err(ApiError::internal)?;
        let line = priced.lines.first().ok_or_else(|| ApiError::internal("pricing produced no line"))?;
        let rates = cfg.tax_rates(self.tax_category);
        let rate = fx.rate(self.price.currency()).ok_or_else(|| ApiError::internal("no FX rate"))?;
        Ok(ProductDetail {
            summary: self.summary(),
            description: self.description.clone(),
            weight_grams: self.weight_grams,
            landed: LandedCost {
                price: self.price,
                fx: FxQuote {
                    from: self.price.currency(),
                    cny_per_unit_ppm: rate,
                    as_of: fx.as_of,
                    source: fx.source.clone(),
                },
                price_cny: line.unit_price_cny,
                tax_rate_ppm: line.tax_rate_ppm,
                vat_rate_ppm: rates.vat_ppm,
                consumption_tax_rate_ppm: rates.consumption_ppm,
                tax_cny: line.tax_cny,
                shipping_cny: line.shipping_cny,
                total_cny: line.total_cny,
            },
            version: self.version,
        })
    }
}

pub fn category_name(c: Category) -> Localized {
    let (zh, en) = match c {
        Category::Cosmetics => ("美妆个护", "Beauty"),
        Category::MaternalBaby => ("母婴", "Mother & Baby"),
        Category::Health => ("营养保健", "Health"),
        Category::Food => ("食品酒水", "Food & Drink"),
        Category::Electronics => ("数码家电", "Electronics"),
        Category::Fashion => ("服饰鞋包", "Fashion"),
        Category::Home => ("家居厨具", "Home"),
        Category::Luxury => ("奢品", "Luxury"),
    };
    Localized { zh: zh.into(), en: en.into() }
}
