//! The daily trade bill: asked for through the gateway, downloaded from its link, read back in
//! Alipay's layout, with the day's payments and refunds in it and nothing else.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use chrono::Duration;
use common::harness;
use haitao_alipay::api::{BillDownloadUrlQuery, PagePay, Refund, TradeRef};
use haitao_alipay::bill::{BillKind, TradeBill};
use haitao_alipay::time::{Clock as _, shanghai};
use haitao_alipay::{Currency, Money};
use haitao_sandbox_api::{PayRequest, PayWith};

const ZHANGWEI: &str = "zhangwei@sandbox.haitao";

fn cny(fen: i64) -> Money {
    Money::from_minor(fen, Currency::Cny)
}

#[tokio::test]
async fn a_days_bill_lists_its_payments_and_refunds() {
    let h = harness().await;
    let day = h.clock.now().with_timezone(&shanghai()).date_naive();
    for (out, fen) in [("BILL-1", 12_345), ("BILL-2", 6_789)] {
        h.open_page_pay(&PagePay::new(out, cny(fen), "账单商品")).await;
        h.pay_ok(&PayRequest::new(out, ZHANGWEI, PayWith::Balance)).await;
    }
    h.client.execute(&Refund::new(TradeRef::out_trade_no("BILL-1"), cny(345), "R-1")).await.unwrap();

    // Today's bill does not exist yet.
    let e = h.client.execute(&BillDownloadUrlQuery::trade_day(day)).await.unwrap_err();
    assert_eq!(e.sub_code(), Some("isp.bill_not_exist"), "{e:?}");
    h.advance(86_400).await;
    let link = h.client.execute(&BillDownloadUrlQuery::trade_day(day)).await.unwrap();
    assert_eq!(link.bill_file_code, None);
    let resp = h.http.get(&link.bill_download_url).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let disposition = resp.headers()["content-disposition"].to_str().unwrap().to_owned();
    assert!(
        disposition.contains(&format!("{}0156_{}.csv.zip", h.seller_id, day.format("%Y%m%d"))),
        "{disposition}"
    );
    let bill = TradeBill::from_zip(&resp.bytes().await.unwrap()).unwrap();
    assert_eq!(bill.account, format!("{}0156", h.seller_id));
    assert_eq!(bill.start.date(), day);
    let mut summary: Vec<(BillKind, &str, i64, Option<&str>)> = bill
        .rows
        .iter()
        .map(|r| (r.kind, r.out_trade_no.as_str(), r.order_amount.minor(), r.out_request_no.as_deref()))
        .collect();
    // (All three happened at one instant of the test's clock: payments first, then the refund.)
    assert_eq!(bill.rows[2].kind, BillKind::Refund);
    summary[..2].sort_by_key(|r| r.1);
    assert_eq!(
        summary,
        [
            (BillKind::Payment, "BILL-1", 12_345, None),
            (BillKind::Payment, "BILL-2", 6_789, None),
            (BillKind::Refund, "BILL-1", -345, Some("R-1")),
        ]
    );
    assert!(bill.rows[0].counterparty.starts_with("*伟(zha***@"), "{}", bill.rows[0].counterparty);

    // The link lasts 30 seconds.
    h.advance(31).await;
    assert_eq!(h.http.get(&link.bill_download_url).send().await.unwrap().status(), 404);

    // The day before had no business: an empty bill, said so.
    let empty = h.client.execute(&BillDownloadUrlQuery::trade_day(day - Duration::days(1))).await.unwrap();
    assert_eq!(empty.bill_file_code.as_deref(), Some("EMPTY_DATA_WITH_BILL_FILE"));
    let bill = TradeBill::from_zip(
        &h.http.get(&empty.bill_download_url).send().await.unwrap().bytes().await.unwrap(),
    )
    .unwrap();
    assert!(bill.rows.is_empty());
    // The month's bill: refused while the month runs, then holds the day's rows.
    let month =
        BillDownloadUrlQuery { bill_type: "trade".into(), bill_date: day.format("%Y-%m").to_string() };
    let month_ends = {
        use chrono::Datelike as _;
        let first_next = if day.month() == 12 {
            chrono::NaiveDate::from_ymd_opt(day.year() + 1, 1, 1)
        } else {
            chrono::NaiveDate::from_ymd_opt(day.year(), day.month() + 1, 1)
        }
        .unwrap();
        (first_next - day).num_days()
    };
    if month_ends > 1 {
        assert_eq!(h.client.execute(&month).await.unwrap_err().sub_code(), Some("isp.bill_not_exist"));
    }
    h.advance(month_ends * 86_400).await;
    let m = h.client.execute(&month).await.unwrap();
    let bill =
        TradeBill::from_zip(&h.http.get(&m.bill_download_url).send().await.unwrap().bytes().await.unwrap())
            .unwrap();
    assert_eq!(bill.rows.len(), 3);
    let bad = BillDownloadUrlQuery { bill_type: "signcustomer".into(), bill_date: day.to_string() };
    assert_eq!(h.client.execute(&bad).await.unwrap_err().sub_code(), Some("isv.invalid-arguments"));
}
