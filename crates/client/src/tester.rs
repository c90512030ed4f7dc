//! Tester mode: the sandbox's controls as the app uses them — personas, forced outcomes, the live
//! trace of a payment (filtered), its notifications and their resending, the clock the built-in
//! shop shares with the sandbox, a trace's export and its replay against a fresh sandbox. The
//! bodies are the sandbox's own wire types ([`haitao_sandbox_api`]); personas and outcomes go to
//! the UI as they are, the rest as the small types below.

use chrono::{DateTime, Utc};
pub use haitao_sandbox_api::{Account, AccountKind, Bilingual, Outcome, OutcomeInfo, Persona};
use haitao_sandbox_api::{
    AdvanceClock, ClockInfo, Direction, Event, EventExport, EventQuery, ForceRequest, Notification,
    NotificationState, Replayed, TraceOutcome, path,
};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::Client;
use crate::error::{ClientError, Result};

/// One entry of a payment's trace.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, specta::Type)]
pub struct TraceEvent {
    pub seq: i64,
    pub at: DateTime<Utc>,
    pub kind: String,
    pub summary: String,
    /// The event's details as JSON text (signed strings, signatures, bodies, timings).
    pub detail: String,
}

impl From<Event> for TraceEvent {
    fn from(e: Event) -> Self {
        TraceEvent { seq: e.seq, at: e.at, kind: e.kind, summary: e.summary, detail: e.detail.to_string() }
    }
}

/// Which way a traced message went: into the gateway (requests) or out of it (answers,
/// notifications, return redirects).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, specta::Type)]
#[serde(rename_all = "snake_case")]
pub enum TraceDirection {
    In,
    Out,
}

/// How a traced message went: a request whose signature verified, an answer `10000`, a
/// notification acknowledged — or not.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, specta::Type)]
#[serde(rename_all = "snake_case")]
pub enum TraceResult {
    Success,
    Failure,
}

/// What of a payment's trace to show or export; empty fields do not filter.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, specta::Type)]
pub struct TraceFilter {
    /// An API method (`alipay.trade.query`).
    #[serde(default)]
    pub method: Option<String>,
    #[serde(default)]
    pub direction: Option<TraceDirection>,
    #[serde(default)]
    pub outcome: Option<TraceResult>,
}

impl TraceFilter {
    fn query(&self, out_trade_no: &str) -> EventQuery {
        EventQuery {
            out_trade_no: Some(out_trade_no.to_owned()),
            method: self.method.clone().filter(|m| !m.trim().is_empty()).map(|m| m.trim().to_owned()),
            direction: self.direction.map(|d| match d {
                TraceDirection::In => Direction::In,
                TraceDirection::Out => Direction::Out,
            }),
            outcome: self.outcome.map(|o| match o {
                TraceResult::Success => TraceOutcome::Success,
                TraceResult::Failure => TraceOutcome::Failure,
            }),
            ..EventQuery::default()
        }
    }
}

/// A notification the sandbox sent (or is sending) for a payment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, specta::Type)]
pub struct SentNotification {
    pub id: i64,
    pub notify_id: String,
    /// `pending`, `delivered` or `gave_up`.
    pub state: NotifyState,
    pub attempts: i64,
    pub delivered_at: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, specta::Type)]
#[serde(rename_all = "snake_case")]
pub enum NotifyState {
    Pending,
    Delivered,
    GaveUp,
}

impl From<Notification> for SentNotification {
    fn from(n: Notification) -> Self {
        SentNotification {
            id: n.id,
            notify_id: n.notify_id,
            state: match n.state {
                NotificationState::Pending => NotifyState::Pending,
                NotificationState::Delivered => NotifyState::Delivered,
                NotificationState::GaveUp => NotifyState::GaveUp,
            },
            attempts: n.attempts,
            delivered_at: n.delivered_at,
            last_error: n.last_error,
        }
    }
}

/// The clock the sandbox and the built-in shop share.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, specta::Type)]
pub struct TesterClock {
    pub now: DateTime<Utc>,
    /// How far ahead of this computer's clock it runs, in seconds.
    pub ahead_seconds: i64,
}

