//! What can happen in one step, chosen by the seed, and how a run settles at the end.

use haitao_sandbox_api::{ForceRequest, Outcome, PayRequest, PayWith, path};
use reqwest::Method;
use serde_json::{Value, json};

use crate::world::{PERSONAS, SimAttempt, SimOrder, World};
use crate::{Options, Rng, Summary};

const RETURN_URL: &str = "http://127.0.0.1:9/return";

#[derive(Clone, Copy)]
enum Act {
    Place,
    StartPayment,
    Pay,
    Confirm,
    Abandon,
    Cancel,
    Refund,
    CorrectOrderer,
    Force,
    Deliver,
    Replay,
    Forge,
    Advance,
    Jobs,
    FailWrite,
    Stop,
    MerchantSettles,
    RotateCert,
}

const ACTS: [(Act, usize); 18] = [
    (Act::Place, 16),
    (Act::StartPayment, 14),
    (Act::Pay, 18),
    (Act::Confirm, 8),
    (Act::Abandon, 3),
    (Act::Cancel, 5),
    (Act::Refund, 5),
    (Act::CorrectOrderer, 4),
    (Act::Force, 8),
    (Act::Deliver, 10),
    (Act::Replay, 3),
    (Act::Forge, 2),
    (Act::Advance, 8),
    (Act::Jobs, 9),
    (Act::FailWrite, 3),
    (Act::Stop, 3),
    (Act::MerchantSettles, 2),
    (Act::RotateCert, 1),
];

/// Runs one step and describes it.
pub async fn step(w: &mut World, rng: &mut Rng, options: Options, summary: &mut Summary) -> String {
    let weights: Vec<usize> = ACTS
        .iter()
        .map(|(a, wt)| if matches!(a, Act::FailWrite | Act::Stop) && !options.faults { 0 } else { *wt })
        .collect();
    // Buyers shop before anything else can happen.
    let act = if w.orders.is_empty() && rng.chance(70) { Act::Place } else { ACTS[rng.weighted(&weights)].0 };
    match act {
        Act::Place => place(w, rng, summary).await,
        Act::StartPayment => start_payment(w, rng, summary).await,
        Act::Pay => pay(w, rng, summary).await,
        Act::Confirm => {
            let Some(a) = pick_attempt(w, rng) else { return "confirm: no attempt".into() };
            let (b, id) = (w.orders[a.order].buyer, a.id.clone());
            let r =
                w.call(Some(b), Method::POST, &format!("payments/{id}/confirm"), Some(json!({})), None).await;
            summary.bump("confirm");
            format!("confirm {id}: {} {}", r.status, r.body["status"])
        }
        Act::Abandon => {
            let Some(a) = pick_attempt(w, rng) else { return "abandon: no attempt".into() };
            let (b, id) = (w.orders[a.order].buyer, a.id.clone());
            let r =
                w.call(Some(b), Method::POST, &format!("payments/{id}/abandon"), Some(json!({})), None).await;
            summary.bump("abandon");
            format!("abandon {id}: {} {}", r.status, r.body["status"])
        }
        Act::Cancel => {
            let Some(o) = pick_order(w, rng) else { return "cancel: no order".into() };
            let (b, id) = (o.buyer, o.id.clone());
            let r = w.call(Some(b), Method::POST, &format!("orders/{id}/cancel"), None, None).await;
            summary.bump("cancel");
            format!("cancel {id}: {} {}", r.status, r.body["status"])
        }
        Act::Refund => {
            let Some(o) = pick_order(w, rng) else { return "refund: no order".into() };
            let (b, id) = (o.buyer, o.id.clone());
            let body = if rng.chance(40) {
                json!({"reason": "仅退部分", "amount": {"minor": 100 + rng.below(5_000), "currency": "CNY"}})
            } else {
                json!({"reason": "不想要了"})
            };
            let r = w.call(Some(b), Method::POST, &format!("orders/{id}/refunds"), Some(body), None).await;
            summary.bump("refund asked");
            format!("refund {id}: {} {}", r.status, r.body["status"])
        }
        Act::CorrectOrderer => {
            let Some(o) = pick_order(w, rng) else { return "correct orderer: no order".into() };
            let p = o.payer.unwrap_or_else(|| rng.below(PERSONAS.len()));
            let (b, id) = (o.buyer, o.id.clone());
            let (_, name, number) = PERSONAS[p];
            let r = w
                .call(
                    Some(b),
                    Method::POST,
                    &format!("orders/{id}/orderer"),
                    Some(json!({"name": name, "id_number": number})),
                    None,
                )
                .await;
            summary.bump("orderer corrected");
            format!("correct orderer of {id} to {name}: {} {}", r.status, r.body["status"])
        }
        Act::Force => {
            let Some(a) = pick_attempt(w, rng) else { return "force: no attempt".into() };
            // Any outcome the sandbox can force (the password lock too: the clocks move past it).
            let outcome = *rng.pick(&Outcome::ALL);
            let r = w
                .sandbox_post(
                    path::SCENARIOS,
                    &serde_json::to_value(ForceRequest::order(&a.out_trade_no, outcome)).unwrap_or_default(),
                )
                .await;
            summary.bump("outcome forced");
            format!("force {} on {}: {}", outcome.as_str(), a.out_trade_no, r.status)
        }
        Act::Deliver => {
            let _ = w.sandbox.run_timers().await;
            summary.bump("sandbox timers");
            "sandbox timers: due notifications sent, overdue trades closed".into()
        }
        Act::Replay => replay(w, rng, false, summary).await,
        Act::Forge => replay(w, rng, true, summary).await,
        Act::Advance => {
            // Mostly seconds and minutes (a cashier lives 15 minutes), now and then hours or a day.
            const BY: [i64; 10] = [1, 20, 70, 300, 600, 1_000, 1_800, 3_700, 4 * 3_600, 26 * 3_600];
            let by = BY[rng.weighted(&[4, 4, 4, 4, 2, 2, 1, 1, 1, 1])];
            let skew = if rng.chance(20) { rng.below_i64(240) - 120 } else { 0 };
            w.shop_clock.advance(chrono::Duration::seconds(by));
            w.sandbox.state.advance_clock(chrono::Duration::seconds((by + skew).max(0)));
            summary.bump("clocks advanced");
            format!("clocks +{by}s (sandbox {skew:+}s more)")
        }
        Act::Jobs => {
            haitao_shop::jobs::run_once(w.shop()).await;
            summary.bump("shop jobs");
            "shop jobs".into()
        }
        Act::FailWrite => {
            let after = rng.below_i64(6);
            w.faults.arm(after, false);
            summary.bump("write failure planned");
            format!("the shop's write after {after} more fails")
        }
        Act::MerchantSettles => {
            summary.bump("merchant balance moved");
            w.merchant_settles()
        }
        Act::RotateCert => {
            if !w.mode.cert {
                return "rotate Alipay's certificate: the app is in public-key mode".into();
            }
            summary.bump("Alipay certificate rotated");
            w.rotate_alipay_cert().await
        }
        Act::Stop => {
            let after = rng.below_i64(8);
            w.faults.arm(after, true);
            summary.bump("stop planned");
            format!("the shop stops at its write after {after} more")
        }
    }
}

