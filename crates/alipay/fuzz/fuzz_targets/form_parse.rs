//! Form and query parsing: any bytes either fail with a typed error or parse into parameters that
//! encode and parse back to themselves, in UTF-8 and in GBK.
#![no_main]

use haitao_alipay::params::{Charset, Limits, Params};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for charset in [Charset::Utf8, Charset::Gbk] {
        let Ok((params, used)) = Params::parse_urlencoded(data, charset, Limits::default()) else {
            continue;
        };
        // Canonical strings: every non-empty parameter but the signature, in order.
        let content = params.v1_sign_content();
        let expected: usize =
            params.iter().filter(|(k, v)| !v.is_empty() && *k != "sign" && *k != "sign_type").count();
        assert!(expected == 0 || content.matches('=').count() >= expected);
        // Our encoding (always UTF-8) parses back to the same parameters.
        if used == Charset::Utf8 {
            let again =
                Params::parse_urlencoded(params.to_urlencoded().as_bytes(), Charset::Utf8, Limits::default())
                    .map(|(p, _)| p);
            assert_eq!(again.as_ref().ok(), Some(&params), "re-encoded: {:?}", params.to_urlencoded());
        }
    }
});
