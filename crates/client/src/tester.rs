//! Tester mode: the sandbox's controls as the app uses them — personas, forced outcomes, the live
//! trace of a payment, and its export. The bodies are the sandbox's own wire types
//! ([`haitao_sandbox_api`]); personas and outcomes go to the UI as they are.

use chrono::{DateTime, Utc};
pub use haitao_sandbox_api::{Account, AccountKind, Bilingual, Outcome, OutcomeInfo, Persona};
use haitao_sandbox_api::{Event, EventQuery, ForceRequest, path};
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

/// The trace of one payment as a bug report carries it.
#[derive(Debug, Serialize)]
struct TraceExport<'a> {
    exported_at: DateTime<Utc>,
    out_trade_no: &'a str,
    events: Vec<Event>,
}

fn sandbox_err(e: reqwest::Error) -> ClientError {
    ClientError::Offline(format!("the Alipay sandbox is unreachable: {e}"))
}

impl Client {
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
        let u = self.sandbox_url(path::SCENARIOS).await?;
        let r = reqwest::Client::new().post(u).json(&body).send().await.map_err(sandbox_err)?;
        if r.status().is_success() {
            Ok(())
        } else {
            Err(ClientError::Invalid(r.text().await.unwrap_or_default()))
        }
    }

    /// The sandbox's trace of one payment (requests, signatures, redirects, notifications).
    pub async fn tester_trace(&self, out_trade_no: &str, since: i64) -> Result<Vec<TraceEvent>> {
        let q = EventQuery {
            out_trade_no: Some(out_trade_no.to_owned()),
            since: Some(since),
            ..Default::default()
        };
        let events: Vec<Event> = self.sandbox_get(&path::events(&q)).await?;
        Ok(events.into_iter().map(TraceEvent::from).collect())
    }

    /// The trace of one payment as a JSON document, for a bug report.
    pub async fn tester_export(&self, out_trade_no: &str) -> Result<String> {
        let events = self.sandbox_get(&path::events(&EventQuery::all_of(out_trade_no))).await?;
        let doc = TraceExport { exported_at: self.clock.now(), out_trade_no, events };
        serde_json::to_string_pretty(&doc).map_err(|e| ClientError::Internal(e.to_string()))
    }
}
