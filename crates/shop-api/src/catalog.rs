//! Catalog: products, categories, search, prices in the origin currency and in CNY.

use chrono::{DateTime, Utc};
use haitao_alipay::money::{Currency, Money};
use serde::{Deserialize, Serialize};

/// Text in both of Haitao's languages.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, specta::Type, utoipa::ToSchema)]
pub struct Localized {
    pub zh: String,
    pub en: String,
}

#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    specta::Type,
    utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Category {
    Cosmetics,
    MaternalBaby,
    Health,
    Food,
    Electronics,
    Fashion,
    Home,
    Luxury,
}

impl Category {
    pub const ALL: [Category; 8] = [
        Category::Cosmetics,
        Category::MaternalBaby,
        Category::Health,
        Category::Food,
        Category::Electronics,
        Category::Fashion,
        Category::Home,
        Category::Luxury,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Category::Cosmetics => "cosmetics",
            Category::MaternalBaby => "maternal_baby",
            Category::Health => "health",
            Category::Food => "food",
            Category::Electronics => "electronics",
            Category::Fashion => "fashion",
            Category::Home => "home",
            Category::Luxury => "luxury",
        }
    }

    pub fn parse(s: &str) -> Option<Category> {
        Category::ALL.into_iter().find(|c| c.as_str() == s)
    }
}

/// Country of origin (ISO 3166-1 alpha-2).
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    specta::Type,
    utoipa::ToSchema,
)]
pub enum Country {
    US,
    JP,
    KR,
    DE,
    FR,
    IT,
    GB,
    AU,
    NZ,
    CH,
    HK,
    CA,
    CN,
}

impl Country {
    pub const ALL: [Country; 13] = [
        Country::US,
        Country::JP,
        Country::KR,
        Country::DE,
        Country::FR,
        Country::IT,
        Country::GB,
        Country::AU,
        Country::NZ,
        Country::CH,
        Country::HK,
        Country::CA,
        Country::CN,
    ];

    pub fn code(self) -> &'static str {
        match self {
            Country::US => "US",
            Country::JP => "JP",
            Country::KR => "KR",
            Country::DE => "DE",
            Country::FR => "FR",
            Country::IT => "IT",
            Country::GB => "GB",
            Country::AU => "AU",
            Country::NZ => "NZ",
            Country::CH => "CH",
            Country::HK => "HK",
            Country::CA => "CA",
            Country::CN => "CN",
        }
    }

    pub fn parse(s: &str) -> Option<Country> {
        Country::ALL.into_iter().find(|c| c.code().eq_ignore_ascii_case(s))
    }

    /// The currency goods from this country are priced in.
    pub fn currency(self) -> Currency {
        match self {
            Country::US => Currency::Usd,
            Country::JP => Currency::Jpy,
            Country::KR => Currency::Krw,
            Country::DE | Country::FR | Country::IT => Currency::Eur,
            Country::GB => Currency::Gbp,
            Country::AU => Currency::Aud,
            Country::NZ => Currency::Nzd,
            Country::CH => Currency::Chf,
            Country::HK => Currency::Hkd,
            Country::CA => Currency::Cad,
            Country::CN => Currency::Cny,
        }
    }
}

/// How goods reach the buyer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, specta::Type, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Fulfilment {
    /// Stocked in a bonded warehouse in China; ships in days, priced in CNY or the origin currency.
    Bonded,
    /// Shipped from abroad by international mail.
    DirectMail,
}

impl Fulfilment {
    pub const ALL: [Fulfilment; 2] = [Fulfilment::Bonded, Fulfilment::DirectMail];

    pub fn as_str(self) -> &'static str {
        match self {
            Fulfilment::Bonded => "bonded",
            Fulfilment::DirectMail => "direct_mail",
        }
    }

    pub fn parse(s: &str) -> Option<Fulfilment> {
        Fulfilment::ALL.into_iter().find(|f| f.as_str() == s)
    }
}

/// The tax category of a product; rates come from the shop's tax configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, specta::Type, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TaxCategory {
    /// 13% VAT, no consumption tax: 9.1% composite.
    General,
    /// 9% VAT (some foods, agricultural goods, books): 6.3% composite.
    Reduced,
    /// 13% VAT + 15% consumption tax: 23.06% composite.
    HighEndCosmetics,
    /// 13% VAT + 10% consumption tax.
    Wine,
    /// 13% VAT + 20% consumption tax.
    HighEndWatch,
    /// 13% VAT + 10% consumption tax (precious jewellery and jade).
    Jewelry,
}

