//! The cashier buyers and testers click through: order summary, log in (or scan), choose a channel,
//! confirm with the payment password, a simulated fingerprint or an SMS code, and go back to the
//! merchant.

use crate::db::Cached as _;
use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Router;
use axum::extract::{Form, Path, State};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use haitao_alipay::status::Status;
use haitao_alipay::time::format_alipay;
use serde_json::json;

use crate::Sandbox;
use crate::db::StoreError;
use crate::html::{LANG_COOKIE, Lang, esc, page, yuan};
use crate::model::{self, App, Buyer, Session, Stamp, Trade};
use crate::scenarios;
use crate::trades::{self, ChannelOption, Choice, Confirmation, Ctx, PageRequest, PayError};

pub fn routes() -> Router<Arc<Sandbox>> {
    Router::new()
        .route("/", get(home))
        .route("/cashier/{token}", get(show))
        .route("/cashier/{token}/login", post(login))
        .route("/cashier/{token}/pay", get(pay_page).post(choose))
        .route("/cashier/{token}/confirm", get(confirm_page).post(confirm))
        .route("/cashier/{token}/sms", post(sms))
        .route("/cashier/{token}/cancel", post(cancel))
        .route("/qr/{token}", get(scan))
        .route("/phone/{phone}/sms", get(inbox))
        .layer(axum::middleware::from_fn(remember_lang))
}

/// A language the shopper picked by a link (`?lang=`) is kept, in a cookie, for the cashier's
/// next pages and next payments.
async fn remember_lang(req: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let picked = Lang::from_query(req.uri().query());
    let mut resp = next.run(req).await;
    if let Some(lang) = picked {
        let cookie = format!("{LANG_COOKIE}={}; Path=/; Max-Age=31536000; SameSite=Lax", lang.code());
        if let Ok(v) = axum::http::HeaderValue::from_str(&cookie) {
            resp.headers_mut().append(axum::http::header::SET_COOKIE, v);
        }
    }
    resp
}

/// Shows a request error the way Alipay's cashier does: a page with the error code.
pub fn error_page(status: &Status, en: bool) -> Response {
    let lang = Lang { en };
    let body = format!(
        "<div class=\"card\"><h1>{}</h1><p class=\"msg err\">{}</p><p class=\"muted\">{}: {} {}</p></div>",
        lang.t("抱歉，支付遇到问题", "Sorry, this payment cannot continue"),
        esc(status.sub_msg.as_deref().unwrap_or(&status.msg)),
        lang.t("错误代码", "Error code"),
        esc(&status.code),
        esc(status.sub_code.as_deref().unwrap_or_default()),
    );
    Html(page(lang, lang.t("支付错误", "Payment error"), &body, "")).into_response()
}

/// A page saying the sandbox's store could not be read, instead of showing an empty list.
fn unreadable_store(lang: Lang, e: &StoreError) -> Response {
    tracing::error!(error = %e, "sandbox store unreadable");
    let mut page = message_page(
        lang,
        lang.t("沙箱数据无法读取", "The sandbox's data cannot be read"),
        &e.to_string(),
        "",
    );
    *page.status_mut() = axum::http::StatusCode::INTERNAL_SERVER_ERROR;
    page
}

fn message_page(lang: Lang, title: &str, text: &str, extra: &str) -> Response {
    let body = format!("<div class=\"card\"><h1>{}</h1><p>{}</p>{extra}</div>", esc(title), esc(text));
    Html(page(lang, title, &body, "")).into_response()
}

struct Loaded {
    session: Session,
    app: App,
    req: PageRequest,
    buyer: Option<Buyer>,
    trade: Option<Trade>,
}

async fn load(sb: &Arc<Sandbox>, token: String, lang: Lang) -> Result<Loaded, Response> {
    let r = sb
        .store
        .run(move |c| {
            let Some(session) = model::session(c, &token)? else { return Ok::<_, StoreError>(None) };
            let Some(app) = model::app(c, &session.app_id)? else { return Ok(None) };
            let buyer = match &session.buyer_id {
                Some(b) => model::buyer(c, b)?,
                None => None,
            };
            let trade = match &session.trade_no {
                Some(t) => model::trade_by_no(c, &app.app_id, t)?,
                None => None,
            };
            Ok(Some((session, app, buyer, trade)))
        })
        .await;
    match r {
        Ok(Some((session, app, buyer, trade))) => {
            let (_, req) = trades::session_request(&session).map_err(|s| error_page(&s, lang.en))?;
            Ok(Loaded { session, app, req, buyer, trade })
        }
        Ok(None) => Err(message_page(
            lang,
            lang.t("找不到该支付", "Payment not found"),
            lang.t("链接无效或已过期。", "The link is invalid or has expired."),
            "",
        )),
        Err(e) => {
            tracing::error!(error = %e, "cashier load");
            Err(message_page(lang, "Error", "sandbox error", ""))
        }
    }
}

