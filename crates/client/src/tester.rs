//! Tester mode: the sandbox's controls as the app uses them — personas, forced outcomes, the live
//! trace of a payment, and its export.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::Client;
use crate::error::{ClientError, Result};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, specta::Type)]
pub struct PersonaSource {
    pub kind: String,
    /// The sandbox's own name for the source, in Chinese ("工商银行储蓄卡").
    pub label: String,
    /// Fen; negative when a credit line is in use.
    pub balance: i64,
    pub credit_limit: i64,
    /// For cards: the bank or network ("ICBC", "VISA") and the last four digits, so the source can
    /// be named in any language.
    #[serde(default)]
    pub card_brand: Option<String>,
    #[serde(default)]
    pub card_last4: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, specta::Type)]
pub struct Persona {
    pub login: String,
    pub real_name: String,
    pub description: String,
    pub phone: String,
    pub locked_until: Option<String>,
    pub accounts: Vec<PersonaSource>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, specta::Type)]
pub struct OutcomeInfo {
    pub outcome: String,
    pub zh: String,
    pub en: String,
    pub magic_amount: String,
}

/// One entry of a payment's trace.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, specta::Type)]
pub struct TraceEvent {
    pub seq: i64,
    pub at: String,
    pub kind: String,
    pub summary: String,
    /// The event's details as JSON text (signed strings, signatures, bodies, timings).
    pub detail: String,
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

    async fn sandbox_get(&self, path: &str) -> Result<Value> {
        let u = self.sandbox().await?.join(path).map_err(|e| ClientError::Internal(e.to_string()))?;
        let r = reqwest::get(u).await.map_err(sandbox_err)?;
        r.json().await.map_err(|e| ClientError::BadResponse(e.to_string()))
    }

    pub async fn tester_personas(&self) -> Result<Vec<Persona>> {
        let v = self.sandbox_get("sandbox/api/personas").await?;
        serde_json::from_value(v).map_err(|e| ClientError::BadResponse(e.to_string()))
    }

    pub async fn tester_outcomes(&self) -> Result<Vec<OutcomeInfo>> {
        let v = self.sandbox_get("sandbox/api/outcomes").await?;
        serde_json::from_value(v).map_err(|e| ClientError::BadResponse(e.to_string()))
    }

    /// Forces `outcome` for a payment (`out_trade_no`), or for the next payment when `None`.
    pub async fn tester_force(&self, out_trade_no: Option<&str>, outcome: &str) -> Result<()> {
        let app_id = self.payment_config().await?.app_id;
        let u = self
            .sandbox()
            .await?
            .join("sandbox/api/scenarios")
            .map_err(|e| ClientError::Internal(e.to_string()))?;
        let body = serde_json::json!({"app_id": app_id, "out_trade_no": out_trade_no, "outcome": outcome});
        let r = reqwest::Client::new().post(u).json(&body).send().await.map_err(sandbox_err)?;
        if r.status().is_success() {
            Ok(())
        } else {
            Err(ClientError::Invalid(r.text().await.unwrap_or_default()))
        }
    }

    /// The sandbox's trace of one payment (requests, signatures, redirects, notifications).
    pub async fn tester_trace(&self, out_trade_no: &str, since: i64) -> Result<Vec<TraceEvent>> {
        let v = self
            .sandbox_get(&format!("sandbox/api/events?out_trade_no={out_trade_no}&since={since}"))
            .await?;
        let list = v.as_array().cloned().unwrap_or_default();
        Ok(list
            .into_iter()
            .map(|e| TraceEvent {
                seq: e["seq"].as_i64().unwrap_or(0),
                at: e["at"].as_str().unwrap_or_default().to_owned(),
                kind: e["kind"].as_str().unwrap_or_default().to_owned(),
                summary: e["summary"].as_str().unwrap_or_default().to_owned(),
                detail: e["detail"].to_string(),
            })
            .collect())
    }

    /// The trace of one payment as a JSON document, for a bug report.
    pub async fn tester_export(&self, out_trade_no: &str) -> Result<String> {
        let events =
            self.sandbox_get(&format!("sandbox/api/events?out_trade_no={out_trade_no}&limit=10000")).await?;
        let doc = serde_json::json!({
            "exported_at": self.clock.now(),
            "out_trade_no": out_trade_no,
            "events": events,
        });
        serde_json::to_string_pretty(&doc).map_err(|e| ClientError::Internal(e.to_string()))
    }
}
