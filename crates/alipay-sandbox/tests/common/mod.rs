//! A sandbox on an ephemeral port, a merchant app registered with it, an Alipay client for that app,
//! and a local notify endpoint that records what it receives.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::routing::post;
use haitao_alipay::time::{Clock, ManualClock};
use haitao_alipay::{
    AlipayClient, AppConfig, InboundVerifier, PrivateKey, PublicKey, RetryPolicy, SignType, Signer,
};
use haitao_alipay_sandbox::{Config, Running, start};
use haitao_sandbox_api::{
    AdvanceClock, AppInfo, AppRequest, LedgerCheck, Paid, PayAnswer, PayError, PayRequest, path,
};
use parking_lot::Mutex;
use serde_json::Value;

pub struct Harness {
    pub sandbox: Running,
    pub clock: ManualClock,
    pub client: AlipayClient,
    pub app_id: String,
    pub seller_id: String,
    pub merchant_key: PrivateKey,
    pub notify_url: String,
    pub return_url: String,
    pub received: Arc<Mutex<Vec<Bytes>>>,
    /// What the notify endpoint answers (default `success`).
    pub reply: Arc<Mutex<String>>,
    pub http: reqwest::Client,
    pub inbound: InboundVerifier,
    /// The sandbox's data folder when the harness made it, removed when the harness is dropped
    /// (the sandbox's tasks may still hold it open until the test's runtime ends: harmless).
    pub dir: Option<tempfile::TempDir>,
}

type NotifyState = (Arc<Mutex<Vec<Bytes>>>, Arc<Mutex<String>>);

async fn notify_endpoint(State((log, reply)): State<NotifyState>, body: Bytes) -> String {
    log.lock().push(body);
    reply.lock().clone()
}

/// A harness whose sandbox keeps its data in a folder of its own, a file database as the app runs
/// it (with read-only connections beside the writer).
pub async fn harness() -> Harness {
    harness_in(None).await
}

/// A harness whose sandbox keeps its data in `dir`, or in a temporary folder of its own.
pub async fn harness_in(dir: Option<std::path::PathBuf>) -> Harness {
    harness_with(dir, false, false).await
}

/// A harness whose app is in public-key certificate mode and/or encrypts its content (AES), with
/// the client configured as a merchant configures it from what the sandbox hands out. Its data is
/// in `dir`, or in a temporary folder of its own.
pub async fn harness_with(dir: Option<std::path::PathBuf>, cert_mode: bool, aes: bool) -> Harness {
    let own = match dir {
        Some(_) => None,
        None => Some(tempfile::tempdir().unwrap()),
    };
    let dir = dir.or_else(|| own.as_ref().map(|d| d.path().to_owned()));
    let clock = ManualClock::new(haitao_alipay::time::SystemClock.now());
    let mut config = Config::new(dir, "127.0.0.1:0".parse().unwrap());
    config.clock = Some(Arc::new(clock.clone()));
    config.options.slow_answer = Duration::from_millis(1500);
    let sandbox = start(config).await.unwrap();

    let received = Arc::new(Mutex::new(Vec::new()));
    let reply = Arc::new(Mutex::new("success".to_owned()));
    let app =
        Router::new().route("/notify", post(notify_endpoint)).with_state((received.clone(), reply.clone()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });

    let (merchant_key, _) = PrivateKey::generate().unwrap();
    let http = reqwest::Client::new();
    let info: AppInfo = http
        .post(sandbox.base_url().join(path::APPS).unwrap())
        .json(&AppRequest {
            public_key: Some(merchant_key.public_key().to_pem()),
            cert_mode,
            aes,
            ..AppRequest::named("test-shop")
        })
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let app_id = info.app_id.clone();
    let seller_id = info.seller_id.clone();
    let signer = Signer::new(merchant_key.clone(), SignType::Rsa2).unwrap();
    let mut cfg = match &info.certificates {
        None => {
            let alipay_key = PublicKey::parse(&info.alipay_public_key).unwrap();
            AppConfig::new(app_id.clone(), sandbox.gateway_url(), signer, alipay_key).unwrap()
        }
        Some(certs) => {
            let mode = haitao_alipay::cert::CertMode::new(
                &certs.app_cert,
                &certs.alipay_cert,
                &certs.alipay_root_cert,
                merchant_key.public_key(),
            )
            .unwrap();
            AppConfig::with_cert_mode(app_id.clone(), sandbox.gateway_url(), signer, mode).unwrap()
        }
    };
    assert_eq!(info.certificates.is_some(), cert_mode);
    assert_eq!(info.aes_key.is_some(), aes);
    cfg.encrypt_key = info.aes_key.as_deref().map(|k| haitao_alipay::encrypt::AesKey::parse(k).unwrap());
    cfg.seller_id = Some(seller_id.clone());
    let inbound = InboundVerifier::from_config(&cfg);
    let client = AlipayClient::new(Arc::new(cfg), Arc::new(clock.clone()) as Arc<dyn Clock>)
        .unwrap()
        .with_http(
            reqwest::Client::builder().timeout(Duration::from_secs(1)).build().unwrap(),
            Duration::from_secs(1),
        )
        .with_retry(RetryPolicy::none());
    Harness {
        sandbox,
        clock,
        client,
        app_id,
        seller_id,
        merchant_key,
        notify_url: format!("http://{addr}/notify"),
        return_url: "http://127.0.0.1:9/return".into(),
        received,
        reply,
        http,
        inbound,
        dir: own,
    }
}

