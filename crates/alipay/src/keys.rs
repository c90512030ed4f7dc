//! RSA keys in every form people paste them: PKCS#1 and PKCS#8 private keys, X.509
//! SubjectPublicKeyInfo public keys, as PEM or as the bare base64 the Alipay console shows, with or
//! without line breaks. Keys are parsed once; signing and verifying reuse the parsed form.

use std::fmt;
use std::sync::Arc;

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rsa::{KeyPair, KeySize};
use aws_lc_rs::signature::{self, KeyPair as _, ParsedPublicKey};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use crate::legacy_sha1::Sha1Signer;

/// A key that could not be read, naming what was expected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("the key is empty; expected {expected}")]
    Empty { expected: &'static str },
    #[error("the key is not valid base64 or PEM; expected {expected}")]
    NotBase64 { expected: &'static str },
    #[error("this is {found}; expected {expected}")]
    WrongKind { found: &'static str, expected: &'static str },
    #[error("the key is encrypted (ENCRYPTED PRIVATE KEY); export it without a passphrase, as {expected}")]
    Encrypted { expected: &'static str },
    #[error("the key data could not be parsed; expected {expected}")]
    Unreadable { expected: &'static str },
    #[error("the RSA key has {bits} bits; RSA2 needs at least 2048")]
    TooSmall { bits: usize },
    #[error(
        "the configured Alipay public key is your own application's public key; paste the Alipay public key shown beside it in the console"
    )]
    AlipayKeyIsAppKey,
    #[error("RSA key generation failed")]
    Generation,
}

const PRIVATE_EXPECTED: &str =
    "an RSA private key (PKCS#1 \"RSA PRIVATE KEY\" or PKCS#8 \"PRIVATE KEY\", PEM or bare base64)";
const PUBLIC_EXPECTED: &str =
    "an RSA public key (X.509 \"PUBLIC KEY\" as PEM or the bare base64 the Alipay console shows)";

/// PEM label, if the text had one.
fn pem_label(text: &str) -> Option<&str> {
    let start = text.find("-----BEGIN ")? + "-----BEGIN ".len();
    let rest = text.get(start..)?;
    let end = rest.find("-----")?;
    rest.get(..end).map(str::trim)
}

/// Strips PEM armour (if any) and whitespace, and decodes the base64 body.
fn decode_armour(text: &str, expected: &'static str) -> Result<(Option<String>, Vec<u8>), KeyError> {
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Err(KeyError::Empty { expected });
    }
    let label = pem_label(trimmed).map(str::to_owned);
    let body: String = trimmed
        .lines()
        .map(str::trim)
        .filter(|l| !l.starts_with("-----"))
        // PEM headers such as "Proc-Type:" belong to encrypted keys; they are reported below.
        .filter(|l| !l.contains(':'))
        .flat_map(str::chars)
        .filter(|c| !c.is_whitespace())
        .collect();
    if body.is_empty() {
        return Err(KeyError::Empty { expected });
    }
    let der = STANDARD
        .decode(body.as_bytes())
        .or_else(|_| base64::engine::general_purpose::STANDARD_NO_PAD.decode(body.as_bytes()))
        .map_err(|_| KeyError::NotBase64 { expected })?;
    Ok((label, der))
}

/// A merchant's (or the sandbox's) RSA private key, parsed once.
#[derive(Clone)]
pub struct PrivateKey {
    inner: Arc<PrivateInner>,
}

struct PrivateInner {
    /// `None` when the key is below 2048 bits: such keys can only make legacy SHA-1 signatures.
    rsa2: Option<KeyPair>,
    sha1: Sha1Signer,
    public: PublicKey,
    bits: usize,
}

impl fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "PrivateKey(<redacted>, {} bits, public {})",
            self.inner.bits,
            self.inner.public.fingerprint()
        )
    }
}

