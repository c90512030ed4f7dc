//! RSA2 (SHA256withRSA) and legacy RSA (SHA1withRSA) signatures, PKCS#1 v1.5, base64-encoded.

use std::fmt;
use std::str::FromStr;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};

use crate::keys::{KeyError, PrivateKey, PublicKey};

/// Alipay's `sign_type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
pub enum SignType {
    /// SHA256withRSA: what every current Alipay app uses.
    #[default]
    #[serde(rename = "RSA2")]
    Rsa2,
    /// SHA1withRSA: legacy apps only.
    #[serde(rename = "RSA")]
    Rsa,
}

impl SignType {
    pub const fn as_str(self) -> &'static str {
        match self {
            SignType::Rsa2 => "RSA2",
            SignType::Rsa => "RSA",
        }
    }
}

impl fmt::Display for SignType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `sign_type` values Alipay does not define.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unsupported sign_type {0:?} (RSA2 or RSA)")]
pub struct UnknownSignType(pub String);

impl FromStr for SignType {
    type Err = UnknownSignType;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "RSA2" => Ok(SignType::Rsa2),
            "RSA" => Ok(SignType::Rsa),
            other => Err(UnknownSignType(other.chars().take(16).collect())),
        }
    }
}

/// Signing failed: the key cannot make this kind of signature.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignError {
    #[error("the private key cannot make {0} signatures")]
    Unsupported(SignType),
}

/// Signs with a private key and a fixed `sign_type`.
#[derive(Debug, Clone)]
pub struct Signer {
    key: PrivateKey,
    sign_type: SignType,
}

impl Signer {
    pub fn new(key: PrivateKey, sign_type: SignType) -> Result<Self, KeyError> {
        if sign_type == SignType::Rsa2 && key.bits() < 2048 {
            return Err(KeyError::TooSmall { bits: key.bits() });
        }
        Ok(Signer { key, sign_type })
    }

    pub fn sign_type(&self) -> SignType {
        self.sign_type
    }

    pub fn public_key(&self) -> &PublicKey {
        self.key.public_key()
    }

    /// The base64 signature of `content` (standard alphabet, padded, one line).
    pub fn sign(&self, content: &str) -> Result<String, SignError> {
        self.sign_bytes(content.as_bytes())
    }

    /// The signature of text already encoded in the message's charset (GBK messages are signed
    /// over their GBK bytes).
    pub fn sign_bytes(&self, content: &[u8]) -> Result<String, SignError> {
        let raw = match self.sign_type {
            SignType::Rsa2 => self.key.sign_sha256(content),
            SignType::Rsa => self.key.sign_sha1(content),
        };
        raw.map(|r| STANDARD.encode(r)).ok_or(SignError::Unsupported(self.sign_type))
    }
}

/// Why a signature did not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    #[error("the signature is missing")]
    Missing,
    #[error("the signature is not valid base64")]
    MalformedSignature,
    #[error("the signature does not match the content and the Alipay public key")]
    Invalid,
    #[error(
        "the signature was made with your own application key, not Alipay's: the message was signed by \
         the merchant side, or the keys are swapped in the configuration (the most common Alipay integration mistake)"
    )]
    SignedWithAppKey,
}

/// Verifies signatures that must come from one party (Alipay, as seen by a merchant; or a merchant
/// app, as seen by the gateway).
///
/// When the merchant's own public key is known, a failing signature is also tried against it, so the
/// most common integration mistake (keys swapped, or a message signed by the wrong side) is named.
#[derive(Debug, Clone)]
pub struct Verifier {
    expected: PublicKey,
    own: Option<PublicKey>,
}

impl Verifier {
    /// Verifies against `expected` only.
    pub fn new(expected: PublicKey) -> Self {
        Verifier { expected, own: None }
    }

    /// Verifies against Alipay's key, and diagnoses signatures made with the app's own key.
    /// Refuses a configuration where the two are the same key.
    pub fn with_own_key(alipay: PublicKey, own: PublicKey) -> Result<Self, KeyError> {
        if alipay == own {
            return Err(KeyError::AlipayKeyIsAppKey);
        }
        Ok(Verifier { expected: alipay, own: Some(own) })
    }

    pub fn public_key(&self) -> &PublicKey {
        &self.expected
    }

    pub fn verify(&self, sign_type: SignType, content: &str, signature_b64: &str) -> Result<(), VerifyError> {
        self.verify_bytes(sign_type, content.as_bytes(), signature_b64)
    }

    /// [`Verifier::verify`] over text already encoded in the message's charset.
    pub fn verify_bytes(
        &self,
        sign_type: SignType,
        content: &[u8],
        signature_b64: &str,
    ) -> Result<(), VerifyError> {
        if signature_b64.is_empty() {
            return Err(VerifyError::Missing);
        }
        let sig = STANDARD.decode(signature_b64.as_bytes()).map_err(|_| VerifyError::MalformedSignature)?;
        let check = |k: &PublicKey| match sign_type {
            SignType::Rsa2 => k.verify_sha256(content, &sig),
            SignType::Rsa => k.verify_sha1(content, &sig),
        };
        if check(&self.expected) {
            return Ok(());
        }
        match &self.own {
            Some(own) if check(own) => Err(VerifyError::SignedWithAppKey),
            _ => Err(VerifyError::Invalid),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TESTDATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data");

    fn key() -> PrivateKey {
        PrivateKey::parse(&std::fs::read_to_string(format!("{TESTDATA}/app-private-key.pem")).unwrap())
            .unwrap()
    }

    #[test]
    fn rsa2_and_rsa_round_trip() {
        let k = key();
        for t in [SignType::Rsa2, SignType::Rsa] {
            let s = Signer::new(k.clone(), t).unwrap();
            let sig = s.sign("a=1&b=2").unwrap();
            let v = Verifier::new(k.public_key().clone());
            assert_eq!(v.verify(t, "a=1&b=2", &sig), Ok(()));
            assert_eq!(v.verify(t, "a=1&b=3", &sig), Err(VerifyError::Invalid));
            let other = if t == SignType::Rsa2 { SignType::Rsa } else { SignType::Rsa2 };
            assert_eq!(v.verify(other, "a=1&b=2", &sig), Err(VerifyError::Invalid));
        }
    }

    #[test]
    fn names_the_swapped_key_mistake() {
        let app = key();
        let (alipay, _) = PrivateKey::generate().unwrap();
        let v = Verifier::with_own_key(alipay.public_key().clone(), app.public_key().clone()).unwrap();
        let by_app = Signer::new(app.clone(), SignType::Rsa2).unwrap().sign("x=1").unwrap();
        assert_eq!(v.verify(SignType::Rsa2, "x=1", &by_app), Err(VerifyError::SignedWithAppKey));
        let by_alipay = Signer::new(alipay.clone(), SignType::Rsa2).unwrap().sign("x=1").unwrap();
        assert_eq!(v.verify(SignType::Rsa2, "x=1", &by_alipay), Ok(()));
        assert_eq!(
            Verifier::with_own_key(app.public_key().clone(), app.public_key().clone()).err(),
            Some(KeyError::AlipayKeyIsAppKey)
        );
    }

    #[test]
    fn malformed_signatures() {
        let v = Verifier::new(key().public_key().clone());
        assert_eq!(v.verify(SignType::Rsa2, "x", ""), Err(VerifyError::Missing));
        assert_eq!(v.verify(SignType::Rsa2, "x", "%%%"), Err(VerifyError::MalformedSignature));
        assert_eq!(v.verify(SignType::Rsa2, "x", "AAAA"), Err(VerifyError::Invalid));
    }
}
