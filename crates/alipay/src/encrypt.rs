//! Content encryption (`encrypt_type=AES`, 接口内容加密): AES-CBC with PKCS#7 padding and an all-zero
//! IV, as Alipay specifies, over UTF-8 text; the ciphertext travels as standard base64. The key is
//! the base64 text the Alipay console shows (16 bytes: AES-128; 32-byte keys work as AES-256, as
//! the SDKs would use them).

use std::fmt;
use std::sync::Arc;

use aws_lc_rs::cipher::{
    AES_128, AES_256, DecryptionContext, EncryptionContext, PaddedBlockDecryptingKey,
    PaddedBlockEncryptingKey, UnboundCipherKey,
};
use aws_lc_rs::iv::FixedLength;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

/// The value of `encrypt_type` for this scheme.
pub const ENCRYPT_TYPE: &str = "AES";

/// Why a key or a ciphertext could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AesError {
    #[error("the AES key is not base64 (paste the key the Alipay console shows)")]
    KeyNotBase64,
    #[error("the AES key has {0} bytes; Alipay's keys have 16 (AES-128) or 32 (AES-256)")]
    KeyLength(usize),
    #[error("the encrypted content is not base64")]
    NotBase64,
    #[error("the encrypted content does not decrypt with this key (wrong key or damaged content)")]
    Undecryptable,
    #[error("the decrypted content is not UTF-8 text")]
    NotUtf8,
    #[error("the cipher could not be set up")]
    Cipher,
}

/// An app's content-encryption key. Never printed.
#[derive(Clone)]
pub struct AesKey {
    bytes: Arc<[u8]>,
}

impl fmt::Debug for AesKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AesKey(<redacted>, {} bits)", self.bytes.len() * 8)
    }
}

impl PartialEq for AesKey {
    fn eq(&self, other: &Self) -> bool {
        aws_lc_rs::constant_time::verify_slices_are_equal(&self.bytes, &other.bytes).is_ok()
    }
}

impl Eq for AesKey {}

const ZERO_IV: [u8; 16] = [0; 16];

impl AesKey {
    /// Reads the base64 key text (surrounding whitespace ignored).
    pub fn parse(text: &str) -> Result<Self, AesError> {
        let bytes = STANDARD.decode(text.trim().as_bytes()).map_err(|_| AesError::KeyNotBase64)?;
        Self::from_bytes(&bytes)
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<Self, AesError> {
        match bytes.len() {
            16 | 32 => Ok(AesKey { bytes: Arc::from(bytes) }),
            n => Err(AesError::KeyLength(n)),
        }
    }

    /// A fresh random AES-128 key.
    pub fn generate() -> Result<Self, AesError> {
        let mut bytes = [0u8; 16];
        aws_lc_rs::rand::fill(&mut bytes).map_err(|_| AesError::Cipher)?;
        Self::from_bytes(&bytes)
    }

    /// The key as the console shows it. Only for handing it to its owner once.
    pub fn to_base64(&self) -> String {
        STANDARD.encode(&self.bytes)
    }

    fn unbound(&self) -> Result<UnboundCipherKey, AesError> {
        let alg = if self.bytes.len() == 16 { &AES_128 } else { &AES_256 };
        UnboundCipherKey::new(alg, &self.bytes).map_err(|_| AesError::Cipher)
    }

    /// Encrypts `plain` and returns standard base64.
    pub fn encrypt(&self, plain: &str) -> Result<String, AesError> {
        let key = PaddedBlockEncryptingKey::cbc_pkcs7(self.unbound()?).map_err(|_| AesError::Cipher)?;
        let mut data = plain.as_bytes().to_vec();
        key.less_safe_encrypt(&mut data, EncryptionContext::Iv128(FixedLength::from(ZERO_IV)))
            .map_err(|_| AesError::Cipher)?;
        Ok(STANDARD.encode(&data))
    }

    /// Decrypts base64 ciphertext into text.
    pub fn decrypt(&self, b64: &str) -> Result<String, AesError> {
        let mut data = STANDARD.decode(b64.trim().as_bytes()).map_err(|_| AesError::NotBase64)?;
        if data.is_empty() || data.len() % 16 != 0 {
            return Err(AesError::Undecryptable);
        }
        let key = PaddedBlockDecryptingKey::cbc_pkcs7(self.unbound()?).map_err(|_| AesError::Cipher)?;
        let plain = key
            .decrypt(&mut data, DecryptionContext::Iv128(FixedLength::from(ZERO_IV)))
            .map_err(|_| AesError::Undecryptable)?;
        String::from_utf8(plain.to_vec()).map_err(|_| AesError::NotUtf8)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_refuses_the_wrong_key() {
        let key = AesKey::generate().unwrap();
        for text in ["", "a", "{\"out_trade_no\":\"T1\",\"total_amount\":\"88.88\"}", "一二三四五六七八"]
        {
            let c = key.encrypt(text).unwrap();
            assert_eq!(key.decrypt(&c).unwrap(), text);
        }
        let other = AesKey::generate().unwrap();
        let c = key.encrypt("{\"a\":\"b\"}").unwrap();
        assert_ne!(other.decrypt(&c).ok().as_deref(), Some("{\"a\":\"b\"}"));
        assert_eq!(key.decrypt("%%"), Err(AesError::NotBase64));
        assert_eq!(key.decrypt("AAAA"), Err(AesError::Undecryptable));
        assert_eq!(key.decrypt(""), Err(AesError::Undecryptable));
    }

    /// Made with `openssl enc -aes-128-cbc -K 000102…0f -iv 00…00 -base64`.
    #[test]
    fn matches_openssl() {
        let key = AesKey::parse("AAECAwQFBgcICQoLDA0ODw==").unwrap();
        let plain = r#"{"out_trade_no":"20150320010101001","total_amount":"88.88"}"#;
        let openssl =
            "G7PYcjyAquhKW/Z/PmtCC3IyDf5IloaeSsG/Xv5RztSQFIkH/R2DoxFeGNqKCB+byfYZusLPasQoWLWeuQybYA==";
        assert_eq!(key.encrypt(plain).unwrap(), openssl);
        assert_eq!(key.decrypt(openssl).unwrap(), plain);
    }

    #[test]
    fn keys_are_base64_of_16_or_32_bytes_and_never_printed() {
        assert_eq!(AesKey::parse("not base64!"), Err(AesError::KeyNotBase64));
        assert_eq!(AesKey::parse(&STANDARD.encode([1u8; 8])), Err(AesError::KeyLength(8)));
        let k = AesKey::parse(&STANDARD.encode([7u8; 16])).unwrap();
        assert!(!format!("{k:?}").contains(&k.to_base64()));
        assert_eq!(AesKey::parse(&format!(" {}\n", k.to_base64())).unwrap(), k);
        assert!(AesKey::parse(&STANDARD.encode([7u8; 32])).is_ok());
    }
}
