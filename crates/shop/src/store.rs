//! The shop's storage seam. Handlers and jobs talk to `dyn Store`; [`crate::sqlite::SqliteStore`]
//! implements it for the embedded default. Each method is one unit of work (one transaction), so a
//! PostgreSQL implementation would port the same methods; see docs/shop.md.
//!
//! Methods are blocking; the HTTP layer calls them on Tokio's blocking pool.

use chrono::{DateTime, NaiveDate, Utc};
use haitao_alipay::inbound::Notify;
use haitao_alipay::money::Money;
use haitao_shop_api::account::{Address, AddressInput};
use haitao_shop_api::catalog::{CatalogChanges, CatalogFacets, CategoryInfo, ProductPage, ProductQuery};
use haitao_shop_api::orders::{
    Carrier, HoldReason, Order, OrderStatus, PaymentAttempt, RefundRecord, RequestRefund, TrackingEvent,
};
use haitao_shop_api::support::{Author, Ticket, TicketTopic};

use crate::catalog::ProductRow;
pub use crate::domain::orders::PlaceOrder;
pub use crate::domain::payments::{NotificationApplied, PaymentApplied};
use crate::error::ApiError;
pub use crate::limits::AddressEvent;
use crate::pricing::{FxRates, Priced, PricingConfig};

pub type StoreResult<T> = Result<T, ApiError>;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountRow {
    pub id: String,
    pub phone: String,
    pub password_hash: String,
    pub real_name: Option<String>,
    pub id_number: Option<String>,
    pub birth_date: Option<NaiveDate>,
    pub verified_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

/// Hashes of a freshly issued token pair.
#[derive(Debug, Clone)]
pub struct TokenHashes {
    pub access_hash: String,
    pub access_expires: DateTime<Utc>,
    pub refresh_hash: String,
    pub refresh_expires: DateTime<Utc>,
}

/// Who an access token belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessGrant {
    pub account_id: String,
    pub family_id: String,
    pub expires_at: DateTime<Utc>,
}

/// The result of presenting a refresh token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refreshed {
    /// Rotated: the new pair was stored in the same session family.
    Rotated { account_id: String },
    /// Unknown, expired or from a revoked session.
    Invalid,
    /// Already used once: the whole family was revoked (token theft is assumed).
    Reused,
}

pub trait CatalogStore {
    fn seed_catalog(&self, fx: &FxRates) -> StoreResult<usize>;
    fn reprice(&self, fx: &FxRates) -> StoreResult<usize>;
    fn product(&self, id: &str) -> StoreResult<Option<ProductRow>>;
    fn search(&self, q: &ProductQuery) -> StoreResult<ProductPage>;
    fn categories(&self) -> StoreResult<Vec<CategoryInfo>>;
    /// Results of a search per category, origin and fulfilment (see [`CatalogFacets`]).
    fn facets(&self, q: &ProductQuery) -> StoreResult<CatalogFacets>;
    fn catalog_changes(
        &self,
        since: i64,
        limit: u32,
        cfg: &PricingConfig,
        fx: &FxRates,
    ) -> StoreResult<CatalogChanges>;
    fn meta(&self, key: &str) -> StoreResult<Option<String>>;
    fn set_meta(&self, key: &str, value: &str) -> StoreResult<()>;
}

