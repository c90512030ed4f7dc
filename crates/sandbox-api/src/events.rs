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
}

impl EventQuery {
    /// The largest `limit` the sandbox honours.
    pub const MAX_LIMIT: i64 = 10_000;

    /// Everything of one merchant order (up to [`Self::MAX_LIMIT`] events).
    pub fn all_of(out_trade_no: impl Into<String>) -> Self {
        EventQuery { out_trade_no: Some(out_trade_no.into()), since: None, limit: Some(Self::MAX_LIMIT) }
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
        q.finish()
    }
}

/// What `GET /sandbox/api/events/export` answers (as a download).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventExport {
    pub exported_at: DateTime<Utc>,
    pub events: Vec<Event>,
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
        let q = EventQuery { out_trade_no: Some("HT 1&2".into()), since: Some(7), limit: None };
        assert_eq!(q.to_query(), "out_trade_no=HT+1%262&since=7");
        assert_eq!(EventQuery::all_of("HT-1").to_query(), "out_trade_no=HT-1&limit=10000");
        for s in NotificationState::ALL {
            assert_eq!(serde_json::to_value(s).unwrap(), serde_json::json!(s.as_str()));
            assert_eq!(NotificationState::parse(s.as_str()), Some(s));
        }
        assert!(serde_json::from_str::<NotificationState>(r#""lost""#).is_err());
    }
}