fn summary(lang: Lang, l: &Loaded) -> String {
    let due = trades::deadline(&l.session, &l.req);
    let foreign = if l.req.amount.currency() != haitao_alipay::Currency::Cny {
        format!(
            "<div class=\"muted\">{} {} {}</div>",
            lang.t("外币金额", "Foreign amount"),
            esc(&l.req.amount.to_decimal_string()),
            l.req.amount.currency()
        )
    } else {
        String::new()
    };
    format!(
        "<div class=\"card\"><div class=\"row\"><div><div class=\"muted\">{}</div><div class=\"big\">{}</div>\
         <div>{}</div><div class=\"muted\">{} <span data-testid=\"out-trade-no\">{}</span></div></div>\
         <div style=\"text-align:right\"><div class=\"muted\">{}</div><div class=\"amount\" data-testid=\"amount\">{}</div>{foreign}\
         <div class=\"muted\">{} {}</div></div></div></div>",
        lang.t("收款方", "Pay to"),
        esc(&l.app.name),
        esc(&l.req.pay.subject),
        lang.t("商户订单号", "Order no."),
        esc(&l.req.pay.out_trade_no),
        lang.t("应付金额", "Amount due"),
        yuan(l.req.cny_fen),
        lang.t("请在此时间前完成支付（北京时间）", "Pay before (China time)"),
        format_alipay(due),
    )
}

fn qr_svg(url: &str) -> String {
    match qrcode::QrCode::new(url.as_bytes()) {
        Ok(code) => code.render::<qrcode::render::svg::Color<'_>>().min_dimensions(160, 160).build(),
        Err(_) => String::new(),
    }
}

fn closed_or_paid(lang: Lang, l: &Loaded) -> Option<Response> {
    if l.session.state == "closed"
        || l.trade.as_ref().is_some_and(|t| t.status == haitao_alipay::TradeStatus::TradeClosed)
    {
        return Some(message_page(
            lang,
            lang.t("交易已关闭", "Payment closed"),
            lang.t(
                "该订单已关闭，请返回商户重新下单。",
                "This payment was closed. Go back to the shop and try again.",
            ),
            "",
        ));
    }
    if l.trade.as_ref().is_some_and(|t| t.status.is_paid()) {
        return Some(message_page(
            lang,
            lang.t("订单已支付", "Already paid"),
            lang.t("该订单已完成支付。", "This order has been paid."),
            "",
        ));
    }
    None
}

async fn show(State(sb): State<Arc<Sandbox>>, Path(token): Path<String>, lang: Lang) -> Response {
    let l = match load(&sb, token.clone(), lang).await {
        Ok(l) => l,
        Err(r) => return r,
    };
    if let Some(r) = closed_or_paid(lang, &l) {
        return r;
    }
    if trades::deadline(&l.session, &l.req) <= sb.now() {
        return message_page(
            lang,
            lang.t("订单已超时", "Payment expired"),
            lang.t("支付时间已过，请返回商户重新下单。", "The time to pay has passed. Go back to the shop."),
            "",
        );
    }
    let personas = match sb.store.run(|c| model::buyers(c)).await {
        Ok(personas) => personas,
        Err(e) => return unreadable_store(lang, &e),
    };
    let qr_url = sb.base_url.join(&format!("qr/{token}")).map(|u| u.to_string()).unwrap_or_default();
    let sfx = lang.suffix();
    let mut quick = String::new();
    for p in &personas {
        quick.push_str(&format!(
            "<form class=\"persona\" method=\"post\" action=\"/cashier/{token}/login{sfx}\">\
             <input type=\"hidden\" name=\"login\" value=\"{}\"><input type=\"hidden\" name=\"password\" value=\"{}\">\
             <button class=\"secondary\" type=\"submit\" title=\"{}\" data-persona=\"{}\">{} · {}</button></form>",
            esc(&p.login),
            esc(&p.login_password),
            esc(lang.t(&p.description.zh, &p.description.en)),
            esc(p.login.split('@').next().unwrap_or_default()),
            esc(&p.real_name),
            esc(p.login.split('@').next().unwrap_or_default()),
        ));
    }
    let body = format!(
        "{}<div class=\"row\"><div class=\"card\"><h2>{}</h2>\
         <form method=\"post\" action=\"/cashier/{token}/login{sfx}\">\
         <label for=\"login\">{}</label><input type=\"text\" id=\"login\" name=\"login\" autocomplete=\"username\" required autofocus>\
         <label for=\"password\">{}</label><input type=\"password\" id=\"password\" name=\"password\" autocomplete=\"current-password\" required>\
         <p><button type=\"submit\">{}</button></p></form>\
         <h2>{}</h2><div>{quick}</div></div>\
         <div class=\"card qr\"><h2>{}</h2>{}<p class=\"muted\">{}</p><p><a href=\"{}\">{}</a></p></div></div>\
         <form method=\"post\" action=\"/cashier/{token}/cancel{sfx}\"><button class=\"link\" type=\"submit\" data-testid=\"cashier-cancel\">{}</button></form>",
        summary(lang, &l),
        lang.t("登录账户付款", "Log in to pay"),
        lang.t("支付宝账号", "Alipay account"),
        lang.t("登录密码", "Login password"),
        lang.t("下一步", "Next"),
        lang.t("测试账号（点击直接登录）", "Test accounts (click to log in)"),
        lang.t("扫码付款", "Scan to pay"),
        qr_svg(&qr_url),
        lang.t(
            "用支付宝手机应用扫码，或点击下方链接模拟扫码。",
            "Scan with the Alipay phone app, or follow the link to simulate a scan."
        ),
        esc(&qr_url),
        lang.t("模拟扫码", "Simulate a scan"),
        lang.t("取消付款，返回商户", "Cancel and return to the shop"),
    );
    let sb2 = sb.clone();
    let (app_id, out) = (l.app.app_id.clone(), l.req.pay.out_trade_no.clone());
    let _ = sb
        .store
        .run(move |c| {
            crate::events::record(
                c,
                sb2.now(),
                "cashier.view",
                crate::events::Scope { app_id: Some(&app_id), trade_no: None, out_trade_no: Some(&out) },
                "cashier shown",
                json!({}),
            )
        })
        .await;
    Html(page(lang, lang.t("支付宝收银台", "Alipay cashier"), &body, "")).into_response()
}

