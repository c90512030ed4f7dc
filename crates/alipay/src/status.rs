//! Alipay's `code` / `sub_code` answers, classified by what the caller may conclude from them.

use std::fmt;

use serde::{Deserialize, Serialize};

/// The `code`, `msg`, `sub_code`, `sub_msg` fields every response node carries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Status {
    pub code: String,
    pub msg: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sub_code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sub_msg: Option<String>,
}

impl Status {
    pub const SUCCESS: &'static str = "10000";

    pub fn success() -> Self {
        Status { code: Self::SUCCESS.into(), msg: "Success".into(), sub_code: None, sub_msg: None }
    }

    /// A failure with the `msg` Alipay uses for `code`.
    pub fn failure(code: &str, sub_code: &str, sub_msg: impl Into<String>) -> Self {
        let msg = match code {
            "20000" => "Service Currently Unavailable",
            "20001" => "Insufficient Token Permissions",
            "40001" => "Missing Required Arguments",
            "40002" => "Invalid Arguments",
            "40003" => "Insufficient Conditions",
            "40004" => "Business Failed",
            "40005" => "Call Limited",
            "40006" => "Insufficient Permissions",
            _ => "Unknown",
        };
        Status {
            code: code.into(),
            msg: msg.into(),
            sub_code: Some(sub_code.into()),
            sub_msg: Some(sub_msg.into()),
        }
    }

    pub fn is_success(&self) -> bool {
        self.code == Self::SUCCESS
    }
}

/// What an answer means for the caller's next step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Certainty {
    /// The call did what was asked.
    Succeeded,
    /// The call definitely did not take effect (or was refused for a known business reason).
    Failed,
    /// The outcome is unknown: the call may or may not have taken effect. Query before retrying.
    Unknown,
}

/// A non-success answer from the gateway.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct GatewayError {
    pub status: Status,
}

impl fmt::Display for GatewayError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = &self.status;
        write!(f, "Alipay answered {} {}", s.code, s.msg)?;
        if let Some(sc) = &s.sub_code {
            write!(f, " ({sc}")?;
            if let Some(sm) = &s.sub_msg {
                write!(f, ": {sm}")?;
            }
            write!(f, ")")?;
        }
        Ok(())
    }
}

impl GatewayError {
    pub fn sub_code(&self) -> Option<&str> {
        self.status.sub_code.as_deref()
    }

    /// Classifies the answer.
    ///
    /// `20000` (service unavailable), `10003` (payment in progress), `ACQ.WAIT_BUYER_PAY` and
    /// `ACQ.SYSTEM_ERROR` leave the outcome unknown. Everything else is a definite failure: gateway checks (`40001`, `40002`
    /// including `isv.invalid-signature`, `40003`, `40005`, `40006`, `20001`) mean the request was
    /// not processed, and `40004` business failures (`ACQ.TRADE_HAS_SUCCESS`,
    /// `ACQ.BUYER_BALANCE_NOT_ENOUGH`, ...) mean it was refused.
    pub fn certainty(&self) -> Certainty {
        match (self.status.code.as_str(), self.sub_code()) {
            ("10000", _) => Certainty::Succeeded,
            ("20000" | "10003", _) => Certainty::Unknown,
            ("40004", Some("ACQ.SYSTEM_ERROR" | "SYSTEM_ERROR" | "ACQ.SYSTEM_BUSY")) => Certainty::Unknown,
            // Waiting for the buyer to confirm (a v3 answer carries it without `10003`).
            (_, Some("ACQ.WAIT_BUYER_PAY")) => Certainty::Unknown,
            _ => Certainty::Failed,
        }
    }

    pub fn is_result_unknown(&self) -> bool {
        self.certainty() == Certainty::Unknown
    }
}

/// `ACQ.*` sub-codes Haitao reacts to by name.
pub mod acq {
    pub const SYSTEM_ERROR: &str = "ACQ.SYSTEM_ERROR";
    pub const INVALID_PARAMETER: &str = "ACQ.INVALID_PARAMETER";
    pub const TRADE_NOT_EXIST: &str = "ACQ.TRADE_NOT_EXIST";
    pub const TRADE_HAS_SUCCESS: &str = "ACQ.TRADE_HAS_SUCCESS";
    pub const TRADE_HAS_CLOSE: &str = "ACQ.TRADE_HAS_CLOSE";
    pub const TRADE_HAS_FINISHED: &str = "ACQ.TRADE_HAS_FINISHED";
    pub const TRADE_STATUS_ERROR: &str = "ACQ.TRADE_STATUS_ERROR";
    pub const CONTEXT_INCONSISTENT: &str = "ACQ.CONTEXT_INCONSISTENT";
    pub const BUYER_BALANCE_NOT_ENOUGH: &str = "ACQ.BUYER_BALANCE_NOT_ENOUGH";
    pub const BUYER_BANKCARD_BALANCE_NOT_ENOUGH: &str = "ACQ.BUYER_BANKCARD_BALANCE_NOT_ENOUGH";
    pub const DISCORDANT_REPEAT_REQUEST: &str = "ACQ.DISCORDANT_REPEAT_REQUEST";
    pub const REFUND_AMT_NOT_EQUAL_TOTAL: &str = "ACQ.REFUND_AMT_NOT_EQUAL_TOTAL";
    pub const REASON_TRADE_REFUND_FEE_ERR: &str = "ACQ.REASON_TRADE_REFUND_FEE_ERR";
    pub const TOTAL_FEE_EXCEED: &str = "ACQ.TOTAL_FEE_EXCEED";
    pub const SELLER_BALANCE_NOT_ENOUGH: &str = "ACQ.SELLER_BALANCE_NOT_ENOUGH";
    pub const TRADE_NOT_ALLOW_REFUND: &str = "ACQ.TRADE_NOT_ALLOW_REFUND";
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(code: &str, sub: &str) -> GatewayError {
        GatewayError { status: Status::failure(code, sub, "x") }
    }

    #[test]
    fn separates_definite_from_unknown() {
        assert_eq!(err("40004", acq::TRADE_HAS_SUCCESS).certainty(), Certainty::Failed);
        assert_eq!(err("40004", acq::BUYER_BALANCE_NOT_ENOUGH).certainty(), Certainty::Failed);
        assert_eq!(err("40002", "isv.invalid-signature").certainty(), Certainty::Failed);
        assert_eq!(err("20000", "isp.unknow-error").certainty(), Certainty::Unknown);
        assert_eq!(err("40004", acq::SYSTEM_ERROR).certainty(), Certainty::Unknown);
        assert_eq!(err("10003", "").certainty(), Certainty::Unknown);
        assert!(err("20000", "aop.unknow-error").to_string().contains("20000"));
    }
}
