//! Per-address limits on sign-in failures and registrations, against one machine trying many
//! phone numbers' passwords or registering accounts in bulk. The per-phone sign-in limit
//! (`auth::LOGIN_ATTEMPTS`) stops guessing one account's password; these stop spraying many.
//!
//! The address is the connection's peer, or — when the peer is one of the operator's reverse
//! proxies — the address that proxy appended to `X-Forwarded-For`. A client that is not behind a
//! trusted proxy cannot choose its own address by sending the header. IPv6 addresses count by their
//! /64 network, which one subscriber usually holds whole.

use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::HeaderMap;
use axum::http::request::Parts;
use serde::Deserialize;

use crate::error::ApiError;
use crate::state::Shop;

/// What is limited per address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddressEvent {
    LoginFailure,
    Registration,
}

impl AddressEvent {
    pub fn as_str(self) -> &'static str {
        match self {
            AddressEvent::LoginFailure => "login_failure",
            AddressEvent::Registration => "registration",
        }
    }
}

/// The limits, per client address and per `window_minutes`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AddressLimits {
    /// Failed sign-ins (any phone numbers) before the address gets 429 for the rest of the window.
    pub login_failures: u32,
    /// Registration attempts that pass validation (a number already taken counts) before the
    /// address gets 429.
    pub registrations: u32,
    /// At most a day (1,440).
    pub window_minutes: u32,
    /// The reverse proxies in front of the shop: only their `X-Forwarded-For` is believed.
    pub trusted_proxies: Vec<IpAddr>,
}

impl Default for AddressLimits {
    fn default() -> Self {
        AddressLimits {
            login_failures: 30,
            registrations: 10,
            window_minutes: 60,
            trusted_proxies: Vec::new(),
        }
    }
}

impl AddressLimits {
    /// The window, from one minute to a day (older events are forgotten).
    pub fn window(&self) -> chrono::Duration {
        chrono::Duration::minutes(i64::from(self.window_minutes.clamp(1, 24 * 60)))
    }

    /// Refuses limits that would refuse everyone (a 0 meant as "off": use no limits instead).
    pub fn validate(&self) -> Result<(), String> {
        if self.login_failures == 0 || self.registrations == 0 {
            return Err("address_limits: login_failures and registrations must be at least 1 \
                        (turn the limits off with --no-address-limits)"
                .into());
        }
        Ok(())
    }

    pub fn limit(&self, event: AddressEvent) -> u32 {
        match event {
            AddressEvent::LoginFailure => self.login_failures,
            AddressEvent::Registration => self.registrations,
        }
    }

    /// The key a request counts under: its client's address (see the module documentation).
    pub fn client_key(&self, peer: IpAddr, headers: &HeaderMap) -> String {
        key(client_address(peer, headers, &self.trusted_proxies))
    }
}

/// The key a request's client counts under when the shop has address limits (`None` when it has
/// none). A request that reached the router without a connection's address counts as "unknown".
#[derive(Debug, Clone)]
pub struct ClientKey(Option<String>);

impl FromRequestParts<Arc<Shop>> for ClientKey {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, shop: &Arc<Shop>) -> Result<Self, Self::Rejection> {
        Ok(ClientKey(shop.address_limits.as_ref().map(|l| {
            match parts.extensions.get::<ConnectInfo<SocketAddr>>() {
                Some(ConnectInfo(peer)) => {
                    warn_if_proxy_untrusted(l, peer.ip(), &parts.headers);
                    l.client_key(peer.ip(), &parts.headers)
                }
                None => "unknown".to_owned(),
            }
        })))
    }
}

/// Says once when a nearby machine (loopback or a private network) forwards requests with
/// `X-Forwarded-For` but is not a trusted proxy: every client behind it then counts as one.
fn warn_if_proxy_untrusted(limits: &AddressLimits, peer: IpAddr, headers: &HeaderMap) {
    static WARNED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    let peer = canonical(peer);
    let nearby = peer.is_loopback() || matches!(peer, IpAddr::V4(v4) if v4.is_private());
    if nearby
        && headers.contains_key("x-forwarded-for")
        && !limits.trusted_proxies.iter().any(|t| canonical(*t) == peer)
        && !WARNED.swap(true, std::sync::atomic::Ordering::Relaxed)
    {
        tracing::warn!(
            %peer,
            "requests arrive through a proxy that is not trusted: every client behind it counts as \
             one address for the sign-in and registration limits; name it with --trusted-proxy"
        );
    }
}

