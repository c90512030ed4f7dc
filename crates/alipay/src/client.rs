//! An async gateway client: signs calls, reads and verifies responses, and tells a definite failure
//! from an unknown outcome so callers query before they ever repeat a payment operation.

use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::api::{AlipayCertDownload, ApiCall, PageCall};
use crate::cert::CertError;
use crate::ids::{IdGen, RandomIds};
use crate::request::{AppConfig, Callbacks, Content, Protocol, RequestError, SignedRequest};
use crate::response::{ResponseError, extract, response_key};
use crate::sign::SignType;
use crate::status::{Certainty, GatewayError, Status};
use crate::time::Clock;
use crate::v3;

/// Why the outcome of a call is not known.
#[derive(Debug, thiserror::Error)]
pub enum UnknownCause {
    #[error("{0}")]
    Gateway(GatewayError),
    #[error("the gateway did not answer within {0:?}")]
    Timeout(Duration),
    #[error("the connection failed or dropped: {0}")]
    Connection(String),
    #[error("the gateway answered HTTP {0}")]
    HttpStatus(u16),
    /// The answer could not be read or its signature did not verify: it cannot be trusted either way.
    #[error("the response was rejected: {0}")]
    Response(ResponseError),
}

/// Why a linked file could not be fetched.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DownloadError {
    #[error("the download failed: {0}")]
    Transport(String),
    #[error("the download answered HTTP {0}")]
    Status(u16),
    #[error("the file is larger than {0} bytes")]
    TooLarge(usize),
}

/// The result of a gateway call that did not succeed.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    /// The request could not be built; nothing was sent.
    #[error(transparent)]
    Request(#[from] RequestError),
    /// The call definitely failed: nothing happened, or Alipay refused it for a stated reason.
    #[error("{0}")]
    Failed(GatewayError),
    /// The call may or may not have taken effect. Query the trade before doing anything else.
    #[error("result unknown: {0}")]
    Unknown(UnknownCause),
}

impl CallError {
    pub fn is_result_unknown(&self) -> bool {
        matches!(self, CallError::Unknown(_))
    }

    /// The `sub_code` of a definite gateway failure.
    pub fn sub_code(&self) -> Option<&str> {
        match self {
            CallError::Failed(g) => g.sub_code(),
            _ => None,
        }
    }
}

/// How idempotent calls are retried when their outcome is unknown.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// Total attempts, including the first.
    pub attempts: u32,
    pub first_delay: Duration,
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            attempts: 3,
            first_delay: Duration::from_millis(200),
            max_delay: Duration::from_secs(2),
        }
    }
}

impl RetryPolicy {
    pub fn none() -> Self {
        RetryPolicy { attempts: 1, ..Default::default() }
    }

    fn delay(&self, attempt: u32) -> Duration {
        let factor = 2u32.saturating_pow(attempt.saturating_sub(1));
        self.first_delay.saturating_mul(factor).min(self.max_delay)
    }
}

/// The largest response body read from the gateway.
const MAX_RESPONSE_BYTES: usize = 1024 * 1024;

/// A client for one app on one gateway.
#[derive(Debug, Clone)]
pub struct AlipayClient {
    config: Arc<AppConfig>,
    http: reqwest::Client,
    clock: Arc<dyn Clock>,
    /// Nonces and request ids of v3 calls.
    ids: Arc<dyn IdGen>,
    retry: RetryPolicy,
    timeout: Duration,
}

impl AlipayClient {
    pub fn new(config: Arc<AppConfig>, clock: Arc<dyn Clock>) -> Result<Self, reqwest::Error> {
        let timeout = Duration::from_secs(15);
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .timeout(timeout)
            .user_agent(concat!("haitao-alipay/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(AlipayClient {
            config,
            http,
            clock,
            ids: Arc::new(RandomIds),
            retry: RetryPolicy::default(),
            timeout,
        })
    }

