//! Edge checks before a request is forwarded: per-IP rate limits, JWT
//! pre-verification on protected routes, and per-user rate limits.
//! Services verify tokens again (defence in depth).

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::http::Method;
use bazaar_kit::Problem;
use bazaar_kit::auth::{API_AUDIENCE, AuthError, Verifier};

use crate::config::GatewaySettings;
use crate::limit::Limiter;
use crate::routes::{Group, is_public};

/// Verified tokens kept (token → subject, expiry) so a hot token costs one
/// signature check, not one per request; cleared when full.
const TOKEN_CACHE_MAX: usize = 10_000;

/// Token bytes → (subject, expiry).
type TokenCache = HashMap<Box<[u8]>, (Arc<str>, i64), foldhash::fast::RandomState>;

/// The gateway's edge policy.
pub struct Guard {
    settings: GatewaySettings,
    limiter: Limiter,
    verifier: Arc<Verifier>,
    verified: RwLock<TokenCache>,
}

impl Guard {
    /// A guard with `settings`, verifying with `verifier`.
    pub fn new(settings: GatewaySettings, limiter: Limiter, verifier: Arc<Verifier>) -> Self {
        Self {
            settings,
            limiter,
            verifier,
            verified: RwLock::new(HashMap::with_hasher(Default::default())),
        }
    }

    /// Admits a request (with the verified token's subject on protected
    /// routes) or returns the problem to answer with. `authorization` is the
    /// request's `Authorization` header, if any; `client_ip` the client's
    /// address as text.
    pub async fn admit(
        &self,
        method: &Method,
        path: &str,
        authorization: Option<&[u8]>,
        client_ip: Option<&str>,
    ) -> Result<Option<Arc<str>>, Problem> {
        let group = Group::of(path);
        if self.settings.rate_limit
            && let Some(ip) = client_ip
        {
            let limit = match group {
                Group::Auth => self.settings.auth_limit,
                Group::Api => self.settings.ip_limit,
            };
            let mut key = String::with_capacity(8 + ip.len());
            key.push_str(group.as_str());
            key.push_str(":ip:");
            key.push_str(ip);
            self.limit(&key, limit).await?;
        }
        if is_public(method, path) {
            return Ok(None);
        }
        let subject = self.authenticate(authorization).await?;
        if self.settings.rate_limit {
            let mut key = String::with_capacity(5 + subject.len());
            key.push_str("user:");
            key.push_str(&subject);
            self.limit(&key, self.settings.user_limit).await?;
        }
        Ok(Some(subject))
    }

    async fn limit(&self, key: &str, limit: crate::config::Limit) -> Result<(), Problem> {
        self.limiter.check(key, limit).await.map_err(|wait| {
            metrics::counter!("gateway_rate_limited_total", "service" => "gateway").increment(1);
            Problem::too_many_requests(wait.as_secs() + u64::from(wait.subsec_nanos() > 0))
        })
    }

    /// The subject of a valid access token, or a 401 problem.
    async fn authenticate(&self, authorization: Option<&[u8]>) -> Result<Arc<str>, Problem> {
        let refused = || Problem::unauthorized("Given token not valid for any token type");
        let token = authorization
            .and_then(|v| {
                let v = v.trim_ascii();
                let space = v.iter().position(|b| *b == b' ')?;
                let (scheme, token) = v.split_at(space);
                scheme
                    .eq_ignore_ascii_case(b"bearer")
                    .then(|| token.trim_ascii())
            })
            .filter(|t| !t.is_empty())
            .ok_or_else(|| {
                Problem::unauthorized("Authentication credentials were not provided.")
            })?;
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or(Duration::ZERO)
            .as_secs();
        let now = i64::try_from(now).unwrap_or(i64::MAX);
        if let Some((sub, exp)) = self
            .verified
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(token)
            && *exp > now
        {
            return Ok(sub.clone());
        }
        let token = std::str::from_utf8(token).map_err(|_| refused())?;
        let claims = self
            .verifier
            .verify(token, API_AUDIENCE)
            .await
            .map_err(|e| match e {
                AuthError::KeysUnavailable(cause) => {
                    tracing::warn!(%cause, "cannot fetch identity keys");
                    Problem::unavailable("Token keys are unavailable; try again shortly.")
                        .with_retry_after(1)
                }
                other => {
                    tracing::debug!(error = %other, "token refused at the edge");
                    refused()
                }
            })?;
        if claims.token_type != "access" {
            return Err(refused());
        }
        let mut cache = self
            .verified
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if cache.len() >= TOKEN_CACHE_MAX {
            cache.clear();
        }
        let sub: Arc<str> = claims.sub.into();
        cache.insert(token.as_bytes().into(), (sub.clone(), claims.exp));
        Ok(sub)
    }
}