async fn scan(State(sb): State<Arc<Sandbox>>, Path(token): Path<String>, lang: Lang) -> Response {
    let sb2 = sb.clone();
    let t2 = token.clone();
    let _ = sb
        .store
        .run(move |c| {
            if let Some(s) = model::session(c, &t2)? {
                crate::events::record(
                    c,
                    sb2.now(),
                    "cashier.scan",
                    crate::events::Scope {
                        app_id: Some(&s.app_id),
                        trade_no: None,
                        out_trade_no: Some(&s.out_trade_no),
                    },
                    "QR code scanned",
                    json!({}),
                )?;
            }
            Ok::<_, StoreError>(())
        })
        .await;
    Redirect::to(&format!("/cashier/{token}{}", lang.suffix())).into_response()
}

async fn login(
    State(sb): State<Arc<Sandbox>>,
    Path(token): Path<String>,
    lang: Lang,
    Form(f): Form<BTreeMap<String, String>>,
) -> Response {
    let login = f.get("login").cloned().unwrap_or_default();
    let password = f.get("password").cloned().unwrap_or_default();
    let sb2 = sb.clone();
    let tok = token.clone();
    let r = sb
        .store
        .run(move |c| {
            let tx = c.transaction()?;
            let Some(s) = model::session(&tx, &tok)? else { return Ok::<_, StoreError>(Err(None)) };
            let Some(app) = model::app(&tx, &s.app_id)? else { return Ok(Err(None)) };
            let buyer = match model::buyer_by_login(&tx, login.trim())? {
                Some(b) if b.login_password == password => b,
                _ => {
                    return Ok(Err(Some(PayError::NotPayable {
                        zh: "账号或登录密码错误".into(),
                        en: "Wrong account or password".into(),
                    })));
                }
            };
            let ctx = Ctx { conn: &tx, sb: &sb2, app: &app, now: sb2.now() };
            let r = trades::attach_buyer(&ctx, &s, &buyer).map(|_| ()).map_err(Some);
            if r.is_ok() {
                ctx.event(
                    "cashier.login",
                    None,
                    Some(&s.out_trade_no),
                    format!("{} logged in", buyer.login),
                    json!({}),
                );
            }
            tx.commit()?;
            Ok(r)
        })
        .await;
    match r {
        Ok(Ok(())) => Redirect::to(&format!("/cashier/{token}/pay{}", lang.suffix())).into_response(),
        Ok(Err(Some(e))) => message_page(
            lang,
            lang.t("无法登录", "Cannot log in"),
            &e.message(lang.en),
            &format!(
                "<p><a class=\"btn\" href=\"/cashier/{token}{}\">{}</a></p>",
                lang.suffix(),
                lang.t("返回", "Back")
            ),
        ),
        _ => message_page(lang, "Error", lang.t("找不到该支付", "Payment not found"), ""),
    }
}

