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
    let bad = || TimeError(text.chars().take(40).collect());
    // Fixed layout, checked byte by byte (every inbound message carries two or three of these).
    let b = text.as_bytes();
    if b.len() != 19 || b[4] != b'-' || b[7] != b'-' || b[10] != b' ' || b[13] != b':' || b[16] != b':' {
        return Err(bad());
    }
    let num = |range: std::ops::Range<usize>| -> Option<u32> {
        b.get(range)?
            .iter()
            .try_fold(0u32, |acc, &d| d.is_ascii_digit().then(|| acc * 10 + u32::from(d - b'0')))
    };
    let field = |range| num(range).ok_or_else(bad);
    let year = i32::try_from(field(0..4)?).map_err(|_| bad())?;
    let date = chrono::NaiveDate::from_ymd_opt(year, field(5..7)?, field(8..10)?).ok_or_else(bad)?;
    let time =
        chrono::NaiveTime::from_hms_opt(field(11..13)?, field(14..16)?, field(17..19)?).ok_or_else(bad)?;
    let naive = NaiveDateTime::new(date, time);
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
    #[allow(clippy::disallowed_methods, reason = "the seam itself: the host's clock")]
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
    #[allow(clippy::disallowed_methods, reason = "the seam itself: the host's clock, offset")]
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
        for bad in [
            "2019-08-15T15:56:24",
            "2019-8-15 15:56:24",
            "2019-02-30 00:00:00",
            "",
            "2019-08-15 15:56:24 ",
            "2019-13-01 00:00:00",
            "2019-08-15 24:00:00",
            "2019-08-15 23:60:00",
            "+019-08-15 15:56:24",
            "2019-08-1a 15:56:24",
            // 19 bytes each, so only the digit check can refuse them.
            "2019-08-15 15:56:٤",
            "２019-08-15 15:56",
            "2019-08-15 15:56: 4",
            "2016-12-31 23:59:60",
        ] {
            assert!(parse_alipay(bad).is_err(), "{bad:?}");
        }
    }

    proptest::proptest! {
        /// Every second from 1991 to 2099 formats and parses back to the same instant, agreeing with
        /// chrono's own parser of the same layout.
        #[test]
        fn format_parse_round_trip(secs in 662_688_000i64..4_102_444_800i64) {
            let at = DateTime::from_timestamp(secs, 0).unwrap_or_default();
            let text = format_alipay(at);
            proptest::prop_assert_eq!(parse_alipay(&text), Ok(at));
            let naive = NaiveDateTime::parse_from_str(&text, FORMAT).map(|n| n.and_utc() - Duration::hours(8));
            proptest::prop_assert_eq!(naive.ok(), Some(at));
        }

        /// Any numbers in the layout: accepted exactly when they form a real date and time (no leap
        /// seconds), and then read as that wall-clock time in Shanghai.
        #[test]
        fn fields_in_the_layout(y in 0u32..10_000, mo in 0u32..100, d in 0u32..100, h in 0u32..100, mi in 0u32..100, sec in 0u32..100) {
            let text = format!("{y:04}-{mo:02}-{d:02} {h:02}:{mi:02}:{sec:02}");
            let expected = i32::try_from(y)
                .ok()
                .and_then(|y| chrono::NaiveDate::from_ymd_opt(y, mo, d))
                .zip(chrono::NaiveTime::from_hms_opt(h, mi, sec))
                .map(|(date, time)| NaiveDateTime::new(date, time).and_utc() - Duration::hours(8));
            proptest::prop_assert_eq!(parse_alipay(&text).ok(), expected);
        }

        /// One byte of a valid timestamp replaced by any character: accepted only when the text is
        /// still the exact layout (ASCII digits where digits go) and chrono reads the same instant.
        #[test]
        fn one_changed_character(secs in 662_688_000i64..4_102_444_800i64, at in 0usize..19, c in proptest::char::any()) {
            let valid = format_alipay(DateTime::from_timestamp(secs, 0).unwrap_or_default());
            let mut text: String = valid.chars().take(at).collect();
            text.push(c);
            text.extend(valid.chars().skip(at + 1));
            let layout = text.len() == 19
                && text.bytes().enumerate().all(|(i, b)| match i {
                    4 | 7 => b == b'-',
                    10 => b == b' ',
                    13 | 16 => b == b':',
                    _ => b.is_ascii_digit(),
                });
            let reference = NaiveDateTime::parse_from_str(&text, FORMAT)
                .ok()
                .filter(|n| layout && chrono::Timelike::second(n) < 60)
                .map(|n| n.and_utc() - Duration::hours(8));
            proptest::prop_assert_eq!(parse_alipay(&text).ok(), reference);
        }
    }
}
