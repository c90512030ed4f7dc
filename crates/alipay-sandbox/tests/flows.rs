//! Every API of the sandbox through a real Alipay client: page pay, precreate, query, close,
//! cancel, refund, refund query, customs declaration, timeouts, notifications.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::harness;
use haitao_alipay::api::{
    BuyerInfo, Cancel, Close, CustomsDeclare, FeePayer, HuabeiPeriods, PagePay, PayChannel, Precreate, Query,
    Refund, RefundQuery, TimeoutExpress, TradeRef, TradeStatus,
};
use haitao_alipay::time::Clock;
use haitao_alipay::{
    AlipayClient, AmountText, AppConfig, Currency, Expected, Money, PrivateKey, PublicKey, RetryPolicy,
    SignType, Signer,
};
use haitao_sandbox_api::{
    Account, AccountKind, ApiError, AppInfo, AppRequest, Bilingual, CardInput, Event, EventQuery,
    ForceRequest, Forced, Notification, NotificationState, Outcome, OutcomeInfo, PayError, PayRequest,
    PayWith, Persona, TradeView, path,
};

use serde_json::{Value, json};

const ZHANGWEI: &str = "zhangwei@sandbox.haitao";

fn cny(fen: i64) -> Money {
    Money::from_minor(fen, Currency::Cny)
}

#[tokio::test]
async fn page_pay_end_to_end_with_verified_return_and_notify() {
    let h = harness().await;
    let pay = PagePay::new("HT-PAGE-1", cny(12_345), "海淘测试订单").timeout(TimeoutExpress::Minutes(30));
    let resp = h.open_page_pay(&pay).await;
    assert_eq!(resp.status().as_u16(), 303, "the gateway sends the browser to the cashier");
    let cashier = resp.headers()["location"].to_str().unwrap().to_owned();
    assert!(cashier.starts_with("/cashier/"));
    let page = h.http.get(h.api(&cashier)).send().await.unwrap().text().await.unwrap();
    assert!(page.contains("海淘测试订单") && page.contains("¥123.45"), "summary shown");

    // Before a buyer logs in, the trade does not exist.
    let e = h.client.execute(&Query::new(TradeRef::out_trade_no("HT-PAGE-1"))).await.unwrap_err();
    assert_eq!(e.sub_code(), Some("ACQ.TRADE_NOT_EXIST"));

    let paid = h.pay_ok(&PayRequest::new("HT-PAGE-1", ZHANGWEI, PayWith::Balance)).await;
    let ret = paid.return_url.as_deref().unwrap();
    let query = ret.split_once('?').unwrap().1;
    let r = h.inbound.return_redirect(query).unwrap();
    let matched = r.matched(Some(&Expected { total_amount: cny(12_345) })).unwrap();
    assert_eq!(matched.message.out_trade_no, "HT-PAGE-1");

    let notes = h.wait_notifications(1).await;
    let n = h.inbound.notify(&notes[0]).unwrap();
    assert_eq!(n.trade_status, TradeStatus::TradeSuccess);
    assert_eq!(n.fund_bill_list[0].fund_channel, "ALIPAYACCOUNT");
    n.matched(Some(&Expected { total_amount: cny(12_345) })).unwrap();

    let q = h.client.execute(&Query::new(TradeRef::out_trade_no("HT-PAGE-1"))).await.unwrap();
    assert_eq!(q.trade_status, TradeStatus::TradeSuccess);
    assert_eq!(q.amount().unwrap(), cny(12_345));
    assert_eq!(q.trade_no, paid.trade_no);

    // Reusing the out_trade_no now says it is paid; with other parameters it would be inconsistent.
    let page = h.open_page_pay(&pay).await.text().await.unwrap();
    assert!(page.contains("ACQ.TRADE_HAS_SUCCESS"), "{page}");
    h.ledger_conserved().await;
}

