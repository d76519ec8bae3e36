//! The routing table: public path prefix → upstream service pool.

use std::collections::BTreeMap;

use axum::http::Method;
use bazaar_kit::{Config, ServiceName};

/// One upstream service and the URLs of its instances.
#[derive(Clone, Debug)]
pub struct Upstream {
    /// Service name (for metrics and errors).
    pub name: String,
    /// Base URLs of the instances (`http://host:port`, no trailing slash).
    pub urls: Vec<String>,
}

/// Prefix → upstream, longest prefix first.
#[derive(Clone, Debug)]
pub struct RouteTable {
    routes: Vec<(String, usize)>,
    upstreams: Vec<Upstream>,
}

/// Public prefixes of SPEC §3 and the service that owns each.
const PREFIXES: &[(&str, ServiceName)] = &[
    ("/api/v1/auth/", ServiceName::Identity),
    ("/api/v1/users/", ServiceName::Identity),
    ("/.well-known/", ServiceName::Identity),
    ("/api/v1/categories/", ServiceName::Catalog),
    ("/api/v1/products/", ServiceName::Catalog),
    ("/api/v1/orders/", ServiceName::Orders),
    ("/api/v1/payments/", ServiceName::Payments),
    ("/api/v1/notifications/", ServiceName::Notifications),
];

impl RouteTable {
    /// The table of SPEC §3 with upstream URLs from configuration, plus
    /// `extra` routes (prefix → service name or comma-separated URLs), which
    /// override a default prefix of the same name.
    pub fn from_config(config: &Config, extra: &BTreeMap<String, String>) -> Result<Self, String> {
        let services = [
            ServiceName::Identity,
            ServiceName::Catalog,
            ServiceName::Orders,
            ServiceName::Payments,
            ServiceName::Notifications,
        ];
        let mut upstreams: Vec<Upstream> = services
            .iter()
            .map(|s| Upstream {
                name: s.as_str().to_string(),
                urls: config.urls(*s),
            })
            .collect();
        let mut table: BTreeMap<String, usize> = PREFIXES
            .iter()
            .filter_map(|(prefix, service)| {
                let idx = services.iter().position(|s| s == service)?;
                Some(((*prefix).to_string(), idx))
            })
            .collect();
        for (prefix, target) in extra {
            if !(prefix.starts_with("/api/") || prefix.starts_with("/.well-known/")) {
                return Err(format!(
                    "gateway.routes: {prefix:?} must start with /api/ or /.well-known/"
                ));
            }
            if is_forbidden_path(prefix) {
                return Err(format!("gateway.routes: {prefix:?} cannot be routed"));
            }
            let prefix = format!("{}/", prefix.trim_end_matches('/'));
            let idx = match ServiceName::parse(target.trim()) {
                Some(service) => services.iter().position(|s| *s == service).ok_or_else(|| {
                    format!("gateway.routes: {prefix:?} cannot point at {target}")
                })?,
                None => {
                    let urls: Vec<String> = target
                        .split(',')
                        .map(|u| u.trim().trim_end_matches('/').to_string())
                        .filter(|u| !u.is_empty())
                        .collect();
                    if urls.is_empty() || !urls.iter().all(|u| u.starts_with("http://")) {
                        return Err(format!(
                            "gateway.routes: {prefix:?} → {target:?} is neither a service name nor http:// URLs"
                        ));
                    }
                    upstreams.push(Upstream {
                        name: prefix.trim_matches('/').replace('/', "_"),
                        urls,
                    });
                    upstreams.len() - 1
                }
            };
            table.insert(prefix, idx);
        }
        let mut routes: Vec<(String, usize)> = table.into_iter().collect();
        routes.sort_by_key(|(p, _)| std::cmp::Reverse(p.len()));
        Ok(Self { routes, upstreams })
    }

    /// The index of the upstream for a (normalised) path; `None` → 404.
    pub fn route(&self, path: &str) -> Option<usize> {
        self.routes.iter().find_map(|(prefix, idx)| {
            let bare = prefix.trim_end_matches('/');
            (path == bare || path.starts_with(prefix.as_str())).then_some(*idx)
        })
    }

    /// Every upstream.
    pub fn upstreams(&self) -> &[Upstream] {
        &self.upstreams
    }
}

/// Rate-limit groups: the auth endpoints get a tighter per-IP budget.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Group {
    /// `/api/v1/auth/...` (credential guessing target).
    Auth,
    /// Everything else.
    Api,
}

impl Group {
    /// The group of a path.
    pub fn of(path: &str) -> Self {
        if path.starts_with("/api/v1/auth/") || path == "/api/v1/auth" {
            Group::Auth
        } else {
            Group::Api
        }
    }

    /// Name used in limiter keys and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Group::Auth => "auth",
            Group::Api => "api",
        }
    }
}

/// Auth endpoints reachable without a token (trailing slash optional).
const PUBLIC_AUTH: &[&str] = &[
    "/api/v1/auth/register",
    "/api/v1/auth/token",
    "/api/v1/auth/token/refresh",
    "/api/v1/auth/logout",
    "/api/v1/auth/service-token",
    // RFC 6749 §3.1: answers `unsupported_response_type` (no interactive flow).
    "/api/v1/auth/authorize",
];

