//! Paths of the tester API, relative to the sandbox's base URL (`base.join(path::PAY)`): no leading
//! slash, so a sandbox served under a path prefix works too.

use percent_encoding::{AsciiSet, CONTROLS, utf8_percent_encode};

use crate::events::EventQuery;

pub const INFO: &str = "sandbox/api/info";
pub const APPS: &str = "sandbox/api/apps";
pub const ALIPAY_CERT_ROTATE: &str = "sandbox/api/alipay-cert/rotate";
pub const PERSONAS: &str = "sandbox/api/personas";
pub const OUTCOMES: &str = "sandbox/api/outcomes";
pub const SCENARIOS: &str = "sandbox/api/scenarios";
pub const PAY: &str = "sandbox/api/pay";
pub const CLOCK: &str = "sandbox/api/clock";
pub const CLOCK_ADVANCE: &str = "sandbox/api/clock/advance";
pub const EVENTS: &str = "sandbox/api/events";
pub const EVENTS_EXPORT: &str = "sandbox/api/events/export";
pub const NOTIFICATIONS: &str = "sandbox/api/notifications";
pub const LEDGER_CHECK: &str = "sandbox/api/ledger/check";
pub const LEDGER_ACCOUNTS: &str = "sandbox/api/ledger/accounts";

/// What a path segment must escape (RFC 3986 `pchar`s stay as they are).
const SEGMENT: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b'/')
    .add(b'<')
    .add(b'>')
    .add(b'?')
    .add(b'\\')
    .add(b'^')
    .add(b'`')
    .add(b'{')
    .add(b'|')
    .add(b'}');

fn segment(s: &str) -> String {
    utf8_percent_encode(s, SEGMENT).to_string()
}

/// `GET`: a persona's accounts.
pub fn persona_accounts(login: &str) -> String {
    format!("{PERSONAS}/{}/accounts", segment(login))
}

/// `DELETE`: the outcomes forced for a merchant order.
pub fn scenario(out_trade_no: &str) -> String {
    format!("{SCENARIOS}/{}", segment(out_trade_no))
}

/// `GET`: a trade by its merchant order number.
pub fn trade(out_trade_no: &str) -> String {
    format!("sandbox/api/trades/{}", segment(out_trade_no))
}

/// `GET`: the SMS codes sent to a phone.
pub fn sms(phone: &str) -> String {
    format!("sandbox/api/sms/{}", segment(phone))
}

/// `GET`: events matching `q`.
pub fn events(q: &EventQuery) -> String {
    with_query(EVENTS, &q.to_query())
}

/// `GET`: the export of the events of one merchant order (all of them without one).
pub fn events_export(out_trade_no: Option<&str>) -> String {
    let q = EventQuery { out_trade_no: out_trade_no.map(str::to_owned), ..EventQuery::default() };
    with_query(EVENTS_EXPORT, &q.to_query())
}

/// `GET`: the export of the events `q` matches (its `since` and `limit` too).
pub fn events_export_matching(q: &EventQuery) -> String {
    with_query(EVENTS_EXPORT, &q.to_query())
}

/// `POST`: sends a past notification again.
pub fn notification_resend(id: i64) -> String {
    format!("{NOTIFICATIONS}/{id}/resend")
}

/// `POST`: replays an export against this sandbox.
pub const EVENTS_REPLAY: &str = "sandbox/api/events/replay";

/// `GET`: the notifications of one merchant order (all of them without one).
pub fn notifications(out_trade_no: Option<&str>) -> String {
    let q = EventQuery { out_trade_no: out_trade_no.map(str::to_owned), ..EventQuery::default() };
    with_query(NOTIFICATIONS, &q.to_query())
}

fn with_query(path: &str, query: &str) -> String {
    if query.is_empty() { path.to_owned() } else { format!("{path}?{query}") }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_escape_their_segments() {
        assert_eq!(
            persona_accounts("zhangwei@sandbox.haitao"),
            "sandbox/api/personas/zhangwei@sandbox.haitao/accounts"
        );
        assert_eq!(trade("HT/1 2"), "sandbox/api/trades/HT%2F1%202");
        assert_eq!(scenario("HT-1"), "sandbox/api/scenarios/HT-1");
        assert_eq!(notifications(None), "sandbox/api/notifications");
        assert_eq!(notification_resend(7), "sandbox/api/notifications/7/resend");
        assert_eq!(
            events_export_matching(&EventQuery {
                out_trade_no: Some("HT-1".into()),
                direction: Some(crate::Direction::Out),
                ..Default::default()
            }),
            "sandbox/api/events/export?out_trade_no=HT-1&direction=out"
        );
        assert_eq!(notifications(Some("HT-1")), "sandbox/api/notifications?out_trade_no=HT-1");
        assert_eq!(
            events(&EventQuery { out_trade_no: Some("HT-1".into()), since: Some(3), ..Default::default() }),
            "sandbox/api/events?out_trade_no=HT-1&since=3"
        );
    }
}
