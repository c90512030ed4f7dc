//! Synchronous gateway responses: cutting the exact raw text of the `*_response` node out of the
//! body (the bytes Alipay signed), verifying it, and building such bodies on the gateway side.
//!
//! The node is never re-serialised before verification: Alipay signs the text as it sent it,
//! escaped slashes (`\/`) and all.

use crate::sign::{SignError, SignType, Signer, Verifier, VerifyError};

/// The response node key of an API: `alipay.trade.query` → `alipay_trade_query_response`.
pub fn response_key(method: &str) -> String {
    let mut k = method.replace('.', "_");
    k.push_str("_response");
    k
}

/// Why a response body could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResponseError {
    #[error("the response is not a JSON object: {0}")]
    NotJson(&'static str),
    #[error("the response has no {0:?} node and no error_response")]
    NoNode(String),
    #[error("the response has key {0:?} more than once")]
    DuplicateKey(String),
    #[error("the response node is encrypted (encrypt_type=AES) but no content key is configured")]
    Encrypted,
    #[error("the encrypted response node could not be decrypted: {0}")]
    Decrypt(#[from] crate::encrypt::AesError),
    #[error("{0}")]
    Cert(#[from] crate::cert::CertError),
    #[error("text after the end of the JSON response")]
    TrailingData,
    #[error("the response node could not be decoded: {0}")]
    BadNode(String),
    #[error("the response signature is invalid: {0}")]
    Signature(#[from] VerifyError),
    #[error("a successful response carries no signature")]
    Unsigned,
    #[error("the response is {size} bytes; at most {limit} are accepted")]
    TooLarge { size: usize, limit: usize },
    #[error("the response is about {field} {answered}, not the {asked} asked about")]
    Mismatch { field: &'static str, asked: String, answered: String },
}

/// The parts of a response body, borrowed from it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope<'a> {
    /// Which node was found: the API's `*_response`, or `error_response`.
    pub node_key: String,
    /// The node's exact raw text: an object, or (content encryption) a JSON string of base64
    /// ciphertext, quotes included, which is what the signature covers.
    pub node: &'a str,
    /// Whether the node is encrypted (a string rather than an object).
    pub encrypted: bool,
    /// The decoded `sign` value, if any.
    pub sign: Option<String>,
    /// `alipay_cert_sn`, present in certificate mode.
    pub cert_sn: Option<String>,
}

struct Scanner<'a> {
    text: &'a str,
    pos: usize,
}

impl<'a> Scanner<'a> {
    fn peek(&self) -> Option<u8> {
        self.text.as_bytes().get(self.pos).copied()
    }

    fn skip_ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.pos += 1;
        }
    }

    fn expect(&mut self, b: u8, what: &'static str) -> Result<(), ResponseError> {
        if self.peek() == Some(b) {
            self.pos += 1;
            Ok(())
        } else {
            Err(ResponseError::NotJson(what))
        }
    }

    /// Reads a JSON string at the cursor and returns its decoded value.
    fn string(&mut self) -> Result<String, ResponseError> {
        let start = self.pos;
        self.skip_string()?;
        let raw = self.text.get(start..self.pos).ok_or(ResponseError::NotJson("string"))?;
        serde_json::from_str::<String>(raw).map_err(|_| ResponseError::NotJson("string escape"))
    }

    /// Moves past a JSON string, honouring backslash escapes.
    fn skip_string(&mut self) -> Result<(), ResponseError> {
        self.expect(b'"', "expected a string")?;
        loop {
            match self.peek() {
                None => return Err(ResponseError::NotJson("unterminated string")),
                Some(b'\\') => self.pos += 2,
                Some(b'"') => {
                    self.pos += 1;
                    return Ok(());
                }
                Some(_) => self.pos += 1,
            }
        }
    }

    /// Moves past any JSON value; strings inside objects and arrays may contain braces.
    fn skip_value(&mut self) -> Result<(), ResponseError> {
        match self.peek() {
            Some(b'"') => self.skip_string(),
            Some(b'{' | b'[') => {
                let mut depth = 0usize;
                loop {
                    match self.peek() {
                        None => return Err(ResponseError::NotJson("unbalanced braces")),
                        Some(b'"') => self.skip_string()?,
                        Some(b'{' | b'[') => {
                            depth += 1;
                            self.pos += 1;
                        }
                        Some(b'}' | b']') => {
                            depth = depth.saturating_sub(1);
                            self.pos += 1;
                            if depth == 0 {
                                return Ok(());
                            }
                        }
                        Some(_) => self.pos += 1,
                    }
                }
            }
            Some(_) => {
                let start = self.pos;
                while let Some(b) = self.peek() {
                    if matches!(b, b',' | b'}' | b']' | b' ' | b'\t' | b'\n' | b'\r') {
                        break;
                    }
                    self.pos += 1;
                }
                if self.pos == start { Err(ResponseError::NotJson("expected a value")) } else { Ok(()) }
            }
            None => Err(ResponseError::NotJson("expected a value")),
        }
    }
}

