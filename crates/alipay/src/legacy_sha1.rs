//! SHA1withRSA (PKCS#1 v1.5) signing for Alipay's legacy `sign_type=RSA`.
//!
//! aws-lc-rs signs only with SHA-256 and stronger digests, so this module calls the same AWS-LC
//! library (already linked by aws-lc-rs, not a second copy) through `aws-lc-sys` for the one
//! operation it does not expose. It is the only `unsafe` code in Haitao; every block states why it
//! is sound. Verification of SHA-1 signatures needs none of this: aws-lc-rs provides it.
#![allow(unsafe_code)]

use aws_lc_rs::digest;

/// An AWS-LC `RSA` private key able to sign SHA-1 digests. Owns its pointer.
pub(crate) struct Sha1Signer {
    rsa: std::ptr::NonNull<aws_lc_sys::RSA>,
}

// SAFETY: AWS-LC `RSA` objects are internally synchronised for private-key operations (blinding and
// Montgomery contexts are created under a lock), which is how aws-lc-rs itself shares its RSA keys
// across threads. We never mutate the key after construction.
unsafe impl Send for Sha1Signer {}
// SAFETY: see `Send` above; `sign` takes `&self` and AWS-LC's `RSA_sign` is thread-safe on one key.
unsafe impl Sync for Sha1Signer {}

impl Drop for Sha1Signer {
    fn drop(&mut self) {
        // SAFETY: `rsa` came from AWS-LC with one reference owned by us; it is freed exactly once.
        unsafe { aws_lc_sys::RSA_free(self.rsa.as_ptr()) }
    }
}

impl std::fmt::Debug for Sha1Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sha1Signer(<redacted>)")
    }
}

impl Sha1Signer {
    /// Loads a PKCS#1 `RSAPrivateKey` or PKCS#8 `PrivateKeyInfo` DER. Returns `None` if neither parses.
    pub(crate) fn from_der(der: &[u8]) -> Option<Self> {
        // SAFETY: `der` is a valid slice for the duration of the call; AWS-LC copies what it keeps.
        let pkcs1 = unsafe { aws_lc_sys::RSA_private_key_from_bytes(der.as_ptr(), der.len()) };
        if let Some(rsa) = std::ptr::NonNull::new(pkcs1) {
            return Some(Sha1Signer { rsa });
        }
        // SAFETY: clearing the thread-local error queue has no preconditions.
        unsafe { aws_lc_sys::ERR_clear_error() };

        // SAFETY: CBS is a plain C struct (pointer + length) for which all-zero is a valid value and
        // which CBS_init fully initialises; it borrows `der`, which outlives its use below.
        let mut cbs: aws_lc_sys::CBS = unsafe { std::mem::zeroed() };
        // SAFETY: as above.
        unsafe { aws_lc_sys::CBS_init(&mut cbs, der.as_ptr(), der.len()) };
        // SAFETY: `cbs` is initialised; the returned EVP_PKEY (if any) is owned by us.
        let pkey = unsafe { aws_lc_sys::EVP_parse_private_key(&mut cbs) };
        if pkey.is_null() {
            // SAFETY: no preconditions.
            unsafe { aws_lc_sys::ERR_clear_error() };
            return None;
        }
        // SAFETY: `pkey` is non-null and owned; get1 takes a new reference to its RSA (or null if the
        // key is not RSA), after which we release our EVP_PKEY reference exactly once.
        let rsa = unsafe {
            let rsa = aws_lc_sys::EVP_PKEY_get1_RSA(pkey);
            aws_lc_sys::EVP_PKEY_free(pkey);
            rsa
        };
        match std::ptr::NonNull::new(rsa) {
            Some(rsa) => Some(Sha1Signer { rsa }),
            None => {
                // SAFETY: no preconditions.
                unsafe { aws_lc_sys::ERR_clear_error() };
                None
            }
        }
    }

    /// Size of the modulus in bits.
    pub(crate) fn bits(&self) -> usize {
        // SAFETY: `rsa` is a valid key for our lifetime.
        let bytes = unsafe { aws_lc_sys::RSA_size(self.rsa.as_ptr()) };
        usize::try_from(bytes).unwrap_or(0) * 8
    }

    /// SHA1withRSA PKCS#1 v1.5 signature of `message`.
    pub(crate) fn sign(&self, message: &[u8]) -> Option<Vec<u8>> {
        let d = digest::digest(&digest::SHA1_FOR_LEGACY_USE_ONLY, message);
        let hash = d.as_ref();
        let mut out = vec![0u8; self.bits() / 8];
        let mut written: std::os::raw::c_uint = 0;
        // SAFETY: `out` has RSA_size bytes as RSA_sign requires; `hash` is a 20-byte SHA-1 digest for
        // NID_sha1; `written` receives the signature length, never more than `out.len()`.
        let ok = unsafe {
            aws_lc_sys::RSA_sign(
                aws_lc_sys::NID_sha1,
                hash.as_ptr(),
                hash.len(),
                out.as_mut_ptr(),
                &mut written,
                self.rsa.as_ptr(),
            )
        };
        if ok != 1 {
            // SAFETY: no preconditions.
            unsafe { aws_lc_sys::ERR_clear_error() };
            return None;
        }
        out.truncate(usize::try_from(written).unwrap_or(0));
        Some(out)
    }
}
