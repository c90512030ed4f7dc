//! The tester's loop: the trace filtered by trade, method, direction and outcome, and a past
//! notification sent again to the merchant.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::harness;
use haitao_alipay::api::{PagePay, Query, Refund, TradeRef};
use haitao_alipay::{Currency, Money};
use haitao_sandbox_api::{
    Direction, Event, EventQuery, Notification, NotificationState, PayRequest, PayWith, TraceOutcome, path,
};

const ZHANGWEI: &str = "zhangwei@sandbox.haitao";

fn cny(fen: i64) -> Money {
    Money::from_minor(fen, Currency::Cny)
}

#[tokio::test]
async fn the_trace_is_filtered_by_trade_method_direction_and_outcome() {
    let h = harness().await;
    for out in ["LOOP-1", "LOOP-2"] {
        h.open_page_pay(&PagePay::new(out, cny(1_000), "loop")).await;
        h.pay_ok(&PayRequest::new(out, ZHANGWEI, PayWith::Balance)).await;
    }
    h.client.execute(&Refund::new(TradeRef::out_trade_no("LOOP-1"), cny(100), "R1")).await.unwrap();
    // A query for an unknown trade: a failure answer.
    h.client.execute(&Query::new(TradeRef::out_trade_no("LOOP-404"))).await.unwrap_err();
    let h = &h;
    let get = |q: EventQuery| async move { h.get_as::<Vec<Event>>(&path::events(&q)).await };
    let refunds = get(EventQuery { method: Some("alipay.trade.refund".into()), ..Default::default() }).await;
    assert_eq!(refunds.len(), 2, "the request and its answer: {refunds:?}");
    let incoming = get(EventQuery {
        direction: Some(Direction::In),
        kind: Some("gateway".into()),
        ..Default::default()
    })
    .await;
    assert!(incoming.iter().all(|e| e.kind == "gateway.request"));
    assert_eq!(incoming.len(), 4, "two page payments, a refund, a query");
    let failed = get(EventQuery {
        kind: Some("gateway.response".into()),
        outcome: Some(TraceOutcome::Failure),
        ..Default::default()
    })
    .await;
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert_eq!(failed[0].out_trade_no.as_deref(), Some("LOOP-404"));
    let one = get(EventQuery {
        out_trade_no: Some("LOOP-2".into()),
        direction: Some(Direction::Out),
        ..Default::default()
    })
    .await;
    assert!(
        one.iter()
            .all(|e| e.out_trade_no.as_deref() == Some("LOOP-2") && e.direction() == Some(Direction::Out))
    );
    assert!(!one.is_empty());
    // The export takes the same filters.
    let export: haitao_sandbox_api::EventExport = h
        .http
        .get(h.api(&format!("{}?method=alipay.trade.refund", path::EVENTS_EXPORT)))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(export.events.len(), 2);
}

#[tokio::test]
async fn a_past_notification_is_sent_again_exactly_as_signed() {
    let h = harness().await;
    h.open_page_pay(&PagePay::new("RESEND-1", cny(2_000), "resend")).await;
    h.pay_ok(&PayRequest::new("RESEND-1", ZHANGWEI, PayWith::Balance)).await;
    let first = h.wait_notifications(1).await;
    let notes: Vec<Notification> = h.get_as(&path::notifications(Some("RESEND-1"))).await;
    assert_eq!(notes[0].state, NotificationState::Delivered);
    let (s, v) =
        h.post(&format!("sandbox/api/notifications/{}/resend", notes[0].id), serde_json::json!({})).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["was"], "delivered");
    let again = h.wait_notifications(2).await;
    assert_eq!(again.len(), 2);
    assert_eq!(again[1], first[0], "the same signed message, notify_id included");
    h.inbound.notify(&again[1]).unwrap();
    let (s, _) = h.post("sandbox/api/notifications/999999/resend", serde_json::json!({})).await;
    assert_eq!(s, 404);
}

