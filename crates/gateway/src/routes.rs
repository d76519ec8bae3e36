//! The routing table: public path prefix → upstream service pool.

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
    /// The table of SPEC §3, with upstream URLs from configuration.
    pub fn from_config(config: &Config) -> Self {
        let services = [
            ServiceName::Identity,
            ServiceName::Catalog,
            ServiceName::Orders,
            ServiceName::Payments,
            ServiceName::Notifications,
        ];
        let upstreams: Vec<Upstream> = services
            .iter()
            .map(|s| Upstream {
                name: s.as_str().to_string(),
                urls: config.urls(*s),
            })
            .collect();
        let mut routes: Vec<(String, usize)> = PREFIXES
            .iter()
            .filter_map(|(prefix, service)| {
                let idx = services.iter().position(|s| s == service)?;
                Some(((*prefix).to_string(), idx))
            })
            .collect();
        routes.sort_by_key(|(p, _)| std::cmp::Reverse(p.len()));
        Self { routes, upstreams }
    }

    /// The upstream for a (normalised) path; `None` → 404.
    pub fn route(&self, path: &str) -> Option<&Upstream> {
        self.routes.iter().find_map(|(prefix, idx)| {
            let bare = prefix.trim_end_matches('/');
            (path == bare || path.starts_with(prefix.as_str())).then(|| &self.upstreams[*idx])
        })
    }

    /// Every upstream.
    pub fn upstreams(&self) -> &[Upstream] {
        &self.upstreams
    }
}

/// Whether a raw request path must be refused: `/internal/` anywhere, dot
/// segments, encoded slashes, dots or backslashes (traversal tricks).
pub fn is_forbidden_path(raw: &str) -> bool {
    let lower = raw.to_ascii_lowercase();
    if lower.contains("%2f")
        || lower.contains("%5c")
        || lower.contains("%2e")
        || lower.contains('\\')
    {
        return true;
    }
    lower
        .split('/')
        .any(|seg| seg == ".." || seg == "." || seg == "internal")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_follow_the_spec() {
        let table = RouteTable::from_config(&Config::default());
        assert_eq!(
            table.route("/api/v1/products/").map(|u| u.name.as_str()),
            Some("catalog")
        );
        assert_eq!(
            table.route("/api/v1/products").map(|u| u.name.as_str()),
            Some("catalog")
        );
        assert_eq!(
            table.route("/api/v1/auth/token/").map(|u| u.name.as_str()),
            Some("identity")
        );
        assert_eq!(
            table
                .route("/.well-known/jwks.json")
                .map(|u| u.name.as_str()),
            Some("identity")
        );
        assert_eq!(
            table
                .route("/api/v1/orders/x/cancel/")
                .map(|u| u.name.as_str()),
            Some("orders")
        );
        assert!(table.route("/api/v1/productsx").is_none());
        assert!(table.route("/api/v2/products/").is_none());
    }

    #[test]
    fn traversal_tricks_are_forbidden() {
        assert!(is_forbidden_path("/internal/stock/reserve"));
        assert!(is_forbidden_path("/api/v1/../internal/x"));
        assert!(is_forbidden_path("/api/v1/products/%2e%2e/internal"));
        assert!(is_forbidden_path("/api/v1/products%2F..%2Finternal"));
        assert!(is_forbidden_path("/api/v1/internal/"));
        assert!(!is_forbidden_path("/api/v1/products/"));
    }
}
