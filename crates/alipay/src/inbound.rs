//! Messages Alipay sends to the merchant: asynchronous notifications (a form POST to `notify_url`)
//! and the buyer's return redirect (a GET to `return_url`).
//!
//! Both are parsed from their raw bytes (decoded exactly once), verified with the "V1" rule
//! (`sign` and `sign_type` excluded), checked against the app and seller, and finally against the
//! order the merchant expected. Only then do they become a typed event.

use chrono::{DateTime, Utc};

use crate::api::{FundBill, TradeStatus};
use crate::money::{AmountText, Money};
use crate::params::{Charset, Limits, ParamError, Params};
use crate::request::AppConfig;
use crate::sign::{SignType, Verifier, VerifyError};

/// The exact body a merchant answers a notification with. Anything else makes Alipay retry.
pub const NOTIFY_ACK: &str = "success";

/// Which parameters the signature covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SignRule {
    /// `sign` and `sign_type` excluded: payment notifications and return redirects.
    #[default]
    V1,
    /// Only `sign` excluded: service-market and life-account messages.
    V2,
    /// Accept either (what the Node SDK's `checkNotifySign` does). Weaker; for odd integrations only.
    Either,
}

/// Why an inbound message was refused. Nothing should change state on any of these.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    #[error("malformed message: {0}")]
    Malformed(#[from] ParamError),
    #[error("field {field} is invalid: {reason}")]
    BadField { field: &'static str, reason: String },
    #[error("sign_type {got:?} does not match the app's {expected}")]
    SignTypeMismatch { got: String, expected: SignType },
    #[error("signature check failed: {0}")]
    BadSignature(#[from] VerifyError),
    #[error("the message is for app {got:?}, not this app")]
    WrongApp { got: String },
    #[error("the message is for seller {got:?}, not this merchant")]
    WrongSeller { got: String },
    #[error("no order {0:?} is waiting for this payment")]
    UnknownOrder(String),
    #[error("amount {got} does not match the order's {expected}")]
    AmountMismatch { expected: Money, got: String },
}

/// Verifies inbound messages for one app.
#[derive(Debug, Clone)]
pub struct InboundVerifier {
    app_id: String,
    seller_id: Option<String>,
    verifier: Verifier,
    /// Certificate mode: Alipay certificates rotated in since configuration also verify.
    cert_mode: Option<std::sync::Arc<crate::cert::CertMode>>,
    sign_type: SignType,
    rule: SignRule,
    limits: Limits,
}

/// What the merchant expected for the order a message names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Expected {
    pub total_amount: Money,
}

/// A verified `trade_status_sync` notification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notify {
    pub notify_id: String,
    pub notify_type: String,
    pub notify_time: DateTime<Utc>,
    pub app_id: String,
    pub out_trade_no: String,
    pub trade_no: String,
    pub trade_status: TradeStatus,
    pub total_amount: AmountText,
    pub receipt_amount: Option<AmountText>,
    pub buyer_pay_amount: Option<AmountText>,
    pub refund_fee: Option<AmountText>,
    pub buyer_id: Option<String>,
    pub buyer_logon_id: Option<String>,
    pub seller_id: Option<String>,
    pub gmt_payment: Option<DateTime<Utc>>,
    pub gmt_close: Option<DateTime<Utc>>,
    pub gmt_refund: Option<DateTime<Utc>>,
    pub out_biz_no: Option<String>,
    pub fund_bill_list: Vec<FundBill>,
    pub passback_params: Option<String>,
    /// Every parameter as received, for the audit trail.
    pub params: Params,
}

/// A verified return redirect. It proves the buyer's browser came back with Alipay-signed
/// parameters; it is never by itself proof that the order is paid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReturnRedirect {
    pub app_id: String,
    pub method: Option<String>,
    pub out_trade_no: String,
    pub trade_no: String,
    pub total_amount: AmountText,
    pub seller_id: Option<String>,
    pub timestamp: Option<DateTime<Utc>>,
    pub params: Params,
}

/// A verified message matched against its order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Matched<T> {
    pub message: T,
    pub amount: Money,
}

