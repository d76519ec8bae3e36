//! The one header-rewrite plan of the proxy, for requests going up and
//! responses coming back: hop-by-hop headers out, the edge's own in.
//! Framing (`Content-Length`, `Transfer-Encoding`) is hyper's business on
//! both legs: it parsed the client's message and frames what it sends from
//! the body it is given, so no rewrite here can change where a message
//! ends.

use std::net::IpAddr;

use axum::http::{HeaderMap, HeaderName, HeaderValue, header};
use ipnet::IpNet;

const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
const X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
const TRACEPARENT: HeaderName = HeaderName::from_static("traceparent");

/// Hop-by-hop headers of RFC 9110 §7.6.1 (plus the non-standard
/// `Keep-Alive` and `Proxy-Connection`): meaningful for one connection
/// only, never forwarded.
pub const HOP_BY_HOP: [HeaderName; 9] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    header::PROXY_AUTHENTICATE,
    header::PROXY_AUTHORIZATION,
    HeaderName::from_static("proxy-connection"),
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
];

/// Headers a `Connection` option may never remove: they frame or address
/// the message, and hyper has already acted on them.
const NOT_CONNECTION_OPTIONS: [HeaderName; 3] = [
    header::CONTENT_LENGTH,
    header::TRANSFER_ENCODING,
    header::HOST,
];

/// The names a message's `Connection` headers list.
fn connection_options(headers: &HeaderMap) -> impl Iterator<Item = &str> {
    headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|name| !name.is_empty())
}

/// Whether a request's `Connection` header names a framing or addressing
/// header: a request-smuggling attempt, refused with 400 at the edge.
pub fn names_framing_header(headers: &HeaderMap) -> bool {
    connection_options(headers).any(|name| {
        NOT_CONNECTION_OPTIONS
            .iter()
            .any(|h| h.as_str().eq_ignore_ascii_case(name))
    })
}

/// Removes hop-by-hop headers and the options `Connection` names (never
/// a framing header: those are hyper's).
pub fn strip_hop_by_hop(headers: &mut HeaderMap) {
    if !headers.contains_key(header::CONNECTION)
        && !HOP_BY_HOP.iter().any(|name| headers.contains_key(name))
    {
        return;
    }
    let listed: Vec<HeaderName> = connection_options(headers)
        .filter_map(|name| HeaderName::from_bytes(name.as_bytes()).ok())
        .filter(|name| !NOT_CONNECTION_OPTIONS.contains(name))
        .collect();
    for name in listed {
        headers.remove(name);
    }
    for name in &HOP_BY_HOP {
        headers.remove(name);
    }
}

/// Which peers may tell the gateway who the client is.
#[derive(Clone, Debug, Default)]
pub struct TrustedProxies(Vec<IpNet>);

impl TrustedProxies {
    /// Parses CIDRs (`10.0.0.0/8`) or plain addresses.
    pub fn parse(list: &[String]) -> Result<Self, String> {
        list.iter()
            .map(|entry| {
                let entry = entry.trim();
                entry
                    .parse::<IpNet>()
                    .or_else(|_| entry.parse::<IpAddr>().map(IpNet::from))
                    .map_err(|_| format!("gateway.trusted_proxies: {entry:?} is not a CIDR"))
            })
            .collect::<Result<_, _>>()
            .map(Self)
    }

    /// Whether `peer` is one of them.
    pub fn trusts(&self, peer: IpAddr) -> bool {
        let peer = match peer {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(peer, IpAddr::V4),
            v4 => v4,
        };
        self.0.iter().any(|net| net.contains(&peer))
    }
}

/// Who is on the other end of a client connection, worked out once per
/// connection rather than per request.
#[derive(Clone, Debug)]
pub struct Peer {
    /// The address.
    pub addr: std::net::SocketAddr,
    /// Its IP as text (`X-Forwarded-For`, rate-limit keys).
    pub ip: HeaderValue,
    /// Whether it is a trusted proxy.
    pub trusted: bool,
}

impl Peer {
    /// The peer at `addr`, trusted when `trusted` names it.
    pub fn new(addr: std::net::SocketAddr, trusted: &TrustedProxies) -> Self {
        let ip = HeaderValue::from_str(&addr.ip().to_string())
            .unwrap_or_else(|_| HeaderValue::from_static("unknown"));
        Self {
            addr,
            ip,
            trusted: trusted.trusts(addr.ip()),
        }
    }

