//! Alipay timestamps: whatever text parses is exactly the canonical form of the instant it names.
#![no_main]

use haitao_alipay::time::{format_alipay, parse_alipay};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(at) = parse_alipay(text) {
        assert_eq!(format_alipay(at), text);
    }
});