/// Whether a request may pass without a bearer token. Everything else under
/// `/api/` needs a valid access token before it is forwarded.
pub fn is_public(method: &Method, path: &str) -> bool {
    if path.starts_with("/.well-known/") {
        return true;
    }
    let bare = path.trim_end_matches('/');
    if PUBLIC_AUTH.contains(&bare) {
        return true;
    }
    let read = method == Method::GET || method == Method::HEAD;
    let catalog = ["/api/v1/products", "/api/v1/categories"].iter().any(|p| {
        bare.strip_prefix(p)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
    });
    read && catalog
}

/// Whether a raw request path must be refused: `/internal/` anywhere, dot
/// segments, encoded slashes, dots or backslashes (traversal tricks).
pub fn is_forbidden_path(raw: &str) -> bool {
    // One pass: encoded `/`, `.` or `\`, a backslash, or a bad segment.
    let bytes = raw.as_bytes();
    let bad = |seg: &[u8]| seg == b".." || seg == b"." || seg.eq_ignore_ascii_case(b"internal");
    let mut segment = 0;
    for (i, &b) in bytes.iter().enumerate() {
        match b {
            b'\\' => return true,
            b'%' => {
                let next = (
                    bytes.get(i + 1),
                    bytes.get(i + 2).map(u8::to_ascii_lowercase),
                );
                if matches!(
                    next,
                    (Some(b'2'), Some(b'f' | b'e')) | (Some(b'5'), Some(b'c'))
                ) {
                    return true;
                }
            }
            b'/' => {
                if bad(&bytes[segment..i]) {
                    return true;
                }
                segment = i + 1;
            }
            _ => {}
        }
    }
    bad(&bytes[segment..])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_follow_the_spec() {
        let table = RouteTable::from_config(&Config::default(), &BTreeMap::new()).expect("table");
        let name = |p: &str| table.route(p).map(|i| table.upstreams()[i].name.clone());
        assert_eq!(name("/api/v1/products/").as_deref(), Some("catalog"));
        assert_eq!(name("/api/v1/products").as_deref(), Some("catalog"));
        assert_eq!(name("/api/v1/auth/token/").as_deref(), Some("identity"));
        assert_eq!(name("/.well-known/jwks.json").as_deref(), Some("identity"));
        assert_eq!(name("/api/v1/orders/x/cancel/").as_deref(), Some("orders"));
        assert!(table.route("/api/v1/productsx").is_none());
        assert!(table.route("/api/v2/products/").is_none());
    }

    #[test]
    fn extra_routes_override_and_add_pools() {
        let mut extra = BTreeMap::new();
        extra.insert(
            "/api/v1/reviews/".to_string(),
            "http://a:1, http://b:2".to_string(),
        );
        extra.insert("/api/v1/users".to_string(), "catalog".to_string());
        let table = RouteTable::from_config(&Config::default(), &extra).expect("table");
        let reviews = table.route("/api/v1/reviews/x").expect("routed");
        assert_eq!(
            table.upstreams()[reviews].urls,
            ["http://a:1", "http://b:2"]
        );
        let users = table.route("/api/v1/users/me").expect("routed");
        assert_eq!(table.upstreams()[users].name, "catalog");
        let mut bad = BTreeMap::new();
        bad.insert("/internal/".to_string(), "catalog".to_string());
        assert!(RouteTable::from_config(&Config::default(), &bad).is_err());
    }

    #[test]
    fn public_routes_are_the_spec_ones() {
        assert!(is_public(&Method::POST, "/api/v1/auth/token/"));
        assert!(is_public(&Method::POST, "/api/v1/auth/token/refresh"));
        assert!(is_public(&Method::GET, "/.well-known/jwks.json"));
        assert!(is_public(&Method::GET, "/api/v1/products/"));
        assert!(is_public(&Method::GET, "/api/v1/categories/x/"));
        assert!(!is_public(&Method::POST, "/api/v1/products/"));
        assert!(!is_public(&Method::GET, "/api/v1/orders/"));
        assert!(!is_public(&Method::GET, "/api/v1/users/me/"));
        assert!(!is_public(&Method::GET, "/api/v1/productsx"));
        assert_eq!(Group::of("/api/v1/auth/token/"), Group::Auth);
        assert_eq!(Group::of("/api/v1/orders/"), Group::Api);
    }

    #[test]
    fn traversal_tricks_are_forbidden() {
        assert!(is_forbidden_path("/internal/stock/reserve"));
        assert!(is_forbidden_path("/api/v1/../internal/x"));
        assert!(is_forbidden_path("/api/v1/products/%2e%2e/internal"));
        assert!(is_forbidden_path("/api/v1/products%2F..%2Finternal"));
        assert!(is_forbidden_path("/api/v1/internal/"));
        assert!(is_forbidden_path("/api/v1/INTERNAL/stock"));
        assert!(is_forbidden_path("/api/v1/products/%5Cx"));
        assert!(is_forbidden_path("/api/v1/products/..\\internal"));
        assert!(is_forbidden_path("/api/v1/products/%2E%2E/x"));
        assert!(!is_forbidden_path("/api/v1/products/?q=%20widget"));
        assert!(!is_forbidden_path("/api/v1/products/"));
    }
}