fn pick_order(w: &World, rng: &mut Rng) -> Option<SimOrder> {
    (!w.orders.is_empty()).then(|| {
        w.orders[if rng.chance(60) { w.orders.len() - 1 } else { rng.below(w.orders.len()) }].clone()
    })
}

/// Usually the newest attempt, sometimes an older one (a stale cashier).
fn pick_attempt(w: &World, rng: &mut Rng) -> Option<SimAttempt> {
    (!w.attempts.is_empty()).then(|| {
        w.attempts[if rng.chance(65) { w.attempts.len() - 1 } else { rng.below(w.attempts.len()) }].clone()
    })
}

async fn place(w: &mut World, rng: &mut Rng, summary: &mut Summary) -> String {
    let b = rng.below(w.buyers.len());
    let product = rng.pick(&w.products).clone();
    let qty = 1 + rng.weighted(&[6, 3, 1]);
    let _ = w.call(Some(b), Method::DELETE, "cart", None, None).await;
    let put = w
        .call(Some(b), Method::PUT, &format!("cart/items/{product}"), Some(json!({"quantity": qty})), None)
        .await;
    // A double click or a retry after a lost answer: the same key again.
    let key = if rng.chance(15) && !w.orders.is_empty() {
        format!("sim-order-{}", w.orders.len() - 1)
    } else {
        format!("sim-order-{}", w.orders.len())
    };
    let address = w.buyers[b].address_id.clone();
    let r = w.call(Some(b), Method::POST, "orders", Some(json!({"address_id": address})), Some(&key)).await;
    let id = r.body["id"].as_str().map(str::to_owned);
    if let Some(id) = &id
        && (r.status == 201 || r.status == 200)
        && !w.orders.iter().any(|o| &o.id == id)
    {
        w.orders.push(SimOrder { id: id.clone(), buyer: b, payer: None });
        summary.bump("order placed");
    } else {
        summary.bump("order refused");
    }
    format!(
        "buyer {b} orders {qty}× {product} (cart {}, key {key}): {} {}",
        put.status,
        r.status,
        id.unwrap_or_else(|| format!("{} {}", r.body["code"], r.body["detail"]).chars().take(160).collect())
    )
}