/// The cashier speaks the buyer's language: the browser's, unless a kept choice or a link says
/// otherwise; a language picked by a link is kept for the next pages.
#[tokio::test]
async fn the_cashier_speaks_the_buyers_language_and_keeps_a_choice() {
    let h = harness().await;
    let pay = PagePay::new("HT-LANG-1", cny(8_800), "海淘测试订单").timeout(TimeoutExpress::Minutes(30));
    let cashier = h.open_page_pay(&pay).await.headers()["location"].to_str().unwrap().to_owned();
    let get = |extra: Vec<(&'static str, &'static str)>, path: String| {
        let mut r = h.http.get(h.api(&path));
        for (k, v) in extra {
            r = r.header(k, v);
        }
        async move { r.send().await.unwrap() }
    };
    let lang_of = |page: &str| -> &'static str {
        if page.contains("<html lang=\"en\">") {
            "en"
        } else if page.contains("<html lang=\"zh-CN\">") {
            "zh-CN"
        } else {
            "?"
        }
    };
    let page = get(vec![], cashier.clone()).await.text().await.unwrap();
    assert_eq!(lang_of(&page), "zh-CN", "Chinese unless told otherwise");
    let page = get(vec![("accept-language", "en-US,en;q=0.9")], cashier.clone()).await.text().await.unwrap();
    assert_eq!(lang_of(&page), "en", "an English browser");
    assert!(page.contains("Alipay · Cashier") && page.contains("lang=zh-CN"), "and a way to Chinese");
    let page = get(vec![("accept-language", "en"), ("cookie", "haitao_cashier_lang=zh-CN")], cashier.clone())
        .await
        .text()
        .await
        .unwrap();
    assert_eq!(lang_of(&page), "zh-CN", "the kept choice beats the browser");

    // Picking a language by its link keeps it.
    let picked = get(vec![("accept-language", "en")], format!("{cashier}?lang=zh-CN")).await;
    let cookie = picked.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(cookie.starts_with("haitao_cashier_lang=zh-CN;") && cookie.contains("Path=/"), "{cookie}");
    assert_eq!(lang_of(&picked.text().await.unwrap()), "zh-CN");
    let plain = get(vec![], cashier.clone()).await;
    assert!(plain.headers().get("set-cookie").is_none(), "nothing picked, nothing kept");

    // A request error before the cashier is shown in the browser's language too.
    let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let bad = PagePay::new("HT-LANG-1", cny(9_900), "另一个订单").timeout(TimeoutExpress::Minutes(30));
    let url = h
        .client
        .page_request(
            &bad,
            &haitao_alipay::Callbacks {
                notify_url: Some(h.notify_url.clone()),
                return_url: Some(h.return_url.clone()),
            },
        )
        .unwrap()
        .to_get_url();
    h.pay_ok(&PayRequest::new("HT-LANG-1", ZHANGWEI, PayWith::Balance)).await;
    let page = client.get(url).header("accept-language", "en").send().await.unwrap().text().await.unwrap();
    assert_eq!(lang_of(&page), "en", "{page}");
    assert!(page.contains("Sorry, this payment cannot continue"), "{page}");
}

#[tokio::test]
async fn out_trade_no_reuse_with_other_parameters_is_inconsistent() {
    let h = harness().await;
    assert_eq!(h.open_page_pay(&PagePay::new("HT-CI", cny(100), "a")).await.status().as_u16(), 303);
    let page = h.open_page_pay(&PagePay::new("HT-CI", cny(200), "a")).await.text().await.unwrap();
    assert!(page.contains("ACQ.CONTEXT_INCONSISTENT"), "{page}");
    // Changing the Huabei periods needs a new out_trade_no too.
    let hb = |p| PagePay::new("HT-HB", cny(50_000), "a").huabei_installments(p, FeePayer::Buyer);
    assert_eq!(h.open_page_pay(&hb(HuabeiPeriods::Three)).await.status().as_u16(), 303);
    let page = h.open_page_pay(&hb(HuabeiPeriods::Six)).await.text().await.unwrap();
    assert!(page.contains("ACQ.CONTEXT_INCONSISTENT"));
}

#[tokio::test]
async fn precreate_is_idempotent_and_scannable() {
    let h = harness().await;
    let pc = Precreate::new("HT-QR-1", cny(8_888), "扫码订单");
    let cb = haitao_alipay::Callbacks { notify_url: Some(h.notify_url.clone()), return_url: None };
    let a = h.client.execute_with(&pc, &cb).await.unwrap();
    let b = h.client.execute_with(&pc, &cb).await.unwrap();
    assert_eq!(a.qr_code, b.qr_code, "the same request returns the same QR");
    assert!(a.qr_code.contains("/qr/"));
    let other = Precreate::new("HT-QR-1", cny(9_999), "扫码订单");
    assert_eq!(
        h.client.execute_with(&other, &cb).await.unwrap_err().sub_code(),
        Some("ACQ.CONTEXT_INCONSISTENT")
    );
    // Scanning opens the phone cashier.
    let page = h.http.get(&a.qr_code).send().await.unwrap().text().await.unwrap();
    assert!(page.contains("扫码订单"));
    h.pay_ok(&PayRequest::new("HT-QR-1", ZHANGWEI, PayWith::DebitCard)).await;
    let q = h.client.execute(&Query::new(TradeRef::out_trade_no("HT-QR-1"))).await.unwrap();
    assert!(q.trade_status.is_paid());
    assert_eq!(q.fund_bill_list[0].fund_channel, "DEBIT_CARD");
}

async fn paid(h: &common::Harness, out: &str, fen: i64) -> String {
    let resp = h.open_page_pay(&PagePay::new(out, cny(fen), "order")).await;
    assert_eq!(resp.status().as_u16(), 303);
    h.pay_ok(&PayRequest::new(out, ZHANGWEI, PayWith::Balance)).await.trade_no
}

