//! The app as a shopper installs it: the binary the `.deb` put on PATH, started from its package
//! with nothing from this checkout, shows the catalog of its embedded shop and opens a product.
//! `scripts/package-test` installs the package, runs this with `HAITAO_APP_BIN=/usr/bin/haitao`,
//! and uninstalls it; `make test` does not run it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use haitao_e2e::{Harness, app_binary};
use serde_json::json;

mod flows;
use flows::{
    BrowserStandIn, app_link_on, checkout_in_the_browser, fill_cart, open_link_and_see_paid,
    pay_in_the_browser, shopper,
};

#[tokio::test]
#[ignore = "needs the installed package; scripts/package-test runs it"]
async fn the_installed_app_shows_the_catalog_and_a_product() {
    let bin = app_binary().unwrap();
    assert!(
        !bin.starts_with(haitao_e2e::workspace_root()),
        "HAITAO_APP_BIN must be the installed binary, not one in this checkout: {}",
        bin.display()
    );
    let h = Harness::start("installed", &[]).await.unwrap();
    let s = h.launch().await.unwrap();
    s.wait_for("[data-testid=product-card]").await.unwrap();
    // Every visible card with a decoded picture, and the catalog's count: the catalog and the
    // images the package carries, served by the embedded shop it started.
    let shown = s
        .wait_until(
            "the catalog with its pictures",
            "const cards = [...document.querySelectorAll('[data-testid=product-card]')];
             const t = document.querySelector('[data-testid=result-count]')?.textContent ?? '';
             const n = Number(t.replace(/\\D/g, ''));
             const pictures = cards.filter(c => { const i = c.querySelector('img');
               return i && i.complete && i.naturalWidth > 0; }).length;
             return n >= 24 && pictures >= 12 ? [n, cards.length, pictures] : null;",
            Duration::from_secs(30),
        )
        .await
        .unwrap();
    h.screenshot(&s, "installed-catalog").await.unwrap();
    let first = s.wait_for("[data-testid=product-card]").await.unwrap();
    s.click(&first).await.unwrap();
    s.wait_for("[data-testid=product-page]").await.unwrap();
    let title = s.execute("return document.title;", json!([])).await.unwrap();
    h.screenshot(&s, "installed-product").await.unwrap();
    eprintln!("installed app {}: [count, cards, pictures] {shown}, title {title}", bin.display());
    s.close().await.unwrap();
}

