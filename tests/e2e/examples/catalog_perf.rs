//! The catalog on a large shop, measured in the real app under Xvfb: first catalog render, search
//! keystroke to results on screen, and scrolling the virtualized grid.
//!
//! ```sh
//! make release        # or use the debug build: the figures then say so
//! HAITAO_APP_BIN=target/release/haitao cargo run -p haitao-e2e --example catalog_perf -- --products 10000
//! ```
//!
//! The app is launched once so its embedded shop creates and seeds its database (515 products); the
//! catalog is then grown to `--products` by copying those products under new ids, names and
//! versions straight into the shop's database (as a shop with a bigger catalog would hold them:
//! each copy's name and search terms end with its batch number), and
//! the app is launched again on the same data. Figures are printed and written to
//! `target/e2e/perf-catalog/perf.json`; docs/PERFORMANCE.md records them.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![allow(clippy::print_stdout, clippy::print_stderr, clippy::float_arithmetic)]
#![allow(clippy::cast_possible_truncation, clippy::cast_sign_loss, clippy::cast_precision_loss)]

use std::time::{Duration, Instant};

use haitao_e2e::{Harness, Session};
use serde_json::{Value, json};

/// Grows the shop's catalog to `target` products by copying the seeded ones (new id, sequence,
/// version, and a numbered name so every copy is its own product in search).
fn grow_catalog(db: &std::path::Path, target: i64) -> i64 {
    let mut c = rusqlite::Connection::open(db).unwrap();
    c.busy_timeout(Duration::from_secs(10)).unwrap();
    let seeded: i64 = c.query_row("SELECT COUNT(*) FROM products", [], |r| r.get(0)).unwrap();
    let rounds = (target + seeded - 1) / seeded - 1;
    let tx = c.transaction().unwrap();
    for round in 1..=rounds {
        let room = target.saturating_sub(seeded * round).min(seeded);
        // New ids continue the seeded numbering: P0001…P0515, then P000516….
        tx.execute(
            "INSERT INTO products (id, seq, category, brand, brand_zh, origin, currency, price_minor,
                 price_cny_fen, fulfilment, tax_category, weight_grams, stock, reserved, name_zh, name_en,
                 description_zh, description_en, image, version)
             SELECT printf('P%06d', ?1 * ?2 + seq + 1), ?1 * ?2 + seq, category, brand, brand_zh, origin,
                 currency, price_minor, price_cny_fen, fulfilment, tax_category, weight_grams, stock, 0,
                 name_zh || ' ' || ?1, name_en || ' ' || ?1, description_zh, description_en, image,
                 1000000 + ?1 * ?2 + seq
             FROM products WHERE seq < ?3 ORDER BY seq",
            rusqlite::params![round, seeded, room],
        )
        .unwrap();
        tx.execute(
            "INSERT INTO product_search (product_id, terms)
             SELECT printf('P%06d', ?1 * ?2 + p.seq + 1), s.terms || ' ' || ?1 || ' ' || ?1
             FROM products p JOIN product_search s ON s.product_id = p.id WHERE p.seq < ?3",
            rusqlite::params![round, seeded, room],
        )
        .unwrap();
    }
    tx.commit().unwrap();
    c.query_row("SELECT COUNT(*) FROM products", [], |r| r.get(0)).unwrap()
}

/// The app's log: timing lines and the catalog sync.
fn log_text(name: &str) -> String {
    std::fs::read_to_string(haitao_e2e::artifacts_dir().join(name).join("app-and-driver.log"))
        .unwrap_or_default()
}

async fn result_count(s: &Session) -> Value {
    s.wait_until(
        "the result count",
        "const g = document.querySelector('[data-testid=virtual-grid]');
         const t = document.querySelector('[data-testid=result-count]')?.textContent ?? '';
         return g && g.querySelector('[data-testid=product-card]') && /\\d/.test(t) ? t : null;",
        Duration::from_secs(60),
    )
    .await
    .unwrap()
}

