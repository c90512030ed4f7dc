//! Public-key certificate mode as Alipay runs it: a certification authority of the sandbox's own
//! (an RSA root, an ECDSA root beside it in the root file as Alipay's file has one, and a "Class 2"
//! CA under the RSA root), application certificates it issues for apps' public keys, and "Alipay
//! public-key certificates" whose keys sign every answer, notification and return to apps in
//! certificate mode. A rotation issues a new Alipay certificate; the old ones stay downloadable
//! by SN through `alipay.open.app.alipaycert.download`.
//!
//! The CA's keys are test material, kept in the sandbox database (private to its user) like the
//! gateway key.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use chrono::{DateTime, Utc};
use haitao_alipay::PrivateKey;
use haitao_alipay::cert::{CertSn, Certificate, root_cert_sn};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose,
    PKCS_ECDSA_P256_SHA256, PKCS_RSA_SHA256, SerialNumber, SubjectPublicKeyInfo,
};
use rusqlite::{Connection, OptionalExtension as _};

use crate::db::{Cached as _, StoreError};
use crate::model::{self, Stamp};

/// Why a certificate could not be made or read.
#[derive(Debug, thiserror::Error)]
pub enum CaError {
    #[error("certificate authority: {0}")]
    Issue(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<rusqlite::Error> for CaError {
    fn from(e: rusqlite::Error) -> Self {
        CaError::Store(e.into())
    }
}

fn issue_err(e: impl std::fmt::Display) -> CaError {
    CaError::Issue(e.to_string())
}

/// Keys for the certification authority and the first Alipay certificate, given instead of made
/// (a caller that starts many sandboxes, like the simulation, makes them once).
#[derive(Debug, Clone)]
pub struct CaKeys {
    pub root: PrivateKey,
    pub class2: PrivateKey,
    pub alipay: PrivateKey,
}

fn given_or_new(key: Option<&PrivateKey>) -> Result<(PrivateKey, Vec<u8>), CaError> {
    match key {
        Some(k) => Ok((k.clone(), k.to_pkcs8_der().map_err(issue_err)?)),
        None => PrivateKey::generate().map_err(issue_err),
    }
}

/// The sandbox's certification authority.
pub struct Ca {
    /// What merchants configure as "Alipay root certificate": the RSA root and the ECDSA root.
    pub root_file: String,
    root_sn: String,
    class2_pem: String,
    class2: Issuer<'static, KeyPair>,
}

impl std::fmt::Debug for Ca {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ca").finish_non_exhaustive()
    }
}

fn to_time(t: DateTime<Utc>) -> Result<time::OffsetDateTime, CaError> {
    time::OffsetDateTime::from_unix_timestamp(t.timestamp()).map_err(issue_err)
}

fn name(params: &mut CertificateParams, cn: &str, ou: &str, o: &str) {
    params.distinguished_name.push(DnType::CountryName, "CN");
    params.distinguished_name.push(DnType::OrganizationName, o);
    params.distinguished_name.push(DnType::OrganizationalUnitName, ou);
    params.distinguished_name.push(DnType::CommonName, cn);
}

fn random_serial() -> Result<SerialNumber, CaError> {
    let mut bytes = [0u8; 16];
    aws_lc_rs::rand::fill(&mut bytes).map_err(|_| CaError::Issue("no system randomness".into()))?;
    // Positive, as DER serials must be.
    bytes[0] &= 0x7f;
    Ok(SerialNumber::from_slice(&bytes))
}

fn ca_params(cn: &str, now: DateTime<Utc>, years: i64) -> Result<CertificateParams, CaError> {
    let mut p = CertificateParams::default();
    name(&mut p, cn, "Certification Authority", "Haitao Sandbox");
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.key_usages =
        vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
    p.serial_number = Some(random_serial()?);
    p.not_before = to_time(now - chrono::Duration::days(1))?;
    p.not_after = to_time(now + chrono::Duration::days(365 * years))?;
    Ok(p)
}

fn rsa_pair(key: &PrivateKey) -> Result<KeyPair, CaError> {
    let der = key.to_pkcs8_der().map_err(issue_err)?;
    KeyPair::from_pkcs8_der_and_sign_algo(&der.into(), &PKCS_RSA_SHA256).map_err(issue_err)
}

fn key_from_meta(conn: &Connection, name: &str) -> Result<Option<PrivateKey>, CaError> {
    let Some(b64) = model::meta(conn, name)? else { return Ok(None) };
    let der = STANDARD.decode(b64).map_err(|e| CaError::Issue(format!("meta {name}: {e}")))?;
    PrivateKey::from_der(&der).map(Some).map_err(|e| CaError::Issue(format!("meta {name}: {e}")))
}

fn store_key(conn: &Connection, name: &str, key_der: &[u8]) -> Result<(), CaError> {
    model::set_meta(conn, name, &STANDARD.encode(key_der))?;
    Ok(())
}

fn root_sn_of(root_file: &str) -> Result<String, CaError> {
    let roots = Certificate::parse_pem(root_file, "sandbox root").map_err(issue_err)?;
    root_cert_sn(&roots).map_err(issue_err)
}

const CLASS2_CN: &str = "Haitao Sandbox Certification Authority Class 2 R1";

impl Ca {
    /// The sandbox's CA, made on first use and kept in the database.
    pub fn ensure(conn: &Connection, now: DateTime<Utc>, keys: Option<&CaKeys>) -> Result<Ca, CaError> {
        if let (Some(root_file), Some(class2_pem), Some(class2_key)) = (
            model::meta(conn, "ca_root_file")?,
            model::meta(conn, "ca_class2_pem")?,
            key_from_meta(conn, "ca_class2_key_pkcs8")?,
        ) {
            // The issuer's name is read back from its certificate.
            let class2 = Issuer::from_ca_cert_pem(&class2_pem, rsa_pair(&class2_key)?).map_err(issue_err)?;
            let root_sn = root_sn_of(&root_file)?;
            return Ok(Ca { root_file, root_sn, class2_pem, class2 });
        }
        let (root_key, root_der) = given_or_new(keys.map(|k| &k.root))?;
        let root_pair = rsa_pair(&root_key)?;
        let root_params = ca_params("Haitao Sandbox Certification Authority R1", now, 30)?;
        let root_pem = root_params.self_signed(&root_pair).map_err(issue_err)?.pem();
        let root = Issuer::new(root_params, root_pair);
        // Alipay's root file also holds roots signed with other algorithms, which SDKs skip when
        // they compute alipay_root_cert_sn; so does this one.
        let ecc_pair = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).map_err(issue_err)?;
        let ecc_pem = ca_params("Haitao Sandbox Certification Authority E1", now, 30)?
            .self_signed(&ecc_pair)
            .map_err(issue_err)?
            .pem();
        let (class2_key, class2_der) = given_or_new(keys.map(|k| &k.class2))?;
        let class2_pair = rsa_pair(&class2_key)?;
        let class2_params = ca_params(CLASS2_CN, now, 20)?;
        let class2_pem = class2_params.signed_by(&class2_pair, &root).map_err(issue_err)?.pem();
        let root_file = format!("{ecc_pem}{root_pem}");
        model::set_meta(conn, "ca_root_file", &root_file)?;
        model::set_meta(conn, "ca_class2_pem", &class2_pem)?;
        store_key(conn, "ca_root_key_pkcs8", &root_der)?;
        store_key(conn, "ca_class2_key_pkcs8", &class2_der)?;
        let root_sn = root_sn_of(&root_file)?;
        Ok(Ca { root_file, root_sn, class2_pem, class2: Issuer::new(class2_params, class2_pair) })
    }