/// A query is answered beside the writer when it needs no write; a fault the tester forced on the
/// order still answers it, once, whichever number the query names the trade by.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_query_forced_to_fail_fails_once_by_either_number_then_reads_the_trade() {
    let h = harness().await;
    let trade_no = paid(&h, "HT-QF", 5_000).await;
    let by_out = Query::new(TradeRef::out_trade_no("HT-QF"));
    let by_no = Query::new(TradeRef::trade_no(trade_no.clone()));
    let force = |outcome| {
        let h = &h;
        async move {
            let (s, v) = h
                .post(path::SCENARIOS, serde_json::to_value(ForceRequest::order("HT-QF", outcome)).unwrap())
                .await;
            assert_eq!(s, 200, "{v}");
        }
    };
    force(Outcome::ResultUnknown).await;
    let e = h.client.execute(&by_out).await.unwrap_err();
    assert!(e.is_result_unknown(), "{e:?}");
    assert!(h.client.execute(&by_out).await.unwrap().trade_status.is_paid(), "the fault is used up");

    force(Outcome::DropConnection).await;
    let e = h.client.execute(&by_no).await.unwrap_err();
    assert!(e.is_result_unknown(), "kept under the order's number, found by the trade's: {e:?}");
    let q = h.client.execute(&by_no).await.unwrap();
    assert_eq!((q.trade_no.as_str(), q.out_trade_no.as_str()), (trade_no.as_str(), "HT-QF"));

    // With the writer held longer than the client waits, a query is still answered: it is read
    // beside the writer, not queued behind it.
    let (taken, writer_taken) = tokio::sync::oneshot::channel();
    let store = h.sandbox.state.store().clone();
    let held = tokio::spawn(async move {
        store
            .run(move |_| {
                let _ = taken.send(());
                std::thread::sleep(std::time::Duration::from_millis(1500));
                Ok::<_, haitao_alipay_sandbox::db::StoreError>(())
            })
            .await
    });
    writer_taken.await.unwrap();
    assert!(h.client.execute(&by_out).await.unwrap().trade_status.is_paid());
    assert!(!held.is_finished(), "answered while the writer was held");
    held.await.unwrap().unwrap();

    // Many queries at once, while payments are written: every one answered and verified.
    let mut queries = tokio::task::JoinSet::new();
    for _ in 0..32 {
        let (client, q) = (h.client.clone(), by_out.clone());
        queries.spawn(async move { client.execute(&q).await });
    }
    for i in 0..4 {
        paid(&h, &format!("HT-QF-{i}"), 100).await;
    }
    for answer in queries.join_all().await {
        assert!(answer.unwrap().trade_status.is_paid());
    }
    h.ledger_conserved().await;
}

/// The gateway writes its own request and response events after answering, in batches; the trace
/// must still hold every message, in order, for whoever reads it and after a restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_trace_keeps_every_gateway_message_in_order_across_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let h = common::harness_in(Some(dir.path().to_owned())).await;
    let out = "HT-TRACE-1";
    paid(&h, out, 100).await;
    async fn events(h: &common::Harness, out: &str) -> Vec<Event> {
        h.get_as(&path::events(&EventQuery::all_of(out))).await
    }
    let kinds = |list: &[Event], since: i64| -> Vec<String> {
        list.iter()
            .filter(|e| e.seq > since && e.kind.starts_with("gateway."))
            .map(|e| e.kind.clone())
            .collect()
    };
    let last = |list: &[Event]| list.last().map_or(0, |e| e.seq);
    let q = Query::new(TradeRef::out_trade_no(out));

    // One call at a time: request, then response, each read right after the answer.
    let mut since = last(&events(&h, out).await);
    for _ in 0..3 {
        h.client.execute(&q).await.unwrap();
        let list = events(&h, out).await;
        assert_eq!(kinds(&list, since), ["gateway.request", "gateway.response"]);
        since = last(&list);
    }

    // Forty at once: forty of each, nothing lost.
    let calls: Vec<_> = (0..40)
        .map(|_| {
            let (client, q) = (h.client.clone(), q.clone());
            tokio::spawn(async move { client.execute(&q).await })
        })
        .collect();
    for c in calls {
        c.await.unwrap().unwrap();
    }
    let list = events(&h, out).await;
    let burst = kinds(&list, since);
    assert_eq!(burst.iter().filter(|k| *k == "gateway.request").count(), 40);
    assert_eq!(burst.iter().filter(|k| *k == "gateway.response").count(), 40);

    // Stopped right after answering (nobody read the trace since) and opened again on the same
    // folder: all of it is there.
    let before = kinds(&list, 0).len() + 2;
    h.client.execute(&q).await.unwrap();
    h.sandbox.stop().await;
    let mut config =
        haitao_alipay_sandbox::Config::new(Some(dir.path().to_owned()), "127.0.0.1:0".parse().unwrap());
    config.clock = Some(std::sync::Arc::new(h.clock.clone()));
    let again = haitao_alipay_sandbox::start(config).await.unwrap();
    let url = again.base_url().join(&path::events(&EventQuery::all_of(out))).unwrap();
    let list: Vec<Event> = h.http.get(url).send().await.unwrap().json().await.unwrap();
    assert_eq!(kinds(&list, 0).len(), before);
    assert_eq!(before, 1 + 3 * 2 + 80 + 2, "the page.pay request, 3 + 40 + 1 queries answered");

    // The app lookup reads a second connection: a key rotated a moment ago is the key checked.
    let client_for = |key: &PrivateKey, alipay: &PublicKey| {
        let cfg = AppConfig::new(
            h.app_id.clone(),
            again.gateway_url(),
            Signer::new(key.clone(), SignType::Rsa2).unwrap(),
            alipay.clone(),
        )
        .unwrap();
        AlipayClient::new(
            std::sync::Arc::new(cfg),
            std::sync::Arc::new(h.clock.clone()) as std::sync::Arc<dyn Clock>,
        )
        .unwrap()
        .with_retry(RetryPolicy::none())
    };
    let rotate = |key: &PrivateKey| {
        let url = again.base_url().join(path::APPS).unwrap();
        let req = h.http.post(url).json(&AppRequest {
            public_key: Some(key.public_key().to_pem()),
            ..AppRequest::named("test-shop")
        });
        async move { req.send().await.unwrap().json::<AppInfo>().await.unwrap() }
    };
    let (new_key, _) = PrivateKey::generate().unwrap();
    let info = rotate(&new_key).await;
    let alipay = PublicKey::parse(&info.alipay_public_key).unwrap();
    let e = client_for(&h.merchant_key, &alipay).execute(&q).await.unwrap_err();
    assert_eq!(e.sub_code(), Some("isv.invalid-signature"), "the old key is refused at once");
    client_for(&new_key, &alipay).execute(&q).await.unwrap();
    rotate(&h.merchant_key).await;
    client_for(&h.merchant_key, &alipay).execute(&q).await.unwrap();
    again.stop().await;
}

