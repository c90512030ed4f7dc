//! Work one shop instance at a time may do, when several instances share one database: a pass of
//! the background jobs, and starting a payment for one order (two clicks, or two instances behind
//! a load balancer, never start two attempts at once). Each is a lease in the store
//! ([`crate::store::LeaseStore`]) held until it is let go, or until its time runs out should the
//! instance holding it stop. Their times are read on each instance's clock, which must agree
//! across instances (as the hosts' clocks do; the test endpoints that move a shop's clock are for
//! a single instance).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::OwnedMutexGuard;

use haitao_shop_api::error::ErrorCode;

use crate::error::ApiError;
use crate::state::Shop;

/// The background jobs' lease. A pass that takes longer than this (every gateway call timing out)
/// may overlap another instance's: the money stays right (each step's store checks), but a parcel
/// may get a tracking event twice.
pub const JOBS: (&str, chrono::Duration) = ("jobs", chrono::Duration::minutes(10));

/// How long starting one payment may hold its order's lease: several times what its gateway calls
/// can take when each of them times out (a query and a close of the earlier attempt, then the new
/// one's), so no other instance starts a second cashier meanwhile. An instance that stopped
/// mid-start keeps that order waiting this long on other instances.
const PAYMENT_START: chrono::Duration = chrono::Duration::minutes(5);

/// How long a second start of the same order waits for the first before it is told the payment
/// is in progress.
const PAYMENT_WAIT: Duration = Duration::from_secs(15);

/// A name for this instance, different in every process and every shop started in it.
pub fn instance_name() -> String {
    use std::hash::{BuildHasher, Hasher};
    let random = std::collections::hash_map::RandomState::new().build_hasher().finish();
    format!("shop-{}-{random:016x}", std::process::id())
}

/// A lease taken; [`Held::release`] lets go of it.
#[derive(Debug)]
pub struct Held {
    name: String,
    holder: String,
}

impl Held {
    pub async fn release(self, shop: &Arc<Shop>) {
        let Held { name, holder } = self;
        if let Err(e) = shop.blocking(move |s| s.release(&name, &holder)).await {
            // Its time runs out on its own.
            tracing::warn!(error = %e, cause = e.cause.as_deref().unwrap_or(""), "a lease was not let go");
        }
    }
}

/// Takes the lease `name` for this instance for `time`, if no other instance holds it.
pub async fn try_take(
    shop: &Arc<Shop>,
    name: &str,
    time: chrono::Duration,
) -> Result<Option<Held>, ApiError> {
    try_take_as(shop, name, shop.instance.clone(), time).await
}

async fn try_take_as(
    shop: &Arc<Shop>,
    name: &str,
    holder: String,
    time: chrono::Duration,
) -> Result<Option<Held>, ApiError> {
    let now = shop.now();
    let held = Held { name: name.to_owned(), holder };
    let (n, h) = (held.name.clone(), held.holder.clone());
    let taken = shop.blocking(move |s| s.claim(&n, &h, now, now + time)).await?;
    Ok(taken.then_some(held))
}

/// Takes the lease of starting a payment for `order_id`, waiting a while for another start of
/// the same order (in this instance or another) to finish. Within the instance, starts of one
/// order queue on `starts`; the lease, held in the instance's name, keeps other instances out,
/// and a lease this instance failed to let go of (a write refused) is its own to take again.
pub async fn payment_start(
    shop: &Arc<Shop>,
    order_id: &str,
) -> Result<(Held, OwnedMutexGuard<()>), ApiError> {
    let queued = tokio::time::timeout(PAYMENT_WAIT, shop.payment_starts.lock(order_id)).await;
    let Ok(alone) = queued else { return Err(in_progress()) };
    let name = format!("pay:{order_id}");
    let deadline = tokio::time::Instant::now() + PAYMENT_WAIT;
    loop {
        if let Some(held) = try_take(shop, &name, PAYMENT_START).await? {
            return Ok((held, alone));
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(in_progress());
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

fn in_progress() -> ApiError {
    ApiError::conflict(
        ErrorCode::PaymentInProgress,
        "a payment for this order is being started; check it again in a moment",
    )
}

/// One async lock per key (an order), made when first asked for and dropped when nobody holds or
/// waits for it.
#[derive(Debug, Default)]
pub struct KeyedLocks {
    locks: parking_lot::Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

impl KeyedLocks {
    pub async fn lock(&self, key: &str) -> OwnedMutexGuard<()> {
        let lock = {
            let mut locks = self.locks.lock();
            locks.retain(|_, l| Arc::strong_count(l) > 1);
            locks.entry(key.to_owned()).or_default().clone()
        };
        lock.lock_owned().await
    }
}
