//! What turning a cart into an order takes: a verified orderer, a delivery address, goods in
//! stock, and a price within the per-order and annual cross-border limits.
//!
//! A rule only: the store reads the account, address, cart and the orderer's quota inside the
//! transaction that reserves the stock and writes the order (`OrderStore::place_order`), and runs
//! [`order_from_cart`] between the reads and the writes.

use chrono::{DateTime, Utc};
use haitao_alipay::money::{Currency, Money};
use haitao_shop_api::account::Address;
use haitao_shop_api::error::ErrorCode;
use haitao_shop_api::orders::CartNotice;

use crate::catalog::ProductRow;
use crate::error::ApiError;
use crate::pricing::{FxRates, PricingConfig, amount_text, limit_notices, price};
use crate::store::{AccountRow, NewOrder};

/// A buyer's request to place their cart as an order, with what the shop decided around it: the
/// order's id, the prices and limits in force, and the time.
#[derive(Debug, Clone)]
pub struct PlaceOrder {
    pub id: String,
    pub account_id: String,
    pub idempotency_key: String,
    pub request_hash: String,
    pub address_id: String,
    pub pricing: PricingConfig,
    pub fx: FxRates,
    pub quota_year: i32,
    pub pay_deadline: DateTime<Utc>,
    pub now: DateTime<Utc>,
}

/// What the store read for a [`PlaceOrder`], inside its transaction.
#[derive(Debug, Clone)]
pub struct CartAsRead {
    pub account: AccountRow,
    pub address: Option<Address>,
    pub items: Vec<(ProductRow, i64)>,
    /// Fen of the orderer's annual quota used by paid orders and reserved by unpaid ones.
    pub quota_used_fen: i64,
    pub quota_reserved_fen: i64,
}