    /// The IP as text.
    pub fn ip_text(&self) -> &str {
        self.ip.to_str().unwrap_or("unknown")
    }
}

/// Sets `X-Forwarded-For/Proto/Host` and `traceparent` on a request from
/// `peer`. What a client sent in the `X-Forwarded-*` headers is kept only
/// when `peer` is a trusted proxy; otherwise the gateway speaks for itself
/// (a client cannot choose the host that pagination links name).
pub fn set_forwarded(headers: &mut HeaderMap, peer: &Peer, host: Option<HeaderValue>) {
    if peer.trusted {
        let prior = headers
            .get(X_FORWARDED_FOR)
            .and_then(|v| v.to_str().ok())
            .map(|prior| format!("{prior}, {}", peer.ip_text()))
            .and_then(|chain| HeaderValue::from_str(&chain).ok());
        headers.insert(X_FORWARDED_FOR, prior.unwrap_or_else(|| peer.ip.clone()));
    } else {
        headers.remove(X_FORWARDED_PROTO);
        headers.remove(X_FORWARDED_HOST);
        headers.insert(X_FORWARDED_FOR, peer.ip.clone());
    }
    if !headers.contains_key(X_FORWARDED_PROTO) {
        headers.insert(X_FORWARDED_PROTO, HeaderValue::from_static("http"));
    }
    if let Some(host) = host
        && !headers.contains_key(X_FORWARDED_HOST)
    {
        headers.insert(X_FORWARDED_HOST, host);
    }
    if !headers.contains_key(TRACEPARENT)
        && let Ok(v) = HeaderValue::from_bytes(&new_traceparent())
    {
        headers.insert(TRACEPARENT, v);
    }
}

/// The trace of a proxied request: with tracing on, `span` (the gateway's
/// request span) joins the client's trace, if any, and the upstream gets
/// `span` as its parent; otherwise the client's `traceparent` passes on, or
/// a new one starts here. Returns the trace id.
pub fn trace(span: &tracing::Span, headers: &mut HeaderMap) -> Option<String> {
    use bazaar_kit::telemetry::otel;
    if !otel::enabled() {
        return ensure_traceparent(headers);
    }
    otel::set_parent_from(span, headers);
    if let Some(v) = otel::traceparent_of(span).and_then(|tp| HeaderValue::from_str(&tp).ok()) {
        headers.insert(TRACEPARENT, v);
    }
    otel::trace_id_of(span)
}

/// Gives the request a W3C `traceparent` (a new trace) unless it has a
/// well-formed one; returns its trace id.
pub fn ensure_traceparent(headers: &mut HeaderMap) -> Option<String> {
    let given = headers
        .get(TRACEPARENT)
        .and_then(|v| v.to_str().ok())
        .and_then(bazaar_kit::access::trace_id_of)
        .map(str::to_string);
    if given.is_some() {
        return given;
    }
    let value = HeaderValue::from_bytes(&new_traceparent()).ok()?;
    let trace_id = value
        .to_str()
        .ok()
        .and_then(bazaar_kit::access::trace_id_of)
        .map(str::to_string);
    headers.insert(TRACEPARENT, value);
    trace_id
}

/// A W3C `traceparent` starting a new trace here, so every hop shares one
/// trace id.
pub fn new_traceparent() -> [u8; 55] {
    let mut random: [u8; 24] = bazaar_kit::http::id_bytes();
    // All-zero ids are invalid (and never come up: 2^-128).
    random[15] |= u8::from(random[..16].iter().all(|b| *b == 0));
    random[23] |= u8::from(random[16..].iter().all(|b| *b == 0));
    // 00-<32 hex trace id>-<16 hex span id>-01
    let mut buf = *b"00-00000000000000000000000000000000-0000000000000000-01";
    hex_bytes(&mut buf[3..35], &random[..16]);
    hex_bytes(&mut buf[36..52], &random[16..]);
    buf
}

