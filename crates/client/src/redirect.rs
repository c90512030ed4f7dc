//! Recognising the cashier's return redirect, and the one-shot loopback listener used when the
//! cashier opens in the system browser.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::sync::oneshot;
use url::Url;

/// The exact return address of one payment: a navigation matches when scheme, host, port and path
/// are identical. Query and fragment may differ (they carry Alipay's parameters).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReturnTarget {
    url: Url,
}

impl ReturnTarget {
    pub fn parse(s: &str) -> Option<ReturnTarget> {
        let url = Url::parse(s).ok()?;
        url.host_str()?;
        Some(ReturnTarget { url })
    }

    pub fn as_str(&self) -> &str {
        self.url.as_str()
    }

    pub fn matches(&self, candidate: &Url) -> bool {
        candidate.scheme() == self.url.scheme()
            && candidate.host_str() == self.url.host_str()
            && candidate.port_or_known_default() == self.url.port_or_known_default()
            && candidate.path() == self.url.path()
            && candidate.username().is_empty()
            && candidate.password().is_none()
    }
}

/// A loopback listener that waits for exactly one request to its return path and hands over the
/// raw query string.
#[derive(Debug)]
pub struct Loopback {
    pub return_url: String,
    pub addr: SocketAddr,
    receiver: oneshot::Receiver<String>,
    server: tokio::task::JoinHandle<()>,
}

const PAGE: &str = "<!doctype html><html lang=\"zh-CN\"><head><meta charset=\"utf-8\"><title>Haitao 海淘</title></head>\
<body style=\"font-family:system-ui,sans-serif;text-align:center;padding-top:20vh\"><h1>请返回 Haitao 海淘</h1>\
<p>支付结果正在应用内确认，您可以关闭此页面。</p><p lang=\"en\">Return to Haitao: the app is confirming your payment. You can close this tab.</p></body></html>";

impl Loopback {
    /// Binds `127.0.0.1:0` with an unguessable path.
    pub async fn bind(path_token: &str) -> std::io::Result<Loopback> {
        use axum::extract::RawQuery;
        use axum::response::IntoResponse;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let path = format!("/haitao/return/{path_token}");
        let (tx, rx) = oneshot::channel::<String>();
        let tx = std::sync::Arc::new(parking_lot::Mutex::new(Some(tx)));
        let app = axum::Router::new().route(
            &path,
            axum::routing::get(move |RawQuery(q): RawQuery| {
                let tx = tx.clone();
                async move {
                    if let Some(sender) = tx.lock().take() {
                        let _ = sender.send(q.unwrap_or_default());
                    }
                    ([(axum::http::header::CACHE_CONTROL, "no-store")], axum::response::Html(PAGE))
                        .into_response()
                }
            }),
        );
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(Loopback { return_url: format!("http://{addr}{path}"), addr, receiver: rx, server })
    }

    /// Waits for the browser to come back, at most `timeout`. `None`: it did not.
    pub async fn wait(self, timeout: Duration) -> Option<String> {
        let r = tokio::time::timeout(timeout, self.receiver).await.ok().and_then(Result::ok);
        // Leave the page a moment to be served before the listener goes away.
        tokio::time::sleep(Duration::from_millis(200)).await;
        self.server.abort();
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_match_only() {
        let t = ReturnTarget::parse("http://127.0.0.1:8080/api/v1/alipay/return").unwrap();
        let ok = Url::parse("http://127.0.0.1:8080/api/v1/alipay/return?out_trade_no=1&sign=x").unwrap();
        assert!(t.matches(&ok));
        for bad in [
            "https://127.0.0.1:8080/api/v1/alipay/return",
            "http://127.0.0.1:8081/api/v1/alipay/return",
            "http://localhost:8080/api/v1/alipay/return",
            "http://127.0.0.1:8080/api/v1/alipay/return/",
            "http://127.0.0.1:8080/api/v1/alipay/returnx",
            "http://evil@127.0.0.1:8080/api/v1/alipay/return",
            "http://127.0.0.1:8080/gateway.do?return_url=http://127.0.0.1:8080/api/v1/alipay/return",
        ] {
            assert!(!t.matches(&Url::parse(bad).unwrap()), "{bad}");
        }
    }

    #[tokio::test]
    async fn loopback_hands_over_the_query_once() {
        let lb = Loopback::bind("tok123").await.unwrap();
        let url = format!("{}?out_trade_no=HT1&sign=abc", lb.return_url);
        let page = reqwest::get(&url).await.unwrap().text().await.unwrap();
        assert!(page.contains("Haitao"));
        assert_eq!(lb.wait(Duration::from_secs(2)).await.as_deref(), Some("out_trade_no=HT1&sign=abc"));
        let lb = Loopback::bind("tok456").await.unwrap();
        assert_eq!(lb.wait(Duration::from_millis(100)).await, None);
    }
}
