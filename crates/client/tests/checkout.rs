//! Headless checkout through the client: every payment method, and every way a payment can go
//! wrong, each ending with exactly one charge or none.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::Arc;

use common::{shopper, world};
use haitao_client::{ErrorCode, LocalStatus};
use haitao_sandbox_api::{
    ForceRequest, LedgerCheck, Outcome, PayAnswer, PayError, PayRequest, PayWith, Persona, path,
};
use haitao_shop_api::orders::{AttemptStatus, PayMode, PaymentFailure, PaymentMethod};

#[tokio::test]
async fn every_method_pays_exactly_once() {
    let w = world().await;
    let c = w.client();
    let cases = [
        (PaymentMethod::Balance, PayWith::Balance, None),
        (PaymentMethod::BankCard, PayWith::DebitCard, None),
        (PaymentMethod::Huabei, PayWith::Huabei, None),
        (PaymentMethod::HuabeiInstallments { periods: 3 }, PayWith::Huabei, Some(3)),
        (PaymentMethod::HuabeiInstallments { periods: 6 }, PayWith::Huabei, Some(6)),
        (PaymentMethod::HuabeiInstallments { periods: 12 }, PayWith::Huabei, Some(12)),
        (PaymentMethod::InternationalCard, PayWith::InternationalCard, None),
    ];
    for (i, (method, channel, inst)) in cases.into_iter().enumerate() {
        let address = if i == 0 {
            shopper(&c, "13900000001").await
        } else {
            let page = c.catalog(&Default::default()).await.unwrap();
            let p = page
                .page
                .items
                .iter()
                .find(|p| p.stock >= 3 && p.price_cny.minor() > 10_000 && p.price_cny.minor() < 60_000)
                .unwrap();
            c.set_quantity(&p.id, 1).await.unwrap();
            c.addresses().await.unwrap()[0].id.clone()
        };
        let order = c.place_order(&address).await.unwrap();
        let ret = c.payment_config().await.unwrap().return_page;
        let launch = c.start_payment(&order.id, method, PayMode::InApp, &ret).await.unwrap();
        assert_eq!(c.local_attempts(&order.id).unwrap().len(), 1, "recorded before any window");
        let cashier = launch.attempt.cashier_url.clone().unwrap();
        let paid =
            w.pay(&cashier, &launch.attempt.out_trade_no, "zhangwei@sandbox.haitao", channel, inst).await;
        let out = c.payment_returned(&launch.local_id, paid.return_url.as_deref().unwrap()).await.unwrap();
        assert_eq!(out.return_verified, Some(true), "{:?}", out.return_problem);
        assert_eq!(out.attempt.as_ref().map(|a| a.status), Some(AttemptStatus::Paid), "{method:?}");
        assert_eq!(out.local.status(), LocalStatus::Paid);
        // The shop receives the order total, less the installment fee when it pays that fee itself.
        let quote =
            c.order_quotes(&order.id).await.unwrap().into_iter().find(|q| q.method == method).unwrap();
        let seller_fee = quote
            .installments
            .filter(|p| p.fee_payer == haitao_shop_api::orders::FeePayer::Seller)
            .map(|p| p.fee.minor())
            .unwrap_or(0);
        assert_eq!(
            w.merchant_net(&launch.attempt.out_trade_no).await,
            order.totals.total.minor() - seller_fee,
            "charged exactly once"
        );
        // A double click after payment does not start a second one.
        let again = c.start_payment(&order.id, method, PayMode::InApp, &ret).await;
        assert!(again.is_err() || again.unwrap().attempt.status == AttemptStatus::Paid);
    }
    let check: LedgerCheck = w.sandbox_get(path::LEDGER_CHECK).await;
    assert!(check.conserved, "{check:?}");
}