fn options_html(lang: Lang, options: &[ChannelOption], surcharge_note: bool) -> String {
    let mut html = String::new();
    let mut first = true;
    for o in options {
        let disabled = if o.available { "" } else { " disabled" };
        let checked = if o.available && first && o.account_id != "new_card" { " checked" } else { "" };
        if o.available && o.account_id != "new_card" {
            first = false;
        }
        let reason = o
            .reason
            .as_ref()
            .map(|(zh, en)| format!(" <span class=\"reason\">{}</span>", esc(lang.t(zh, en))))
            .unwrap_or_default();
        let spend = if o.account_id == "new_card" {
            String::new()
        } else {
            format!(" <span class=\"muted\">{} {}</span>", lang.t("可用", "available"), yuan(o.spendable_fen))
        };
        let surcharge = if o.surcharge_fen > 0 && surcharge_note {
            format!(
                "<div class=\"muted\">{} {}</div>",
                lang.t("境外卡服务费（3%，金额超过¥200时收取）", "International card fee (3% above ¥200)"),
                yuan(o.surcharge_fen)
            )
        } else {
            String::new()
        };
        let id = esc(&o.account_id);
        if o.kind != crate::model::AccountKind::Huabei
            || o.installments.is_empty()
            || !matches!(o.channel, haitao_alipay::api::PayChannel::Pcredit)
            || o.available
        {
            html.push_str(&format!(
                "<label class=\"opt{}\"><input type=\"radio\" name=\"choice\" value=\"{id}\" data-kind=\"{}\"{disabled}{checked}>\
                 <span><b>{}</b>{spend}{reason}{surcharge}</span></label>",
                if o.available { "" } else { " off" },
                if o.account_id == "new_card" { "new_card" } else { o.kind.as_str() },
                esc(o.label.pick(lang.en)),
            ));
        }
        for i in &o.installments {
            let payer = match i.fee_payer {
                haitao_alipay::api::FeePayer::Buyer => lang.t("手续费由您承担", "fee paid by you"),
                haitao_alipay::api::FeePayer::Seller => {
                    lang.t("商家承担手续费（免息）", "fee paid by the shop (interest-free)")
                }
            };
            let enough = o.spendable_fen >= i.first_period_fen * i64::from(i.periods) - 1 || o.available;
            html.push_str(&format!(
                "<label class=\"opt{}\"><input type=\"radio\" name=\"choice\" value=\"{id}|{}\" data-kind=\"huabei\" data-installments=\"{}\"{}>\
                 <span><b>{} {} {}</b> <span class=\"muted\">{} {} × {}，{} {}；{}</span></span></label>",
                if enough { "" } else { " off" },
                i.periods,
                i.periods,
                if enough { "" } else { " disabled" },
                lang.t("花呗分期", "Huabei installments"),
                i.periods,
                lang.t("期", "periods"),
                lang.t("每期", "per period"),
                yuan(i.per_period_fen),
                i.periods,
                lang.t("手续费", "fee"),
                yuan(i.fee_fen),
                payer,
            ));
        }
    }
    html
}

async fn pay_page(State(sb): State<Arc<Sandbox>>, Path(token): Path<String>, lang: Lang) -> Response {
    render_pay(&sb, token, lang, None).await
}

async fn render_pay(sb: &Arc<Sandbox>, token: String, lang: Lang, error: Option<String>) -> Response {
    let l = match load(sb, token.clone(), lang).await {
        Ok(l) => l,
        Err(r) => return r,
    };
    if let Some(r) = closed_or_paid(lang, &l) {
        return r;
    }
    let Some(buyer) = l.buyer.clone() else {
        return Redirect::to(&format!("/cashier/{token}{}", lang.suffix())).into_response();
    };
    let sb2 = sb.clone();
    let (app, req, b2) = (l.app.clone(), l.req.clone(), buyer.clone());
    let options = sb
        .store
        .run(move |c| {
            let ctx = Ctx { conn: c, sb: &sb2, app: &app, now: sb2.now() };
            let outcomes = scenarios::for_trade(c, &app.app_id, &req.pay.out_trade_no, Some(req.cny_fen))?;
            Ok::<_, StoreError>(trades::channel_options(&ctx, &req, &b2, &outcomes))
        })
        .await;
    let options = match options {
        Ok(Ok(o)) => o,
        Ok(Err(s)) => return error_page(&s, lang.en),
        Err(e) => {
            tracing::error!(error = %e, "channels");
            return message_page(lang, "Error", "sandbox error", "");
        }
    };
    let sfx = lang.suffix();
    let none_available = options.iter().all(|o| !o.available);
    let err =
        error.map(|e| format!("<div class=\"msg err\" role=\"alert\">{}</div>", esc(&e))).unwrap_or_default();
    let none = if none_available {
        format!(
            "<div class=\"msg err\" role=\"alert\">{}</div>",
            lang.t("无可用支付方式", "No payment method is available")
        )
    } else {
        String::new()
    };
    let body = format!(
        "{}<div class=\"card\"><h2>{} {}（{}）</h2>{err}{none}\
         <form method=\"post\" action=\"/cashier/{token}/pay{sfx}\"><fieldset style=\"border:0;padding:0\"><legend class=\"muted\">{}</legend>{}</fieldset>\
         <details><summary>{}</summary><div class=\"row\">\
         <div><label for=\"card_number\">{}</label><input type=\"text\" inputmode=\"numeric\" id=\"card_number\" name=\"card_number\" autocomplete=\"cc-number\" placeholder=\"4242 4242 4242 4242\"></div>\
         <div><label for=\"card_expiry\">{}</label><input type=\"text\" id=\"card_expiry\" name=\"card_expiry\" autocomplete=\"cc-exp\" placeholder=\"MM/YY\"></div>\
         <div><label for=\"card_cvc\">CVC</label><input type=\"text\" inputmode=\"numeric\" id=\"card_cvc\" name=\"card_cvc\" autocomplete=\"cc-csc\" placeholder=\"123\"></div>\
         <div><label for=\"card_holder\">{}</label><input type=\"text\" id=\"card_holder\" name=\"card_holder\" autocomplete=\"cc-name\"></div></div>\
         <p class=\"muted\">{}</p></details>\
         <p><button type=\"submit\" data-testid=\"cashier-next\">{}</button></p></form>\
         <form method=\"post\" action=\"/cashier/{token}/cancel{sfx}\"><button class=\"link\" type=\"submit\" data-testid=\"cashier-cancel\">{}</button></form></div>",
        summary(lang, &l),
        lang.t("付款账户", "Paying as"),
        esc(&buyer.real_name),
        esc(&buyer.login),
        lang.t("选择付款方式", "Choose how to pay"),
        options_html(lang, &options, true),
        lang.t("使用新的境外 Visa / MasterCard（选择“境外 Visa / MasterCard”后填写）", "Use a new international Visa / MasterCard (choose it above, then fill in)"),
        lang.t("卡号", "Card number"),
        lang.t("有效期", "Expiry"),
        lang.t("持卡人姓名", "Cardholder name"),
        lang.t("测试卡：4242… 成功；4000000000000002 拒绝；4000000000009995 余额不足；4000002500003155 需短信验证。", "Test cards: 4242… approves; 4000000000000002 declines; 4000000000009995 insufficient funds; 4000002500003155 needs an SMS code."),
        lang.t("下一步", "Next"),
        lang.t("取消付款，返回商户", "Cancel and return to the shop"),
    );
    Html(page(lang, lang.t("选择付款方式", "Choose how to pay"), &body, "")).into_response()
}

