//! Forced outcomes: `GET /sandbox/api/outcomes`, `POST /sandbox/api/scenarios`,
//! `DELETE /sandbox/api/scenarios/{out_trade_no}`.

use serde::{Deserialize, Serialize};

use crate::Bilingual;

/// An outcome a tester can force.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, specta::Type)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// The balance (and Yu'e Bao) cannot cover the payment: the channel is unavailable.
    ShortBalance,
    /// The chosen card or credit channel declines at confirmation.
    Decline,
    /// Every payment password is wrong: three tries lock payment for three hours.
    WrongPasswordLock,
    /// An SMS code is required to confirm.
    SmsRequired,
    /// An SMS code is required and the code expires before it can be used.
    SmsTimeout,
    /// API calls answer `20000` (result unknown) after doing their work.
    ResultUnknown,
    /// API calls answer HTTP 502 without doing anything.
    GatewayError,
    /// API calls answer after a long delay.
    Slow,
    /// API calls drop the connection after doing their work.
    DropConnection,
    /// Payment succeeds but the browser is never sent back to `return_url`.
    LostReturn,
    /// The notification is sent 10 minutes (sandbox time) late.
    NotifyDelay,
    /// The notification is sent twice.
    NotifyDuplicate,
    /// A stale `WAIT_BUYER_PAY`-era notification is sent after the real one.
    NotifyReorder,
    /// A notification with a forged signature is sent before the real one.
    NotifyForged,
    /// A notification correctly signed by the gateway but for a different amount is sent before the
    /// real one (a gateway fault or a leaked key): the merchant must still refuse it by amount.
    NotifyWrongAmount,
    /// No notification is ever sent.
    NotifyDrop,
}

impl Outcome {
    /// Every outcome, in magic-amount order (see [`Outcome::magic_amount_fen`]).
    pub const ALL: [Outcome; 16] = [
        Outcome::ShortBalance,
        Outcome::Decline,
        Outcome::WrongPasswordLock,
        Outcome::SmsRequired,
        Outcome::SmsTimeout,
        Outcome::ResultUnknown,
        Outcome::GatewayError,
        Outcome::Slow,
        Outcome::DropConnection,
        Outcome::LostReturn,
        Outcome::NotifyDelay,
        Outcome::NotifyDuplicate,
        Outcome::NotifyReorder,
        Outcome::NotifyForged,
        Outcome::NotifyDrop,
        // New outcomes go last: each one's magic amount (¥666.01 + index) must never move.
        Outcome::NotifyWrongAmount,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::ShortBalance => "short_balance",
            Outcome::Decline => "decline",
            Outcome::WrongPasswordLock => "wrong_password_lock",
            Outcome::SmsRequired => "sms_required",
            Outcome::SmsTimeout => "sms_timeout",
            Outcome::ResultUnknown => "result_unknown",
            Outcome::GatewayError => "gateway_error",
            Outcome::Slow => "slow",
            Outcome::DropConnection => "drop_connection",
            Outcome::LostReturn => "lost_return",
            Outcome::NotifyDelay => "notify_delay",
            Outcome::NotifyDuplicate => "notify_duplicate",
            Outcome::NotifyReorder => "notify_reorder",
            Outcome::NotifyForged => "notify_forged",
            Outcome::NotifyWrongAmount => "notify_wrong_amount",
            Outcome::NotifyDrop => "notify_drop",
        }
    }

    pub fn parse(s: &str) -> Option<Outcome> {
        Outcome::ALL.into_iter().find(|o| o.as_str() == s)
    }

    /// The CNY `total_amount`, in fen, that forces this outcome without the tester API: ¥666.01 for
    /// the first of [`Outcome::ALL`], ¥666.02 for the second, ...
    pub fn magic_amount_fen(self) -> i64 {
        let index = Outcome::ALL.iter().position(|o| *o == self).unwrap_or_default();
        66_601 + i64::try_from(index).unwrap_or_default()
    }

    /// The outcome a CNY `total_amount` (in fen) forces, if it is a magic amount.
    pub fn from_magic_amount(total_fen: i64) -> Option<Outcome> {
        let index = usize::try_from(total_fen.checked_sub(66_601)?).ok()?;
        Outcome::ALL.get(index).copied()
    }

    /// What the outcome does, for documentation and the tester panel.
    pub fn describe(self) -> Bilingual {
        let (zh, en) = match self {
            Outcome::ShortBalance => ("余额不足，需换其他渠道", "Balance too low: pick another channel"),
            Outcome::Decline => ("银行卡/花呗拒绝支付", "The card or Huabei declines"),
            Outcome::WrongPasswordLock => {
                ("支付密码错误三次后锁定3小时", "Wrong password three times locks payment for 3 h")
            }
            Outcome::SmsRequired => ("需短信验证码确认", "An SMS code is required"),
            Outcome::SmsTimeout => ("短信验证码超时", "The SMS code times out"),
            Outcome::ResultUnknown => ("接口返回20000（结果未知）", "API answers 20000 (result unknown)"),
            Outcome::GatewayError => ("网关返回HTTP 502", "Gateway answers HTTP 502"),
            Outcome::Slow => ("接口响应缓慢", "API answers slowly"),
            Outcome::DropConnection => ("处理后断开连接", "Connection dropped after processing"),
            Outcome::LostReturn => ("支付成功但不跳回商户", "Paid, but no redirect back"),
            Outcome::NotifyDelay => ("异步通知延迟10分钟", "Notification 10 min late"),
            Outcome::NotifyDuplicate => ("异步通知重复发送", "Notification sent twice"),
            Outcome::NotifyReorder => ("异步通知乱序", "Notifications out of order"),
            Outcome::NotifyForged => ("先发送一条伪造签名的通知", "A forged notification first"),
            Outcome::NotifyWrongAmount => ("先发送一条金额不符的通知", "A wrong-amount notification first"),
            Outcome::NotifyDrop => ("不发送异步通知", "No notification at all"),
        };
        Bilingual::new(zh, en)
    }
}

