//! Public-key certificate mode (公钥证书模式): the three certificates a merchant downloads from the
//! Alipay console (the app's public-key certificate, Alipay's public-key certificate and Alipay's
//! root certificate), the serial numbers the requests carry, and the choice of Alipay key by the
//! `alipay_cert_sn` a response names.
//!
//! A certificate's serial number (SN) is what every Alipay SDK computes: the lowercase hex MD5 of
//! the issuer's distinguished name, written `CN=…,OU=…,O=…,C=…` (attributes in reverse order, short
//! names, no spaces, values unescaped), followed by the certificate's serial number in decimal. The
//! root SN joins the SNs of the root file's RSA-signed certificates with `_` (the file also holds
//! certificates signed with other algorithms, which are skipped).

use std::fmt;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use md5::{Digest, Md5};
use parking_lot::RwLock;
use x509_parser::prelude::{FromDer, X509Certificate};

use crate::keys::{KeyError, PublicKey};

/// Why a certificate (or a certificate configuration) cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CertError {
    #[error("the {what} holds no certificate (expected PEM \"-----BEGIN CERTIFICATE-----\" blocks)")]
    Empty { what: &'static str },
    #[error("the {what} is not PEM text: {reason}")]
    NotPem { what: &'static str, reason: String },
    #[error("certificate {index} of the {what} could not be parsed: {reason}")]
    Unreadable { what: &'static str, index: usize, reason: String },
    #[error(
        "certificate {index} of the {what} names its issuer with attribute {oid}, which Alipay's SDKs do not write"
    )]
    UnknownNameAttribute { what: &'static str, index: usize, oid: String },
    #[error("the {what} holds no RSA-signed certificate, so it has no root serial number")]
    NoRsaRoot { what: &'static str },
    #[error("the {what}'s public key is not a usable RSA key: {source}")]
    Key {
        what: &'static str,
        #[source]
        source: KeyError,
    },
    #[error(
        "the application certificate is not for the application's private key; download the certificate made from this key's CSR"
    )]
    AppCertKeyMismatch,
    #[error("the {what} ({subject}) does not chain to the configured Alipay root certificate")]
    Untrusted { what: &'static str, subject: String },
    #[error("the {what} is issued to {subject}, not to Alipay as the configured certificate is")]
    NotAlipay { what: &'static str, subject: String },
    #[error("the {what} ({subject}) is valid from {not_before} to {not_after}, not at {at}")]
    OutsideValidity {
        what: &'static str,
        subject: String,
        not_before: DateTime<Utc>,
        not_after: DateTime<Utc>,
        at: DateTime<Utc>,
    },
    #[error("the response is signed with Alipay certificate {sn}, which this configuration does not know")]
    UnknownAlipayCert { sn: String },
}

/// A certificate serial number as Alipay's SDKs compute it: 32 lowercase hex digits.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CertSn(String);

impl CertSn {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for CertSn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// One parsed X.509 certificate with what certificate mode needs of it.
#[derive(Clone)]
pub struct Certificate {
    der: Arc<[u8]>,
    issuer: String,
    subject: String,
    /// The subject's DER, compared exactly.
    subject_der: Arc<[u8]>,
    /// basicConstraints CA:true.
    ca: bool,
    /// May sign certificates: a CA whose keyUsage (if it has one) includes keyCertSign.
    can_issue: bool,
    serial: String,
    rsa_signed: bool,
    not_before: DateTime<Utc>,
    not_after: DateTime<Utc>,
    sn: CertSn,
}

impl fmt::Debug for Certificate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Certificate")
            .field("subject", &self.subject)
            .field("issuer", &self.issuer)
            .field("serial", &self.serial)
            .field("sn", &self.sn.0)
            .finish_non_exhaustive()
    }
}

/// Signature algorithms under this arc are RSA (PKCS#1 v1.5 with SHA-1/256/384/512, PSS).
const RSA_SIGNATURE_ARC: &str = "1.2.840.113549.1.1";

/// Short names Alipay's SDKs write for the issuer's attributes (the Node SDK's table; Java writes
/// the same names for these).
fn short_name(oid: &str) -> Option<&'static str> {
    Some(match oid {
        "2.5.4.3" => "CN",
        "2.5.4.6" => "C",
        "2.5.4.7" => "L",
        "2.5.4.8" => "ST",
        "2.5.4.10" => "O",
        "2.5.4.11" => "OU",
        "1.2.840.113549.1.9.1" => "E",
        _ => return None,
    })
}

