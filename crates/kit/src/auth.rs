//! Token verification and the auth extractors every service uses.
//!
//! Access tokens are EdDSA (Ed25519) JWTs signed by identity, whose public
//! keys are fetched from its JWKS, cached, and refetched (at most every few
//! seconds) when a token names an unknown `kid`. Only `EdDSA` is accepted,
//! so `alg: none`, HS256 signed with a public key and other algorithm
//! confusions fail before any signature check.
//!
//! Two kinds of token share the machinery: user access tokens (audience
//! [`API_AUDIENCE`], `token_type = "access"`) and service tokens from the
//! client-credentials grant (audience [`SERVICE_AUDIENCE`],
//! `token_type = "service"`). Extractors never accept one for the other.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::FromRequestParts;
use axum::http::header;
use axum::http::request::Parts;
use jsonwebtoken::jwk::{AlgorithmParameters, JwkSet};
use jsonwebtoken::{Algorithm, DecodingKey, Validation, decode, decode_header};
use serde::{Deserialize, Serialize};
use tokio::sync::{Mutex, RwLock};

use crate::error::Problem;

/// `iss` of every token identity issues.
pub const ISSUER: &str = "bazaar-identity";
/// `aud` of user access tokens.
pub const API_AUDIENCE: &str = "bazaar-api";
/// `aud` of service (client-credentials) tokens.
pub const SERVICE_AUDIENCE: &str = "bazaar-internal";
/// Clock skew tolerated on `exp`/`nbf`, in seconds.
pub const LEEWAY_SECS: u64 = 5;
/// Minimum time between two JWKS fetches caused by unknown `kid`s.
const REFETCH_INTERVAL: Duration = Duration::from_secs(5);
/// Cached keys are refreshed at least this often (drops retired keys).
const MAX_KEY_AGE: Duration = Duration::from_secs(600);

/// The claims of a Bazaar token.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Claims {
    /// Issuer ([`ISSUER`]).
    pub iss: String,
    /// Audience.
    pub aud: String,
    /// Subject: a user id, or `service:<name>` for service tokens.
    pub sub: String,
    /// Expiry (epoch seconds).
    pub exp: i64,
    /// Issued at (epoch seconds).
    pub iat: i64,
    /// Not before (epoch seconds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<i64>,
    /// Unique token id.
    pub jti: String,
    /// `access` or `service`.
    pub token_type: String,
    /// The user's username (access tokens).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// Whether the user is staff (access tokens).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_staff: Option<bool>,
    /// Space-separated scopes (service tokens).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
}

/// Why a token was refused (logged; the client sees one generic 401).
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// Not a well-formed JWT, wrong algorithm, bad signature, expired,
    /// wrong issuer or audience.
    #[error("invalid token: {0}")]
    Invalid(String),
    /// The token names a key identity does not publish.
    #[error("unknown signing key {0:?}")]
    UnknownKey(String),
    /// Identity's JWKS could not be fetched.
    #[error("key set unavailable: {0}")]
    KeysUnavailable(String),
}

struct KeyCache {
    keys: HashMap<String, DecodingKey>,
    fetched_at: Option<Instant>,
}

/// Verifies tokens against identity's published keys.
pub struct Verifier {
    jwks_url: String,
    http: reqwest::Client,
    cache: RwLock<KeyCache>,
    last_attempt: Mutex<Option<Instant>>,
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verifier")
            .field("jwks_url", &self.jwks_url)
            .finish()
    }
}