pub trait AccountStore {
    /// Fails with `already_registered` if the phone number is taken.
    fn create_account(
        &self,
        id: &str,
        phone: &str,
        password_hash: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<AccountRow>;
    fn account(&self, id: &str) -> StoreResult<Option<AccountRow>>;
    fn account_by_phone(&self, phone: &str) -> StoreResult<Option<AccountRow>>;
    /// Counts a sign-in attempt for `phone` as a failure before its password is checked, in the
    /// same transaction that checks the count: `false` (nothing recorded) when `limit` failures
    /// since `since` are there already. A right password then clears the count.
    fn count_login_attempt(
        &self,
        phone: &str,
        since: DateTime<Utc>,
        limit: i64,
        now: DateTime<Utc>,
    ) -> StoreResult<bool>;
    fn clear_login_failures(&self, phone: &str) -> StoreResult<()>;
    /// Counts one `event` against the client address `address` unless it already had `limit` of
    /// them after `since`, in one step, so simultaneous requests cannot all pass the check:
    /// `Ok(id)` when counted (`forget_address_event(id)` takes it back), `Err(oldest)` when
    /// refused, with the time of the oldest event still in the window.
    fn reserve_address_event(
        &self,
        event: AddressEvent,
        address: &str,
        since: DateTime<Utc>,
        limit: u32,
        now: DateTime<Utc>,
    ) -> StoreResult<Result<i64, DateTime<Utc>>>;
    fn forget_address_event(&self, id: i64) -> StoreResult<()>;
    /// Forgets address events from before `before`.
    fn prune_address_events(&self, before: DateTime<Utc>) -> StoreResult<usize>;
    fn create_session(
        &self,
        family_id: &str,
        account_id: &str,
        t: &TokenHashes,
        now: DateTime<Utc>,
    ) -> StoreResult<()>;
    fn access_grant(&self, access_hash: &str) -> StoreResult<Option<AccessGrant>>;
    fn refresh(&self, refresh_hash: &str, new: &TokenHashes, now: DateTime<Utc>) -> StoreResult<Refreshed>;
    fn revoke_family(&self, family_id: &str, why: &str, now: DateTime<Utc>) -> StoreResult<()>;
    fn revoke_all(&self, account_id: &str, now: DateTime<Utc>) -> StoreResult<usize>;
    fn set_real_name(
        &self,
        account_id: &str,
        name: &str,
        id_number: &str,
        birth: NaiveDate,
        now: DateTime<Utc>,
    ) -> StoreResult<()>;
    fn addresses(&self, account_id: &str) -> StoreResult<Vec<Address>>;
    fn address(&self, account_id: &str, id: &str) -> StoreResult<Option<Address>>;
    fn save_address(
        &self,
        account_id: &str,
        id: &str,
        a: &AddressInput,
        now: DateTime<Utc>,
    ) -> StoreResult<Address>;
    fn delete_address(&self, account_id: &str, id: &str) -> StoreResult<bool>;
    /// (used, reserved) in fen for an orderer identity and calendar year.
    fn quota_usage(&self, id_number: &str, year: i32) -> StoreResult<(i64, i64)>;
}

/// The order a cart becomes ([`crate::domain::orders::order_from_cart`]), as `place_order` writes it;
/// its stock is reserved in the same transaction.
#[derive(Debug, Clone)]
pub struct NewOrder {
    pub id: String,
    pub account_id: String,
    pub idempotency_key: String,
    pub request_hash: String,
    pub orderer_name: String,
    pub orderer_id_number: String,
    pub quota_year: i32,
    pub address: Address,
    pub lines: Vec<(ProductRow, i64)>,
    pub priced: Priced,
    pub pay_deadline: DateTime<Utc>,
    pub now: DateTime<Utc>,
}

/// What creating an order did.
#[derive(Debug, Clone)]
pub enum Created {
    New(String),
    /// The same idempotency key and request: the order made the first time.
    Existing(String),
}

/// Order facts the payment, customs and logistics logic needs, without the whole wire view.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderCore {
    pub id: String,
    pub account_id: String,
    pub status: OrderStatus,
    pub total: Money,
    pub dutiable: Money,
    pub refunded: Money,
    pub orderer_name: String,
    pub orderer_id_number: String,
    pub quota_year: i32,
    pub pay_deadline: DateTime<Utc>,
    pub paid_at: Option<DateTime<Utc>>,
    pub paid_attempt_id: Option<String>,
    pub identity_check: Option<bool>,
    pub declare_seq: i64,
    pub hold_reason: Option<HoldReason>,
    pub waybill_no: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefundRow {
    pub id: String,
    pub order_id: String,
    pub attempt_id: String,
    pub out_request_no: String,
    pub amount: Money,
    pub reason: String,
    pub status: haitao_shop_api::orders::RefundStatus,
}

/// `out_request_no` prefix of refunds the shop makes of money it must not keep: a duplicate
/// payment, a payment for an order already closed. The gateway refusing one never ends it.
pub const AUTOMATIC_REFUND_PREFIX: &str = "AUTO";

impl RefundRow {
    /// Money the shop must not keep (see [`AUTOMATIC_REFUND_PREFIX`]).
    pub fn must_go_back(&self) -> bool {
        self.out_request_no.starts_with(AUTOMATIC_REFUND_PREFIX)
    }
}

/// A buyer's cart.
pub trait CartStore {
    fn cart(&self, account_id: &str) -> StoreResult<Vec<(ProductRow, i64)>>;
    fn set_cart_quantity(
        &self,
        account_id: &str,
        product_id: &str,
        quantity: i64,
        now: DateTime<Utc>,
    ) -> StoreResult<()>;
    fn clear_cart(&self, account_id: &str) -> StoreResult<()>;
}

/// Orders: creating them (stock and quota checked in the same transaction), reading them, closing
/// unpaid ones.
pub trait OrderStore {
    /// Places the account's cart as an order, in one transaction: a repeat of an earlier request
    /// (same idempotency key and body) answers with that order, a different body under the same
    /// key is refused; otherwise the account, address, cart and the orderer's quota are read,
    /// [`crate::domain::orders::order_from_cart`] decides, and the stock is reserved, the order
    /// written and the cart emptied.
    fn place_order(&self, p: &PlaceOrder) -> StoreResult<Created>;
    fn order(&self, account_id: Option<&str>, id: &str) -> StoreResult<Option<Order>>;
    fn order_core(&self, id: &str) -> StoreResult<Option<OrderCore>>;
    fn orders(
        &self,
        account_id: &str,
        status: Option<OrderStatus>,
        page: u32,
        per_page: u32,
    ) -> StoreResult<(Vec<Order>, i64)>;
    fn order_changes(&self, account_id: &str, since: i64, limit: u32)
    -> StoreResult<(Vec<Order>, i64, bool)>;
    /// Closes an unpaid order and releases its stock; false if it was not awaiting payment.
    fn close_order(&self, order_id: &str, now: DateTime<Utc>) -> StoreResult<bool>;
    fn overdue_orders(&self, now: DateTime<Utc>) -> StoreResult<Vec<OrderCore>>;
}

/// Payment attempts, Alipay notifications, and applying a confirmed payment to its order.
pub trait PaymentStore {
    fn insert_attempt(&self, a: &PaymentAttempt) -> StoreResult<()>;
    fn update_attempt(&self, a: &PaymentAttempt) -> StoreResult<()>;
    fn attempt(&self, id: &str) -> StoreResult<Option<PaymentAttempt>>;
    fn attempts_of(&self, order_id: &str) -> StoreResult<Vec<PaymentAttempt>>;
    /// Attempts that are not final and were last touched before `before`.
    fn open_attempts(&self, before: DateTime<Utc>) -> StoreResult<Vec<PaymentAttempt>>;
    /// Attempts that ended unpaid (failed or closed, with their order or by the buyer) whose
    /// cashier the gateway may have taken money through since they were last looked at: last
    /// asked about before `before`, and not yet answered about once `margin` after their expiry
    /// (however long the shop was stopped in between).
    fn ended_attempts_still_payable(
        &self,
        margin: chrono::Duration,
        before: DateTime<Utc>,
    ) -> StoreResult<Vec<PaymentAttempt>>;
    /// Notes that the gateway was asked about an ended attempt at `now` (its order is not
    /// touched); `answered`: it gave an answer, which counts towards ending the watch.
    fn looked_at(&self, attempt_id: &str, answered: bool, now: DateTime<Utc>) -> StoreResult<()>;
    /// Applies a payment the gateway confirmed, in one transaction with what follows from it: the
    /// order's `paid` tracking event when the payment is kept, or — when it cannot be kept (the
    /// order was paid by another attempt, or closed and its stock is gone) — `refund`, recorded as
    /// the refund of all of that payment (its amount is set here). Returns the outcome and the
    /// refund recorded, if any. A second call for the same payment changes nothing.
    /// `gateway_paid_at` is the gateway's time of the payment, when it said.
    fn apply_payment(
        &self,
        attempt_id: &str,
        trade_no: &str,
        gateway_paid_at: Option<DateTime<Utc>>,
        paid_event: &TrackingEvent,
        refund: RefundRow,
        now: DateTime<Utc>,
    ) -> StoreResult<(PaymentApplied, Option<RefundRow>)>;
    /// Applies a notification whose signature was verified, in one transaction: finds the
    /// attempt it names, checks it against that attempt and takes what it asks
    /// ([`crate::domain::payments::on_notification`]): a payment applied as
    /// [`PaymentStore::apply_payment`] does (with `paid_event` and `refund`), or the attempt
    /// closed; then records it. A refused notification writes nothing.
    fn apply_notification(
        &self,
        n: Notify,
        paid_event: &TrackingEvent,
        refund: RefundRow,
        now: DateTime<Utc>,
    ) -> StoreResult<NotificationApplied>;
}

/// Refunds: recording them within what is refundable, completing or failing them, and the refunds
/// owed for failed customs inspections.
pub trait RefundStore {
    fn insert_refund(&self, r: &RefundRow, now: DateTime<Utc>) -> StoreResult<()>;
    /// A buyer's refund request on their order, in one transaction: the order (not found unless
    /// `account_id` owns it), what is left of the payment that paid it, the amount the request
    /// may take back ([`crate::domain::refunds::requested_amount`]) and the refund recorded as
    /// `refund` with that amount, the paying attempt and the request's reason. Returns it.
    fn request_refund(
        &self,
        account_id: &str,
        req: &RequestRefund,
        refund: RefundRow,
        now: DateTime<Utc>,
    ) -> StoreResult<RefundRow>;
    fn refunds_of(&self, order_id: &str) -> StoreResult<Vec<RefundRow>>;
    /// Pending refunds that may be sent at `now` (not waiting out a pause after a refusal).
    fn pending_refunds(&self, now: DateTime<Utc>) -> StoreResult<Vec<RefundRow>>;
    /// Notes a refusal of a pending refund that must still go through: it stays pending and may
    /// be sent again after `pauses[refusals - 1]` (the last pause once they run out). Returns the
    /// number of refusals so far.
    fn defer_refund(
        &self,
        refund_id: &str,
        now: DateTime<Utc>,
        pauses: &[chrono::Duration],
    ) -> StoreResult<u32>;
    /// Paid attempts that are not their order's payment and whose money is not all being given
    /// back (no refund of it, or only failed ones).
    fn uncovered_payments(&self) -> StoreResult<Vec<PaymentAttempt>>;
    /// Records `refund` as the refund of what is left of such an attempt, in one transaction and
    /// only while it is still uncovered (`out_request_no` and the reason are set here). Returns
    /// the refund recorded, if any.
    fn cover_payment(&self, refund: RefundRow, now: DateTime<Utc>) -> StoreResult<Option<RefundRow>>;
    /// Marks a refund succeeded and applies it to the order (refunded amount, quota, status);
    /// `gateway_refunded_at` is the gateway's time of the refund, when it said.
    fn complete_refund(
        &self,
        refund_id: &str,
        gateway_refunded_at: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> StoreResult<()>;
    fn fail_refund(&self, refund_id: &str, now: DateTime<Utc>) -> StoreResult<()>;
    fn refund_records(&self, order_id: &str) -> StoreResult<Vec<RefundRecord>>;
    /// Orders held for a failed customs inspection that still owe the buyer money: the paying
    /// payment is not refunded in full and nothing of it is under way (the inspection refund was
    /// refused, or an earlier refund failed after the hold). Orders whose inspection refunds were
    /// refused `max_failed` times, or whose last one was refused after `retry_from`, wait.
    fn inspection_refunds_owed(
        &self,
        retry_from: DateTime<Utc>,
        max_failed: u32,
    ) -> StoreResult<Vec<OrderCore>>;
    /// Records a further inspection refund of what is left of the paying payment (`refund`'s
    /// amount and `out_request_no` are set here, the latter from `out_trade_no` and the number of
    /// inspection refunds before it), in one transaction and only while the order is still owed
    /// money as `inspection_refunds_owed` decides. Returns the refund recorded, if any.
    fn top_up_inspection_refund(
        &self,
        refund: RefundRow,
        out_trade_no: &str,
        retry_from: DateTime<Utc>,
        max_failed: u32,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<RefundRow>>;
}

/// Customs declaration, logistics and tracking.
pub trait FulfilmentStore {
    /// Paid orders whose payment is not yet declared to customs.
    fn orders_to_declare(&self) -> StoreResult<Vec<OrderCore>>;
    /// Records the declaration, its tracking event and, unless customs holds the order, the
    /// `waybill` (number, carrier) when the order has none yet, in one transaction, only while the
    /// order is still paid and undeclared; `false` when it changed meanwhile (refunded or
    /// cancelled), and nothing is recorded.
    fn record_declaration(
        &self,
        order_id: &str,
        declaration_no: &str,
        identity_check: Option<bool>,
        event: &TrackingEvent,
        waybill: (&str, Carrier),
        now: DateTime<Utc>,
    ) -> StoreResult<bool>;
    /// Makes the payer the orderer of an order held because they differ, so it is declared
    /// again: in one transaction, only while the order is so held and only when the payer's
    /// annual quota for the order's year (`annual_limit_fen`) has room for it; otherwise a
    /// conflict (`invalid_state`, `annual_quota_exceeded`) and nothing changes.
    fn correct_orderer(
        &self,
        order_id: &str,
        name: &str,
        id_number: &str,
        annual_limit_fen: i64,
        now: DateTime<Utc>,
    ) -> StoreResult<()>;
    /// Orders moving through logistics (declared, cleared, shipped).
    fn orders_in_transit(&self) -> StoreResult<Vec<OrderCore>>;
    /// Adds a logistics event and moves the order to `status` (if given), in one transaction and
    /// only while the order is still in transit; `false` when it is not (refunded meanwhile), and
    /// nothing changes.
    fn advance_parcel(
        &self,
        order_id: &str,
        e: &TrackingEvent,
        status: Option<(OrderStatus, Option<HoldReason>)>,
        now: DateTime<Utc>,
    ) -> StoreResult<bool>;
    /// Holds an order whose parcel failed customs inspection (with its tracking event) and records
    /// the refund of what is left of it — `refund`, its amount set here to the order total less
    /// every refund of the same payment not failed — in one transaction, only while the order is in transit. Returns
    /// whether it was held, and the refund recorded (none when nothing is left to refund).
    fn hold_failed_inspection(
        &self,
        order_id: &str,
        e: &TrackingEvent,
        refund: Option<RefundRow>,
        now: DateTime<Utc>,
    ) -> StoreResult<(bool, Option<RefundRow>)>;
    fn tracking(&self, order_id: &str) -> StoreResult<Vec<TrackingEvent>>;
    fn add_tracking(&self, order_id: &str, e: &TrackingEvent, now: DateTime<Utc>) -> StoreResult<()>;
}

pub trait SupportStore {
    fn create_ticket(&self, t: &Ticket, account_id: &str) -> StoreResult<()>;
    fn add_message(&self, ticket_id: &str, author: Author, body: &str, now: DateTime<Utc>)
    -> StoreResult<()>;
    fn ticket(&self, account_id: &str, id: &str) -> StoreResult<Option<Ticket>>;
    fn tickets(&self, account_id: &str) -> StoreResult<Vec<Ticket>>;
    fn set_ticket_status(
        &self,
        id: &str,
        status: haitao_shop_api::support::TicketStatus,
        now: DateTime<Utc>,
    ) -> StoreResult<()>;
    fn topic_of(&self, id: &str) -> StoreResult<Option<TicketTopic>>;
}

/// A payment as the books have it, for reconciliation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BookPayment {
    pub out_trade_no: String,
    pub status: haitao_shop_api::orders::AttemptStatus,
    pub amount: Money,
    pub gateway_paid_at: Option<DateTime<Utc>>,
}

/// A refund as the books have it, for reconciliation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BookRefund {
    pub out_trade_no: String,
    pub out_request_no: String,
    pub status: haitao_shop_api::orders::RefundStatus,
    pub amount: Money,
    pub gateway_refunded_at: Option<DateTime<Utc>>,
}

/// What the books hold that a day's bill is compared with: every attempt the bill names and
/// every payment the gateway made in `[from, to)`; every refund the bill names and every refund
/// the gateway made in that window.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Books {
    pub payments: Vec<BookPayment>,
    pub refunds: Vec<BookRefund>,
}