#[tokio::test]
async fn forged_return_is_rejected_then_reconciled() {
    let w = world().await;
    let c = w.client();
    let address = shopper(&c, "13900000002").await;
    let order = c.place_order(&address).await.unwrap();
    let ret = c.payment_config().await.unwrap().return_page;
    let launch = c.start_payment(&order.id, PaymentMethod::Balance, PayMode::InApp, &ret).await.unwrap();
    // A forged return claims success without any payment.
    let forged = format!(
        "{ret}?out_trade_no={}&trade_no=2026&total_amount={}&app_id=x&sign_type=RSA2&sign=AAAA",
        launch.attempt.out_trade_no,
        order.totals.total.to_decimal_string()
    );
    let out = c.payment_returned(&launch.local_id, &forged).await.unwrap();
    assert_eq!(out.return_verified, Some(false));
    assert_ne!(out.local.status(), LocalStatus::Paid, "a forged return never marks paid");
    assert_eq!(w.merchant_net(&launch.attempt.out_trade_no).await, 0);
    // The buyer really pays; the return is lost (the browser never comes back).
    w.sandbox_post(path::SCENARIOS, &ForceRequest::order(&launch.attempt.out_trade_no, Outcome::LostReturn))
        .await;
    let paid = w
        .pay(
            launch.attempt.cashier_url.as_deref().unwrap(),
            &launch.attempt.out_trade_no,
            "zhangwei@sandbox.haitao",
            PayWith::Balance,
            None,
        )
        .await;
    assert!(paid.return_url.is_none(), "the return was lost");
    let out = c.check_payment(&launch.local_id).await.unwrap();
    assert_eq!(out.local.status(), LocalStatus::Paid);
    assert_eq!(w.merchant_net(&launch.attempt.out_trade_no).await, order.totals.total.minor());
}

#[tokio::test]
async fn closing_the_window_and_wrong_password_lock() {
    let w = world().await;
    let c = w.client();
    let address = shopper(&c, "13900000003").await;
    let order = c.place_order(&address).await.unwrap();
    let ret = c.payment_config().await.unwrap().return_page;
    let launch = c.start_payment(&order.id, PaymentMethod::Balance, PayMode::InApp, &ret).await.unwrap();
    reqwest::get(launch.attempt.cashier_url.as_deref().unwrap()).await.unwrap();
    w.sandbox_post(
        path::SCENARIOS,
        &ForceRequest::order(&launch.attempt.out_trade_no, Outcome::WrongPasswordLock),
    )
    .await;
    let wrong = PayRequest::new(&launch.attempt.out_trade_no, "zhangwei@sandbox.haitao", PayWith::Balance)
        .password("123456");
    for locks in [false, false, true] {
        let (s, v) = w.sandbox_post(path::PAY, &wrong).await;
        let answer: PayAnswer = serde_json::from_value(v).unwrap();
        let refused = match answer.refused() {
            Some(PayError::WrongPassword { .. }) => !locks,
            Some(PayError::Locked { .. }) => locks,
            _ => false,
        };
        assert!(s == 422 && refused, "{answer:?}");
    }
    // The buyer closes the payment window.
    let out = c.payment_abandoned(&launch.local_id).await.unwrap();
    assert_eq!(
        out.attempt.as_ref().map(|a| (a.status, a.failure)),
        Some((AttemptStatus::Failed, Some(PaymentFailure::Cancelled)))
    );
    assert_eq!(w.merchant_net(&launch.attempt.out_trade_no).await, 0, "no charge");
    // The lock lasts three hours of sandbox time.
    let personas: Vec<Persona> = w.sandbox_get(path::PERSONAS).await;
    let zhang = personas.iter().find(|p| p.login == "zhangwei@sandbox.haitao").unwrap();
    assert!(zhang.locked_until.is_some());
}

