//! Typed `biz_content` models and response bodies of the trade APIs Haitao uses.
//!
//! Every model is both `Serialize` and `Deserialize`: merchants serialise requests and read
//! responses; the sandbox gateway does the reverse with the same types.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::money::{AmountText, Currency, Money, MoneyError};
use crate::response::ResponseError;

/// An API called server-to-server through the gateway.
pub trait ApiCall: Serialize {
    /// The `method` parameter.
    const METHOD: &'static str;
    /// Whether repeating the same call can never do more than the first one did, so it may be
    /// retried automatically when its outcome is unknown.
    const IDEMPOTENT: bool;
    /// The response node's fields besides `code`/`msg`/`sub_code`/`sub_msg`.
    type Response: DeserializeOwned + Serialize + fmt::Debug;

    /// Whether a verified answer is about what was asked (the same trade, the same refund): an
    /// answer about another one is no answer to this call.
    fn check_answer(&self, _answer: &Self::Response) -> Result<(), ResponseError> {
        Ok(())
    }
}

/// An answer about `out_trade_no` / `trade_no` must name the trade asked about where both name it.
fn same_trade(
    asked: &TradeRef,
    out_trade_no: Option<&str>,
    trade_no: Option<&str>,
) -> Result<(), ResponseError> {
    let pairs = [
        ("out_trade_no", asked.out_trade_no.as_deref(), out_trade_no),
        ("trade_no", asked.trade_no.as_deref(), trade_no),
    ];
    for (field, asked, answered) in pairs {
        if let (Some(a), Some(b)) = (asked, answered)
            && a != b
        {
            return Err(ResponseError::Mismatch { field, asked: a.to_owned(), answered: b.to_owned() });
        }
    }
    Ok(())
}

/// An API the buyer's browser is sent to (the gateway answers with the cashier page).
pub trait PageCall: Serialize {
    const METHOD: &'static str;
}

// ---------------------------------------------------------------------------------------------
// Shared pieces

/// `trade_status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum TradeStatus {
    WaitBuyerPay,
    TradeClosed,
    TradeSuccess,
    TradeFinished,
}

impl TradeStatus {
    pub const fn as_str(self) -> &'static str {
        match self {
            TradeStatus::WaitBuyerPay => "WAIT_BUYER_PAY",
            TradeStatus::TradeClosed => "TRADE_CLOSED",
            TradeStatus::TradeSuccess => "TRADE_SUCCESS",
            TradeStatus::TradeFinished => "TRADE_FINISHED",
        }
    }

    /// Only these two mean the buyer paid.
    pub const fn is_paid(self) -> bool {
        matches!(self, TradeStatus::TradeSuccess | TradeStatus::TradeFinished)
    }
}

impl FromStr for TradeStatus {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "WAIT_BUYER_PAY" => Ok(TradeStatus::WaitBuyerPay),
            "TRADE_CLOSED" => Ok(TradeStatus::TradeClosed),
            "TRADE_SUCCESS" => Ok(TradeStatus::TradeSuccess),
            "TRADE_FINISHED" => Ok(TradeStatus::TradeFinished),
            other => Err(format!("unknown trade_status {:?}", other.chars().take(30).collect::<String>())),
        }
    }
}

impl fmt::Display for TradeStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Names a trade by the merchant's number, Alipay's number, or both.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct TradeRef {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub out_trade_no: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trade_no: Option<String>,
}

impl TradeRef {
    pub fn out_trade_no(no: impl Into<String>) -> Self {
        TradeRef { out_trade_no: Some(no.into()), trade_no: None }
    }

    pub fn trade_no(no: impl Into<String>) -> Self {
        TradeRef { out_trade_no: None, trade_no: Some(no.into()) }
    }
}

/// A payment channel code for `enable_pay_channels` / `disable_pay_channels`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum PayChannel {
    #[serde(rename = "balance")]
    Balance,
    #[serde(rename = "moneyFund")]
    MoneyFund,
    #[serde(rename = "coupon")]
    Coupon,
    #[serde(rename = "pcredit")]
    Pcredit,
    #[serde(rename = "pcreditpayInstallment")]
    PcreditInstallment,
    #[serde(rename = "creditCard")]
    CreditCard,
    #[serde(rename = "creditCardExpress")]
    CreditCardExpress,
    #[serde(rename = "creditCardCartoon")]
    CreditCardCartoon,
    #[serde(rename = "credit_group")]
    CreditGroup,
    #[serde(rename = "debitCardExpress")]
    DebitCardExpress,
    #[serde(rename = "mcard")]
    Mcard,
    #[serde(rename = "pcard")]
    Pcard,
    #[serde(rename = "promotion")]
    Promotion,
    #[serde(rename = "voucher")]
    Voucher,
    #[serde(rename = "point")]
    Point,
    #[serde(rename = "mdiscount")]
    Mdiscount,
    #[serde(rename = "bankPay")]
    BankPay,
}