impl Verifier {
    /// A verifier for the identity service at `identity_url`.
    pub fn new(identity_url: &str) -> Self {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(3))
            .build()
            .unwrap_or_default();
        Self {
            jwks_url: format!(
                "{}/.well-known/jwks.json",
                identity_url.trim_end_matches('/')
            ),
            http,
            cache: RwLock::new(KeyCache {
                keys: HashMap::new(),
                fetched_at: None,
            }),
            last_attempt: Mutex::new(None),
        }
    }

    /// A verifier that trusts exactly `jwks` and never fetches (identity
    /// itself, and tests).
    pub fn with_keys(jwks: &JwkSet) -> Self {
        let verifier = Self::new("http://invalid.localhost");
        let keys = decoding_keys(jwks);
        if let Ok(mut cache) = verifier.cache.try_write() {
            cache.keys = keys;
            cache.fetched_at = Some(Instant::now() + Duration::from_secs(100 * 365 * 24 * 3600));
        }
        verifier
    }

    /// Replaces the trusted keys (identity calls this after a rotation).
    pub async fn set_keys(&self, jwks: &JwkSet) {
        let mut cache = self.cache.write().await;
        cache.keys = decoding_keys(jwks);
        cache.fetched_at = Some(Instant::now());
    }

    /// Verifies a token of the given audience and returns its claims.
    pub async fn verify(&self, token: &str, audience: &str) -> Result<Claims, AuthError> {
        let header = decode_header(token).map_err(|e| AuthError::Invalid(e.to_string()))?;
        if header.alg != Algorithm::EdDSA {
            return Err(AuthError::Invalid(format!(
                "algorithm {:?} is not accepted",
                header.alg
            )));
        }
        let kid = header
            .kid
            .ok_or_else(|| AuthError::Invalid("no kid".into()))?;
        let key = self.key(&kid).await?;
        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.leeway = LEEWAY_SECS;
        validation.validate_nbf = true;
        validation.set_issuer(&[ISSUER]);
        validation.set_audience(&[audience]);
        validation.set_required_spec_claims(&["exp", "iat", "iss", "aud", "sub"]);
        let data = decode::<Claims>(token, &key, &validation)
            .map_err(|e| AuthError::Invalid(e.to_string()))?;
        Ok(data.claims)
    }

    async fn key(&self, kid: &str) -> Result<DecodingKey, AuthError> {
        {
            let cache = self.cache.read().await;
            let fresh = cache
                .fetched_at
                .is_some_and(|t| t.elapsed() < MAX_KEY_AGE || t > Instant::now());
            if fresh && let Some(key) = cache.keys.get(kid) {
                return Ok(key.clone());
            }
        }
        // A failed fetch still lets a key we already hold verify (identity
        // briefly down must not log everyone out); only an unknown kid then
        // becomes "keys unavailable".
        let refreshed = self.refresh().await;
        let cache = self.cache.read().await;
        match (cache.keys.get(kid), refreshed) {
            (Some(key), _) => Ok(key.clone()),
            (None, Err(e)) => Err(e),
            (None, Ok(())) => Err(AuthError::UnknownKey(kid.to_string())),
        }
    }

    /// Fetches the JWKS unless another fetch happened moments ago.
    async fn refresh(&self) -> Result<(), AuthError> {
        let mut last = self.last_attempt.lock().await;
        if last.is_some_and(|t| t.elapsed() < REFETCH_INTERVAL) {
            return Ok(());
        }
        *last = Some(Instant::now());
        let jwks: JwkSet = self
            .http
            .get(&self.jwks_url)
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .map_err(|e| AuthError::KeysUnavailable(e.to_string()))?
            .json()
            .await
            .map_err(|e| AuthError::KeysUnavailable(e.to_string()))?;
        let mut cache = self.cache.write().await;
        cache.keys = decoding_keys(&jwks);
        cache.fetched_at = Some(Instant::now());
        Ok(())
    }
}

/// Ed25519 keys of a JWKS by `kid`; any other key type is ignored.
fn decoding_keys(jwks: &JwkSet) -> HashMap<String, DecodingKey> {
    jwks.keys
        .iter()
        .filter(|jwk| matches!(jwk.algorithm, AlgorithmParameters::OctetKeyPair(_)))
        .filter_map(|jwk| {
            let kid = jwk.common.key_id.clone()?;
            let key = DecodingKey::from_jwk(jwk).ok()?;
            Some((kid, key))
        })
        .collect()
}