fn method(rng: &mut Rng) -> Value {
    match rng.below(6) {
        0 | 1 => json!({"kind": "balance"}),
        2 => json!({"kind": "bank_card"}),
        3 => json!({"kind": "huabei"}),
        4 => json!({"kind": "huabei_installments", "periods": *rng.pick(&[3, 6, 12])}),
        _ => json!({"kind": "international_card"}),
    }
}

async fn start_payment(w: &mut World, rng: &mut Rng, summary: &mut Summary) -> String {
    // Mostly an order nobody paid yet.
    let unpaid: Vec<usize> =
        (0..w.orders.len()).filter(|i| !w.attempts.iter().any(|a| a.order == *i && a.done)).collect();
    let o = if !unpaid.is_empty() && rng.chance(80) {
        w.orders[if rng.chance(60) { unpaid[unpaid.len() - 1] } else { *rng.pick(&unpaid) }].clone()
    } else {
        match pick_order(w, rng) {
            Some(o) => o,
            None => return "start payment: no order".into(),
        }
    };
    let oi = w.orders.iter().position(|x| x.id == o.id).unwrap_or_default();
    let m = method(rng);
    let mode = if rng.chance(20) { "qr" } else { "in_app" };
    let r = w
        .call(
            Some(o.buyer),
            Method::POST,
            &format!("orders/{}/payments", o.id),
            Some(json!({"method": m, "mode": mode, "return_url": RETURN_URL})),
            None,
        )
        .await;
    if r.status == 200 || r.status == 201 {
        let id = r.body["id"].as_str().unwrap_or_default().to_owned();
        if !id.is_empty() && !w.attempts.iter().any(|a| a.id == id) {
            let cashier =
                r.body["cashier_url"].as_str().or_else(|| r.body["qr_code"].as_str()).map(str::to_owned);
            w.attempts.push(SimAttempt {
                id: id.clone(),
                order: oi,
                out_trade_no: r.body["out_trade_no"].as_str().unwrap_or_default().to_owned(),
                cashier,
                method: m.clone(),
                done: false,
            });
            summary.bump("payment started");
        }
    } else {
        summary.bump("payment start refused");
    }
    format!("start payment of {} by {m} ({mode}): {} {} {}", o.id, r.status, r.body["id"], r.body["status"])
}

fn pay_with(method: &Value) -> (PayWith, Option<u32>) {
    match method["kind"].as_str() {
        Some("bank_card") => (PayWith::DebitCard, None),
        Some("huabei") => (PayWith::Huabei, None),
        Some("huabei_installments") => {
            (PayWith::Huabei, method["periods"].as_u64().and_then(|p| u32::try_from(p).ok()))
        }
        Some("international_card") => (PayWith::InternationalCard, None),
        _ => (PayWith::Balance, None),
    }
}