/// Empties the search box as a user does (an `input` event: WebDriver's clear only changes the
/// value) and waits until the whole catalog is listed again.
async fn clear_search(s: &Session, products: i64) {
    s.execute(
        "const i = document.querySelector('[data-testid=catalog-search]'); i.value = '';
         i.dispatchEvent(new Event('input', { bubbles: true })); return true;",
        json!([]),
    )
    .await
    .unwrap();
    s.wait_until(
        "the whole catalog listed",
        &format!(
            "const t = document.querySelector('[data-testid=result-count]')?.textContent ?? '';
             return document.querySelector('[data-testid=virtual-grid] [data-testid=product-card]')
               && t.replace(/\\D/g, '') === '{products}';"
        ),
        Duration::from_secs(60),
    )
    .await
    .unwrap();
}

/// Records, for every key typed into the catalog's search box, the time from the key to its results
/// painted (two animation frames after the grid shows them), and from the request (the box waits
/// 180 ms after the last key) to the paint.
const KEY_PROBE: &str = r#"
const input = document.querySelector('[data-testid=catalog-search]');
window.__keys = [];
let pending = null;
window.__keys_pending_reset = () => { pending = null; };
// The value changed (a typed key, or a typed CJK character): the clock starts.
input.addEventListener('input', () => { pending = { t0: performance.now(), req: null }; }, true);
const done = () => {
  const p = pending; pending = null;
  requestAnimationFrame(() => requestAnimationFrame(() => {
    const t1 = performance.now();
    window.__keys.push({ q: input.value, key_to_paint: t1 - p.t0, request_to_paint: t1 - p.req,
      count: document.querySelector('[data-testid=result-count]')?.textContent ?? '' });
  }));
};
new MutationObserver(() => {
  if (!pending) return;
  const grid = document.querySelector('[data-testid=virtual-grid]');
  if (pending.req === null) { if (!grid) pending.req = performance.now(); return; }
  if (grid && grid.querySelector('[data-testid=product-card]')) done();
}).observe(document.body, { childList: true, subtree: true, characterData: true });
return true;
"#;

/// Scrolls the window through the grid at `speed` px/s for `ms` milliseconds on animation frames,
/// and records frame intervals and frames showing a not-yet-loaded card in view.
const SCROLL_PROBE: &str = r#"
const [speed, ms] = arguments;
window.__scroll = null;
window.scrollTo(0, 0);
const inView = () => [...document.querySelectorAll('[data-testid=virtual-grid] .placeholder')]
  .some(e => { const r = e.getBoundingClientRect(); return r.bottom > 0 && r.top < innerHeight; });
const frames = []; let blank = 0; let start = null; let last = null;
const max = document.documentElement.scrollHeight - innerHeight;
const step = (ts) => {
  if (start === null) { start = ts; last = ts; }
  frames.push(ts - last); last = ts;
  if (inView()) blank += 1;
  const y = Math.min(max, (ts - start) / 1000 * speed);
  window.scrollTo(0, y);
  if (ts - start < ms && (y < max || speed === 0)) requestAnimationFrame(step);
  else window.__scroll = { frames: frames.slice(1), blank, distance: y, elapsed: ts - start, max };
};
requestAnimationFrame(step);
return true;
"#;

/// Jumps to a point of the grid and times until every card in view shows its product.
const JUMP_PROBE: &str = r#"
const [fraction] = arguments;
window.__jump = null;
const max = document.documentElement.scrollHeight - innerHeight;
const t0 = performance.now();
window.scrollTo(0, max * fraction);
const check = () => {
  const blank = [...document.querySelectorAll('[data-testid=virtual-grid] .placeholder')]
    .some(e => { const r = e.getBoundingClientRect(); return r.bottom > 0 && r.top < innerHeight; });
  const cards = [...document.querySelectorAll('[data-testid=virtual-grid] [data-testid=product-card]')]
    .filter(e => { const r = e.getBoundingClientRect(); return r.bottom > 0 && r.top < innerHeight; }).length;
  if (!blank && cards > 0) requestAnimationFrame(() => { window.__jump = performance.now() - t0; });
  else requestAnimationFrame(check);
};
requestAnimationFrame(check);
return true;
"#;

fn quantile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() - 1) as f64 * q).round() as usize]
}