/// Splits a response body into its node (exact raw text), `sign` and `alipay_cert_sn`.
///
/// Only top-level keys are considered, so a `"sign"` key nested inside the node is harmless.
/// Whitespace and newlines anywhere between tokens are tolerated. When the API's node is absent,
/// `error_response` is taken instead.
pub fn extract<'a>(body: &'a str, response_key: &str) -> Result<Envelope<'a>, ResponseError> {
    let mut s = Scanner { text: body, pos: 0 };
    s.skip_ws();
    s.expect(b'{', "expected '{'")?;
    let mut seen: Vec<String> = Vec::new();
    let mut node: Option<(String, &str)> = None;
    let mut error_node: Option<&str> = None;
    let mut sign = None;
    let mut cert_sn = None;
    s.skip_ws();
    if s.peek() == Some(b'}') {
        s.pos += 1;
    } else {
        loop {
            s.skip_ws();
            let key = s.string()?;
            if seen.contains(&key) {
                return Err(ResponseError::DuplicateKey(key));
            }
            s.skip_ws();
            s.expect(b':', "expected ':'")?;
            s.skip_ws();
            let start = s.pos;
            s.skip_value()?;
            let raw = body.get(start..s.pos).ok_or(ResponseError::NotJson("value"))?;
            if key == response_key {
                node = Some((key.clone(), raw));
            } else if key == "error_response" {
                error_node = Some(raw);
            } else if key == "sign" {
                sign = Some(
                    serde_json::from_str::<String>(raw)
                        .map_err(|_| ResponseError::NotJson("sign is not a string"))?,
                );
            } else if key == "alipay_cert_sn" {
                cert_sn = Some(
                    serde_json::from_str::<String>(raw)
                        .map_err(|_| ResponseError::NotJson("alipay_cert_sn is not a string"))?,
                );
            }
            seen.push(key);
            s.skip_ws();
            match s.peek() {
                Some(b',') => s.pos += 1,
                Some(b'}') => {
                    s.pos += 1;
                    break;
                }
                _ => return Err(ResponseError::NotJson("expected ',' or '}'")),
            }
        }
    }
    s.skip_ws();
    if s.pos != body.len() {
        return Err(ResponseError::TrailingData);
    }
    let (node_key, node) = match (node, error_node) {
        (Some(n), _) => n,
        (None, Some(e)) => ("error_response".to_owned(), e),
        (None, None) => return Err(ResponseError::NoNode(response_key.to_owned())),
    };
    let encrypted = node.starts_with('"');
    if !encrypted && !node.starts_with('{') {
        return Err(ResponseError::BadNode("the node is not an object".into()));
    }
    Ok(Envelope { node_key, node, encrypted, sign, cert_sn })
}

impl Envelope<'_> {
    /// The node's JSON text: as sent, or decrypted with `key` (after the signature over the
    /// ciphertext has been checked by the caller).
    pub fn plain(
        &self,
        key: Option<&crate::encrypt::AesKey>,
    ) -> Result<std::borrow::Cow<'_, str>, ResponseError> {
        if !self.encrypted {
            return Ok(std::borrow::Cow::Borrowed(self.node));
        }
        let key = key.ok_or(ResponseError::Encrypted)?;
        let b64: String =
            serde_json::from_str(self.node).map_err(|_| ResponseError::NotJson("string escape"))?;
        Ok(std::borrow::Cow::Owned(key.decrypt(&b64)?))
    }

    /// Verifies the signature over the node's exact text.
    pub fn verify(&self, verifier: &Verifier, sign_type: SignType) -> Result<(), ResponseError> {
        match &self.sign {
            None => Err(ResponseError::Unsigned),
            Some(sig) => verifier.verify(sign_type, self.node, sig).map_err(ResponseError::from),
        }
    }
}

/// Escapes every `/` as `\/`, as Alipay's gateway writes its JSON. Only valid on serialised JSON,
/// where a `/` can only occur inside a string.
pub fn escape_slashes(json: &str) -> String {
    json.replace('/', "\\/")
}

/// Builds a gateway response body `{"<key>":<node>,"sign":"..."}` with the signature over the
/// node's exact text. `signer = None` produces an unsigned body, as Alipay does for gateway errors.
pub fn encode(response_key: &str, node_json: &str, signer: Option<&Signer>) -> Result<String, SignError> {
    let sign = signer.map(|s| s.sign(node_json)).transpose()?;
    Ok(assemble(response_key, node_json, sign.as_deref(), None))
}

