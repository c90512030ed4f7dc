//! Asynchronous notifications: POSTed to `notify_url` until the merchant answers exactly `success`,
//! on Alipay's retry ladder (4m, 10m, 10m, 1h, 2h, 6h, 15h) measured on the sandbox clock. The
//! `notify_id` is the same on every retry; pending notifications survive a restart. The same loop
//! closes unpaid trades whose deadline has passed.

use crate::db::Cached as _;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use rusqlite::params;
use serde_json::json;

use crate::Sandbox;
use crate::db::StoreError;
use crate::events::{self, Scope};
use crate::model::{self, Stamp, ts};

/// Delays after the 1st, 2nd, ... failed attempt.
pub const LADDER: [chrono::Duration; 7] = [
    chrono::Duration::minutes(4),
    chrono::Duration::minutes(10),
    chrono::Duration::minutes(10),
    chrono::Duration::hours(1),
    chrono::Duration::hours(2),
    chrono::Duration::hours(6),
    chrono::Duration::hours(15),
];

#[derive(Debug, Clone)]
struct Due {
    id: i64,
    notify_id: String,
    trade_no: String,
    app_id: String,
    url: String,
    body: String,
    attempts: i64,
}

/// Rewrites a notify URL to the app's current base (the embedded shop may have a new port after a
/// restart), keeping the path and query.
fn rewrite(url: &str, base: Option<&str>) -> String {
    let (Some(base), Ok(mut u)) = (base, url::Url::parse(url)) else { return url.to_owned() };
    let Ok(b) = url::Url::parse(base) else { return url.to_owned() };
    let _ = u.set_scheme(b.scheme());
    let _ = u.set_host(b.host_str());
    let _ = u.set_port(b.port());
    u.to_string()
}

async fn deliver(sb: &Arc<Sandbox>, d: Due) {
    let base = {
        let app = d.app_id.clone();
        sb.store.run(move |c| model::app(c, &app)).await.ok().flatten().and_then(|a| a.notify_base)
    };
    let url = rewrite(&d.url, base.as_deref());
    let started = Instant::now();
    let result = sb
        .http
        .post(&url)
        .header("content-type", "application/x-www-form-urlencoded; charset=utf-8")
        .body(d.body.clone())
        .send()
        .await;
    let (status, reply) = match result {
        Ok(resp) => {
            let status = resp.status().as_u16();
            let bytes = resp.bytes().await.map(|b| b.to_vec()).unwrap_or_default();
            let reply: String = String::from_utf8_lossy(&bytes[..bytes.len().min(512)]).into_owned();
            (Some(status), reply)
        }
        Err(e) => (None, format!("connection failed: {e}")),
    };
    let elapsed_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    let ok = status == Some(200) && reply == haitao_alipay::NOTIFY_ACK;
    let now = sb.now();
    let attempt = d.attempts + 1;
    let next = if ok {
        None
    } else {
        usize::try_from(d.attempts).ok().and_then(|i| LADDER.get(i)).map(|delay| now + *delay)
    };
    let summary = if ok {
        format!("notification {} delivered (attempt {attempt})", d.notify_id)
    } else {
        match next {
            Some(n) => format!(
                "notification {} not acknowledged (attempt {attempt}); retry at {}",
                d.notify_id,
                haitao_alipay::time::format_alipay(n)
            ),
            None => format!("notification {} not acknowledged (attempt {attempt}); giving up", d.notify_id),
        }
    };
    let r = sb
        .store
        .run(move |c| {
            let state = if ok { "delivered" } else if next.is_some() { "pending" } else { "gave_up" };
            c.cached_exec(
                "UPDATE notifications SET attempts = ?1, state = ?2, next_at = COALESCE(?3, next_at), last_error = ?4,
                 delivered_at = CASE WHEN ?5 THEN ?6 ELSE delivered_at END WHERE id = ?7",
                params![attempt, state, next.map(ts), if ok { None } else { Some(reply.clone()) }, ok, ts(now), d.id],
            )?;
            let out: Option<String> = model::trade_by_no(c, &d.app_id, &d.trade_no)?.map(|t| t.out_trade_no);
            events::record(
                c,
                now,
                if ok { "notify.delivered" } else { "notify.failed" },
                Scope { app_id: Some(&d.app_id), trade_no: Some(&d.trade_no), out_trade_no: out.as_deref() },
                summary,
                json!({"url": url, "http_status": status, "reply": reply, "elapsed_ms": elapsed_ms, "attempt": attempt, "notify_id": d.notify_id}),
            )?;
            Ok::<_, StoreError>(())
        })
        .await;
    if let Err(e) = r {
        tracing::error!(error = %e, "recording a notification attempt failed");
    }
}

