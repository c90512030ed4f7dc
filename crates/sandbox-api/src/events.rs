//! The event log (`GET /sandbox/api/events`, `.../events/export`), notifications
//! (`GET /sandbox/api/notifications`) and the SMS inbox (`GET /sandbox/api/sms/{phone}`).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// One entry of the event log: a request, response, redirect or notification, with its signature
/// check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    /// Increasing; ask for what follows with [`EventQuery::since`].
    pub seq: i64,
    pub at: DateTime<Utc>,
    /// `gateway.request`, `gateway.response`, `cashier.*`, `redirect.return`, `notify.*`, `trade.*`,
    /// `scenario.forced`, `clock.advanced`, ... (an open set: new kinds appear as the sandbox grows).
    pub kind: String,
    pub app_id: Option<String>,
    pub trade_no: Option<String>,
    pub out_trade_no: Option<String>,
    pub summary: String,
    /// The event's details (signed strings, signatures, bodies, timings); their shape depends on
    /// `kind`.
    pub detail: serde_json::Value,
}

/// The query of `GET /sandbox/api/events` (and, with only `out_trade_no`, of `.../events/export`
/// and `.../notifications`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventQuery {
    /// Only the events (notifications) of this merchant order.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub out_trade_no: Option<String>,
    /// Only events after this `seq` (default 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<i64>,
    /// At most this many (default 500, at most 10,000).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<i64>,
    /// Only this kind, or its family: `gateway` takes `gateway.request` and `gateway.response`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// Only messages of this API method (`alipay.trade.refund`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    /// `in`: requests the gateway received; `out`: what it sent (answers, notifications, return
    /// redirects).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub direction: Option<Direction>,
    /// `success`: a request whose signature verified, an answer `10000` (v3: 2xx), a notification
    /// the merchant acknowledged; `failure`: the others of those kinds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<TraceOutcome>,
    /// The export only: include the apps' content keys (AES), which a replay of their encrypted
    /// requests needs. Off: an export shared further carries no key.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub with_keys: bool,
}

/// Which way a traced message went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    In,
    Out,
}

/// How a traced message went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TraceOutcome {
    Success,
    Failure,
}

impl Event {
    /// The message's direction, for the kinds that are messages.
    pub fn direction(&self) -> Option<Direction> {
        match self.kind.as_str() {
            "gateway.request" => Some(Direction::In),
            "gateway.response" | "redirect.return" => Some(Direction::Out),
            k if k.starts_with("notify.") => Some(Direction::Out),
            _ => None,
        }
    }

    /// How the message went, for the kinds that have an outcome.
    pub fn outcome(&self) -> Option<TraceOutcome> {
        let ok = match self.kind.as_str() {
            "gateway.request" => self.detail["signature_valid"].as_bool()?,
            "gateway.response" => match (self.detail["code"].as_str(), self.detail["status"].as_u64()) {
                (Some(code), _) => code == "10000",
                (None, Some(status)) => (200..300).contains(&status),
                _ => return None,
            },
            "notify.delivered" => true,
            "notify.failed" | "notify.dropped" => false,
            _ => return None,
        };
        Some(if ok { TraceOutcome::Success } else { TraceOutcome::Failure })
    }

    /// Whether the event passes `q`'s filters (all but `since` and `limit`).
    pub fn matches(&self, q: &EventQuery) -> bool {
        q.kind
            .as_deref()
            .is_none_or(|k| self.kind == k || self.kind.strip_prefix(k).is_some_and(|r| r.starts_with('.')))
            && q.method.as_deref().is_none_or(|m| self.detail["method"].as_str() == Some(m))
            && q.direction.is_none_or(|d| self.direction() == Some(d))
            && q.outcome.is_none_or(|o| self.outcome() == Some(o))
            && q.out_trade_no.as_deref().is_none_or(|o| self.out_trade_no.as_deref() == Some(o))
    }
}

impl EventQuery {
    /// The largest `limit` the sandbox honours.
    pub const MAX_LIMIT: i64 = 10_000;

    /// Everything of one merchant order (up to [`Self::MAX_LIMIT`] events).
    pub fn all_of(out_trade_no: impl Into<String>) -> Self {
        EventQuery {
            out_trade_no: Some(out_trade_no.into()),
            limit: Some(Self::MAX_LIMIT),
            ..Default::default()
        }
    }

