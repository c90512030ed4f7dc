//! `/gateway.do`: parameters from the query string, the form body or both; Alipay's checks in
//! Alipay's order (app_id, method, timestamp, sign_type, signature); Alipay's envelopes and codes;
//! every synchronous answer signed over its exact node text.

use std::sync::Arc;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::any;
use haitao_alipay::api::{
    AlipayCertDownload, BillDownloadUrlQuery, Cancel, Close, CustomsDeclare, Query, Refund, RefundQuery,
};
use haitao_alipay::encrypt::{AesKey, ENCRYPT_TYPE};
use haitao_alipay::params::{Charset, Limits, ParamError, Params};
use haitao_alipay::response::{assemble, encode, escape_slashes, response_key};
use haitao_alipay::status::Status;
use haitao_alipay::{SignType, Verifier};
use serde_json::{Value, json};

use crate::Sandbox;
use crate::events;
use crate::html::Lang;
use crate::model::{self, App};
use crate::scenarios::{self, Outcome};
use crate::trades::{self, Ctx};

pub const METHODS: [&str; 14] = [
    "alipay.trade.page.pay",
    "alipay.trade.wap.pay",
    "alipay.trade.app.pay",
    "alipay.trade.precreate",
    "alipay.trade.pay",
    "alipay.trade.create",
    "alipay.trade.query",
    "alipay.trade.close",
    "alipay.trade.cancel",
    "alipay.trade.refund",
    "alipay.trade.fastpay.refund.query",
    "alipay.trade.customs.declare",
    "alipay.open.app.alipaycert.download",
    "alipay.data.dataservice.bill.downloadurl.query",
];

pub fn router(sb: Arc<Sandbox>) -> Router {
    let limit = sb.options.max_body_bytes;
    Router::new()
        .route("/gateway.do", any(gateway_do))
        .route("/v3/{*path}", any(crate::gateway_v3::call))
        .route("/sandbox/bill/{token}", axum::routing::get(crate::bill::download))
        .merge(crate::cashier::routes())
        .merge(
            crate::controls::routes()
                .route_layer(axum::middleware::from_fn_with_state(sb.clone(), crate::controls::guard)),
        )
        .layer(DefaultBodyLimit::max(limit))
        .with_state(sb)
}

/// A JSON answer, unsigned (gateway-level errors) or signed. Served as JSON, never as a page:
/// errors repeat what the caller sent (a parameter's name), which a browser must not run. (Alipay
/// itself labels these answers text/html; every SDK reads the body whatever the label says.)
fn json_response(body: String) -> Response {
    json_response_in(body, Charset::Utf8)
}

/// [`json_response`] in the request's charset: a GBK request is answered in GBK (and the node's
/// GBK bytes are what was signed).
fn json_response_in(body: String, charset: Charset) -> Response {
    let content_type = match charset {
        Charset::Utf8 => "application/json;charset=utf-8",
        Charset::Gbk => "application/json;charset=GBK",
    };
    let bytes = match charset.encode_lossy(&body) {
        std::borrow::Cow::Borrowed(_) => body.into_bytes(),
        std::borrow::Cow::Owned(b) => b,
    };
    ([(header::CONTENT_TYPE, content_type), (header::X_CONTENT_TYPE_OPTIONS, "nosniff")], bytes)
        .into_response()
}

fn unsigned_error(method: Option<&str>, code: &str, sub_code: &str, sub_msg: &str) -> Response {
    let status = Status::failure(code, sub_code, sub_msg);
    let key = match method {
        Some(m) if METHODS.contains(&m) => response_key(m),
        _ => "error_response".to_owned(),
    };
    let node = escape_slashes(&serde_json::to_string(&status).unwrap_or_default());
    json_response(encode(&key, &node, None).unwrap_or_default())
}

/// Reads `charset` from raw `k=v` pairs without decoding anything else.
fn peek_charset(raw: &[u8]) -> Option<String> {
    raw.split(|&b| b == b'&').find_map(|pair| {
        let rest = pair.strip_prefix(b"charset=")?;
        Some(String::from_utf8_lossy(rest).into_owned())
    })
}