#[tokio::test]
async fn refunds_partial_full_idempotent_and_cumulative() {
    let h = harness().await;
    let trade_no = paid(&h, "HT-RF", 10_000).await;
    let r1 = h.client.execute(&Refund::new(TradeRef::out_trade_no("HT-RF"), cny(3_000), "R1")).await.unwrap();
    assert_eq!((r1.fund_change.as_str(), r1.refund_fee.as_str()), ("Y", "30.00"));
    // Same request again: no money moves.
    let again =
        h.client.execute(&Refund::new(TradeRef::out_trade_no("HT-RF"), cny(3_000), "R1")).await.unwrap();
    assert_eq!((again.fund_change.as_str(), again.refund_fee.as_str()), ("N", "30.00"));
    // Same request number, other amount.
    let e =
        h.client.execute(&Refund::new(TradeRef::out_trade_no("HT-RF"), cny(2_000), "R1")).await.unwrap_err();
    assert_eq!(e.sub_code(), Some("ACQ.DISCORDANT_REPEAT_REQUEST"));
    // More than what is left.
    let e = h
        .client
        .execute(&Refund::new(TradeRef::trade_no(trade_no.clone()), cny(7_001), "R2"))
        .await
        .unwrap_err();
    assert_eq!(e.sub_code(), Some("ACQ.REASON_TRADE_REFUND_FEE_ERR"));
    let q = h.client.execute(&Query::new(TradeRef::out_trade_no("HT-RF"))).await.unwrap();
    assert_eq!(q.trade_status, TradeStatus::TradeSuccess, "partial refund keeps TRADE_SUCCESS");
    let r2 = h.client.execute(&Refund::new(TradeRef::out_trade_no("HT-RF"), cny(7_000), "R2")).await.unwrap();
    assert_eq!(r2.refund_fee.as_str(), "100.00");
    let q = h.client.execute(&Query::new(TradeRef::out_trade_no("HT-RF"))).await.unwrap();
    assert_eq!(q.trade_status, TradeStatus::TradeClosed, "100% refunded closes the trade");
    let rq = h
        .client
        .execute(&RefundQuery {
            trade: TradeRef::out_trade_no("HT-RF"),
            out_request_no: "R2".into(),
            query_options: Vec::new(),
        })
        .await
        .unwrap();
    assert_eq!(rq.refund_status.as_deref(), Some("REFUND_SUCCESS"));
    assert_eq!(rq.refund_amount, Some("70.00".parse::<AmountText>().unwrap()));
    assert_eq!(rq.gmt_refund_pay, None, "the refund's time only when asked for");
    let timed =
        h.client.execute(&RefundQuery::with_time(TradeRef::out_trade_no("HT-RF"), "R2")).await.unwrap();
    assert_eq!(timed.gmt_refund_pay.map(|t| t.0), Some(r2.gmt_refund_pay.unwrap().0));
    let none = h
        .client
        .execute(&RefundQuery {
            trade: TradeRef::out_trade_no("HT-RF"),
            out_request_no: "NOPE".into(),
            query_options: Vec::new(),
        })
        .await
        .unwrap();
    assert_eq!(none.out_request_no, None, "unknown refund: an empty answer");
    let t: TradeView = h.get_as(&path::trade("HT-RF")).await;
    assert_eq!(t.merchant_net_fen, 0);
    h.ledger_conserved().await;
}

