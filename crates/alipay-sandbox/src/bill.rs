//! `alipay.data.dataservice.bill.downloadurl.query` and the download it points to: the trade bill
//! of a day (or a month, Asia/Shanghai) built from the sandbox's trades and refunds in Alipay's
//! layout ([`haitao_alipay::bill`]), served from `/sandbox/bill/{token}` for 30 seconds of the
//! sandbox clock, as Alipay's links expire.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Datelike as _, Duration, NaiveDate, NaiveDateTime, TimeZone as _, Utc};
use haitao_alipay::api::BillDownloadUrlQuery;
use haitao_alipay::bill::{BillKind, BillRow, TradeBill};
use haitao_alipay::money::{Currency, Money};
use haitao_alipay::status::Status;
use haitao_alipay::time::shanghai;
use rusqlite::Connection;
use serde_json::{Value, json};

use crate::Sandbox;
use crate::db::StoreError;
use crate::model::{self, Stamp};
use crate::trades::Ctx;

/// How long a download link works.
const LINK_TTL: i64 = 30;

/// A bill waiting to be downloaded.
#[derive(Debug, Clone)]
pub(crate) struct Pending {
    file_name: String,
    bytes: Arc<Vec<u8>>,
    expires_at: DateTime<Utc>,
}

fn failure(sub_code: &str, sub_msg: &str) -> Status {
    Status::failure("40004", sub_code, sub_msg)
}

/// The wall-clock bounds of `bill_date` (`yyyy-MM-dd` or `yyyy-MM`).
fn bounds(bill_date: &str) -> Option<(NaiveDateTime, NaiveDateTime)> {
    if let Ok(day) = NaiveDate::parse_from_str(bill_date, "%Y-%m-%d") {
        let start = day.and_hms_opt(0, 0, 0)?;
        return Some((start, start + Duration::days(1)));
    }
    let first = NaiveDate::parse_from_str(&format!("{bill_date}-01"), "%Y-%m-%d").ok()?;
    let next = if first.month() == 12 {
        NaiveDate::from_ymd_opt(first.year() + 1, 1, 1)?
    } else {
        NaiveDate::from_ymd_opt(first.year(), first.month() + 1, 1)?
    };
    Some((first.and_hms_opt(0, 0, 0)?, next.and_hms_opt(0, 0, 0)?))
}

fn utc(wall: NaiveDateTime) -> Option<DateTime<Utc>> {
    shanghai().from_local_datetime(&wall).single().map(|t| t.with_timezone(&Utc))
}

/// `*伟(zha***@sandbox.haitao)`: the buyer as a bill shows the counterparty.
fn masked(conn: &Connection, buyer_id: Option<&str>) -> Result<String, StoreError> {
    let Some(b) = buyer_id.map(|id| model::buyer(conn, id)).transpose()?.flatten() else {
        return Ok(String::new());
    };
    let last = b.real_name.chars().last().map(String::from).unwrap_or_default();
    let (user, domain) = b.login.split_once('@').unwrap_or((&b.login, ""));
    let head: String = user.chars().take(3).collect();
    let at = if domain.is_empty() { String::new() } else { format!("@{domain}") };
    Ok(format!("*{last}({head}***{at})"))
}

fn cny(minor: i64) -> Money {
    Money::from_minor(minor, Currency::Cny)
}

