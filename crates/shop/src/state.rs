//! The running shop's shared state.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use haitao_alipay::ids::IdGen;
use haitao_alipay::time::Clock;
use haitao_alipay::{AlipayClient, InboundVerifier};
use haitao_shop_api::PaymentConfig;
use parking_lot::RwLock;
use tokio::sync::Notify;
use url::Url;

use crate::config::CustomsSettings;
use crate::error::ApiError;
use crate::limits::AddressLimits;
use crate::pricing::{FxRates, PricingConfig};
use crate::store::Store;

#[derive(Debug)]
pub struct Shop {
    pub store: Arc<dyn Store>,
    pub pricing: PricingConfig,
    pub fx: RwLock<FxRates>,
    pub customs: CustomsSettings,
    pub clock: Arc<dyn Clock>,
    pub ids: Arc<dyn IdGen>,
    pub alipay: AlipayClient,
    pub inbound: InboundVerifier,
    pub payment_config: PaymentConfig,
    pub base_url: Url,
    pub order_timeout: chrono::Duration,
    pub attempt_timeout: chrono::Duration,
    pub logistics_speed: i64,
    pub test_controls: bool,
    /// The merchant's admin token; `None` turns the admin endpoints off.
    pub admin_token: Option<haitao_shop_api::secret::SecretString>,
    pub address_limits: Option<AddressLimits>,
    /// Wakes the background jobs early (after a payment, a clock change...).
    pub wake: Notify,
    /// Serialises job runs in this instance ([`crate::leases::JOBS`] across instances).
    pub jobs_lock: tokio::sync::Mutex<()>,
    /// This instance's name in the leases it holds ([`crate::leases`]).
    pub instance: String,
    /// Starts of a payment, one per order at a time in this instance.
    pub payment_starts: crate::leases::KeyedLocks,
}

impl Shop {
    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    pub fn fx(&self) -> FxRates {
        self.fx.read().clone()
    }

    pub fn id(&self, prefix: &str) -> String {
        self.ids.next_id(prefix)
    }

    /// Runs a store call on the blocking pool.
    pub async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&dyn Store) -> Result<T, ApiError> + Send + 'static,
    ) -> Result<T, ApiError> {
        let store = self.store.clone();
        tokio::task::spawn_blocking(move || f(store.as_ref())).await.map_err(ApiError::internal)?
    }

    /// The shop's own URL for `path` (e.g. `api/v1/alipay/notify`).
    pub fn url(&self, path: &str) -> String {
        self.base_url.join(path).map(|u| u.to_string()).unwrap_or_default()
    }
}
