//! The gateway's own settings: the `[gateway]` table of the platform
//! configuration (`BAZAAR_GATEWAY_<KEY>` in the environment).

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;

/// A token bucket (GCRA): a sustained rate and a burst.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq)]
pub struct Limit {
    /// Sustained requests per second.
    pub rps: f64,
    /// Requests allowed at once above the sustained rate.
    pub burst: u32,
}

impl Limit {
    /// Time between two requests at the sustained rate.
    pub fn interval(&self) -> Duration {
        // Whole nanoseconds: precise enough, and far cheaper per request
        // than `from_secs_f64`'s exact rounding (the cast saturates).
        Duration::from_nanos((1e9 / self.rps.max(1e-6)) as u64)
    }
}

/// Everything the gateway reads from `[gateway]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(default)]
pub struct GatewaySettings {
    /// Extra or overriding routes: public path prefix → a service name
    /// (`catalog`) or a comma-separated list of upstream URLs.
    pub routes: BTreeMap<String, String>,
    /// Whether rate limiting is on.
    pub rate_limit: bool,
    /// Per client IP on the auth endpoints (`/api/v1/auth/`).
    pub auth_limit: Limit,
    /// Per client IP on every other route.
    pub ip_limit: Limit,
    /// Per authenticated user (token `sub`) on every route.
    pub user_limit: Limit,
    /// Prefix of the Redis keys holding limiter state (when `redis_url` is set).
    pub rate_limit_prefix: String,
    /// Origins allowed by CORS (`*` for any); a list, or one string of
    /// comma-separated origins (env); empty: no CORS headers.
    #[serde(deserialize_with = "list")]
    pub cors_origins: Vec<String>,
    /// Milliseconds allowed to open a connection to an upstream.
    pub connect_timeout_ms: u64,
    /// Seconds allowed for an upstream's response head (504 after);
    /// defaults to the platform's `request_timeout_secs`.
    pub upstream_timeout_secs: Option<u64>,
    /// Consecutive failures that open an upstream's circuit breaker.
    pub breaker_failures: u32,
    /// Milliseconds an open breaker waits before a half-open probe.
    pub breaker_open_ms: u64,
    /// Milliseconds between active health checks of every instance.
    pub health_interval_ms: u64,
    /// Seconds the merged OpenAPI document is cached.
    pub openapi_cache_secs: u64,
    /// Threads serving connections, each with its own upstream keep-alive
    /// connections (0: one per core).
    pub workers: usize,
    /// Peers (CIDRs or addresses) whose `X-Forwarded-For/Proto/Host` are
    /// believed, such as the ingress in front; from anyone else they are
    /// replaced by what the gateway sees.
    #[serde(deserialize_with = "list")]
    pub trusted_proxies: Vec<String>,
}

impl Default for GatewaySettings {
    fn default() -> Self {
        Self {
            routes: BTreeMap::new(),
            rate_limit: true,
            auth_limit: Limit {
                rps: 50.0,
                burst: 100,
            },
            ip_limit: Limit {
                rps: 1000.0,
                burst: 2000,
            },
            user_limit: Limit {
                rps: 1000.0,
                burst: 2000,
            },
            rate_limit_prefix: "bazaar:rl".into(),
            cors_origins: Vec::new(),
            connect_timeout_ms: 1000,
            upstream_timeout_secs: None,
            breaker_failures: 5,
            breaker_open_ms: 5000,
            health_interval_ms: 1000,
            openapi_cache_secs: 5,
            workers: 0,
            trusted_proxies: Vec::new(),
        }
    }
}

/// A list given either as a sequence or as one comma-separated string.
fn list<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Either {
        One(String),
        Many(Vec<String>),
    }
    Ok(match Either::deserialize(d)? {
        Either::One(s) => s
            .split(',')
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
            .collect(),
        Either::Many(v) => v,
    })
}