fn param_error_response(e: &ParamError) -> Response {
    match e {
        ParamError::UnsupportedCharset(_) => {
            unsigned_error(None, "40002", "isv.invalid-charset", "字符集错误，仅支持GBK、UTF-8")
        }
        ParamError::TooLarge { .. } => (StatusCode::PAYLOAD_TOO_LARGE, "request too large").into_response(),
        other => unsigned_error(None, "40002", "isv.invalid-parameter", &format!("参数无效: {other}")),
    }
}

/// Parses and merges the query string and form body; returns them and the request's charset.
fn read_params(
    sb: &Sandbox,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<(Params, Charset), Response> {
    let limits = Limits { max_bytes: sb.options.max_body_bytes, ..Limits::default() };
    let query = uri.query().unwrap_or_default().as_bytes();
    let is_form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.to_ascii_lowercase().starts_with("application/x-www-form-urlencoded"))
        .unwrap_or(!body.is_empty());
    let body = if is_form { body } else { &[][..] };
    let charset = match peek_charset(query).or_else(|| peek_charset(body)) {
        Some(c) => {
            Charset::parse(&String::from_utf8_lossy(c.as_bytes())).map_err(|e| param_error_response(&e))?
        }
        None => Charset::Utf8,
    };
    let (qp, _) = Params::parse_urlencoded(query, charset, limits).map_err(|e| param_error_response(&e))?;
    let (bp, _) = Params::parse_urlencoded(body, charset, limits).map_err(|e| param_error_response(&e))?;
    qp.merge_request(bp).map(|p| (p, charset)).map_err(|e| param_error_response(&e))
}

