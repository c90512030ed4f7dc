//! `GET /sandbox/api/clock` and `POST /sandbox/api/clock/advance`.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// What `GET /sandbox/api/clock` answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClockInfo {
    pub now: DateTime<Utc>,
    /// `now` as Alipay writes times: `yyyy-MM-dd HH:mm:ss`, China time.
    pub alipay_time: String,
}

/// `POST /sandbox/api/clock/advance`: moves the sandbox clock forward (1 s to one year) and runs
/// what fell due (expiries, notifications).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct AdvanceClock {
    pub seconds: i64,
}

/// What `POST /sandbox/api/clock/advance` answers: the clock after the move.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClockAdvanced {
    pub now: DateTime<Utc>,
}