/// One request of a replayed trace.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, specta::Type)]
pub struct ReplayedLine {
    pub seq: i64,
    pub method: String,
    /// The answer's code then (`10000`, `40004 ACQ.TRADE_NOT_EXIST`), when the trace holds it.
    pub original: Option<String>,
    /// The answer's code now.
    pub replayed: String,
    pub same: bool,
}

/// A trace replayed against a fresh sandbox.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, specta::Type)]
pub struct ReplayReport {
    pub requests: Vec<ReplayedLine>,
    pub same: u32,
    pub differ: u32,
}

impl From<Replayed> for ReplayReport {
    fn from(r: Replayed) -> Self {
        let requests: Vec<ReplayedLine> = r
            .requests
            .into_iter()
            .map(|q| ReplayedLine {
                seq: q.seq,
                method: q.method,
                original: q.original,
                replayed: q.replayed,
                same: q.same,
            })
            .collect();
        let same = u32::try_from(requests.iter().filter(|q| q.same).count()).unwrap_or(u32::MAX);
        let differ = u32::try_from(requests.len()).unwrap_or(u32::MAX).saturating_sub(same);
        ReplayReport { requests, same, differ }
    }
}

/// The largest trace file a replay reads.
pub const REPLAY_MAX_BYTES: usize = 64 * 1024 * 1024;

/// Replays an exported trace (`GET /sandbox/api/events/export`, what [`Client::tester_export`]
/// saves) against a fresh sandbox started for it in memory on loopback and stopped after: every
/// merchant request is sent again as recorded and each answer's code compared with the one
/// recorded.
pub async fn replay_in_fresh_sandbox(export: &[u8]) -> Result<ReplayReport> {
    if export.len() > REPLAY_MAX_BYTES {
        return Err(ClientError::Invalid(format!("the trace file is larger than {REPLAY_MAX_BYTES} bytes")));
    }
    let doc: EventExport = serde_json::from_slice(export)
        .map_err(|e| ClientError::Invalid(format!("not a Haitao sandbox trace export: {e}")))?;
    if !doc.events.iter().any(|e| e.kind == "gateway.request") {
        return Err(ClientError::Invalid("the trace holds no request to replay".into()));
    }
    let mut config =
        haitao_alipay_sandbox::Config::new(None, std::net::SocketAddr::from(([127, 0, 0, 1], 0)));
    config.background = false;
    // The export is the body of the replay request.
    config.options.max_body_bytes = REPLAY_MAX_BYTES;
    let fresh = haitao_alipay_sandbox::start(config)
        .await
        .map_err(|e| ClientError::Internal(format!("a fresh sandbox could not start: {e}")))?;
    let url = fresh.base_url().join(path::EVENTS_REPLAY).map_err(|e| ClientError::Internal(e.to_string()));
    let answer = match url {
        Ok(url) => reqwest::Client::new().post(url).json(&doc).send().await.map_err(sandbox_err),
        Err(e) => Err(e),
    };
    let report = match answer {
        Ok(r) if r.status().is_success() => r
            .json::<Replayed>()
            .await
            .map(ReplayReport::from)
            .map_err(|e| ClientError::BadResponse(e.to_string())),
        Ok(r) => Err(ClientError::Invalid(r.text().await.unwrap_or_default())),
        Err(e) => Err(e),
    };
    fresh.stop().await;
    report
}

fn sandbox_err(e: reqwest::Error) -> ClientError {
    ClientError::Offline(format!("the Alipay sandbox is unreachable: {e}"))
}

impl Client {
    /// Refuses tester controls unless the shop pays through Haitao's sandbox.
    pub async fn require_sandbox(&self) -> Result<()> {
        self.sandbox().await.map(|_| ())
    }

    async fn sandbox(&self) -> Result<url::Url> {
        let cfg = self.payment_config().await?;
        match (cfg.sandbox, cfg.sandbox_url) {
            (true, Some(u)) => url::Url::parse(&u).map_err(|e| ClientError::Internal(e.to_string())),
            _ => {
                Err(ClientError::State("tester controls need Haitao's Alipay sandbox as the gateway".into()))
            }
        }
    }

    async fn sandbox_url(&self, path: &str) -> Result<url::Url> {
        self.sandbox().await?.join(path).map_err(|e| ClientError::Internal(e.to_string()))
    }

