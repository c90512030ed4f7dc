//! The shop's rules as synchronous functions of what the store read, with no I/O. Stores run them
//! inside the transaction that reads their inputs and writes their outcome; handlers and jobs do
//! the talking (HTTP, the gateway) around one such call.

pub mod orders;
pub mod payments;
pub mod refunds;

/// Values the rules' tests start from.
#[cfg(test)]
pub(crate) mod fixtures {
    use chrono::{DateTime, TimeZone as _, Utc};
    use haitao_alipay::money::{Currency, Money};
    use haitao_shop_api::orders::OrderStatus;

    use crate::store::OrderCore;

    pub fn t0() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 6, 9, 1, 30, 0).single().unwrap_or_default()
    }

    /// Order O1 of account A1, CN¥109.00 (CN¥100.00 dutiable), paid by `paid_by` if given.
    pub fn order(status: OrderStatus, paid_by: Option<&str>) -> OrderCore {
        OrderCore {
            id: "O1".into(),
            account_id: "A1".into(),
            status,
            total: Money::from_minor(10_900, Currency::Cny),
            dutiable: Money::from_minor(10_000, Currency::Cny),
            refunded: Money::zero(Currency::Cny),
            orderer_name: "张伟".into(),
            orderer_id_number: "110105198803151232".into(),
            quota_year: 2026,
            pay_deadline: t0() + chrono::Duration::minutes(30),
            paid_at: paid_by.map(|_| t0()),
            paid_attempt_id: paid_by.map(str::to_owned),
            identity_check: None,
            declare_seq: 0,
            hold_reason: None,
            waybill_no: None,
        }
    }
}
