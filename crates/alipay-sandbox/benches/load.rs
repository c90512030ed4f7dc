//! A bounded load run of the sandbox gateway on loopback, figures for docs/PERFORMANCE.md.
//!
//! 1. `alipay.trade.query` N times at concurrency C through `haitao_alipay::AlipayClient`: every
//!    request is signed by the merchant key and verified by the gateway, every answer is signed by the
//!    sandbox and verified by the client.
//! 2. M full page-pay flows (signed GET to the gateway → cashier, the buyer pays, the return is
//!    verified, the notification arrives and is verified, a query confirms), then the ledger check.
//!
//! `cargo bench -p haitao-alipay-sandbox --bench load -- [--rounds R] [--queries N] [--concurrency C]
//! [--flows M]` (defaults 3, 20000, 64, 1000): the query run is repeated R times and followed by
//! `openssl speed` as the same-minute ceiling. The client and the sandbox share this machine's cores.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]
// A measuring tool: it reports in floating-point milliseconds and prints its figures.
#![allow(clippy::float_arithmetic, clippy::print_stdout, clippy::print_stderr)]
#![allow(clippy::cast_possible_truncation, clippy::cast_sign_loss, clippy::cast_precision_loss)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::routing::post;
use haitao_alipay::api::{PagePay, Query, TradeRef};
use haitao_alipay::time::{Clock, SystemClock};
use haitao_alipay::{
    AlipayClient, AppConfig, Callbacks, Currency, Expected, InboundVerifier, Money, PrivateKey, PublicKey,
    RetryPolicy, SignType, Signer,
};
use haitao_alipay_sandbox::{Config, start};
use haitao_sandbox_api::{AppInfo, AppRequest, LedgerCheck, PayAnswer, PayRequest, PayWith, path};
use parking_lot::Mutex;

struct Args {
    rounds: usize,
    queries: usize,
    concurrency: usize,
    flows: usize,
}

fn args() -> Args {
    let mut a = Args { rounds: 3, queries: 20_000, concurrency: 64, flows: 1_000 };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().and_then(|v| v.parse().ok()).expect("a number after the flag");
        match flag.as_str() {
            "--rounds" => a.rounds = value(),
            "--queries" => a.queries = value(),
            "--concurrency" => a.concurrency = value(),
            "--flows" => a.flows = value(),
            _ => {} // cargo bench passes --bench
        }
    }
    a
}

/// OpenSSL's raw RSA-2048 signatures per second on both cores, measured now: this machine's speed
/// drifts by a third between minutes, so the gateway's figure is compared with a ceiling taken in
/// the same minute.
fn openssl_ceiling() -> Option<f64> {
    let out = std::process::Command::new("openssl")
        .args(["speed", "-seconds", "2", "-multi", "2", "rsa2048"])
        .stderr(std::process::Stdio::null())
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    // The column headed sign/s, on the line for rsa 2048 bits (the columns differ between versions).
    let header: Vec<&str> = text.lines().find(|l| l.contains("sign/s"))?.split_whitespace().collect();
    let column = header.iter().position(|h| *h == "sign/s")?;
    let row = text.lines().rev().find(|l| l.trim_start().starts_with("rsa") && l.contains("2048 bits"))?;
    let values: Vec<&str> = row.split("bits").nth(1)?.split_whitespace().collect();
    // Header words line up with the values after "rsa 2048 bits".
    values.get(column)?.parse().ok()
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss, clippy::cast_precision_loss)]
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

fn report(what: &str, n: usize, errors: usize, elapsed: Duration, mut lat: Vec<Duration>) {
    if lat.is_empty() {
        return;
    }
    lat.sort();
    #[allow(clippy::cast_precision_loss)]
    let rate = n as f64 / elapsed.as_secs_f64();
    println!(
        "{what}: {n} in {:.2} s = {rate:.0}/s, errors {errors}; latency p50 {:.1} ms, p90 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        elapsed.as_secs_f64(),
        percentile(&lat, 0.50).as_secs_f64() * 1e3,
        percentile(&lat, 0.90).as_secs_f64() * 1e3,
        percentile(&lat, 0.99).as_secs_f64() * 1e3,
        lat.last().copied().unwrap_or_default().as_secs_f64() * 1e3,
    );
}