async fn gateway_do(State(sb): State<Arc<Sandbox>>, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    let (params, charset) = match read_params(&sb, &uri, &headers, &body) {
        Ok(p) => p,
        Err(resp) => return resp,
    };
    let method = params.get_nonempty("method").map(str::to_owned);
    let now = sb.now();
    let app_id = params.get_nonempty("app_id").map(str::to_owned);

    // 1. app_id
    let Some(app_id) = app_id else {
        return unsigned_error(method.as_deref(), "40001", "isv.missing-app-id", "缺少AppID参数");
    };
    let app = match sb.store.read(move |c| model::app(c, &app_id)).await {
        Ok(Some(a)) => a,
        Ok(None) => {
            return unsigned_error(method.as_deref(), "40002", "isv.invalid-app-id", "无效的AppID参数");
        }
        Err(e) => {
            tracing::error!(error = %e, "store");
            return unsigned_error(method.as_deref(), "20000", "isp.unknow-error", "系统繁忙");
        }
    };
    // 2. method
    let Some(method) = method else {
        return unsigned_error(None, "40001", "isv.missing-method", "缺少方法名参数");
    };
    if !METHODS.contains(&method.as_str()) {
        return unsigned_error(None, "40002", "isv.invalid-method", "不存在的方法名");
    }
    // 3. timestamp
    let Some(ts) = params.get_nonempty("timestamp") else {
        return unsigned_error(Some(&method), "40001", "isv.missing-timestamp", "缺少时间戳参数");
    };
    match haitao_alipay::time::parse_alipay(ts) {
        Err(_) => return unsigned_error(Some(&method), "40002", "isv.invalid-timestamp", "非法的时间戳参数"),
        Ok(t) => {
            if let Some(max) = sb.options.max_clock_skew
                && (t - now).abs() > max
            {
                return unsigned_error(
                    Some(&method),
                    "40002",
                    "isv.invalid-timestamp",
                    "时间戳与网关时间偏差过大",
                );
            }
        }
    }
    // 4. sign_type
    let Some(sign_type) = params.get_nonempty("sign_type") else {
        return unsigned_error(Some(&method), "40001", "isv.missing-signature-type", "缺少签名类型参数");
    };
    let Ok(sign_type) = sign_type.parse::<SignType>() else {
        return unsigned_error(Some(&method), "40002", "isv.invalid-signature-type", "无效的签名类型参数");
    };
    // 5. certificate mode: the app's and the root certificate's serial numbers
    if let Some(refusal) = check_cert_sns(&sb, &app, &method, &params).await {
        return refusal;
    }
    // 6. content encryption: a known scheme and a key to decrypt with
    let aes = match params.get_nonempty("encrypt_type") {
        None => None,
        Some(ENCRYPT_TYPE) => match app.aes_key.as_deref().map(AesKey::parse) {
            Some(Ok(key)) => Some(key),
            _ => {
                return unsigned_error(
                    Some(&method),
                    "40002",
                    "isv.decryption-error-not-valid-encrypt-key",
                    "解密出错, 未配置加密密钥或加密密钥格式错误",
                );
            }
        },
        Some(_) => {
            return unsigned_error(
                Some(&method),
                "40002",
                "isv.decryption-error-not-valid-encrypt-type",
                "解密出错，不支持的加密算法",
            );
        }
    };
    // 7. signature
    let Some(sign) = params.get_nonempty("sign") else {
        return unsigned_error(Some(&method), "40001", "isv.missing-signature", "缺少签名参数");
    };
    let content = params.request_sign_content();
    let merchant_key = match sb.merchant_key(&app.public_key) {
        Ok(k) => k,
        Err(_) => {
            return unsigned_error(
                Some(&method),
                "40003",
                "isv.missing-signature-config",
                "应用未配置对应签名算法的公钥",
            );
        }
    };
    // Signed over the text's bytes in the request's charset (GBK requests over GBK bytes); text the
    // charset cannot carry cannot have been signed in it.
    let verified = match charset.encode(&content) {
        Some(bytes) => Verifier::new(merchant_key).verify_bytes(sign_type, &bytes, sign),
        None => Err(haitao_alipay::VerifyError::Invalid),
    };
    // The signature covers the ciphertext; the method reads the plain text.
    let ReadBiz { decrypted, biz_text, biz: biz_json, out_trade_no } =
        read_biz(params.get("biz_content").unwrap_or_default(), aes.as_ref(), verified.is_ok());
    // The trace keeps the parameters as sent (ciphertext included) and what they decrypted to.
    events::record_later(
        &sb.store,
        now,
        "gateway.request",
        Some(app.app_id.clone()),
        out_trade_no.clone(),
        format!("{method}: request signature {}", if verified.is_ok() { "verified" } else { "INVALID" }),
        json!({
            "method": method,
            "params": params.iter().collect::<std::collections::BTreeMap<_, _>>(),
            "signed_string": content,
            "signature_valid": verified.is_ok(),
            "biz_content_decrypted": decrypted.as_ref().and_then(|d| d.as_ref().ok()),
        }),
    );
    let mut params = params;
    if params.get("biz_content").is_some_and(|sent| sent != biz_text) {
        params.set("biz_content", biz_text);
    }
    if verified.is_err() {
        return unsigned_error(
            Some(&method),
            "40002",
            "isv.invalid-signature",
            &format!(
                "验签出错，建议检查签名字符串或签名私钥与应用公钥是否匹配，网关生成的验签字符串为：{content}"
            ),
        );
    }
    if params.get_nonempty("version").is_some_and(|v| v != "1.0") {
        return unsigned_error(Some(&method), "40002", "isv.invalid-parameter", "version 只支持 1.0");
    }
    if let Some(Err(e)) = &decrypted {
        // Alipay answers a ciphertext it cannot decrypt with a signed failure, not encrypted.
        tracing::debug!(error = %e, "biz_content does not decrypt");
        let status = Status::failure("40003", "isv.decryption-error-unknown", "解密出错, 未知错误");
        let call = Call { method: method.clone(), sign_type, aes: None, charset };
        return signed_answer(&sb, &app, &call, &status, &Value::Null).await;
    }

    match method.as_str() {
        // The app's order string, opened by the Alipay app, is a page like the others here.
        "alipay.trade.page.pay" | "alipay.trade.wap.pay" | "alipay.trade.app.pay" => {
            page(sb, app, method, params, Lang::resolve(None, &headers)).await
        }
        _ => api(sb, app, Call { method, sign_type, aes, charset }, params, out_trade_no, biz_json).await,
    }
}