/// One entry of `GET /sandbox/api/outcomes`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, specta::Type)]
pub struct OutcomeInfo {
    pub outcome: Outcome,
    /// What it does, in Chinese and in English.
    pub zh: String,
    pub en: String,
    /// The `total_amount` that forces it, as Alipay writes amounts ("666.01").
    pub magic_amount: String,
}

impl OutcomeInfo {
    pub fn of(outcome: Outcome) -> Self {
        let Bilingual { zh, en } = outcome.describe();
        let fen = outcome.magic_amount_fen();
        OutcomeInfo { outcome, zh, en, magic_amount: format!("{}.{:02}", fen / 100, fen % 100) }
    }
}

/// The body of `POST /sandbox/api/scenarios`: forces an outcome for one merchant order, or for the
/// app's (any app's, without `app_id`) next new order when `out_trade_no` is `None`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ForceRequest {
    #[serde(default)]
    pub app_id: Option<String>,
    #[serde(default)]
    pub out_trade_no: Option<String>,
    pub outcome: Outcome,
}

impl ForceRequest {
    /// `outcome` for one merchant order of any app.
    pub fn order(out_trade_no: impl Into<String>, outcome: Outcome) -> Self {
        ForceRequest { app_id: None, out_trade_no: Some(out_trade_no.into()), outcome }
    }
}

/// What `POST /sandbox/api/scenarios` answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Forced {
    pub id: i64,
    pub outcome: Outcome,
}

/// What `DELETE /sandbox/api/scenarios/{out_trade_no}` answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cleared {
    /// How many forced outcomes were removed.
    pub removed: usize,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcomes_are_strict_and_keep_their_magic_amounts() {
        for o in Outcome::ALL {
            assert_eq!(serde_json::to_value(o).unwrap(), serde_json::json!(o.as_str()));
            assert_eq!(Outcome::parse(o.as_str()), Some(o));
            assert_eq!(Outcome::from_magic_amount(o.magic_amount_fen()), Some(o));
        }
        assert_eq!(OutcomeInfo::of(Outcome::ShortBalance).magic_amount, "666.01");
        assert_eq!(OutcomeInfo::of(Outcome::NotifyDrop).magic_amount, "666.15");
        assert_eq!(OutcomeInfo::of(Outcome::NotifyWrongAmount).magic_amount, "666.16");
        assert_eq!(Outcome::from_magic_amount(66_600), None);
        assert_eq!(Outcome::from_magic_amount(66_617), None);
        assert!(serde_json::from_str::<Outcome>(r#""lucky""#).is_err());
        assert!(serde_json::from_value::<ForceRequest>(serde_json::json!({"outcome": "lucky"})).is_err());
    }
}
