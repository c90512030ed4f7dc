//! Inbound notifications and returns, past the signature check: the fuzzed parameters are signed
//! with the key the verifier trusts, so the app/seller checks, trade status, amounts, times and the
//! fund bill list are all exercised. Unsigned or mis-signed bodies are always refused.
#![no_main]

use std::sync::LazyLock;

use haitao_alipay::inbound::{InboundVerifier, sign_v1};
use haitao_alipay::params::{Charset, Limits, Params};
use haitao_alipay::{PrivateKey, SignType, Signer, Verifier};
use libfuzzer_sys::fuzz_target;

const APP: &str = "2021000000000001";

static KEYS: LazyLock<(Signer, InboundVerifier)> = LazyLock::new(|| {
    let (alipay, _) = PrivateKey::generate().expect("key generation");
    let verifier = InboundVerifier::new(
        APP,
        Some("2088000000000001".into()),
        Verifier::new(alipay.public_key().clone()),
        SignType::Rsa2,
    );
    (Signer::new(alipay, SignType::Rsa2).expect("RSA2 signer"), verifier)
});

fuzz_target!(|data: &[u8]| {
    let (signer, inbound) = &*KEYS;
    // As received: whatever signature the body carries is not Alipay's.
    assert!(inbound.notify(data).is_err());
    let Ok((mut params, _)) = Params::parse_urlencoded(data, Charset::Utf8, Limits::default()) else {
        return;
    };
    // Signed by "Alipay": everything behind the signature check runs.
    if params.get("app_id").is_none() {
        params.set("app_id", APP);
    }
    let Ok(signed) = sign_v1(params, signer) else { return };
    let body = signed.to_urlencoded();
    if let Ok(n) = inbound.notify(body.as_bytes()) {
        assert_eq!(Some(n.out_trade_no.as_str()), signed.get("out_trade_no"));
        assert_eq!(Some(n.total_amount.as_str()), signed.get("total_amount"));
    }
    if let Ok(r) = inbound.return_redirect(&body) {
        assert_eq!(Some(r.trade_no.as_str()), signed.get("trade_no"));
    }
    // One changed byte in the signed body is refused (or no longer parses).
    if let Some(pos) = body.find("out_trade_no=") {
        let mut tampered = body.clone().into_bytes();
        let i = pos + "out_trade_no=".len();
        if let Some(b) = tampered.get_mut(i) {
            *b = if *b == b'X' { b'Y' } else { b'X' };
            assert!(inbound.notify(&tampered).is_err());
        }
    }
});