impl ClientKey {
    /// Counts one `event` against the client before the work it limits (so simultaneous requests
    /// cannot all slip past), or refuses with 429 when the client already had its limit in the
    /// window; `Retry-After` is when the oldest of those events leaves the window.
    pub async fn reserve(&self, shop: &Arc<Shop>, event: AddressEvent) -> Result<Counted, ApiError> {
        let (Some(limits), Some(key)) = (&shop.address_limits, &self.0) else { return Ok(Counted(None)) };
        let (window, limit, now) = (limits.window(), limits.limit(event), shop.now());
        let k = key.clone();
        match shop.blocking(move |s| s.reserve_address_event(event, &k, now - window, limit, now)).await? {
            Ok(id) => Ok(Counted(Some(id))),
            Err(oldest) => {
                tracing::warn!(address = %key, event = event.as_str(), "address limit reached");
                // Whole seconds, rounded up: a client that waits that long is let in.
                let ms = (oldest + window - now).num_milliseconds();
                let wait = (ms + 999).div_euclid(1000).max(1);
                Err(ApiError::rate_limited(u32::try_from(wait).unwrap_or(u32::MAX)))
            }
        }
    }
}

/// One event counted against a client; `undo` takes it back when it did not happen after all.
#[derive(Debug)]
#[must_use]
pub struct Counted(Option<i64>);

impl Counted {
    pub async fn undo(self, shop: &Arc<Shop>) -> Result<(), ApiError> {
        let Some(id) = self.0 else { return Ok(()) };
        shop.blocking(move |s| s.forget_address_event(id)).await
    }
}

/// The client's address: the peer, unless the peer is a trusted proxy, in which case the
/// `X-Forwarded-For` entries are read from the right — the ones the trusted proxies appended —
/// and the first that is not a trusted proxy is the client. Nothing left of it is read: those
/// entries were written by whoever sent the request. An unreadable entry where the client should
/// be, or a header naming only proxies, leaves the peer's address.
pub fn client_address(peer: IpAddr, headers: &HeaderMap, trusted: &[IpAddr]) -> IpAddr {
    let peer = canonical(peer);
    let is_trusted = |ip: IpAddr| trusted.iter().any(|t| canonical(*t) == ip);
    if !is_trusted(peer) {
        return peer;
    }
    let lines: Vec<_> = headers.get_all("x-forwarded-for").iter().collect();
    for line in lines.into_iter().rev() {
        let Ok(text) = line.to_str() else { return peer };
        for part in text.rsplit(',') {
            match parse_entry(part.trim()).map(canonical) {
                Some(ip) if is_trusted(ip) => {}
                Some(ip) => return ip,
                None => return peer,
            }
        }
    }
    peer
}

/// One `X-Forwarded-For` entry: an address, possibly with a port (`1.2.3.4:5`, `[::1]:5`).
fn parse_entry(s: &str) -> Option<IpAddr> {
    s.parse::<IpAddr>().ok().or_else(|| s.parse::<SocketAddr>().ok().map(|a| a.ip()))
}