    /// `alipay_root_cert_sn` of this CA's root file.
    pub fn root_cert_sn(&self) -> Result<String, CaError> {
        Ok(self.root_sn.clone())
    }

    /// A certificate for `spki_der` under the Class 2 CA, followed by that CA's certificate (the
    /// shape of the files the Alipay console hands out).
    fn issue(&self, spki_der: &[u8], cn: &str, o: &str, now: DateTime<Utc>) -> Result<String, CaError> {
        let public = SubjectPublicKeyInfo::from_der(spki_der).map_err(issue_err)?;
        let mut p = CertificateParams::default();
        name(&mut p, cn, "Haitao Sandbox", o);
        p.serial_number = Some(random_serial()?);
        p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        p.not_before = to_time(now - chrono::Duration::days(1))?;
        p.not_after = to_time(now + chrono::Duration::days(365 * 5))?;
        let leaf = p.signed_by(&public, &self.class2).map_err(issue_err)?.pem();
        Ok(format!("{leaf}{}", self.class2_pem))
    }

    /// The application certificate for an app's public key.
    pub fn issue_app_cert(
        &self,
        app_id: &str,
        app_name: &str,
        app_public_key: &haitao_alipay::PublicKey,
        now: DateTime<Utc>,
    ) -> Result<String, CaError> {
        self.issue(app_public_key.spki_der(), app_id, app_name, now)
    }
}

