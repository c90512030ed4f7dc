//! Parameter maps: parsing `application/x-www-form-urlencoded` bodies and query strings exactly
//! once, in the message's charset; the canonical strings Alipay signs; transport encoding.

use std::collections::BTreeMap;
use std::fmt;

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

/// Characters left as they are in transport encoding (RFC 3986 unreserved).
const VALUE_SET: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_').remove(b'~');

/// Why a parameter string was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParamError {
    #[error("the message is {size} bytes; at most {limit} are accepted")]
    TooLarge { size: usize, limit: usize },
    #[error("the message has more than {limit} parameters")]
    TooMany { limit: usize },
    #[error("parameter {key:?} is {size} bytes; at most {limit} are accepted")]
    ValueTooLarge { key: String, size: usize, limit: usize },
    #[error("parameter {0:?} appears more than once")]
    Duplicate(String),
    #[error("malformed percent-encoding in parameter {0:?}")]
    BadPercentEncoding(String),
    #[error("parameter {key:?} is not valid {charset}")]
    BadText { key: String, charset: Charset },
    #[error("a parameter has an empty name")]
    EmptyKey,
    #[error("unsupported charset {0:?} (utf-8 or GBK)")]
    UnsupportedCharset(String),
    #[error("required parameter {0:?} is missing")]
    Missing(&'static str),
}

/// The charsets Alipay accepts in `charset`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Charset {
    #[default]
    Utf8,
    Gbk,
}

impl Charset {
    /// Reads a `charset` parameter value (`utf-8`, `UTF-8`, `utf8`, `GBK`, `gbk`, `gb2312`).
    pub fn parse(value: &str) -> Result<Self, ParamError> {
        match value.to_ascii_lowercase().as_str() {
            "utf-8" | "utf8" => Ok(Charset::Utf8),
            "gbk" | "gb2312" | "gb18030" => Ok(Charset::Gbk),
            _ => Err(ParamError::UnsupportedCharset(value.chars().take(20).collect())),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Charset::Utf8 => "utf-8",
            Charset::Gbk => "GBK",
        }
    }

    /// Decodes owned bytes, handing them back when they are not valid text in this charset.
    fn decode_owned(self, bytes: Vec<u8>) -> Result<String, Vec<u8>> {
        match self {
            Charset::Utf8 => String::from_utf8(bytes).map_err(std::string::FromUtf8Error::into_bytes),
            Charset::Gbk => self.decode(&bytes).ok_or(bytes),
        }
    }

    pub fn decode(self, bytes: &[u8]) -> Option<String> {
        match self {
            Charset::Utf8 => String::from_utf8(bytes.to_vec()).ok(),
            Charset::Gbk => encoding_rs::GBK
                .decode_without_bom_handling_and_without_replacement(bytes)
                .map(std::borrow::Cow::into_owned),
        }
    }

    /// Encodes text in this charset (GBK cannot represent every character: those fail).
    pub fn encode(self, text: &str) -> Option<Vec<u8>> {
        match self {
            Charset::Utf8 => Some(text.as_bytes().to_vec()),
            Charset::Gbk => {
                let (bytes, _, unmappable) = encoding_rs::GBK.encode(text);
                (!unmappable).then(|| bytes.into_owned())
            }
        }
    }

    /// Encodes text for an answer in this charset: a character GBK lacks becomes a numeric
    /// character reference (`&#128512;`), so the bytes sent and the bytes signed are the same.
    pub fn encode_lossy(self, text: &str) -> std::borrow::Cow<'_, [u8]> {
        match self {
            Charset::Utf8 => std::borrow::Cow::Borrowed(text.as_bytes()),
            Charset::Gbk => encoding_rs::GBK.encode(text).0,
        }
    }
}

impl fmt::Display for Charset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Size limits for inbound parameter strings.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_bytes: usize,
    pub max_params: usize,
    pub max_value_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { max_bytes: 256 * 1024, max_params: 128, max_value_bytes: 64 * 1024 }
    }
}

/// Parameters by name, each present once, values decoded to text.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Params {
    map: BTreeMap<String, String>,
}

