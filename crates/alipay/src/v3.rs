//! OpenAPI v3 (`https://openapi.alipay.com/v3/...`): JSON bodies over REST paths, the request
//! signed into an `Authorization: ALIPAY-SHA256withRSA app_id=…,nonce=…,timestamp=…,sign=…`
//! header, the answer signed into `alipay-signature` over `alipay-timestamp`, `alipay-nonce` and
//! the body, errors as `{"code","message","links"}` with a 4xx/5xx status.
//!
//! The signed texts, as Alipay's Node and Java SDKs build them:
//! - request: `{auth}\n{METHOD}\n{path?query}\n{body}\n` and, when the `alipay-app-auth-token`
//!   header is sent, `{token}\n`; `auth` is `app_id=…[,app_cert_sn=…],nonce=…,timestamp=…` with the
//!   timestamp in Unix milliseconds;
//! - answer: `{alipay-timestamp}\n{alipay-nonce}\n{body}\n`.
//!
//! With content encryption the body is the base64 ciphertext (`alipay-encrypt-type: AES`,
//! `text/plain`), and the ciphertext is what is signed.

use serde::{Deserialize, Serialize};

use crate::sign::{SignError, SignType, Signer, Verifier, VerifyError};

/// The scheme of the `Authorization` header.
pub const SCHEME: &str = "ALIPAY-SHA256withRSA";

/// Request and response headers.
pub mod header {
    pub const REQUEST_ID: &str = "alipay-request-id";
    pub const APP_AUTH_TOKEN: &str = "alipay-app-auth-token";
    pub const ROOT_CERT_SN: &str = "alipay-root-cert-sn";
    pub const ENCRYPT_TYPE: &str = "alipay-encrypt-type";
    pub const SIGNATURE: &str = "alipay-signature";
    pub const TIMESTAMP: &str = "alipay-timestamp";
    pub const NONCE: &str = "alipay-nonce";
    pub const SN: &str = "alipay-sn";
    pub const TRACE_ID: &str = "alipay-trace-id";
}

/// The methods Alipay serves under `/v3` among those Haitao uses (the v3 SDKs' trade APIs; the
/// bill's download link is a GET with query parameters there and stays on `gateway.do` here). Page
/// payments and the customs declaration are `gateway.do` only.
pub const METHODS: [&str; 8] = [
    "alipay.trade.precreate",
    "alipay.trade.query",
    "alipay.trade.refund",
    "alipay.trade.close",
    "alipay.trade.cancel",
    "alipay.trade.fastpay.refund.query",
    "alipay.trade.create",
    "alipay.trade.pay",
];

/// Whether `method` has a v3 path.
pub fn has_path(method: &str) -> bool {
    METHODS.contains(&method)
}

/// The REST path of a v2 method name: `alipay.trade.query` → `/v3/alipay/trade/query`.
pub fn path_of(method: &str) -> String {
    format!("/v3/{}", method.replace('.', "/"))
}

/// The v2 method name of a v3 path (the inverse of [`path_of`]).
pub fn method_of(path: &str) -> Option<String> {
    let rest = path.strip_prefix("/v3/")?;
    if rest.is_empty()
        || rest.split('/').any(|s| s.is_empty() || !s.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'))
    {
        return None;
    }
    Some(rest.replace('/', "."))
}

/// `app_id=…[,app_cert_sn=…],nonce=…,timestamp=…`, in the SDKs' order.
pub fn auth_string(app_id: &str, app_cert_sn: Option<&str>, nonce: &str, timestamp_ms: i64) -> String {
    let mut s = format!("app_id={app_id}");
    if let Some(sn) = app_cert_sn {
        s.push_str(",app_cert_sn=");
        s.push_str(sn);
    }
    s.push_str(&format!(",nonce={nonce},timestamp={timestamp_ms}"));
    s
}

/// The text a request's signature covers.
pub fn request_sign_content(
    auth: &str,
    method: &str,
    uri: &str,
    body: &str,
    app_auth_token: Option<&str>,
) -> String {
    let mut s = format!("{auth}\n{method}\n{uri}\n{body}\n");
    if let Some(t) = app_auth_token {
        s.push_str(t);
        s.push('\n');
    }
    s
}

/// The `Authorization` header value for a request.
pub fn authorization(
    signer: &Signer,
    auth: &str,
    method: &str,
    uri: &str,
    body: &str,
    app_auth_token: Option<&str>,
) -> Result<String, SignError> {
    let sign = signer.sign(&request_sign_content(auth, method, uri, body, app_auth_token))?;
    Ok(format!("{SCHEME} {auth},sign={sign}"))
}

/// The text an answer's signature covers.
pub fn response_sign_content(timestamp: &str, nonce: &str, body: &str) -> String {
    format!("{timestamp}\n{nonce}\n{body}\n")
}

/// Why an `Authorization` header could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("the Authorization header is missing")]
    Missing,
    #[error("the Authorization scheme is not {SCHEME}")]
    Scheme,
    #[error("the Authorization header has no sign")]
    NoSign,
    #[error("the Authorization header has no {0}")]
    MissingField(&'static str),
    #[error("the Authorization timestamp is not Unix milliseconds")]
    BadTimestamp,
    #[error("the Authorization header repeats {0}")]
    Repeated(String),
}

/// A request's `Authorization`, read on the gateway side.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authorization {
    /// Everything before `,sign=`, exactly as sent: the first line of the signed text.
    pub auth: String,
    pub app_id: String,
    pub app_cert_sn: Option<String>,
    pub nonce: String,
    pub timestamp_ms: i64,
    /// Base64 signature.
    pub sign: String,
}