impl PrivateKey {
    /// Reads a PKCS#1 or PKCS#8 private key given as PEM or bare base64.
    pub fn parse(text: &str) -> Result<Self, KeyError> {
        let (label, der) = decode_armour(text, PRIVATE_EXPECTED)?;
        match label.as_deref() {
            Some("ENCRYPTED PRIVATE KEY") => {
                return Err(KeyError::Encrypted { expected: PRIVATE_EXPECTED });
            }
            Some("PUBLIC KEY") | Some("RSA PUBLIC KEY") => {
                return Err(KeyError::WrongKind { found: "a public key", expected: PRIVATE_EXPECTED });
            }
            Some("CERTIFICATE") => {
                return Err(KeyError::WrongKind { found: "a certificate", expected: PRIVATE_EXPECTED });
            }
            _ if text.contains("Proc-Type:") => {
                return Err(KeyError::Encrypted { expected: PRIVATE_EXPECTED });
            }
            _ => {}
        }
        Self::from_der(&der)
    }

    /// Reads PKCS#8 or PKCS#1 DER.
    pub fn from_der(der: &[u8]) -> Result<Self, KeyError> {
        let Some(sha1) = Sha1Signer::from_der(der) else {
            if PublicKey::from_der(der).is_ok() {
                return Err(KeyError::WrongKind { found: "a public key", expected: PRIVATE_EXPECTED });
            }
            return Err(KeyError::Unreadable { expected: PRIVATE_EXPECTED });
        };
        let bits = sha1.bits();
        let rsa2 = KeyPair::from_pkcs8(der).or_else(|_| KeyPair::from_der(der)).ok();
        let public = match &rsa2 {
            Some(kp) => {
                let spki = kp
                    .public_key()
                    .as_der()
                    .map_err(|_| KeyError::Unreadable { expected: PRIVATE_EXPECTED })?;
                PublicKey::from_der(spki.as_ref())?
            }
            None => return Err(KeyError::TooSmall { bits }),
        };
        Ok(PrivateKey { inner: Arc::new(PrivateInner { rsa2, sha1, public, bits }) })
    }

    /// A fresh 2048-bit key, and its PKCS#8 DER for storage.
    pub fn generate() -> Result<(Self, Vec<u8>), KeyError> {
        let kp = KeyPair::generate(KeySize::Rsa2048).map_err(|_| KeyError::Generation)?;
        let der = kp.as_der().map_err(|_| KeyError::Generation)?.as_ref().to_vec();
        Ok((Self::from_der(&der)?, der))
    }

    pub fn bits(&self) -> usize {
        self.inner.bits
    }

    /// The key as PKCS#8 DER, for a store that keeps it (never for logs).
    pub fn to_pkcs8_der(&self) -> Result<Vec<u8>, KeyError> {
        let kp = self.inner.rsa2.as_ref().ok_or(KeyError::TooSmall { bits: self.inner.bits })?;
        Ok(kp.as_der().map_err(|_| KeyError::Generation)?.as_ref().to_vec())
    }

    /// The matching public key.
    pub fn public_key(&self) -> &PublicKey {
        &self.inner.public
    }

    /// SHA256withRSA, PKCS#1 v1.5.
    pub(crate) fn sign_sha256(&self, message: &[u8]) -> Option<Vec<u8>> {
        let kp = self.inner.rsa2.as_ref()?;
        let mut sig = vec![0u8; kp.public_modulus_len()];
        let rng = aws_lc_rs::rand::SystemRandom::new();
        kp.sign(&signature::RSA_PKCS1_SHA256, &rng, message, &mut sig).ok()?;
        Some(sig)
    }

    /// SHA1withRSA, PKCS#1 v1.5 (legacy `sign_type=RSA`).
    pub(crate) fn sign_sha1(&self, message: &[u8]) -> Option<Vec<u8>> {
        self.inner.sha1.sign(message)
    }
}

/// An RSA public key (Alipay's, or a merchant app's), parsed once for fast verification.
#[derive(Clone)]
pub struct PublicKey {
    inner: Arc<PublicInner>,
}

struct PublicInner {
    spki: Vec<u8>,
    sha256: ParsedPublicKey,
    sha1: ParsedPublicKey,
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({})", self.fingerprint())
    }
}

impl PartialEq for PublicKey {
    fn eq(&self, other: &Self) -> bool {
        self.inner.spki == other.inner.spki
    }
}