fn principal(
    name: &x509_parser::x509::X509Name<'_>,
    what: &'static str,
    index: usize,
) -> Result<String, CertError> {
    let mut parts = Vec::new();
    for attr in name.iter_attributes() {
        let oid = attr.attr_type().to_id_string();
        let short =
            short_name(&oid).ok_or(CertError::UnknownNameAttribute { what, index, oid: oid.clone() })?;
        let value = attr.as_str().map_err(|e| CertError::Unreadable {
            what,
            index,
            reason: format!("name attribute {oid} is not text: {e}"),
        })?;
        parts.push(format!("{short}={value}"));
    }
    parts.reverse();
    Ok(parts.join(","))
}

fn timestamp(t: x509_parser::time::ASN1Time) -> DateTime<Utc> {
    DateTime::from_timestamp(t.timestamp(), 0).unwrap_or(DateTime::<Utc>::MIN_UTC)
}

impl Certificate {
    /// Parses one DER certificate; `what` and `index` name it in errors.
    pub fn from_der(der: &[u8], what: &'static str, index: usize) -> Result<Self, CertError> {
        let (rest, cert) = X509Certificate::from_der(der).map_err(|e| CertError::Unreadable {
            what,
            index,
            reason: e.to_string(),
        })?;
        if !rest.is_empty() {
            return Err(CertError::Unreadable { what, index, reason: "bytes after the certificate".into() });
        }
        let issuer = principal(cert.issuer(), what, index)?;
        let subject = principal(cert.subject(), what, index).unwrap_or_else(|_| cert.subject().to_string());
        let serial = cert.tbs_certificate.serial.to_string();
        let sn = CertSn(hex::encode(Md5::digest(format!("{issuer}{serial}").as_bytes())));
        let rsa_signed = cert.signature_algorithm.algorithm.to_id_string().starts_with(RSA_SIGNATURE_ARC);
        let validity = cert.validity();
        let ca = cert.is_ca();
        let can_sign_certs = match cert.key_usage() {
            Ok(None) => true,
            Ok(Some(ku)) => ku.value.key_cert_sign(),
            Err(_) => false,
        };
        Ok(Certificate {
            issuer,
            subject_der: Arc::from(cert.subject().as_raw()),
            ca,
            can_issue: ca && can_sign_certs,
            subject,
            serial,
            rsa_signed,
            not_before: timestamp(validity.not_before),
            not_after: timestamp(validity.not_after),
            sn,
            der: Arc::from(der),
        })
    }

    /// Every certificate in a PEM file, in order. Text outside the blocks is ignored.
    pub fn parse_pem(text: &str, what: &'static str) -> Result<Vec<Self>, CertError> {
        let mut out = Vec::new();
        for (index, pem) in x509_parser::pem::Pem::iter_from_buffer(text.as_bytes()).enumerate() {
            let pem = pem.map_err(|e| CertError::NotPem { what, reason: e.to_string() })?;
            if pem.label != "CERTIFICATE" {
                return Err(CertError::NotPem { what, reason: format!("block {index} is a {}", pem.label) });
            }
            out.push(Certificate::from_der(&pem.contents, what, index)?);
        }
        if out.is_empty() {
            return Err(CertError::Empty { what });
        }
        Ok(out)
    }

    pub fn sn(&self) -> &CertSn {
        &self.sn
    }

