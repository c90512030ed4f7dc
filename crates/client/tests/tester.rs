//! Tester mode through the client, against a shop on the sandbox's clock as the app runs them: the
//! trace filtered by direction, result and method; a past notification sent again; the one clock
//! moved for both; a payment's trace exported and replayed against a fresh sandbox.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{shopper, world_on_one_clock};
use haitao_client::tester::{NotifyState, TraceDirection, TraceFilter, TraceResult, replay_in_fresh_sandbox};
use haitao_sandbox_api::PayWith;
use haitao_shop_api::orders::{OrderStatus, PayMode, PaymentMethod, TrackingStage};

#[tokio::test]
async fn the_tester_loop_filters_resends_moves_one_clock_and_replays() {
    let w = world_on_one_clock().await;
    let c = w.client();
    let address = shopper(&c, "13900000501").await;
    let order = c.place_order(&address).await.unwrap();
    let ret = c.payment_config().await.unwrap().return_page;
    let launch = c.start_payment(&order.id, PaymentMethod::Balance, PayMode::InApp, &ret).await.unwrap();
    let out = launch.attempt.out_trade_no.clone();
    w.pay(
        launch.attempt.cashier_url.as_deref().unwrap(),
        &out,
        "zhangwei@sandbox.haitao",
        PayWith::Balance,
        None,
    )
    .await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while c.order(&order.id).await.unwrap().status == OrderStatus::AwaitingPayment {
        assert!(std::time::Instant::now() < deadline, "the shop never heard of the payment");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    // The merchant asks about the payment (as the shop's jobs do), so the trace holds a query.
    let query = haitao_alipay::api::Query::new(haitao_alipay::api::TradeRef::out_trade_no(out.clone()));
    assert!(w.shop.shop.alipay.execute(&query).await.unwrap().trade_status.is_paid());

    // The trace, whole and filtered.
    let all = c.tester_trace(&out, 0, &TraceFilter::default()).await.unwrap();
    assert!(
        all.iter().any(|e| e.kind == "gateway.request") && all.iter().any(|e| e.kind.starts_with("notify."))
    );
    let inbound = TraceFilter { direction: Some(TraceDirection::In), ..TraceFilter::default() };
    let got = c.tester_trace(&out, 0, &inbound).await.unwrap();
    assert!(!got.is_empty() && got.iter().all(|e| e.kind == "gateway.request"), "{got:?}");
    let outbound = TraceFilter { direction: Some(TraceDirection::Out), ..TraceFilter::default() };
    let got = c.tester_trace(&out, 0, &outbound).await.unwrap();
    assert!(!got.is_empty() && got.iter().all(|e| e.kind != "gateway.request"), "{got:?}");
    let queries = TraceFilter { method: Some(" alipay.trade.query ".into()), ..TraceFilter::default() };
    let got = c.tester_trace(&out, 0, &queries).await.unwrap();
    assert!(!got.is_empty(), "the merchant queried the payment");
    assert!(got.iter().all(|e| e.detail.contains("\"alipay.trade.query\"")), "{got:?}");
    let failed = TraceFilter { outcome: Some(TraceResult::Failure), ..TraceFilter::default() };
    assert!(c.tester_trace(&out, 0, &failed).await.unwrap().is_empty(), "nothing failed");
    let since = all.last().unwrap().seq;
    assert!(c.tester_trace(&out, since, &TraceFilter::default()).await.unwrap().is_empty());

    // The notification, sent again as it was: the shop takes it once more and answers success.
    let sent = c.tester_notifications(&out).await.unwrap();
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(sent[0].state, NotifyState::Delivered);
    let before = sent[0].attempts;
    c.tester_resend(sent[0].id).await.unwrap();
    // Sent by the sandbox's worker at once (the same message, one more attempt).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let again = c.tester_notifications(&out).await.unwrap();
        if again[0].attempts == before + 1 && again[0].state == NotifyState::Delivered {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "never sent again: {again:?}");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let resent = TraceFilter { method: None, ..TraceFilter::default() };
    let kinds: Vec<String> =
        c.tester_trace(&out, 0, &resent).await.unwrap().into_iter().map(|e| e.kind).collect();
    assert!(kinds.iter().any(|k| k == "notify.resent"), "{kinds:?}");
    let seen = c.order(&order.id).await.unwrap();
    assert!(seen.paid && seen.refunds.is_empty(), "{seen:?}");
    let paid_events = seen.tracking.iter().filter(|e| e.stage == TrackingStage::Paid).count();
    assert_eq!(paid_events, 1, "the same notification is taken once");
    assert!(c.tester_resend(999_999).await.is_err(), "an unknown notification is refused");

    // One clock: moving the sandbox's moves the shop's.
    let start = c.tester_clock().await.unwrap();
    assert_eq!(start.ahead_seconds, 0);
    let shop_before = c.health().await.unwrap().now;
    let moved = c.tester_advance_clock(86_400).await.unwrap();
    assert_eq!(moved.ahead_seconds, 86_400);
    let shop_after = c.health().await.unwrap().now;
    let shop_moved = (shop_after - shop_before).num_seconds();
    assert!((86_400..86_400 + 60).contains(&shop_moved), "the shop's clock moved {shop_moved} s");
    assert_eq!(c.tester_clock().await.unwrap().ahead_seconds, 86_400);
    assert!(c.tester_advance_clock(0).await.is_err(), "the sandbox refuses a move of nothing");

    // The payment's trace exported, then replayed against a fresh sandbox: every request is sent
    // again; the cashier request is answered the same, a query of a payment the fresh sandbox
    // never saw is not.
    let export = c.tester_export(&out, &TraceFilter::default()).await.unwrap();
    assert!(!export.contains("PRIVATE KEY"), "an export carries no private key");
    let doc: serde_json::Value = serde_json::from_str(&export).unwrap();
    let requests =
        doc["events"].as_array().unwrap().iter().filter(|e| e["kind"] == "gateway.request").count();
    let report = replay_in_fresh_sandbox(export.as_bytes()).await.unwrap();
    assert_eq!(report.requests.len(), requests);
    assert_eq!(u32::try_from(requests).unwrap(), report.same + report.differ);
    let page =
        report.requests.iter().find(|r| r.method == "alipay.trade.page.pay").expect("the cashier request");
    assert!(page.same, "{page:?}");
    let query = report.requests.iter().find(|r| r.method == "alipay.trade.query").expect("a query");
    assert_eq!(query.original.as_deref(), Some("10000"));
    assert_eq!(query.replayed, "40004 ACQ.TRADE_NOT_EXIST");
    assert!(!query.same);

    // What is not a trace export is refused, and so is one with nothing to replay.
    assert!(replay_in_fresh_sandbox(b"{\"not\": \"a trace\"}").await.is_err());
    assert!(replay_in_fresh_sandbox(&[0xff, 0xfe, 0x00]).await.is_err());
    let only_answers = TraceFilter { direction: Some(TraceDirection::Out), ..TraceFilter::default() };
    let export = c.tester_export(&out, &only_answers).await.unwrap();
    let err = replay_in_fresh_sandbox(export.as_bytes()).await.unwrap_err();
    assert!(err.to_string().contains("no request"), "{err}");
}