fn parse_choice(f: &BTreeMap<String, String>) -> Option<Choice> {
    let raw = f.get("choice")?;
    let (account_id, installments) = match raw.split_once('|') {
        Some((a, n)) => (a.to_owned(), n.parse().ok()),
        None => (raw.clone(), None),
    };
    let card = (account_id == "new_card").then(|| trades::CardInput {
        number: f.get("card_number").cloned().unwrap_or_default(),
        expiry: f.get("card_expiry").cloned().unwrap_or_default(),
        cvc: f.get("card_cvc").cloned().unwrap_or_default(),
        holder: f.get("card_holder").cloned().unwrap_or_default(),
    });
    Some(Choice { account_id, installments, card })
}

async fn choose(
    State(sb): State<Arc<Sandbox>>,
    Path(token): Path<String>,
    lang: Lang,
    Form(f): Form<BTreeMap<String, String>>,
) -> Response {
    let Some(choice) = parse_choice(&f) else {
        return render_pay(
            &sb,
            token,
            lang,
            Some(lang.t("请选择付款方式", "Choose a payment method").into()),
        )
        .await;
    };
    if let Some(card) = &choice.card
        && let Err(e) = trades::check_card(card, sb.now())
    {
        return render_pay(&sb, token, lang, Some(e.message(lang.en))).await;
    }
    // The typed card waits in memory for the confirmation; the database keeps the choice only.
    {
        let mut cards = sb.typed_cards.lock();
        match choice.card.clone() {
            Some(card) => {
                if cards.len() >= 10_000 {
                    cards.clear();
                }
                cards.insert(token.clone(), card);
            }
            None => {
                cards.remove(&token);
            }
        }
    }
    let stored = json!({"account_id": choice.account_id, "installments": choice.installments}).to_string();
    let tok = token.clone();
    let _ = sb
        .store
        .run(move |c| {
            c.cached_exec("UPDATE cashier_sessions SET choice = ?1 WHERE token = ?2", [stored, tok])
                .map_err(StoreError::from)
        })
        .await;
    Redirect::to(&format!("/cashier/{token}/confirm{}", lang.suffix())).into_response()
}

/// The buyer's choice for a session, with the card typed for it (gone after a restart of the
/// sandbox: the buyer types it again).
fn stored_choice(sb: &Sandbox, s: &Session) -> Option<Choice> {
    let mut choice: Choice = serde_json::from_str(s.choice.as_deref()?).ok()?;
    if choice.account_id == "new_card" {
        choice.card = Some(sb.typed_cards.lock().get(&s.token)?.clone());
    }
    Some(choice)
}

async fn confirm_page(State(sb): State<Arc<Sandbox>>, Path(token): Path<String>, lang: Lang) -> Response {
    render_confirm(&sb, token, lang, None, false).await
}

