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

mod per_address {
    use super::common::{World, world_with};
    use haitao_shop::limits::AddressLimits;
    use serde_json::{Value, json};

    async fn limited(trusted: &[&str]) -> World {
        let trusted_proxies = trusted.iter().map(|t| t.parse().unwrap()).collect();
        world_with(|cfg| {
            cfg.address_limits = Some(AddressLimits {
                login_failures: 3,
                registrations: 2,
                window_minutes: 60,
                trusted_proxies,
            })
        })
        .await
    }

    /// POSTs `auth/<what>` as if from `forwarded` (an `X-Forwarded-For` value); status and body.
    async fn auth(w: &World, what: &str, forwarded: &str, phone: &str, password: &str) -> (u16, Value) {
        let r = w
            .http
            .post(w.url(&format!("auth/{what}")))
            .header("x-forwarded-for", forwarded)
            .json(&json!({"phone": phone, "password": password}))
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.json().await.unwrap())
    }

    /// Behind a trusted proxy each client counts alone: its third registration in the hour is
    /// refused with 429 (and no account is made), a client cannot get a fresh count by writing
    /// its own `X-Forwarded-For` entry in front of the proxy's, and another client is unaffected.
    #[tokio::test]
    async fn registrations_are_limited_per_client_behind_a_trusted_proxy() {
        let w = limited(&["127.0.0.1"]).await;
        let a = "203.0.113.7";
        assert_eq!(auth(&w, "register", a, "13900000001", "haitao2026").await.0, 201);
        assert_eq!(auth(&w, "register", a, "13900000002", "haitao2026").await.0, 201);
        let (status, body) = auth(&w, "register", a, "13900000003", "haitao2026").await;
        assert_eq!(status, 429, "{body}");
        assert_eq!(body["code"], json!("rate_limited"));
        assert_eq!(body["retry_after_secs"], json!(3600));
        let forged = format!("198.51.100.1, {a}");
        assert_eq!(auth(&w, "register", &forged, "13900000003", "haitao2026").await.0, 429);
        // Refused means not made: the number is still free for another client.
        assert_eq!(auth(&w, "register", "203.0.113.8", "13900000003", "haitao2026").await.0, 201);
        // A number already taken counts (or one address could probe which numbers are registered,
        // and make the shop hash passwords for free); a password the rules refuse does not.
        assert_eq!(auth(&w, "register", "203.0.113.9", "13900000003", "haitao2026").await.0, 409);
        assert_eq!(auth(&w, "register", "203.0.113.9", "13900000004", "short").await.0, 422);
        assert_eq!(auth(&w, "register", "203.0.113.9", "13900000004", "haitao2026").await.0, 201);
        assert_eq!(auth(&w, "register", "203.0.113.9", "13900000006", "haitao2026").await.0, 429);
        // An hour later the client may register again.
        w.clock.advance(chrono::Duration::minutes(61));
        assert_eq!(auth(&w, "register", a, "13900000005", "haitao2026").await.0, 201);
    }

    /// Three failed sign-ins from one client, each for a different number (under the per-number
    /// limit), and its next sign-in is refused with 429 even with the right password, while the same
    /// account signs in from elsewhere; the window ends after an hour.
    #[tokio::test]
    async fn sign_in_failures_are_limited_per_client() {
        let w = limited(&["127.0.0.1"]).await;
        assert_eq!(auth(&w, "register", "192.0.2.1", "13900000010", "haitao2026").await.0, 201);
        let sprayer = "203.0.113.20";
        for phone in ["13900000011", "13900000012", "13900000010"] {
            assert_eq!(auth(&w, "login", sprayer, phone, "guess12345").await.0, 401, "{phone}");
        }
        let (status, body) = auth(&w, "login", sprayer, "13900000010", "haitao2026").await;
        assert_eq!(status, 429, "{body}");
        assert_eq!(auth(&w, "login", "203.0.113.21", "13900000010", "haitao2026").await.0, 200);
        // The account signing in elsewhere clears its own failures, not the client's.
        assert_eq!(auth(&w, "login", sprayer, "13900000010", "haitao2026").await.0, 429);
        // Retry-After says when the oldest failure leaves the window.
        w.clock.advance(chrono::Duration::minutes(30));
        let (status, body) = auth(&w, "login", sprayer, "13900000010", "haitao2026").await;
        assert_eq!(status, 429);
        assert_eq!(body["retry_after_secs"], json!(30 * 60), "{body}");
        // A right password from a client under its limit leaves nothing counted against it.
        for _ in 0..5 {
            assert_eq!(auth(&w, "login", "203.0.113.22", "13900000010", "haitao2026").await.0, 200);
        }
        w.clock.advance(chrono::Duration::minutes(31));
        let (status, body) = auth(&w, "login", sprayer, "13900000010", "haitao2026").await;
        assert_eq!(status, 200, "{body}");
    }

    /// Simultaneous sign-ins from one client cannot all slip past the check: each is counted
    /// before its password is checked, so of twelve at once exactly three are answered.
    #[tokio::test]
    async fn a_burst_of_sign_ins_gets_no_more_than_the_limit() {
        let w = std::sync::Arc::new(limited(&["127.0.0.1"]).await);
        let tasks: Vec<_> = (0..12)
            .map(|i| {
                let w = w.clone();
                tokio::spawn(async move {
                    auth(&w, "login", "203.0.113.40", &format!("139000000{:02}", 50 + i), "guess12345")
                        .await
                        .0
                })
            })
            .collect();
        let mut statuses = Vec::new();
        for t in tasks {
            statuses.push(t.await.unwrap());
        }
        statuses.sort_unstable();
        assert_eq!(statuses, [401, 401, 401, 429, 429, 429, 429, 429, 429, 429, 429, 429]);
    }

    /// Without a trusted proxy the header proves nothing: every request here comes from
    /// 127.0.0.1, whatever it claims, and counts as that one client.
    #[tokio::test]
    async fn an_untrusted_forwarded_header_changes_nothing() {
        let w = limited(&[]).await;
        assert_eq!(auth(&w, "register", "203.0.113.30", "13900000020", "haitao2026").await.0, 201);
        assert_eq!(auth(&w, "register", "203.0.113.31", "13900000021", "haitao2026").await.0, 201);
        assert_eq!(auth(&w, "register", "203.0.113.32", "13900000022", "haitao2026").await.0, 429);
    }
}

