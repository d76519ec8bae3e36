//! Minting tokens: signed access and service JWTs, opaque refresh tokens.

use aws_lc_rs::digest;
use aws_lc_rs::rand::SecureRandom;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bazaar_kit::Db;
use bazaar_kit::auth::{API_AUDIENCE, Claims, ISSUER, SERVICE_AUDIENCE};
use jsonwebtoken::{Algorithm, Header};

use crate::signing::keys::{self, KeyError};
use crate::store::users::UserRow;

/// Signs `claims` with the active key.
pub async fn sign(db: &Db, claims: &Claims) -> Result<String, KeyError> {
    let (kid, key) = keys::signing_key(db).await?;
    let mut header = Header::new(Algorithm::EdDSA);
    header.kid = Some(kid);
    jsonwebtoken::encode(&header, claims, &key).map_err(|e| KeyError::Crypto(e.to_string()))
}

/// The claims of a user's access token valid for `ttl` seconds.
pub fn access_claims(user: &UserRow, now: i64, ttl: i64) -> Claims {
    Claims {
        iss: ISSUER.into(),
        aud: API_AUDIENCE.into(),
        sub: user.id.clone(),
        exp: now + ttl,
        iat: now,
        nbf: None,
        jti: uuid::Uuid::now_v7().simple().to_string(),
        token_type: "access".into(),
        username: Some(user.username.clone()),
        is_staff: Some(user.is_staff),
        scope: None,
    }
}

/// The claims of a service token for `service` with `scopes`.
pub fn service_claims(service: &str, scopes: &str, now: i64, ttl: i64) -> Claims {
    Claims {
        iss: ISSUER.into(),
        aud: SERVICE_AUDIENCE.into(),
        sub: format!("service:{service}"),
        exp: now + ttl,
        iat: now,
        nbf: None,
        jti: uuid::Uuid::now_v7().simple().to_string(),
        token_type: "service".into(),
        username: None,
        is_staff: None,
        scope: Some(scopes.to_string()),
    }
}

/// A new opaque refresh token (256 random bits) and the hash to store.
pub fn new_refresh() -> Result<(String, String), KeyError> {
    let mut bytes = [0u8; 32];
    aws_lc_rs::rand::SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|e| KeyError::Crypto(e.to_string()))?;
    let token = URL_SAFE_NO_PAD.encode(bytes);
    let hash = hash_refresh(&token);
    Ok((token, hash))
}

/// SHA-256 (hex) of a refresh token: what the database keeps. The token has
/// 256 bits of entropy, so a fast hash suffices.
pub fn hash_refresh(token: &str) -> String {
    digest::digest(&digest::SHA256, token.as_bytes())
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Constant-time string comparison (client secrets).
pub fn secrets_match(given: &str, expected: &str) -> bool {
    let a = digest::digest(&digest::SHA256, given.as_bytes());
    let b = digest::digest(&digest::SHA256, expected.as_bytes());
    aws_lc_rs::constant_time::verify_slices_are_equal(a.as_ref(), b.as_ref()).is_ok()
}