#[tokio::test]
async fn close_cancel_and_timeouts() {
    let h = harness().await;
    // Close before anyone logged in: no trade yet, but the cashier can no longer be paid.
    h.open_page_pay(&PagePay::new("HT-C0", cny(100), "x")).await;
    let e = h
        .client
        .execute(&Close { trade: TradeRef::out_trade_no("HT-C0"), operator_id: None })
        .await
        .unwrap_err();
    assert_eq!(e.sub_code(), Some("ACQ.TRADE_NOT_EXIST"));
    let (s, v) = h.pay(&PayRequest::new("HT-C0", ZHANGWEI, PayWith::Balance)).await;
    assert_eq!(s, 422, "{v}");

    // Close an unpaid trade.
    h.open_page_pay(&PagePay::new("HT-C1", cny(100), "x")).await;
    let personas: Vec<Persona> = h.get_as(path::PERSONAS).await;
    assert!(personas.len() >= 5);
    // Log in through the cashier so the trade exists.
    let resp = h.open_page_pay(&PagePay::new("HT-C1", cny(100), "x")).await;
    h.cashier_login(&resp, "lina@sandbox.haitao", "111111").await;
    let q = h.client.execute(&Query::new(TradeRef::out_trade_no("HT-C1"))).await.unwrap();
    assert_eq!(q.trade_status, TradeStatus::WaitBuyerPay);
    h.client.execute(&Close { trade: TradeRef::out_trade_no("HT-C1"), operator_id: None }).await.unwrap();
    let q = h.client.execute(&Query::new(TradeRef::out_trade_no("HT-C1"))).await.unwrap();
    assert_eq!(q.trade_status, TradeStatus::TradeClosed);

    // A paid trade cannot be closed; cancel refunds it.
    paid(&h, "HT-C2", 500).await;
    let e = h
        .client
        .execute(&Close { trade: TradeRef::out_trade_no("HT-C2"), operator_id: None })
        .await
        .unwrap_err();
    assert_eq!(e.sub_code(), Some("ACQ.TRADE_STATUS_ERROR"));
    let c = h.client.execute(&Cancel { trade: TradeRef::out_trade_no("HT-C2") }).await.unwrap();
    assert_eq!(c.action.as_deref(), Some("refund"));
    let q = h.client.execute(&Query::new(TradeRef::out_trade_no("HT-C2"))).await.unwrap();
    assert_eq!(q.trade_status, TradeStatus::TradeClosed);

    // timeout_express closes an unpaid trade on the sandbox clock.
    let resp =
        h.open_page_pay(&PagePay::new("HT-T", cny(100), "x").timeout(TimeoutExpress::Minutes(5))).await;
    let token = resp.headers()["location"].to_str().unwrap().trim_start_matches("/cashier/").to_owned();
    h.http
        .post(h.api(&format!("cashier/{token}/login")))
        .form(&[("login", "lina@sandbox.haitao"), ("password", "111111")])
        .send()
        .await
        .unwrap();
    assert_eq!(
        h.client.execute(&Query::new(TradeRef::out_trade_no("HT-T"))).await.unwrap().trade_status,
        TradeStatus::WaitBuyerPay
    );
    h.advance(6 * 60).await;
    assert_eq!(
        h.client.execute(&Query::new(TradeRef::out_trade_no("HT-T"))).await.unwrap().trade_status,
        TradeStatus::TradeClosed
    );
    let (s, _) = h.pay(&PayRequest::new("HT-T", ZHANGWEI, PayWith::Balance)).await;
    assert_eq!(s, 422, "an expired trade cannot be paid");
    h.ledger_conserved().await;
}

#[tokio::test]
async fn customs_declaration_checks_identity_on_the_first_push_only() {
    let h = harness().await;
    let trade_no = paid(&h, "HT-CUS", 20_000).await;
    let declare = |name: &str, cert: &str, req: &str| CustomsDeclare {
        out_request_no: req.into(),
        trade_no: trade_no.clone(),
        merchant_customs_code: "3301960HT1".into(),
        merchant_customs_name: "海淘跨境".into(),
        amount: "200.00".parse().unwrap(),
        customs_place: "HANGZHOU".into(),
        is_split: None,
        sub_out_biz_no: None,
        buyer_info: Some(BuyerInfo { buyer_name: name.into(), buyer_cert_no: cert.into() }),
    };
    let first = h.client.execute(&declare("张伟", "110105198803151232", "DECL000001")).await.unwrap();
    assert_eq!(first.identity_matches(), Some(true));
    assert_eq!(first.total(), Some(cny(20_000)), "total_amount in fen");
    let again = h.client.execute(&declare("张伟", "110105198803151232", "DECL000001")).await.unwrap();
    assert_eq!(again.identity_matches(), None, "identity_check only on the first push");
    assert_eq!(again.alipay_declare_no, first.alipay_declare_no);
    let other = h.client.execute(&declare("李娜", "310104199207082344", "DECL000002")).await.unwrap();
    assert_eq!(other.identity_matches(), Some(false));
    let e = h.client.execute(&declare("张伟", "x", "12345")).await.unwrap_err();
    assert_eq!(e.sub_code(), Some("ACQ.INVALID_PARAMETER"), "out_request_no too short");
}