/// The bearer token of a request, if any.
pub(crate) fn bearer_token(parts: &Parts) -> Option<&str> {
    let value = parts.headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

fn verifier(parts: &Parts) -> Result<Arc<Verifier>, Problem> {
    parts
        .extensions
        .get::<Arc<Verifier>>()
        .cloned()
        .ok_or_else(|| Problem::internal("no token verifier installed on this router"))
}

async fn claims(parts: &Parts, audience: &str, token_type: &str) -> Result<Claims, Problem> {
    let token = bearer_token(parts)
        .ok_or_else(|| Problem::unauthorized("Authentication credentials were not provided."))?;
    let verifier = verifier(parts)?;
    let claims = verifier
        .verify(token, audience)
        .await
        .map_err(|e| match e {
            AuthError::KeysUnavailable(cause) => {
                tracing::warn!(%cause, "cannot fetch identity keys");
                Problem::unavailable("Token keys are unavailable; try again shortly.")
                    .with_retry_after(1)
            }
            other => {
                tracing::debug!(error = %other, "token refused");
                Problem::unauthorized("Given token not valid for any token type")
            }
        })?;
    if claims.token_type != token_type {
        return Err(Problem::unauthorized(
            "Given token not valid for any token type",
        ));
    }
    Ok(claims)
}

/// An authenticated end user (any valid access token).
#[derive(Clone, Debug)]
pub struct AuthUser {
    /// The user's id (UUID).
    pub id: String,
    /// The user's username.
    pub username: String,
    /// Whether the user is staff.
    pub is_staff: bool,
}

impl<S: Send + Sync> FromRequestParts<S> for AuthUser {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        if let Some(user) = parts.extensions.get::<AuthUser>() {
            return Ok(user.clone());
        }
        let claims = claims(parts, API_AUDIENCE, "access").await?;
        let user = AuthUser {
            id: claims.sub,
            username: claims.username.unwrap_or_default(),
            is_staff: claims.is_staff.unwrap_or(false),
        };
        if let Some(slot) = parts.extensions.get::<crate::access::UserSlot>() {
            slot.set(&user.id);
        }
        parts.extensions.insert(user.clone());
        Ok(user)
    }
}

/// An authenticated staff user; others get 403.
#[derive(Clone, Debug)]
pub struct StaffUser(pub AuthUser);

impl<S: Send + Sync> FromRequestParts<S> for StaffUser {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let user = AuthUser::from_request_parts(parts, state).await?;
        if !user.is_staff {
            return Err(Problem::forbidden(
                "You do not have permission to perform this action.",
            ));
        }
        Ok(StaffUser(user))
    }
}

/// Another service calling an `/internal/` route with a service token.
#[derive(Clone, Debug)]
pub struct ServiceCaller {
    /// The calling service's name (`orders`, ...).
    pub name: String,
    /// Scopes granted to it.
    pub scopes: Vec<String>,
}

impl ServiceCaller {
    /// The caller a verified service token names.
    pub fn from_claims(claims: &Claims) -> Self {
        let name = claims
            .sub
            .strip_prefix("service:")
            .unwrap_or(&claims.sub)
            .to_string();
        let scopes = claims
            .scope
            .as_deref()
            .unwrap_or_default()
            .split_whitespace()
            .map(str::to_string)
            .collect();
        ServiceCaller { name, scopes }
    }

    /// 403 unless the caller holds `scope`.
    pub fn require(&self, scope: &str) -> Result<(), Problem> {
        if self.scopes.iter().any(|s| s == scope) {
            Ok(())
        } else {
            Err(Problem::forbidden(format!(
                "The {} service lacks the {scope:?} scope.",
                self.name
            )))
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for ServiceCaller {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let claims = claims(parts, SERVICE_AUDIENCE, "service").await?;
        Ok(ServiceCaller::from_claims(&claims))
    }
}