/// The order a cart becomes, or why it cannot: the account's real name is not verified, the
/// address is not one of the account's, the cart is empty, a product has too little stock, or
/// the order goes over the per-order limit or what is left of the orderer's annual quota.
pub fn order_from_cart(p: &PlaceOrder, read: CartAsRead) -> Result<NewOrder, ApiError> {
    let (Some(name), Some(id_number)) = (read.account.real_name, read.account.id_number) else {
        return Err(ApiError::conflict(
            ErrorCode::RealNameRequired,
            "verify your real name before ordering cross-border goods",
        ));
    };
    let address = read.address.ok_or_else(|| ApiError::validation("address_id", "no such address"))?;
    if read.items.is_empty() {
        return Err(ApiError::conflict(ErrorCode::EmptyCart, "the cart is empty"));
    }
    for (product, quantity) in &read.items {
        if *quantity > product.available() {
            return Err(ApiError::conflict(
                ErrorCode::OutOfStock,
                format!("only {} of {} left", product.available(), product.id),
            ));
        }
    }
    let inputs: Vec<_> = read.items.iter().map(|(product, quantity)| product.line(*quantity)).collect();
    let priced = price(&p.pricing, &p.fx, &inputs).map_err(ApiError::internal)?;
    let limit = p.pricing.annual_limit.minor();
    let remaining =
        Money::from_minor((limit - read.quota_used_fen - read.quota_reserved_fen).max(0), Currency::Cny);
    for notice in limit_notices(&p.pricing, &priced, Some(remaining)) {
        match notice {
            CartNotice::OrderLimitExceeded { limit, .. } => {
                return Err(ApiError::conflict(
                    ErrorCode::OrderLimitExceeded,
                    format!("a cross-border order is limited to {}; split the cart", amount_text(limit)),
                ));
            }
            CartNotice::AnnualQuotaExceeded { .. } => {
                return Err(ApiError::conflict(
                    ErrorCode::AnnualQuotaExceeded,
                    format!(
                        "this order would exceed the orderer's {} annual limit",
                        amount_text(p.pricing.annual_limit)
                    ),
                ));
            }
            _ => {}
        }
    }
    Ok(NewOrder {
        id: p.id.clone(),
        account_id: p.account_id.clone(),
        idempotency_key: p.idempotency_key.clone(),
        request_hash: p.request_hash.clone(),
        orderer_name: name,
        orderer_id_number: id_number,
        quota_year: p.quota_year,
        address,
        lines: read.items,
        priced,
        pay_deadline: p.pay_deadline,
        now: p.now,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::fixtures::t0;
    use haitao_shop_api::account::AddressInput;
    use haitao_shop_api::catalog::{Category, Country, Fulfilment, Localized, TaxCategory};

    fn product(id: &str, cny_fen: i64, stock: i64, reserved: i64) -> ProductRow {
        ProductRow {
            id: id.into(),
            seq: 1,
            category: Category::Health,
            brand: "Brand".into(),
            brand_zh: "品牌".into(),
            origin: Country::JP,
            price: Money::from_minor(cny_fen, Currency::Cny),
            price_cny_fen: cny_fen,
            fulfilment: Fulfilment::Bonded,
            tax_category: TaxCategory::General,
            weight_grams: 100,
            stock,
            reserved,
            name: Localized { zh: "维生素".into(), en: "Vitamin".into() },
            description: Localized { zh: String::new(), en: String::new() },
            image: String::new(),
            version: 1,
        }
    }

    fn request() -> PlaceOrder {
        PlaceOrder {
            id: "HO1".into(),
            account_id: "A1".into(),
            idempotency_key: "key-0001".into(),
            request_hash: "h".into(),
            address_id: "ad1".into(),
            pricing: PricingConfig::default(),
            fx: FxRates::demo(),
            quota_year: 2026,
            pay_deadline: t0() + chrono::Duration::minutes(30),
            now: t0(),
        }
    }

    fn cart(items: Vec<(ProductRow, i64)>, used_fen: i64) -> CartAsRead {
        CartAsRead {
            account: AccountRow {
                id: "A1".into(),
                phone: "13800000000".into(),
                password_hash: String::new(),
                real_name: Some("张伟".into()),
                id_number: Some("110105198803151232".into()),
                birth_date: None,
                verified_at: Some(t0()),
                created_at: t0(),
            },
            address: Some(Address {
                id: "ad1".into(),
                fields: AddressInput {
                    recipient: "张伟".into(),
                    phone: "13800000000".into(),
                    province: "北京市".into(),
                    city: "北京市".into(),
                    district: "朝阳区".into(),
                    street: "建国路 1 号".into(),
                    postal_code: None,
                    is_default: true,
                },
            }),
            items,
            quota_used_fen: used_fen,
            quota_reserved_fen: 0,
        }
    }

    fn refusal(p: &PlaceOrder, read: CartAsRead) -> String {
        match order_from_cart(p, read) {
            Ok(o) => format!("placed {}", o.id),
            Err(e) => format!("{:?} {}", e.problem.code, e.problem.field.unwrap_or_default()),
        }
    }

    #[test]
    fn a_cart_becomes_an_order_only_within_every_rule() {
        let p = request();
        let o = order_from_cart(&p, cart(vec![(product("P1", 10_000, 5, 0), 2)], 0)).expect("placeable");
        assert_eq!((o.orderer_name.as_str(), o.lines.len(), o.quota_year), ("张伟", 1, 2026));
        assert_eq!(o.priced.totals.goods, Money::from_minor(20_000, Currency::Cny));

        let mut unverified = cart(vec![(product("P1", 10_000, 5, 0), 1)], 0);
        unverified.account.real_name = None;
        assert_eq!(refusal(&p, unverified), "RealNameRequired ");
        let mut no_address = cart(vec![(product("P1", 10_000, 5, 0), 1)], 0);
        no_address.address = None;
        assert_eq!(refusal(&p, no_address), "Validation address_id");
        assert_eq!(refusal(&p, cart(vec![], 0)), "EmptyCart ");
        // Reserved stock is not available.
        assert_eq!(refusal(&p, cart(vec![(product("P1", 10_000, 5, 4), 2)], 0)), "OutOfStock ");
        // Over the per-order limit with more than one item: split the cart.
        let over = p.pricing.order_limit.minor() / 2 + 100;
        assert_eq!(refusal(&p, cart(vec![(product("P1", over, 5, 0), 2)], 0)), "OrderLimitExceeded ");
        // What is left of the year's quota, counting paid and reserved orders.
        let nearly_used = p.pricing.annual_limit.minor() - 10_000;
        assert_eq!(
            refusal(&p, cart(vec![(product("P1", 20_000, 5, 0), 1)], nearly_used)),
            "AnnualQuotaExceeded "
        );
        assert!(order_from_cart(&p, cart(vec![(product("P1", 9_000, 5, 0), 1)], nearly_used)).is_ok());
    }
}