async fn render_confirm(
    sb: &Arc<Sandbox>,
    token: String,
    lang: Lang,
    error: Option<String>,
    sms_sent: bool,
) -> Response {
    let l = match load(sb, token.clone(), lang).await {
        Ok(l) => l,
        Err(r) => return r,
    };
    if let Some(r) = closed_or_paid(lang, &l) {
        return r;
    }
    let (Some(buyer), Some(choice)) = (l.buyer.clone(), stored_choice(sb, &l.session)) else {
        return Redirect::to(&format!("/cashier/{token}/pay{}", lang.suffix())).into_response();
    };
    let sb2 = sb.clone();
    let (app, req, b2, ch) = (l.app.clone(), l.req.clone(), buyer.clone(), choice.clone());
    let info = sb
        .store
        .run(move |c| {
            let ctx = Ctx { conn: c, sb: &sb2, app: &app, now: sb2.now() };
            let outcomes = scenarios::for_trade(c, &app.app_id, &req.pay.out_trade_no, Some(req.cny_fen))?;
            let options = match trades::channel_options(&ctx, &req, &b2, &outcomes) {
                Ok(options) => options,
                Err(status) => return Ok(Err(status)),
            };
            let sms = outcomes.contains(&scenarios::Outcome::SmsRequired)
                || outcomes.contains(&scenarios::Outcome::SmsTimeout)
                || crate::personas::requires_sms(&b2.login)
                || ch.card.as_ref().is_some_and(|c| {
                    scenarios::magic_card(&c.number.replace(' ', "")) == scenarios::CardBehaviour::RequiresSms
                });
            Ok::<_, StoreError>(Ok((options.into_iter().find(|o| o.account_id == ch.account_id), sms)))
        })
        .await;
    let (opt, sms_needed) = match info {
        Ok(Ok((Some(opt), sms_needed))) => (opt, sms_needed),
        // The choice is no longer offered: back to choosing.
        Ok(Ok((None, _))) => {
            return Redirect::to(&format!("/cashier/{token}/pay{}", lang.suffix())).into_response();
        }
        Ok(Err(status)) => return error_page(&status, lang.en),
        Err(e) => return unreadable_store(lang, &e),
    };
    let plan = choice.installments.and_then(|p| opt.installments.iter().find(|i| i.periods == p).cloned());
    let buyer_fee = plan
        .as_ref()
        .filter(|p| p.fee_payer == haitao_alipay::api::FeePayer::Buyer)
        .map(|p| p.fee_fen)
        .unwrap_or(0);
    let total = l.req.cny_fen + opt.surcharge_fen + buyer_fee;
    let mut lines =
        format!("<tr><td>{}</td><td>{}</td></tr>", lang.t("订单金额", "Order amount"), yuan(l.req.cny_fen));
    if opt.surcharge_fen > 0 {
        lines.push_str(&format!(
            "<tr><td>{}</td><td>{}</td></tr>",
            lang.t("境外卡服务费", "International card fee"),
            yuan(opt.surcharge_fen)
        ));
    }
    if let Some(p) = &plan {
        lines.push_str(&format!(
            "<tr><td>{} {} {}</td><td>{} × {}（{} {}）</td></tr>",
            lang.t("花呗分期", "Huabei installments"),
            p.periods,
            lang.t("期", "periods"),
            yuan(p.per_period_fen),
            p.periods,
            lang.t("手续费", "fee"),
            yuan(p.fee_fen),
        ));
    }
    lines.push_str(&format!(
        "<tr><th>{}</th><th data-testid=\"charge\">{}</th></tr>",
        lang.t("本次扣款", "You pay now"),
        yuan(total)
    ));
    let sfx = lang.suffix();
    let err =
        error.map(|e| format!("<div class=\"msg err\" role=\"alert\">{}</div>", esc(&e))).unwrap_or_default();
    let sms_html = if sms_needed {
        format!(
            "<label for=\"sms\">{}</label><input type=\"tel\" inputmode=\"numeric\" id=\"sms\" name=\"sms\" maxlength=\"6\" autocomplete=\"one-time-code\">\
             <p class=\"muted\">{} <a href=\"/phone/{}/sms{sfx}\" target=\"_blank\">{}</a>{}</p>",
            lang.t("短信验证码", "SMS code"),
            lang.t("测试提示：验证码显示在", "Tester hint: the code is in the"),
            esc(&buyer.phone),
            lang.t("沙箱手机收件箱", "sandbox phone inbox"),
            if sms_sent { lang.t("（已发送）", " (sent)") } else { "" },
        )
    } else {
        String::new()
    };
    let sms_button = if sms_needed {
        format!(
            "<button class=\"secondary\" type=\"submit\" formaction=\"/cashier/{token}/sms{sfx}\" formnovalidate>{}</button> ",
            lang.t("获取验证码", "Send code")
        )
    } else {
        String::new()
    };
    let body = format!(
        "{}<div class=\"card\"><h2>{}</h2><p>{}</p><table>{lines}</table>{err}\
         <form method=\"post\" action=\"/cashier/{token}/confirm{sfx}\">\
         <label for=\"pay_password\">{}</label>\
         <input type=\"password\" id=\"pay_password\" name=\"password\" inputmode=\"numeric\" maxlength=\"6\" pattern=\"[0-9]{{6}}\" autocomplete=\"off\" autofocus>\
         {sms_html}<p>{sms_button}<button type=\"submit\" data-testid=\"cashier-confirm\">{}</button> \
         <button class=\"secondary\" type=\"submit\" name=\"fingerprint\" value=\"1\" formnovalidate>{}</button></p></form>\
         <p><a href=\"/cashier/{token}/pay{sfx}\">{}</a></p>\
         <form method=\"post\" action=\"/cashier/{token}/cancel{sfx}\"><button class=\"link\" type=\"submit\">{}</button></form></div>",
        summary(lang, &l),
        lang.t("确认付款", "Confirm payment"),
        esc(opt.label.pick(lang.en)),
        lang.t("支付密码（6位数字）", "Payment password (6 digits)"),
        lang.t("确认付款", "Pay"),
        lang.t("使用指纹", "Use fingerprint"),
        lang.t("更换付款方式", "Change payment method"),
        lang.t("取消付款，返回商户", "Cancel and return to the shop"),
    );
    Html(page(lang, lang.t("确认付款", "Confirm payment"), &body, "")).into_response()
}