#[tokio::main]
async fn main() {
    let mut products = 10_000i64;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--products" => products = args.next().and_then(|v| v.parse().ok()).expect("--products N"),
            other => panic!("unknown argument {other} (usage: catalog_perf [--products N])"),
        }
    }
    let name = "perf-catalog";
    let app = haitao_e2e::app_binary().unwrap();
    let h = Harness::start(name, &[]).await.unwrap();

    // First launch: the embedded shop creates and seeds its database.
    let s = h.launch().await.unwrap();
    result_count(&s).await;
    s.close().await.unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let db = h.data_dir().join("shop").join("shop.sqlite3");
    let grown = grow_catalog(&db, products);
    eprintln!("catalog grown to {grown} products");

    // Second launch on the grown catalog.
    let syncs_before = log_text(name).matches("catalog synced").count();
    let renders_before = log_text(name).matches("first render").count();
    let launched = Instant::now();
    let s = h.launch().await.unwrap();
    let count = result_count(&s).await;
    let session_ready = launched.elapsed();
    // This launch's own line (the log holds both launches'), logged two frames after the paint.
    let waited = Instant::now();
    while log_text(name).matches("first render").count() <= renders_before
        && waited.elapsed() < Duration::from_secs(30)
    {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let first_render = log_text(name)
        .lines()
        .filter(|l| l.contains("first render"))
        .nth(renders_before)
        .map_or_else(|| "(not logged within 30 s)".to_owned(), str::to_owned);
    eprintln!("result count: {count}; {first_render}");
    // The background catalog sync into the offline cache reads every product once: let it finish.
    let synced = Instant::now();
    while synced.elapsed() < Duration::from_secs(120) {
        if log_text(name).matches("catalog synced").count() > syncs_before {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let sync_took = synced.elapsed();
    let sync_done = log_text(name).matches("catalog synced").count() > syncs_before;

    // Search as typed, a key every 400 ms (longer than the box's 180 ms pause, so every key asks).
    s.execute(KEY_PROBE, json!([])).await.unwrap();
    let input = s.wait_for("[data-testid=catalog-search]").await.unwrap();
    let words = ["vitamin", "面霜", "collagen"];
    let mut missed: Vec<String> = Vec::new();
    for w in words {
        for ch in w.chars() {
            let before =
                s.execute("return window.__keys.length;", json!([])).await.unwrap().as_u64().unwrap();
            s.type_text(&input, &ch.to_string()).await.unwrap();
            // A key whose results never repaint the grid (the same list kept on screen) is
            // reported as missed (and left out of the figures), not allowed to end the run.
            match s
                .wait_until(
                    "the results of a key",
                    &format!("return window.__keys.length > {before};"),
                    Duration::from_secs(30),
                )
                .await
            {
                Ok(_) => {}
                Err(haitao_e2e::E2eError::Timeout { .. }) => {
                    missed.push(format!("{w}: {ch}"));
                    s.execute("window.__keys_pending_reset?.(); return true;", json!([])).await.unwrap();
                }
                Err(e) => panic!("the session failed while measuring a key: {e}"),
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        clear_search(&s, grown).await;
        tokio::time::sleep(Duration::from_millis(400)).await;
    }
    let keys = s.execute("return window.__keys;", json!([])).await.unwrap();

    // Scrolling: back to the whole catalog, then a steady scroll and a fling, then jumps.
    clear_search(&s, grown).await;
    let mut scrolls = Vec::new();
    // First 3 s without scrolling: the page's own frame rate, the baseline.
    for (speed, ms) in [(0, 3000), (1500, 6000), (6000, 6000)] {
        s.execute(SCROLL_PROBE, json!([speed, ms])).await.unwrap();
        let r = s.wait_until("the scroll", "return window.__scroll;", Duration::from_secs(60)).await.unwrap();
        scrolls.push((speed, r));
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let mut jumps = Vec::new();
    for fraction in [0.5, 0.9, 0.25, 1.0] {
        s.execute(JUMP_PROBE, json!([fraction])).await.unwrap();
        let ms = s.wait_until("a jump", "return window.__jump;", Duration::from_secs(30)).await.unwrap();
        jumps.push((fraction, ms.as_f64().unwrap_or(f64::NAN)));
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let viewport = s.execute("return [innerWidth, innerHeight];", json!([])).await.unwrap();
    h.screenshot(&s, "catalog-grown").await.unwrap();
    s.close().await.unwrap();

    // Report.
    println!("the catalog in the real app ({}), {grown} products, viewport {viewport}", app.display());
    println!("  launch → first catalog page on screen: {first_render}");
    println!("  WebDriver session to a result count on screen: {:.2} s", session_ready.as_secs_f64());
    if sync_done {
        println!(
            "  background catalog sync into the offline cache: done within {:.1} s",
            sync_took.as_secs_f64()
        );
    } else {
        println!(
            "  background catalog sync into the offline cache: NOT done after {:.0} s",
            sync_took.as_secs_f64()
        );
    }
    println!("  search, a key every ~0.4 s (the box waits 180 ms after a key before it asks):");
    println!("    {:<12} {:>14} {:>18}  results", "typed", "key → painted", "request → painted");
    let mut k2p = Vec::new();
    let mut r2p = Vec::new();
    for k in keys.as_array().cloned().unwrap_or_default() {
        let a = k["key_to_paint"].as_f64().unwrap_or(f64::NAN);
        let b = k["request_to_paint"].as_f64().unwrap_or(f64::NAN);
        k2p.push(a);
        r2p.push(b);
        println!(
            "    {:<12} {:>11.0} ms {:>15.0} ms  {}",
            match k["q"].as_str().unwrap_or("") {
                "" => "(emptied)",
                q => q,
            },
            a,
            b,
            k["count"].as_str().unwrap_or("")
        );
    }
    if !missed.is_empty() {
        println!(
            "    {} keys left out, their results never seen repainted within 30 s: {}",
            missed.len(),
            missed.join(", ")
        );
    }
    k2p.sort_by(f64::total_cmp);
    r2p.sort_by(f64::total_cmp);
    println!(
        "    all {} keys: key → painted p50 {:.0} ms, max {:.0} ms; request → painted p50 {:.0} ms, max {:.0} ms",
        k2p.len(),
        quantile(&k2p, 0.5),
        quantile(&k2p, 1.0),
        quantile(&r2p, 0.5),
        quantile(&r2p, 1.0)
    );
    let mut report_scrolls = Vec::new();
    for (speed, r) in &scrolls {
        let mut f: Vec<f64> = r["frames"].as_array().unwrap().iter().filter_map(Value::as_f64).collect();
        let n = f.len();
        let slow = f.iter().filter(|&&x| x > 50.0).count();
        f.sort_by(f64::total_cmp);
        let fps = n as f64 / (r["elapsed"].as_f64().unwrap_or(1.0) / 1000.0);
        let blank = r["blank"].as_u64().unwrap_or(0);
        println!(
            "  scroll at {speed} px/s: {n} frames, {fps:.0} frames/s, frame p50 {:.1} ms p95 {:.1} ms max {:.1} ms, {slow} frames > 50 ms, {blank} frames with a card still loading in view, {:.0} of {:.0} px",
            quantile(&f, 0.5),
            quantile(&f, 0.95),
            quantile(&f, 1.0),
            r["distance"].as_f64().unwrap_or(0.0),
            r["max"].as_f64().unwrap_or(0.0)
        );
        report_scrolls.push(json!({ "speed": speed, "frames": n, "fps": fps, "p50": quantile(&f, 0.5),
            "p95": quantile(&f, 0.95), "max": quantile(&f, 1.0), "over_50ms": slow, "blank_frames": blank }));
    }
    for (fraction, ms) in &jumps {
        println!(
            "  jump to {:.0} % of the grid: every card in view filled after {ms:.0} ms",
            fraction * 100.0
        );
    }
    let out = json!({
        "products": grown, "app": app.display().to_string(), "viewport": viewport,
        "first_render": first_render, "keys": keys, "missed_keys": missed, "scrolls": report_scrolls,
        "jumps": jumps.iter().map(|(f, ms)| json!({ "fraction": f, "ms": ms })).collect::<Vec<_>>(),
    });
    let path = haitao_e2e::artifacts_dir().join(name).join("perf.json");
    std::fs::write(&path, serde_json::to_vec_pretty(&out).unwrap()).unwrap();
    println!("  written to {}", path.display());
}
