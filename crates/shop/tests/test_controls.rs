//! The test endpoints (`/api/v1/test/*`: moving the shop's clock, running its jobs, failing a
//! customs inspection) are off unless asked for: otherwise anyone who reaches the shop could move
//! its clock past every sign-in lockout. `haitao-shop serve` asks with `--test-controls`, which it
//! refuses beside a real gateway's `--config`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::process::Command;

use common::{World, world_with};
use serde_json::json;

/// A shop with the test endpoints as asked (the tests' shop otherwise has them on).
async fn shop(test_controls: bool) -> World {
    world_with(|cfg| cfg.test_controls = test_controls).await
}

async fn post(w: &World, path: &str, body: serde_json::Value) -> u16 {
    w.http.post(w.url(path)).json(&body).send().await.unwrap().status().as_u16()
}

#[tokio::test]
async fn a_shop_serves_no_test_endpoints_unless_asked() {
    let w = shop(false).await;
    let before = w.shop.shop.now();
    assert_eq!(post(&w, "test/clock/advance", json!({"seconds": 901})).await, 404);
    assert_eq!(post(&w, "test/jobs/run", json!({})).await, 404);
    assert_eq!(post(&w, "test/orders/o1/inspection-fail", json!({})).await, 404);
    let moved = w.shop.shop.now() - before;
    assert!(moved < chrono::Duration::seconds(60), "the clock did not jump: {moved}");
}

#[tokio::test]
async fn a_test_shop_serves_them() {
    let w = shop(true).await;
    let before = w.shop.shop.now();
    assert_eq!(post(&w, "test/clock/advance", json!({"seconds": 901})).await, 200);
    assert!(w.shop.shop.now() - before >= chrono::Duration::seconds(901));
    assert_eq!(post(&w, "test/jobs/run", json!({})).await, 204);
}

#[test]
fn serve_refuses_test_endpoints_beside_a_real_gateway() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_haitao-shop"))
        .args(["serve", "--test-controls", "--config"])
        .arg(dir.path().join("shop.json"))
        .arg("--data-dir")
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--test-controls") && err.contains("--config"), "{err}");
    assert!(err.contains("cannot be used with"), "{err}");
}
