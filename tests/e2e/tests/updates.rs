//! Haitao updating itself, against a local update server: no update is no message; a server that
//! cannot be reached is an error in Settings only (the background check stays quiet); a tampered
//! artifact, or one signed with another key, is refused; a properly signed one downloads with
//! progress and is verified; a newer version found in the background is told once, with a dot on
//! Settings. The debug app takes its update key from `HAITAO_UPDATER_PUBKEY` (a release build only
//! has the built-in one). Installing and restarting are left to `scripts/package-test`: a build
//! run from source cannot install, and says so.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use base64::Engine;
use haitao_e2e::{Harness, Session};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const VERSION: &str = "99.0.0";
const ARTIFACT: &str = "haitao_99.0.0_amd64.deb";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// 204: nothing newer.
    Nothing,
    /// Connections are dropped unanswered.
    Down,
    /// The artifact served is not the one signed (one byte changed on the way).
    Tampered,
    /// Signed, but with a key that is not Haitao's.
    ForeignKey,
    Good,
}

/// A throwaway update key, as Tauri writes keys: base64 of minisign's text forms.
struct Key {
    pk: minisign::PublicKey,
    sk: minisign::SecretKey,
}

impl Key {
    fn new() -> Key {
        let kp = minisign::KeyPair::generate_unencrypted_keypair().unwrap();
        Key { pk: kp.pk, sk: kp.sk }
    }

    fn public(&self) -> String {
        base64::engine::general_purpose::STANDARD.encode(self.pk.to_box().unwrap().to_string())
    }

    fn sign(&self, data: &[u8]) -> String {
        let comment = format!("timestamp:1796000000\tfile:{ARTIFACT}\tversion:{VERSION}");
        let sig = minisign::sign(Some(&self.pk), &self.sk, std::io::Cursor::new(data), Some(&comment), None)
            .unwrap();
        base64::engine::general_purpose::STANDARD.encode(sig.to_string())
    }
}

struct UpdateServer {
    url: String,
    mode: Arc<parking_lot::Mutex<Mode>>,
    /// Manifest requests answered (or dropped).
    asked: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl UpdateServer {
    async fn start(key: &Key) -> UpdateServer {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        // 3 MiB that do not compress to nothing: enough to see the download progress.
        let artifact: Arc<Vec<u8>> = Arc::new(
            (0..3u32 * 1024 * 1024).map(|i| i.wrapping_mul(2_654_435_761).to_le_bytes()[2]).collect(),
        );
        let good = key.sign(&artifact);
        let foreign = Key::new().sign(&artifact);
        let mode = Arc::new(parking_lot::Mutex::new(Mode::Nothing));
        let asked = Arc::new(AtomicUsize::new(0));
        let (m, a, b) = (mode.clone(), asked.clone(), base.clone());
        let task = tokio::spawn(async move {
            loop {
                let Ok((mut sock, _)) = listener.accept().await else { return };
                let (mode, artifact, good, foreign, base) =
                    (*m.lock(), artifact.clone(), good.clone(), foreign.clone(), b.clone());
                let asked = a.clone();
                tokio::spawn(async move {
                    let mut head = Vec::new();
                    let mut buf = [0u8; 4096];
                    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 16 * 1024 {
                        match sock.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => head.extend_from_slice(&buf[..n]),
                        }
                    }
                    let head = String::from_utf8_lossy(&head);
                    let path = head.split_whitespace().nth(1).unwrap_or("/").to_owned();
                    if path == "/latest.json" {
                        asked.fetch_add(1, Ordering::SeqCst);
                    }
                    if mode == Mode::Down {
                        return; // dropped, unanswered
                    }
                    if path == "/latest.json" {
                        if mode == Mode::Nothing {
                            let _ =
                                sock.write_all(b"HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n").await;
                            return;
                        }
                        let signature = if mode == Mode::ForeignKey { foreign } else { good };
                        let platform = serde_json::json!({ "url": format!("{base}/{ARTIFACT}"), "signature": signature });
                        let body = serde_json::json!({
                            "version": VERSION,
                            "notes": "修复与改进 · Fixes and improvements",
                            "pub_date": "2026-12-01T08:00:00Z",
                            "platforms": { "linux-x86_64": platform, "linux-x86_64-deb": platform },
                        })
                        .to_string();
                        let head = format!(
                            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                            body.len()
                        );
                        let _ = sock.write_all(head.as_bytes()).await;
                        let _ = sock.write_all(body.as_bytes()).await;
                    } else if path == format!("/{ARTIFACT}") {
                        let mut bytes = artifact.to_vec();
                        if mode == Mode::Tampered {
                            bytes[1000] ^= 1;
                        }
                        let head = format!(
                            "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                            bytes.len()
                        );
                        if sock.write_all(head.as_bytes()).await.is_err() {
                            return;
                        }
                        // Paced, as over a real line: about two seconds in all.
                        for chunk in bytes.chunks(64 * 1024) {
                            if sock.write_all(chunk).await.is_err() {
                                return;
                            }
                            tokio::time::sleep(Duration::from_millis(40)).await;
                        }
                    } else {
                        let _ = sock
                            .write_all(
                                b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                            )
                            .await;
                    }
                });
            }
        });
        UpdateServer { url: format!("{base}/latest.json"), mode, asked, task }
    }

