//! # haitao-client
//!
//! The desktop client's core, without any window: the shop API client, the refresh token in the OS
//! keyring, the SQLite cache, and a checkout that survives every redirect, crash and dropped
//! connection. `src-tauri` exposes it as commands.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use haitao_alipay::ids::{IdGen, RandomIds};
use haitao_alipay::time::{Clock, SystemClock};
use haitao_alipay::{Expected, InboundVerifier, PublicKey, SignType, Verifier};
use haitao_shop_api::account::{
    Account, Address, AddressInput, Credentials, Quota, RealNameRequest, TokenPair,
};
use haitao_shop_api::catalog::{
    CatalogChanges, CatalogFacets, CategoryInfo, ProductDetail, ProductPage, ProductQuery,
};
use haitao_shop_api::orders::{
    AttemptStatus, Cart, ConfirmPayment, CorrectOrderer, CreateOrder, MethodQuote, Order, OrderChanges,
    OrderStatus, PayMode, PaymentAttempt, PaymentMethod, RequestRefund, SetQuantity, StartPayment,
};
use haitao_shop_api::secret::SecretString;
use haitao_shop_api::support::{NewMessage, NewTicket, Ticket};
use haitao_shop_api::{Health, PaymentConfig};
use parking_lot::RwLock;
use reqwest::Method;
use serde::{Deserialize, Serialize};

pub mod api;
pub mod cache;
pub mod deep_link;
pub mod error;
pub mod instance;
pub mod order_events;
pub mod redirect;
pub mod secrets;
pub mod tester;

pub use api::ShopApi;
pub use cache::{Cache, LocalAttempt, LocalStatus};
pub use error::{ClientError, ErrorCode, IpcError, Result};
pub use secrets::{KeyringStore, MemoryStore, SecretError, SecretStore, UnavailableStore};

const REFRESH_KEY: &str = "refresh-token";

/// What the client remembers about the current session. The access token never leaves memory.
#[derive(Debug, Default)]
struct Session {
    access: Option<SecretString>,
    /// Set when the buyer chose not to be remembered (or could not be): kept in memory only.
    refresh_in_memory: Option<SecretString>,
}

/// Where sign-in stands, for the UI.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, specta::Type)]
pub struct SessionState {
    pub signed_in: bool,
    /// The refresh token is in the OS keyring.
    pub remembered: bool,
    pub account: Option<Account>,
    pub online: bool,
    /// Why the session could not be restored, if it could not.
    pub problem: Option<IpcError>,
}

/// A payment launched from the app: the cashier to open and where it will send the buyer back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, specta::Type)]
pub struct PaymentLaunch {
    pub local_id: String,
    pub attempt: PaymentAttempt,
    pub return_url: String,
}

/// The outcome of a payment as far as the client knows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, specta::Type)]
pub struct PaymentOutcome {
    pub local: LocalAttempt,
    pub attempt: Option<PaymentAttempt>,
    /// Whether the return redirect carried a valid Alipay signature for this payment.
    pub return_verified: Option<bool>,
    pub return_problem: Option<String>,
    pub order: Option<Order>,
}

/// Orders from the cache, with when they were last synced.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, specta::Type)]
pub struct CachedOrders {
    pub items: Vec<Order>,
    pub total: i64,
    pub page: u32,
    pub per_page: u32,
    pub synced_at: Option<String>,
    pub online: bool,
}

/// A product page, and whether it came from the cache.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, specta::Type)]
pub struct CatalogResult {
    pub page: ProductPage,
    pub offline: bool,
}

/// A search's counts per filter value, and whether they came from the cache.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, specta::Type)]
pub struct CatalogFacetsResult {
    pub facets: CatalogFacets,
    pub offline: bool,
}

/// The desktop client's core.
#[derive(Debug)]
pub struct Client {
    api: ShopApi,
    cache: Cache,
    secrets: Arc<dyn SecretStore>,
    session: RwLock<Session>,
    refresh_lock: tokio::sync::Mutex<()>,
    payment_lock: tokio::sync::Mutex<()>,
    payment_config: RwLock<Option<(PaymentConfig, InboundVerifier)>>,
    online: AtomicBool,
    clock: Arc<dyn Clock>,
    ids: Arc<dyn IdGen>,
    /// Order changes found by the syncs, until the shell takes them ([`Client::take_order_notices`]).
    notices: parking_lot::Mutex<Vec<order_events::OrderNotice>>,
}

impl Client {
    pub fn new(api: ShopApi, cache: Cache, secrets: Arc<dyn SecretStore>) -> Self {
        Client {
            api,
            cache,
            secrets,
            session: RwLock::new(Session::default()),
            refresh_lock: tokio::sync::Mutex::new(()),
            payment_lock: tokio::sync::Mutex::new(()),
            payment_config: RwLock::new(None),
            online: AtomicBool::new(true),
            clock: Arc::new(SystemClock),
            ids: Arc::new(RandomIds),
            notices: parking_lot::Mutex::new(Vec::new()),
        }
    }