impl PayChannel {
    pub const ALL: [PayChannel; 17] = [
        PayChannel::Balance,
        PayChannel::MoneyFund,
        PayChannel::Coupon,
        PayChannel::Pcredit,
        PayChannel::PcreditInstallment,
        PayChannel::CreditCard,
        PayChannel::CreditCardExpress,
        PayChannel::CreditCardCartoon,
        PayChannel::CreditGroup,
        PayChannel::DebitCardExpress,
        PayChannel::Mcard,
        PayChannel::Pcard,
        PayChannel::Promotion,
        PayChannel::Voucher,
        PayChannel::Point,
        PayChannel::Mdiscount,
        PayChannel::BankPay,
    ];

    pub const fn code(self) -> &'static str {
        match self {
            PayChannel::Balance => "balance",
            PayChannel::MoneyFund => "moneyFund",
            PayChannel::Coupon => "coupon",
            PayChannel::Pcredit => "pcredit",
            PayChannel::PcreditInstallment => "pcreditpayInstallment",
            PayChannel::CreditCard => "creditCard",
            PayChannel::CreditCardExpress => "creditCardExpress",
            PayChannel::CreditCardCartoon => "creditCardCartoon",
            PayChannel::CreditGroup => "credit_group",
            PayChannel::DebitCardExpress => "debitCardExpress",
            PayChannel::Mcard => "mcard",
            PayChannel::Pcard => "pcard",
            PayChannel::Promotion => "promotion",
            PayChannel::Voucher => "voucher",
            PayChannel::Point => "point",
            PayChannel::Mdiscount => "mdiscount",
            PayChannel::BankPay => "bankPay",
        }
    }

    pub fn from_code(code: &str) -> Option<PayChannel> {
        PayChannel::ALL.iter().copied().find(|c| c.code() == code)
    }
}

/// A comma-separated channel list as Alipay writes it (`"balance,pcredit"`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ChannelList(pub Vec<PayChannel>);

impl ChannelList {
    /// Parses a list; unknown codes are an error naming the code.
    pub fn parse(text: &str) -> Result<ChannelList, String> {
        text.split(',')
            .map(str::trim)
            .filter(|c| !c.is_empty())
            .map(|c| PayChannel::from_code(c).ok_or_else(|| format!("unknown pay channel {c:?}")))
            .collect::<Result<Vec<_>, _>>()
            .map(ChannelList)
    }

    pub fn contains(&self, c: PayChannel) -> bool {
        self.0.contains(&c)
    }
}

impl Serialize for ChannelList {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let joined: Vec<&str> = self.0.iter().map(|c| c.code()).collect();
        s.serialize_str(&joined.join(","))
    }
}

impl<'de> Deserialize<'de> for ChannelList {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        ChannelList::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// Huabei installment periods.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum HuabeiPeriods {
    #[serde(rename = "3")]
    Three,
    #[serde(rename = "6")]
    Six,
    #[serde(rename = "12")]
    Twelve,
}

impl HuabeiPeriods {
    pub const fn count(self) -> u32 {
        match self {
            HuabeiPeriods::Three => 3,
            HuabeiPeriods::Six => 6,
            HuabeiPeriods::Twelve => 12,
        }
    }

    pub fn from_count(n: u32) -> Option<Self> {
        match n {
            3 => Some(HuabeiPeriods::Three),
            6 => Some(HuabeiPeriods::Six),
            12 => Some(HuabeiPeriods::Twelve),
            _ => None,
        }
    }
}

/// Who pays the Huabei installment fee (`hb_fq_seller_percent`: 0 = buyer, 100 = seller).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum FeePayer {
    #[serde(rename = "0")]
    Buyer,
    #[serde(rename = "100")]
    Seller,
}

/// `extend_params`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ExtendParams {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hb_fq_num: Option<HuabeiPeriods>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hb_fq_seller_percent: Option<FeePayer>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sys_service_provider_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub card_type: Option<String>,
}