    /// Uses `ids` for the nonces and request ids of v3 calls.
    pub fn with_ids(mut self, ids: Arc<dyn IdGen>) -> Self {
        self.ids = ids;
        self
    }

    /// Uses a caller-built HTTP client (proxies, test transports).
    pub fn with_http(mut self, http: reqwest::Client, timeout: Duration) -> Self {
        self.http = http;
        self.timeout = timeout;
        self
    }

    pub fn with_retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    pub fn config(&self) -> &AppConfig {
        &self.config
    }

    /// Signs a page call (page.pay / wap.pay) for the buyer's browser. Nothing is sent.
    pub fn page_request<C: PageCall>(
        &self,
        call: &C,
        callbacks: &Callbacks,
    ) -> Result<SignedRequest, RequestError> {
        SignedRequest::build(&self.config, self.clock.as_ref(), C::METHOD, call, callbacks)
    }

    /// Fetches a file the gateway linked to in a verified answer (a bill's
    /// `bill_download_url`), refusing an answer that is not 200 or runs past `limit` bytes. The
    /// link is short-lived and signed by its query; the file itself carries no signature, so
    /// its reader checks what it can (a bill's totals).
    pub async fn download(&self, url: &str, limit: usize) -> Result<Vec<u8>, DownloadError> {
        let mut resp =
            self.http.get(url).send().await.map_err(|e| DownloadError::Transport(e.to_string()))?;
        if !resp.status().is_success() {
            return Err(DownloadError::Status(resp.status().as_u16()));
        }
        if resp.content_length().is_some_and(|n| n > limit as u64) {
            return Err(DownloadError::TooLarge(limit));
        }
        let mut body = Vec::new();
        while let Some(chunk) = resp.chunk().await.map_err(|e| DownloadError::Transport(e.to_string()))? {
            if body.len() + chunk.len() > limit {
                return Err(DownloadError::TooLarge(limit));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    }

    /// Calls an API and returns its verified response.
    pub async fn execute<C: ApiCall>(&self, call: &C) -> Result<C::Response, CallError> {
        self.execute_with(call, &Callbacks::default()).await
    }

    /// Calls an API with a `notify_url` (precreate) and returns its verified response, through
    /// the protocol the app is configured for ([`AppConfig::protocol`]; methods without a v3 path
    /// use `gateway.do`).
    pub async fn execute_with<C: ApiCall>(
        &self,
        call: &C,
        callbacks: &Callbacks,
    ) -> Result<C::Response, CallError> {
        self.run(call, callbacks, self.config.protocol == Protocol::V3 && v3::has_path(C::METHOD)).await
    }

    /// Calls an API through OpenAPI v3 (`POST /v3/…` with a JSON body, the request signed into
    /// `Authorization`, the answer verified from its `alipay-signature` headers) whatever the
    /// configured protocol: the same typed call and answer as [`AlipayClient::execute`], the same
    /// retries and the same classification of failures. The v3 paths are beside the configured
    /// gateway (`…/gateway.do` → `…/v3/alipay/trade/query`).
    pub async fn execute_v3<C: ApiCall>(&self, call: &C) -> Result<C::Response, CallError> {
        self.run(call, &Callbacks::default(), true).await
    }

    async fn run<C: ApiCall>(
        &self,
        call: &C,
        callbacks: &Callbacks,
        v3: bool,
    ) -> Result<C::Response, CallError> {
        let attempts = if C::IDEMPOTENT { self.retry.attempts.max(1) } else { 1 };
        let mut attempt = 1;
        loop {
            // Each attempt is signed afresh: the timestamp must be current.
            let result = if v3 {
                self.once_v3::<C>(call, callbacks).await
            } else {
                self.once::<C>(call, callbacks).await
            };
            match result {
                Err(CallError::Unknown(cause)) if attempt < attempts => {
                    tracing::warn!(method = C::METHOD, attempt, v3, %cause, "result unknown; retrying an idempotent call");
                    tokio::time::sleep(self.retry.delay(attempt)).await;
                    attempt += 1;
                }
                other => return other,
            }
        }
    }

    async fn once_v3<C: ApiCall>(&self, call: &C, callbacks: &Callbacks) -> Result<C::Response, CallError> {
        let unknown = |e: ResponseError| CallError::Unknown(UnknownCause::Response(e));
        // Beside the gateway (a relative join keeps a path prefix), signed as the path sent.
        let url = self
            .config
            .gateway
            .join(v3::path_of(C::METHOD).trim_start_matches('/'))
            .map_err(|e| RequestError::Invalid { field: "gateway", reason: e.to_string() })?;
        let path = url.path().to_owned();
        // v3 has no common parameters: a notify_url travels in the body.
        let mut json = serde_json::to_value(call).map_err(|e| RequestError::Serialize(e.to_string()))?;
        if let (Some(u), Some(obj)) = (&callbacks.notify_url, json.as_object_mut()) {
            url::Url::parse(u)
                .map_err(|e| RequestError::Invalid { field: "notify_url", reason: e.to_string() })?;
            obj.insert("notify_url".into(), serde_json::Value::String(u.clone()));
        }
        let mut body = json.to_string();
        if let Some(key) = &self.config.encrypt_key {
            body = key.encrypt(&body).map_err(RequestError::from)?;
        }
        let nonce = self.ids.next_id("");
        let timestamp = self.clock.now().timestamp_millis();
        let cert_sn = self.config.cert_mode.as_ref().map(|c| c.app_cert_sn().to_string());
        let auth = v3::auth_string(&self.config.app_id, cert_sn.as_deref(), &nonce, timestamp);
        let token = self.config.app_auth_token.as_deref();
        let authorization = v3::authorization(&self.config.signer, &auth, "POST", &path, &body, token)
            .map_err(RequestError::from)?;
        let mut req = self
            .http
            .post(url)
            .header(reqwest::header::AUTHORIZATION, authorization)
            .header(reqwest::header::ACCEPT, "application/json")
            .header(v3::header::REQUEST_ID, self.ids.next_id(""));
        req = match self.config.encrypt_key {
            Some(_) => req
                .header(reqwest::header::CONTENT_TYPE, "text/plain")
                .header(v3::header::ENCRYPT_TYPE, crate::encrypt::ENCRYPT_TYPE),
            None => req.header(reqwest::header::CONTENT_TYPE, "application/json"),
        };
        if let Some(t) = token {
            req = req.header(v3::header::APP_AUTH_TOKEN, t);
        }
        if let Some(c) = &self.config.cert_mode {
            req = req.header(v3::header::ROOT_CERT_SN, c.root_cert_sn());
        }
        let resp = req.body(body).send().await.map_err(|e| CallError::Unknown(self.transport_cause(&e)))?;
        let status = resp.status();
        let head = |name: &str| resp.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
        let (signature, ts, nonce, sn) = (
            head(v3::header::SIGNATURE),
            head(v3::header::TIMESTAMP),
            head(v3::header::NONCE),
            head(v3::header::SN),
        );
        if status.is_server_error() && signature.is_none() {
            return Err(CallError::Unknown(UnknownCause::HttpStatus(status.as_u16())));
        }
        let bytes = read_limited(resp).await.map_err(CallError::Unknown)?;
        let text = String::from_utf8(bytes).map_err(|_| unknown(ResponseError::NotJson("not UTF-8")))?;
        // Verified when signed: Alipay signs every answer a merchant may act on.
        let signed = match &signature {
            None => false,
            Some(sig) => {
                let content = v3::response_sign_content(
                    ts.as_deref().unwrap_or_default(),
                    nonce.as_deref().unwrap_or_default(),
                    &text,
                );
                let verifier = match self.config.verifier_for(sn.as_deref()) {
                    Err(CertError::UnknownAlipayCert { sn }) => {
                        self.download_alipay_cert(&sn).await?;
                        self.config.verifier_for(Some(&sn)).map_err(|e| unknown(e.into()))?
                    }
                    other => other.map_err(|e| unknown(e.into()))?,
                };
                verifier.verify(SignType::Rsa2, &content, sig).map_err(|e| unknown(e.into()))?;
                true
            }
        };
        if status.is_success() {
            if !signed {
                return Err(unknown(ResponseError::Unsigned));
            }
            let plain = match &self.config.encrypt_key {
                Some(key) => key.decrypt(&text).map_err(|e| unknown(e.into()))?,
                None => text,
            };
            let answer: C::Response =
                serde_json::from_str(&plain).map_err(|e| unknown(ResponseError::BadNode(e.to_string())))?;
            call.check_answer(&answer).map_err(unknown)?;
            return Ok(answer);
        }
        let error: v3::ErrorBody = serde_json::from_str(&text)
            .map_err(|_| CallError::Unknown(UnknownCause::HttpStatus(status.as_u16())))?;
        let err = GatewayError { status: v2_status(&error) };
        if status.is_server_error() {
            // Whatever the code says, a server error does not say what happened.
            return Err(CallError::Unknown(UnknownCause::Gateway(err)));
        }
        match err.certainty() {
            Certainty::Unknown => Err(CallError::Unknown(UnknownCause::Gateway(err))),
            // A business failure must be Alipay's own word before anything is decided on it.
            _ if err.status.code == "40004" && !signed => Err(unknown(ResponseError::Unsigned)),
            _ => Err(CallError::Failed(err)),
        }
    }

    async fn once<C: ApiCall>(&self, call: &C, callbacks: &Callbacks) -> Result<C::Response, CallError> {
        let text = self.post::<C>(call, callbacks, Content::Api).await?;
        let answer = match decode_response::<C::Response>(&self.config, C::METHOD, &text) {
            Err(e) if unknown_alipay_cert(&e).is_some() => {
                // Alipay rotated its certificate: fetch the one named, check it against the root,
                // and read the same answer again.
                let sn = unknown_alipay_cert(&e).unwrap_or_default().to_owned();
                self.download_alipay_cert(&sn).await?;
                decode_response::<C::Response>(&self.config, C::METHOD, &text)?
            }
            other => other?,
        };
        // A verified answer about another trade or refund says nothing about this one.
        call.check_answer(&answer).map_err(|e| CallError::Unknown(UnknownCause::Response(e)))?;
        Ok(answer)
    }

    /// `alipay.open.app.alipaycert.download`: the certificate is trusted only if it chains to the
    /// configured root, and the answer must be signed with the key it delivers.
    /// Whatever goes wrong here leaves the outcome of the call that needed the certificate
    /// unknown: that call was sent and answered, only its answer could not be checked.
    async fn download_alipay_cert(&self, sn: &str) -> Result<(), CallError> {
        let unknown_cert = || {
            CallError::Unknown(UnknownCause::Response(ResponseError::Cert(CertError::UnknownAlipayCert {
                sn: sn.chars().take(64).collect(),
            })))
        };
        match self.fetch_alipay_cert(sn).await {
            Ok(()) => Ok(()),
            Err(e @ CallError::Unknown(_)) => Err(e),
            Err(e) => {
                tracing::warn!(alipay_cert_sn = sn, error = %e, "Alipay's certificate could not be downloaded");
                Err(unknown_cert())
            }
        }
    }

    /// `alipay.open.app.alipaycert.download`, sent in the clear: the certificate is trusted only
    /// once it is issued to Alipay, chains to the configured root, names the SN asked for, and the
    /// answer carrying it is signed with its key; nothing is decrypted or trusted before that.
    async fn fetch_alipay_cert(&self, sn: &str) -> Result<(), CallError> {
        let unknown = |e: ResponseError| CallError::Unknown(UnknownCause::Response(e));
        let Some(certs) = &self.config.cert_mode else {
            return Err(unknown(ResponseError::Cert(CertError::UnknownAlipayCert { sn: sn.to_owned() })));
        };
        let call = AlipayCertDownload { alipay_cert_sn: sn.to_owned() };
        let text = self.post::<AlipayCertDownload>(&call, &Callbacks::default(), Content::Page).await?;
        let env = extract(&text, &response_key(AlipayCertDownload::METHOD)).map_err(unknown)?;
        if env.encrypted {
            return Err(unknown(ResponseError::BadNode(
                "an encrypted answer to a request in the clear".into(),
            )));
        }
        let status: Status =
            serde_json::from_str(env.node).map_err(|e| unknown(ResponseError::BadNode(e.to_string())))?;
        if !status.is_success() {
            return Err(CallError::Unknown(UnknownCause::Gateway(GatewayError { status })));
        }
        let answer: crate::api::AlipayCertDownloadResponse =
            serde_json::from_str(env.node).map_err(|e| unknown(ResponseError::BadNode(e.to_string())))?;
        let pem = answer.certificate_pem().map_err(unknown)?;
        let (got, key) = certs.check_alipay_cert(&pem, self.clock.now()).map_err(|e| unknown(e.into()))?;
        if got.as_str() != sn {
            return Err(unknown(ResponseError::Mismatch {
                field: "alipay_cert_sn",
                asked: sn.to_owned(),
                answered: got.to_string(),
            }));
        }
        // Signed by the key it delivers.
        let verifier =
            crate::sign::Verifier::with_own_key(key.clone(), self.config.signer.public_key().clone())
                .map_err(|e| {
                    unknown(ResponseError::Cert(CertError::Key {
                        what: "downloaded Alipay certificate",
                        source: e,
                    }))
                })?;
        env.verify(&verifier, self.config.sign_type()).map_err(unknown)?;
        certs.trust_alipay_cert(got, key);
        tracing::info!(
            alipay_cert_sn = sn,
            "Alipay's rotated public-key certificate was downloaded and checked against the root"
        );
        Ok(())
    }

    /// Signs and posts one call; returns the body text.
    async fn post<C: ApiCall>(
        &self,
        call: &C,
        callbacks: &Callbacks,
        content: Content,
    ) -> Result<String, CallError> {
        let req =
            SignedRequest::build_for(&self.config, self.clock.as_ref(), C::METHOD, call, callbacks, content)?;
        let body = req.params.to_urlencoded();
        let started = std::time::Instant::now();
        let sent = self
            .http
            .post(req.gateway.clone())
            .header(reqwest::header::CONTENT_TYPE, "application/x-www-form-urlencoded;charset=utf-8")
            .body(body)
            .send()
            .await;
        let resp = sent.map_err(|e| CallError::Unknown(self.transport_cause(&e)))?;
        let status = resp.status();
        if !status.is_success() {
            return Err(CallError::Unknown(UnknownCause::HttpStatus(status.as_u16())));
        }
        let bytes = read_limited(resp).await.map_err(CallError::Unknown)?;
        tracing::debug!(method = C::METHOD, elapsed_ms = started.elapsed().as_millis(), "gateway answered");
        String::from_utf8(bytes)
            .map_err(|_| CallError::Unknown(UnknownCause::Response(ResponseError::NotJson("not UTF-8"))))
    }

    fn transport_cause(&self, e: &reqwest::Error) -> UnknownCause {
        if e.is_timeout() {
            UnknownCause::Timeout(self.timeout)
        } else {
            UnknownCause::Connection(e.to_string())
        }
    }
}

async fn read_limited(mut resp: reqwest::Response) -> Result<Vec<u8>, UnknownCause> {
    let mut out = Vec::new();
    loop {
        match resp.chunk().await {
            Ok(Some(chunk)) => {
                if out.len() + chunk.len() > MAX_RESPONSE_BYTES {
                    return Err(UnknownCause::Response(ResponseError::TooLarge {
                        size: out.len() + chunk.len(),
                        limit: MAX_RESPONSE_BYTES,
                    }));
                }
                out.extend_from_slice(&chunk);
            }
            Ok(None) => return Ok(out),
            Err(e) => return Err(UnknownCause::Connection(e.to_string())),
        }
    }
}

/// Reads a gateway response body for `method`: extracts the node, verifies its signature (unsigned
/// bodies are accepted only for gateway-level errors: Alipay signs business failures, `40004`, so
/// an unsigned one is not an answer to act on), decrypts it when encrypted, and classifies the
/// status.
///
/// In certificate mode the key is the one of the Alipay certificate the body names
/// (`alipay_cert_sn`); an unknown one is [`ResponseError::Cert`] with
/// [`CertError::UnknownAlipayCert`], which [`AlipayClient`] answers by downloading that certificate.
/// An encrypted node's signature covers its ciphertext, quotes included, and is checked first.
pub fn decode_response<R: DeserializeOwned>(
    config: &AppConfig,
    method: &str,
    body: &str,
) -> Result<R, CallError> {
    let unknown = |e: ResponseError| CallError::Unknown(UnknownCause::Response(e));
    let env = extract(body, &response_key(method)).map_err(unknown)?;
    if env.sign.is_some() || env.encrypted {
        let verifier = config.verifier_for(env.cert_sn.as_deref()).map_err(|e| unknown(e.into()))?;
        env.verify(&verifier, config.sign_type()).map_err(unknown)?;
    }
    let node = env.plain(config.encrypt_key.as_ref()).map_err(unknown)?;
    let status: Status =
        serde_json::from_str(&node).map_err(|e| unknown(ResponseError::BadNode(e.to_string())))?;
    match (&env.sign, status.is_success()) {
        (Some(_), _) => {}
        (None, true) => return Err(unknown(ResponseError::Unsigned)),
        (None, false) if status.code == "40004" => return Err(unknown(ResponseError::Unsigned)),
        // Gateway-level errors (bad app id, bad signature...) come back unsigned.
        (None, false) => {}
    }
    if !status.is_success() {
        let err = GatewayError { status };
        return Err(match err.certainty() {
            Certainty::Unknown => CallError::Unknown(UnknownCause::Gateway(err)),
            Certainty::Failed | Certainty::Succeeded => CallError::Failed(err),
        });
    }
    serde_json::from_str(&node).map_err(|e| unknown(ResponseError::BadNode(e.to_string())))
}

/// A v3 error as the v2 status it corresponds to: `ACQ.*` (and other business) codes are `40004`
/// failures with that sub-code, the platform's own codes (`invalid-signature`, `unknow-error`) the
/// gateway's `isv.`/`isp.` ones.
fn v2_status(e: &v3::ErrorBody) -> Status {
    let platform = e.code.bytes().all(|b| b.is_ascii_lowercase() || b == b'-');
    match (platform, e.code.as_str()) {
        (true, "unknow-error" | "unknown-error") => {
            Status::failure("20000", "isp.unknow-error", e.message.clone())
        }
        (true, code) => Status::failure("40002", &format!("isv.{code}"), e.message.clone()),
        (false, code) => Status::failure("40004", code, e.message.clone()),
    }
}

/// The SN of an Alipay certificate a response named that the configuration does not know.
fn unknown_alipay_cert(e: &CallError) -> Option<&str> {
    match e {
        CallError::Unknown(UnknownCause::Response(ResponseError::Cert(CertError::UnknownAlipayCert {
            sn,
        }))) => Some(sn),
        _ => None,
    }
}

/// The node of a gateway response: status fields followed by the API's fields.
#[derive(Debug, Serialize)]
pub struct ResponseNode<'a, T: Serialize> {
    #[serde(flatten)]
    pub status: &'a Status,
    #[serde(flatten)]
    pub body: Option<&'a T>,
}