    fn set(&self, mode: Mode) {
        *self.mode.lock() = mode;
    }

    async fn wait_asked(&self, more_than: usize) {
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while self.asked.load(Ordering::SeqCst) <= more_than {
            assert!(std::time::Instant::now() < deadline, "the app never asked the update server");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for UpdateServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Clicks "check for updates" and waits for that check to finish.
async fn check(s: &Session) {
    let done = s
        .execute(
            "return Number(document.querySelector('[data-testid=updates]').dataset.checks);",
            serde_json::json!([]),
        )
        .await
        .unwrap()
        .as_u64()
        .unwrap();
    s.click_on("[data-testid=update-check]").await.unwrap();
    s.wait_until(
        "the update check",
        &format!(
            "const e = document.querySelector('[data-testid=updates]'); return Number(e.dataset.checks) > {done} && e.dataset.phase === 'idle';"
        ),
        Duration::from_secs(60),
    )
    .await
    .unwrap();
}

async fn error_shown(s: &Session, code: &str) {
    s.wait_for(&format!("[data-testid=update-error][data-code={code}]"))
        .await
        .unwrap_or_else(|e| panic!("{code}: {e}"));
}

#[tokio::test]
#[ignore = "drives the real app; scripts/test.sh runs it with Xvfb, tauri-driver and a session bus"]
async fn updates_are_checked_downloaded_and_verified_against_the_built_in_key() {
    let key = Key::new();
    let server = UpdateServer::start(&key).await;
    let pubkey = key.public();
    let env = [("HAITAO_UPDATER_PUBKEY", pubkey.as_str()), ("HAITAO_UPDATE_URL", server.url.as_str())];
    let h = Harness::start("updates", &env).await.unwrap();

    // Nothing newer: the start-up check asks, and nothing is said.
    let s = h.launch().await.unwrap();
    s.wait_for("[data-testid=product-card]").await.unwrap();
    server.wait_asked(0).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(s.find("[data-testid=update-dot]").await.unwrap().is_none(), "no update, no nagging");
    assert!(s.find(".toast").await.unwrap().is_none(), "no update, no note");
    s.close().await.unwrap();

    // The server cannot be reached at start: not a word (it is asked again later).
    server.set(Mode::Down);
    let asked = server.asked.load(Ordering::SeqCst);
    let s = h.launch().await.unwrap();
    s.wait_for("[data-testid=product-card]").await.unwrap();
    server.wait_asked(asked).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        s.find(".toast.error").await.unwrap().is_none(),
        "an unreachable server is not the shopper's problem"
    );
    assert!(s.find("[data-testid=update-dot]").await.unwrap().is_none());
    // Where the shopper asks, it is said.
    s.go("/settings").await.unwrap();
    s.wait_for("[data-testid=updates]").await.unwrap();
    check(&s).await;
    error_shown(&s, "update_server_unreachable").await;
    server.set(Mode::Nothing);
    check(&s).await;
    s.wait_for("[data-testid=update-none]").await.unwrap();

    // Tampered on the way: found, downloaded, refused, nothing ready.
    server.set(Mode::Tampered);
    check(&s).await;
    s.wait_for("[data-testid=update-available]").await.unwrap();
    s.click_on("[data-testid=update-download]").await.unwrap();
    error_shown(&s, "update_signature_invalid").await;
    assert!(s.find("[data-testid=update-ready]").await.unwrap().is_none());

    // Signed, but not with Haitao's key.
    server.set(Mode::ForeignKey);
    check(&s).await;
    s.wait_for("[data-testid=update-download]").await.unwrap();
    s.click_on("[data-testid=update-download]").await.unwrap();
    error_shown(&s, "update_signature_invalid").await;
    assert!(s.find("[data-testid=update-ready]").await.unwrap().is_none());

    // Properly signed: the download shows its progress, then is verified.
    server.set(Mode::Good);
    check(&s).await;
    let available = s.wait_for("[data-testid=update-available]").await.unwrap();
    let text = s.text(&available).await.unwrap();
    assert!(text.contains(VERSION) && text.contains("修复与改进"), "{text}");
    h.screenshot(&s, "update-available").await.unwrap();
    s.click_on("[data-testid=update-download]").await.unwrap();
    // Read in one script: the progress goes away once the download is done.
    let shown = s
        .wait_until(
            "the download's progress",
            "const e = document.querySelector('[data-testid=update-progress]'); return e ? e.innerText : null;",
            Duration::from_secs(20),
        )
        .await
        .unwrap();
    assert!(shown.as_str().unwrap_or_default().contains("已下载"), "{shown}");
    h.screenshot(&s, "update-downloading").await.unwrap();
    s.wait_for("[data-testid=update-ready]").await.unwrap();
    // A build run from source verifies but does not install.
    s.wait_for("[data-testid=update-source-build]").await.unwrap();
    assert!(s.find("[data-testid=update-install]").await.unwrap().is_none());
    h.screenshot(&s, "update-ready").await.unwrap();
    s.close().await.unwrap();

    // Next start: the background check finds the new version and says so once, with a dot on
    // Settings, in the shopper's language.
    let before = server.asked.load(Ordering::SeqCst);
    let s = h.launch().await.unwrap();
    s.wait_for("[data-testid=product-card]").await.unwrap();
    server.wait_asked(before).await;
    s.wait_for("[data-testid=update-dot]").await.unwrap();
    s.wait_until(
        "the update toast",
        &format!("return [...document.querySelectorAll('.toast, [role=status]')].some(e => e.textContent.includes('Haitao {VERSION}'));"),
        Duration::from_secs(10),
    )
    .await
    .unwrap();
    h.screenshot(&s, "update-found-toast").await.unwrap();
    s.click_on("[data-testid=lang-toggle]").await.unwrap();
    s.go("/settings").await.unwrap();
    check(&s).await;
    let available = s.wait_for("[data-testid=update-available]").await.unwrap();
    s.wait_until(
        "Settings in English",
        "return document.documentElement.lang === 'en' && /Version 99\\.0\\.0 is available/.test(document.querySelector('[data-testid=updates]').innerText);",
        Duration::from_secs(10),
    )
    .await
    .unwrap();
    let _ = available;
    h.screenshot(&s, "update-available-en").await.unwrap();
    s.click_on("[data-testid=lang-toggle]").await.unwrap();
    s.close().await.unwrap();
}
