//! Secrets that must cross the wire (tokens) but must never reach logs.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A token or key. Serialises transparently (it has to be sent), but `Debug` never shows it and
/// there is no `Display`: formatting it into a log line prints `<redacted>`.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, specta::Type, utoipa::ToSchema)]
#[serde(transparent)]
#[schema(value_type = String, format = Password)]
pub struct SecretString(String);

impl SecretString {
    pub fn new(s: impl Into<String>) -> Self {
        SecretString(s.into())
    }

    /// The secret itself. Call sites are few and reviewed: headers, the keyring, hashing.
    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn into_inner(self) -> String {
        self.0
    }
}

impl fmt::Debug for SecretString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl From<String> for SecretString {
    fn from(s: String) -> Self {
        SecretString(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_secret() {
        let s = SecretString::new("rt_super_secret_value");
        assert_eq!(format!("{s:?}"), "<redacted>");
        assert_eq!(format!("{:?}", Some(&s)), "Some(<redacted>)");
        #[derive(Debug)]
        #[allow(dead_code)]
        struct Holder {
            token: SecretString,
        }
        assert!(!format!("{:?}", Holder { token: s.clone() }).contains("super_secret"));
        assert_eq!(serde_json::to_string(&s).unwrap(), "\"rt_super_secret_value\"");
    }
}