impl Harness {
    pub fn api(&self, path: &str) -> url::Url {
        self.sandbox.base_url().join(path).unwrap()
    }

    pub async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        let r = self.http.post(self.api(path)).json(&body).send().await.unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    pub async fn get(&self, path: &str) -> Value {
        self.get_as(path).await
    }

    /// A typed tester-API answer.
    pub async fn get_as<T: serde::de::DeserializeOwned>(&self, path: &str) -> T {
        self.http.get(self.api(path)).send().await.unwrap().json().await.unwrap()
    }

    /// `POST /sandbox/api/pay`: the status and the raw answer.
    pub async fn pay(&self, req: &PayRequest) -> (u16, Value) {
        self.post(path::PAY, serde_json::to_value(req).unwrap()).await
    }

    /// Pays, expecting the payment to go through.
    pub async fn pay_ok(&self, req: &PayRequest) -> Paid {
        let (s, v) = self.pay(req).await;
        assert_eq!(s, 200, "{v}");
        match serde_json::from_value(v).unwrap() {
            PayAnswer::Paid(p) => p,
            PayAnswer::Refused(r) => panic!("refused: {r:?}"),
        }
    }

    /// Pays, expecting the sandbox to refuse the payment; why it did.
    pub async fn pay_refused(&self, req: &PayRequest) -> PayError {
        let (s, v) = self.pay(req).await;
        assert_eq!(s, 422, "{v}");
        match serde_json::from_value(v).unwrap() {
            PayAnswer::Refused(r) => r.error,
            PayAnswer::Paid(p) => panic!("paid: {p:?}"),
        }
    }

    /// Opens a page.pay cashier session by following the signed GET URL (as a browser would).
    pub async fn open_page_pay(&self, pay: &haitao_alipay::api::PagePay) -> reqwest::Response {
        let req = self
            .client
            .page_request(
                pay,
                &haitao_alipay::Callbacks {
                    notify_url: Some(self.notify_url.clone()),
                    return_url: Some(self.return_url.clone()),
                },
            )
            .unwrap();
        let no_redirect =
            reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
        no_redirect.get(req.to_get_url()).send().await.unwrap()
    }

    /// Logs a buyer into the cashier the gateway redirected to (`resp` is that 303), as a browser
    /// form post would; the trade exists from then on.
    pub async fn cashier_login(&self, resp: &reqwest::Response, login: &str, password: &str) {
        let location = resp.headers()["location"].to_str().unwrap();
        let token = location.trim_start_matches("/cashier/");
        let r = self
            .http
            .post(self.api(&format!("cashier/{token}/login")))
            .form(&[("login", login), ("password", password)])
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success() || r.status().is_redirection(), "cashier login: {}", r.status());
    }

    /// Waits until `n` notifications arrived.
    pub async fn wait_notifications(&self, n: usize) -> Vec<Bytes> {
        for _ in 0..100 {
            if self.received.lock().len() >= n {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        self.received.lock().clone()
    }

    pub async fn advance(&self, seconds: i64) {
        let (s, v) =
            self.post(path::CLOCK_ADVANCE, serde_json::to_value(AdvanceClock { seconds }).unwrap()).await;
        assert_eq!(s, 200, "{v}");
    }

    pub async fn ledger_conserved(&self) {
        let check: LedgerCheck = self.get_as(path::LEDGER_CHECK).await;
        assert!(check.is_sound(), "{check:?}");
    }
}
