//! What a shopper does in the app, step by step, shared by the end-to-end suites: open a route,
//! click, sign up with a verified name and an address, fill the cart, check out in the payment
//! window or the system browser, pay in the cashier.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use haitao_e2e::{Harness, Session};
use haitao_sandbox_api as sandbox_api;
use serde_json::json;

pub async fn go(s: &Session, route: &str) {
    s.execute("location.hash = arguments[0]; return true;", json!([format!("#{route}")])).await.unwrap();
}

/// The same screen in English: switch the language, wait until `css` reads in English (no Chinese
/// left in it when `no_chinese`, e.g. where no name or address is shown), take the screenshot
/// `name`, and switch back.
pub async fn in_english(h: &Harness, s: &Session, css: &str, name: &str, no_chinese: bool) {
    click(s, "[data-testid=lang-toggle]").await;
    let check = format!(
        "const e = document.querySelector({css:?}); if (!e || document.documentElement.lang !== 'en') return false;
         const t = e.innerText; return /[A-Za-z]{{3}}/.test(t) && !({no_chinese} && /[\\u4e00-\\u9fff]/.test(t));"
    );
    s.wait_until(&format!("{css} in English"), &check, Duration::from_secs(15))
        .await
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    h.screenshot(s, name).await.unwrap();
    click(s, "[data-testid=lang-toggle]").await;
    s.wait_until(
        "back in Chinese",
        "return document.documentElement.lang === 'zh-CN';",
        Duration::from_secs(15),
    )
    .await
    .unwrap();
}

pub async fn click(s: &Session, css: &str) {
    let e = s.wait_for(css).await.unwrap_or_else(|e| panic!("{css}: {e}"));
    // Into view inside whatever scrolls it (the tester panel scrolls on its own), which WebKit's
    // driver does only for the page.
    let _ = s
        .execute("arguments[0].scrollIntoView({ block: 'nearest' }); return true;", json!([e.to_json()]))
        .await;
    if let Err(err) = s.click(&e).await {
        // What was in the way: the element at the click point, and a picture.
        let over = s
            .execute(
                "const r = arguments[0].getBoundingClientRect();
                 const top = document.elementFromPoint(r.left + r.width / 2, r.top + r.height / 2);
                 return top ? top.outerHTML.slice(0, 300) : 'nothing';",
                json!([e.to_json()]),
            )
            .await;
        if let Ok(png) = s.screenshot().await {
            let _ = std::fs::write(haitao_e2e::artifacts_dir().join("click-intercepted.png"), png);
        }
        panic!("{css}: {err}; at its centre: {over:?}");
    }
}

/// Registers, verifies 张伟's real name and saves a default address, all through the UI.
pub async fn shopper(s: &Session, phone: &str) {
    go(s, "/account").await;
    click(s, "[data-testid=tab-register]").await;
    s.fill("#phone", phone).await.unwrap();
    s.fill("#password", "haitao2026").await.unwrap();
    click(s, "[data-testid=auth-submit]").await;
    s.wait_for("[data-testid=signed-in]").await.unwrap();
    s.fill("#rn-name", "张伟").await.unwrap();
    s.fill("#rn-id", "110105198803151232").await.unwrap();
    click(s, "[data-testid=real-name-form] button[type=submit]").await;
    s.wait_for("[data-testid=verified]").await.unwrap();
    click(s, "[data-testid=new-address]").await;
    for (field, value) in [
        ("recipient", "张伟"),
        ("phone", phone),
        ("province", "浙江省"),
        ("city", "杭州市"),
        ("district", "西湖区"),
        ("street", "文三路 100 号"),
    ] {
        s.fill(&format!("#addr-{field}"), value).await.unwrap();
    }
    click(s, "[data-testid=address-form] button[type=submit]").await;
    s.wait_until(
        "the saved address",
        "return document.querySelectorAll('.addresses li').length > 0;",
        Duration::from_secs(20),
    )
    .await
    .unwrap();
}

/// Puts one in-stock product priced 100–500 yuan in the cart, through the catalog's price filter.
pub async fn fill_cart(s: &Session, nth: usize) {
    go(s, "/").await;
    s.fill("#min", "100").await.unwrap();
    s.fill("#max", "500").await.unwrap();
    let id = s
        .wait_until(
            "a product in the price range",
            &format!(
                "const cards = [...document.querySelectorAll('[data-testid=product-card]')]
                   .filter(c => !c.textContent.includes('缺货') && !c.textContent.includes('Out of stock'));
                 const t = document.querySelector('[data-testid=result-count]')?.textContent ?? '';
                 return /\\d/.test(t) && cards.length > {nth} ? cards[{nth}].dataset.product : null;"
            ),
            Duration::from_secs(30),
        )
        .await
        .unwrap();
    go(s, &format!("/product/{}", id.as_str().unwrap())).await;
    click(s, "[data-testid=add-to-cart]").await;
    s.wait_until(
        "the cart badge",
        "return Number(document.querySelector('[data-testid=cart-count]')?.textContent ?? 0) > 0;",
        Duration::from_secs(20),
    )
    .await
    .unwrap();
}

/// Checks out with `method` in the app's payment window and returns the main window's handle and
/// the payment window's.
pub async fn place_and_open_cashier(s: &Session, method: &str) -> (String, String) {
    let url = s.url().await.unwrap();
    if !url.contains("#/checkout") {
        go(s, "/checkout").await;
    }
    click(s, &format!("[data-testid=method-{method}]")).await;
    let main = s.window_handle().await.unwrap();
    click(s, "[data-testid=place-and-pay]").await;
    let cashier = wait_for_second_window(s, &main).await;
    s.switch_to(&cashier).await.unwrap();
    (main, cashier)
}

