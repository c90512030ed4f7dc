//! Property tests: signatures round-trip, and any single change to what was signed breaks them.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::sync::OnceLock;

use haitao_alipay::inbound::{InboundVerifier, sign_v1};
use haitao_alipay::params::Params;
use haitao_alipay::response::{encode, extract};
use haitao_alipay::{PrivateKey, SignType, Signer, Verifier};
use proptest::prelude::*;

fn signer() -> &'static Signer {
    static S: OnceLock<Signer> = OnceLock::new();
    S.get_or_init(|| {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data");
        let k = PrivateKey::parse(&std::fs::read_to_string(format!("{dir}/app-private-key.pem")).unwrap())
            .unwrap();
        Signer::new(k, SignType::Rsa2).unwrap()
    })
}

fn verifier() -> Verifier {
    Verifier::new(signer().public_key().clone())
}

fn params_strategy() -> impl Strategy<Value = BTreeMap<String, String>> {
    proptest::collection::btree_map("[a-z_]{1,10}", "[^\u{0}]{1,30}", 1..12)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn request_signatures_round_trip_and_detect_any_changed_parameter(
        m in params_strategy(),
        pick in any::<prop::sample::Index>(),
        extra in "[^\u{0}]{1,5}",
    ) {
        let p: Params = m.clone().into_iter().collect();
        let content = p.request_sign_content();
        let sig = signer().sign(&content).unwrap();
        prop_assert_eq!(verifier().verify(SignType::Rsa2, &content, &sig), Ok(()));

        let keys: Vec<&String> = m.keys().collect();
        let k = keys[pick.index(keys.len())].clone();
        if k != "sign" {
            let mut changed = p.clone();
            let old = m[&k].clone();
            changed.set(k.clone(), format!("{old}{extra}"));
            prop_assert!(verifier().verify(SignType::Rsa2, &changed.request_sign_content(), &sig).is_err());
        }
    }

    #[test]
    fn any_flipped_byte_of_a_response_node_breaks_its_signature(
        value in "[a-zA-Z0-9 /]{0,40}",
        pos in any::<prop::sample::Index>(),
    ) {
        let node = serde_json::json!({"code": "10000", "msg": "Success", "v": value}).to_string();
        let body = encode("x_response", &node, Some(signer())).unwrap();
        let env = extract(&body, "x_response").unwrap();
        prop_assert_eq!(env.verify(&verifier(), SignType::Rsa2), Ok(()));

        // Flip one byte of the node text, keeping it ASCII so the body stays text.
        let mut bytes = node.clone().into_bytes();
        let i = pos.index(bytes.len());
        bytes[i] = if bytes[i] == b'a' { b'b' } else { b'a' };
        let tampered_node = String::from_utf8(bytes).unwrap();
        let tampered = body.replacen(&node, &tampered_node, 1);
        if let Ok(env) = extract(&tampered, "x_response") {
            prop_assert!(env.verify(&verifier(), SignType::Rsa2).is_err());
        }
    }

    #[test]
    fn v1_signed_notifications_verify_and_resist_tampering(
        amount_minor in 1i64..10_000_000,
        subject in "[^\u{0}&=%+]{1,20}",
        tamper in 0usize..3,
    ) {
        let mut p = Params::new();
        p.set("app_id", "2021000000000001");
        p.set("notify_id", "n1");
        p.set("notify_type", "trade_status_sync");
        p.set("notify_time", "2026-11-27 12:00:00");
        p.set("out_trade_no", "HT1");
        p.set("trade_no", "2026");
        p.set("trade_status", "TRADE_SUCCESS");
        p.set("subject", subject);
        p.set("total_amount", haitao_alipay::Money::from_minor(amount_minor, haitao_alipay::Currency::Cny).to_decimal_string());
        let signed = sign_v1(p, signer()).unwrap();
        let inbound = InboundVerifier::new("2021000000000001", None, verifier(), SignType::Rsa2);
        let body = signed.to_urlencoded();
        prop_assert!(inbound.notify(body.as_bytes()).is_ok());

        let mut t = signed.clone();
        match tamper {
            0 => t.set("total_amount", "0.01"),
            1 => t.set("out_trade_no", "HT2"),
            _ => t.set("trade_status", "TRADE_CLOSED"),
        }
        if t != signed {
            prop_assert!(inbound.notify(t.to_urlencoded().as_bytes()).is_err());
        }
    }
}