    /// The query string (without `?`), empty when nothing is set.
    pub fn to_query(&self) -> String {
        let mut q = form_urlencoded::Serializer::new(String::new());
        if let Some(o) = &self.out_trade_no {
            q.append_pair("out_trade_no", o);
        }
        if let Some(s) = self.since {
            q.append_pair("since", &s.to_string());
        }
        if let Some(l) = self.limit {
            q.append_pair("limit", &l.to_string());
        }
        if let Some(k) = &self.kind {
            q.append_pair("kind", k);
        }
        if let Some(m) = &self.method {
            q.append_pair("method", m);
        }
        if let Some(d) = self.direction {
            q.append_pair("direction", if d == Direction::In { "in" } else { "out" });
        }
        if let Some(o) = self.outcome {
            q.append_pair("outcome", if o == TraceOutcome::Success { "success" } else { "failure" });
        }
        if self.with_keys {
            q.append_pair("with_keys", "true");
        }
        q.finish()
    }
}

/// What `GET /sandbox/api/events/export` answers (as a download).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventExport {
    pub exported_at: DateTime<Utc>,
    pub events: Vec<Event>,
    /// The apps whose messages are in the export (their public key, and the test material a
    /// replay needs: the certificate issued to them, their content key), so that another sandbox
    /// can take the same requests again (`POST /sandbox/api/events/replay`).
    #[serde(default)]
    pub apps: Vec<ExportedApp>,
}

/// An app as an export carries it.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExportedApp {
    pub app_id: String,
    pub name: String,
    pub seller_id: String,
    /// SPKI, base64.
    pub public_key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_cert: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aes_key: Option<String>,
}

impl std::fmt::Debug for ExportedApp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExportedApp")
            .field("app_id", &self.app_id)
            .field("name", &self.name)
            .field("aes_key", &self.aes_key.as_ref().map(|_| "<redacted>"))
            .finish_non_exhaustive()
    }
}

/// What `POST /sandbox/api/events/replay` answers: each request of the export sent again, in order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Replayed {
    /// Apps registered from the export (those the sandbox did not have).
    pub apps_added: Vec<String>,
    pub requests: Vec<ReplayedRequest>,
}

/// One request sent again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplayedRequest {
    /// The request's `seq` in the export.
    pub seq: i64,
    pub method: String,
    /// `v2` (`gateway.do`) or `v3`.
    pub protocol: String,
    /// The answer's code then (`10000`, `40004 ACQ.TRADE_NOT_EXIST`, v3 `200`, `400 ACQ.…`), if the
    /// export holds it.
    pub original: Option<String>,
    /// The answer's code now, in the same form.
    pub replayed: String,
    pub same: bool,
}

/// Where an asynchronous notification stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NotificationState {
    /// Not delivered yet; tried again at `next_at`.
    Pending,
    /// The merchant answered `success`.
    Delivered,
    /// Every retry failed.
    GaveUp,
}

impl NotificationState {
    pub const ALL: [NotificationState; 3] =
        [NotificationState::Pending, NotificationState::Delivered, NotificationState::GaveUp];

    pub fn as_str(self) -> &'static str {
        match self {
            NotificationState::Pending => "pending",
            NotificationState::Delivered => "delivered",
            NotificationState::GaveUp => "gave_up",
        }
    }

    pub fn parse(s: &str) -> Option<NotificationState> {
        Self::ALL.into_iter().find(|n| n.as_str() == s)
    }
}

/// One asynchronous notification, as `GET /sandbox/api/notifications` lists them (oldest first).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notification {
    pub id: i64,
    pub notify_id: String,
    pub trade_no: String,
    pub url: String,
    pub attempts: i64,
    pub state: NotificationState,
    /// When the next attempt is due (the last attempt's time once delivered).
    pub next_at: DateTime<Utc>,
    pub last_error: Option<String>,
    pub delivered_at: Option<DateTime<Utc>>,
    pub out_trade_no: Option<String>,
}

/// One SMS code sent to a persona's phone, as `GET /sandbox/api/sms/{phone}` lists them (newest
/// first, the last 20).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SmsMessage {
    pub code: String,
    /// What the code confirms (`pay:<trade_no>`, ...).
    pub purpose: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub used: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_and_states() {
        assert_eq!(EventQuery::default().to_query(), "");
        let q = EventQuery { out_trade_no: Some("HT 1&2".into()), since: Some(7), ..Default::default() };
        assert_eq!(q.to_query(), "out_trade_no=HT+1%262&since=7");
        assert_eq!(EventQuery::all_of("HT-1").to_query(), "out_trade_no=HT-1&limit=10000");
        for s in NotificationState::ALL {
            assert_eq!(serde_json::to_value(s).unwrap(), serde_json::json!(s.as_str()));
            assert_eq!(NotificationState::parse(s.as_str()), Some(s));
        }
        assert!(serde_json::from_str::<NotificationState>(r#""lost""#).is_err());
    }
}