#[tokio::test]
async fn cancel_in_the_cashier_returns_without_a_result_and_closes_the_trade() {
    let w = world().await;
    let c = w.client();
    let address = shopper(&c, "13900000007").await;
    assert!(c.cache().cart().unwrap().is_some_and(|cart| !cart.lines.is_empty()));
    let order = c.place_order(&address).await.unwrap();
    assert!(c.cache().cart().unwrap().is_none(), "the emptied cart is not shown from the cache");
    let ret = c.payment_config().await.unwrap().return_page;
    let launch = c.start_payment(&order.id, PaymentMethod::Balance, PayMode::InApp, &ret).await.unwrap();
    reqwest::get(launch.attempt.cashier_url.as_deref().unwrap()).await.unwrap();
    // "Cancel and return to the shop" lands on the return address with no parameters at all.
    let out = c.payment_returned(&launch.local_id, &launch.return_url).await.unwrap();
    assert_eq!(
        out.attempt.as_ref().map(|a| (a.status, a.failure)),
        Some((AttemptStatus::Failed, Some(PaymentFailure::Cancelled)))
    );
    assert_eq!(out.return_verified, None, "nothing to verify is not a forgery");
    // The trade is closed at the gateway: the old cashier can take no money any more.
    let (status, v) = w
        .sandbox_post(
            path::PAY,
            &PayRequest::new(&launch.attempt.out_trade_no, "zhangwei@sandbox.haitao", PayWith::Balance),
        )
        .await;
    assert_eq!(status, 422, "{v}");
    assert_eq!(w.merchant_net(&launch.attempt.out_trade_no).await, 0);
    // The order can be paid again.
    let again = c.start_payment(&order.id, PaymentMethod::BankCard, PayMode::InApp, &ret).await.unwrap();
    assert_ne!(again.attempt.out_trade_no, launch.attempt.out_trade_no);
}

#[tokio::test]
async fn killed_mid_payment_and_restarted_reconciles() {
    let w = world().await;
    let (local_id, out_trade_no, total) = {
        let c = w.client();
        let address = shopper(&c, "13900000004").await;
        let order = c.place_order(&address).await.unwrap();
        let ret = c.payment_config().await.unwrap().return_page;
        let launch = c.start_payment(&order.id, PaymentMethod::BankCard, PayMode::InApp, &ret).await.unwrap();
        // The buyer pays; the app dies before the return arrives.
        w.pay(
            launch.attempt.cashier_url.as_deref().unwrap(),
            &launch.attempt.out_trade_no,
            "zhangwei@sandbox.haitao",
            PayWith::DebitCard,
            None,
        )
        .await;
        (launch.local_id, launch.attempt.out_trade_no, order.totals.total.minor())
    };
    // A new process: same cache, same keyring.
    let c = w.client();
    let state = c.restore().await;
    assert!(state.signed_in, "the session comes back from the keyring");
    let before = c.cache().attempt(&local_id).unwrap().unwrap();
    assert_eq!(before.status(), LocalStatus::Redirected, "the attempt was left open by the crash");
    let outcomes = c.reconcile_open().await.unwrap();
    assert_eq!(outcomes.len(), 1);
    assert_eq!(outcomes[0].local.status(), LocalStatus::Paid);
    assert_eq!(w.merchant_net(&out_trade_no).await, total);
    assert!(c.reconcile_open().await.unwrap().is_empty(), "nothing left open");
}

#[tokio::test]
async fn result_unknown_and_network_loss_are_reconciled() {
    let w = world().await;
    let c = w.client();
    let address = shopper(&c, "13900000005").await;
    let order = c.place_order(&address).await.unwrap();
    let ret = c.payment_config().await.unwrap().return_page;
    let launch = c.start_payment(&order.id, PaymentMethod::Balance, PayMode::InApp, &ret).await.unwrap();
    let out_no = launch.attempt.out_trade_no.clone();
    let paid = w
        .pay(
            launch.attempt.cashier_url.as_deref().unwrap(),
            &out_no,
            "zhangwei@sandbox.haitao",
            PayWith::Balance,
            None,
        )
        .await;
    // The shop's query to Alipay answers "result unknown" once.
    w.sandbox_post(path::SCENARIOS, &ForceRequest::order(&out_no, Outcome::ResultUnknown)).await;
    w.sandbox_post(path::SCENARIOS, &ForceRequest::order(&out_no, Outcome::NotifyDrop)).await;
    let first = c.payment_returned(&launch.local_id, paid.return_url.as_deref().unwrap()).await.unwrap();
    // Either the notification already arrived, or the shop could not tell: never "failed".
    assert!(matches!(first.local.status(), LocalStatus::Paid | LocalStatus::Unknown), "{:?}", first.local);
    let again = c.check_payment(&launch.local_id).await.unwrap();
    assert_eq!(again.local.status(), LocalStatus::Paid);

    // The network to the shop drops: a client pointed at a dead address reports offline and keeps
    // its cached orders.
    let dead = haitao_client::ShopApi::new("http://127.0.0.1:9/".parse().unwrap()).unwrap();
    let offline = haitao_client::Client::new(
        dead,
        haitao_client::Cache::open(&w.dir.path().join("cache.sqlite3")).unwrap(),
        std::sync::Arc::new(w.secrets.clone()),
    );
    let orders = offline.orders(None, 1, 20).await.unwrap();
    assert!(!orders.online);
    assert!(orders.items.iter().any(|o| o.id == order.id), "orders are readable offline");
    let e: haitao_client::IpcError = offline.place_order(&address).await.unwrap_err().into();
    assert!(
        matches!(e.code, ErrorCode::Offline | ErrorCode::SessionExpired | ErrorCode::NotSignedIn),
        "{e:?}"
    );
}

