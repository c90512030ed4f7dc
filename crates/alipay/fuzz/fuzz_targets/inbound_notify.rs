//! Inbound notifications and returns: any body is refused with a typed rejection (nothing here is
//! signed by the key the verifier expects), and nothing panics on the way.
#![no_main]

use std::sync::LazyLock;

use haitao_alipay::inbound::InboundVerifier;
use haitao_alipay::{PrivateKey, SignType, Verifier};
use libfuzzer_sys::fuzz_target;

static INBOUND: LazyLock<InboundVerifier> = LazyLock::new(|| {
    let (alipay, _) = PrivateKey::generate().expect("key generation");
    InboundVerifier::new(
        "2021000000000001",
        Some("2088000000000001".into()),
        Verifier::new(alipay.public_key().clone()),
        SignType::Rsa2,
    )
});

fuzz_target!(|data: &[u8]| {
    assert!(INBOUND.notify(data).is_err());
    if let Ok(query) = std::str::from_utf8(data) {
        assert!(INBOUND.return_redirect(query).is_err());
    }
});
