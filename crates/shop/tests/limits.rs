//! Body size limits over raw HTTP: the shop's notification endpoint (64 KiB) and the sandbox
//! gateway (256 KiB) refuse oversized requests with 413 whether they declare their length or
//! stream it in chunks, change nothing, and still answer requests within the limit.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Sends a raw HTTP/1.1 POST and returns the response's status code, or 0 when the connection
/// closed without one. A server may answer and close before it read everything: write errors
/// after that point are not failures.
async fn post_status(url: &url::Url, body: &[u8], chunked: bool) -> u16 {
    let addr = format!("{}:{}", url.host_str().unwrap(), url.port().unwrap());
    let length = if chunked {
        "Transfer-Encoding: chunked\r\n".to_owned()
    } else {
        format!("Content-Length: {}\r\n", body.len())
    };
    let head = format!(
        "POST {} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/x-www-form-urlencoded\r\n{length}Connection: close\r\n\r\n",
        url.path()
    );
    let mut conn = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let _ = conn.write_all(head.as_bytes()).await;
    if chunked {
        for chunk in body.chunks(16 * 1024) {
            if conn.write_all(format!("{:x}\r\n", chunk.len()).as_bytes()).await.is_err()
                || conn.write_all(chunk).await.is_err()
                || conn.write_all(b"\r\n").await.is_err()
            {
                break;
            }
        }
        let _ = conn.write_all(b"0\r\n\r\n").await;
    } else {
        let _ = conn.write_all(body).await;
    }
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    while !answer.windows(2).any(|w| w == b"\r\n") {
        match conn.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => answer.extend_from_slice(&buf[..n]),
        }
    }
    String::from_utf8_lossy(&answer).split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap_or(0)
}

#[tokio::test]
async fn oversized_notifications_and_gateway_requests_are_refused_with_413() {
    let w = common::world().await;
    let notify = url::Url::parse(&w.url("alipay/notify")).unwrap();
    let gateway = w.sandbox.gateway_url();
    // 70 KB and 300 KB of form fields: over the shop's 64 KiB and the gateway's 256 KiB.
    let big_notify =
        format!("notify_id=1&out_trade_no=HT1&trade_status=TRADE_SUCCESS&x={}", "a".repeat(70 * 1024));
    let big_call = format!("method=alipay.trade.query&biz_content={}", "a".repeat(300 * 1024));
    for chunked in [false, true] {
        assert_eq!(
            post_status(&notify, big_notify.as_bytes(), chunked).await,
            413,
            "notify, chunked: {chunked}"
        );
        assert_eq!(
            post_status(&gateway, big_call.as_bytes(), chunked).await,
            413,
            "gateway, chunked: {chunked}"
        );
    }
    // Within the limits each still gets its own answer: an unsigned notification is refused (400),
    // an unsigned gateway call gets Alipay's error envelope (HTTP 200).
    let small_notify = "notify_id=1&out_trade_no=HT1&trade_status=TRADE_SUCCESS";
    assert_eq!(post_status(&notify, small_notify.as_bytes(), false).await, 400);
    let small_call = "method=alipay.trade.query&biz_content=%7B%7D";
    assert_eq!(post_status(&gateway, small_call.as_bytes(), false).await, 200);
}
