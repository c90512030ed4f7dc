//! Key parsing: whatever a user pastes — PEM, bare base64, with or without line breaks, or garbage —
//! is read or refused with a typed error; a parsed public key survives its own PEM and base64 forms.
#![no_main]

use haitao_alipay::{PrivateKey, PublicKey};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(key) = PrivateKey::parse(text) {
        assert!(key.bits() >= 2048);
    }
    if let Ok(key) = PublicKey::parse(text) {
        assert_eq!(PublicKey::parse(&key.to_pem()).ok().as_ref(), Some(&key));
        assert_eq!(PublicKey::parse(&key.to_base64()).ok().as_ref(), Some(&key));
    }
    let _ = PublicKey::from_der(data);
    let _ = PrivateKey::from_der(data);
});
