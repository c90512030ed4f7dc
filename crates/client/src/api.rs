//! The HTTP client for the shop API: timeouts, bounded retries for idempotent reads only, problem
//! documents turned into typed errors, and "offline" told apart from everything else.

use std::time::Duration;

use haitao_shop_api::error::Problem;
use haitao_shop_api::secret::SecretString;
use reqwest::{Method, StatusCode};
use serde::Serialize;
use serde::de::DeserializeOwned;
use url::Url;

use crate::error::{ClientError, Result};

/// Largest answer read from the shop.
const MAX_BODY: usize = 16 * 1024 * 1024;

#[derive(Debug, Clone)]
pub struct ShopApi {
    base: Url,
    http: reqwest::Client,
    read_retries: u32,
}

/// A raw answer (images, PDFs).
#[derive(Debug)]
pub struct Raw {
    pub content_type: String,
    pub bytes: Vec<u8>,
}

/// Whether the app may talk to a shop at `base`: `https://`, or `http://` on this machine only
/// (the built-in shop, tests), since passwords and tokens travel to it.
pub fn shop_address_allowed(base: &Url) -> bool {
    let loopback = match base.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    };
    base.scheme() == "https" && base.host().is_some() || base.scheme() == "http" && loopback
}

impl ShopApi {
    /// A client of the shop at `base`, which must be [`shop_address_allowed`].
    pub fn new(base: Url) -> Result<Self> {
        if !shop_address_allowed(&base) {
            return Err(ClientError::Invalid(format!(
                "the shop address {base} must start with https:// (http:// is only for a shop on this machine)"
            )));
        }
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(3))
            .timeout(Duration::from_secs(20))
            .user_agent(concat!("Haitao/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| ClientError::Internal(e.to_string()))?;
        Ok(ShopApi { base, http, read_retries: 2 })
    }

    pub fn base(&self) -> &Url {
        &self.base
    }

    /// `scheme://host:port` of the shop, for namespacing secrets.
    pub fn origin(&self) -> String {
        self.base.origin().ascii_serialization()
    }

    fn url(&self, path: &str) -> Result<Url> {
        self.base
            .join(&format!("api/v1/{}", path.trim_start_matches('/')))
            .map_err(|e| ClientError::Internal(e.to_string()))
    }

    async fn read_body(resp: reqwest::Response) -> Result<Vec<u8>> {
        let mut resp = resp;
        let mut out = Vec::new();
        while let Some(chunk) = resp.chunk().await.map_err(|e| ClientError::Offline(e.to_string()))? {
            if out.len() + chunk.len() > MAX_BODY {
                return Err(ClientError::BadResponse("answer too large".into()));
            }
            out.extend_from_slice(&chunk);
        }
        Ok(out)
    }

    async fn send_once(
        &self,
        method: Method,
        path: &str,
        token: Option<&SecretString>,
        body: Option<&serde_json::Value>,
        idempotency_key: Option<&str>,
    ) -> Result<(StatusCode, String, Vec<u8>)> {
        let mut rb = self.http.request(method, self.url(path)?);
        if let Some(t) = token {
            rb = rb.bearer_auth(t.expose());
        }
        if let Some(k) = idempotency_key {
            rb = rb.header(haitao_shop_api::IDEMPOTENCY_KEY, k);
        }
        if let Some(b) = body {
            rb = rb.json(b);
        }
        let resp = rb.send().await.map_err(|e| ClientError::Offline(e.to_string()))?;
        let status = resp.status();
        let ct = resp
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let bytes = Self::read_body(resp).await?;
        Ok((status, ct, bytes))
    }

    /// Sends a request. Reads (GET) are retried on connection failures; writes never are, except
    /// with an idempotency key the shop honours.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        token: Option<&SecretString>,
        body: Option<&serde_json::Value>,
        idempotency_key: Option<&str>,
    ) -> Result<Raw> {
        let retries = if method == Method::GET || idempotency_key.is_some() { self.read_retries } else { 0 };
        let mut attempt = 0;
        loop {
            match self.send_once(method.clone(), path, token, body, idempotency_key).await {
                Err(ClientError::Offline(e)) if attempt < retries => {
                    attempt += 1;
                    tracing::debug!(path, attempt, error = %e, "shop unreachable; retrying");
                    tokio::time::sleep(Duration::from_millis(150 * u64::from(attempt))).await;
                }
                Err(e) => return Err(e),
                Ok((status, ct, bytes)) if status.is_success() => return Ok(Raw { content_type: ct, bytes }),
                Ok((status, ct, bytes)) => {
                    if (ct.starts_with(Problem::CONTENT_TYPE) || ct.starts_with("application/json"))
                        && let Ok(p) = serde_json::from_slice::<Problem>(&bytes)
                    {
                        return Err(ClientError::Shop(p));
                    }
                    return Err(ClientError::BadResponse(format!("HTTP {status}")));
                }
            }
        }
    }

    pub async fn json<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        token: Option<&SecretString>,
        body: Option<&impl Serialize>,
        idempotency_key: Option<&str>,
    ) -> Result<T> {
        let body =
            body.map(serde_json::to_value).transpose().map_err(|e| ClientError::Internal(e.to_string()))?;
        let raw = self.send(method, path, token, body.as_ref(), idempotency_key).await?;
        if raw.bytes.is_empty() {
            // 204: the caller asked for `()` (or something with a default).
            return serde_json::from_slice(b"null").map_err(|e| ClientError::BadResponse(e.to_string()));
        }
        serde_json::from_slice(&raw.bytes).map_err(|e| ClientError::BadResponse(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_remote_shop_must_use_https() {
        for ok in
            ["https://shop.example.com/", "http://127.0.0.1:8080/", "http://localhost:1/", "http://[::1]:1/"]
        {
            assert!(ShopApi::new(ok.parse().unwrap()).is_ok(), "{ok}");
        }
        for bad in ["http://shop.example.com/", "http://192.168.1.10:8080/", "ftp://127.0.0.1/"] {
            let err = ShopApi::new(bad.parse().unwrap()).unwrap_err();
            assert!(err.to_string().contains("https://"), "{bad}: {err}");
        }
    }
}