#[tokio::test]
async fn keyring_unavailable_is_a_clear_error_not_a_fallback() {
    let w = world().await;
    let c = w.client_with(std::sync::Arc::new(haitao_client::UnavailableStore(
        "no Secret Service on the bus".into(),
    )));
    let e: haitao_client::IpcError = c.register("13900000006", "haitao2026", true).await.unwrap_err().into();
    assert_eq!(e.code, ErrorCode::KeyringUnavailable);
    assert!(e.message.contains("plain files"));
    // Choosing not to be remembered keeps the session in memory only.
    let s = c.register("13900000006", "haitao2026", false).await.unwrap();
    assert!(s.signed_in && !s.remembered);
}

/// A return that really comes from Alipay, validly signed, but for another order of the same
/// shopper: handed to the wrong payment it is refused (its trade number is not this attempt's), the
/// attempt stays open and unpaid, and the right payment still accepts it.
#[tokio::test]
async fn a_validly_signed_return_for_another_order_is_refused() {
    let w = world().await;
    let c = w.client();
    let address = shopper(&c, "13900000011").await;
    let first = c.place_order(&address).await.unwrap();
    let page = c.catalog(&Default::default()).await.unwrap();
    let p = page
        .page
        .items
        .iter()
        .find(|p| p.stock >= 3 && p.price_cny.minor() > 10_000 && p.price_cny.minor() < 60_000)
        .unwrap();
    c.set_quantity(&p.id, 2).await.unwrap();
    let second = c.place_order(&address).await.unwrap();
    assert_ne!(first.totals.total, second.totals.total, "two orders, two amounts");
    let ret = c.payment_config().await.unwrap().return_page;
    let a = c.start_payment(&first.id, PaymentMethod::Balance, PayMode::InApp, &ret).await.unwrap();
    let b = c.start_payment(&second.id, PaymentMethod::Balance, PayMode::InApp, &ret).await.unwrap();
    let paid = w
        .pay(
            b.attempt.cashier_url.as_deref().unwrap(),
            &b.attempt.out_trade_no,
            "zhangwei@sandbox.haitao",
            PayWith::Balance,
            None,
        )
        .await;
    let b_return = paid.return_url.as_deref().unwrap();

    let out = c.payment_returned(&a.local_id, b_return).await.unwrap();
    assert_eq!(out.return_verified, Some(false), "another order's return: {:?}", out.return_problem);
    // Refused for its trade number (the amounts differ too; the trade number is checked first).
    let problem = out.return_problem.clone().unwrap_or_default();
    assert!(problem.contains(&b.attempt.out_trade_no) && problem.contains("not this payment"), "{problem}");
    assert_ne!(out.local.status(), LocalStatus::Paid);
    assert_eq!(w.merchant_net(&a.attempt.out_trade_no).await, 0, "nothing was paid for the first order");

    let out = c.payment_returned(&b.local_id, b_return).await.unwrap();
    assert_eq!(out.return_verified, Some(true), "{:?}", out.return_problem);
    assert_eq!(out.local.status(), LocalStatus::Paid);
    assert_eq!(w.merchant_net(&b.attempt.out_trade_no).await, second.totals.total.minor());
    // The first order is still payable, once.
    let paid = w
        .pay(
            a.attempt.cashier_url.as_deref().unwrap(),
            &a.attempt.out_trade_no,
            "zhangwei@sandbox.haitao",
            PayWith::Balance,
            None,
        )
        .await;
    let out = c.payment_returned(&a.local_id, paid.return_url.as_deref().unwrap()).await.unwrap();
    assert_eq!(out.local.status(), LocalStatus::Paid);
    assert_eq!(w.merchant_net(&a.attempt.out_trade_no).await, first.totals.total.minor());
}

