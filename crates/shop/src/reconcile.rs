//! Daily reconciliation: each morning the shop downloads yesterday's trade bill from Alipay
//! (`alipay.data.dataservice.bill.downloadurl.query`, then the linked zip) and compares every
//! payment and refund in it with its own books, cut by Alipay's clock (the gateway's time of each
//! payment and refund is kept with it). Every difference is logged and kept by day for the admin
//! endpoint (`/api/v1/admin/reconciliations`); a day with none is recorded too, so a missed day
//! is visible.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use chrono::{DateTime, Days, NaiveDate, Timelike, Utc};
use haitao_alipay::CallError;
use haitao_alipay::api::BillDownloadUrlQuery;
use haitao_alipay::bill::{BillKind, TradeBill};
use haitao_alipay::money::{Currency, Money};
use haitao_alipay::time::shanghai;
use haitao_shop_api::orders::{AttemptStatus, RefundStatus};
use haitao_shop_api::reconciliation::{Difference, DifferenceKind, Reconciliation};

use crate::error::ApiError;
use crate::state::Shop;
use crate::store::Books;

/// Alipay publishes a day's bill the next morning; the shop asks from this hour (Asia/Shanghai).
pub const BILL_READY_HOUR: u32 = 10;
/// How far back the job catches up on days it missed (the shop was stopped).
pub const CATCH_UP_DAYS: u64 = 31;
/// How long after a failed download the job asks again.
pub const RETRY_AFTER: chrono::Duration = chrono::Duration::minutes(15);
/// The largest bill file accepted.
pub const BILL_MAX_BYTES: usize = 64 * 1024 * 1024;