    /// The issuer as the SN is computed over, e.g. `CN=…,OU=…,O=…,C=CN`.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    pub fn subject(&self) -> &str {
        &self.subject
    }

    /// The serial number in decimal.
    pub fn serial(&self) -> &str {
        &self.serial
    }

    pub fn is_rsa_signed(&self) -> bool {
        self.rsa_signed
    }

    pub fn der(&self) -> &[u8] {
        &self.der
    }

    pub fn to_pem(&self) -> String {
        crate::keys::pem("CERTIFICATE", &self.der)
    }

    pub fn not_after(&self) -> DateTime<Utc> {
        self.not_after
    }

    fn parsed(&self) -> Option<X509Certificate<'_>> {
        X509Certificate::from_der(&self.der).ok().map(|(_, c)| c)
    }

    /// The subject's RSA public key.
    pub fn public_key(&self, what: &'static str) -> Result<PublicKey, CertError> {
        let cert = self.parsed().ok_or(CertError::Unreadable { what, index: 0, reason: "re-read".into() })?;
        PublicKey::from_der(cert.public_key().raw).map_err(|source| CertError::Key { what, source })
    }

    /// Whether `issuer` is a CA allowed to sign certificates, names this one's issuer and signed it.
    fn signed_by(&self, issuer: &Certificate) -> bool {
        if !issuer.can_issue {
            return false;
        }
        let (Some(me), Some(them)) = (self.parsed(), issuer.parsed()) else { return false };
        me.issuer() == them.subject() && me.verify_signature(Some(them.public_key())).is_ok()
    }

    fn check_validity(&self, what: &'static str, at: DateTime<Utc>) -> Result<(), CertError> {
        if at < self.not_before || at > self.not_after {
            return Err(CertError::OutsideValidity {
                what,
                subject: self.subject.clone(),
                not_before: self.not_before,
                not_after: self.not_after,
                at,
            });
        }
        Ok(())
    }
}

/// `alipay_root_cert_sn`: the SNs of the RSA-signed certificates of the root file, joined with `_`.
pub fn root_cert_sn(roots: &[Certificate]) -> Result<String, CertError> {
    let sns: Vec<&str> = roots.iter().filter(|c| c.rsa_signed).map(|c| c.sn.as_str()).collect();
    if sns.is_empty() {
        return Err(CertError::NoRsaRoot { what: "Alipay root certificate" });
    }
    Ok(sns.join("_"))
}

/// Checks that `chain[0]` is valid at `at` and reaches one of `roots` through `chain[1..]` (each
/// certificate signed by the next, the last by a root). Alipay's public-key certificate file holds
/// the certificate and its issuing CA.
fn verify_chain(
    chain: &[Certificate],
    roots: &[Certificate],
    what: &'static str,
    at: DateTime<Utc>,
) -> Result<(), CertError> {
    let Some(leaf) = chain.first() else { return Err(CertError::Empty { what }) };
    let untrusted = || CertError::Untrusted { what, subject: leaf.subject.clone() };
    // A signing key, not a CA: a CA certificate could issue itself any name.
    if leaf.ca {
        return Err(untrusted());
    }
    let mut current = leaf;
    let mut rest = &chain[1..];
    // Bounded by the chain's length: every step consumes one certificate or ends.
    loop {
        current.check_validity(what, at)?;
        if let Some(root) = roots.iter().find(|r| current.signed_by(r)) {
            return root.check_validity(what, at);
        }
        match rest.split_first() {
            Some((next, tail)) if current.signed_by(next) => {
                current = next;
                rest = tail;
            }
            _ => return Err(untrusted()),
        }
    }
}

/// The certificates of one app in certificate mode, as its merchant configured them.
pub struct CertMode {
    app_cert_sn: CertSn,
    root_cert_sn: String,
    roots: Vec<Certificate>,
    /// The subject of the Alipay certificate configured: a rotated one must be issued to the same.
    alipay_subject: Arc<[u8]>,
    /// Alipay public-key certificates by SN: the configured one, and any rotated in since.
    alipay: RwLock<Vec<(CertSn, PublicKey)>>,
}