#[tokio::test]
async fn notifications_follow_the_ladder_until_success() {
    let h = harness().await;
    *h.reply.lock() = "fail".into();
    paid(&h, "HT-N", 1_000).await;
    let first = h.wait_notifications(1).await;
    assert_eq!(first.len(), 1);
    // Nothing more until the clock reaches the first rung (4 minutes).
    h.advance(3 * 60).await;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(h.received.lock().len(), 1);
    *h.reply.lock() = "success".into();
    h.advance(61).await;
    let got = h.wait_notifications(2).await;
    assert_eq!(got.len(), 2);
    let (a, b) = (h.inbound.notify(&got[0]).unwrap(), h.inbound.notify(&got[1]).unwrap());
    assert_eq!(a.notify_id, b.notify_id, "notify_id is stable across retries");
    h.advance(24 * 3600).await;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(h.received.lock().len(), 2, "no retry after success");
    let list: Vec<Notification> = h.get_as(&path::notifications(Some("HT-N"))).await;
    assert_eq!((list[0].state, list[0].attempts), (NotificationState::Delivered, 2));
}

#[tokio::test]
async fn channels_huabei_installments_and_international_card_surcharge() {
    let h = harness().await;
    // Only Huabei installments: balance is not offered.
    let pay = PagePay::new("HT-HB6", cny(60_000), "x")
        .enable_channels([PayChannel::PcreditInstallment])
        .huabei_installments(HuabeiPeriods::Six, FeePayer::Buyer);
    h.open_page_pay(&pay).await;
    let (s, v) = h.pay(&PayRequest::new("HT-HB6", ZHANGWEI, PayWith::Balance)).await;
    assert_eq!(s, 422, "balance is not enabled: {v}");
    let paid = h.pay_ok(&PayRequest::new("HT-HB6", ZHANGWEI, PayWith::Huabei).installments(6)).await;
    // 600.00 + 4.5% fee paid by the buyer.
    assert_eq!(paid.charged_fen, 62_700);
    let t: TradeView = h.get_as(&path::trade("HT-HB6")).await;
    assert_eq!(t.merchant_net_fen, 60_000);

    // Refunds give the installment fee back in proportion, to whoever paid it: half now, the rest
    // with the second half, and a full refund leaves buyer and merchant where they started.
    async fn balance(h: &common::Harness, login: &str, kind: AccountKind) -> i64 {
        let accounts: Vec<Account> = h.get_as(&path::persona_accounts(login)).await;
        accounts.iter().find(|a| a.kind == kind).unwrap().balance
    }
    let huabei_before = balance(&h, ZHANGWEI, AccountKind::Huabei).await;
    h.client.execute(&Refund::new(TradeRef::out_trade_no("HT-HB6"), cny(30_000), "R1")).await.unwrap();
    assert_eq!(balance(&h, ZHANGWEI, AccountKind::Huabei).await, huabei_before + 30_000 + 1_350);
    h.client.execute(&Refund::new(TradeRef::out_trade_no("HT-HB6"), cny(30_000), "R2")).await.unwrap();
    assert_eq!(balance(&h, ZHANGWEI, AccountKind::Huabei).await, huabei_before + 62_700);
    let seller = PagePay::new("HT-HB12S", cny(40_000), "x")
        .huabei_installments(HuabeiPeriods::Twelve, FeePayer::Seller);
    h.open_page_pay(&seller).await;
    let paid = h.pay_ok(&PayRequest::new("HT-HB12S", ZHANGWEI, PayWith::Huabei).installments(12)).await;
    assert_eq!(paid.charged_fen, 40_000);
    let net = h.get_as::<TradeView>(&path::trade("HT-HB12S")).await.merchant_net_fen;
    assert!(net < 40_000, "the seller paid the fee: {net}");
    h.client.execute(&Refund::new(TradeRef::out_trade_no("HT-HB12S"), cny(40_000), "R1")).await.unwrap();
    assert_eq!(h.get_as::<TradeView>(&path::trade("HT-HB12S")).await.merchant_net_fen, 0);

    // A typed international card over ¥200 pays a 3% surcharge; magic numbers decline.
    h.open_page_pay(&PagePay::new("HT-CARD", cny(50_000), "x")).await;
    let card = |n: &str| {
        PayRequest::new("HT-CARD", "wangfang@sandbox.haitao", PayWith::NewCard).card(CardInput {
            number: n.into(),
            expiry: "12/39".into(),
            cvc: "123".into(),
            holder: String::new(),
        })
    };
    let e = h.pay_refused(&card("4000000000000002")).await;
    assert!(matches!(e, PayError::Declined { .. }), "{e:?}");
    let e = h.pay_refused(&card("4242424242424241")).await;
    assert!(matches!(e, PayError::CardInvalid { .. }), "Luhn: {e:?}");
    assert_eq!(h.pay_ok(&card("5555 5555 5555 4444")).await.charged_fen, 51_500);
    h.ledger_conserved().await;
}