/// Writes `bytes` as lowercase hex into `out` (twice their length).
fn hex_bytes(out: &mut [u8], bytes: &[u8]) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for (pair, b) in out.chunks_exact_mut(2).zip(bytes) {
        pair[0] = DIGITS[usize::from(b >> 4)];
        pair[1] = DIGITS[usize::from(b & 0xf)];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for (name, value) in pairs {
            headers.append(*name, HeaderValue::from_static(value));
        }
        headers
    }

    #[test]
    fn hop_by_hop_and_listed_headers_go_but_framing_stays() {
        let mut headers = map(&[
            ("connection", "close, x-secret, Content-Length"),
            ("connection", "transfer-encoding,host"),
            ("x-secret", "1"),
            ("te", "trailers"),
            ("keep-alive", "timeout=5"),
            ("content-length", "5"),
            ("host", "shop.example"),
            ("x-kept", "yes"),
        ]);
        strip_hop_by_hop(&mut headers);
        assert!(headers.get("x-secret").is_none() && headers.get("te").is_none());
        assert!(headers.get("connection").is_none() && headers.get("keep-alive").is_none());
        assert_eq!(headers["content-length"], "5");
        assert_eq!(headers["host"], "shop.example");
        assert_eq!(headers["x-kept"], "yes");
    }

    #[test]
    fn connection_naming_a_framing_header_is_detected() {
        for value in [
            "Content-Length",
            "keep-alive, content-length",
            "Transfer-Encoding",
            " HOST ",
        ] {
            assert!(
                names_framing_header(&map(&[("connection", value)])),
                "{value}"
            );
        }
        assert!(!names_framing_header(&map(&[(
            "connection",
            "keep-alive, x-a"
        )])));
        assert!(!names_framing_header(&HeaderMap::new()));
    }

    #[test]
    fn forwarded_headers_are_trusted_only_from_trusted_proxies() {
        let addr: std::net::SocketAddr = "10.1.2.3:5555".parse().expect("addr");
        let sent = [
            ("x-forwarded-for", "203.0.113.9"),
            ("x-forwarded-host", "evil.example"),
            ("x-forwarded-proto", "https"),
        ];
        let stranger = Peer::new(addr, &TrustedProxies::default());
        let mut untrusted = map(&sent);
        set_forwarded(
            &mut untrusted,
            &stranger,
            Some(HeaderValue::from_static("shop.example")),
        );
        assert_eq!(untrusted["x-forwarded-for"], "10.1.2.3");
        assert_eq!(untrusted["x-forwarded-host"], "shop.example");
        assert_eq!(untrusted["x-forwarded-proto"], "http");

        let ingress = Peer::new(
            addr,
            &TrustedProxies::parse(&["10.0.0.0/8".into()]).expect("cidr"),
        );
        let mut trusted = map(&sent);
        set_forwarded(
            &mut trusted,
            &ingress,
            Some(HeaderValue::from_static("shop.example")),
        );
        assert_eq!(trusted["x-forwarded-for"], "203.0.113.9, 10.1.2.3");
        assert_eq!(trusted["x-forwarded-host"], "evil.example");
        assert_eq!(trusted["x-forwarded-proto"], "https");

        let trace = trusted[TRACEPARENT].to_str().expect("ascii");
        let parts: Vec<&str> = trace.split('-').collect();
        assert_eq!(parts.len(), 4, "{trace}");
        assert_eq!((parts[0], parts[3]), ("00", "01"));
        assert!(parts[1].len() == 32 && parts[2].len() == 16, "{trace}");
        assert!(parts[1].bytes().all(|b| b.is_ascii_hexdigit()) && parts[1] != "0".repeat(32));
    }

    #[test]
    fn trusted_proxies_parse_cidrs_and_addresses() {
        let trusted = TrustedProxies::parse(&["10.0.0.0/8".into(), "::1".into()]).expect("parses");
        assert!(trusted.trusts("10.200.0.1".parse().expect("ip")));
        assert!(trusted.trusts("::1".parse().expect("ip")));
        assert!(trusted.trusts("::ffff:10.0.0.7".parse().expect("ip")));
        assert!(!trusted.trusts("192.168.0.1".parse().expect("ip")));
        assert!(TrustedProxies::parse(&["nonsense".into()]).is_err());
        assert!(!TrustedProxies::default().trusts("127.0.0.1".parse().expect("ip")));
    }
}