impl Eq for PublicKey {}

impl PublicKey {
    /// Reads an X.509 SubjectPublicKeyInfo (or PKCS#1 RSAPublicKey) given as PEM or bare base64.
    pub fn parse(text: &str) -> Result<Self, KeyError> {
        let (label, der) = decode_armour(text, PUBLIC_EXPECTED)?;
        match label.as_deref() {
            Some(l) if l.contains("PRIVATE KEY") => {
                return Err(KeyError::WrongKind { found: "a private key", expected: PUBLIC_EXPECTED });
            }
            Some("CERTIFICATE") => {
                return Err(KeyError::WrongKind {
                    found: "a certificate (in certificate mode, configure it as Alipay's public-key certificate)",
                    expected: PUBLIC_EXPECTED,
                });
            }
            _ => {}
        }
        Self::from_der(&der)
    }

    /// Reads SPKI or PKCS#1 RSAPublicKey DER.
    pub fn from_der(der: &[u8]) -> Result<Self, KeyError> {
        let sha1 = ParsedPublicKey::new(&signature::RSA_PKCS1_1024_8192_SHA1_FOR_LEGACY_USE_ONLY, der);
        let sha256 = ParsedPublicKey::new(&signature::RSA_PKCS1_1024_8192_SHA256_FOR_LEGACY_USE_ONLY, der);
        match (sha1, sha256) {
            (Ok(sha1), Ok(sha256)) => {
                let spki = sha256
                    .as_der()
                    .map(|d| d.as_ref().to_vec())
                    .map_err(|_| KeyError::Unreadable { expected: PUBLIC_EXPECTED })?;
                Ok(PublicKey { inner: Arc::new(PublicInner { spki, sha256, sha1 }) })
            }
            _ => {
                if Sha1Signer::from_der(der).is_some() {
                    Err(KeyError::WrongKind { found: "a private key", expected: PUBLIC_EXPECTED })
                } else {
                    Err(KeyError::Unreadable { expected: PUBLIC_EXPECTED })
                }
            }
        }
    }

    /// SPKI DER.
    pub fn spki_der(&self) -> &[u8] {
        &self.inner.spki
    }

    /// The bare base64 form the Alipay console shows (SPKI, one line, no armour).
    pub fn to_base64(&self) -> String {
        STANDARD.encode(&self.inner.spki)
    }

    /// PEM with 64-character lines.
    pub fn to_pem(&self) -> String {
        pem("PUBLIC KEY", &self.inner.spki)
    }

    /// A short, stable identifier for logs: the first 8 bytes of SHA-256 over the SPKI, in hex.
    pub fn fingerprint(&self) -> String {
        let d = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &self.inner.spki);
        d.as_ref().iter().take(8).map(|b| format!("{b:02x}")).collect()
    }

    pub(crate) fn verify_sha256(&self, message: &[u8], sig: &[u8]) -> bool {
        self.inner.sha256.verify_sig(message, sig).is_ok()
    }

    pub(crate) fn verify_sha1(&self, message: &[u8], sig: &[u8]) -> bool {
        self.inner.sha1.verify_sig(message, sig).is_ok()
    }
}