/// A card typed at the cashier is used and forgotten: its full number and CVC are never written
/// to the sandbox's database (they used to be kept with the buyer's choice).
#[tokio::test]
async fn a_card_typed_at_the_cashier_is_never_stored() {
    let h = harness().await;
    let resp = h.open_page_pay(&PagePay::new("HT-TYPED", cny(30_000), "x")).await;
    let token = resp.headers()["location"].to_str().unwrap().trim_start_matches("/cashier/").to_owned();
    h.cashier_login(&resp, "wangfang@sandbox.haitao", "111111").await;
    let (number, cvc) = ("5555555555554444", "739");
    let r = h
        .http
        .post(h.api(&format!("cashier/{token}/pay")))
        .form(&[
            ("choice", "new_card"),
            ("card_number", "5555 5555 5555 4444"),
            ("card_expiry", "12/39"),
            ("card_cvc", cvc),
            ("card_holder", "WANG FANG"),
        ])
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success() || r.status().is_redirection(), "{}", r.status());
    let dump = |h: &common::Harness| {
        h.sandbox.state.store().sync(|c| {
            let tables: Vec<String> = c
                .prepare("SELECT name FROM sqlite_master WHERE type = 'table'")
                .unwrap()
                .query_map([], |r| r.get(0))
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap();
            let mut text = String::new();
            for t in tables {
                let mut st = c.prepare(&format!("SELECT * FROM \"{t}\"")).unwrap();
                let n = st.column_count();
                let mut rows = st.query([]).unwrap();
                while let Some(row) = rows.next().unwrap() {
                    for i in 0..n {
                        if let Ok(v) = row.get::<_, String>(i) {
                            text.push_str(&v);
                            text.push('\n');
                        }
                    }
                }
            }
            text
        })
    };
    let before = dump(&h);
    assert!(!before.contains(number) && !before.contains("\"cvc\""), "the chosen card was stored");
    let r = h
        .http
        .post(h.api(&format!("cashier/{token}/confirm")))
        .form(&[("password", "111111")])
        .send()
        .await
        .unwrap();
    let page = r.text().await.unwrap();
    assert!(page.contains("data-testid=\"paid\""), "{page}");
    let after = dump(&h);
    assert!(!after.contains(number) && !after.contains("\"cvc\""), "the paid card was stored");
    assert!(after.contains("4444"), "the last four digits identify the card");
    h.ledger_conserved().await;
}

#[tokio::test]
async fn tester_api_refuses_unknown_values_and_bad_bodies_as_json_errors() {
    let h = harness().await;
    let err = |v: Value| serde_json::from_value::<ApiError>(v).unwrap().error;
    let (s, v) = h.post(path::SCENARIOS, json!({"out_trade_no": "HT-X", "outcome": "lucky"})).await;
    assert_eq!((s, err(v)), (422, "unknown_outcome".to_owned()));
    let (s, v) =
        h.post(path::PAY, json!({"out_trade_no": "HT-X", "persona": ZHANGWEI, "channel": "cash"})).await;
    assert_eq!((s, err(v)), (422, "unknown_channel".to_owned()));
    let (s, v) = h.post(path::CLOCK_ADVANCE, json!({"minutes": 5})).await;
    assert_eq!((s, err(v)), (422, "invalid_request".to_owned()));

    let forced = ForceRequest::order("HT-X", Outcome::NotifyDrop);
    let (s, v) = h.post(path::SCENARIOS, serde_json::to_value(&forced).unwrap()).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(serde_json::from_value::<Forced>(v).unwrap().outcome, Outcome::NotifyDrop);
    let outcomes: Vec<OutcomeInfo> = h.get_as(path::OUTCOMES).await;
    assert_eq!(outcomes.len(), Outcome::ALL.len());
    assert_eq!(outcomes[0], OutcomeInfo::of(Outcome::ShortBalance));

    // Personas describe themselves in both languages.
    let personas: Vec<Persona> = h.get_as(path::PERSONAS).await;
    let lina = personas.iter().find(|p| p.login == "lina@sandbox.haitao").unwrap();
    assert_eq!(lina.description, Bilingual::new("余额不足", "Short balance (¥12.34), small card"));
}