#[tokio::test]
async fn an_exported_trace_replays_against_a_fresh_sandbox() {
    let a = common::harness_with(None, false, true).await;
    let pc = haitao_alipay::api::Precreate::new("REPLAY-1", cny(3_000), "重放");
    a.client.execute(&pc).await.unwrap();
    a.client.execute(&Query::new(TradeRef::out_trade_no("REPLAY-404"))).await.unwrap_err();
    a.client.execute_v3(&Query::new(TradeRef::out_trade_no("REPLAY-404"))).await.unwrap_err();
    a.open_page_pay(&PagePay::new("REPLAY-2", cny(1_000), "页面")).await;
    // Paid by a buyer (not a request): the query after it succeeds here, and cannot elsewhere.
    a.pay_ok(&PayRequest::new("REPLAY-1", ZHANGWEI, PayWith::Balance)).await;
    a.client.execute(&Query::new(TradeRef::out_trade_no("REPLAY-1"))).await.unwrap();
    let plain: haitao_sandbox_api::EventExport =
        a.http.get(a.api(path::EVENTS_EXPORT)).send().await.unwrap().json().await.unwrap();
    assert_eq!(plain.apps[0].aes_key, None, "an export carries no content key unless asked");
    let export: haitao_sandbox_api::EventExport = a
        .http
        .get(a.api(&format!("{}?with_keys=true", path::EVENTS_EXPORT)))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(export.apps.len(), 1);
    assert_eq!(export.apps[0].app_id, a.app_id);
    assert!(export.apps[0].aes_key.is_some());

    let b = harness().await;
    let (s, v) = b.post("sandbox/api/events/replay", serde_json::to_value(&export).unwrap()).await;
    assert_eq!(s, 200, "{v}");
    let r: haitao_sandbox_api::Replayed = serde_json::from_value(v).unwrap();
    assert_eq!(r.apps_added, std::slice::from_ref(&a.app_id));
    let seen: Vec<(&str, &str, Option<&str>, &str, bool)> = r
        .requests
        .iter()
        .map(|q| (q.method.as_str(), q.protocol.as_str(), q.original.as_deref(), q.replayed.as_str(), q.same))
        .collect();
    assert_eq!(
        seen,
        [
            ("alipay.trade.precreate", "v2", Some("10000"), "10000", true),
            (
                "alipay.trade.query",
                "v2",
                Some("40004 ACQ.TRADE_NOT_EXIST"),
                "40004 ACQ.TRADE_NOT_EXIST",
                true
            ),
            ("alipay.trade.query", "v3", Some("400 ACQ.TRADE_NOT_EXIST"), "400 ACQ.TRADE_NOT_EXIST", true),
            ("alipay.trade.page.pay", "v2", None, "303", true),
            // The buyer's payment was not a request: this answer differs, and says so.
            ("alipay.trade.query", "v2", Some("10000"), "40004 ACQ.TRADE_NOT_EXIST", false),
        ]
    );
}

/// A certificate-mode app's requests name the root of the sandbox they were made against: another
/// sandbox answers that its root is not that one, signed, as documented.
#[tokio::test]
async fn a_certificate_mode_trace_replays_with_the_other_root_named() {
    let a = common::harness_with(None, true, false).await;
    a.client.execute(&Query::new(TradeRef::out_trade_no("CERT-REPLAY"))).await.unwrap_err();
    let export: haitao_sandbox_api::EventExport =
        a.http.get(a.api(path::EVENTS_EXPORT)).send().await.unwrap().json().await.unwrap();
    let b = harness().await;
    let (s, v) = b.post("sandbox/api/events/replay", serde_json::to_value(&export).unwrap()).await;
    assert_eq!(s, 200, "{v}");
    let r: haitao_sandbox_api::Replayed = serde_json::from_value(v).unwrap();
    assert_eq!(r.requests.len(), 1);
    assert_eq!(r.requests[0].original.as_deref(), Some("40004 ACQ.TRADE_NOT_EXIST"));
    assert_eq!(r.requests[0].replayed, "40002 isv.invalid-alipay-root-cert-sn");
}
