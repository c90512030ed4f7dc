//! Form and query parsing, in UTF-8 and in GBK: any bytes either fail with a typed error or parse
//! into parameters whose canonical string is exactly the sorted non-empty pairs without `sign` and
//! `sign_type`; parameters read as UTF-8 encode and parse back to themselves.
#![no_main]

use haitao_alipay::params::{Charset, Limits, Params};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for charset in [Charset::Utf8, Charset::Gbk] {
        let Ok((params, used)) = Params::parse_urlencoded(data, charset, Limits::default()) else {
            continue;
        };
        // Canonical string, rebuilt independently from the parsed pairs.
        let mut pairs: Vec<(&str, &str)> =
            params.iter().filter(|(k, v)| !v.is_empty() && *k != "sign" && *k != "sign_type").collect();
        pairs.sort_unstable();
        let expected: Vec<String> = pairs.iter().map(|(k, v)| format!("{k}={v}")).collect();
        assert_eq!(params.v1_sign_content(), expected.join("&"));
        // Our encoding (always UTF-8) parses back to the same parameters.
        if used == Charset::Utf8 {
            let again =
                Params::parse_urlencoded(params.to_urlencoded().as_bytes(), Charset::Utf8, Limits::default())
                    .map(|(p, _)| p);
            assert_eq!(again.as_ref().ok(), Some(&params), "re-encoded: {:?}", params.to_urlencoded());
        }
    }
});