/// PEM armour with 64-character lines.
pub fn pem(label: &str, der: &[u8]) -> String {
    let b64 = STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(chunk));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const TESTDATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data");

    fn read(name: &str) -> String {
        std::fs::read_to_string(format!("{TESTDATA}/{name}")).unwrap_or_default()
    }

    /// A private key's Debug (and so any log line or panic message that prints one, or a signer
    /// holding one) shows its size and public fingerprint, never a piece of the secret.
    #[test]
    fn a_private_key_never_prints_its_secret() {
        let pem = read("app-private-key.pem");
        let Ok(k) = PrivateKey::parse(&pem) else { panic!("test key did not parse") };
        let Ok(signer) = crate::sign::Signer::new(k.clone(), crate::sign::SignType::Rsa2) else {
            panic!("signer")
        };
        let shown = format!("{k:?} {k:#?} {:?} {signer:?} {signer:#?}", Some(&k));
        assert!(shown.contains("<redacted>"), "{shown}");
        assert!(shown.contains(&k.public_key().fingerprint()), "{shown}");
        let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
        assert!(body.len() > 1000, "the test key's base64 body");
        for start in 0..body.len() - 12 {
            let piece = &body[start..start + 12];
            assert!(!shown.contains(piece), "{piece:?} of the private key was printed: {shown}");
        }
    }

    #[test]
    fn pkcs1_and_pkcs8_are_the_same_key() {
        let a = PrivateKey::parse(&read("app-private-key.pem"));
        let b = PrivateKey::parse(&read("app-private-key-pkcs8.pem"));
        let (Ok(a), Ok(b)) = (a, b) else { panic!("test keys did not parse") };
        assert_eq!(a.public_key(), b.public_key());
        let public = PublicKey::parse(&read("app-public-key.pem"));
        assert_eq!(public.as_ref().ok(), Some(a.public_key()));
        assert_eq!(a.bits(), 2048);
    }

    #[test]
    fn bare_base64_with_and_without_line_breaks() {
        let pem_text = read("app-public-key.pem");
        let Ok(k) = PublicKey::parse(&pem_text) else { panic!("pem") };
        let bare = k.to_base64();
        assert_eq!(PublicKey::parse(&bare).ok().as_ref(), Some(&k));
        let wrapped: String =
            bare.as_bytes().chunks(60).map(|c| String::from_utf8_lossy(c) + "\r\n").collect();
        assert_eq!(PublicKey::parse(&wrapped).ok().as_ref(), Some(&k));
        assert_eq!(PublicKey::parse(&k.to_pem()).ok().as_ref(), Some(&k));

        let priv_pem = read("app-private-key.pem");
        let body: String = priv_pem.lines().filter(|l| !l.starts_with("-----")).collect();
        assert!(PrivateKey::parse(&body).is_ok());
        let spaced = body.replace('A', " A");
        assert!(PrivateKey::parse(&spaced).is_ok());
    }

    #[test]
    fn wrong_kinds_name_what_was_expected() {
        let public = read("app-public-key.pem");
        let private = read("app-private-key.pem");
        let e = PrivateKey::parse(&public).err();
        assert!(matches!(e, Some(KeyError::WrongKind { found: "a public key", .. })), "{e:?}");
        assert!(e.map(|e| e.to_string()).unwrap_or_default().contains("PKCS#8"));
        // Same mistake without PEM labels.
        let bare_public: String = public.lines().filter(|l| !l.starts_with("-----")).collect();
        assert!(matches!(PrivateKey::parse(&bare_public), Err(KeyError::WrongKind { .. })));
        let bare_private: String = private.lines().filter(|l| !l.starts_with("-----")).collect();
        assert!(matches!(
            PublicKey::parse(&bare_private),
            Err(KeyError::WrongKind { found: "a private key", .. })
        ));
        assert!(matches!(PublicKey::parse(""), Err(KeyError::Empty { .. })));
        assert!(matches!(PublicKey::parse("not a key!!"), Err(KeyError::NotBase64 { .. })));
        assert!(matches!(PublicKey::parse("aGVsbG8gd29ybGQ="), Err(KeyError::Unreadable { .. })));
        assert!(matches!(
            PrivateKey::parse(
                "-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----"
            ),
            Err(KeyError::Encrypted { .. })
        ));
        assert!(matches!(
            PublicKey::parse("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----"),
            Err(KeyError::WrongKind { .. })
        ));
    }

    #[test]
    fn generated_keys_round_trip() {
        let Ok((k, der)) = PrivateKey::generate() else { panic!("generate") };
        let again = PrivateKey::parse(&pem("PRIVATE KEY", &der));
        assert_eq!(again.map(|a| a.public_key().clone()).ok().as_ref(), Some(k.public_key()));
        assert!(!format!("{k:?}").contains(&STANDARD.encode(&der)[..20]));
        let back = PrivateKey::from_der(&k.to_pkcs8_der().unwrap_or_default());
        assert_eq!(back.ok().as_ref().map(PrivateKey::public_key), Some(k.public_key()));
    }
}
