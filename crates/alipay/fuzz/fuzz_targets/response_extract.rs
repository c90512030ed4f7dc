//! Response extraction: any text either fails with a typed error or yields a node that is exactly the
//! raw text of the body's top-level member, as serde_json reads it.
#![no_main]

use haitao_alipay::response::{encode, extract};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

const KEY: &str = "alipay_trade_query_response";

fuzz_target!(|data: &[u8]| {
    let Ok(body) = std::str::from_utf8(data) else { return };
    if let Ok(env) = extract(body, KEY) {
        // When the whole body is JSON, the node is the member serde_json finds under the same key.
        if let Ok(Value::Object(map)) = serde_json::from_str::<Value>(body) {
            let node: Value = serde_json::from_str(env.node).expect("a valid body has a valid node");
            assert_eq!(map.get(&env.node_key), Some(&node));
        }
    }
    // Round trip: any JSON object encoded as a response comes back as the very same text.
    if let Ok(value @ Value::Object(_)) = serde_json::from_str::<Value>(body) {
        let text = value.to_string();
        let wrapped = encode(KEY, &text, None).expect("unsigned encoding cannot fail");
        let env = extract(&wrapped, KEY).expect("our own encoding extracts");
        assert_eq!(env.node, text);
    }
});
