//! Building signed gateway requests: the common parameters, `biz_content`, the signature, and the
//! forms a browser is sent with (GET URL or auto-submitting POST form).

use std::fmt;
use std::sync::Arc;

use serde::Serialize;
use url::Url;

use crate::cert::CertMode;
use crate::encrypt::{AesError, AesKey, ENCRYPT_TYPE};
use crate::keys::KeyError;
use crate::params::{Charset, Params};
use crate::sign::{SignError, SignType, Signer, Verifier};
use crate::time::{Clock, format_alipay};

/// Everything a merchant needs to talk to one gateway as one app.
#[derive(Clone)]
pub struct AppConfig {
    pub app_id: String,
    /// `https://openapi.alipay.com/gateway.do`, Alipay's sandbox, or a local sandbox.
    pub gateway: Url,
    /// Signs with the app's private key.
    pub signer: Signer,
    /// Verifies with Alipay's public key (and names the swapped-key mistake). In certificate mode,
    /// the key of the Alipay certificate configured first.
    pub verifier: Verifier,
    /// Public-key certificate mode: the SNs every request carries and Alipay's certificates by SN.
    pub cert_mode: Option<Arc<CertMode>>,
    /// Content encryption (`encrypt_type=AES`) of `biz_content` and of responses.
    pub encrypt_key: Option<AesKey>,
    /// Which protocol API calls use (page payments are `gateway.do` in both).
    pub protocol: Protocol,
    /// The merchant's Alipay user id (`2088...`), checked in notifications when known.
    pub seller_id: Option<String>,
    pub app_auth_token: Option<String>,
}

impl fmt::Debug for AppConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AppConfig")
            .field("app_id", &self.app_id)
            .field("gateway", &self.gateway.as_str())
            .field("sign_type", &self.signer.sign_type())
            .field("alipay_public_key", &self.verifier.public_key().fingerprint())
            .field("seller_id", &self.seller_id)
            .field("cert_mode", &self.cert_mode)
            .field("encrypt_key", &self.encrypt_key)
            .field("protocol", &self.protocol)
            .finish_non_exhaustive()
    }
}

impl AppConfig {
    /// Builds a config, refusing an Alipay public key that is the app's own key.
    pub fn new(
        app_id: impl Into<String>,
        gateway: Url,
        signer: Signer,
        alipay_public_key: crate::keys::PublicKey,
    ) -> Result<Self, KeyError> {
        let verifier = Verifier::with_own_key(alipay_public_key, signer.public_key().clone())?;
        Ok(AppConfig {
            app_id: app_id.into(),
            gateway,
            signer,
            verifier,
            seller_id: None,
            app_auth_token: None,
            cert_mode: None,
            encrypt_key: None,
            protocol: Protocol::Gateway,
        })
    }

    /// Builds a config in public-key certificate mode: Alipay's key comes from its certificate.
    pub fn with_cert_mode(
        app_id: impl Into<String>,
        gateway: Url,
        signer: Signer,
        cert_mode: CertMode,
    ) -> Result<Self, crate::cert::CertError> {
        let alipay_key = cert_mode.alipay_key(None)?;
        let mut config = AppConfig::new(app_id, gateway, signer, alipay_key).map_err(|source| {
            crate::cert::CertError::Key { what: "Alipay public-key certificate", source }
        })?;
        config.cert_mode = Some(Arc::new(cert_mode));
        Ok(config)
    }

    /// The verifier for a response or notification naming `alipay_cert_sn` (certificate mode), or
    /// the configured one.
    pub fn verifier_for(&self, alipay_cert_sn: Option<&str>) -> Result<Verifier, crate::cert::CertError> {
        match (&self.cert_mode, alipay_cert_sn) {
            (Some(certs), Some(sn)) => {
                let key = certs.alipay_key(Some(sn))?;
                Verifier::with_own_key(key, self.signer.public_key().clone()).map_err(|source| {
                    crate::cert::CertError::Key { what: "Alipay public-key certificate", source }
                })
            }
            _ => Ok(self.verifier.clone()),
        }
    }