pub async fn wait_for_second_window(s: &Session, main: &str) -> String {
    let start = std::time::Instant::now();
    loop {
        let handles = s.window_handles().await.unwrap();
        if let Some(h) = handles.iter().find(|h| *h != main) {
            return h.clone();
        }
        assert!(start.elapsed() < Duration::from_secs(30), "the payment window did not open");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// In the cashier: quick login as `persona`, pick the channel, enter the payment password.
pub async fn pay_in_cashier(s: &Session, persona: &str, channel: &str, password: &str) {
    click(s, &format!("[data-persona={persona}]")).await;
    let radio = if let Some(n) = channel.strip_prefix("huabei_") {
        format!("input[data-installments='{n}']")
    } else {
        format!("input[data-kind={channel}]")
    };
    click(s, &radio).await;
    click(s, "[data-testid=cashier-next]").await;
    s.fill("#pay_password", password).await.unwrap();
    click(s, "[data-testid=cashier-confirm]").await;
}

/// Back in the main window once the payment window has gone.
pub async fn back_to_main(s: &Session, main: &str) {
    let start = std::time::Instant::now();
    loop {
        let handles = s.window_handles().await.unwrap();
        if handles.len() == 1 {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(30), "the payment window did not close: {handles:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    s.switch_to(main).await.unwrap();
}

/// Checks out the cart's products with Alipay balance in the system browser (which the harness's
/// `BROWSER` notes in `opened`) and returns the cashier address the app opened and the payment
/// page's route.
pub async fn checkout_in_the_browser(
    s: &Session,
    opened: &std::path::Path,
    before: usize,
) -> (String, String) {
    go(s, "/checkout").await;
    click(s, "[data-testid=method-balance]").await;
    click(s, "input[name=mode][value=browser]").await;
    click(s, "[data-testid=place-and-pay]").await;
    let route = s
        .wait_until(
            "the payment page",
            "return location.hash.startsWith('#/pay/') ? location.hash : null;",
            Duration::from_secs(20),
        )
        .await
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let cashier = loop {
        let lines: Vec<String> =
            std::fs::read_to_string(opened).unwrap_or_default().lines().map(str::to_owned).collect();
        if lines.len() > before {
            break lines[before].clone();
        }
        assert!(std::time::Instant::now() < deadline, "the browser was not asked to open the cashier");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    (cashier, route.as_str().unwrap().to_owned())
}

/// What the shopper does in the browser, done through the sandbox's tester API: pays the cashier
/// with 张伟's balance. Returns where the cashier sends the browser back to.
pub async fn pay_in_the_browser(cashier: &str) -> String {
    // The gateway sends the browser on to its cashier page.
    let r = reqwest::get(cashier).await.unwrap();
    let mut base = r.url().clone();
    base.set_path("/");
    base.set_query(None);
    let page = r.text().await.unwrap();
    let out_trade_no =
        page.split("data-testid=\"out-trade-no\">").nth(1).unwrap().split('<').next().unwrap().to_owned();
    let base = base.as_str().trim_end_matches('/');
    let req =
        sandbox_api::PayRequest::new(&out_trade_no, "zhangwei@sandbox.haitao", sandbox_api::PayWith::Balance);
    let r = reqwest::Client::new()
        .post(format!("{base}/{}", sandbox_api::path::PAY))
        .json(&req)
        .send()
        .await
        .unwrap();
    let status = r.status();
    let body = r.text().await.unwrap();
    assert_eq!(status, 200, "{out_trade_no}: {body}");
    match serde_json::from_str::<sandbox_api::PayAnswer>(&body).unwrap() {
        sandbox_api::PayAnswer::Paid(p) => p.return_url.unwrap(),
        sandbox_api::PayAnswer::Refused(r) => panic!("refused: {r:?}"),
    }
}

/// A stand-in system browser: a script, for `BROWSER`, that notes each address it is asked to
/// open in `opened` (one per line) instead of showing it.
pub struct BrowserStandIn {
    _dir: tempfile::TempDir,
    pub script: std::path::PathBuf,
    pub opened: std::path::PathBuf,
}

impl BrowserStandIn {
    pub fn new() -> BrowserStandIn {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let opened = dir.path().join("opened.txt");
        let script = dir.path().join("browser");
        std::fs::write(&script, format!("#!/bin/sh\nprintf '%s\\n' \"$1\" >> '{}'\n", opened.display()))
            .unwrap();
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
        BrowserStandIn { _dir: dir, script, opened }
    }

    /// `("BROWSER", script)`, for the app's environment.
    pub fn env(&self) -> (&'static str, &str) {
        ("BROWSER", self.script.to_str().unwrap())
    }
}

/// The `haitao://` link the shop's return page at `back` opens.
pub async fn app_link_on(back: &str) -> String {
    let page = reqwest::get(back).await.unwrap().text().await.unwrap();
    let link = page
        .split("id=\"open-app\" href=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .replace("&amp;", "&");
    assert!(link.starts_with("haitao://alipay/return?"), "{link}");
    link
}

/// The system opens the `haitao://` link (`xdg-open`: a second `haitao` process, which hands it to
/// the running one and ends); the payment page at `route` shows the payment confirmed.
pub async fn open_link_and_see_paid(h: &Harness, s: &Session, link: &str, route: &str) {
    let status = h.command("xdg-open").arg(link).status().unwrap();
    assert!(status.success());
    s.wait_until(
        "the same payment page",
        &format!("return location.hash === {route:?};"),
        Duration::from_secs(5),
    )
    .await
    .unwrap();
    s.wait_for("[data-testid=paid]").await.unwrap();
}