impl Authorization {
    /// Reads `ALIPAY-SHA256withRSA k=v,…,sign=…`. Fields may come in any order; unknown ones (the
    /// official Postman script's `expired_seconds`) are kept in `auth` and signed like the rest.
    pub fn parse(value: &str) -> Result<Self, AuthError> {
        let rest = value.strip_prefix(SCHEME).ok_or(AuthError::Scheme)?;
        let rest = rest.strip_prefix(' ').ok_or(AuthError::Scheme)?;
        let (auth, sign) = rest.rsplit_once(",sign=").ok_or(AuthError::NoSign)?;
        if sign.is_empty() {
            return Err(AuthError::NoSign);
        }
        let (mut app_id, mut app_cert_sn, mut nonce, mut timestamp) = (None, None, None, None);
        for pair in auth.split(',') {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let slot = match k {
                "app_id" => &mut app_id,
                "app_cert_sn" => &mut app_cert_sn,
                "nonce" => &mut nonce,
                "timestamp" => &mut timestamp,
                _ => continue,
            };
            if slot.replace(v.to_owned()).is_some() {
                return Err(AuthError::Repeated(k.to_owned()));
            }
        }
        let timestamp_ms = timestamp
            .ok_or(AuthError::MissingField("timestamp"))?
            .parse::<i64>()
            .map_err(|_| AuthError::BadTimestamp)?;
        Ok(Authorization {
            auth: auth.to_owned(),
            app_id: app_id.filter(|a| !a.is_empty()).ok_or(AuthError::MissingField("app_id"))?,
            app_cert_sn,
            nonce: nonce.filter(|n| !n.is_empty()).ok_or(AuthError::MissingField("nonce"))?,
            timestamp_ms,
            sign: sign.to_owned(),
        })
    }

    /// Verifies the request's signature with the app's key.
    pub fn verify(
        &self,
        verifier: &Verifier,
        method: &str,
        uri: &str,
        body: &str,
        app_auth_token: Option<&str>,
    ) -> Result<(), VerifyError> {
        let content = request_sign_content(&self.auth, method, uri, body, app_auth_token);
        verifier.verify(SignType::Rsa2, &content, &self.sign)
    }
}

/// A solution link of an error (Alipay sends a list of them; some of its SDKs read a string).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Link {
    pub link: String,
    #[serde(default)]
    pub desc: String,
}

/// An error answer's body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    pub code: String,
    pub message: String,
    #[serde(default, deserialize_with = "links")]
    pub links: Vec<Link>,
}

