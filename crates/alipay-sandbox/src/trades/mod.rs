//! The trade state machine and every API's business rules: page/wap/precreate sessions, payment at
//! the cashier, query, close, cancel, refund, refund query, customs declaration, timeouts.
//!
//! ```text
//! (buyer logs in / scans) ─► WAIT_BUYER_PAY ─pay─► TRADE_SUCCESS ─refunds reach 100%─► TRADE_CLOSED
//!                                  └─timeout / close / cancel─► TRADE_CLOSED
//! ```
//!
//! One module per aggregate:
//!
//! - [`session`]: page requests, cashier sessions, deadlines and expiry, a buyer attaching to a trade.
//! - [`channels`]: the ways to pay a buyer is offered, with card surcharges and Huabei installments.
//! - [`card`]: cards typed in at the cashier (Luhn, brand, expiry, CVC) and SMS codes.
//! - [`pay`]: confirming a payment, the signed return redirect and the asynchronous notifications.
//! - [`refund`]: refunds and refund queries.
//! - [`customs`]: customs declarations of paid trades.
//! - [`face_to_face`]: trades the merchant starts for a known buyer (payment code, trade.create).
//! - [`query`]: the server-to-server trade APIs (query, precreate, close, cancel) and the expiry timer.
//!
//! What they share lives here: the call context, failure answers, trade lookup, amount texts and the
//! request digest. Foreign amounts convert to CNY at the demo rates of [`haitao_alipay::fx`], the
//! ones the shop prices goods with.

pub mod card;
pub mod channels;
pub mod customs;
pub mod face_to_face;
pub mod pay;
pub mod query;
pub mod refund;
pub mod session;

pub use card::{CardInput, check_card, send_sms};
pub use channels::{ChannelOption, channel_options};
pub use customs::customs_declare;
pub use pay::{Choice, Confirmation, PayError, pay};
pub use query::{cancel, close, expire_due, precreate, query, query_read_only};
pub use refund::{refund, refund_query};
pub use session::{PageRequest, attach_buyer, deadline, open_session, page_request_from, session_request};

use chrono::{DateTime, Utc};
use haitao_alipay::api::{PagePay, TradeRef};
use haitao_alipay::money::{Currency, Money};
use haitao_alipay::status::{Status, acq};
use rusqlite::Connection;
use serde_json::Value;

use self::session::expire_if_due;
use crate::Sandbox;
use crate::events::{self, Scope};
use crate::model::{self, App, Buyer, Trade};

/// Whether an answer leaves the outcome open (the merchant must query): what was done stays.
pub(crate) fn certainty_unknown(s: &Status) -> bool {
    haitao_alipay::GatewayError { status: s.clone() }.is_result_unknown()
}

/// A business failure answer (`40004` + `ACQ.*`).
pub fn biz(sub_code: &str, sub_msg: &str) -> Status {
    Status::failure("40004", sub_code, sub_msg)
}

fn invalid(msg: impl Into<String>) -> Status {
    Status::failure("40004", acq::INVALID_PARAMETER, msg)
}

fn store_err(e: impl std::fmt::Display) -> Status {
    tracing::error!(error = %e, "sandbox store error");
    Status::failure("40004", acq::SYSTEM_ERROR, "系统错误")
}

/// Everything an API call works with: one transaction, the app, the sandbox clock.
#[derive(Debug)]
pub struct Ctx<'a> {
    pub conn: &'a Connection,
    pub sb: &'a Sandbox,
    pub app: &'a App,
    pub now: DateTime<Utc>,
}

impl Ctx<'_> {
    fn scope<'b>(&'b self, trade: Option<&'b Trade>, out_trade_no: Option<&'b str>) -> Scope<'b> {
        Scope {
            app_id: Some(&self.app.app_id),
            trade_no: trade.map(|t| t.trade_no.as_str()),
            out_trade_no: out_trade_no.or(trade.map(|t| t.out_trade_no.as_str())),
        }
    }

    pub fn event(
        &self,
        kind: &str,
        trade: Option<&Trade>,
        out: Option<&str>,
        summary: impl Into<String>,
        detail: Value,
    ) {
        if let Err(e) = events::record(self.conn, self.now, kind, self.scope(trade, out), summary, detail) {
            tracing::warn!(error = %e, "could not record event");
        }
    }
}

fn digest(parts: &[&str]) -> String {
    let d = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, parts.join("\u{1f}").as_bytes());
    d.as_ref().iter().take(16).map(|b| format!("{b:02x}")).collect()
}

/// The fields whose change makes a reused `out_trade_no` inconsistent.
fn page_digest(p: &PagePay) -> String {
    let ext = p.extend_params.clone().unwrap_or_default();
    digest(&[
        p.total_amount.as_str(),
        p.trans_currency.map(|c| c.code()).unwrap_or("CNY"),
        &p.subject,
        &serde_json::to_string(&ext.hb_fq_num).unwrap_or_default(),
        &serde_json::to_string(&ext.hb_fq_seller_percent).unwrap_or_default(),
        &serde_json::to_string(&p.enable_pay_channels).unwrap_or_default(),
        &serde_json::to_string(&p.disable_pay_channels).unwrap_or_default(),
    ])
}

/// The trade a request names, as stored: a trade whose deadline passed is still open here.
fn look_up(ctx: &Ctx<'_>, r: &TradeRef) -> Result<Option<Trade>, Status> {
    match (&r.trade_no, &r.out_trade_no) {
        (Some(no), _) => model::trade_by_no(ctx.conn, &ctx.app.app_id, no).map_err(store_err),
        (None, Some(out)) => model::trade_by_out(ctx.conn, &ctx.app.app_id, out).map_err(store_err),
        (None, None) => Err(invalid("out_trade_no 和 trade_no 不能同时为空")),
    }
}

/// The trade a request names, closed first if its deadline passed.
fn find(ctx: &Ctx<'_>, r: &TradeRef) -> Result<Option<Trade>, Status> {
    look_up(ctx, r)?.map(|t| expire_if_due(ctx, t)).transpose()
}

fn masked_logon(b: &Buyer) -> String {
    let (user, domain) = b.login.split_once('@').unwrap_or((&b.login, ""));
    let keep: String = user.chars().take(3).collect();
    if domain.is_empty() { format!("{keep}***") } else { format!("{keep}***@{domain}") }
}

fn amount_text(t: &Trade, minor: i64) -> String {
    let c: Currency = t.currency.parse().unwrap_or(Currency::Cny);
    Money::from_minor(minor, c).to_decimal_string()
}

fn cny_text(fen: i64) -> String {
    Money::from_minor(fen, Currency::Cny).to_decimal_string()
}