impl ExtendParams {
    pub fn huabei(periods: HuabeiPeriods, payer: FeePayer) -> Self {
        ExtendParams { hb_fq_num: Some(periods), hb_fq_seller_percent: Some(payer), ..Default::default() }
    }
}

/// One line of `goods_detail`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GoodsDetail {
    pub goods_id: String,
    pub goods_name: String,
    pub quantity: i64,
    pub price: AmountText,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub goods_category: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub categories_tree: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub show_url: Option<String>,
}

/// `timeout_express`: `1m` to `15d` in whole minutes, hours or days, or `1c` (midnight today).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TimeoutExpress {
    Minutes(u32),
    Hours(u32),
    Days(u32),
    /// `1c`: closes at 00:00 tonight (Asia/Shanghai).
    EndOfDay,
}

impl TimeoutExpress {
    /// The limit as a duration from the moment it starts counting (`EndOfDay` needs the clock; see
    /// [`TimeoutExpress::deadline`]).
    pub fn deadline(self, from: DateTime<Utc>) -> DateTime<Utc> {
        match self {
            TimeoutExpress::Minutes(m) => from + chrono::Duration::minutes(i64::from(m)),
            TimeoutExpress::Hours(h) => from + chrono::Duration::hours(i64::from(h)),
            TimeoutExpress::Days(d) => from + chrono::Duration::days(i64::from(d)),
            TimeoutExpress::EndOfDay => {
                let local = from.with_timezone(&crate::time::shanghai());
                let next = local.date_naive().succ_opt().and_then(|d| d.and_hms_opt(0, 0, 0));
                next.and_then(|n| n.and_local_timezone(crate::time::shanghai()).single())
                    .map(|d| d.with_timezone(&Utc))
                    .unwrap_or(from)
            }
        }
    }

    fn total_minutes(self) -> Option<u32> {
        match self {
            TimeoutExpress::Minutes(m) => Some(m),
            TimeoutExpress::Hours(h) => h.checked_mul(60),
            TimeoutExpress::Days(d) => d.checked_mul(1440),
            TimeoutExpress::EndOfDay => None,
        }
    }
}

impl fmt::Display for TimeoutExpress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TimeoutExpress::Minutes(m) => write!(f, "{m}m"),
            TimeoutExpress::Hours(h) => write!(f, "{h}h"),
            TimeoutExpress::Days(d) => write!(f, "{d}d"),
            TimeoutExpress::EndOfDay => f.write_str("1c"),
        }
    }
}

impl FromStr for TimeoutExpress {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || {
            format!("invalid timeout_express {:?} (1m to 15d, or 1c)", s.chars().take(20).collect::<String>())
        };
        if s == "1c" {
            return Ok(TimeoutExpress::EndOfDay);
        }
        let (num, unit) = s.split_at(s.len().saturating_sub(1));
        if num.is_empty() || !num.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        let n: u32 = num.parse().map_err(|_| bad())?;
        let t = match unit {
            "m" => TimeoutExpress::Minutes(n),
            "h" => TimeoutExpress::Hours(n),
            "d" => TimeoutExpress::Days(n),
            _ => return Err(bad()),
        };
        match t.total_minutes() {
            Some(m) if (1..=15 * 1440).contains(&m) => Ok(t),
            _ => Err(bad()),
        }
    }
}

impl Serialize for TimeoutExpress {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for TimeoutExpress {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?.parse().map_err(serde::de::Error::custom)
    }
}

/// An absolute time written as `yyyy-MM-dd HH:mm:ss` in Asia/Shanghai (`time_expire`,
/// `gmt_payment`, ...).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct AlipayTime(pub DateTime<Utc>);

impl Serialize for AlipayTime {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&crate::time::format_alipay(self.0))
    }
}

impl<'de> Deserialize<'de> for AlipayTime {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        // The wap model documents `yyyy-MM-dd HH:mm` for time_expire: accept it too.
        let parsed = crate::time::parse_alipay(&s)
            .or_else(|e| if s.len() == 16 { crate::time::parse_alipay(&format!("{s}:00")) } else { Err(e) });
        parsed.map(AlipayTime).map_err(serde::de::Error::custom)
    }
}

/// Fields shared by `page.pay`, `wap.pay` and `precreate` for the amount: `total_amount` in the
/// currency named by `trans_currency` (CNY when absent).
fn amount_fields(amount: Money) -> (AmountText, Option<Currency>) {
    let currency = (amount.currency() != Currency::Cny).then_some(amount.currency());
    (AmountText::from_money(amount), currency)
}

