//! OpenAPI v3: `POST /v3/alipay/trade/…` with a JSON body, the request signed into the
//! `Authorization` header, answers signed into `alipay-signature` (errors too, as the sandbox
//! knows the app), errors as `{"code","message","links"}` with a 4xx/5xx status. The same trades as
//! `gateway.do` (one implementation, [`crate::gateway::run_api`]); page payments have no v3 path,
//! as at Alipay.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use haitao_alipay::encrypt::{AesKey, ENCRYPT_TYPE};
use haitao_alipay::params::Params;
use haitao_alipay::status::Status;
use haitao_alipay::v3::{self, Authorization, ErrorBody, Link};
use haitao_alipay::{SignType, Verifier};
use serde_json::json;

use crate::Sandbox;
use crate::events;
use crate::gateway::{METHODS, Ran, ReadBiz, dropped, read_biz, run_api};
use crate::model::{self, App, digits};
use crate::scenarios::Outcome;

/// Methods with a v3 path: those the sandbox implements that Alipay serves under `/v3`.
fn has_v3_path(method: &str) -> bool {
    METHODS.contains(&method) && v3::has_path(method)
}

/// An error answer; signed when the app is known.
struct V3Error {
    status: StatusCode,
    code: String,
    message: String,
}

fn err(status: StatusCode, code: &str, message: &str) -> V3Error {
    V3Error { status, code: code.to_owned(), message: message.to_owned() }
}

/// The v3 form of a v2 status: business codes (`ACQ.*`) as they are, the gateway's `isv.`/`isp.`
/// codes without the prefix; 401 for a bad signature, 500 when the outcome is unknown.
fn from_status(s: &Status) -> V3Error {
    let sub = s.sub_code.clone().unwrap_or_else(|| s.code.clone());
    let message = s.sub_msg.clone().unwrap_or_else(|| s.msg.clone());
    let code = sub.strip_prefix("isv.").or_else(|| sub.strip_prefix("isp.")).unwrap_or(&sub).to_owned();
    let status = match (s.code.as_str(), code.as_str()) {
        ("20000", _) => StatusCode::INTERNAL_SERVER_ERROR,
        (_, "invalid-signature" | "invalid-app-id") => StatusCode::UNAUTHORIZED,
        _ => StatusCode::BAD_REQUEST,
    };
    V3Error { status, code, message }
}