impl fmt::Debug for Params {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // `sign` is public data, but long; show its length only.
        let mut m = f.debug_map();
        for (k, v) in &self.map {
            if k == "sign" {
                m.entry(k, &format_args!("<{} chars>", v.len()));
            } else {
                m.entry(k, v);
            }
        }
        m.finish()
    }
}

fn hex_digit(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

fn percent_decode(raw: &[u8], name_for_error: &[u8]) -> Result<Vec<u8>, ParamError> {
    if !raw.iter().any(|&b| b == b'%' || b == b'+') {
        return Ok(raw.to_vec());
    }
    let bad =
        || ParamError::BadPercentEncoding(String::from_utf8_lossy(name_for_error).chars().take(40).collect());
    let mut out = Vec::with_capacity(raw.len());
    let mut bytes = raw.iter();
    while let Some(&b) = bytes.next() {
        match b {
            b'+' => out.push(b' '),
            b'%' => {
                let hi = bytes.next().and_then(|&h| hex_digit(h)).ok_or_else(bad)?;
                let lo = bytes.next().and_then(|&l| hex_digit(l)).ok_or_else(bad)?;
                out.push(hi << 4 | lo);
            }
            _ => out.push(b),
        }
    }
    Ok(out)
}

impl Params {
    pub fn new() -> Self {
        Params::default()
    }

    /// Parses a form body or query string, decoding each name and value exactly once.
    ///
    /// The charset is the message's own `charset` parameter when present (as Alipay's notifications
    /// do), else `default_charset`. Duplicate names, bad percent-encoding, text that is not valid in
    /// the charset and oversized input are errors; nothing is silently replaced.
    pub fn parse_urlencoded(
        raw: &[u8],
        default_charset: Charset,
        limits: Limits,
    ) -> Result<(Params, Charset), ParamError> {
        Self::parse_in(raw, default_charset, false, limits)
    }

    /// Reads back what [`Params::to_urlencoded`] wrote (UTF-8), whatever `charset` the parameters
    /// themselves name: a GBK request's parameters keep `charset=GBK` but were re-encoded.
    pub fn parse_stored(raw: &[u8]) -> Result<Params, ParamError> {
        Self::parse_in(raw, Charset::Utf8, true, Limits::default()).map(|(p, _)| p)
    }

    fn parse_in(
        raw: &[u8],
        default_charset: Charset,
        force: bool,
        limits: Limits,
    ) -> Result<(Params, Charset), ParamError> {
        if raw.len() > limits.max_bytes {
            return Err(ParamError::TooLarge { size: raw.len(), limit: limits.max_bytes });
        }
        let mut pairs: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
        for piece in raw.split(|&b| b == b'&') {
            if piece.is_empty() {
                continue;
            }
            if pairs.len() >= limits.max_params {
                return Err(ParamError::TooMany { limit: limits.max_params });
            }
            let (k, v) = match piece.iter().position(|&b| b == b'=') {
                Some(p) => (piece.get(..p).unwrap_or_default(), piece.get(p + 1..).unwrap_or_default()),
                None => (piece, &[][..]),
            };
            let key = percent_decode(k, k)?;
            if key.is_empty() {
                return Err(ParamError::EmptyKey);
            }
            let value = percent_decode(v, k)?;
            if value.len() > limits.max_value_bytes {
                return Err(ParamError::ValueTooLarge {
                    key: String::from_utf8_lossy(&key).chars().take(40).collect(),
                    size: value.len(),
                    limit: limits.max_value_bytes,
                });
            }
            pairs.push((key, value));
        }
        let charset = match pairs.iter().find(|(k, _)| k == b"charset") {
            Some((_, v)) if !force => Charset::parse(&String::from_utf8_lossy(v))?,
            _ => default_charset,
        };
        let mut params = Params::new();
        for (k, v) in pairs {
            let key = charset.decode_owned(k).map_err(|k| ParamError::BadText {
                key: String::from_utf8_lossy(&k).chars().take(40).collect(),
                charset,
            })?;
            let value =
                charset.decode_owned(v).map_err(|_| ParamError::BadText { key: key.clone(), charset })?;
            params.insert_unique(key, value)?;
        }
        Ok((params, charset))
    }

    /// Adds a parameter that must not be present yet.
    pub fn insert_unique(&mut self, key: String, value: String) -> Result<(), ParamError> {
        match self.map.entry(key) {
            std::collections::btree_map::Entry::Occupied(e) => Err(ParamError::Duplicate(e.key().clone())),
            std::collections::btree_map::Entry::Vacant(e) => {
                e.insert(value);
                Ok(())
            }
        }
    }

    /// Sets a parameter, replacing any previous value.
    pub fn set(&mut self, key: impl Into<String>, value: impl Into<String>) {
        self.map.insert(key.into(), value.into());
    }

    /// Merges `other` in; a name present in both is an error (Alipay takes parameters from the query
    /// string and the form body together, but a name given twice is ambiguous).
    pub fn merge(mut self, other: Params) -> Result<Params, ParamError> {
        for (k, v) in other.map {
            self.insert_unique(k, v)?;
        }
        Ok(self)
    }

    /// Merges the query string's and the body's parameters of one request. Several SDKs send
    /// `charset` (and others) in both: the same value twice is one parameter; two different
    /// values are ambiguous and refused.
    pub fn merge_request(mut self, other: Params) -> Result<Params, ParamError> {
        for (k, v) in other.map {
            match self.map.get(&k) {
                Some(existing) if *existing == v => {}
                Some(_) => return Err(ParamError::Duplicate(k)),
                None => {
                    self.map.insert(k, v);
                }
            }
        }
        Ok(self)
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.map.get(key).map(String::as_str)
    }

    /// A present and non-empty value.
    pub fn get_nonempty(&self, key: &str) -> Option<&str> {
        self.get(key).filter(|v| !v.is_empty())
    }

    pub fn require(&self, key: &'static str) -> Result<&str, ParamError> {
        self.get_nonempty(key).ok_or(ParamError::Missing(key))
    }

    pub fn remove(&mut self, key: &str) -> Option<String> {
        self.map.remove(key)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.map.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// `k=v&k=v` over every non-empty parameter not in `exclude`, sorted by name, raw values.
    pub fn sign_content(&self, exclude: &[&str]) -> String {
        let mut out = String::new();
        for (k, v) in &self.map {
            if v.is_empty() || exclude.contains(&k.as_str()) {
                continue;
            }
            if !out.is_empty() {
                out.push('&');
            }
            out.push_str(k);
            out.push('=');
            out.push_str(v);
        }
        out
    }

    /// The string a merchant signs for a request (and the gateway verifies): drops `sign`,
    /// keeps `sign_type`.
    pub fn request_sign_content(&self) -> String {
        self.sign_content(&["sign"])
    }

    /// The "V1" string of notifications and return redirects: drops `sign` and `sign_type`.
    pub fn v1_sign_content(&self) -> String {
        self.sign_content(&["sign", "sign_type"])
    }

    /// The "V2" string (service-market and life-account messages): drops `sign`, keeps `sign_type`.
    pub fn v2_sign_content(&self) -> String {
        self.sign_content(&["sign"])
    }

    /// `k=v&...` with percent-encoded values, in name order, for a URL or a form body.
    pub fn to_urlencoded(&self) -> String {
        Self::encode_pairs(self.iter())
    }

    /// Percent-encodes pairs for transport.
    pub fn encode_pairs<'a>(pairs: impl Iterator<Item = (&'a str, &'a str)>) -> String {
        let mut out = String::new();
        for (k, v) in pairs {
            if !out.is_empty() {
                out.push('&');
            }
            out.extend(utf8_percent_encode(k, VALUE_SET));
            out.push('=');
            out.extend(utf8_percent_encode(v, VALUE_SET));
        }
        out
    }
}

impl FromIterator<(String, String)> for Params {
    /// Later duplicates replace earlier ones; use [`Params::insert_unique`] when that is an error.
    fn from_iter<I: IntoIterator<Item = (String, String)>>(iter: I) -> Self {
        Params { map: iter.into_iter().collect() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn parse(s: &str) -> Result<Params, ParamError> {
        Params::parse_urlencoded(s.as_bytes(), Charset::Utf8, Limits::default()).map(|(p, _)| p)
    }

    #[test]
    fn decodes_exactly_once() {
        // passback_params arrives percent-encoded by the merchant and once more by the form: one
        // decode leaves the merchant's encoding intact.
        let p = parse("passback_params=a%253Db%2526c&subject=%E6%B5%8B%E8%AF%95+item").unwrap();
        assert_eq!(p.get("passback_params"), Some("a%3Db%26c"));
        assert_eq!(p.get("subject"), Some("测试 item"));
    }

    #[test]
    fn refuses_ambiguity_and_garbage() {
        assert_eq!(parse("a=1&a=2"), Err(ParamError::Duplicate("a".into())));
        assert!(matches!(parse("a=%zz"), Err(ParamError::BadPercentEncoding(_))));
        assert!(matches!(parse("a=%e6"), Err(ParamError::BadText { .. })));
        assert!(matches!(parse("a=%"), Err(ParamError::BadPercentEncoding(_))));
        // Hex digits only: no sign, no space (a lenient number parser would read "%+1" as 0x01).
        for bad in ["a=%+1", "a=%-1", "a=% 1", "a=%1", "a=%g0", "a=%0g"] {
            assert!(matches!(parse(bad), Err(ParamError::BadPercentEncoding(_))), "{bad}");
        }
        assert_eq!(parse("a=%4a%4A%2b+").unwrap().get("a"), Some("JJ+ "));
        assert_eq!(parse("=1"), Err(ParamError::EmptyKey));
        assert!(matches!(parse("charset=latin1&a=1"), Err(ParamError::UnsupportedCharset(_))));
        let big = "a=".to_owned() + &"x".repeat(300 * 1024);
        assert!(matches!(parse(&big), Err(ParamError::TooLarge { .. })));
        let many: Vec<String> = (0..200).map(|i| format!("k{i}=v")).collect();
        assert!(matches!(parse(&many.join("&")), Err(ParamError::TooMany { .. })));
    }

    #[test]
    fn gbk_messages() {
        // "测试" in GBK is B2 E2 CA D4.
        let (p, cs) =
            Params::parse_urlencoded(b"charset=GBK&subject=%B2%E2%CA%D4", Charset::Utf8, Limits::default())
                .unwrap();
        assert_eq!(cs, Charset::Gbk);
        assert_eq!(p.get("subject"), Some("测试"));
        assert_eq!(Charset::Gbk.encode("测试"), Some(vec![0xB2, 0xE2, 0xCA, 0xD4]));
    }

    #[test]
    fn canonical_strings() {
        let p = parse("sign=S&sign_type=RSA2&b=2&a=1&empty=&charset=utf-8").unwrap();
        assert_eq!(p.request_sign_content(), "a=1&b=2&charset=utf-8&sign_type=RSA2");
        assert_eq!(p.v1_sign_content(), "a=1&b=2&charset=utf-8");
        assert_eq!(p.v2_sign_content(), p.request_sign_content());
    }

    #[test]
    fn merge_rejects_names_in_both_places() {
        let q = parse("a=1").unwrap();
        assert_eq!(q.clone().merge(parse("b=2").unwrap()).map(|p| p.len()), Ok(2));
        assert_eq!(q.merge(parse("a=1").unwrap()), Err(ParamError::Duplicate("a".into())));
    }

    proptest! {
        #[test]
        fn encode_parse_round_trip(m in proptest::collection::btree_map("[a-z_]{1,12}", "\\PC{0,40}", 0..20)) {
            let p: Params = m.clone().into_iter().collect();
            let back = parse(&p.to_urlencoded()).map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert_eq!(back, p);
        }

        #[test]
        fn parse_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = Params::parse_urlencoded(&bytes, Charset::Utf8, Limits::default());
            let _ = Params::parse_urlencoded(&bytes, Charset::Gbk, Limits::default());
        }
    }
}
