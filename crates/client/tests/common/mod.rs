//! The client against an in-process shop and sandbox, talking HTTP exactly as it would to a remote
//! shop. The shop and sandbox are test dependencies only.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use haitao_client::{Cache, Client, MemoryStore, SecretStore, ShopApi};
use haitao_sandbox_api::{Paid, PayAnswer, PayRequest, PayWith, TradeView, path};
use serde_json::Value;

pub struct World {
    pub sandbox: haitao_alipay_sandbox::Running,
    pub shop: haitao_shop::RunningShop,
    pub secrets: MemoryStore,
    pub dir: tempfile::TempDir,
}

pub async fn world() -> World {
    world_with(false).await
}

/// A world whose shop runs on the sandbox's clock, as the app's built-in pair does.
pub async fn world_on_one_clock() -> World {
    world_with(true).await
}

async fn world_with(one_clock: bool) -> World {
    let sandbox = haitao_alipay_sandbox::start(haitao_alipay_sandbox::Config::new(
        None,
        "127.0.0.1:0".parse().unwrap(),
    ))
    .await
    .unwrap();
    let mut cfg =
        haitao_shop::ShopConfig::local(None, "127.0.0.1:0".parse().unwrap(), sandbox.base_url().clone());
    cfg.job_interval = std::time::Duration::from_millis(200);
    if one_clock {
        cfg.clock = sandbox.state.clock();
    }
    let shop = haitao_shop::start(cfg).await.unwrap();
    World { sandbox, shop, secrets: MemoryStore::default(), dir: tempfile::tempdir().unwrap() }
}

impl World {
    /// A client with its cache file in the test's directory (a second call "restarts" the app).
    pub fn client(&self) -> Client {
        self.client_with(Arc::new(self.secrets.clone()))
    }

    pub fn client_with(&self, secrets: Arc<dyn SecretStore>) -> Client {
        let api = ShopApi::new(self.shop.base_url().clone()).unwrap();
        let cache = Cache::open(&self.dir.path().join("cache.sqlite3")).unwrap();
        Client::new(api, cache, secrets)
    }

    pub async fn sandbox_post(&self, path: &str, body: &impl serde::Serialize) -> (u16, Value) {
        let r = reqwest::Client::new()
            .post(self.sandbox.base_url().join(path).unwrap())
            .json(body)
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
    }

    pub async fn sandbox_get<T: serde::de::DeserializeOwned>(&self, path: &str) -> T {
        reqwest::get(self.sandbox.base_url().join(path).unwrap()).await.unwrap().json().await.unwrap()
    }

    /// Net money the merchant received for a payment (0 after a full refund, or if never paid).
    pub async fn merchant_net(&self, out_trade_no: &str) -> i64 {
        let r =
            reqwest::get(self.sandbox.base_url().join(&path::trade(out_trade_no)).unwrap()).await.unwrap();
        if r.status() == 404 {
            return 0;
        }
        r.json::<TradeView>().await.unwrap().merchant_net_fen
    }

    /// Pays in the sandbox as a persona (after opening the cashier like a browser), expecting the
    /// payment to go through.
    pub async fn pay(
        &self,
        cashier_url: &str,
        out_trade_no: &str,
        persona: &str,
        channel: PayWith,
        installments: Option<u32>,
    ) -> Paid {
        reqwest::get(cashier_url).await.unwrap();
        let mut req = PayRequest::new(out_trade_no, persona, channel);
        req.installments = installments;
        let (s, v) = self.sandbox_post(path::PAY, &req).await;
        assert_eq!(s, 200, "{channel:?}: {v}");
        match serde_json::from_value(v).unwrap() {
            PayAnswer::Paid(p) => p,
            PayAnswer::Refused(r) => panic!("refused: {r:?}"),
        }
    }
}

/// Signs up, verifies 张伟's identity, adds an address, puts one affordable product in the cart.
pub async fn shopper(c: &Client, phone: &str) -> String {
    c.register(phone, "haitao2026", true).await.unwrap();
    c.verify_real_name("张伟", "110105198803151232").await.unwrap();
    let addr = c
        .save_address(
            None,
            &haitao_shop_api::account::AddressInput {
                recipient: "张伟".into(),
                phone: phone.into(),
                province: "浙江省".into(),
                city: "杭州市".into(),
                district: "西湖区".into(),
                street: "文三路 100 号".into(),
                postal_code: None,
                is_default: true,
            },
        )
        .await
        .unwrap();
    add_affordable_product(c).await;
    addr.id
}

/// Puts one product of 100–600 yuan with stock to spare in the cart.
pub async fn add_affordable_product(c: &Client) {
    let page = c
        .catalog(&haitao_shop_api::catalog::ProductQuery {
            min_price_fen: Some(10_000),
            max_price_fen: Some(60_000),
            per_page: Some(50),
            ..Default::default()
        })
        .await
        .unwrap();
    let p = page.page.items.iter().find(|p| p.stock >= 3).unwrap();
    c.set_quantity(&p.id, 1).await.unwrap();
}

/// Every product in the client's cache, in full (after `sync_catalog`).
pub fn cached_products(c: &Client) -> Vec<haitao_shop_api::catalog::ProductDetail> {
    let mut out = Vec::new();
    for page in 1.. {
        let p = c
            .cache()
            .search(&haitao_shop_api::catalog::ProductQuery {
                page: Some(page),
                per_page: Some(haitao_shop_api::catalog::ProductQuery::MAX_PER_PAGE),
                ..Default::default()
            })
            .unwrap();
        if p.items.is_empty() {
            break;
        }
        out.extend(p.items.iter().map(|s| c.cache().product(&s.id).unwrap().unwrap()));
    }
    out
}

/// A valid 18-digit resident ID born in 1990, numbered `n` (distinct for n < 900), for shoppers
/// who each need their own identity (the annual quota is per person).
pub fn resident_id(n: usize) -> String {
    let body = format!("1101051990{:02}{:02}{:03}", 1 + n % 12, 1 + n % 28, 100 + n % 900);
    let mut digits = [0u32; 17];
    for (d, c) in digits.iter_mut().zip(body.chars()) {
        *d = c.to_digit(10).unwrap();
    }
    format!("{body}{}", haitao_shop::identity::check_char(&digits))
}

/// A default delivery address in Hangzhou for `recipient`, house number `n`.
pub fn hangzhou_address(recipient: &str, phone: &str, n: usize) -> haitao_shop_api::account::AddressInput {
    haitao_shop_api::account::AddressInput {
        recipient: recipient.into(),
        phone: phone.into(),
        province: "浙江省".into(),
        city: "杭州市".into(),
        district: "西湖区".into(),
        street: format!("文三路 {n} 号"),
        postal_code: None,
        is_default: true,
    }
}