    pub fn sign_type(&self) -> SignType {
        self.signer.sign_type()
    }
}

/// The protocol of API calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Protocol {
    /// `gateway.do` with form parameters and `*_response` envelopes (OpenAPI v2).
    #[default]
    Gateway,
    /// OpenAPI v3: REST paths, JSON, signatures in headers.
    V3,
}

/// Why a request could not be built. Nothing was sent.
#[derive(Debug, thiserror::Error)]
pub enum RequestError {
    #[error("biz_content could not be serialised: {0}")]
    Serialize(String),
    #[error(transparent)]
    Sign(#[from] SignError),
    #[error("biz_content could not be encrypted: {0}")]
    Encrypt(#[from] AesError),
    #[error("invalid {field}: {reason}")]
    Invalid { field: &'static str, reason: String },
}

/// URLs the gateway should use for this request.
#[derive(Debug, Clone, Default)]
pub struct Callbacks {
    pub notify_url: Option<String>,
    pub return_url: Option<String>,
}

/// A signed parameter set for one gateway call.
#[derive(Debug, Clone)]
pub struct SignedRequest {
    pub gateway: Url,
    pub params: Params,
}

/// Protocol parameters the official Node SDK puts in the URL; everything else (notably
/// `biz_content`) travels in the form body.
const URL_PARAMS: [&str; 13] = [
    "app_id",
    "method",
    "format",
    "charset",
    "sign_type",
    "sign",
    "timestamp",
    "version",
    "notify_url",
    "return_url",
    "app_auth_token",
    "app_cert_sn",
    "alipay_root_cert_sn",
];

fn html_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Whether `biz_content` is encrypted when the app has a content key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Content {
    /// Server-to-server calls: encrypted when the app has a key.
    Api,
    /// Pages the buyer's browser is sent to: always plain.
    Page,
}

impl SignedRequest {
    /// Signs `method` with plain `biz_content` at `clock.now()`.
    pub fn build<B: Serialize>(
        config: &AppConfig,
        clock: &dyn Clock,
        method: &str,
        biz: &B,
        callbacks: &Callbacks,
    ) -> Result<SignedRequest, RequestError> {
        Self::build_for(config, clock, method, biz, callbacks, Content::Page)
    }

    /// Signs `method` at `clock.now()`; an API call's `biz_content` is encrypted when the app has a
    /// content key.
    pub fn build_for<B: Serialize>(
        config: &AppConfig,
        clock: &dyn Clock,
        method: &str,
        biz: &B,
        callbacks: &Callbacks,
        content: Content,
    ) -> Result<SignedRequest, RequestError> {
        let mut biz_content =
            serde_json::to_string(biz).map_err(|e| RequestError::Serialize(e.to_string()))?;
        let mut p = Params::new();
        p.set("app_id", config.app_id.clone());
        p.set("method", method);
        p.set("format", "JSON");
        p.set("charset", Charset::Utf8.as_str());
        p.set("sign_type", config.sign_type().as_str());
        p.set("timestamp", format_alipay(clock.now()));
        p.set("version", "1.0");
        if let (Some(key), Content::Api) = (&config.encrypt_key, content) {
            biz_content = key.encrypt(&biz_content)?;
            p.set("encrypt_type", ENCRYPT_TYPE);
        }
        p.set("biz_content", biz_content);
        if let Some(certs) = &config.cert_mode {
            p.set("app_cert_sn", certs.app_cert_sn().as_str());
            p.set("alipay_root_cert_sn", certs.root_cert_sn());
        }
        for (name, url) in [("notify_url", &callbacks.notify_url), ("return_url", &callbacks.return_url)] {
            if let Some(u) = url {
                Url::parse(u).map_err(|e| RequestError::Invalid { field: name, reason: e.to_string() })?;
                p.set(name, u.clone());
            }
        }
        if let Some(t) = &config.app_auth_token {
            p.set("app_auth_token", t.clone());
        }
        let sign = config.signer.sign(&p.request_sign_content())?;
        p.set("sign", sign);
        Ok(SignedRequest { gateway: config.gateway.clone(), params: p })
    }

    /// The gateway URL with every parameter in the query string (a `GET` page payment).
    pub fn to_get_url(&self) -> Url {
        let mut u = self.gateway.clone();
        u.set_query(Some(&self.params.to_urlencoded()));
        u
    }

    /// Protocol parameters in the URL, the rest in the body, as the official SDKs send them.
    pub fn split(&self) -> (Url, String) {
        let (url_params, body_params): (Vec<_>, Vec<_>) =
            self.params.iter().partition(|(k, _)| URL_PARAMS.contains(k));
        let mut u = self.gateway.clone();
        u.set_query(Some(&Params::encode_pairs(url_params.into_iter())));
        (u, Params::encode_pairs(body_params.into_iter()))
    }

    /// An HTML form that posts itself to the gateway (the `pageExecute` POST form).
    pub fn to_post_form(&self) -> String {
        let (action, _) = self.split();
        let mut html = format!(
            "<form name=\"punchout_form\" method=\"post\" action=\"{}\">\n",
            html_escape(action.as_str())
        );
        for (k, v) in self.params.iter().filter(|(k, _)| !URL_PARAMS.contains(k)) {
            html.push_str(&format!(
                "<input type=\"hidden\" name=\"{}\" value=\"{}\">\n",
                html_escape(k),
                html_escape(v)
            ));
        }
        html.push_str("<input type=\"submit\" value=\"立即支付\" style=\"display:none\">\n</form>\n");
        html.push_str("<script>document.forms[0].submit();</script>");
        html
    }
}

/// A shared handle to a config, for clients that outlive the builder.
pub type SharedConfig = Arc<AppConfig>;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::{PrivateKey, PublicKey};
    use crate::time::ManualClock;

    fn config() -> AppConfig {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data");
        let key = PrivateKey::parse(&std::fs::read_to_string(format!("{dir}/app-private-key.pem")).unwrap())
            .unwrap();
        let alipay =
            PublicKey::parse(&std::fs::read_to_string(format!("{dir}/alipay-public-key.pem")).unwrap())
                .unwrap();
        AppConfig::new(
            "2021000122671080",
            Url::parse("https://openapi.alipay.com/gateway.do").unwrap(),
            Signer::new(key, SignType::Rsa2).unwrap(),
            alipay,
        )
        .unwrap()
    }

    #[test]
    fn get_url_and_post_form_carry_the_same_signed_params() {
        let clock = ManualClock::new(crate::time::parse_alipay("2024-01-01 12:00:00").unwrap());
        let biz = serde_json::json!({"out_trade_no": "1", "subject": "<b>\"x\"</b>"});
        let cb = Callbacks { notify_url: None, return_url: Some("http://127.0.0.1:1234/return".into()) };
        let r = SignedRequest::build(&config(), &clock, "alipay.trade.page.pay", &biz, &cb).unwrap();
        let url = r.to_get_url();
        let (back, _) =
            Params::parse_urlencoded(url.query().unwrap().as_bytes(), Charset::Utf8, Default::default())
                .unwrap();
        assert_eq!(back, r.params);
        let form = r.to_post_form();
        assert!(form.contains("&lt;b&gt;"), "biz_content is escaped in the form");
        assert!(!form.contains("<b>"));
        let (action, body) = r.split();
        assert!(action.query().unwrap().contains("sign="));
        assert!(body.starts_with("biz_content="));
    }

    #[test]
    fn refuses_bad_callback_urls() {
        let clock = ManualClock::new(crate::time::SystemClock.now());
        let cb = Callbacks { notify_url: Some("not a url".into()), return_url: None };
        let r = SignedRequest::build(&config(), &clock, "m", &serde_json::json!({}), &cb);
        assert!(matches!(r, Err(RequestError::Invalid { field: "notify_url", .. })));
    }
}