    /// Where "now" comes from (the host's clock unless told otherwise): attempt expiry, the times
    /// recorded in the cache.
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.cache.clock = clock.clone();
        self.clock = clock;
        self
    }

    /// Where local payment and checkout ids come from (random unless told otherwise).
    pub fn with_ids(mut self, ids: Arc<dyn IdGen>) -> Self {
        self.ids = ids;
        self
    }

    fn now_text(&self) -> String {
        cache::time_text(self.clock.now())
    }

    pub fn cache(&self) -> &Cache {
        &self.cache
    }

    pub fn api(&self) -> &ShopApi {
        &self.api
    }

    pub fn is_online(&self) -> bool {
        self.online.load(Ordering::Relaxed)
    }

    fn note<T>(&self, r: &Result<T>) {
        match r {
            Err(ClientError::Offline(_)) => self.online.store(false, Ordering::Relaxed),
            Ok(_) | Err(ClientError::Shop(_)) => self.online.store(true, Ordering::Relaxed),
            Err(_) => {}
        }
    }

    async fn public<T: serde::de::DeserializeOwned>(&self, path: &str) -> Result<T> {
        let r = self.api.json(Method::GET, path, None, None::<&()>, None).await;
        self.note(&r);
        r
    }

    // -----------------------------------------------------------------------------------------
    // Session

    fn stored_refresh(&self) -> Result<Option<SecretString>> {
        if let Some(t) = self.session.read().refresh_in_memory.clone() {
            return Ok(Some(t));
        }
        Ok(self.secrets.get(REFRESH_KEY)?)
    }

    fn keep(&self, pair: &TokenPair, remember: bool) -> Result<()> {
        let mut s = self.session.write();
        s.access = Some(pair.access_token.clone());
        if remember && s.refresh_in_memory.is_none() {
            drop(s);
            self.secrets.set(REFRESH_KEY, &pair.refresh_token)?;
        } else {
            s.refresh_in_memory = Some(pair.refresh_token.clone());
        }
        Ok(())
    }

    /// Exchanges the refresh token for a new pair (rotation). A revoked token is forgotten.
    async fn refresh(&self) -> Result<()> {
        let _one = self.refresh_lock.lock().await;
        let Some(refresh) = self.stored_refresh()? else { return Err(ClientError::NotSignedIn) };
        let remembered = self.session.read().refresh_in_memory.is_none();
        let body = serde_json::json!({"refresh_token": refresh.expose()});
        let r: Result<TokenPair> = self.api.json(Method::POST, "auth/refresh", None, Some(&body), None).await;
        self.note(&r);
        match r {
            Ok(pair) => self.keep(&pair, remembered),
            Err(ClientError::Shop(p)) if p.status == 401 => {
                self.forget_session();
                Err(ClientError::SessionExpired)
            }
            Err(e) => Err(e),
        }
    }

    fn forget_session(&self) {
        let mut s = self.session.write();
        s.access = None;
        let was_memory = s.refresh_in_memory.take().is_some();
        drop(s);
        if !was_memory && let Err(e) = self.secrets.delete(REFRESH_KEY) {
            tracing::warn!(error = %e, "could not remove the refresh token from the keyring");
        }
    }

    /// Calls the shop with the access token, refreshing it once when it expired.
    async fn authed<T: serde::de::DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<&impl Serialize>,
        key: Option<&str>,
    ) -> Result<T> {
        if self.session.read().access.is_none() {
            self.refresh().await?;
        }
        for round in 0..2 {
            let token = self.session.read().access.clone().ok_or(ClientError::NotSignedIn)?;
            let r = self.api.json(method.clone(), path, Some(&token), body, key).await;
            self.note(&r);
            match r {
                Err(ClientError::Shop(p)) if p.status == 401 && round == 0 => {
                    self.session.write().access = None;
                    self.refresh().await?;
                }
                other => return other,
            }
        }
        Err(ClientError::SessionExpired)
    }

    /// Restores the remembered session at start-up.
    pub async fn restore(&self) -> SessionState {
        let problem = match self.stored_refresh() {
            Ok(None) => None,
            Ok(Some(_)) => match self.refresh().await {
                Ok(()) | Err(ClientError::Offline(_)) => None,
                Err(e) => Some(e.into()),
            },
            Err(e) => Some(e.into()),
        };
        let mut state = self.session_state().await;
        state.problem = problem;
        state
    }

    pub async fn session_state(&self) -> SessionState {
        let remembered = self.session.read().refresh_in_memory.is_none()
            && self.secrets.get(REFRESH_KEY).ok().flatten().is_some();
        let signed_in =
            self.session.read().access.is_some() || self.stored_refresh().ok().flatten().is_some();
        let account = if signed_in { self.account().await.ok() } else { None };
        SessionState {
            signed_in: account.is_some() || signed_in,
            remembered,
            account,
            online: self.is_online(),
            problem: None,
        }
    }

    async fn sign_in_with(
        &self,
        path: &str,
        phone: &str,
        password: &str,
        remember: bool,
    ) -> Result<SessionState> {
        if remember {
            // Refuse early rather than sign in and then fail to keep the session.
            self.secrets.get(REFRESH_KEY)?;
        }
        let creds = Credentials { phone: phone.to_owned(), password: SecretString::new(password) };
        let r: Result<TokenPair> = self.api.json(Method::POST, path, None, Some(&creds), None).await;
        self.note(&r);
        let pair = r?;
        self.cache.clear_account_data()?;
        {
            let mut s = self.session.write();
            s.refresh_in_memory = None;
        }
        self.keep(&pair, remember)?;
        if !remember {
            // An earlier session remembered here must not come back at the next start in place
            // of this one.
            if let Err(e) = self.secrets.delete(REFRESH_KEY) {
                tracing::warn!(error = %e, "could not remove an earlier remembered session from the keyring");
            }
        }
        Ok(self.session_state().await)
    }

    pub async fn register(&self, phone: &str, password: &str, remember: bool) -> Result<SessionState> {
        self.sign_in_with("auth/register", phone, password, remember).await
    }

    pub async fn sign_in(&self, phone: &str, password: &str, remember: bool) -> Result<SessionState> {
        self.sign_in_with("auth/login", phone, password, remember).await
    }

    /// Signs out here (or everywhere): revokes on the shop when reachable, and always forgets the
    /// tokens and the buyer's cached data locally.
    pub async fn sign_out(&self, everywhere: bool) -> Result<()> {
        let path = if everywhere { "auth/logout-all" } else { "auth/logout" };
        let r: Result<serde_json::Value> = self.authed(Method::POST, path, None::<&()>, None).await;
        if let Err(e) = &r {
            tracing::info!(error = %e, "sign-out could not reach the shop; forgetting the session locally");
        }
        self.forget_session();
        self.cache.clear_account_data()?;
        Ok(())
    }

    pub async fn account(&self) -> Result<Account> {
        self.authed(Method::GET, "account", None::<&()>, None).await
    }

    pub async fn verify_real_name(&self, name: &str, id_number: &str) -> Result<Account> {
        let body = RealNameRequest { name: name.to_owned(), id_number: id_number.to_owned() };
        self.authed(Method::POST, "account/real-name", Some(&body), None).await
    }

    pub async fn quota(&self) -> Result<Quota> {
        self.authed(Method::GET, "account/quota", None::<&()>, None).await
    }

    pub async fn addresses(&self) -> Result<Vec<Address>> {
        self.authed(Method::GET, "account/addresses", None::<&()>, None).await
    }

    pub async fn save_address(&self, id: Option<&str>, a: &AddressInput) -> Result<Address> {
        match id {
            Some(id) => self.authed(Method::PUT, &format!("account/addresses/{id}"), Some(a), None).await,
            None => self.authed(Method::POST, "account/addresses", Some(a), None).await,
        }
    }

    pub async fn delete_address(&self, id: &str) -> Result<()> {
        let _: Option<serde_json::Value> =
            self.authed(Method::DELETE, &format!("account/addresses/{id}"), None::<&()>, None).await?;
        Ok(())
    }

    // -----------------------------------------------------------------------------------------
    // Catalog

    pub async fn health(&self) -> Result<Health> {
        self.public("health").await
    }

    pub async fn categories(&self) -> Result<Vec<CategoryInfo>> {
        self.public("catalog/categories").await
    }

    /// A page of products: from the shop when online (cached as seen), else from the cache.
    pub async fn catalog(&self, q: &ProductQuery) -> Result<CatalogResult> {
        let query = serde_urlencoded_query(q);
        match self.public::<ProductPage>(&format!("catalog/products?{query}")).await {
            Ok(page) => Ok(CatalogResult { page, offline: false }),
            Err(ClientError::Offline(e)) => {
                tracing::info!(error = %e, "shop unreachable; searching the cached catalog");
                Ok(CatalogResult { page: self.cache.search(q)?, offline: true })
            }
            Err(e) => Err(e),
        }
    }

    /// How many results a search has per category, origin and fulfilment: from the shop when
    /// online, else counted in the cache.
    pub async fn catalog_facets(&self, q: &ProductQuery) -> Result<CatalogFacetsResult> {
        let query = serde_urlencoded_query(q);
        match self.public::<CatalogFacets>(&format!("catalog/facets?{query}")).await {
            Ok(facets) => Ok(CatalogFacetsResult { facets, offline: false }),
            Err(ClientError::Offline(e)) => {
                tracing::info!(error = %e, "shop unreachable; counting the cached catalog");
                Ok(CatalogFacetsResult { facets: self.cache.facets(q)?, offline: true })
            }
            Err(e) => Err(e),
        }
    }

    pub async fn product(&self, id: &str) -> Result<ProductDetail> {
        match self.public::<ProductDetail>(&format!("catalog/products/{id}")).await {
            Ok(p) => {
                self.cache.put_products(std::slice::from_ref(&p))?;
                Ok(p)
            }
            Err(ClientError::Offline(e)) => self.cache.product(id)?.ok_or(ClientError::Offline(e)),
            Err(e) => Err(e),
        }
    }

    /// Brings the cached catalog up to date, incrementally. Returns how many products changed.
    pub async fn sync_catalog(&self) -> Result<usize> {
        let mut since: i64 = self.cache.meta("catalog_version")?.and_then(|v| v.parse().ok()).unwrap_or(0);
        let mut changed = 0;
        loop {
            let batch: CatalogChanges =
                self.public(&format!("catalog/changes?since={since}&limit=500")).await?;
            changed += batch.products.len();
            self.cache.put_products(&batch.products)?;
            if batch.more && batch.version <= since {
                return Err(ClientError::BadResponse(format!(
                    "the shop's catalog changes stay at version {} after {since} while saying there are more",
                    batch.version
                )));
            }
            since = batch.version;
            self.cache.set_meta("catalog_version", &since.to_string())?;
            if !batch.more {
                break;
            }
        }
        Ok(changed)
    }

    /// A catalog image: from the cache, else from the shop (and cached).
    pub async fn image(&self, name: &str) -> Result<(String, Vec<u8>)> {
        if !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-' || b == b'_')
            || name.len() > 64
        {
            return Err(ClientError::Invalid("bad image name".into()));
        }
        if let Some(hit) = self.cache.image(name)? {
            return Ok(hit);
        }
        let raw = self.api.send(Method::GET, &format!("images/{name}"), None, None, None).await?;
        self.cache.put_image(name, &raw.content_type, &raw.bytes)?;
        Ok((raw.content_type, raw.bytes))
    }

    // -----------------------------------------------------------------------------------------
    // Cart and checkout

    pub async fn cart(&self) -> Result<Cart> {
        match self.authed::<Cart>(Method::GET, "cart", None::<&()>, None).await {
            Ok(c) => {
                self.cache.put_cart(&c)?;
                Ok(c)
            }
            Err(ClientError::Offline(e)) => self.cache.cart()?.ok_or(ClientError::Offline(e)),
            Err(e) => Err(e),
        }
    }

    pub async fn set_quantity(&self, product_id: &str, quantity: i64) -> Result<Cart> {
        let c: Cart = self
            .authed(Method::PUT, &format!("cart/items/{product_id}"), Some(&SetQuantity { quantity }), None)
            .await?;
        self.cache.put_cart(&c)?;
        Ok(c)
    }

    pub async fn clear_cart(&self) -> Result<Cart> {
        let c: Cart = self.authed(Method::DELETE, "cart", None::<&()>, None).await?;
        self.cache.put_cart(&c)?;
        Ok(c)
    }

    pub async fn quotes(&self) -> Result<Vec<MethodQuote>> {
        self.authed(Method::GET, "checkout/quotes", None::<&()>, None).await
    }

    pub async fn order_quotes(&self, order_id: &str) -> Result<Vec<MethodQuote>> {
        self.authed(Method::GET, &format!("orders/{order_id}/quotes"), None::<&()>, None).await
    }

    /// Places the order for the current cart. The idempotency key is kept in the persisted checkout
    /// state, so retrying after a crash or a dropped connection returns the same order.
    pub async fn place_order(&self, address_id: &str) -> Result<Order> {
        #[derive(Serialize, Deserialize)]
        struct Pending {
            key: String,
            address_id: String,
        }
        let pending = match self.cache.checkout()?.and_then(|s| serde_json::from_str::<Pending>(&s).ok()) {
            Some(p) if p.address_id == address_id => p,
            _ => {
                let p = Pending { key: self.ids.next_id("ck-"), address_id: address_id.to_owned() };
                self.cache.set_checkout(Some(
                    &serde_json::to_string(&p).map_err(|e| ClientError::Internal(e.to_string()))?,
                ))?;
                p
            }
        };
        let body = CreateOrder { address_id: address_id.to_owned() };
        let order: Order = self.authed(Method::POST, "orders", Some(&body), Some(&pending.key)).await?;
        self.store_orders(std::slice::from_ref(&order))?;
        self.cache.set_checkout(None)?;
        // The shop emptied the cart into the order; a stale cached cart would show offline.
        self.cache.forget_cart()?;
        Ok(order)
    }

    async fn payment_verifier(&self) -> Result<(PaymentConfig, InboundVerifier)> {
        if let Some(v) = self.payment_config.read().clone() {
            return Ok(v);
        }
        let cfg: PaymentConfig = self.public("payment-config").await?;
        let key =
            PublicKey::parse(&cfg.alipay_public_key).map_err(|e| ClientError::Internal(e.to_string()))?;
        let sign_type = cfg.sign_type.parse::<SignType>().map_err(|_| {
            ClientError::BadResponse(format!(
                "the shop's payment config names an unknown sign type {:?}",
                cfg.sign_type.chars().take(16).collect::<String>()
            ))
        })?;
        let v =
            InboundVerifier::new(cfg.app_id.clone(), cfg.seller_id.clone(), Verifier::new(key), sign_type);
        *self.payment_config.write() = Some((cfg.clone(), v.clone()));
        Ok((cfg, v))
    }

    pub async fn payment_config(&self) -> Result<PaymentConfig> {
        Ok(self.payment_verifier().await?.0)
    }

    /// A cashier is opened (in the payment window or the system browser) only on the Alipay
    /// gateway the shop named in its payment config: a shop, or anyone between it and the app,
    /// cannot send the buyer to a look-alike page that asks for an Alipay password.
    async fn check_cashier(&self, a: &PaymentAttempt) -> Result<()> {
        let Some(cashier) = &a.cashier_url else { return Ok(()) };
        let gateway = self.payment_config().await?.gateway;
        let origin = |u: &str| url::Url::parse(u).ok().map(|u| u.origin()).filter(url::Origin::is_tuple);
        match (origin(cashier), origin(&gateway)) {
            (Some(c), Some(g)) if c == g => Ok(()),
            _ => Err(ClientError::BadResponse(format!(
                "the shop sent a cashier at {}, not on its Alipay gateway {gateway}",
                cashier.chars().take(80).collect::<String>()
            ))),
        }
    }

    fn attempt_from(&self, local: &mut LocalAttempt, a: &PaymentAttempt) -> Result<()> {
        local.attempt_id = Some(a.id.clone());
        local.out_trade_no = Some(a.out_trade_no.clone());
        local.amount_fen = a.amount.minor();
        local.adopt(a.status);
        local.updated_at = self.now_text();
        self.cache.put_attempt(local)?;
        Ok(())
    }

    /// Starts paying for an order. The attempt is recorded locally *before* the shop is asked and
    /// before any window opens. A double click returns the attempt already under way.
    pub async fn start_payment(
        &self,
        order_id: &str,
        method: PaymentMethod,
        mode: PayMode,
        return_url: &str,
    ) -> Result<PaymentLaunch> {
        let _one = self.payment_lock.lock().await;
        for open in self.cache.attempts_for(order_id)?.into_iter().filter(|a| !a.is_final()) {
            if open.method == method
                && open.mode == mode
                && open.status() == LocalStatus::Redirected
                && let Some(id) = &open.attempt_id
            {
                let a: PaymentAttempt =
                    self.authed(Method::GET, &format!("payments/{id}"), None::<&()>, None).await?;
                if a.status == AttemptStatus::Redirected && a.expires_at > self.clock.now() {
                    self.check_cashier(&a).await?;
                    return Ok(PaymentLaunch {
                        local_id: open.local_id,
                        return_url: a.return_url.clone(),
                        attempt: a,
                    });
                }
            }
        }
        let mut local = LocalAttempt::starting(
            self.ids.next_id("LA"),
            order_id,
            method,
            mode,
            return_url,
            self.now_text(),
        );
        self.cache.put_attempt(&local)?;
        let body = StartPayment { method, mode, return_url: return_url.to_owned() };
        let r: Result<PaymentAttempt> =
            self.authed(Method::POST, &format!("orders/{order_id}/payments"), Some(&body), None).await;
        match r {
            Ok(a) => {
                self.attempt_from(&mut local, &a)?;
                self.check_cashier(&a).await?;
                Ok(PaymentLaunch { local_id: local.local_id, return_url: a.return_url.clone(), attempt: a })
            }
            Err(e) => {
                // Offline: the shop may or may not have made the attempt; it is reconciled later.
                local.mark(if matches!(e, ClientError::Offline(_)) {
                    LocalStatus::Unknown
                } else {
                    LocalStatus::Closed
                });
                local.last_error = Some(e.to_string());
                local.updated_at = self.now_text();
                self.cache.put_attempt(&local)?;
                Err(e)
            }
        }
    }

    async fn outcome(
        &self,
        mut local: LocalAttempt,
        r: Result<PaymentAttempt>,
        verified: Option<bool>,
        problem: Option<String>,
    ) -> Result<PaymentOutcome> {
        match r {
            Ok(a) => {
                self.attempt_from(&mut local, &a)?;
                let order =
                    if a.status.is_final() { self.refresh_order(&local.order_id).await.ok() } else { None };
                Ok(PaymentOutcome {
                    local,
                    attempt: Some(a),
                    return_verified: verified,
                    return_problem: problem,
                    order,
                })
            }
            Err(ClientError::Offline(e)) => {
                local.mark(LocalStatus::Unknown);
                local.last_error = Some(e.clone());
                local.updated_at = self.now_text();
                self.cache.put_attempt(&local)?;
                Ok(PaymentOutcome {
                    local,
                    attempt: None,
                    return_verified: verified,
                    return_problem: problem,
                    order: None,
                })
            }
            Err(e) => {
                local.last_error = Some(e.to_string());
                self.cache.put_attempt(&local)?;
                Err(e)
            }
        }
    }

    /// The cashier redirected to the return address. The redirect is verified here (Alipay's
    /// signature, this payment's number and amount) and then only triggers confirmation: the shop's
    /// answer decides whether the order is paid.
    pub async fn payment_returned(&self, local_id: &str, url: &str) -> Result<PaymentOutcome> {
        let mut local =
            self.cache.attempt(local_id)?.ok_or_else(|| ClientError::Invalid("unknown payment".into()))?;
        let attempt_id =
            local.attempt_id.clone().ok_or_else(|| ClientError::State("payment was not started".into()))?;
        let query = url::Url::parse(url).ok().and_then(|u| u.query().map(str::to_owned)).unwrap_or_default();
        if query.is_empty() {
            // Back from the cashier with no result at all: the buyer chose "cancel and return to the
            // shop". Same as closing the window: the shop checks and closes an unpaid trade.
            tracing::info!(local_id, "the buyer left the cashier without paying");
            return self.payment_abandoned(local_id).await;
        }
        let (verified, problem) = {
            match self.payment_verifier().await {
                Ok((_, v)) => match v.return_redirect(&query) {
                    Ok(r) if Some(&r.out_trade_no) != local.out_trade_no.as_ref() => {
                        (Some(false), Some(format!("the return is for {}, not this payment", r.out_trade_no)))
                    }
                    Ok(r) => {
                        let expected = Expected {
                            total_amount: haitao_alipay::Money::from_minor(
                                local.amount_fen,
                                haitao_alipay::Currency::Cny,
                            ),
                        };
                        match r.matched(Some(&expected)) {
                            Ok(_) => (Some(true), None),
                            Err(e) => (Some(false), Some(e.to_string())),
                        }
                    }
                    Err(e) => (Some(false), Some(e.to_string())),
                },
                Err(e) => (None, Some(e.to_string())),
            }
        };
        if verified == Some(false) {
            tracing::warn!(
                local_id,
                problem = problem.as_deref().unwrap_or(""),
                "return redirect rejected; asking the shop"
            );
        }
        local.mark(LocalStatus::Returned);
        local.updated_at = self.now_text();
        self.cache.put_attempt(&local)?;
        let body = ConfirmPayment { return_query: (verified == Some(true)).then_some(query) };
        let r = self.authed(Method::POST, &format!("payments/{attempt_id}/confirm"), Some(&body), None).await;
        self.outcome(local, r, verified, problem).await
    }

    /// A `haitao://alipay/return?…` link reached the app: the return of a payment opened in the
    /// system browser, handed on by the shop's return page. The link only names the payment; it
    /// is checked exactly like a return in the payment window ([`Self::payment_returned`]). A link
    /// for a trade this install did not open in the browser is refused and changes nothing (the
    /// outer error); otherwise the payment's local id and the return's outcome.
    pub async fn payment_link_returned(&self, link: &str) -> Result<(String, Result<PaymentOutcome>)> {
        let l = deep_link::payment_return(link)?;
        let local = self
            .cache
            .attempt_for_trade(&l.out_trade_no)?
            .filter(|a| a.mode == PayMode::Browser)
            .ok_or_else(|| {
                ClientError::Invalid(format!(
                    "the link is for payment {}, which this app did not open in the browser",
                    l.out_trade_no
                ))
            })?;
        let outcome = self.payment_returned(&local.local_id, &l.link).await;
        Ok((local.local_id, outcome))
    }

    /// The payment window was closed (or the buyer gave up): the shop checks, and closes an unpaid
    /// trade so the old cashier can take no money.
    pub async fn payment_abandoned(&self, local_id: &str) -> Result<PaymentOutcome> {
        let local =
            self.cache.attempt(local_id)?.ok_or_else(|| ClientError::Invalid("unknown payment".into()))?;
        let Some(attempt_id) = local.attempt_id.clone() else { return self.reconcile_one(local).await };
        let r = self.authed(Method::POST, &format!("payments/{attempt_id}/abandon"), None::<&()>, None).await;
        self.outcome(local, r, None, None).await
    }

    /// Asks the shop again ("check again").
    pub async fn check_payment(&self, local_id: &str) -> Result<PaymentOutcome> {
        let local =
            self.cache.attempt(local_id)?.ok_or_else(|| ClientError::Invalid("unknown payment".into()))?;
        self.reconcile_one(local).await
    }

    async fn reconcile_one(&self, mut local: LocalAttempt) -> Result<PaymentOutcome> {
        let attempt_id = match &local.attempt_id {
            Some(id) => id.clone(),
            None => {
                // Crashed (or lost the connection) after recording but before the shop answered:
                // adopt the attempt the shop made after ours, if it made one.
                let order: Order = self
                    .authed(Method::GET, &format!("orders/{}", local.order_id), None::<&()>, None)
                    .await?;
                let ours = chrono::DateTime::parse_from_rfc3339(&local.created_at)
                    .map(|d| d.with_timezone(&chrono::Utc))
                    .unwrap_or_default();
                // Allow for clock differences between this machine and the shop.
                let adoptable = order
                    .payment
                    .as_ref()
                    .filter(|p| p.created_at + chrono::Duration::minutes(2) >= ours)
                    .map(|p| p.id.clone());
                match adoptable {
                    Some(id) => id,
                    None => {
                        local.mark(LocalStatus::Closed);
                        local.last_error = Some("the shop never started this payment".into());
                        local.updated_at = self.now_text();
                        self.cache.put_attempt(&local)?;
                        return Ok(PaymentOutcome {
                            local,
                            attempt: None,
                            return_verified: None,
                            return_problem: None,
                            order: Some(order),
                        });
                    }
                }
            }
        };
        let r = self
            .authed(
                Method::POST,
                &format!("payments/{attempt_id}/confirm"),
                Some(&ConfirmPayment::default()),
                None,
            )
            .await;
        self.outcome(local, r, None, None).await
    }

    /// Reconciles every attempt whose outcome is not known (at start, on reconnect, on demand).
    pub async fn reconcile_open(&self) -> Result<Vec<PaymentOutcome>> {
        let mut out = Vec::new();
        for a in self.cache.open_attempts()? {
            match self.reconcile_one(a).await {
                Ok(o) => out.push(o),
                Err(ClientError::Offline(e)) => return Err(ClientError::Offline(e)),
                Err(e) => tracing::warn!(error = %e, "reconciliation failed"),
            }
        }
        Ok(out)
    }

    pub fn local_attempts(&self, order_id: &str) -> Result<Vec<LocalAttempt>> {
        Ok(self.cache.attempts_for(order_id)?)
    }

    // -----------------------------------------------------------------------------------------
    // Orders

    async fn refresh_order(&self, id: &str) -> Result<Order> {
        let o: Order = self.authed(Method::GET, &format!("orders/{id}"), None::<&()>, None).await?;
        self.store_orders(std::slice::from_ref(&o))?;
        Ok(o)
    }

    pub async fn order(&self, id: &str) -> Result<Order> {
        match self.refresh_order(id).await {
            Err(ClientError::Offline(e)) => self.cache.order(id)?.ok_or(ClientError::Offline(e)),
            other => other,
        }
    }

    /// Stores orders in the cache and keeps what changed for the shopper to hear about.
    fn store_orders(&self, orders: &[Order]) -> Result<()> {
        let found = self.cache.put_orders(orders)?;
        if !found.is_empty() {
            self.notices.lock().extend(found);
        }
        Ok(())
    }

    /// The order changes found since the last call (payment confirmed, customs hold, shipped,
    /// delivered, refunded), oldest first.
    pub fn take_order_notices(&self) -> Vec<order_events::OrderNotice> {
        std::mem::take(&mut *self.notices.lock())
    }

    /// Brings the cached orders up to date, incrementally. Returns how many changed.
    pub async fn sync_orders(&self) -> Result<usize> {
        let mut since: i64 = self.cache.meta("orders_cursor")?.and_then(|v| v.parse().ok()).unwrap_or(0);
        let mut n = 0;
        loop {
            let c: OrderChanges = self
                .authed(Method::GET, &format!("orders/changes?since={since}&limit=200"), None::<&()>, None)
                .await?;
            n += c.orders.len();
            self.store_orders(&c.orders)?;
            let next: i64 = c.cursor.parse().map_err(|_| {
                ClientError::BadResponse(format!(
                    "the shop's order changes gave a cursor that is not one: {:?}",
                    c.cursor.chars().take(32).collect::<String>()
                ))
            })?;
            if c.more && next <= since {
                return Err(ClientError::BadResponse(format!(
                    "the shop's order changes stay at cursor {next} after {since} while saying there are more"
                )));
            }
            since = next;
            self.cache.set_meta("orders_cursor", &since.to_string())?;
            if !c.more {
                break;
            }
        }
        self.cache.set_meta("orders_synced_at", &self.now_text())?;
        Ok(n)
    }

    /// Orders from the cache (works offline), after a sync when the shop is reachable.
    pub async fn orders(
        &self,
        status: Option<OrderStatus>,
        page: u32,
        per_page: u32,
    ) -> Result<CachedOrders> {
        match self.sync_orders().await {
            Ok(_) | Err(ClientError::Offline(_)) => {}
            Err(e) => return Err(e),
        }
        self.cached_orders(status, page, per_page)
    }

    pub fn cached_orders(
        &self,
        status: Option<OrderStatus>,
        page: u32,
        per_page: u32,
    ) -> Result<CachedOrders> {
        let per_page = per_page.clamp(1, 200);
        let page = page.max(1);
        let (items, total) = self.cache.orders(status, page, per_page)?;
        Ok(CachedOrders {
            items,
            total,
            page,
            per_page,
            synced_at: self.cache.meta("orders_synced_at")?,
            online: self.is_online(),
        })
    }

    pub async fn cancel_order(&self, id: &str) -> Result<Order> {
        let o: Order = self.authed(Method::POST, &format!("orders/{id}/cancel"), None::<&()>, None).await?;
        self.store_orders(std::slice::from_ref(&o))?;
        Ok(o)
    }

    pub async fn request_refund(&self, id: &str, req: &RequestRefund) -> Result<Order> {
        let o: Order = self.authed(Method::POST, &format!("orders/{id}/refunds"), Some(req), None).await?;
        self.store_orders(std::slice::from_ref(&o))?;
        Ok(o)
    }

    pub async fn correct_orderer(&self, id: &str, req: &CorrectOrderer) -> Result<Order> {
        let o: Order = self.authed(Method::POST, &format!("orders/{id}/orderer"), Some(req), None).await?;
        self.store_orders(std::slice::from_ref(&o))?;
        Ok(o)
    }

    /// The order's e-invoice PDF (cached once fetched).
    pub async fn invoice(&self, id: &str) -> Result<Vec<u8>> {
        if let Some(pdf) = self.cache.invoice(id)? {
            return Ok(pdf);
        }
        if self.session.read().access.is_none() {
            self.refresh().await?;
        }
        let token = self.session.read().access.clone().ok_or(ClientError::NotSignedIn)?;
        let raw =
            self.api.send(Method::GET, &format!("orders/{id}/invoice.pdf"), Some(&token), None, None).await?;
        self.cache.put_invoice(id, &raw.bytes)?;
        Ok(raw.bytes)
    }

    // -----------------------------------------------------------------------------------------
    // Support

    pub async fn tickets(&self) -> Result<Vec<Ticket>> {
        self.authed(Method::GET, "tickets", None::<&()>, None).await
    }

    pub async fn open_ticket(&self, t: &NewTicket) -> Result<Ticket> {
        self.authed(Method::POST, "tickets", Some(t), None).await
    }

    pub async fn ticket(&self, id: &str) -> Result<Ticket> {
        self.authed(Method::GET, &format!("tickets/{id}"), None::<&()>, None).await
    }

    pub async fn reply(&self, id: &str, body: &str) -> Result<Ticket> {
        self.authed(
            Method::POST,
            &format!("tickets/{id}/messages"),
            Some(&NewMessage { body: body.to_owned() }),
            None,
        )
        .await
    }
}

/// Encodes a product query for the URL.
fn serde_urlencoded_query(q: &ProductQuery) -> String {
    let v = serde_json::to_value(q).unwrap_or_default();
    let mut pairs = Vec::new();
    if let Some(obj) = v.as_object() {
        for (k, v) in obj {
            let s = match v {
                serde_json::Value::String(s) => s.clone(),
                serde_json::Value::Null => continue,
                other => other.to_string(),
            };
            pairs.push((k.as_str(), s));
        }
    }
    haitao_alipay::Params::encode_pairs(pairs.iter().map(|(k, v)| (*k, v.as_str())))
}

/// Renders text (a scan-to-pay URL) as an SVG QR code.
pub fn qr_svg(text: &str) -> Result<String> {
    let code = qrcode::QrCode::new(text.as_bytes()).map_err(|e| ClientError::Invalid(e.to_string()))?;
    Ok(code.render::<qrcode::render::svg::Color<'_>>().min_dimensions(220, 220).quiet_zone(true).build())
}
