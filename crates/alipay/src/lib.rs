//! # haitao-alipay
//!
//! Alipay's OpenAPI v2 protocol as a library: the conversation a merchant, a client or a gateway has
//! with Alipay, byte for byte.
//!
//! - [`keys`], [`sign`]: RSA2 (SHA256withRSA) and legacy RSA (SHA1withRSA) over keys in every form the
//!   Alipay console and key tools produce.
//! - [`cert`]: public-key certificate mode: certificate serial numbers as the SDKs compute them,
//!   Alipay's certificates by SN, rotated certificates checked against the root.
//! - [`encrypt`]: AES content encryption (`encrypt_type=AES`).
//! - [`params`]: parsing form bodies and query strings exactly once; the canonical strings that are
//!   signed (request rule, and the V1/V2 rules of notifications).
//! - [`response`]: cutting the exact `*_response` node out of a response body and verifying it.
//! - [`bill`]: the daily trade bill (a zip of GBK CSV in Alipay's layout), written and read.
//! - [`biz`]: reading `biz_content` as SDKs send it (amounts as JSON numbers, never through floats).
//! - [`api`]: typed `biz_content` and responses of the trade APIs.
//! - [`money`], [`time`]: integer minor units with ISO 4217 currencies; Asia/Shanghai timestamps.
//! - [`fx`]: converting foreign amounts to CNY (one rounding rule) and the demo exchange table.
//! - [`client`]: an async client that separates definite failures from unknown outcomes.
//! - [`v3`]: OpenAPI v3 (REST paths, JSON, the `Authorization` and `alipay-signature` headers);
//!   [`client::AlipayClient::execute_v3`] calls the same typed APIs through it.
//! - [`inbound`]: verified notifications and return redirects, matched against the expected order.
//!
//! Clocks and identifier generators are injected ([`time::Clock`], [`ids::IdGen`]) so every test is
//! deterministic.

pub mod api;
pub mod bill;
pub mod biz;
pub mod cert;
pub mod client;
pub mod encrypt;
pub mod fx;
pub mod ids;
pub mod inbound;
pub mod keys;
mod legacy_sha1;
pub mod money;
pub mod params;
pub mod request;
pub mod response;
pub mod sign;
pub mod status;
pub mod time;
pub mod v3;

pub use api::{ApiCall, PageCall, TradeStatus};
pub use client::{AlipayClient, CallError, DownloadError, RetryPolicy, UnknownCause};
pub use inbound::{Expected, InboundVerifier, NOTIFY_ACK, Rejection};
pub use keys::{KeyError, PrivateKey, PublicKey};
pub use money::{AmountText, Currency, Money, MoneyError};
pub use params::{Charset, ParamError, Params};
pub use request::{AppConfig, Callbacks, Protocol, RequestError, SignedRequest};
pub use sign::{SignType, Signer, Verifier, VerifyError};
pub use status::{Certainty, GatewayError, Status};

/// Production gateway.
pub const PRODUCTION_GATEWAY: &str = "https://openapi.alipay.com/gateway.do";
/// Alipay's own sandbox gateway.
pub const ALIPAY_SANDBOX_GATEWAY: &str = "https://openapi-sandbox.dl.alipaydev.com/gateway.do";