/// Why a day could not be reconciled.
#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    #[error("Alipay has no bill for {0} yet")]
    NotReady(NaiveDate),
    #[error("asking Alipay for the bill failed: {0}")]
    Gateway(#[from] CallError),
    #[error("downloading the bill failed: {0}")]
    Download(#[from] haitao_alipay::DownloadError),
    #[error("the bill cannot be read: {0}")]
    Bill(#[from] haitao_alipay::bill::BillError),
    #[error("the bill downloaded for {asked} covers {start} to {end}")]
    WrongDay { asked: NaiveDate, start: String, end: String },
    #[error(transparent)]
    Store(#[from] ApiError),
}

/// The day `[from, to)` of Alipay's clock (Asia/Shanghai), as instants.
pub fn day_bounds(day: NaiveDate) -> (DateTime<Utc>, DateTime<Utc>) {
    let start = |d: NaiveDate| d.and_time(chrono::NaiveTime::MIN).and_utc() - chrono::Duration::hours(8);
    (start(day), start(day + Days::new(1)))
}

/// The latest day whose bill Alipay has published at `now`.
pub fn latest_ready_day(now: DateTime<Utc>) -> NaiveDate {
    let local = now.with_timezone(&shanghai());
    let back = if local.hour() >= BILL_READY_HOUR { 1 } else { 2 };
    local.date_naive() - Days::new(back)
}

fn positive(m: Money) -> Money {
    Money::from_minor(m.minor().saturating_abs(), m.currency())
}

/// Compares a day's bill with the books: what the bill lists that the books do not have (or
/// have otherwise), then what the books did that day (by the gateway's time) that the bill does
/// not list. `[from, to)` is the bill's day.
pub fn compare(bill: &TradeBill, books: &Books, from: DateTime<Utc>, to: DateTime<Utc>) -> Vec<Difference> {
    let payments: BTreeMap<&str, _> = books.payments.iter().map(|p| (p.out_trade_no.as_str(), p)).collect();
    let refunds: BTreeMap<&str, _> = books.refunds.iter().map(|r| (r.out_request_no.as_str(), r)).collect();
    let mut out = Vec::new();
    let mut billed_payments = BTreeSet::new();
    let mut billed_refunds = BTreeSet::new();
    let diff = |kind, row: &haitao_alipay::bill::BillRow, request: Option<String>, books: Option<Money>| {
        Difference {
            kind,
            out_trade_no: row.out_trade_no.clone(),
            out_request_no: request,
            books,
            bill: Some(positive(row.order_amount)),
        }
    };
    for row in &bill.rows {
        let billed = positive(row.order_amount);
        match row.kind {
            BillKind::Payment => {
                billed_payments.insert(row.out_trade_no.as_str());
                match payments.get(row.out_trade_no.as_str()) {
                    None => out.push(diff(DifferenceKind::UnknownTrade, row, None, None)),
                    Some(p) if p.status != AttemptStatus::Paid => {
                        out.push(diff(DifferenceKind::MissingPayment, row, None, None));
                    }
                    Some(p) if p.amount != billed => {
                        out.push(diff(DifferenceKind::AmountMismatch, row, None, Some(p.amount)));
                    }
                    Some(_) => {}
                }
            }
            BillKind::Refund => {
                if let Some(r) = &row.out_request_no {
                    billed_refunds.insert(r.as_str());
                }
                let request = row.out_request_no.clone();
                let kept = request
                    .as_deref()
                    .and_then(|r| refunds.get(r))
                    .filter(|r| r.out_trade_no == row.out_trade_no && r.status == RefundStatus::Succeeded);
                match kept {
                    None => out.push(diff(DifferenceKind::UnknownRefund, row, request, None)),
                    Some(r) if r.amount != billed => {
                        out.push(diff(DifferenceKind::AmountMismatch, row, request, Some(r.amount)));
                    }
                    Some(_) => {}
                }
            }
        }
    }
    let in_day = |at: Option<DateTime<Utc>>| at.is_some_and(|t| from <= t && t < to);
    for p in &books.payments {
        if p.status == AttemptStatus::Paid
            && in_day(p.gateway_paid_at)
            && !billed_payments.contains(p.out_trade_no.as_str())
        {
            out.push(Difference {
                kind: DifferenceKind::PaymentNotInBill,
                out_trade_no: p.out_trade_no.clone(),
                out_request_no: None,
                books: Some(p.amount),
                bill: None,
            });
        }
    }
    for r in &books.refunds {
        if r.status == RefundStatus::Succeeded
            && in_day(r.gateway_refunded_at)
            && !billed_refunds.contains(r.out_request_no.as_str())
        {
            out.push(Difference {
                kind: DifferenceKind::RefundMissing,
                out_trade_no: r.out_trade_no.clone(),
                out_request_no: Some(r.out_request_no.clone()),
                books: Some(r.amount),
                bill: None,
            });
        }
    }
    out
}

/// Downloads `day`'s bill, compares it with the books, records and logs the result.
pub async fn reconcile_day(shop: &Arc<Shop>, day: NaiveDate) -> Result<Reconciliation, ReconcileError> {
    let link = match shop.alipay.execute(&BillDownloadUrlQuery::trade_day(day)).await {
        Ok(link) => link,
        Err(CallError::Failed(g)) if g.sub_code() == Some("isp.bill_not_exist") => {
            return Err(ReconcileError::NotReady(day));
        }
        Err(e) => return Err(e.into()),
    };
    let zip = shop.alipay.download(&link.bill_download_url, BILL_MAX_BYTES).await?;
    let bill = TradeBill::from_zip(&zip)?;
    let (from, to) = day_bounds(day);
    let local = |t: DateTime<Utc>| t.with_timezone(&shanghai()).naive_local();
    if bill.start != local(from) || bill.end != local(to) {
        return Err(ReconcileError::WrongDay {
            asked: day,
            start: bill.start.to_string(),
            end: bill.end.to_string(),
        });
    }
    let trades: Vec<String> = bill.rows.iter().map(|r| r.out_trade_no.clone()).collect();
    let requests: Vec<String> = bill.rows.iter().filter_map(|r| r.out_request_no.clone()).collect();
    let books = shop.blocking(move |s| s.books(from, to, &trades, &requests)).await?;
    let differences = compare(&bill, &books, from, to);
    let count = |k| u32::try_from(bill.rows.iter().filter(|r| r.kind == k).count()).unwrap_or(u32::MAX);
    let sum = |k| {
        bill.rows
            .iter()
            .filter(|r| r.kind == k)
            .map(|r| r.order_amount.minor().saturating_abs())
            .fold(0_i64, i64::saturating_add)
    };
    let rec = Reconciliation {
        day,
        ran_at: shop.now(),
        bill_file: bill.file_name(),
        payments: count(BillKind::Payment),
        refunds: count(BillKind::Refund),
        income: Money::from_minor(sum(BillKind::Payment), Currency::Cny),
        refunded: Money::from_minor(sum(BillKind::Refund), Currency::Cny),
        differences,
    };
    for d in &rec.differences {
        tracing::error!(
            %day,
            kind = %d.kind,
            out_trade_no = %d.out_trade_no,
            out_request_no = %d.out_request_no.as_deref().unwrap_or("-"),
            books = %d.books.map_or_else(|| "-".to_owned(), |m| m.to_string()),
            bill = %d.bill.map_or_else(|| "-".to_owned(), |m| m.to_string()),
            "the bill and the books differ"
        );
    }
    if rec.differences.is_empty() {
        tracing::info!(%day, payments = rec.payments, refunds = rec.refunds, "the bill matches the books");
    }
    let saved = rec.clone();
    shop.blocking(move |s| s.save_reconciliation(&saved)).await?;
    Ok(rec)
}

/// Where the job's window starts on a shop that has never reconciled: the latest day published
/// when it first ran (a new shop does not download a month of empty bills).
const SINCE_KEY: &str = "reconcile:since";
/// Days with differences are compared again, at most this often, while they are this recent: a
/// refund still under way at the end of a day, a payment the shop learns of later, leave
/// differences that the books then settle.
pub const RECHECK_AFTER: chrono::Duration = chrono::Duration::hours(6);
pub const RECHECK_DAYS: u64 = 7;

/// How long after its `tries`-th failure a day is tried again: 15 minutes, doubling, at most 6
/// hours.
pub fn retry_pause(tries: u32) -> chrono::Duration {
    let doublings = tries.saturating_sub(1).min(5);
    (RETRY_AFTER * 2_i32.pow(doublings)).min(chrono::Duration::hours(6))
}

/// What the job knows of one day: when it was last reconciled and with how many differences, or
/// how its tries failed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DayState {
    pub reconciled: Option<(DateTime<Utc>, usize)>,
    pub failed: Option<(DateTime<Utc>, u32)>,
}

/// The day the job reconciles next, if any: the earliest day of the window (from `since`, at
/// most [`CATCH_UP_DAYS`] back, up to `latest`) never reconciled and not waiting out a failure;
/// else the earliest of the last [`RECHECK_DAYS`] whose result listed differences and is older
/// than [`RECHECK_AFTER`]. A day that keeps failing waits its pause while later days go on.
pub fn next_day(
    latest: NaiveDate,
    since: NaiveDate,
    days: &BTreeMap<NaiveDate, DayState>,
    now: DateTime<Utc>,
) -> Option<NaiveDate> {
    let first = since.max(latest - Days::new(CATCH_UP_DAYS));
    let waiting = |d: &NaiveDate| {
        days.get(d).and_then(|s| s.failed).is_some_and(|(at, tries)| now < at + retry_pause(tries))
    };
    let mut day = first;
    while day <= latest {
        if days.get(&day).is_none_or(|s| s.reconciled.is_none()) && !waiting(&day) {
            return Some(day);
        }
        day = day + Days::new(1);
    }
    let mut day = first.max(latest - Days::new(RECHECK_DAYS - 1));
    while day <= latest {
        let stale = days
            .get(&day)
            .and_then(|s| s.reconciled)
            .is_some_and(|(ran, differences)| differences > 0 && ran + RECHECK_AFTER <= now);
        if stale && !waiting(&day) {
            return Some(day);
        }
        day = day + Days::new(1);
    }
    None
}

/// The job, one day per pass (it runs under the jobs' lock, beside refunds and closing orders):
/// the day [`next_day`] picks is reconciled, or its failure recorded with its pause, whatever the
/// failure (the bill not out yet, a gateway fault, a bill that cannot be read, the books).
pub async fn run(shop: &Arc<Shop>) -> Result<(), ApiError> {
    let now = shop.now();
    let latest = latest_ready_day(now);
    let since = match shop.blocking(|s| s.meta(SINCE_KEY)).await? {
        Some(text) => NaiveDate::parse_from_str(&text, "%Y-%m-%d")
            .map_err(|e| ApiError::internal(format!("meta {SINCE_KEY} {text:?}: {e}")))?,
        None => {
            // The first day already reconciled, if an older build reconciled some; else today's.
            let epoch = NaiveDate::from_ymd_opt(2000, 1, 1).unwrap_or(latest);
            let first = shop.blocking(move |s| s.reconciliation_days(epoch)).await?.keys().next().copied();
            let since = first.unwrap_or(latest).min(latest);
            let text = since.format("%Y-%m-%d").to_string();
            shop.blocking(move |s| s.set_meta(SINCE_KEY, &text)).await?;
            since
        }
    };
    let from = since.max(latest - Days::new(CATCH_UP_DAYS));
    let days = shop.blocking(move |s| s.reconciliation_days(from)).await?;
    let Some(day) = next_day(latest, since, &days, now) else { return Ok(()) };
    match reconcile_day(shop, day).await {
        Ok(_) => Ok(()),
        Err(e) => {
            if matches!(e, ReconcileError::NotReady(_)) {
                tracing::info!(%day, error = %e, "reconciliation postponed");
            } else {
                tracing::error!(%day, error = %e, "reconciliation failed; it will be tried again");
            }
            let error = e.to_string();
            shop.blocking(move |s| s.reconciliation_failed(day, &error, now)).await?;
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{BookPayment, BookRefund};
    use chrono::NaiveDateTime;
    use haitao_alipay::bill::BillRow;
    use proptest::prelude::*;

    fn day() -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 12, 6).unwrap_or_default()
    }

    fn cny(fen: i64) -> Money {
        Money::from_minor(fen, Currency::Cny)
    }

    /// A bill of `day` and books that agree with it: payments `(fen, seconds into the day)` and
    /// refunds `(index of a payment, fen, seconds)`.
    fn agreeing(payments: &[(i64, i64)], refunds: &[(usize, i64, i64)]) -> (TradeBill, Books) {
        let (from, _) = day_bounds(day());
        let local = |t: DateTime<Utc>| t.with_timezone(&shanghai()).naive_local();
        let mut rows = Vec::new();
        let mut books = Books::default();
        for (i, &(fen, s)) in payments.iter().enumerate() {
            let at = from + chrono::Duration::seconds(s);
            rows.push(BillRow {
                trade_no: format!("2026120622{i:010}"),
                out_trade_no: format!("T{i}"),
                kind: BillKind::Payment,
                subject: "海淘订单".into(),
                created_at: at,
                finished_at: at,
                counterparty: "zha***@sandbox.haitao".into(),
                order_amount: cny(fen),
                merchant_received: cny(fen),
                out_request_no: None,
                service_fee: cny(0),
                remark: String::new(),
            });
            books.payments.push(BookPayment {
                out_trade_no: format!("T{i}"),
                status: AttemptStatus::Paid,
                amount: cny(fen),
                gateway_paid_at: Some(at),
            });
        }
        for (j, &(i, fen, s)) in refunds.iter().enumerate() {
            let at = from + chrono::Duration::seconds(s);
            let i = i % payments.len().max(1);
            rows.push(BillRow {
                kind: BillKind::Refund,
                order_amount: cny(-fen),
                merchant_received: cny(-fen),
                out_request_no: Some(format!("R{j}")),
                finished_at: at,
                ..rows[i].clone()
            });
            books.refunds.push(BookRefund {
                out_trade_no: format!("T{i}"),
                out_request_no: format!("R{j}"),
                status: RefundStatus::Succeeded,
                amount: cny(fen),
                gateway_refunded_at: Some(at),
            });
        }
        let start: NaiveDateTime = local(from);
        let bill = TradeBill {
            account: "20880000000000010156".into(),
            start,
            end: start + chrono::Duration::days(1),
            rows,
            exported_at: from,
        };
        (bill, books)
    }

    fn kinds(bill: &TradeBill, books: &Books) -> Vec<DifferenceKind> {
        let (from, to) = day_bounds(day());
        compare(bill, books, from, to).into_iter().map(|d| d.kind).collect()
    }

    #[test]
    fn days_are_cut_at_midnight_in_shanghai_and_bills_are_out_at_ten() {
        let (from, to) = day_bounds(day());
        assert_eq!(from.to_rfc3339(), "2026-12-05T16:00:00+00:00");
        assert_eq!(to - from, chrono::Duration::days(1));
        let at = |s: &str| DateTime::parse_from_rfc3339(s).map(|t| t.with_timezone(&Utc)).unwrap_or_default();
        assert_eq!(
            latest_ready_day(at("2026-12-07T01:59:59+00:00")),
            day() - Days::new(1),
            "09:59 in Hangzhou"
        );
        assert_eq!(latest_ready_day(at("2026-12-07T02:00:00+00:00")), day(), "10:00 in Hangzhou");
        assert_eq!(latest_ready_day(at("2026-12-07T15:59:59+00:00")), day(), "23:59 in Hangzhou");
        assert_eq!(latest_ready_day(at("2026-12-07T16:00:00+00:00")), day(), "00:00 of the 8th");
    }

    fn d(n: u64) -> NaiveDate {
        day() + Days::new(n)
    }

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).map(|t| t.with_timezone(&Utc)).unwrap_or_default()
    }

    #[test]
    fn the_job_takes_the_oldest_day_missing_then_stale_differences() {
        let now = at("2026-12-20T04:00:00Z");
        let done = |ran: DateTime<Utc>, n: usize| DayState { reconciled: Some((ran, n)), failed: None };
        let mut days = BTreeMap::new();
        // Nothing yet: the first day of the window.
        assert_eq!(next_day(d(10), d(0), &days, now), Some(d(0)));
        // Never further back than CATCH_UP_DAYS.
        assert_eq!(next_day(d(40), d(0), &days, now), Some(d(40) - Days::new(CATCH_UP_DAYS)));
        // Nor before the shop's first day.
        assert_eq!(next_day(d(10), d(8), &days, now), Some(d(8)));
        for n in 0..=10 {
            days.insert(d(n), done(now, 0));
        }
        assert_eq!(next_day(d(10), d(0), &days, now), None, "all done");
        // A gap is filled, even behind later days (a manual run of a later day leaves one).
        days.remove(&d(3));
        assert_eq!(next_day(d(10), d(0), &days, now), Some(d(3)));
        // A day failing waits its pause; the days after it go on meanwhile.
        days.insert(
            d(3),
            DayState { reconciled: None, failed: Some((now - chrono::Duration::minutes(5), 1)) },
        );
        days.remove(&d(7));
        assert_eq!(next_day(d(10), d(0), &days, now), Some(d(7)));
        days.insert(d(7), done(now, 0));
        assert_eq!(next_day(d(10), d(0), &days, now), None);
        assert_eq!(next_day(d(10), d(0), &days, now + chrono::Duration::minutes(11)), Some(d(3)));
        // The pause grows with the tries, to at most six hours.
        assert_eq!(retry_pause(1), chrono::Duration::minutes(15));
        assert_eq!(retry_pause(3), chrono::Duration::hours(1));
        assert_eq!(retry_pause(40), chrono::Duration::hours(6));
        days.insert(d(3), done(now, 0));
        // A recent day with differences is compared again once its result is six hours old; an
        // older one, or one without differences, is not.
        days.insert(d(9), done(now - chrono::Duration::hours(5), 2));
        assert_eq!(next_day(d(10), d(0), &days, now), None);
        days.insert(d(9), done(now - chrono::Duration::hours(6), 2));
        days.insert(d(2), done(now - chrono::Duration::hours(30), 1));
        assert_eq!(next_day(d(10), d(0), &days, now), Some(d(9)));
    }

    proptest! {
        /// Books that agree with the bill reconcile with no difference; one change on either side
        /// gives exactly the one difference it should, however the day was made up.
        #[test]
        fn one_change_gives_one_difference(
            payments in prop::collection::vec((1_i64..5_000_000, 0_i64..86_400), 1..12),
            refunds in prop::collection::vec((0_usize..12, 1_i64..100_000, 0_i64..86_400), 0..6),
            change in 0_usize..9,
            pick in 0_usize..64,
        ) {
            let (mut bill, mut books) = agreeing(&payments, &refunds);
            prop_assert!(kinds(&bill, &books).is_empty(), "{:?}", kinds(&bill, &books));
            let p = pick % books.payments.len();
            let refund = (!books.refunds.is_empty()).then(|| pick % books.refunds.len());
            let (from, to) = day_bounds(day());
            let expected = match (change, refund) {
                (0, _) => { books.payments[p].status = AttemptStatus::Redirected; Some(DifferenceKind::MissingPayment) }
                (1, _) => { books.payments.remove(p); Some(DifferenceKind::UnknownTrade) }
                (2, _) => { books.payments[p].amount = cny(books.payments[p].amount.minor() + 1); Some(DifferenceKind::AmountMismatch) }
                (3, _) => {
                    let out = books.payments[p].out_trade_no.clone();
                    bill.rows.retain(|r| !(r.kind == BillKind::Payment && r.out_trade_no == out));
                    Some(DifferenceKind::PaymentNotInBill)
                }
                (4, _) => {
                    // Paid the day before by Alipay's clock: not this bill's business.
                    let out = books.payments[p].out_trade_no.clone();
                    bill.rows.retain(|r| !(r.kind == BillKind::Payment && r.out_trade_no == out));
                    books.payments[p].gateway_paid_at = Some(from - chrono::Duration::seconds(1));
                    None
                }
                (5, Some(r)) => { books.refunds[r].status = RefundStatus::Pending; Some(DifferenceKind::UnknownRefund) }
                (6, Some(r)) => {
                    let request = books.refunds[r].out_request_no.clone();
                    bill.rows.retain(|x| x.out_request_no.as_deref() != Some(request.as_str()));
                    Some(DifferenceKind::RefundMissing)
                }
                (7, Some(r)) => { books.refunds[r].amount = cny(books.refunds[r].amount.minor() + 1); Some(DifferenceKind::AmountMismatch) }
                (8, Some(r)) => {
                    // Refunded the next day by Alipay's clock.
                    let request = books.refunds[r].out_request_no.clone();
                    bill.rows.retain(|x| x.out_request_no.as_deref() != Some(request.as_str()));
                    books.refunds[r].gateway_refunded_at = Some(to);
                    None
                }
                _ => None,
            };
            let found = kinds(&bill, &books);
            prop_assert_eq!(found, expected.into_iter().collect::<Vec<_>>());
        }
    }
}