/// A request's business content as the method reads it.
pub(crate) struct ReadBiz {
    /// What an encrypted request decrypted to (only once its signature verified).
    pub decrypted: Option<Result<String, haitao_alipay::encrypt::AesError>>,
    /// The plain JSON text, amounts given as numbers rewritten as their digits.
    pub biz_text: String,
    pub biz: Value,
    pub out_trade_no: Option<String>,
}

/// Decrypts `sent` when the request is encrypted and verified (the signature covers the
/// ciphertext), and reads amounts sent as JSON numbers as the text they are, as Alipay does.
pub(crate) fn read_biz(sent: &str, aes: Option<&AesKey>, verified: bool) -> ReadBiz {
    let decrypted = match (aes, verified) {
        (Some(key), true) => Some(key.decrypt(sent)),
        _ => None,
    };
    let plain = match &decrypted {
        Some(Ok(p)) => p.as_str(),
        _ => sent,
    };
    let biz_text = haitao_alipay::biz::amounts_as_text(plain).into_owned();
    let biz: Value = serde_json::from_str(&biz_text).unwrap_or(Value::Null);
    let out_trade_no = biz.get("out_trade_no").and_then(Value::as_str).map(str::to_owned);
    ReadBiz { decrypted, biz_text, biz, out_trade_no }
}

/// For an app in certificate mode: `app_cert_sn` must name the app's certificate and
/// `alipay_root_cert_sn` the root file's RSA roots. Apps in public-key mode ignore both, as Alipay
/// does.
async fn check_cert_sns(sb: &Arc<Sandbox>, app: &App, method: &str, params: &Params) -> Option<Response> {
    let app_cert = app.app_cert.as_deref()?;
    let refuse =
        |sub_code: &str, sub_msg: &str| Some(unsigned_error(Some(method), "40002", sub_code, sub_msg));
    let Some(sn) = params.get_nonempty("app_cert_sn") else {
        return refuse("isv.missing-app-cert-sn", "缺少应用公钥证书序列号");
    };
    match sb.app_cert_sn(app_cert) {
        Ok(own) if own == sn => {}
        Ok(_) => {
            return refuse(
                "isv.app-cert-not-exist",
                "应用公钥证书不存在，app_cert_sn 与控制台的应用公钥证书不一致",
            );
        }
        Err(e) => {
            tracing::error!(error = %e, "the app's certificate cannot be read");
            return Some(unsigned_error(Some(method), "20000", "isp.unknow-error", "系统繁忙"));
        }
    }
    let Some(root) = params.get_nonempty("alipay_root_cert_sn") else {
        return refuse("isv.missing-alipay-root-cert-sn", "缺少支付宝根证书序列号");
    };
    let expected = sb.root_cert_sn().await;
    match expected {
        Ok(expected) if expected == root => None,
        Ok(_) => refuse("isv.invalid-alipay-root-cert-sn", "无效的支付宝根证书序列号"),
        Err(e) => {
            tracing::error!(error = %e, "the sandbox's root certificate cannot be read");
            Some(unsigned_error(Some(method), "20000", "isp.unknow-error", "系统繁忙"))
        }
    }
}

/// A signed answer to `app`: in the request's charset, encrypted when the request was, naming the
/// Alipay certificate in certificate mode.
async fn signed_answer(sb: &Arc<Sandbox>, app: &App, call: &Call, status: &Status, body: &Value) -> Response {
    json_response_in(sign_answer(sb, app, call, status, body).await, call.charset)
}