/// The embedded shop (no address limits) lets one machine register many accounts, as the load
/// run's 500 shoppers do.
#[tokio::test]
async fn the_embedded_shop_has_no_address_limits() {
    let w = common::world().await;
    for i in 0..12 {
        let phone = format!("139000001{i:02}");
        let r = w
            .call(
                reqwest::Method::POST,
                "auth/register",
                None,
                Some(serde_json::json!({"phone": phone, "password": "haitao2026"})),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.body);
    }
}

/// The per-number lockout holds against a burst: wrong passwords sent at once for one number are
/// each counted before the password is checked, so only the first five are answered "wrong
/// password" and the rest are refused, and the right password is refused too until the window
/// ends. (Counted after the check, every one of a burst was answered.)
#[tokio::test]
async fn a_burst_of_wrong_passwords_for_one_number_gets_no_more_than_five_tries() {
    let w = std::sync::Arc::new(common::world().await);
    w.buyer("13800006001", "张伟", "110105198803151232").await;
    let tasks: Vec<_> = (0..12)
        .map(|i| {
            let w = w.clone();
            tokio::spawn(async move {
                w.call(
                    reqwest::Method::POST,
                    "auth/login",
                    None,
                    Some(serde_json::json!({"phone": "13800006001", "password": format!("wrong{i:04}x")})),
                )
                .await
                .status
            })
        })
        .collect();
    let mut statuses = Vec::new();
    for t in tasks {
        statuses.push(t.await.unwrap());
    }
    statuses.sort_unstable();
    assert_eq!(statuses, [401, 401, 401, 401, 401, 429, 429, 429, 429, 429, 429, 429]);
    let right = w
        .call(
            reqwest::Method::POST,
            "auth/login",
            None,
            Some(serde_json::json!({"phone": "13800006001", "password": "haitao2026"})),
        )
        .await;
    assert_eq!(right.status, 429, "locked for the right password too");
}