/// A day the reconciliation job tried and could not do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailedDay {
    pub day: NaiveDate,
    pub tries: u32,
    pub last_error: String,
    pub tried_at: DateTime<Utc>,
}

/// Fen of an amount the books keep (CNY); another currency is an error, never converted.
pub fn books_fen(m: Money, what: &str) -> StoreResult<i64> {
    if m.currency() == haitao_alipay::money::Currency::Cny {
        Ok(m.minor())
    } else {
        Err(ApiError::internal(format!("{what} is in {}, the books keep CNY", m.currency())))
    }
}

/// The daily reconciliation's reads and its results.
pub trait ReconciliationStore {
    /// The books for a bill covering `[from, to)` that names `out_trade_nos` and refunds
    /// `out_request_nos`.
    fn books(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        out_trade_nos: &[String],
        out_request_nos: &[String],
    ) -> StoreResult<Books>;
    /// Records a day's result, replacing an earlier run of the same day.
    fn save_reconciliation(&self, r: &haitao_shop_api::reconciliation::Reconciliation) -> StoreResult<()>;
    fn reconciliation(
        &self,
        day: NaiveDate,
    ) -> StoreResult<Option<haitao_shop_api::reconciliation::Reconciliation>>;
    /// The latest `limit` days reconciled, newest first.
    fn reconciliations(
        &self,
        limit: u32,
    ) -> StoreResult<Vec<haitao_shop_api::reconciliation::Reconciliation>>;
    /// What the job knows of each day from `from` on: reconciled (when, with how many
    /// differences) or failed (when last, how many times).
    fn reconciliation_days(
        &self,
        from: NaiveDate,
    ) -> StoreResult<std::collections::BTreeMap<NaiveDate, crate::reconcile::DayState>>;
    /// Notes a failed try of `day` (one more try, this error, at `now`).
    fn reconciliation_failed(&self, day: NaiveDate, error: &str, now: DateTime<Utc>) -> StoreResult<()>;
    /// Days not reconciled that the job tried, oldest first.
    fn failing_days(&self) -> StoreResult<Vec<FailedDay>>;
}

/// Leases: work one shop instance at a time may do, when several share a database.
pub trait LeaseStore {
    /// Takes the lease `name` for `holder` until `until`, unless another holder has it after
    /// `now`; a holder may extend its own. Returns whether `holder` has it.
    fn claim(&self, name: &str, holder: &str, now: DateTime<Utc>, until: DateTime<Utc>) -> StoreResult<bool>;
    /// Lets go of the lease `name` if `holder` has it.
    fn release(&self, name: &str, holder: &str) -> StoreResult<()>;
}

/// Everything the shop stores.
pub trait Store:
    CatalogStore
    + AccountStore
    + CartStore
    + OrderStore
    + PaymentStore
    + RefundStore
    + FulfilmentStore
    + SupportStore
    + ReconciliationStore
    + LeaseStore
    + Send
    + Sync
    + std::fmt::Debug
{
}

impl<T> Store for T where
    T: CatalogStore
        + AccountStore
        + CartStore
        + OrderStore
        + PaymentStore
        + RefundStore
        + FulfilmentStore
        + SupportStore
        + ReconciliationStore
        + LeaseStore
        + Send
        + Sync
        + std::fmt::Debug
{
}