impl TaxCategory {
    pub const ALL: [TaxCategory; 6] = [
        TaxCategory::General,
        TaxCategory::Reduced,
        TaxCategory::HighEndCosmetics,
        TaxCategory::Wine,
        TaxCategory::HighEndWatch,
        TaxCategory::Jewelry,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            TaxCategory::General => "general",
            TaxCategory::Reduced => "reduced",
            TaxCategory::HighEndCosmetics => "high_end_cosmetics",
            TaxCategory::Wine => "wine",
            TaxCategory::HighEndWatch => "high_end_watch",
            TaxCategory::Jewelry => "jewelry",
        }
    }

    pub fn parse(s: &str) -> Option<TaxCategory> {
        TaxCategory::ALL.into_iter().find(|t| t.as_str() == s)
    }
}

/// A rate with its scale: `rate_ppm / 1_000_000`. 9.1% is `91_000`; 7.1023 CNY per USD is `7_102_300`.
pub type Ppm = i64;

/// A product as listed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, specta::Type, utoipa::ToSchema)]
pub struct ProductSummary {
    pub id: String,
    pub name: Localized,
    pub brand: String,
    pub category: Category,
    pub origin: Country,
    pub fulfilment: Fulfilment,
    pub tax_category: TaxCategory,
    /// Price in the origin currency (CNY for bonded stock priced locally).
    pub price: Money,
    /// The same price converted to CNY with the shop's current rate.
    pub price_cny: Money,
    pub stock: i64,
    /// Image path relative to the shop's `/api/v1/images/`.
    pub image: String,
}

/// Currency conversion used for a price.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, specta::Type, utoipa::ToSchema)]
pub struct FxQuote {
    pub from: Currency,
    /// CNY per one unit of `from`, in millionths.
    pub cny_per_unit_ppm: Ppm,
    pub as_of: DateTime<Utc>,
    /// Where the rate comes from, in both languages.
    pub source: Localized,
}

/// What one unit costs delivered, tax included.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, specta::Type, utoipa::ToSchema)]
pub struct LandedCost {
    pub price: Money,
    pub fx: FxQuote,
    pub price_cny: Money,
    /// Cross-border composite tax rate, in millionths (9.1% = 91000).
    pub tax_rate_ppm: Ppm,
    pub vat_rate_ppm: Ppm,
    pub consumption_tax_rate_ppm: Ppm,
    pub tax_cny: Money,
    /// Shipping for one unit on its own.
    pub shipping_cny: Money,
    pub total_cny: Money,
}

/// A product with everything the product page shows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, specta::Type, utoipa::ToSchema)]
pub struct ProductDetail {
    #[serde(flatten)]
    pub summary: ProductSummary,
    pub description: Localized,
    pub weight_grams: i64,
    pub landed: LandedCost,
    /// Catalog version at which this product last changed.
    pub version: i64,
}

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, specta::Type, utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Sort {
    #[default]
    Relevance,
    PriceAsc,
    PriceDesc,
    Newest,
    Name,
}

/// Catalog search. Every field is optional.
#[derive(
    Debug,
    Clone,
    PartialEq,
    Eq,
    Default,
    Serialize,
    Deserialize,
    specta::Type,
    utoipa::ToSchema,
    utoipa::IntoParams,
)]
#[into_params(parameter_in = Query)]
pub struct ProductQuery {
    /// Free text, Chinese or English.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub q: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category: Option<Category>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin: Option<Country>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fulfilment: Option<Fulfilment>,
    /// Lowest CNY price, in fen.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_price_fen: Option<i64>,
    /// Highest CNY price, in fen.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_price_fen: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sort: Option<Sort>,
    /// 1-based.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[param(minimum = 1, maximum = 1_000_000)]
    #[schema(minimum = 1, maximum = 1_000_000)]
    pub page: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[param(minimum = 1, maximum = 200)]
    #[schema(minimum = 1, maximum = 200)]
    pub per_page: Option<u32>,
}