/// The text of a signed answer (see [`signed_answer`]); unsigned if no key can sign it. The
/// signature covers the node's bytes in the request's charset.
async fn sign_answer(sb: &Arc<Sandbox>, app: &App, call: &Call, status: &Status, body: &Value) -> String {
    let key = response_key(&call.method);
    let mut node_text = node(status, body);
    if let Some(aes) = &call.aes {
        match aes.encrypt(&node_text) {
            Ok(c) => node_text = serde_json::to_string(&c).unwrap_or_default(),
            Err(e) => tracing::error!(error = %e, "answer could not be encrypted"),
        }
    }
    let signer = sb.answer_signer(app, call.sign_type).await;
    let signed = signer.and_then(|(s, sn)| {
        let sign = s.sign_bytes(&call.charset.encode_lossy(&node_text)).map_err(|e| e.to_string())?;
        Ok((sign, sn))
    });
    match signed {
        Ok((sign, sn)) => assemble(&key, &node_text, Some(&sign), sn.as_deref()),
        Err(e) => {
            tracing::error!(error = %e, "no key signs this answer");
            assemble(&key, &node_text, None, None)
        }
    }
}

/// page.pay / wap.pay: open a cashier session and send the browser to it; errors are shown as a page.
/// Opens a cashier session and sends the buyer to it; the cashier picks its language from the
/// buyer's browser (see [`Lang::resolve`]), as does a request error shown here.
async fn page(sb: Arc<Sandbox>, app: App, method: String, params: Params, lang: Lang) -> Response {
    let sb2 = sb.clone();
    let result = sb
        .store
        .run(move |c| {
            let tx = c.transaction()?;
            let ctx = Ctx { conn: &tx, sb: &sb2, app: &app, now: sb2.now() };
            let r = trades::page_request_from(&method, ctx_biz(&params))
                .and_then(|req| trades::open_session(&ctx, &req, &params));
            tx.commit()?;
            Ok::<_, crate::db::StoreError>(r)
        })
        .await;
    match result {
        Ok(Ok(session)) => Redirect::to(&format!("/cashier/{}", session.token)).into_response(),
        Ok(Err(status)) => crate::cashier::error_page(&status, lang.en),
        Err(e) => {
            tracing::error!(error = %e, "page request failed");
            (StatusCode::INTERNAL_SERVER_ERROR, "sandbox error").into_response()
        }
    }
}

fn ctx_biz(p: &Params) -> &str {
    p.get("biz_content").unwrap_or_default()
}

/// The node of a successful or failed API answer.
pub(crate) fn node(status: &Status, body: &Value) -> String {
    let mut obj = serde_json::Map::new();
    obj.insert("code".into(), json!(status.code));
    obj.insert("msg".into(), json!(status.msg));
    if let Some(sc) = &status.sub_code {
        obj.insert("sub_code".into(), json!(sc));
    }
    if let Some(sm) = &status.sub_msg {
        obj.insert("sub_msg".into(), json!(sm));
    }
    if let Value::Object(fields) = body {
        for (k, v) in fields {
            if !v.is_null() {
                obj.insert(k.clone(), v.clone());
            }
        }
    }
    escape_slashes(&Value::Object(obj).to_string())
}

/// A body that fails on its first frame: the client sees the connection drop mid-answer.
struct FailingBody;

impl http_body::Body for FailingBody {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Bytes>, std::io::Error>>> {
        std::task::Poll::Ready(Some(Err(std::io::Error::new(
            std::io::ErrorKind::ConnectionReset,
            "dropped by scenario",
        ))))
    }
}

pub(crate) fn dropped() -> Response {
    Response::new(Body::new(FailingBody))
}

/// What one trip to the store did for an API call.
enum Trip {
    /// A forced slow answer: the trade is run after the wait.
    Slow,
    /// A forced 502: the trade is not run.
    GatewayError,
    Done(Option<Outcome>, Result<Result<Value, Status>, crate::db::StoreError>),
}