    async fn sandbox_get<T: DeserializeOwned>(&self, path: &str) -> Result<T> {
        let r = reqwest::get(self.sandbox_url(path).await?).await.map_err(sandbox_err)?;
        r.json().await.map_err(|e| ClientError::BadResponse(e.to_string()))
    }

    pub async fn tester_personas(&self) -> Result<Vec<Persona>> {
        self.sandbox_get(path::PERSONAS).await
    }

    pub async fn tester_outcomes(&self) -> Result<Vec<OutcomeInfo>> {
        self.sandbox_get(path::OUTCOMES).await
    }

    /// Forces `outcome` for a payment (`out_trade_no`), or for the next payment when `None`.
    pub async fn tester_force(&self, out_trade_no: Option<&str>, outcome: Outcome) -> Result<()> {
        let body = ForceRequest {
            app_id: Some(self.payment_config().await?.app_id),
            out_trade_no: out_trade_no.map(str::to_owned),
            outcome,
        };
        self.sandbox_post(path::SCENARIOS, &body).await.map(|_: haitao_sandbox_api::Forced| ())
    }

    /// The sandbox's trace of one payment (requests, signatures, redirects, notifications), as
    /// `filter` narrows it.
    pub async fn tester_trace(
        &self,
        out_trade_no: &str,
        since: i64,
        filter: &TraceFilter,
    ) -> Result<Vec<TraceEvent>> {
        let q = EventQuery { since: Some(since), ..filter.query(out_trade_no) };
        let events: Vec<Event> = self.sandbox_get(&path::events(&q)).await?;
        Ok(events.into_iter().map(TraceEvent::from).collect())
    }

    /// The trace of one payment (as `filter` narrows it) as the sandbox exports it: a JSON
    /// document for a bug report, which [`replay_in_fresh_sandbox`] (or any sandbox's
    /// `POST /sandbox/api/events/replay`) takes again. It carries the app's public key, never a
    /// private or content key.
    pub async fn tester_export(&self, out_trade_no: &str, filter: &TraceFilter) -> Result<String> {
        let doc: EventExport =
            self.sandbox_get(&path::events_export_matching(&filter.query(out_trade_no))).await?;
        serde_json::to_string_pretty(&doc).map_err(|e| ClientError::Internal(e.to_string()))
    }

    /// The notifications the sandbox sent for a payment.
    pub async fn tester_notifications(&self, out_trade_no: &str) -> Result<Vec<SentNotification>> {
        let list: Vec<Notification> = self.sandbox_get(&path::notifications(Some(out_trade_no))).await?;
        Ok(list.into_iter().map(SentNotification::from).collect())
    }

    /// Sends a past notification to the shop again, as it was signed.
    pub async fn tester_resend(&self, id: i64) -> Result<()> {
        self.sandbox_post(&path::notification_resend(id), &serde_json::json!({}))
            .await
            .map(|_: serde_json::Value| ())
    }

    /// The sandbox's clock (which the built-in shop shares).
    pub async fn tester_clock(&self) -> Result<TesterClock> {
        let info: ClockInfo = self.sandbox_get(path::CLOCK).await?;
        Ok(self.clock_view(info.now))
    }

    /// Moves the sandbox's clock (and so the built-in shop's) forward by `seconds`.
    pub async fn tester_advance_clock(&self, seconds: i64) -> Result<TesterClock> {
        let moved: haitao_sandbox_api::ClockAdvanced =
            self.sandbox_post(path::CLOCK_ADVANCE, &AdvanceClock { seconds }).await?;
        Ok(self.clock_view(moved.now))
    }

    fn clock_view(&self, now: DateTime<Utc>) -> TesterClock {
        // Whole minutes: the two clocks are read a moment apart.
        let ahead = (now - self.clock.now()).num_seconds();
        TesterClock { now, ahead_seconds: (ahead + 30).div_euclid(60) * 60 }
    }

    async fn sandbox_post<B: Serialize, T: DeserializeOwned>(&self, path: &str, body: &B) -> Result<T> {
        let u = self.sandbox_url(path).await?;
        let r = reqwest::Client::new().post(u).json(body).send().await.map_err(sandbox_err)?;
        if !r.status().is_success() {
            return Err(ClientError::Invalid(r.text().await.unwrap_or_default()));
        }
        r.json().await.map_err(|e| ClientError::BadResponse(e.to_string()))
    }
}