/// A random lowercase-hex identifier (trace ids and answer nonces).
fn hex_id() -> String {
    let mut bytes = [0u8; 16];
    if aws_lc_rs::rand::fill(&mut bytes).is_err() {
        return digits(32);
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// An answer with its signature headers (when an app's key is known to sign it).
async fn answer(
    sb: &Arc<Sandbox>,
    app: Option<&App>,
    status: StatusCode,
    body: String,
) -> (Response, String) {
    let timestamp = sb.now().timestamp_millis().to_string();
    let nonce = hex_id();
    let mut resp = (status, body.clone()).into_response();
    let h = resp.headers_mut();
    let content_type =
        if body.starts_with('{') { "application/json;charset=utf-8" } else { "text/plain;charset=utf-8" };
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    if let Ok(v) = HeaderValue::from_str(&hex_id()) {
        h.insert(v3::header::TRACE_ID, v);
    }
    let Some(app) = app else { return (resp, body) };
    let signer = sb.answer_signer(app, SignType::Rsa2).await;
    match signer.and_then(|(s, sn)| {
        let sig = s.sign(&v3::response_sign_content(&timestamp, &nonce, &body)).map_err(|e| e.to_string())?;
        Ok((sig, sn))
    }) {
        Ok((sig, sn)) => {
            let h = resp.headers_mut();
            for (name, value) in [
                (v3::header::TIMESTAMP, Some(timestamp)),
                (v3::header::NONCE, Some(nonce)),
                (v3::header::SIGNATURE, Some(sig)),
                (v3::header::SN, sn),
            ] {
                if let Some(v) = value.and_then(|v| HeaderValue::from_str(&v).ok()) {
                    h.insert(name, v);
                }
            }
        }
        Err(e) => tracing::error!(error = %e, "no key signs this v3 answer"),
    }
    (resp, body)
}

async fn error_answer(sb: &Arc<Sandbox>, app: Option<&App>, e: V3Error) -> Response {
    let body = ErrorBody {
        links: vec![Link {
            link: format!("{}sandbox/api/events", sb.base_url()),
            desc: "解决方案：沙箱的报文记录".into(),
        }],
        code: e.code,
        message: e.message,
    };
    answer(sb, app, e.status, serde_json::to_string(&body).unwrap_or_default()).await.0
}

/// `/v3/{path}`: checks in Alipay's order (path, Authorization, app, certificate serial numbers,
/// encryption, signature), runs the method, answers.
pub async fn call(
    State(sb): State<Arc<Sandbox>>,
    http_method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some(method) = v3::method_of(uri.path()).filter(|m| has_v3_path(m)) else {
        return error_answer(&sb, None, err(StatusCode::NOT_FOUND, "invalid-method", "不存在的方法名")).await;
    };
    if http_method != Method::POST {
        return error_answer(
            &sb,
            None,
            err(StatusCode::METHOD_NOT_ALLOWED, "invalid-method", "此接口只支持 POST"),
        )
        .await;
    }
    let auth = match headers.get(header::AUTHORIZATION).map(|v| v.to_str().unwrap_or("")) {
        None => Err(v3::AuthError::Missing),
        Some(v) => Authorization::parse(v),
    };
    let auth = match auth {
        Ok(a) => a,
        Err(e) => {
            let code = match e {
                v3::AuthError::Missing | v3::AuthError::NoSign => "missing-signature",
                v3::AuthError::MissingField("timestamp") | v3::AuthError::BadTimestamp => "invalid-timestamp",
                v3::AuthError::MissingField("app_id") => "missing-app-id",
                _ => "invalid-parameter",
            };
            return error_answer(&sb, None, err(StatusCode::BAD_REQUEST, code, &e.to_string())).await;
        }
    };
    let app_id = auth.app_id.clone();
    let app = match sb.store.read(move |c| model::app(c, &app_id)).await {
        Ok(Some(a)) => a,
        Ok(None) => {
            return error_answer(
                &sb,
                None,
                err(StatusCode::UNAUTHORIZED, "invalid-app-id", "无效的AppID参数"),
            )
            .await;
        }
        Err(e) => {
            tracing::error!(error = %e, "store");
            return error_answer(
                &sb,
                None,
                err(StatusCode::INTERNAL_SERVER_ERROR, "unknow-error", "系统繁忙"),
            )
            .await;
        }
    };
    match run_checked(&sb, &app, &method, &uri, &headers, &body, &auth).await {
        Ok(resp) => resp,
        Err(e) => error_answer(&sb, Some(&app), e).await,
    }
}

/// Everything after the app is known: refusals are signed answers.
async fn run_checked(
    sb: &Arc<Sandbox>,
    app: &App,
    method: &str,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
    auth: &Authorization,
) -> Result<Response, V3Error> {
    let now = sb.now();
    if let Some(max) = sb.options.max_clock_skew
        && auth.timestamp_ms.abs_diff(now.timestamp_millis()) > max.num_milliseconds().unsigned_abs()
    {
        return Err(err(StatusCode::BAD_REQUEST, "invalid-timestamp", "时间戳与网关时间偏差过大"));
    }
    let head = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
    // Certificate mode: the app's certificate in Authorization, the root's in a header.
    if let Some(app_cert) = &app.app_cert {
        let Some(sn) = &auth.app_cert_sn else {
            return Err(err(StatusCode::BAD_REQUEST, "missing-app-cert-sn", "缺少应用公钥证书序列号"));
        };
        if sb.app_cert_sn(app_cert).ok().as_deref() != Some(sn.as_str()) {
            return Err(err(StatusCode::BAD_REQUEST, "app-cert-not-exist", "应用公钥证书不存在"));
        }
        let Some(root) = head(v3::header::ROOT_CERT_SN) else {
            return Err(err(
                StatusCode::BAD_REQUEST,
                "missing-alipay-root-cert-sn",
                "缺少支付宝根证书序列号",
            ));
        };
        let expected = sb.root_cert_sn().await.ok();
        if expected.as_deref() != Some(root.as_str()) {
            return Err(err(
                StatusCode::BAD_REQUEST,
                "invalid-alipay-root-cert-sn",
                "无效的支付宝根证书序列号",
            ));
        }
    }
    let aes = match head(v3::header::ENCRYPT_TYPE).as_deref() {
        None => None,
        Some(ENCRYPT_TYPE) => match app.aes_key.as_deref().map(AesKey::parse) {
            Some(Ok(k)) => Some(k),
            _ => {
                return Err(err(
                    StatusCode::BAD_REQUEST,
                    "decryption-error-not-valid-encrypt-key",
                    "解密出错, 未配置加密密钥或加密密钥格式错误",
                ));
            }
        },
        Some(_) => {
            return Err(err(
                StatusCode::BAD_REQUEST,
                "decryption-error-not-valid-encrypt-type",
                "解密出错，不支持的加密算法",
            ));
        }
    };
    let Ok(text) = std::str::from_utf8(body) else {
        return Err(err(StatusCode::BAD_REQUEST, "invalid-parameter", "请求报文不是 UTF-8 文本"));
    };
    let key = sb.merchant_key(&app.public_key).map_err(|_| {
        err(StatusCode::BAD_REQUEST, "missing-signature-config", "应用未配置对应签名算法的公钥")
    })?;
    let path_and_query = uri.path_and_query().map(|p| p.as_str()).unwrap_or(uri.path());
    let token = head(v3::header::APP_AUTH_TOKEN);
    let signed_string = v3::request_sign_content(&auth.auth, "POST", path_and_query, text, token.as_deref());
    let verified = auth.verify(&Verifier::new(key), "POST", path_and_query, text, token.as_deref()).is_ok();
    let ReadBiz { decrypted, biz_text, biz, out_trade_no } = read_biz(text, aes.as_ref(), verified);
    events::record_later(
        &sb.store,
        now,
        "gateway.request",
        Some(app.app_id.clone()),
        out_trade_no.clone(),
        format!("{method} (v3): request signature {}", if verified { "verified" } else { "INVALID" }),
        json!({
            "method": method,
            "protocol": "v3",
            "authorization": head(header::AUTHORIZATION.as_str()),
            "root_cert_sn": head(v3::header::ROOT_CERT_SN),
            "body": text,
            "signed_string": signed_string,
            "signature_valid": verified,
            "biz_content_decrypted": decrypted.as_ref().and_then(|d| d.as_ref().ok()),
        }),
    );
    if !verified {
        return Err(err(
            StatusCode::UNAUTHORIZED,
            "invalid-signature",
            "验签出错，建议检查签名字符串或签名私钥与应用公钥是否匹配",
        ));
    }
    if let Some(Err(_)) = decrypted {
        return Err(err(StatusCode::BAD_REQUEST, "decryption-error-unknown", "解密出错, 未知错误"));
    }
    if !biz.is_object() {
        return Err(err(StatusCode::BAD_REQUEST, "invalid-parameter", "请求报文不是 JSON 对象"));
    }
    let mut params = Params::new();
    params.set("biz_content", biz_text);
    let (fault, status, out) = match run_api(sb, app, method, params, out_trade_no.clone(), &biz).await {
        Ran::GatewayError => {
            return Ok((StatusCode::BAD_GATEWAY, "<html><body>502 Bad Gateway</body></html>").into_response());
        }
        Ran::Done { fault, status, body } => (fault, status, body),
    };
    let (resp, sent) = if status.is_success() {
        let mut text = out.to_string();
        if let Some(k) = &aes {
            text = k
                .encrypt(&text)
                .map_err(|e| err(StatusCode::INTERNAL_SERVER_ERROR, "unknow-error", &e.to_string()))?;
        }
        answer(sb, Some(app), StatusCode::OK, text).await
    } else {
        let e = from_status(&status);
        let body = ErrorBody { code: e.code, message: e.message, links: Vec::new() };
        answer(sb, Some(app), e.status, serde_json::to_string(&body).unwrap_or_default()).await
    };
    events::record_later(
        &sb.store,
        now,
        "gateway.response",
        Some(app.app_id.clone()),
        out_trade_no,
        format!(
            "{method} (v3): {} {}",
            status.code,
            status.sub_code.clone().unwrap_or_else(|| status.msg.clone())
        ),
        json!({
            "method": method,
            "protocol": "v3",
            "status": resp.status().as_u16(),
            "body": sent,
            "forced": fault.map(|f| f.as_str()),
        }),
    );
    Ok(match fault {
        Some(Outcome::ResultUnknown) => {
            let body = json!({"code": "unknow-error", "message": "服务暂不可用（结果未知）"}).to_string();
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                [(header::CONTENT_TYPE, "application/json;charset=utf-8")],
                body,
            )
                .into_response()
        }
        Some(Outcome::DropConnection) => dropped(),
        _ => resp,
    })
}