/// IPv4-mapped IPv6 addresses are their IPv4 address.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// IPv4 addresses count alone; IPv6 ones by their /64 network.
fn key(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => {
            let s = v6.segments();
            format!("{}/64", Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(values: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append("x-forwarded-for", HeaderValue::from_str(v).unwrap());
        }
        h
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn only_a_trusted_proxy_names_the_client() {
        let proxy = [ip("10.0.0.2")];
        // Straight from the client: its own header is ignored.
        assert_eq!(client_address(ip("203.0.113.7"), &headers(&["198.51.100.1"]), &proxy), ip("203.0.113.7"));
        assert_eq!(client_address(ip("203.0.113.7"), &headers(&["198.51.100.1"]), &[]), ip("203.0.113.7"));
        // Through the proxy: the entry the proxy appended, not what the client put before it.
        assert_eq!(
            client_address(ip("10.0.0.2"), &headers(&["198.51.100.1, 203.0.113.7"]), &proxy),
            ip("203.0.113.7")
        );
        // Two trusted proxies in a row; the header split over two lines; a port on an entry.
        let two = [ip("10.0.0.2"), ip("10.0.0.3")];
        assert_eq!(
            client_address(ip("10.0.0.2"), &headers(&["1.1.1.1, 203.0.113.7:4711", "10.0.0.3"]), &two),
            ip("203.0.113.7")
        );
        assert_eq!(
            client_address(ip("10.0.0.2"), &headers(&["[2001:db8::1]:443"]), &proxy),
            ip("2001:db8::1")
        );
        // Whatever the client wrote left of the proxy's entry is never read, garbage included: it
        // cannot move the client into another count.
        assert_eq!(
            client_address(ip("10.0.0.2"), &headers(&["nonsense, 203.0.113.7"]), &proxy),
            ip("203.0.113.7")
        );
        let mut raw = HeaderMap::new();
        raw.append("x-forwarded-for", HeaderValue::from_bytes(b"\xff\xfe").unwrap());
        raw.append("x-forwarded-for", HeaderValue::from_static("203.0.113.7"));
        assert_eq!(client_address(ip("10.0.0.2"), &raw, &proxy), ip("203.0.113.7"));
        // A proxy without the header, an unreadable entry where the client should be, or a header
        // naming only proxies: the peer.
        assert_eq!(client_address(ip("10.0.0.2"), &HeaderMap::new(), &proxy), ip("10.0.0.2"));
        assert_eq!(client_address(ip("10.0.0.2"), &headers(&["1.2.3.4, nonsense"]), &proxy), ip("10.0.0.2"));
        assert_eq!(client_address(ip("10.0.0.2"), &headers(&["10.0.0.3"]), &two), ip("10.0.0.2"));
        let mut raw = HeaderMap::new();
        raw.append("x-forwarded-for", HeaderValue::from_bytes(b"\xff\xfe").unwrap());
        assert_eq!(client_address(ip("10.0.0.2"), &raw, &proxy), ip("10.0.0.2"));
        // A proxy seen over IPv6 as an IPv4-mapped address is still that proxy.
        assert_eq!(
            client_address(ip("::ffff:10.0.0.2"), &headers(&["203.0.113.7"]), &proxy),
            ip("203.0.113.7")
        );
    }

    #[test]
    fn ipv6_counts_by_network() {
        let l = AddressLimits::default();
        let none = HeaderMap::new();
        assert_eq!(l.client_key(ip("2001:db8:1:2:aaaa::1"), &none), "2001:db8:1:2::/64");
        assert_eq!(
            l.client_key(ip("2001:db8:1:2:bbbb::9"), &none),
            l.client_key(ip("2001:db8:1:2::5"), &none)
        );
        assert_ne!(l.client_key(ip("2001:db8:1:3::1"), &none), l.client_key(ip("2001:db8:1:2::1"), &none));
        assert_eq!(l.client_key(ip("::ffff:198.51.100.4"), &none), "198.51.100.4");
        assert_eq!(l.client_key(ip("198.51.100.4"), &none), "198.51.100.4");
    }

    #[test]
    fn limits_read_from_configuration() {
        let l: AddressLimits =
            serde_json::from_str(r#"{"registrations": 3, "trusted_proxies": ["10.0.0.2"]}"#).unwrap();
        assert_eq!(l.registrations, 3);
        assert_eq!(l.login_failures, AddressLimits::default().login_failures);
        assert_eq!(l.trusted_proxies, [ip("10.0.0.2")]);
        assert!(serde_json::from_str::<AddressLimits>(r#"{"registration": 3}"#).is_err(), "a misspelt key");
        assert!(l.validate().is_ok());
        assert!(AddressLimits { login_failures: 0, ..l.clone() }.validate().is_err());
        assert!(AddressLimits { registrations: 0, ..l.clone() }.validate().is_err());
        assert_eq!(AddressLimits { window_minutes: 0, ..l.clone() }.window(), chrono::Duration::minutes(1));
        assert_eq!(AddressLimits { window_minutes: 100_000, ..l }.window(), chrono::Duration::days(1));
    }
}