/// The installed app updates itself. `scripts/package-test` serves a newer version of the package
/// (`HAITAO_TEST_NEWER_VERSION`) signed with the key built into the installed one, on an https
/// update server (`HAITAO_UPDATE_URL`, its CA in `SSL_CERT_FILE`). The start-up check finds it;
/// Settings downloads and verifies it, installs it with the system's package tool and starts the
/// new Haitao, which takes over the data folder.
#[tokio::test]
#[ignore = "needs the installed package and the update server of scripts/package-test"]
async fn the_installed_app_updates_itself_and_starts_again() {
    let bin = app_binary().unwrap();
    assert!(!bin.starts_with(haitao_e2e::workspace_root()), "HAITAO_APP_BIN must be the installed binary");
    let url =
        std::env::var("HAITAO_UPDATE_URL").expect("HAITAO_UPDATE_URL: run through scripts/package-test");
    let certs = std::env::var("SSL_CERT_FILE").expect("SSL_CERT_FILE: run through scripts/package-test");
    let newer = std::env::var("HAITAO_TEST_NEWER_VERSION").expect("HAITAO_TEST_NEWER_VERSION");
    let h = Harness::start("installed-update", &[("HAITAO_UPDATE_URL", &url), ("SSL_CERT_FILE", &certs)])
        .await
        .unwrap();
    let s = h.launch().await.unwrap();
    s.wait_for("[data-testid=product-card]").await.unwrap();
    // Found by the check at start: a dot on Settings.
    s.wait_for("[data-testid=update-dot]").await.unwrap();
    s.go("/settings").await.unwrap();
    let available = s.wait_for("[data-testid=update-available]").await.unwrap();
    let text = s.text(&available).await.unwrap();
    assert!(text.contains(&newer), "{text}");
    s.click_on("[data-testid=update-download]").await.unwrap();
    s.wait_for("[data-testid=update-ready]").await.unwrap();
    s.wait_for("[data-testid=update-install]").await.unwrap();
    h.screenshot(&s, "installed-update-ready").await.unwrap();

    let address = h.data_dir().join("instance.json");
    let pid_in = |path: &std::path::Path| -> Option<u64> {
        let v: serde_json::Value = serde_json::from_slice(&std::fs::read(path).ok()?).ok()?;
        v["pid"].as_u64()
    };
    let before = pid_in(&address).expect("the running app's address");
    // The app installs and leaves: the WebDriver session ends with it, whatever it answers.
    let _ = s.click_on("[data-testid=update-install]").await;

    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    let installed = || {
        std::process::Command::new("dpkg-query")
            .args(["-W", "-f=${Version}", "haitao"])
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default()
    };
    while installed() != newer {
        assert!(std::time::Instant::now() < deadline, "the package is at {:?}, not {newer}", installed());
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    // The new Haitao, from the same path, holds the data folder.
    let after = loop {
        if let Some(pid) = pid_in(&address).filter(|p| *p != before)
            && std::fs::read_link(format!("/proc/{pid}/exe")).is_ok_and(|exe| exe == bin)
        {
            break pid;
        }
        assert!(std::time::Instant::now() < deadline, "no new Haitao took over the data folder");
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    // The old one has left (gone, or a zombie its parent has not reaped yet).
    let state = std::fs::read_to_string(format!("/proc/{before}/stat")).unwrap_or_default();
    assert!(
        state.is_empty() || state.rsplit(')').next().is_some_and(|r| r.trim_start().starts_with('Z')),
        "{state}"
    );
    // Its window, as the screen shows it (the new process is not under WebDriver).
    tokio::time::sleep(Duration::from_secs(4)).await;
    let shot = haitao_e2e::artifacts_dir().join("installed-update").join("after-restart.png");
    let status = h.command("import").args(["-window", "root"]).arg(&shot).status().unwrap();
    assert!(status.success());
    eprintln!("updated to {newer}: Haitao {before} left, {after} runs; screen in {}", shot.display());
}

/// A payment in the browser comes back into the installed app through a `haitao://` link: the
/// package's desktop file makes Haitao the scheme's handler, so the app sends the cashier back to
/// the shop's return page, and the link that page opens (`xdg-open`, through the desktop file)
/// reaches the running app, which confirms the payment.
#[tokio::test]
#[ignore = "needs the installed package; scripts/package-test runs it"]
async fn the_installed_app_takes_browser_payments_back_through_its_link() {
    let bin = app_binary().unwrap();
    assert!(!bin.starts_with(haitao_e2e::workspace_root()), "HAITAO_APP_BIN must be the installed binary");
    let browser = BrowserStandIn::new();
    let opened = browser.opened.clone();
    let h = Harness::start("installed-app-link", &[browser.env()]).await.unwrap();
    let handler =
        h.command("xdg-mime").args(["query", "default", "x-scheme-handler/haitao"]).output().unwrap();
    assert_eq!(
        String::from_utf8_lossy(&handler.stdout).trim(),
        "Haitao.desktop",
        "the package's desktop file"
    );
    let s = h.launch().await.unwrap();
    s.wait_for("[data-testid=product-card]").await.unwrap();
    shopper(&s, "13800138730").await;
    fill_cart(&s, 0).await;
    let (cashier, route) = checkout_in_the_browser(&s, &opened, 0).await;
    let back = pay_in_the_browser(&cashier).await;
    assert!(back.contains("/api/v1/alipay/return?"), "the shop's return page, not a listener: {back}");
    let link = app_link_on(&back).await;
    open_link_and_see_paid(&h, &s, &link, &route).await;
    h.screenshot(&s, "installed-paid-through-app-link").await.unwrap();
    s.close().await.unwrap();
}