/// Time and ids come through the client's seams: the attempt ids are the id generator's, the
/// recorded times the clock's, and whether an open attempt may be reused is decided by the
/// client's clock against the shop's `expires_at`.
#[tokio::test]
async fn attempt_ids_times_and_expiry_come_from_the_clients_seams() {
    let w = world().await;
    let start = haitao_alipay::time::Clock::now(&haitao_alipay::time::SystemClock);
    let clock = haitao_alipay::time::ManualClock::new(start);
    let c = w
        .client()
        .with_clock(Arc::new(clock.clone()))
        .with_ids(Arc::new(haitao_alipay::ids::SequentialIds::default()));
    let address = shopper(&c, "13900000042").await;
    let order = c.place_order(&address).await.unwrap();
    let ret = c.payment_config().await.unwrap().return_page;
    let first = c.start_payment(&order.id, PaymentMethod::Balance, PayMode::InApp, &ret).await.unwrap();
    // The placed order's checkout key took the generator's first id.
    assert_eq!(first.local_id, "LA000002");
    let local = c.cache().attempt(&first.local_id).unwrap().unwrap();
    assert_eq!(local.created_at, haitao_client::cache::time_text(start));
    assert_eq!(first.attempt.status, AttemptStatus::Redirected);
    // A second click while the cashier is still valid opens the same attempt.
    let again = c.start_payment(&order.id, PaymentMethod::Balance, PayMode::InApp, &ret).await.unwrap();
    assert_eq!(again.local_id, first.local_id);
    // Once the client's clock is past the attempt's expiry, a new attempt is started.
    clock.set(first.attempt.expires_at + chrono::Duration::seconds(1));
    let fresh = c.start_payment(&order.id, PaymentMethod::Balance, PayMode::InApp, &ret).await.unwrap();
    assert_eq!(fresh.local_id, "LA000003");
    assert_ne!(fresh.attempt.out_trade_no, first.attempt.out_trade_no);
}

#[tokio::test]
async fn a_confirmed_payment_is_told_once_and_history_is_not_told() {
    let w = world().await;
    let c = w.client();
    let address = shopper(&c, "13900000077").await;
    let order = c.place_order(&address).await.unwrap();
    c.sync_orders().await.unwrap();
    assert!(c.take_order_notices().is_empty(), "placing an order is not news");

    let ret = c.payment_config().await.unwrap().return_page;
    let launch = c.start_payment(&order.id, PaymentMethod::Balance, PayMode::InApp, &ret).await.unwrap();
    let cashier = launch.attempt.cashier_url.clone().unwrap();
    w.pay(&cashier, &launch.attempt.out_trade_no, "zhangwei@sandbox.haitao", PayWith::Balance, None).await;
    // The sandbox tells the shop in the background; the app opens the order until the shop
    // knows. However the app learns it (opening the order, a sync, both, again), the payment is
    // told once: each write compares with what the cache held.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while c.order(&order.id).await.unwrap().status == haitao_shop_api::orders::OrderStatus::AwaitingPayment {
        assert!(std::time::Instant::now() < deadline, "the shop never heard of the payment");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    c.sync_orders().await.unwrap();
    c.order(&order.id).await.unwrap();
    let notices = c.take_order_notices();
    assert_eq!(notices.len(), 1, "{notices:?}");
    assert_eq!(notices[0].order_id, order.id);
    assert_eq!(notices[0].event, haitao_client::order_events::OrderEvent::PaymentConfirmed);
    let (title, body) = notices[0].text("en");
    assert_eq!(title, "Payment confirmed");
    assert!(body.contains(&order.id) && body.contains(&order.totals.total.to_decimal_string()), "{body}");
    let (title, _) = notices[0].text("zh-CN");
    assert_eq!(title, "付款成功");
    assert!(c.take_order_notices().is_empty(), "taken once");

    // The same account on a new install: its cache learns the paid order as history, not news.
    let fresh = haitao_client::Client::new(
        haitao_client::ShopApi::new(w.shop.base_url().clone()).unwrap(),
        haitao_client::Cache::open(&w.dir.path().join("another-install.sqlite3")).unwrap(),
        Arc::new(haitao_client::MemoryStore::default()),
    );
    fresh.sign_in("13900000077", "haitao2026", false).await.unwrap();
    fresh.sync_orders().await.unwrap();
    assert!(fresh.take_order_notices().is_empty());
}