impl ProductQuery {
    pub const MAX_PER_PAGE: u32 = 200;
    /// The last page number the shop answers (far beyond any catalog; bounds the OFFSET).
    pub const MAX_PAGE: u32 = 1_000_000;
    pub const DEFAULT_PER_PAGE: u32 = 48;
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, specta::Type, utoipa::ToSchema)]
pub struct ProductPage {
    pub items: Vec<ProductSummary>,
    pub total: i64,
    pub page: u32,
    pub per_page: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, specta::Type, utoipa::ToSchema)]
pub struct CategoryInfo {
    pub category: Category,
    pub name: Localized,
    pub count: i64,
}

/// How many results a search has per category, origin and fulfilment, each counted with every
/// other filter of the search applied and its own left out (what the shopper gets by picking it).
/// Every value is listed, in declaration order, with zero where nothing matches.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, specta::Type, utoipa::ToSchema)]
pub struct CatalogFacets {
    pub categories: Vec<CategoryCount>,
    pub origins: Vec<OriginCount>,
    pub fulfilments: Vec<FulfilmentCount>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, specta::Type, utoipa::ToSchema)]
pub struct CategoryCount {
    pub category: Category,
    pub count: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, specta::Type, utoipa::ToSchema)]
pub struct OriginCount {
    pub origin: Country,
    pub count: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, specta::Type, utoipa::ToSchema)]
pub struct FulfilmentCount {
    pub fulfilment: Fulfilment,
    pub count: i64,
}

/// A filter of the catalog search that results are counted by (see [`CatalogFacets`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Facet {
    Category,
    Origin,
    Fulfilment,
}

impl Facet {
    pub const ALL: [Facet; 3] = [Facet::Category, Facet::Origin, Facet::Fulfilment];

    /// The products column holding it, in the shop's database and the client's cache alike.
    pub fn column(self) -> &'static str {
        match self {
            Facet::Category => "category",
            Facet::Origin => "origin",
            Facet::Fulfilment => "fulfilment",
        }
    }

    /// The query's value for it, as that column stores it.
    pub fn value(self, q: &ProductQuery) -> Option<&'static str> {
        match self {
            Facet::Category => q.category.map(Category::as_str),
            Facet::Origin => q.origin.map(Country::code),
            Facet::Fulfilment => q.fulfilment.map(Fulfilment::as_str),
        }
    }
}

impl CatalogFacets {
    /// From `(code, count)` rows as a database groups them. A code that names no value is an error
    /// that names it (`category "toys"`): it is never counted under another.
    pub fn from_counts(
        categories: &[(String, i64)],
        origins: &[(String, i64)],
        fulfilments: &[(String, i64)],
    ) -> Result<CatalogFacets, String> {
        fn tally<T: Copy + PartialEq>(
            all: &[T],
            rows: &[(String, i64)],
            kind: &str,
            parse: impl Fn(&str) -> Option<T>,
        ) -> Result<Vec<(T, i64)>, String> {
            let mut out: Vec<(T, i64)> = all.iter().map(|v| (*v, 0)).collect();
            for (code, n) in rows {
                let v = parse(code).ok_or_else(|| format!("{kind} {code:?}"))?;
                if let Some(slot) = out.iter_mut().find(|(k, _)| *k == v) {
                    slot.1 += n;
                }
            }
            Ok(out)
        }
        Ok(CatalogFacets {
            categories: tally(&Category::ALL, categories, "category", Category::parse)?
                .into_iter()
                .map(|(category, count)| CategoryCount { category, count })
                .collect(),
            origins: tally(&Country::ALL, origins, "origin", |s| {
                Country::ALL.into_iter().find(|c| c.code() == s)
            })?
            .into_iter()
            .map(|(origin, count)| OriginCount { origin, count })
            .collect(),
            fulfilments: tally(&Fulfilment::ALL, fulfilments, "fulfilment", Fulfilment::parse)?
                .into_iter()
                .map(|(fulfilment, count)| FulfilmentCount { fulfilment, count })
                .collect(),
        })
    }
}

/// Products changed since a catalog version, for incremental client sync.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, specta::Type, utoipa::ToSchema)]
pub struct CatalogChanges {
    /// The catalog version this answer brings the client to.
    pub version: i64,
    pub products: Vec<ProductDetail>,
    /// Whether more changes remain after `version` (ask again with `since = version`).
    pub more: bool,
}

/// Current FX table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, specta::Type, utoipa::ToSchema)]
pub struct FxTable {
    pub as_of: DateTime<Utc>,
    /// Where the rates come from, in both languages.
    pub source: Localized,
    pub rates: Vec<FxQuote>,
}
