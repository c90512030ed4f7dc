//! The app as a shopper installs it: the binary the `.deb` put on PATH, started from its package
//! with nothing from this checkout, shows the catalog of its embedded shop and opens a product.
//! `scripts/package-test` installs the package, runs this with `HAITAO_APP_BIN=/usr/bin/haitao`,
//! and uninstalls it; `make test` does not run it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use haitao_e2e::{Harness, app_binary};
use serde_json::json;

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