/// The system-browser payment that returns through the shop's return page and a `haitao://` link:
/// the page hands over exactly Alipay's signed result, the link is checked like an in-app return,
/// and links that are forged, for another trade or for an in-app payment change nothing.
#[tokio::test]
async fn a_browser_payment_returns_through_the_app_link() {
    let w = world().await;
    let c = w.client();
    let address = shopper(&c, "13900000088").await;
    let order = c.place_order(&address).await.unwrap();
    let return_page = c.payment_config().await.unwrap().return_page;
    let launch =
        c.start_payment(&order.id, PaymentMethod::Balance, PayMode::Browser, &return_page).await.unwrap();
    let cashier = launch.attempt.cashier_url.clone().unwrap();
    let paid = w
        .pay(&cashier, &launch.attempt.out_trade_no, "zhangwei@sandbox.haitao", PayWith::Balance, None)
        .await;
    // The browser lands on the shop's page, which opens the app link.
    let page = reqwest::get(paid.return_url.as_deref().unwrap()).await.unwrap().text().await.unwrap();
    let href = page.split("id=\"open-app\" href=\"").nth(1).unwrap().split('"').next().unwrap();
    let link = href.replace("&amp;", "&");
    assert!(link.starts_with("haitao://alipay/return?"), "{link}");

    // Someone else's idea of the result: the amount changed, the signature kept.
    let forged = link
        .replace(&format!("total_amount={}", order.totals.total.to_decimal_string()), "total_amount=0.01");
    assert_ne!(forged, link);
    let (local_id, out) = c.payment_link_returned(&forged).await.unwrap();
    let out = out.unwrap();
    assert_eq!(local_id, launch.local_id);
    assert_eq!(out.return_verified, Some(false), "{:?}", out.return_problem);
    // The shop asked Alipay itself; the real payment stands, for the real amount.
    assert_eq!(w.merchant_net(&launch.attempt.out_trade_no).await, order.totals.total.minor());

    let (local_id, out) = c.payment_link_returned(&link).await.unwrap();
    let out = out.unwrap();
    assert_eq!(local_id, launch.local_id);
    assert_eq!(out.return_verified, Some(true), "{:?}", out.return_problem);
    assert_eq!(out.local.status(), LocalStatus::Paid);

    // A link for a trade this install never opened in the browser is refused.
    let unknown = link.replace(&launch.attempt.out_trade_no, "HT_NOT_OURS");
    assert!(matches!(c.payment_link_returned(&unknown).await, Err(haitao_client::ClientError::Invalid(_))));
    for bad in ["haitao://alipay/return", "haitao://evil/return?out_trade_no=x", "https://example.com/"] {
        assert!(
            matches!(c.payment_link_returned(bad).await, Err(haitao_client::ClientError::Invalid(_))),
            "{bad}"
        );
    }
    // Nor does a link answer a payment made in the payment window.
    common::add_affordable_product(&c).await;
    let second = c.place_order(&address).await.unwrap();
    let in_app =
        c.start_payment(&second.id, PaymentMethod::Balance, PayMode::InApp, &return_page).await.unwrap();
    let aimed = link.replace(&launch.attempt.out_trade_no, &in_app.attempt.out_trade_no);
    assert!(matches!(c.payment_link_returned(&aimed).await, Err(haitao_client::ClientError::Invalid(_))));
}