fn links<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<Link>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Links {
        List(Vec<Link>),
        One(String),
    }
    Ok(match Option::<Links>::deserialize(d)? {
        None => Vec::new(),
        Some(Links::List(l)) => l,
        Some(Links::One(s)) if s.is_empty() => Vec::new(),
        Some(Links::One(s)) => vec![Link { link: s, desc: String::new() }],
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::PrivateKey;

    #[test]
    fn the_signed_texts_are_the_sdks() {
        let auth = auth_string("2021000000000001", None, "n1", 1_700_000_000_123);
        assert_eq!(auth, "app_id=2021000000000001,nonce=n1,timestamp=1700000000123");
        assert_eq!(
            auth_string("a", Some("sn"), "n", 1),
            "app_id=a,app_cert_sn=sn,nonce=n,timestamp=1",
            "the certificate SN goes after the app"
        );
        assert_eq!(
            request_sign_content(&auth, "POST", "/v3/alipay/trade/query", "{\"out_trade_no\":\"T1\"}", None),
            "app_id=2021000000000001,nonce=n1,timestamp=1700000000123\nPOST\n/v3/alipay/trade/query\n{\"out_trade_no\":\"T1\"}\n"
        );
        assert_eq!(
            request_sign_content("a", "GET", "/v3/x?y=1", "", Some("tok")),
            "a\nGET\n/v3/x?y=1\n\ntok\n"
        );
        assert_eq!(response_sign_content("1700000000999", "n2", "{}"), "1700000000999\nn2\n{}\n");
        assert_eq!(path_of("alipay.trade.fastpay.refund.query"), "/v3/alipay/trade/fastpay/refund/query");
        assert_eq!(
            method_of("/v3/alipay/trade/fastpay/refund/query").as_deref(),
            Some("alipay.trade.fastpay.refund.query")
        );
        assert_eq!(method_of("/v3/alipay//x"), None);
        assert_eq!(method_of("/v3/Alipay/x"), None);
    }

    #[test]
    fn an_authorization_round_trips_and_verifies() {
        let key = PrivateKey::parse(
            &std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/app-private-key.pem"))
                .unwrap(),
        )
        .unwrap();
        let signer = Signer::new(key.clone(), SignType::Rsa2).unwrap();
        let auth = auth_string("2021000000000001", Some("abc"), "n1", 1_700_000_000_123);
        let header = authorization(&signer, &auth, "POST", "/v3/alipay/trade/query", "{}", None).unwrap();
        let a = Authorization::parse(&header).unwrap();
        assert_eq!(a.app_id, "2021000000000001");
        assert_eq!(a.app_cert_sn.as_deref(), Some("abc"));
        assert_eq!(a.timestamp_ms, 1_700_000_000_123);
        let v = Verifier::new(key.public_key().clone());
        a.verify(&v, "POST", "/v3/alipay/trade/query", "{}", None).unwrap();
        assert!(a.verify(&v, "POST", "/v3/alipay/trade/query", "{ }", None).is_err(), "the body is signed");
        assert!(a.verify(&v, "GET", "/v3/alipay/trade/query", "{}", None).is_err(), "the method is signed");
        assert!(
            a.verify(&v, "POST", "/v3/alipay/trade/query", "{}", Some("t")).is_err(),
            "the token is signed"
        );
        // Any order, extra fields kept in the signed text.
        let reordered = Authorization::parse(
            "ALIPAY-SHA256withRSA timestamp=5,nonce=x,app_id=a,expired_seconds=120,sign=AAAA",
        )
        .unwrap();
        assert_eq!(reordered.auth, "timestamp=5,nonce=x,app_id=a,expired_seconds=120");
        assert_eq!(Authorization::parse("Bearer x"), Err(AuthError::Scheme));
        assert_eq!(
            Authorization::parse("ALIPAY-SHA256withRSA app_id=a,nonce=n,timestamp=1"),
            Err(AuthError::NoSign)
        );
        assert_eq!(
            Authorization::parse("ALIPAY-SHA256withRSA app_id=a,nonce=n,timestamp=soon,sign=A"),
            Err(AuthError::BadTimestamp)
        );
        assert_eq!(
            Authorization::parse("ALIPAY-SHA256withRSA nonce=n,timestamp=1,sign=A"),
            Err(AuthError::MissingField("app_id"))
        );
        assert_eq!(
            Authorization::parse("ALIPAY-SHA256withRSA app_id=a,app_id=b,nonce=n,timestamp=1,sign=A"),
            Err(AuthError::Repeated("app_id".into()))
        );
    }

    #[test]
    fn error_links_are_a_list_or_a_string() {
        let list: ErrorBody = serde_json::from_str(
            r#"{"code":"ACQ.TRADE_NOT_EXIST","message":"交易不存在","links":[{"link":"https://open.alipay.com/api/errCheck?traceId=1","desc":"解决方案"}]}"#,
        )
        .unwrap();
        assert_eq!(list.links.len(), 1);
        let one: ErrorBody =
            serde_json::from_str(r#"{"code":"c","message":"m","links":"https://x"}"#).unwrap();
        assert_eq!(one.links[0].link, "https://x");
        let none: ErrorBody = serde_json::from_str(r#"{"code":"c","message":"m"}"#).unwrap();
        assert!(none.links.is_empty());
    }
}