async fn sms(State(sb): State<Arc<Sandbox>>, Path(token): Path<String>, lang: Lang) -> Response {
    let sb2 = sb.clone();
    let tok = token.clone();
    let sent = sb
        .store
        .run(move |c| {
            let Some(s) = model::session(c, &tok)? else { return Ok::<_, StoreError>(false) };
            let (Some(app), Some(b), Some(t)) = (
                model::app(c, &s.app_id)?,
                s.buyer_id.as_deref().map(|b| model::buyer(c, b)).transpose()?.flatten(),
                s.trade_no.clone(),
            ) else {
                return Ok(false);
            };
            let ctx = Ctx { conn: c, sb: &sb2, app: &app, now: sb2.now() };
            let outcomes = scenarios::for_trade(c, &app.app_id, &s.out_trade_no, None)?;
            let expired = outcomes.contains(&scenarios::Outcome::SmsTimeout);
            Ok(trades::send_sms(&ctx, &b, &format!("pay:{t}"), expired).is_ok())
        })
        .await
        .unwrap_or(false);
    render_confirm(&sb, token, lang, None, sent).await
}

async fn confirm(
    State(sb): State<Arc<Sandbox>>,
    Path(token): Path<String>,
    lang: Lang,
    Form(f): Form<BTreeMap<String, String>>,
) -> Response {
    let confirmation = if f.get("fingerprint").is_some_and(|v| v == "1") {
        Confirmation::Fingerprint
    } else {
        Confirmation::Password(f.get("password").cloned().unwrap_or_default())
    };
    let sms_code = f.get("sms").filter(|s| !s.trim().is_empty()).cloned();
    let sb2 = sb.clone();
    let tok = token.clone();
    let r = sb
        .store
        .run(move |c| {
            let tx = c.transaction()?;
            let Some(s) = model::session(&tx, &tok)? else {
                return Ok::<_, StoreError>(Err(PayError::Processing));
            };
            let (Some(app), Some(buyer), Some(choice)) = (
                model::app(&tx, &s.app_id)?,
                s.buyer_id.as_deref().map(|b| model::buyer(&tx, b)).transpose()?.flatten(),
                stored_choice(&sb2, &s),
            ) else {
                return Ok(Err(PayError::Processing));
            };
            let ctx = Ctx { conn: &tx, sb: &sb2, app: &app, now: sb2.now() };
            let r = trades::pay(&ctx, &s, &buyer, &choice, &confirmation, sms_code.as_deref());
            if let Err(e) = &r {
                ctx.event(
                    "cashier.failed",
                    None,
                    Some(&s.out_trade_no),
                    e.message(true),
                    serde_json::to_value(e).unwrap_or_default(),
                );
            }
            // Failed attempts still count (wrong passwords, locks): commit either way.
            tx.commit()?;
            Ok(r)
        })
        .await;
    match r {
        Ok(Ok(paid)) => {
            sb.typed_cards.lock().remove(&token);
            let (redirect, extra) = match &paid.return_url {
                Some(u) => (
                    format!("<meta http-equiv=\"refresh\" content=\"1;url={}\">", esc(u)),
                    format!(
                        "<p>{}</p><p><a class=\"btn\" href=\"{}\">{}</a></p>",
                        lang.t("正在跳转到商户页面…", "Taking you back to the shop…"),
                        esc(u),
                        lang.t("立即返回商户", "Return to the shop now")
                    ),
                ),
                None => (
                    String::new(),
                    format!(
                        "<p class=\"muted\">{}</p>",
                        lang.t("您可以关闭此页面。", "You can close this page.")
                    ),
                ),
            };
            let body = format!(
                "<div class=\"card\" style=\"text-align:center\"><div class=\"check\">✓</div><h1 data-testid=\"paid\">{}</h1>\
                 <p class=\"big\">{}</p>{extra}</div>",
                lang.t("支付成功", "Payment successful"),
                yuan(paid.charged_fen),
            );
            Html(page(lang, lang.t("支付成功", "Payment successful"), &body, &redirect)).into_response()
        }
        Ok(Err(
            e @ (PayError::WrongPassword { .. }
            | PayError::SmsRequired
            | PayError::SmsInvalid
            | PayError::SmsExpired),
        )) => render_confirm(&sb, token, lang, Some(e.message(lang.en)), false).await,
        Ok(Err(e @ PayError::Locked { .. })) => message_page(
            lang,
            lang.t("支付已锁定", "Payment locked"),
            &e.message(lang.en),
            &format!(
                "<form method=\"post\" action=\"/cashier/{token}/cancel{}\"><button type=\"submit\" data-testid=\"cashier-cancel\">{}</button></form>",
                lang.suffix(),
                lang.t("返回商户", "Return to the shop")
            ),
        ),
        Ok(Err(e)) => render_pay(&sb, token, lang, Some(e.message(lang.en))).await,
        Err(e) => {
            tracing::error!(error = %e, "confirm");
            message_page(lang, "Error", "sandbox error", "")
        }
    }
}