/// The merchant order a call's forced faults are kept under: the one it names, or the one of the
/// trade it names.
fn fault_key(
    c: &rusqlite::Connection,
    app_id: &str,
    out_trade_no: Option<&str>,
    trade_no: Option<&str>,
) -> Result<Option<String>, crate::db::StoreError> {
    Ok(match (out_trade_no, trade_no) {
        (Some(o), _) => Some(o.to_owned()),
        (None, Some(t)) => model::trade_by_no(c, app_id, t)?.map(|t| t.out_trade_no),
        (None, None) => None,
    })
}

/// The forced fault for this call, if any (marked used).
fn take_fault(
    c: &rusqlite::Connection,
    app_id: &str,
    out_trade_no: Option<&str>,
    trade_no: Option<&str>,
    is_query: bool,
    biz_total: Option<i64>,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<Option<Outcome>, crate::db::StoreError> {
    let Some(out) = fault_key(c, app_id, out_trade_no, trade_no)? else { return Ok(None) };
    if let Some(f) = scenarios::take_api_fault(c, app_id, &out, now)? {
        return Ok(Some(f));
    }
    // Magic amounts fault every call but queries, so merchants can always reconcile.
    if is_query {
        return Ok(None);
    }
    let total = match biz_total {
        Some(t) => Some(t),
        None => model::trade_by_out(c, app_id, &out)?.map(|t| t.cny_fen),
    };
    Ok(total.and_then(scenarios::magic_amount).filter(|o| scenarios::is_api_fault(*o)))
}

/// `alipay.open.app.alipaycert.download`: any Alipay certificate the sandbox ever issued, by SN.
fn alipay_cert_download(ctx: &Ctx<'_>, q: &AlipayCertDownload) -> Result<Value, Status> {
    use base64::Engine as _;
    match crate::certs::by_sn(ctx.conn, &q.alipay_cert_sn) {
        Ok(Some(pem)) => Ok(
            json!({"alipay_cert_content": base64::engine::general_purpose::STANDARD.encode(pem.as_bytes())}),
        ),
        Ok(None) => Err(Status::failure("40004", "isv.alipay-cert-not-exist", "支付宝公钥证书不存在")),
        Err(e) => Err(Status::failure("20000", "isp.unknow-error", format!("系统繁忙: {e}"))),
    }
}

/// A business content that does not read as the method's request.
fn unreadable_biz(e: serde_json::Error) -> Status {
    Status::failure("40004", "ACQ.INVALID_PARAMETER", format!("biz_content: {e}"))
}

/// Runs one API method in the open transaction; business failures are answers too.
fn run_method(ctx: &Ctx<'_>, method: &str, params: &Params) -> Result<Value, Status> {
    let biz = ctx_biz(params);
    let parse = unreadable_biz;
    match method {
        "alipay.trade.precreate" => {
            trades::page_request_from(method, biz).and_then(|req| trades::precreate(ctx, &req, params))
        }
        "alipay.trade.pay" => trades::face_to_face::pay_by_code(ctx, params),
        "alipay.trade.create" => trades::face_to_face::create(ctx, params),
        "alipay.trade.query" => {
            serde_json::from_str::<Query>(biz).map_err(parse).and_then(|q| trades::query(ctx, &q))
        }
        "alipay.trade.close" => {
            serde_json::from_str::<Close>(biz).map_err(parse).and_then(|q| trades::close(ctx, &q))
        }
        "alipay.trade.cancel" => {
            serde_json::from_str::<Cancel>(biz).map_err(parse).and_then(|q| trades::cancel(ctx, &q))
        }
        "alipay.trade.refund" => {
            serde_json::from_str::<Refund>(biz).map_err(parse).and_then(|q| trades::refund(ctx, &q))
        }
        "alipay.trade.fastpay.refund.query" => serde_json::from_str::<RefundQuery>(biz)
            .map_err(parse)
            .and_then(|q| trades::refund_query(ctx, &q)),
        "alipay.trade.customs.declare" => serde_json::from_str::<CustomsDeclare>(biz)
            .map_err(parse)
            .and_then(|q| trades::customs_declare(ctx, &q)),
        "alipay.open.app.alipaycert.download" => serde_json::from_str::<AlipayCertDownload>(biz)
            .map_err(parse)
            .and_then(|q| alipay_cert_download(ctx, &q)),
        "alipay.data.dataservice.bill.downloadurl.query" => serde_json::from_str::<BillDownloadUrlQuery>(biz)
            .map_err(parse)
            .and_then(|q| crate::bill::download_url(ctx, &q)),
        _ => Err(Status::failure("40002", "isv.invalid-method", "不存在的方法名")),
    }
}

/// How an API call was made: the method, and how its answer is signed and encrypted.
struct Call {
    method: String,
    sign_type: SignType,
    aes: Option<AesKey>,
    charset: Charset,
}

/// What running one API call did.
pub(crate) enum Ran {
    /// A forced 502: the method did not run.
    GatewayError,
    Done {
        fault: Option<Outcome>,
        status: Status,
        body: Value,
    },
}

/// Runs an API method for `app` with the forced fault that applies to it, if any (a slow answer
/// waits, then runs). Shared by `gateway.do` and the v3 paths.
pub(crate) async fn run_api(
    sb: &Arc<Sandbox>,
    app: &App,
    method: &str,
    params: Params,
    out_trade_no: Option<String>,
    biz: &Value,
) -> Ran {
    let now = sb.now();
    // Which trade this call is about, for forced faults.
    let trade_no = biz.get("trade_no").and_then(Value::as_str).map(str::to_owned);
    let is_query = method == "alipay.trade.query";
    let biz_total = biz
        .get("total_amount")
        .and_then(Value::as_str)
        .and_then(|t| haitao_alipay::Money::parse_decimal(t, haitao_alipay::Currency::Cny).ok())
        .map(|m| m.minor());
    let params = Arc::new(params);
    let app = Arc::new(app.clone());
    let method = method.to_owned();

    // A query that neither uses up a forced fault nor closes a trade past its deadline reads
    // committed rows only: it is answered on a read-only connection, beside the writer.
    if is_query
        && let Some(result) =
            query_on_reader(sb, &app, &params, out_trade_no.clone(), trade_no.clone(), now).await
    {
        let (status, body) = match result {
            Ok(body) => (Status::success(), body),
            Err(status) => (status, Value::Null),
        };
        return Ran::Done { fault: None, status, body };
    }

    // One trip: the forced fault (if any) and the method, in one transaction.
    let trip = {
        let (sb2, app, params, method, out) =
            (sb.clone(), app.clone(), params.clone(), method.clone(), out_trade_no.clone());
        sb.store
            .run(move |c| {
                let tx = c.transaction()?;
                // A failed read aborts the whole call (isp.unknow-error), so the method never runs
                // in a transaction SQLite may already have rolled back.
                let fault = take_fault(
                    &tx,
                    &app.app_id,
                    out.as_deref(),
                    trade_no.as_deref(),
                    is_query,
                    biz_total,
                    now,
                )?;
                let trip = match fault {
                    Some(Outcome::Slow) => Trip::Slow,
                    Some(Outcome::GatewayError) => Trip::GatewayError,
                    _ => {
                        let ctx = Ctx { conn: &tx, sb: &sb2, app: &app, now: sb2.now() };
                        Trip::Done(fault, Ok(run_method(&ctx, &method, &params)))
                    }
                };
                tx.commit()?;
                Ok::<_, crate::db::StoreError>(trip)
            })
            .await
            .unwrap_or_else(|e| Trip::Done(None, Err(e)))
    };
    let (fault, result) = match trip {
        Trip::GatewayError => return Ran::GatewayError,
        Trip::Done(fault, result) => (fault, result),
        Trip::Slow => {
            tokio::time::sleep(sb.options.slow_answer).await;
            let (sb2, app, params, method) = (sb.clone(), app.clone(), params.clone(), method.clone());
            let result = sb
                .store
                .run(move |c| {
                    let tx = c.transaction()?;
                    let ctx = Ctx { conn: &tx, sb: &sb2, app: &app, now: sb2.now() };
                    let r = run_method(&ctx, &method, &params);
                    tx.commit()?;
                    Ok::<_, crate::db::StoreError>(r)
                })
                .await;
            (Some(Outcome::Slow), result)
        }
    };
    let (status, body) = match result {
        Ok(Ok(body)) => (Status::success(), body),
        Ok(Err(status)) => (status, Value::Null),
        Err(e) => {
            tracing::error!(error = %e, "api call failed");
            (Status::failure("20000", "isp.unknow-error", "系统繁忙"), Value::Null)
        }
    };
    Ran::Done { fault, status, body }
}

/// `alipay.trade.query` on a read-only connection, in one read transaction. `None` when it needs
/// the writer: a forced fault waits to be used up, the trade closes before it is told, or the
/// reader could not begin or look for a fault (the writer then answers, or says what failed). A
/// store error once the trade is being read is answered as on the writer (`ACQ.SYSTEM_ERROR`).
async fn query_on_reader(
    sb: &Arc<Sandbox>,
    app: &Arc<App>,
    params: &Arc<Params>,
    out_trade_no: Option<String>,
    trade_no: Option<String>,
    now: chrono::DateTime<chrono::Utc>,
) -> Option<Result<Value, Status>> {
    let (sb2, app, params) = (sb.clone(), app.clone(), params.clone());
    let read = sb
        .store
        .read(move |c| {
            let tx = c.unchecked_transaction()?;
            if let Some(out) = fault_key(&tx, &app.app_id, out_trade_no.as_deref(), trade_no.as_deref())?
                && scenarios::api_fault_pending(&tx, &app.app_id, &out)?
            {
                return Ok(None);
            }
            let ctx = Ctx { conn: &tx, sb: &sb2, app: &app, now };
            Ok(match serde_json::from_str::<Query>(ctx_biz(&params)) {
                Ok(q) => trades::query_read_only(&ctx, &q),
                Err(e) => Some(Err(unreadable_biz(e))),
            })
        })
        .await;
    read.unwrap_or_else(|e| {
        tracing::debug!(error = %e, "a query on a reader failed; the writer answers it");
        None
    })
}

async fn api(
    sb: Arc<Sandbox>,
    app: App,
    call: Call,
    params: Params,
    out_trade_no: Option<String>,
    biz: Value,
) -> Response {
    let method = call.method.clone();
    let now = sb.now();
    let (fault, status, body) = match run_api(&sb, &app, &method, params, out_trade_no.clone(), &biz).await {
        Ran::GatewayError => {
            return (StatusCode::BAD_GATEWAY, "<html><body>502 Bad Gateway</body></html>").into_response();
        }
        Ran::Done { fault, status, body } => (fault, status, body),
    };
    let signed = sign_answer(&sb, &app, &call, &status, &body).await;
    // What the merchant got: a forced fault replaces the answer.
    let sent_code = match fault {
        Some(Outcome::ResultUnknown) => "20000",
        Some(Outcome::DropConnection) => "dropped",
        _ => status.code.as_str(),
    };
    let summary = format!(
        "{method}: {} {}",
        status.code,
        status.sub_code.clone().unwrap_or_else(|| status.msg.clone())
    );
    events::record_later(
        &sb.store,
        now,
        "gateway.response",
        Some(app.app_id.clone()),
        out_trade_no,
        summary,
        json!({"method": method, "code": sent_code, "body": signed, "forced": fault.map(|f| f.as_str())}),
    );
    match fault {
        Some(Outcome::ResultUnknown) => {
            unsigned_error(Some(&method), "20000", "isp.unknow-error", "服务暂不可用（结果未知）")
        }
        Some(Outcome::DropConnection) => dropped(),
        _ => json_response_in(signed, call.charset),
    }
}