/// Sends whatever is due and expires overdue trades. Returns when the next notification is due.
pub async fn tick(sb: &Arc<Sandbox>) -> Option<chrono::DateTime<Utc>> {
    let _guard = sb.tick_lock.lock().await;
    let now = sb.now();
    let sb2 = sb.clone();
    let due: Vec<Due> = sb
        .store
        .run(move |c| {
            // Expire unpaid trades first, for every app.
            for app in model::apps(c)? {
                let tx = c.unchecked_transaction()?;
                let ctx = crate::trades::Ctx { conn: &tx, sb: &sb2, app: &app, now };
                let _ = crate::trades::expire_due(&ctx);
                tx.commit()?;
            }
            let mut st = c.prepare(
                "SELECT id, notify_id, trade_no, app_id, url, body, attempts FROM notifications
                 WHERE state = 'pending' AND next_at <= ?1 ORDER BY next_at, id LIMIT 32",
            )?;
            let rows = st
                .query_map([ts(now)], |r| {
                    Ok(Due {
                        id: r.get(0)?,
                        notify_id: r.get(1)?,
                        trade_no: r.get(2)?,
                        app_id: r.get(3)?,
                        url: r.get(4)?,
                        body: r.get(5)?,
                        attempts: r.get(6)?,
                    })
                })?
                .collect::<Result<Vec<_>, _>>()?;
            Ok::<_, StoreError>(rows)
        })
        .await
        .unwrap_or_else(|e| {
            // Nothing is lost: the notifications stay pending and are looked for again.
            tracing::error!(error = %e, "reading the due notifications failed");
            Vec::new()
        });
    // Deliver in order, one at a time: duplicates and reorders stay in the order they were queued.
    for d in due {
        deliver(sb, d).await;
    }
    sb.store
        .run(|c| {
            let next: Option<Stamp> =
                c.cached_row("SELECT MIN(next_at) FROM notifications WHERE state = 'pending'", [], |r| {
                    r.get(0)
                })?;
            Ok::<_, StoreError>(next.map(|n| n.0))
        })
        .await
        .unwrap_or_else(|e| {
            // Looked for again at the next wake-up, at most half a second away.
            tracing::error!(error = %e, "reading when the next notification is due failed");
            None
        })
}

/// The background loop: wakes when a notification is due, when the clock is advanced, or every
/// half second (for deadlines).
pub async fn run(sb: Arc<Sandbox>) {
    loop {
        let next = tick(&sb).await;
        let wait = next
            .map(|n| (n - sb.now()).to_std().unwrap_or(Duration::ZERO))
            .unwrap_or(Duration::from_millis(500))
            .min(Duration::from_millis(500));
        tokio::select! {
            () = sb.wake.notified() => {}
            () = tokio::time::sleep(wait) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ladder_and_rewrite() {
        let total: i64 = LADDER.iter().map(|d| d.num_minutes()).sum();
        assert_eq!(total, 4 + 10 + 10 + 60 + 120 + 360 + 900, "about 24 h 24 min over 8 attempts");
        assert_eq!(
            rewrite("http://127.0.0.1:1111/api/v1/alipay/notify?x=1", Some("http://127.0.0.1:2222/")),
            "http://127.0.0.1:2222/api/v1/alipay/notify?x=1"
        );
        assert_eq!(rewrite("http://a/b", None), "http://a/b");
    }
}
