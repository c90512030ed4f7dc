//! The tester controls answer callers on this machine, and no web page of another site: a page
//! the tester happens to open cannot force outcomes, move the clock or read the SMS inbox through
//! the tester's browser. (Callers on other machines are refused unless the sandbox is started
//! with `--public`; that rule is unit-tested in `controls.rs`, since tests reach only loopback.)
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::harness;

#[tokio::test]
async fn a_foreign_page_cannot_use_the_tester_controls() {
    let h = harness().await;
    let http = reqwest::Client::new();
    let clock = h.sandbox.base_url().join("sandbox/api/clock").unwrap();
    let advance = h.sandbox.base_url().join("sandbox/api/clock/advance").unwrap();
    assert_eq!(http.get(clock.clone()).send().await.unwrap().status(), 200);
    let own = h.sandbox.base_url().origin().ascii_serialization();
    let r = http.get(clock.clone()).header("origin", own).send().await.unwrap();
    assert_eq!(r.status(), 200, "the sandbox's own pages may");
    let before: serde_json::Value = http.get(clock.clone()).send().await.unwrap().json().await.unwrap();
    let r = http
        .post(advance)
        .header("origin", "https://evil.example")
        .json(&serde_json::json!({"seconds": 3600}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["error"], "forbidden", "{body}");
    let after: serde_json::Value = http.get(clock).send().await.unwrap().json().await.unwrap();
    assert_eq!(before, after, "the clock did not move");
}
