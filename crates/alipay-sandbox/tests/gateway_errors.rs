//! The gateway answers in JSON, errors included, and says so: an error that repeats what the
//! caller sent (a parameter's name) is never served as a page a browser would run.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::harness;

#[tokio::test]
async fn a_gateway_error_echoing_a_parameter_name_is_json_not_html() {
    let h = harness().await;
    let name = "%3Cscript%3Ealert(1)%3C%2Fscript%3E";
    let body = format!("{name}=1&{name}=2&method=alipay.trade.query");
    let r = reqwest::Client::new()
        .post(h.sandbox.base_url().join("gateway.do").unwrap())
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .unwrap();
    let content_type = r.headers().get("content-type").unwrap().to_str().unwrap().to_owned();
    let nosniff = r.headers().get("x-content-type-options").map(|v| v.to_str().unwrap().to_owned());
    let text = r.text().await.unwrap();
    assert!(text.contains("<script>"), "the error names the parameter: {text}");
    assert!(content_type.starts_with("application/json"), "{content_type}");
    assert_eq!(nosniff.as_deref(), Some("nosniff"));
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["error_response"]["sub_code"], "isv.invalid-parameter", "{v}");
}