/// One "Alipay public-key certificate" and the key it certifies.
#[derive(Debug, Clone)]
pub struct AlipayCert {
    pub sn: CertSn,
    pub pem: String,
    pub key: PrivateKey,
}

fn cert_row(pem: String, key_b64: String) -> Result<AlipayCert, CaError> {
    let der = STANDARD.decode(key_b64).map_err(issue_err)?;
    let key = PrivateKey::from_der(&der).map_err(issue_err)?;
    let sn = Certificate::parse_pem(&pem, "sandbox Alipay certificate").map_err(issue_err)?[0].sn().clone();
    Ok(AlipayCert { sn, pem, key })
}

/// The newest Alipay certificate, issuing the first one (for `first_key`, if given) if there is none.
pub fn current(
    conn: &Connection,
    ca: &Ca,
    now: DateTime<Utc>,
    first_key: Option<&PrivateKey>,
) -> Result<AlipayCert, CaError> {
    let row: Option<(String, String)> = conn
        .cached_row(
            "SELECT pem, key_pkcs8 FROM alipay_certs ORDER BY created_at DESC, rowid DESC LIMIT 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()
        .map_err(StoreError::from)?;
    match row {
        Some((pem, key)) => cert_row(pem, key),
        None => rotate(conn, ca, now, first_key),
    }
}

/// Issues a new Alipay certificate (for `key`, or a new key) and makes it the one that signs.
pub fn rotate(
    conn: &Connection,
    ca: &Ca,
    now: DateTime<Utc>,
    key: Option<&PrivateKey>,
) -> Result<AlipayCert, CaError> {
    let (key, der) = given_or_new(key)?;
    let pem = ca.issue(
        key.public_key().spki_der(),
        "支付宝(中国)网络技术有限公司-2088000000000000",
        "Haitao Sandbox Alipay",
        now,
    )?;
    let sn = Certificate::parse_pem(&pem, "sandbox Alipay certificate").map_err(issue_err)?[0].sn().clone();
    conn.cached_exec(
        "INSERT INTO alipay_certs (sn, pem, key_pkcs8, created_at) VALUES (?1, ?2, ?3, ?4)",
        rusqlite::params![sn.as_str(), pem, STANDARD.encode(der), Stamp(now)],
    )
    .map_err(StoreError::from)?;
    Ok(AlipayCert { sn, pem, key })
}

/// Any Alipay certificate ever issued, by SN (its PEM file).
pub fn by_sn(conn: &Connection, sn: &str) -> Result<Option<String>, CaError> {
    Ok(conn
        .cached_row("SELECT pem FROM alipay_certs WHERE sn = ?1", [sn], |r| r.get(0))
        .optional()
        .map_err(StoreError::from)?)
}