fn opt_time(p: &Params, field: &'static str) -> Result<Option<DateTime<Utc>>, Rejection> {
    p.get_nonempty(field)
        .map(|t| {
            crate::time::parse_alipay(t).map_err(|e| Rejection::BadField { field, reason: e.to_string() })
        })
        .transpose()
}

fn opt_amount(p: &Params, field: &'static str) -> Result<Option<AmountText>, Rejection> {
    p.get_nonempty(field)
        .map(|t| t.parse::<AmountText>().map_err(|e| Rejection::BadField { field, reason: e.to_string() }))
        .transpose()
}

fn amount(p: &Params, field: &'static str) -> Result<AmountText, Rejection> {
    opt_amount(p, field)?.ok_or(Rejection::Malformed(ParamError::Missing(field)))
}

fn check_amount(text: &AmountText, expected: &Expected) -> Result<Money, Rejection> {
    match text.to_money(expected.total_amount.currency()) {
        Ok(m) if m == expected.total_amount => Ok(m),
        _ => Err(Rejection::AmountMismatch { expected: expected.total_amount, got: text.to_string() }),
    }
}

impl InboundVerifier {
    pub fn new(
        app_id: impl Into<String>,
        seller_id: Option<String>,
        verifier: Verifier,
        sign_type: SignType,
    ) -> Self {
        InboundVerifier {
            app_id: app_id.into(),
            seller_id,
            verifier,
            cert_mode: None,
            sign_type,
            rule: SignRule::V1,
            limits: Limits::default(),
        }
    }

    pub fn from_config(config: &AppConfig) -> Self {
        let mut v = Self::new(
            config.app_id.clone(),
            config.seller_id.clone(),
            config.verifier.clone(),
            config.sign_type(),
        );
        v.cert_mode = config.cert_mode.clone();
        v
    }

    pub fn with_rule(mut self, rule: SignRule) -> Self {
        self.rule = rule;
        self
    }

    /// Parses and verifies the parameters: signature, app and seller.
    fn verify_params(&self, raw: &[u8]) -> Result<Params, Rejection> {
        let (p, _charset) = Params::parse_urlencoded(raw, Charset::Utf8, self.limits)?;
        let sign = p.get("sign").ok_or(Rejection::BadSignature(VerifyError::Missing))?;
        let declared = p.get_nonempty("sign_type").unwrap_or(self.sign_type.as_str());
        if declared != self.sign_type.as_str() {
            return Err(Rejection::SignTypeMismatch {
                got: declared.chars().take(16).collect(),
                expected: self.sign_type,
            });
        }
        let check = |content: String| match self.verifier.verify(self.sign_type, &content, sign) {
            Ok(()) => Ok(()),
            // Notifications do not name the certificate: any Alipay certificate known may have signed.
            Err(e) => match &self.cert_mode {
                Some(certs)
                    if certs
                        .alipay_keys()
                        .into_iter()
                        .any(|k| Verifier::new(k).verify(self.sign_type, &content, sign).is_ok()) =>
                {
                    Ok(())
                }
                _ => Err(e),
            },
        };
        match self.rule {
            SignRule::V1 => check(p.v1_sign_content())?,
            SignRule::V2 => check(p.v2_sign_content())?,
            SignRule::Either => {
                if let Err(e) = check(p.v1_sign_content()) {
                    check(p.v2_sign_content()).map_err(|_| e)?;
                }
            }
        }
        let app = p.get("app_id").unwrap_or_default();
        // ISV notifications carry the merchant's app in auth_app_id; either may name us.
        let auth_app = p.get("auth_app_id").unwrap_or_default();
        if app != self.app_id && auth_app != self.app_id {
            return Err(Rejection::WrongApp { got: app.chars().take(40).collect() });
        }
        if let (Some(expected), Some(got)) = (&self.seller_id, p.get_nonempty("seller_id"))
            && got != expected
        {
            return Err(Rejection::WrongSeller { got: got.chars().take(40).collect() });
        }
        Ok(p)
    }

