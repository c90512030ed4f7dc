//! `POST /sandbox/api/events/replay`: takes an export (`GET /sandbox/api/events/export`, from
//! this sandbox or another), registers the apps it names that this sandbox does not have (same
//! app id and key), and sends every request of it again to this gateway, in order and byte for
//! byte as recorded (the merchant's signatures still hold), then compares each answer's code with
//! the one recorded. Buyers' payments at the cashier or through the tester API are not requests and
//! are not replayed, so answers that depend on them differ, and the result says which.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use haitao_alipay::encrypt::AesKey;
use haitao_alipay::params::Charset;
use haitao_alipay::response::{extract, response_key};
use haitao_sandbox_api::{Event, EventExport, Replayed, ReplayedRequest};
use serde_json::Value;

use crate::Sandbox;
use crate::controls::{Body, ControlError, register_app};
use crate::model::{self, App};

/// Methods answered with a page (a redirect to the cashier, or an error page): their code is the
/// HTTP status.
const PAGES: [&str; 3] = ["alipay.trade.page.pay", "alipay.trade.wap.pay", "alipay.trade.app.pay"];

/// The code of a `gateway.do` answer body: `10000`, or `40004 ACQ.TRADE_NOT_EXIST` (an encrypted
/// answer read with the app's key).
fn v2_code(method: &str, body: &str, key: Option<&AesKey>) -> String {
    let Ok(env) = extract(body, &response_key(method)) else { return "unreadable".into() };
    let Ok(plain) = env.plain(key) else { return "undecryptable".into() };
    let node: Value = serde_json::from_str(&plain).unwrap_or(Value::Null);
    let code = node["code"].as_str().unwrap_or("?");
    match node["sub_code"].as_str() {
        Some(sub) if code != "10000" => format!("{code} {sub}"),
        _ => code.to_owned(),
    }
}

/// The code of a v3 answer: `200`, or `400 ACQ.TRADE_NOT_EXIST`.
fn v3_code(status: u16, body: &str) -> String {
    if (200..300).contains(&status) {
        return status.to_string();
    }
    let v: Value = serde_json::from_str(body).unwrap_or(Value::Null);
    format!("{status} {}", v["code"].as_str().unwrap_or("?"))
}

/// What was answered to the request at `index`: the next answer of the same app and method.
fn original(events: &[Event], index: usize, key: Option<&AesKey>) -> Option<String> {
    let req = &events[index];
    let method = req.detail["method"].as_str()?;
    let answer = events[index + 1..].iter().find(|e| {
        e.kind == "gateway.response" && e.app_id == req.app_id && e.detail["method"].as_str() == Some(method)
    })?;
    if answer.detail["protocol"] == "v3" {
        let status = u16::try_from(answer.detail["status"].as_u64()?).ok()?;
        return Some(v3_code(status, answer.detail["body"].as_str().unwrap_or_default()));
    }
    match answer.detail["code"].as_str() {
        Some("20000") | Some("dropped") => answer.detail["code"].as_str().map(str::to_owned),
        _ => Some(v2_code(method, answer.detail["body"].as_str()?, key)),
    }
}

/// `k=v&…` of the recorded parameters, each value's bytes in the request's charset.
fn form(params: &serde_json::Map<String, Value>) -> Option<(String, Charset)> {
    let charset = params
        .get("charset")
        .and_then(Value::as_str)
        .map(Charset::parse)
        .transpose()
        .ok()?
        .unwrap_or(Charset::Utf8);
    let mut out = Vec::new();
    for (k, v) in params {
        let bytes = charset.encode(v.as_str()?)?;
        let v: String = url::form_urlencoded::byte_serialize(&bytes).collect();
        let k: String = url::form_urlencoded::byte_serialize(k.as_bytes()).collect();
        out.push(format!("{k}={v}"));
    }
    Some((out.join("&"), charset))
}