/// [`encode`] for an app in certificate mode: `alipay_cert_sn` (the certificate whose key signed)
/// goes between the node and `sign`, where Alipay puts it and where the SDKs that cut the signed
/// text at fixed offsets expect it.
pub fn encode_with_cert_sn(
    response_key: &str,
    node_json: &str,
    signer: &Signer,
    alipay_cert_sn: Option<&str>,
) -> Result<String, SignError> {
    let sign = signer.sign(node_json)?;
    Ok(assemble(response_key, node_json, Some(&sign), alipay_cert_sn))
}

/// A response body from its parts: `{"<key>":<node>[,"alipay_cert_sn":"…"][,"sign":"…"]}`, compact,
/// in the order Alipay writes them. The signature is the caller's (over the node's bytes in the
/// answer's charset).
pub fn assemble(
    response_key: &str,
    node_json: &str,
    sign: Option<&str>,
    alipay_cert_sn: Option<&str>,
) -> String {
    let key = serde_json::to_string(response_key).unwrap_or_else(|_| format!("\"{response_key}\""));
    let mut out = format!("{{{key}:{node_json}");
    if let Some(sn) = alipay_cert_sn {
        out.push_str(",\"alipay_cert_sn\":");
        out.push_str(&serde_json::to_string(sn).unwrap_or_default());
    }
    if let Some(sign) = sign {
        out.push_str(",\"sign\":\"");
        out.push_str(sign);
        out.push('"');
    }
    out.push('}');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_escaped_slashes_and_whitespace() {
        let body = "{\n  \"alipay_trade_precreate_response\" : {\"code\":\"10000\",\"qr_code\":\"https:\\/\\/qr.alipay.com\\/bax\"} ,\n \"sign\" : \"abc\"\n}\n";
        let e = extract(body, "alipay_trade_precreate_response").unwrap();
        assert_eq!(e.node, "{\"code\":\"10000\",\"qr_code\":\"https:\\/\\/qr.alipay.com\\/bax\"}");
        assert_eq!(e.sign.as_deref(), Some("abc"));
    }

    #[test]
    fn nested_sign_and_braces_in_strings() {
        let body = r#"{"x_response":{"a":{"sign":"inner"},"b":"}{\"}","c":[1,{"d":"]"}]},"sign":"outer"}"#;
        let e = extract(body, "x_response").unwrap();
        assert_eq!(e.node, r#"{"a":{"sign":"inner"},"b":"}{\"}","c":[1,{"d":"]"}]}"#);
        assert_eq!(e.sign.as_deref(), Some("outer"));
        // sign first, node second
        let body2 = r#"{"sign":"s","x_response":{"k":"v"}}"#;
        assert_eq!(extract(body2, "x_response").unwrap().node, r#"{"k":"v"}"#);
    }

    #[test]
    fn error_response_and_unsigned() {
        let body = r#"{"error_response":{"code":"40002","msg":"Invalid Arguments","sub_code":"isv.invalid-app-id","sub_msg":"无效的AppID参数"}}"#;
        let e = extract(body, "alipay_trade_query_response").unwrap();
        assert_eq!(e.node_key, "error_response");
        assert_eq!(e.sign, None);
    }

    #[test]
    fn refuses_malformed_bodies() {
        assert_eq!(extract(r#"{"x_response":{}} trailing"#, "x_response"), Err(ResponseError::TrailingData));
        assert!(matches!(extract(r#"{"x_response":{}"#, "x_response"), Err(ResponseError::NotJson(_))));
        assert!(matches!(extract(r#"{"x_response":{"a":"b}"#, "x_response"), Err(ResponseError::NotJson(_))));
        assert!(matches!(
            extract(r#"{"x_response":{},"x_response":{}}"#, "x_response"),
            Err(ResponseError::DuplicateKey(_))
        ));
        assert_eq!(extract(r#"{"other":{}}"#, "x_response"), Err(ResponseError::NoNode("x_response".into())));
        let encrypted = extract(r#"{"x_response":"ZW5jcnlwdGVk","sign":"s"}"#, "x_response").unwrap();
        assert!(encrypted.encrypted);
        assert_eq!(encrypted.node, r#""ZW5jcnlwdGVk""#, "the quotes are part of the signed text");
        assert!(matches!(extract(r#"{"x_response":5}"#, "x_response"), Err(ResponseError::BadNode(_))));
        assert!(extract("", "x_response").is_err());
        assert!(extract("[]", "x_response").is_err());
        assert!(extract(r#"{"x_response":{}, "sign": 5}"#, "x_response").is_err());
    }

    #[test]
    fn encode_escapes_and_round_trips() {
        let node = escape_slashes(r#"{"qr_code":"https://qr.alipay.com/x"}"#);
        assert_eq!(node, r#"{"qr_code":"https:\/\/qr.alipay.com\/x"}"#);
        let body = encode("x_response", &node, None).unwrap();
        assert_eq!(extract(&body, "x_response").unwrap().node, node);
    }
}