async fn cancel(State(sb): State<Arc<Sandbox>>, Path(token): Path<String>, lang: Lang) -> Response {
    let sb2 = sb.clone();
    let tok = token.clone();
    let target = sb
        .store
        .run(move |c| {
            let Some(s) = model::session(c, &tok)? else { return Ok::<_, StoreError>(None) };
            let p = haitao_alipay::Params::parse_stored(s.params.as_bytes()).unwrap_or_default();
            let biz: serde_json::Value =
                serde_json::from_str(p.get("biz_content").unwrap_or_default()).unwrap_or_default();
            let target = biz
                .get("quit_url")
                .and_then(serde_json::Value::as_str)
                .map(str::to_owned)
                .or_else(|| p.get_nonempty("return_url").map(str::to_owned));
            crate::events::record(
                c,
                sb2.now(),
                "cashier.cancel",
                crate::events::Scope {
                    app_id: Some(&s.app_id),
                    trade_no: s.trade_no.as_deref(),
                    out_trade_no: Some(&s.out_trade_no),
                },
                "buyer left the cashier",
                json!({"to": target}),
            )?;
            Ok(target)
        })
        .await
        .ok()
        .flatten();
    match target {
        Some(url) => Redirect::to(&url).into_response(),
        None => message_page(
            lang,
            lang.t("已取消", "Cancelled"),
            lang.t("您已取消付款，可以关闭此页面。", "You cancelled the payment. You can close this page."),
            "",
        ),
    }
}

async fn inbox(State(sb): State<Arc<Sandbox>>, Path(phone): Path<String>, lang: Lang) -> Response {
    let rows: Result<Vec<(String, String, Stamp, i64)>, StoreError> = sb
        .store
        .run(move |c| {
            let mut st = c.prepare("SELECT code, purpose, created_at, used FROM sms_inbox WHERE phone = ?1 ORDER BY id DESC LIMIT 20")?;
            let rows = st
                .query_map([phone], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?
                .collect::<Result<Vec<_>, _>>()?;
            Ok::<_, StoreError>(rows)
        })
        .await;
    let rows = match rows {
        Ok(rows) => rows,
        Err(e) => return unreadable_store(lang, &e),
    };
    let mut table = format!(
        "<table><tr><th>{}</th><th>{}</th><th>{}</th></tr>",
        lang.t("验证码", "Code"),
        lang.t("时间", "Time"),
        lang.t("状态", "State")
    );
    for (code, _purpose, at, used) in rows {
        table.push_str(&format!(
            "<tr><td data-testid=\"sms-code\" class=\"big\">{}</td><td>{}</td><td>{}</td></tr>",
            esc(&code),
            esc(&format_alipay(at.0)),
            if used == 1 { lang.t("已使用", "used") } else { lang.t("未使用", "unused") }
        ));
    }
    table.push_str("</table>");
    let body = format!(
        "<div class=\"card\"><h1>{}</h1>{table}</div>",
        lang.t("沙箱手机收件箱", "Sandbox phone inbox")
    );
    Html(page(lang, lang.t("短信", "SMS"), &body, "<meta http-equiv=\"refresh\" content=\"5\">"))
        .into_response()
}

async fn home(State(sb): State<Arc<Sandbox>>, lang: Lang) -> Response {
    let personas = match sb.store.run(|c| model::buyers(c)).await {
        Ok(personas) => personas,
        Err(e) => return unreadable_store(lang, &e),
    };
    let mut rows = String::new();
    for p in personas {
        rows.push_str(&format!(
            "<tr><td>{}</td><td>{}</td><td>{}</td><td><a href=\"/phone/{}/sms\">{}</a></td></tr>",
            esc(&p.real_name),
            esc(&p.login),
            esc(lang.t(&p.description.zh, &p.description.en)),
            esc(&p.phone),
            esc(&p.phone)
        ));
    }
    let body = format!(
        "<div class=\"card\"><h1>{}</h1><p>{} <code>{}</code></p><p>{} <code>{}</code></p></div>\
         <div class=\"card\"><h2>{}</h2><table><tr><th>{}</th><th>{}</th><th>{}</th><th>{}</th></tr>{rows}</table>\
         <p class=\"muted\">{}</p></div>",
        lang.t("Haitao 支付宝沙箱", "Haitao Alipay sandbox"),
        lang.t("网关地址", "Gateway"),
        esc(sb.gateway_url().as_str()),
        lang.t("沙箱支付宝公钥", "Sandbox Alipay public key"),
        esc(&sb.public_key().to_base64()),
        lang.t("测试买家", "Test buyers"),
        lang.t("姓名", "Name"),
        lang.t("账号", "Account"),
        lang.t("说明", "About"),
        lang.t("手机（短信收件箱）", "Phone (SMS inbox)"),
        lang.t("所有登录密码和支付密码均为 111111。", "Every login and payment password is 111111."),
    );
    Html(page(lang, "Haitao sandbox", &body, "")).into_response()
}