/// Sends one recorded request again; returns the protocol and the answer's code.
async fn resend(sb: &Sandbox, http: &reqwest::Client, e: &Event, key: Option<&AesKey>) -> (String, String) {
    let method = e.detail["method"].as_str().unwrap_or_default().to_owned();
    if e.detail["protocol"] == "v3" {
        let url = match sb.base_url().join(&haitao_alipay::v3::path_of(&method)) {
            Ok(u) => u,
            Err(err) => return ("v3".into(), format!("unsendable: {err}")),
        };
        let mut req = http
            .post(url)
            .header("authorization", e.detail["authorization"].as_str().unwrap_or_default())
            .body(e.detail["body"].as_str().unwrap_or_default().to_owned());
        req = if e.detail["biz_content_decrypted"].is_string() {
            req.header("content-type", "text/plain").header("alipay-encrypt-type", "AES")
        } else {
            req.header("content-type", "application/json")
        };
        if let Some(root) = e.detail["root_cert_sn"].as_str() {
            req = req.header("alipay-root-cert-sn", root);
        }
        return match req.send().await {
            Ok(r) => {
                let status = r.status().as_u16();
                ("v3".into(), v3_code(status, &r.text().await.unwrap_or_default()))
            }
            Err(err) => ("v3".into(), format!("no answer: {err}")),
        };
    }
    let Some((body, charset)) = e.detail["params"].as_object().and_then(form) else {
        return ("v2".into(), "unsendable: parameters not text in their charset".into());
    };
    let sent = http
        .post(sb.gateway_url())
        .header("content-type", format!("application/x-www-form-urlencoded;charset={}", charset.as_str()))
        .body(body)
        .send()
        .await;
    match sent {
        Ok(r) if PAGES.contains(&method.as_str()) => ("v2".into(), r.status().as_u16().to_string()),
        Ok(r) => {
            let bytes = r.bytes().await.unwrap_or_default();
            let text = charset.decode(&bytes).unwrap_or_default();
            ("v2".into(), v2_code(&method, &text, key))
        }
        Err(err) => ("v2".into(), format!("no answer: {err}")),
    }
}

pub(crate) async fn replay(
    State(sb): State<Arc<Sandbox>>,
    Body(export): Body<EventExport>,
) -> Result<Json<Replayed>, ControlError> {
    let sb2 = sb.clone();
    let apps = export.apps.clone();
    let apps_added = sb
        .store
        .run(move |c| {
            let mut added = Vec::new();
            for a in apps {
                if model::app(c, &a.app_id)?.is_some() {
                    continue;
                }
                let app = App {
                    app_id: a.app_id.clone(),
                    name: if model::app_by_name(c, &a.name)?.is_some() {
                        format!("{} ({})", a.name, a.app_id)
                    } else {
                        a.name
                    },
                    seller_id: a.seller_id,
                    public_key: a.public_key,
                    private_key: None,
                    notify_base: None,
                    created_at: sb2.now(),
                    app_cert: a.app_cert,
                    aes_key: a.aes_key,
                };
                // A certificate-mode app needs this sandbox's authority and Alipay certificate,
                // made here on the writer rather than on first use by a reading request.
                if app.app_cert.is_some() {
                    sb2.alipay_cert(c)?;
                }
                register_app(&sb2, c, &app)?;
                added.push(a.app_id);
            }
            Ok::<_, ControlError>(added)
        })
        .await?;
    // Answers are read as sent: a page request's redirect is its answer, not the cashier.
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(std::time::Duration::from_secs(30))
        .build()
        .map_err(|e| ControlError::internal(e.to_string()))?;
    let mut requests = Vec::new();
    for (i, e) in export.events.iter().enumerate() {
        if e.kind != "gateway.request" {
            continue;
        }
        let key = export
            .apps
            .iter()
            .find(|a| e.app_id.as_deref() == Some(a.app_id.as_str()))
            .and_then(|a| a.aes_key.as_deref())
            .and_then(|k| AesKey::parse(k).ok());
        let (protocol, replayed) = resend(&sb, &http, e, key.as_ref()).await;
        let original = original(&export.events, i, key.as_ref());
        // Page requests were not answered with a recorded code: a redirect to the cashier is the
        // same outcome as before only if the request was valid then, which its signature says.
        let same = match &original {
            Some(o) => *o == replayed,
            None => replayed == "303" && e.detail["signature_valid"] == true,
        };
        requests.push(ReplayedRequest {
            seq: e.seq,
            method: e.detail["method"].as_str().unwrap_or_default().to_owned(),
            protocol,
            original,
            replayed,
            same,
        });
    }
    Ok(Json(Replayed { apps_added, requests }))
}
