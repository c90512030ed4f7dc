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
    /// Accounts registered before the address gets 429.
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
                Some(ConnectInfo(peer)) => l.client_key(peer.ip(), &parts.headers),
                None => "unknown".to_owned(),
            }
        })))
    }
}

impl ClientKey {
    /// Refuses with 429 when the client already had its limit of `event` in the window.
    pub async fn check(&self, shop: &Arc<Shop>, event: AddressEvent) -> Result<(), ApiError> {
        let (Some(limits), Some(key)) = (&shop.address_limits, &self.0) else { return Ok(()) };
        let window = limits.window();
        let since = shop.now() - window;
        let k = key.clone();
        let seen = shop.blocking(move |s| s.address_events_since(event, &k, since)).await?;
        if seen >= i64::from(limits.limit(event)) {
            tracing::warn!(address = %key, event = event.as_str(), seen, "address limit reached");
            return Err(ApiError::rate_limited(u32::try_from(window.num_seconds()).unwrap_or(3600)));
        }
        Ok(())
    }

    /// Counts one `event` against the client.
    pub async fn record(&self, shop: &Arc<Shop>, event: AddressEvent) -> Result<(), ApiError> {
        let Some(key) = self.0.clone() else { return Ok(()) };
        let now = shop.now();
        shop.blocking(move |s| s.record_address_event(event, &key, now)).await
    }
}

/// The client's address: the peer, unless the peer is a trusted proxy, in which case the rightmost
/// `X-Forwarded-For` entry that is not itself a trusted proxy (entries left of it were written by
/// whoever sent the request and prove nothing). Unreadable headers leave the peer's address.
pub fn client_address(peer: IpAddr, headers: &HeaderMap, trusted: &[IpAddr]) -> IpAddr {
    let peer = canonical(peer);
    if !trusted.iter().any(|t| canonical(*t) == peer) {
        return peer;
    }
    let mut chain: Vec<IpAddr> = Vec::new();
    for value in headers.get_all("x-forwarded-for") {
        let Ok(text) = value.to_str() else { return peer };
        for part in text.split(',') {
            match parse_entry(part.trim()) {
                Some(ip) => chain.push(canonical(ip)),
                None => return peer,
            }
        }
    }
    chain.into_iter().rev().find(|ip| !trusted.iter().any(|t| canonical(*t) == *ip)).unwrap_or(peer)
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
        // A proxy without the header, an unreadable entry or one that is all proxies: the peer.
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
        assert_eq!(AddressLimits { window_minutes: 0, ..l.clone() }.window(), chrono::Duration::minutes(1));
        assert_eq!(AddressLimits { window_minutes: 100_000, ..l }.window(), chrono::Duration::days(1));
    }
}
