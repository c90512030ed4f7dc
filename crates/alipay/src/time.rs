//! Time for the Alipay protocol: an injectable clock and the `yyyy-MM-dd HH:mm:ss` timestamps that
//! Alipay writes in China Standard Time (Asia/Shanghai), whatever zone the host is in.
//!
//! Asia/Shanghai has been UTC+08:00 without daylight saving since 1991, so a fixed offset is exact for
//! every timestamp Alipay can produce.

use std::fmt;
use std::sync::Arc;

use chrono::{DateTime, Duration, FixedOffset, NaiveDateTime, Offset, TimeZone, Utc};
use parking_lot::Mutex;

/// UTC+08:00, the zone of every Alipay timestamp.
pub fn shanghai() -> FixedOffset {
    // 8 hours is always a valid offset; fall back to UTC only to avoid a panic path.
    FixedOffset::east_opt(8 * 3600).unwrap_or(Utc.fix())
}

const FORMAT: &str = "%Y-%m-%d %H:%M:%S";

/// Formats an instant as Alipay's `timestamp`, `gmt_payment`, `notify_time`...
pub fn format_alipay(at: DateTime<Utc>) -> String {
    at.with_timezone(&shanghai()).format(FORMAT).to_string()
}

/// Parses Alipay's `yyyy-MM-dd HH:mm:ss` (China Standard Time) into an instant.
pub fn parse_alipay(text: &str) -> Result<DateTime<Utc>, TimeError> {
    if text.len() != 19 {
        return Err(TimeError(text.chars().take(40).collect()));
    }
    let naive = NaiveDateTime::parse_from_str(text, FORMAT).map_err(|_| TimeError(text.to_owned()))?;
    shanghai()
        .from_local_datetime(&naive)
        .single()
        .map(|dt| dt.with_timezone(&Utc))
        .ok_or_else(|| TimeError(text.to_owned()))
}

/// A timestamp that is not `yyyy-MM-dd HH:mm:ss`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not an Alipay timestamp (yyyy-MM-dd HH:mm:ss, Asia/Shanghai)")]
pub struct TimeError(pub String);

/// Where "now" comes from. Production uses [`SystemClock`]; tests and the sandbox use [`ManualClock`].
pub trait Clock: Send + Sync + fmt::Debug {
    fn now(&self) -> DateTime<Utc>;

    /// Moves the clock forward, if it can be moved (test and sandbox clocks). Returns whether it moved.
    fn advance(&self, by: Duration) -> bool {
        let _ = by;
        false
    }
}

/// The host's real clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// A clock that only moves when told to. Cloning shares the same time.
#[derive(Debug, Clone)]
pub struct ManualClock {
    now: Arc<Mutex<DateTime<Utc>>>,
}

impl ManualClock {
    pub fn new(start: DateTime<Utc>) -> Self {
        ManualClock { now: Arc::new(Mutex::new(start)) }
    }

    pub fn advance(&self, by: Duration) {
        let mut now = self.now.lock();
        *now += by;
    }

    pub fn set(&self, to: DateTime<Utc>) {
        *self.now.lock() = to;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *self.now.lock()
    }

    fn advance(&self, by: Duration) -> bool {
        ManualClock::advance(self, by);
        true
    }
}

/// A clock that runs at real speed from an adjustable offset: the sandbox's clock, which testers
/// can push forward ("advance 3 hours") while it keeps ticking.
#[derive(Debug, Clone, Default)]
pub struct OffsetClock {
    offset: Arc<Mutex<Duration>>,
}

impl OffsetClock {
    pub fn new(offset: Duration) -> Self {
        OffsetClock { offset: Arc::new(Mutex::new(offset)) }
    }

    pub fn advance(&self, by: Duration) {
        let mut off = self.offset.lock();
        *off += by;
    }

    pub fn offset(&self) -> Duration {
        *self.offset.lock()
    }
}

impl Clock for OffsetClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now() + *self.offset.lock()
    }

    fn advance(&self, by: Duration) -> bool {
        OffsetClock::advance(self, by);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_in_shanghai_regardless_of_host_zone() {
        let utc = Utc.with_ymd_and_hms(2024, 1, 1, 4, 0, 0).single().unwrap_or_default();
        assert_eq!(format_alipay(utc), "2024-01-01 12:00:00");
        let late = Utc.with_ymd_and_hms(2024, 12, 31, 20, 30, 5).single().unwrap_or_default();
        assert_eq!(format_alipay(late), "2025-01-01 04:30:05");
    }

    #[test]
    fn parses_back() {
        let t = parse_alipay("2019-08-15 15:56:24");
        assert_eq!(t.map(|t| t.to_rfc3339()), Ok("2019-08-15T07:56:24+00:00".to_owned()));
        for bad in
            ["2019-08-15T15:56:24", "2019-8-15 15:56:24", "2019-02-30 00:00:00", "", "2019-08-15 15:56:24 "]
        {
            assert!(parse_alipay(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn manual_clock_moves_only_when_told() {
        let start = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).single().unwrap_or_default();
        let c = ManualClock::new(start);
        let c2 = c.clone();
        c.advance(Duration::minutes(4));
        assert_eq!(c2.now(), start + Duration::minutes(4));
    }
}