impl fmt::Debug for CertMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CertMode")
            .field("app_cert_sn", &self.app_cert_sn.0)
            .field("alipay_root_cert_sn", &self.root_cert_sn)
            .field(
                "alipay_cert_sns",
                &self.alipay.read().iter().map(|(sn, _)| sn.0.clone()).collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl CertMode {
    /// Reads the three certificate files (PEM text). The app certificate must carry `app_key`
    /// (the public half of the signing key). Alipay's certificate is trusted as configured (the
    /// merchant downloaded it from the console, as the SDKs assume); certificates rotated in later
    /// must chain to the root ([`CertMode::add_alipay_cert`]).
    pub fn new(
        app_cert: &str,
        alipay_cert: &str,
        root_cert: &str,
        app_key: &PublicKey,
    ) -> Result<Self, CertError> {
        let app = Certificate::parse_pem(app_cert, "application certificate")?;
        let alipay = Certificate::parse_pem(alipay_cert, "Alipay public-key certificate")?;
        let roots = Certificate::parse_pem(root_cert, "Alipay root certificate")?;
        let root_cert_sn = root_cert_sn(&roots)?;
        let app_leaf = &app[0];
        if &app_leaf.public_key("application certificate")? != app_key {
            return Err(CertError::AppCertKeyMismatch);
        }
        let alipay_key = alipay[0].public_key("Alipay public-key certificate")?;
        if &alipay_key == app_key {
            return Err(CertError::Key {
                what: "Alipay public-key certificate",
                source: KeyError::AlipayKeyIsAppKey,
            });
        }
        Ok(CertMode {
            app_cert_sn: app_leaf.sn.clone(),
            root_cert_sn,
            roots,
            alipay_subject: alipay[0].subject_der.clone(),
            alipay: RwLock::new(vec![(alipay[0].sn.clone(), alipay_key)]),
        })
    }

    /// `app_cert_sn`, sent with every request.
    pub fn app_cert_sn(&self) -> &CertSn {
        &self.app_cert_sn
    }

    /// `alipay_root_cert_sn`, sent with every request.
    pub fn root_cert_sn(&self) -> &str {
        &self.root_cert_sn
    }

    /// The SN of the Alipay certificate configured first (what a response names unless rotated).
    pub fn alipay_cert_sn(&self) -> CertSn {
        self.alipay.read().first().map(|(sn, _)| sn.clone()).unwrap_or_else(|| CertSn(String::new()))
    }

    /// The Alipay key a response names by `alipay_cert_sn`; without one, the configured key.
    pub fn alipay_key(&self, sn: Option<&str>) -> Result<PublicKey, CertError> {
        let known = self.alipay.read();
        match sn {
            None => known
                .first()
                .map(|(_, k)| k.clone())
                .ok_or(CertError::Empty { what: "Alipay public-key certificate" }),
            Some(sn) => known
                .iter()
                .find(|(s, _)| s.0 == sn)
                .map(|(_, k)| k.clone())
                .ok_or_else(|| CertError::UnknownAlipayCert { sn: sn.chars().take(64).collect() }),
        }
    }

    /// Every Alipay key known: the configured one first, then those rotated in.
    pub fn alipay_keys(&self) -> Vec<PublicKey> {
        self.alipay.read().iter().map(|(_, k)| k.clone()).collect()
    }

    /// Checks a rotated Alipay certificate (PEM, as `alipay.open.app.alipaycert.download` delivers
    /// it) without trusting it yet: issued to Alipay (the configured certificate's subject), not a
    /// CA, chaining through CAs to the configured root, valid at `at`. Returns its SN and key.
    pub fn check_alipay_cert(&self, pem: &str, at: DateTime<Utc>) -> Result<(CertSn, PublicKey), CertError> {
        let what = "downloaded Alipay public-key certificate";
        let chain = Certificate::parse_pem(pem, what)?;
        if chain[0].subject_der != self.alipay_subject {
            return Err(CertError::NotAlipay { what, subject: chain[0].subject.clone() });
        }
        verify_chain(&chain, &self.roots, what, at)?;
        let key = chain[0].public_key(what)?;
        Ok((chain[0].sn.clone(), key))
    }

    /// Trusts a certificate [`CertMode::check_alipay_cert`] accepted.
    pub fn trust_alipay_cert(&self, sn: CertSn, key: PublicKey) {
        let mut known = self.alipay.write();
        if !known.iter().any(|(s, _)| s == &sn) {
            known.push((sn, key));
        }
    }

    /// [`CertMode::check_alipay_cert`], then [`CertMode::trust_alipay_cert`]; returns the SN.
    pub fn add_alipay_cert(&self, pem: &str, at: DateTime<Utc>) -> Result<CertSn, CertError> {
        let (sn, key) = self.check_alipay_cert(pem, at)?;
        self.trust_alipay_cert(sn.clone(), key);
        Ok(sn)
    }
}
