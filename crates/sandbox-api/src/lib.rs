//! # haitao-sandbox-api
//!
//! The wire types of the Alipay sandbox's tester API (`/sandbox/api`, documented in
//! docs/sandbox.md), shared by the sandbox that serves it and everything that drives it: the shop
//! (registering its app), the desktop client's tester panel, tests, benchmarks and the soak.
//!
//! Money is integer fen ([`LEDGER_CURRENCY`]: the sandbox's ledger keeps CNY only; a trade carries
//! its own order currency beside its minor units). Closed sets (outcomes, funding-source kinds, pay
//! channels, notification states) are enums that refuse unknown values. Text a tester reads in the
//! app's language comes as a [`Bilingual`] pair.

pub mod apps;
pub mod clock;
pub mod events;
pub mod ledger;
pub mod path;
pub mod pay;
pub mod personas;
pub mod scenarios;
pub mod trades;

pub use apps::{AlipayCertRotated, AppCertificates, AppInfo, AppRequest, Info};
pub use clock::{AdvanceClock, ClockAdvanced, ClockInfo};
pub use events::{
    Direction, Event, EventExport, EventQuery, ExportedApp, Notification, NotificationState, Replayed,
    ReplayedRequest, SmsMessage, TraceOutcome,
};
pub use haitao_alipay::money::Currency;
pub use ledger::{Account, AccountKind, LedgerCheck};
pub use pay::{CardInput, Paid, PayAnswer, PayError, PayRequest, PayWith, Refused};
pub use personas::{Persona, PersonaCreated, PersonaSpec, SourceSpec};
pub use scenarios::{Cleared, ForceRequest, Forced, Outcome, OutcomeInfo};
pub use trades::{AppQuery, Trade, TradeView};

use serde::{Deserialize, Serialize};

/// The currency of every sandbox account and of every `*_fen` amount in this API.
pub const LEDGER_CURRENCY: Currency = Currency::Cny;

/// Text in both of the sandbox's languages, for the UI to pick from.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize, specta::Type)]
#[serde(deny_unknown_fields)]
pub struct Bilingual {
    pub zh: String,
    pub en: String,
}

impl Bilingual {
    pub fn new(zh: impl Into<String>, en: impl Into<String>) -> Self {
        Bilingual { zh: zh.into(), en: en.into() }
    }

    /// The English text when `en`, the Chinese otherwise.
    pub fn pick(&self, en: bool) -> &str {
        if en { &self.en } else { &self.zh }
    }
}

/// The body of every error answer of the tester API (4xx and 5xx), except a refused payment
/// ([`pay::Refused`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiError {
    /// A stable code: `not_found`, `invalid_request`, `invalid_name`, `not_payable`, ...
    pub error: String,
    pub message: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bilingual_is_a_strict_pair() {
        let b: Bilingual = serde_json::from_str(r#"{"zh":"余额不足","en":"Short balance"}"#).unwrap();
        assert_eq!(b.pick(true), "Short balance");
        assert_eq!(b.pick(false), "余额不足");
        assert!(serde_json::from_str::<Bilingual>(r#""Short balance / 余额不足""#).is_err());
        assert!(serde_json::from_str::<Bilingual>(r#"{"zh":"a"}"#).is_err());
    }
}