/// Runs calls 0..n of `call` on `concurrency` workers; returns the wall time, every latency and
/// the failures.
async fn run<F, Fut>(n: usize, concurrency: usize, call: F) -> (Duration, Vec<Duration>, Vec<String>)
where
    F: Fn(usize) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = Result<(), String>> + Send,
{
    let next = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let mut workers = Vec::new();
    for _ in 0..concurrency {
        let (call, next) = (call.clone(), next.clone());
        workers.push(tokio::spawn(async move {
            let (mut lat, mut errors) = (Vec::new(), Vec::new());
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= n {
                    break;
                }
                let t = Instant::now();
                if let Err(e) = call(i).await {
                    errors.push(e);
                }
                lat.push(t.elapsed());
            }
            (lat, errors)
        }));
    }
    let (mut lat, mut errors) = (Vec::new(), Vec::new());
    for w in workers {
        let (l, e) = w.await.unwrap();
        lat.extend(l);
        errors.extend(e);
    }
    for e in errors.iter().take(5) {
        eprintln!("error: {e}");
    }
    (start.elapsed(), lat, errors)
}

fn is_paid(status: haitao_alipay::TradeStatus) -> Result<(), String> {
    if status.is_paid() { Ok(()) } else { Err(format!("not paid: {status:?}")) }
}

type Inbox = Arc<Mutex<Vec<Bytes>>>;

async fn notify_endpoint(State(inbox): State<Inbox>, body: Bytes) -> &'static str {
    inbox.lock().push(body);
    "success"
}