fn amount_in(text: &AmountText, trans_currency: Option<Currency>) -> Result<Money, MoneyError> {
    text.to_money(trans_currency.unwrap_or(Currency::Cny))
}

// ---------------------------------------------------------------------------------------------
// alipay.trade.page.pay / alipay.trade.wap.pay

/// `alipay.trade.page.pay`: the PC cashier.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PagePay {
    pub out_trade_no: String,
    pub total_amount: AmountText,
    pub subject: String,
    pub product_code: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub goods_detail: Vec<GoodsDetail>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub passback_params: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extend_params: Option<ExtendParams>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub goods_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_express: Option<TimeoutExpress>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_expire: Option<AlipayTime>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enable_pay_channels: Option<ChannelList>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disable_pay_channels: Option<ChannelList>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub qr_pay_mode: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub qrcode_width: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub integration_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trans_currency: Option<Currency>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub settle_currency: Option<Currency>,
    /// wap.pay only: where the buyer goes when quitting the cashier.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quit_url: Option<String>,
}

impl PagePay {
    pub const PRODUCT_CODE: &'static str = "FAST_INSTANT_TRADE_PAY";
    pub const WAP_PRODUCT_CODE: &'static str = "QUICK_WAP_WAY";

    /// A page payment of `amount` (its currency becomes `trans_currency` unless CNY).
    pub fn new(out_trade_no: impl Into<String>, amount: Money, subject: impl Into<String>) -> Self {
        let (total_amount, trans_currency) = amount_fields(amount);
        PagePay {
            out_trade_no: out_trade_no.into(),
            total_amount,
            subject: subject.into(),
            product_code: Self::PRODUCT_CODE.into(),
            body: None,
            goods_detail: Vec::new(),
            passback_params: None,
            extend_params: None,
            goods_type: None,
            timeout_express: None,
            time_expire: None,
            enable_pay_channels: None,
            disable_pay_channels: None,
            qr_pay_mode: None,
            qrcode_width: None,
            integration_type: None,
            trans_currency,
            settle_currency: None,
            quit_url: None,
        }
    }

    /// The amount with its currency.
    pub fn amount(&self) -> Result<Money, MoneyError> {
        amount_in(&self.total_amount, self.trans_currency)
    }

    /// Only these channels are offered. Clears any disable list: the two are mutually exclusive.
    pub fn enable_channels(mut self, channels: impl IntoIterator<Item = PayChannel>) -> Self {
        self.enable_pay_channels = Some(ChannelList(channels.into_iter().collect()));
        self.disable_pay_channels = None;
        self
    }

    /// Every channel but these is offered. Clears any enable list.
    pub fn disable_channels(mut self, channels: impl IntoIterator<Item = PayChannel>) -> Self {
        self.disable_pay_channels = Some(ChannelList(channels.into_iter().collect()));
        self.enable_pay_channels = None;
        self
    }

    pub fn huabei_installments(mut self, periods: HuabeiPeriods, payer: FeePayer) -> Self {
        let mut ext = self.extend_params.take().unwrap_or_default();
        ext.hb_fq_num = Some(periods);
        ext.hb_fq_seller_percent = Some(payer);
        self.extend_params = Some(ext);
        self
    }

    pub fn timeout(mut self, t: TimeoutExpress) -> Self {
        self.timeout_express = Some(t);
        self
    }

    /// Turns this into a `wap.pay` (mobile cashier) request.
    pub fn into_wap(self, quit_url: Option<String>) -> WapPay {
        WapPay(PagePay { product_code: Self::WAP_PRODUCT_CODE.into(), quit_url, ..self })
    }
}

impl PageCall for PagePay {
    const METHOD: &'static str = "alipay.trade.page.pay";
}

/// `alipay.trade.wap.pay`: the mobile cashier. Same fields as page.pay plus `quit_url`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct WapPay(pub PagePay);

impl PageCall for WapPay {
    const METHOD: &'static str = "alipay.trade.wap.pay";
}

// ---------------------------------------------------------------------------------------------
// alipay.trade.precreate

/// `alipay.trade.precreate`: a QR code the buyer scans.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Precreate {
    pub out_trade_no: String,
    pub total_amount: AmountText,
    pub subject: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub product_code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub goods_detail: Vec<GoodsDetail>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_express: Option<TimeoutExpress>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extend_params: Option<ExtendParams>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enable_pay_channels: Option<ChannelList>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disable_pay_channels: Option<ChannelList>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trans_currency: Option<Currency>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub settle_currency: Option<Currency>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub store_id: Option<String>,
}