async fn pay(w: &mut World, rng: &mut Rng, summary: &mut Summary) -> String {
    // Mostly a cashier not yet paid (the newest), sometimes any (paying twice, a stale one).
    let unpaid: Vec<usize> = (0..w.attempts.len()).filter(|i| !w.attempts[*i].done).collect();
    if unpaid.is_empty() && rng.chance(80) {
        return Box::pin(start_payment(w, rng, summary)).await;
    }
    let a = if !unpaid.is_empty() && rng.chance(75) {
        w.attempts[if rng.chance(70) { unpaid[unpaid.len() - 1] } else { *rng.pick(&unpaid) }].clone()
    } else {
        match pick_attempt(w, rng) {
            Some(a) => a,
            None => return "pay: no attempt".into(),
        }
    };
    // The payer: mostly the buyer's own persona, sometimes someone else (customs holds it).
    let buyer = w.orders[a.order].buyer;
    let persona = if rng.chance(80) { buyer.min(PERSONAS.len() - 1) } else { rng.below(PERSONAS.len()) };
    if let Some(url) = &a.cashier {
        let _ = w.http.get(url).send().await;
    }
    let (mut channel, installments) = pay_with(&a.method);
    if rng.chance(15) {
        channel = *rng.pick(&[PayWith::Balance, PayWith::Huabei, PayWith::DebitCard]);
    }
    let mut req = PayRequest::new(&a.out_trade_no, PERSONAS[persona].0, channel);
    req.installments = installments.filter(|_| channel == PayWith::Huabei);
    let r = w.sandbox_post(path::PAY, &serde_json::to_value(&req).unwrap_or_default()).await;
    let paid = r.status == 200 && r.body.get("paid").is_some() || r.body["trade_no"].is_string();
    // A paid cashier, or one that can no longer take money, is left alone from now on (mostly).
    if (paid || r.body["error"] == "not_payable")
        && let Some(x) = w.attempts.iter_mut().find(|x| x.id == a.id)
    {
        x.done = true;
    }
    if paid {
        w.orders[a.order].payer = Some(persona);
        summary.bump("paid at the cashier");
    } else {
        summary.bump("cashier refused");
    }
    let what = if paid { "paid".to_owned() } else { r.body["error"].to_string().chars().take(80).collect() };
    format!(
        "{} pays {} ({}) with {}: {} {what}",
        PERSONAS[persona].0,
        a.out_trade_no,
        a.id,
        channel.as_str(),
        r.status
    )
}

/// Posts a notification the sandbox sent before, as it was (a late retry the shop must take once
/// more, harmlessly) or altered under its signature (which the shop must refuse).
async fn replay(w: &mut World, rng: &mut Rng, forge: bool, summary: &mut Summary) -> String {
    let bodies: Vec<String> = w.sandbox.state.store().sync(|c| {
        c.prepare("SELECT body FROM notifications ORDER BY id")
            .and_then(|mut st| st.query_map([], |r| r.get::<_, String>(0))?.collect::<Result<Vec<_>, _>>())
            .unwrap_or_default()
    });
    if bodies.is_empty() {
        return "replay: no notification yet".into();
    }
    let original = rng.pick(&bodies).clone();
    let mut body = original.clone();
    if forge {
        body = match rng.below(3) {
            0 => body.replacen("total_amount=", "total_amount=1", 1),
            1 => body.replacen("trade_status=TRADE_CLOSED", "trade_status=TRADE_SUCCESS", 1).replacen(
                "trade_status=WAIT_BUYER_PAY",
                "trade_status=TRADE_SUCCESS",
                1,
            ),
            _ => body.replacen("out_trade_no=", "out_trade_no=X", 1),
        };
        if body == original {
            body = body.replacen("total_amount=", "total_amount=1", 1);
        }
    }
    let url = format!("{}api/v1/alipay/notify", w.shop_base());
    let r = w
        .http
        .post(url)
        .header("content-type", "application/x-www-form-urlencoded; charset=utf-8")
        .body(body.clone())
        .send()
        .await;
    let status = r.map(|r| r.status().as_u16()).unwrap_or(0);
    if forge && status == 200 {
        w.violations.push(format!("a forged notification was acknowledged: {body}"));
    }
    summary.bump(if forge { "forged notification" } else { "notification replayed" });
    format!("{} a notification: {status}", if forge { "forge" } else { "replay" })
}

/// The end of a run: no more faults; the clocks move on in steps while the sandbox sends what is
/// due and the shop runs its jobs, through the notification ladder (a day) and the logistics
/// timeline, until nothing is left to do.
pub async fn settle(w: &mut World, trace: &mut Vec<String>) {
    trace.push("settle: faults off; clocks on until the jobs and the notifications are quiet".into());
    if w.merchant_out > 0 {
        trace.push(format!("settle: {}", w.merchant_settles()));
    }
    // Five-minute steps through the cashiers' expiry and the logistics timeline, then two-hour
    // steps through the rest of the notification ladder (24 h 24 min) and the refund retries.
    for round in 0..24 {
        let by = if round < 10 { 300 } else { 7_200 };
        let _ = w.sandbox.run_timers().await;
        haitao_shop::jobs::run_once(w.shop()).await;
        w.shop_clock.advance(chrono::Duration::seconds(by));
        w.sandbox.state.advance_clock(chrono::Duration::seconds(by));
    }
    let _ = w.sandbox.run_timers().await;
    haitao_shop::jobs::run_once(w.shop()).await;
}