#[tokio::main]
async fn main() {
    let args = args();
    let dir = tempfile::tempdir().unwrap();
    let sandbox =
        start(Config::new(Some(dir.path().to_owned()), "127.0.0.1:0".parse().unwrap())).await.unwrap();
    let base = sandbox.base_url().clone();
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();

    let inbox: Inbox = Arc::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let notify_url = format!("http://{}/notify", listener.local_addr().unwrap());
    let app = Router::new().route("/notify", post(notify_endpoint)).with_state(inbox.clone());
    tokio::spawn(async move { axum::serve(listener, app).await });

    let (merchant, _) = PrivateKey::generate().unwrap();
    let info: AppInfo = http
        .post(base.join(path::APPS).unwrap())
        .json(&AppRequest { public_key: Some(merchant.public_key().to_pem()), ..AppRequest::named("load") })
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let mut cfg = AppConfig::new(
        info.app_id.as_str(),
        sandbox.gateway_url(),
        Signer::new(merchant, SignType::Rsa2).unwrap(),
        PublicKey::parse(&info.alipay_public_key).unwrap(),
    )
    .unwrap();
    cfg.seller_id = Some(info.seller_id.clone());
    let inbound = Arc::new(InboundVerifier::from_config(&cfg));
    let client = Arc::new(
        AlipayClient::new(Arc::new(cfg), Arc::new(SystemClock) as Arc<dyn Clock>)
            .unwrap()
            .with_http(
                reqwest::Client::builder().pool_max_idle_per_host(args.concurrency).build().unwrap(),
                Duration::from_secs(30),
            )
            .with_retry(RetryPolicy::none()),
    );
    let callbacks = Callbacks {
        notify_url: Some(notify_url.clone()),
        return_url: Some("http://127.0.0.1:9/return".into()),
    };
    let cny = |fen| Money::from_minor(fen, Currency::Cny);

    // One full flow: open the cashier through the gateway, pay, verify the return, confirm by query.
    let flow = {
        let (client, http, base, inbound, callbacks) =
            (client.clone(), http.clone(), base.clone(), inbound.clone(), callbacks.clone());
        move |out: String| {
            let (client, http, base, inbound, callbacks) =
                (client.clone(), http.clone(), base.clone(), inbound.clone(), callbacks.clone());
            async move {
                let pay = PagePay::new(out.clone(), cny(100), "load");
                let url = client.page_request(&pay, &callbacks).map_err(|e| e.to_string())?.to_get_url();
                let opened = http.get(url).send().await.map_err(|e| e.to_string())?;
                if opened.status().as_u16() != 303 {
                    return Err(format!("gateway answered {}", opened.status()));
                }
                let paid: PayAnswer = http
                    .post(base.join(path::PAY).unwrap())
                    .json(&PayRequest::new(out.as_str(), "zhangwei@sandbox.haitao", PayWith::Balance))
                    .send()
                    .await
                    .map_err(|e| e.to_string())?
                    .json()
                    .await
                    .map_err(|e| e.to_string())?;
                let ret = paid
                    .paid()
                    .and_then(|p| p.return_url.as_deref())
                    .ok_or_else(|| format!("not paid: {paid:?}"))?;
                inbound
                    .return_redirect(ret.split_once('?').map(|(_, q)| q).unwrap_or_default())
                    .and_then(|r| r.matched(Some(&Expected { total_amount: cny(100) })))
                    .map_err(|e| e.to_string())?;
                let q = client
                    .execute(&Query::new(TradeRef::out_trade_no(out)))
                    .await
                    .map_err(|e| e.to_string())?;
                is_paid(q.trade_status)
            }
        }
    };
    flow("LOAD-Q".into()).await.unwrap();

    // 1. Queries, measured two ways. "Gateway": one request signed up front and sent N times (Alipay
    // accepts a repeated request within its timestamp window), so each query costs the sandbox a
    // verification and a signature and the client a verification. "Client": every query signed afresh,
    // as a merchant does, which adds a second RSA signature per query on the same cores.
    let query = Query::new(TradeRef::out_trade_no("LOAD-Q"));
    for _ in 0..200 {
        client.execute(&query).await.unwrap();
    }
    let presigned = haitao_alipay::request::SignedRequest::build(
        client.config(),
        &SystemClock,
        "alipay.trade.query",
        &query,
        &Callbacks::default(),
    )
    .unwrap();
    let (gateway, form) = (presigned.gateway.clone(), presigned.params.to_urlencoded());
    let raw = {
        let (client, http) = (client.clone(), reqwest::Client::new());
        move |_| {
            let (client, http, gateway, form) = (client.clone(), http.clone(), gateway.clone(), form.clone());
            async move {
                let resp = http
                    .post(gateway)
                    .header("content-type", "application/x-www-form-urlencoded;charset=utf-8")
                    .body(form)
                    .send()
                    .await
                    .map_err(|e| e.to_string())?;
                let text = resp.text().await.map_err(|e| e.to_string())?;
                let q = haitao_alipay::client::decode_response::<haitao_alipay::api::QueryResponse>(
                    client.config(),
                    "alipay.trade.query",
                    &text,
                )
                .map_err(|e| e.to_string())?;
                is_paid(q.trade_status)
            }
        }
    };
    // Several rounds: on a shared two-core machine one round can be 20 % off the next.
    let mut rates = Vec::new();
    for round in 1..=args.rounds.max(1) {
        let (elapsed, lat, errors) = run(args.queries, args.concurrency, raw.clone()).await;
        rates.push(args.queries as f64 / elapsed.as_secs_f64());
        report(
            &format!(
                "trade.query (gateway: verify + sign per answer), concurrency {}, round {round}",
                args.concurrency
            ),
            args.queries,
            errors.len(),
            elapsed,
            lat,
        );
        assert!(errors.is_empty(), "{} queries failed: {:?}", errors.len(), errors.first());
    }
    rates.sort_by(f64::total_cmp);
    let median = rates[rates.len() / 2];
    println!("trade.query (gateway): median of {} rounds {median:.0}/s", rates.len());
    match openssl_ceiling() {
        Some(c) => println!(
            "openssl speed -multi 2 rsa2048 right after: {c:.0} signatures/s; the gateway's median is {:.0} % of it",
            median / c * 100.0
        ),
        None => println!("openssl not found: no same-minute RSA ceiling"),
    }
    let signed = {
        let (client, query) = (client.clone(), query.clone());
        move |_| {
            let (client, query) = (client.clone(), query.clone());
            async move { is_paid(client.execute(&query).await.map_err(|e| e.to_string())?.trade_status) }
        }
    };
    let (elapsed, lat, errors) = run(args.queries, args.concurrency, signed).await;
    report(
        &format!("trade.query (client signs each request too), concurrency {}", args.concurrency),
        args.queries,
        errors.len(),
        elapsed,
        lat,
    );

    // 2. Full pay flows at a shopper-like concurrency.
    let flow_concurrency = 16.min(args.concurrency).max(1);
    let (elapsed, lat, errors) = run(args.flows, flow_concurrency, move |i| flow(format!("LOAD-F{i}"))).await;
    report(&format!("page-pay flow, concurrency {flow_concurrency}"), args.flows, errors.len(), elapsed, lat);

    // Every payment notified once, each notification verified and matching.
    let expected = args.flows + 1;
    let deadline = Instant::now() + Duration::from_secs(60);
    while inbox.lock().len() < expected && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let bodies = inbox.lock().clone();
    let mut seen = std::collections::BTreeSet::new();
    let mut bad = 0;
    for b in &bodies {
        match inbound.notify(b).and_then(|n| n.matched(Some(&Expected { total_amount: cny(100) }))) {
            Ok(m) => {
                seen.insert(m.message.out_trade_no);
            }
            Err(_) => bad += 1,
        }
    }
    let ledger: LedgerCheck =
        http.get(base.join(path::LEDGER_CHECK).unwrap()).send().await.unwrap().json().await.unwrap();
    println!(
        "notifications: {} received, {} distinct trades, {bad} rejected (expected {expected}); ledger conserved: {}",
        bodies.len(),
        seen.len(),
        ledger.conserved
    );
    assert_eq!(seen.len(), expected, "every paid trade notified");
    assert_eq!(bad, 0);
    assert!(ledger.is_sound(), "{ledger:?}");
    assert!(errors.is_empty(), "{} flows failed", errors.len());
    sandbox.stop().await;
}