impl Precreate {
    pub fn new(out_trade_no: impl Into<String>, amount: Money, subject: impl Into<String>) -> Self {
        let (total_amount, trans_currency) = amount_fields(amount);
        Precreate {
            out_trade_no: out_trade_no.into(),
            total_amount,
            subject: subject.into(),
            product_code: Some("QR_CODE_OFFLINE".into()),
            body: None,
            goods_detail: Vec::new(),
            timeout_express: None,
            extend_params: None,
            enable_pay_channels: None,
            disable_pay_channels: None,
            trans_currency,
            settle_currency: None,
            store_id: None,
        }
    }

    pub fn amount(&self) -> Result<Money, MoneyError> {
        amount_in(&self.total_amount, self.trans_currency)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PrecreateResponse {
    pub out_trade_no: String,
    pub qr_code: String,
}

impl ApiCall for Precreate {
    const METHOD: &'static str = "alipay.trade.precreate";
    // The same out_trade_no with the same parameters returns the same QR; with different ones it
    // is refused (ACQ.CONTEXT_INCONSISTENT). Repeating it can never create a second trade.
    const IDEMPOTENT: bool = true;
    type Response = PrecreateResponse;
}

// ---------------------------------------------------------------------------------------------
// alipay.trade.query

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Query {
    #[serde(flatten)]
    pub trade: TradeRef,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub query_options: Vec<String>,
}

impl Query {
    pub fn new(trade: TradeRef) -> Self {
        Query { trade, query_options: Vec::new() }
    }
}

/// One funding source of a payment (`fund_bill_list` in queries; camelCase `fundChannel` in
/// notifications).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FundBill {
    #[serde(alias = "fundChannel")]
    pub fund_channel: String,
    pub amount: AmountText,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueryResponse {
    pub trade_no: String,
    pub out_trade_no: String,
    pub trade_status: TradeStatus,
    pub total_amount: AmountText,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub buyer_logon_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub buyer_user_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub receipt_amount: Option<AmountText>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub buyer_pay_amount: Option<AmountText>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub send_pay_date: Option<AlipayTime>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fund_bill_list: Vec<FundBill>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trans_currency: Option<Currency>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub settle_currency: Option<Currency>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub settle_amount: Option<AmountText>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pay_currency: Option<Currency>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pay_amount: Option<AmountText>,
}

impl QueryResponse {
    pub fn amount(&self) -> Result<Money, MoneyError> {
        amount_in(&self.total_amount, self.trans_currency)
    }
}

impl ApiCall for Query {
    const METHOD: &'static str = "alipay.trade.query";
    const IDEMPOTENT: bool = true;
    type Response = QueryResponse;

    fn check_answer(&self, a: &QueryResponse) -> Result<(), ResponseError> {
        same_trade(&self.trade, Some(&a.out_trade_no), Some(&a.trade_no))
    }
}

// ---------------------------------------------------------------------------------------------
// alipay.trade.close / alipay.trade.cancel

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Close {
    #[serde(flatten)]
    pub trade: TradeRef,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operator_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CloseResponse {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trade_no: Option<String>,
    pub out_trade_no: String,
}

impl ApiCall for Close {
    const METHOD: &'static str = "alipay.trade.close";
    const IDEMPOTENT: bool = false;
    type Response = CloseResponse;

    fn check_answer(&self, a: &CloseResponse) -> Result<(), ResponseError> {
        same_trade(&self.trade, Some(&a.out_trade_no), a.trade_no.as_deref())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cancel {
    #[serde(flatten)]
    pub trade: TradeRef,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CancelResponse {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trade_no: Option<String>,
    pub out_trade_no: String,
    /// `Y`: the cancel must be retried.
    pub retry_flag: String,
    /// `close` (was unpaid), `refund` (was paid and is refunded), absent if there was no trade.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<String>,
}

impl ApiCall for Cancel {
    const METHOD: &'static str = "alipay.trade.cancel";
    const IDEMPOTENT: bool = false;
    type Response = CancelResponse;
}

// ---------------------------------------------------------------------------------------------
// alipay.trade.refund / alipay.trade.fastpay.refund.query

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Refund {
    #[serde(flatten)]
    pub trade: TradeRef,
    pub refund_amount: AmountText,
    /// Identifies this refund; required for partial refunds; the same value and amount is a safe
    /// retry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub out_request_no: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refund_reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refund_currency: Option<Currency>,
}

impl Refund {
    pub fn new(trade: TradeRef, amount: Money, out_request_no: impl Into<String>) -> Self {
        let (refund_amount, refund_currency) = amount_fields(amount);
        Refund {
            trade,
            refund_amount,
            out_request_no: Some(out_request_no.into()),
            refund_reason: None,
            refund_currency,
        }
    }

    pub fn amount(&self) -> Result<Money, MoneyError> {
        amount_in(&self.refund_amount, self.refund_currency)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefundResponse {
    pub trade_no: String,
    pub out_trade_no: String,
    /// `Y` if money moved in this call; `N` on a repeat of a refund already done.
    pub fund_change: String,
    /// Total refunded so far on this trade.
    pub refund_fee: AmountText,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub buyer_logon_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gmt_refund_pay: Option<AlipayTime>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refund_currency: Option<Currency>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub send_back_fee: Option<AmountText>,
}

impl ApiCall for Refund {
    const METHOD: &'static str = "alipay.trade.refund";
    const IDEMPOTENT: bool = true;
    type Response = RefundResponse;

    fn check_answer(&self, a: &RefundResponse) -> Result<(), ResponseError> {
        same_trade(&self.trade, Some(&a.out_trade_no), Some(&a.trade_no))
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefundQuery {
    #[serde(flatten)]
    pub trade: TradeRef,
    pub out_request_no: String,
    /// Extra fields to answer: `gmt_refund_pay` (when the refund was made) is answered only when
    /// asked for here.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub query_options: Vec<String>,
}

impl RefundQuery {
    /// Asks about refund `out_request_no` of a trade, with the time it was made.
    pub fn with_time(trade: TradeRef, out_request_no: impl Into<String>) -> Self {
        RefundQuery {
            trade,
            out_request_no: out_request_no.into(),
            query_options: vec!["gmt_refund_pay".into()],
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct RefundQueryResponse {
    /// Absent (with everything else) when no such refund exists.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub out_request_no: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub out_trade_no: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trade_no: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refund_amount: Option<AmountText>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total_amount: Option<AmountText>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refund_reason: Option<String>,
    /// `REFUND_SUCCESS`, `REFUND_PROCESSING` or `REFUND_FAIL`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refund_status: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gmt_refund_pay: Option<AlipayTime>,
}

impl ApiCall for RefundQuery {
    const METHOD: &'static str = "alipay.trade.fastpay.refund.query";
    const IDEMPOTENT: bool = true;
    type Response = RefundQueryResponse;

    fn check_answer(&self, a: &RefundQueryResponse) -> Result<(), ResponseError> {
        same_trade(&self.trade, a.out_trade_no.as_deref(), a.trade_no.as_deref())?;
        match a.out_request_no.as_deref() {
            Some(no) if no != self.out_request_no => Err(ResponseError::Mismatch {
                field: "out_request_no",
                asked: self.out_request_no.clone(),
                answered: no.to_owned(),
            }),
            _ => Ok(()),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// alipay.trade.customs.declare

/// The orderer as recorded by the merchant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BuyerInfo {
    pub buyer_name: String,
    pub buyer_cert_no: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CustomsDeclare {
    /// Declaration serial, 6 to 32 of `[0-9A-Za-z_-]`.
    pub out_request_no: String,
    pub trade_no: String,
    pub merchant_customs_code: String,
    pub merchant_customs_name: String,
    /// CNY yuan.
    pub amount: AmountText,
    pub customs_place: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_split: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sub_out_biz_no: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub buyer_info: Option<BuyerInfo>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CustomsDeclareResponse {
    pub trade_no: String,
    pub alipay_declare_no: String,
    /// `T` when the orderer's name and ID number equal the payer's; only on the first push.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity_check: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pay_code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pay_transaction_id: Option<String>,
    /// In fen (CNY cents), as Alipay reports it here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total_amount: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub currency: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ver_dept: Option<String>,
}

impl CustomsDeclareResponse {
    /// `Some(true)` if Alipay confirmed orderer = payer, `Some(false)` if not, `None` on a re-push.
    pub fn identity_matches(&self) -> Option<bool> {
        match self.identity_check.as_deref() {
            Some("T") => Some(true),
            Some("F") => Some(false),
            _ => None,
        }
    }

    /// `total_amount` (fen) as money.
    pub fn total(&self) -> Option<Money> {
        let fen = self.total_amount.as_deref()?;
        if fen.is_empty() || !fen.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        fen.parse::<i64>().ok().map(|f| Money::from_minor(f, Currency::Cny))
    }
}

impl ApiCall for CustomsDeclare {
    const METHOD: &'static str = "alipay.trade.customs.declare";
    // A re-push with the same out_request_no updates the same declaration.
    const IDEMPOTENT: bool = true;
    type Response = CustomsDeclareResponse;
}

// alipay.trade.pay (scanning the buyer's payment code) / alipay.trade.create

/// A payment taken by scanning the buyer's payment code (`scene=bar_code`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BarcodePay {
    pub out_trade_no: String,
    pub scene: String,
    pub auth_code: String,
    pub total_amount: AmountText,
    pub subject: String,
}

impl BarcodePay {
    pub fn new(
        out_trade_no: impl Into<String>,
        auth_code: impl Into<String>,
        amount: Money,
        subject: impl Into<String>,
    ) -> Self {
        BarcodePay {
            out_trade_no: out_trade_no.into(),
            scene: "bar_code".into(),
            auth_code: auth_code.into(),
            total_amount: AmountText::from_money(amount),
            subject: subject.into(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BarcodePayResponse {
    pub trade_no: String,
    pub out_trade_no: String,
    pub total_amount: AmountText,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub buyer_logon_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gmt_payment: Option<String>,
    #[serde(default)]
    pub fund_bill_list: Vec<FundBill>,
}

impl ApiCall for BarcodePay {
    const METHOD: &'static str = "alipay.trade.pay";
    // Repeating it could take the money twice: query instead.
    const IDEMPOTENT: bool = false;
    type Response = BarcodePayResponse;

    fn check_answer(&self, a: &BarcodePayResponse) -> Result<(), ResponseError> {
        same_trade(&TradeRef::out_trade_no(self.out_trade_no.clone()), Some(&a.out_trade_no), None)
    }
}

/// A trade for a known buyer, who then pays it in the Alipay app.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TradeCreate {
    pub out_trade_no: String,
    pub total_amount: AmountText,
    pub subject: String,
    pub buyer_id: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TradeCreateResponse {
    pub trade_no: String,
    pub out_trade_no: String,
}

impl ApiCall for TradeCreate {
    const METHOD: &'static str = "alipay.trade.create";
    const IDEMPOTENT: bool = true;
    type Response = TradeCreateResponse;

    fn check_answer(&self, a: &TradeCreateResponse) -> Result<(), ResponseError> {
        same_trade(
            &TradeRef::out_trade_no(self.out_trade_no.clone()),
            Some(&a.out_trade_no),
            Some(&a.trade_no),
        )
    }
}

// alipay.data.dataservice.bill.downloadurl.query

/// Asks where to download a bill: `bill_type` `trade` (the trades and refunds of the merchant's
/// payments), `bill_date` `yyyy-MM-dd` (a day, from the day before today back) or `yyyy-MM`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BillDownloadUrlQuery {
    pub bill_type: String,
    pub bill_date: String,
}

impl BillDownloadUrlQuery {
    /// The trade bill of one day (Asia/Shanghai).
    pub fn trade_day(day: chrono::NaiveDate) -> Self {
        BillDownloadUrlQuery { bill_type: "trade".into(), bill_date: day.format("%Y-%m-%d").to_string() }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BillDownloadUrlQueryResponse {
    /// Valid for 30 seconds.
    pub bill_download_url: String,
    /// `EMPTY_DATA_WITH_BILL_FILE` when the day had no business (the file is then empty).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bill_file_code: Option<String>,
}

impl ApiCall for BillDownloadUrlQuery {
    const METHOD: &'static str = "alipay.data.dataservice.bill.downloadurl.query";
    const IDEMPOTENT: bool = true;
    type Response = BillDownloadUrlQueryResponse;
}

// alipay.open.app.alipaycert.download (certificate mode: Alipay rotated its certificate)

/// Asks for the Alipay public-key certificate with this SN.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlipayCertDownload {
    pub alipay_cert_sn: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlipayCertDownloadResponse {
    /// The certificate file (PEM text), base64-encoded.
    pub alipay_cert_content: String,
}

impl AlipayCertDownloadResponse {
    /// The certificate file's PEM text.
    pub fn certificate_pem(&self) -> Result<String, ResponseError> {
        use base64::Engine as _;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(self.alipay_cert_content.trim().as_bytes())
            .map_err(|_| ResponseError::BadNode("alipay_cert_content is not base64".into()))?;
        String::from_utf8(bytes)
            .map_err(|_| ResponseError::BadNode("alipay_cert_content is not PEM text".into()))
    }
}

impl ApiCall for AlipayCertDownload {
    const METHOD: &'static str = "alipay.open.app.alipaycert.download";
    const IDEMPOTENT: bool = true;
    type Response = AlipayCertDownloadResponse;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_pay_biz_content() {
        let p = PagePay::new("T1", Money::from_minor(8888, Currency::Cny), "测试商品")
            .enable_channels([PayChannel::Balance, PayChannel::PcreditInstallment])
            .huabei_installments(HuabeiPeriods::Six, FeePayer::Seller)
            .timeout(TimeoutExpress::Minutes(30));
        let json = serde_json::to_string(&p).unwrap();
        assert_eq!(
            json,
            r#"{"out_trade_no":"T1","total_amount":"88.88","subject":"测试商品","product_code":"FAST_INSTANT_TRADE_PAY","extend_params":{"hb_fq_num":"6","hb_fq_seller_percent":"100"},"timeout_express":"30m","enable_pay_channels":"balance,pcreditpayInstallment"}"#
        );
        let back: PagePay = serde_json::from_str(&json).unwrap();
        assert_eq!(back, p);
        assert_eq!(back.amount(), Ok(Money::from_minor(8888, Currency::Cny)));
    }

    #[test]
    fn foreign_currency_goes_to_trans_currency() {
        let p = PagePay::new("T2", Money::from_minor(1500, Currency::Jpy), "x");
        let json = serde_json::to_string(&p).unwrap();
        assert!(json.contains(r#""total_amount":"1500""#), "{json}");
        assert!(json.contains(r#""trans_currency":"JPY""#), "{json}");
        assert_eq!(p.amount(), Ok(Money::from_minor(1500, Currency::Jpy)));
    }

    #[test]
    fn enable_and_disable_are_exclusive() {
        let p = PagePay::new("T", Money::from_minor(1, Currency::Cny), "x")
            .enable_channels([PayChannel::Balance])
            .disable_channels([PayChannel::Pcredit]);
        assert_eq!(p.enable_pay_channels, None);
        assert!(ChannelList::parse("balance,nope").is_err());
    }

    #[test]
    fn timeout_express_rules() {
        for ok in ["1m", "90m", "2h", "15d", "1c"] {
            assert!(ok.parse::<TimeoutExpress>().is_ok(), "{ok}");
        }
        for bad in ["0m", "1.5h", "16d", "m", "", "10s", "-1m", "21601m"] {
            assert!(bad.parse::<TimeoutExpress>().is_err(), "{bad}");
        }
        let from = crate::time::parse_alipay("2026-01-01 20:00:00").unwrap();
        assert_eq!(
            crate::time::format_alipay(TimeoutExpress::EndOfDay.deadline(from)),
            "2026-01-02 00:00:00"
        );
    }

    #[test]
    fn query_response_with_fund_bills() {
        let node = r#"{"code":"10000","msg":"Success","trade_no":"2024","out_trade_no":"T1","trade_status":"TRADE_SUCCESS","total_amount":"88.88","fund_bill_list":[{"fund_channel":"ALIPAYACCOUNT","amount":"88.88"}],"send_pay_date":"2024-01-01 12:00:00"}"#;
        let r: QueryResponse = serde_json::from_str(node).unwrap();
        assert!(r.trade_status.is_paid());
        assert_eq!(r.fund_bill_list.len(), 1);
        assert!(serde_json::from_str::<QueryResponse>(&node.replace("TRADE_SUCCESS", "WEIRD")).is_err());
        assert!(
            serde_json::from_str::<QueryResponse>(&node.replace("\"88.88\",\"fund", "\"8.8.8\",\"fund"))
                .is_err()
        );
    }

    #[test]
    fn customs_fen() {
        let r = CustomsDeclareResponse {
            trade_no: "t".into(),
            alipay_declare_no: "d".into(),
            identity_check: Some("F".into()),
            pay_code: None,
            pay_transaction_id: None,
            total_amount: Some("12345".into()),
            currency: None,
            ver_dept: None,
        };
        assert_eq!(r.total(), Some(Money::from_minor(12345, Currency::Cny)));
        assert_eq!(r.identity_matches(), Some(false));
    }
}