/// Scanning a buyer's payment code: small amounts are taken at once without a password; above the
/// password-free limit the buyer confirms on the phone (10003, result unknown) and the merchant
/// queries. A trade created for a known buyer waits for them.
#[tokio::test]
async fn payment_codes_and_trades_created_for_a_buyer() {
    let h = harness().await;
    let code: Value = h.get(&format!("sandbox/api/personas/{ZHANGWEI}/payment-code")).await;
    let code = code["auth_code"].as_str().unwrap().to_owned();
    assert!(code.starts_with("28") && code.len() == 18, "{code}");
    let paid = h
        .client
        .execute(&haitao_alipay::api::BarcodePay::new("SCAN-1", &code, cny(1_234), "门店扫码"))
        .await
        .unwrap();
    assert_eq!(paid.total_amount.to_money(Currency::Cny).unwrap(), cny(1_234));
    assert_eq!(paid.fund_bill_list[0].fund_channel, "ALIPAYACCOUNT");
    let q = h.client.execute(&Query::new(TradeRef::out_trade_no("SCAN-1"))).await.unwrap();
    assert!(q.trade_status.is_paid());
    // A code nobody has.
    let e = h
        .client
        .execute(&haitao_alipay::api::BarcodePay::new("SCAN-2", "280000000000000000", cny(100), "x"))
        .await
        .unwrap_err();
    assert_eq!(e.sub_code(), Some("ACQ.PAYMENT_AUTH_CODE_INVALID"));
    // Above ¥2,000 the buyer must confirm: the outcome is unknown until they do.
    let e = h
        .client
        .execute(&haitao_alipay::api::BarcodePay::new("SCAN-3", &code, cny(250_000), "大额"))
        .await
        .unwrap_err();
    assert!(e.is_result_unknown(), "{e:?}");
    let q = h.client.execute(&Query::new(TradeRef::out_trade_no("SCAN-3"))).await.unwrap();
    assert_eq!(q.trade_status, TradeStatus::WaitBuyerPay);
    h.pay_ok(&PayRequest::new("SCAN-3", ZHANGWEI, PayWith::Balance)).await;
    assert!(
        h.client.execute(&Query::new(TradeRef::out_trade_no("SCAN-3"))).await.unwrap().trade_status.is_paid()
    );
    // Through v3 the wait is unknown as well (it is not a 10003 there).
    let e = h
        .client
        .execute_v3(&haitao_alipay::api::BarcodePay::new("SCAN-4", &code, cny(250_000), "大额 v3"))
        .await
        .unwrap_err();
    assert!(e.is_result_unknown(), "{e:?}");
    // A scan refused for a short balance leaves no trade behind that could still be paid.
    let (s, v) = h
        .post(
            path::SCENARIOS,
            serde_json::to_value(ForceRequest::order("SCAN-5", Outcome::ShortBalance)).unwrap(),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    let e = h
        .client
        .execute(&haitao_alipay::api::BarcodePay::new("SCAN-5", &code, cny(500), "余额不足"))
        .await
        .unwrap_err();
    assert_eq!(e.sub_code(), Some("ACQ.BUYER_BALANCE_NOT_ENOUGH"), "{e:?}");
    let gone = h.client.execute(&Query::new(TradeRef::out_trade_no("SCAN-5"))).await.unwrap_err();
    assert_eq!(gone.sub_code(), Some("ACQ.TRADE_NOT_EXIST"));
    // trade.create for a known buyer (through v3 as well as gateway.do).
    let personas: Vec<Persona> = h.get_as(path::PERSONAS).await;
    let buyer = personas.iter().find(|p| p.login == ZHANGWEI).unwrap();
    let created = h
        .client
        .execute_v3(&haitao_alipay::api::TradeCreate {
            out_trade_no: "JSAPI-1".into(),
            total_amount: AmountText::from_money(cny(880)),
            subject: "小程序".into(),
            buyer_id: buyer.id.clone(),
        })
        .await
        .unwrap();
    assert_eq!(created.out_trade_no, "JSAPI-1");
    let q = h.client.execute(&Query::new(TradeRef::out_trade_no("JSAPI-1"))).await.unwrap();
    assert_eq!((q.trade_status, q.trade_no.as_str()), (TradeStatus::WaitBuyerPay, created.trade_no.as_str()));
    // Its order number cannot be scanned into another trade (or another buyer's).
    let e = h
        .client
        .execute(&haitao_alipay::api::BarcodePay::new("JSAPI-1", &code, cny(880), "小程序"))
        .await
        .unwrap_err();
    assert_eq!(e.sub_code(), Some("ACQ.CONTEXT_INCONSISTENT"), "{e:?}");
    h.pay_ok(&PayRequest::new("JSAPI-1", ZHANGWEI, PayWith::Balance)).await;
    h.ledger_conserved().await;
}