/// The app's payments and refunds completed in `[from, to)`, in the order they completed.
fn rows(
    conn: &Connection,
    app_id: &str,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<Vec<BillRow>, StoreError> {
    let mut out = Vec::new();
    let mut st = conn.prepare_cached(
        "SELECT trade_no, out_trade_no, subject, created_at, paid_at, cny_fen, fee_fen, buyer_id FROM trades \
         WHERE app_id = ?1 AND paid_at >= ?2 AND paid_at < ?3",
    )?;
    let paid = st
        .query_map(rusqlite::params![app_id, Stamp(from), Stamp(to)], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, Stamp>(3)?.0,
                r.get::<_, Stamp>(4)?.0,
                r.get::<_, i64>(5)?,
                r.get::<_, i64>(6)?,
                r.get::<_, Option<String>>(7)?,
            ))
        })?
        .collect::<Result<Vec<_>, _>>()?;
    for (trade_no, out_trade_no, subject, created, paid_at, fen, fee, buyer) in paid {
        out.push(BillRow {
            trade_no,
            out_trade_no,
            kind: BillKind::Payment,
            subject,
            created_at: created,
            finished_at: paid_at,
            counterparty: masked(conn, buyer.as_deref())?,
            order_amount: cny(fen),
            merchant_received: cny(fen),
            out_request_no: None,
            service_fee: cny(-fee),
            remark: String::new(),
        });
    }
    let mut st = conn.prepare_cached(
        "SELECT t.trade_no, t.out_trade_no, t.subject, t.created_at, r.created_at, r.amount_fen, r.out_request_no, \
         t.buyer_id FROM refunds r JOIN trades t ON t.trade_no = r.trade_no \
         WHERE t.app_id = ?1 AND r.created_at >= ?2 AND r.created_at < ?3",
    )?;
    let refunded = st
        .query_map(rusqlite::params![app_id, Stamp(from), Stamp(to)], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, Stamp>(3)?.0,
                r.get::<_, Stamp>(4)?.0,
                r.get::<_, i64>(5)?,
                r.get::<_, String>(6)?,
                r.get::<_, Option<String>>(7)?,
            ))
        })?
        .collect::<Result<Vec<_>, _>>()?;
    for (trade_no, out_trade_no, subject, created, at, fen, request, buyer) in refunded {
        out.push(BillRow {
            trade_no,
            out_trade_no,
            kind: BillKind::Refund,
            subject,
            created_at: created,
            finished_at: at,
            counterparty: masked(conn, buyer.as_deref())?,
            order_amount: cny(-fen),
            merchant_received: cny(-fen),
            out_request_no: Some(request),
            service_fee: cny(0),
            remark: String::new(),
        });
    }
    // In the order they completed; at the same instant a payment before its refund.
    let rank = |k: BillKind| if k == BillKind::Payment { 0 } else { 1 };
    out.sort_by(|a, b| {
        a.finished_at
            .cmp(&b.finished_at)
            .then(rank(a.kind).cmp(&rank(b.kind)))
            .then(a.trade_no.cmp(&b.trade_no))
    });
    Ok(out)
}

/// The method: builds the bill and answers a link to it.
pub(crate) fn download_url(ctx: &Ctx<'_>, q: &BillDownloadUrlQuery) -> Result<Value, Status> {
    if q.bill_type != "trade" {
        return Err(failure("isv.invalid-arguments", "bill_type 只支持 trade"));
    }
    let Some((start, end)) = bounds(&q.bill_date) else {
        return Err(failure("isv.invalid-arguments", "bill_date 须为 yyyy-MM-dd 或 yyyy-MM"));
    };
    let today = ctx.now.with_timezone(&shanghai()).date_naive().and_hms_opt(0, 0, 0);
    if today.is_none_or(|t| end > t) {
        return Err(failure("isp.bill_not_exist", "账单不存在：只能下载前一日及以前的账单"));
    }
    let (Some(from), Some(to)) = (utc(start), utc(end)) else {
        return Err(failure("isv.invalid-arguments", "bill_date"));
    };
    let rows = rows(ctx.conn, &ctx.app.app_id, from, to)
        .map_err(|e| Status::failure("20000", "isp.unknow-error", e.to_string()))?;
    let empty = rows.is_empty();
    let bill =
        TradeBill { account: format!("{}0156", ctx.app.seller_id), start, end, rows, exported_at: ctx.now };
    let token = format!("{}{}", model::digits(16), model::digits(16));
    let pending = Pending {
        file_name: bill.file_name(),
        bytes: Arc::new(bill.to_zip()),
        expires_at: ctx.now + Duration::seconds(LINK_TTL),
    };
    {
        let mut bills = ctx.sb.bills.lock();
        bills.retain(|_, p| p.expires_at > ctx.now);
        bills.insert(token.clone(), pending);
    }
    let url =
        ctx.sb.base_url().join(&format!("sandbox/bill/{token}")).map(|u| u.to_string()).unwrap_or_default();
    let mut answer = json!({"bill_download_url": url});
    if empty {
        answer["bill_file_code"] = json!("EMPTY_DATA_WITH_BILL_FILE");
    }
    Ok(answer)
}

/// `GET /sandbox/bill/{token}`: the zip, while its link is valid.
pub(crate) async fn download(State(sb): State<Arc<Sandbox>>, Path(token): Path<String>) -> Response {
    let now = sb.now();
    let found = sb.bills.lock().get(&token).filter(|p| p.expires_at > now).cloned();
    match found {
        Some(p) => (
            [
                (header::CONTENT_TYPE, "application/zip".to_owned()),
                (header::CONTENT_DISPOSITION, format!("attachment; filename=\"{}\"", p.file_name)),
            ],
            p.bytes.as_ref().clone(),
        )
            .into_response(),
        None => (StatusCode::NOT_FOUND, "the bill link has expired or never existed").into_response(),
    }
}