    /// Verifies a notification from its raw form body.
    pub fn notify(&self, raw_body: &[u8]) -> Result<Notify, Rejection> {
        let p = self.verify_params(raw_body)?;
        let trade_status = p
            .require("trade_status")?
            .parse::<TradeStatus>()
            .map_err(|reason| Rejection::BadField { field: "trade_status", reason })?;
        let notify_time =
            opt_time(&p, "notify_time")?.ok_or(Rejection::Malformed(ParamError::Missing("notify_time")))?;
        let fund_bill_list = match p.get_nonempty("fund_bill_list") {
            Some(json) => serde_json::from_str(json)
                .map_err(|e| Rejection::BadField { field: "fund_bill_list", reason: e.to_string() })?,
            None => Vec::new(),
        };
        Ok(Notify {
            notify_id: p.require("notify_id")?.to_owned(),
            notify_type: p.require("notify_type")?.to_owned(),
            notify_time,
            app_id: p.require("app_id")?.to_owned(),
            out_trade_no: p.require("out_trade_no")?.to_owned(),
            trade_no: p.require("trade_no")?.to_owned(),
            trade_status,
            total_amount: amount(&p, "total_amount")?,
            receipt_amount: opt_amount(&p, "receipt_amount")?,
            buyer_pay_amount: opt_amount(&p, "buyer_pay_amount")?,
            refund_fee: opt_amount(&p, "refund_fee")?,
            buyer_id: p.get_nonempty("buyer_id").map(str::to_owned),
            buyer_logon_id: p.get_nonempty("buyer_logon_id").map(str::to_owned),
            seller_id: p.get_nonempty("seller_id").map(str::to_owned),
            gmt_payment: opt_time(&p, "gmt_payment")?,
            gmt_close: opt_time(&p, "gmt_close")?,
            gmt_refund: opt_time(&p, "gmt_refund")?,
            out_biz_no: p.get_nonempty("out_biz_no").map(str::to_owned),
            fund_bill_list,
            passback_params: p.get_nonempty("passback_params").map(str::to_owned),
            params: p,
        })
    }

    /// Verifies a return redirect from its raw query string.
    pub fn return_redirect(&self, raw_query: &str) -> Result<ReturnRedirect, Rejection> {
        let p = self.verify_params(raw_query.as_bytes())?;
        Ok(ReturnRedirect {
            app_id: p.require("app_id")?.to_owned(),
            method: p.get_nonempty("method").map(str::to_owned),
            out_trade_no: p.require("out_trade_no")?.to_owned(),
            trade_no: p.require("trade_no")?.to_owned(),
            total_amount: amount(&p, "total_amount")?,
            seller_id: p.get_nonempty("seller_id").map(str::to_owned),
            timestamp: opt_time(&p, "timestamp")?,
            params: p,
        })
    }
}

impl Notify {
    /// Matches the notification with the order it names. `None` means no such order is known.
    pub fn matched(self, expected: Option<&Expected>) -> Result<Matched<Notify>, Rejection> {
        let expected = expected.ok_or_else(|| Rejection::UnknownOrder(self.out_trade_no.clone()))?;
        let amount = check_amount(&self.total_amount, expected)?;
        Ok(Matched { message: self, amount })
    }
}

impl ReturnRedirect {
    pub fn matched(self, expected: Option<&Expected>) -> Result<Matched<ReturnRedirect>, Rejection> {
        let expected = expected.ok_or_else(|| Rejection::UnknownOrder(self.out_trade_no.clone()))?;
        let amount = check_amount(&self.total_amount, expected)?;
        Ok(Matched { message: self, amount })
    }
}

/// Signs a notification or return redirect the way Alipay does (V1: `sign_type` is added to the
/// parameters but not covered by the signature). Used by gateways such as Haitao's sandbox.
pub fn sign_v1(mut params: Params, signer: &crate::sign::Signer) -> Result<Params, crate::sign::SignError> {
    params.remove("sign");
    params.set("sign_type", signer.sign_type().as_str());
    let sig = signer.sign(&params.v1_sign_content())?;
    params.set("sign", sig);
    Ok(params)
}
