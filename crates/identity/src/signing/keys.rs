//! Ed25519 signing keys, kept in identity's database so every replica and
//! the `bazaar keys rotate` command share them.
//!
//! Three states: a *next* key (published in the JWKS but not signing yet, so
//! verifiers already hold it when it takes over), the *active* key (signs),
//! and *retired* keys (published for [`OVERLAP_SECS`] more, so tokens they
//! signed stay valid until they expire). A rotation retires the active key,
//! activates the next one and creates a new next key.

use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use bazaar_kit::Db;
use jsonwebtoken::EncodingKey;
use jsonwebtoken::jwk::{
    AlgorithmParameters, CommonParameters, EllipticCurve, Jwk, JwkSet, KeyAlgorithm,
    OctetKeyPairParameters, OctetKeyPairType, PublicKeyUse,
};

use crate::store::{self, keys::KeyRow};

/// How long a retired key stays published: longer than any token it signed
/// lives (access and service tokens ≤ 15 min), plus clock leeway.
pub const OVERLAP_SECS: i64 = 15 * 60 + bazaar_kit::auth::LEEWAY_SECS as i64 + 60;

/// Errors of the key ring.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// Database failure.
    #[error(transparent)]
    Sql(#[from] sqlx::Error),
    /// Key generation or parsing failed.
    #[error("signing key: {0}")]
    Crypto(String),
    /// No key signs (cannot happen after [`ensure`]).
    #[error("no active signing key")]
    NoActiveKey,
}

/// A fresh Ed25519 key pair as a row (not yet stored).
pub fn generate(now: i64, activated_at: Option<i64>) -> Result<KeyRow, KeyError> {
    let rng = aws_lc_rs::rand::SystemRandom::new();
    let doc = Ed25519KeyPair::generate_pkcs8(&rng).map_err(|e| KeyError::Crypto(e.to_string()))?;
    let pair =
        Ed25519KeyPair::from_pkcs8(doc.as_ref()).map_err(|e| KeyError::Crypto(e.to_string()))?;
    Ok(KeyRow {
        kid: uuid::Uuid::now_v7().simple().to_string(),
        private_pkcs8: STANDARD.encode(doc.as_ref()),
        public_x: URL_SAFE_NO_PAD.encode(pair.public_key().as_ref()),
        created_at: now,
        activated_at,
        retired_at: None,
    })
}

/// Makes sure an active and a next key exist (first start).
pub async fn ensure(db: &Db) -> Result<(), KeyError> {
    let now = store::epoch();
    let mut tx = db.pool().begin().await?;
    if store::keys::active(&mut tx).await?.is_none() {
        let key = generate(now, Some(now))?;
        store::keys::insert(&mut tx, &key).await?;
        tracing::info!(kid = %key.kid, "created the first signing key");
    }
    if store::keys::next(&mut tx).await?.is_none() {
        store::keys::insert(&mut tx, &generate(now, None)?).await?;
    }
    tx.commit().await?;
    Ok(())
}

/// What a rotation did.
#[derive(Debug)]
pub struct Rotation {
    /// The key that signs from now on.
    pub active: String,
    /// Keys that stopped signing (still published for [`OVERLAP_SECS`]).
    pub retired: Vec<String>,
    /// The new published next key.
    pub next: String,
}

/// Rotates: the next key signs, the active one retires, a new next key is
/// published. Safe while identity runs (it reads the active key per token).
pub async fn rotate(db: &Db) -> Result<Rotation, KeyError> {
    ensure(db).await?;
    let now = store::epoch();
    let mut tx = db.pool().begin().await?;
    let retiring = store::keys::active(&mut tx).await?;
    let next = match store::keys::next(&mut tx).await? {
        Some(k) => k,
        None => {
            let k = generate(now, None)?;
            store::keys::insert(&mut tx, &k).await?;
            k
        }
    };
    store::keys::retire_active(&mut tx, now).await?;
    store::keys::activate(&mut tx, &next.kid, now).await?;
    let new_next = generate(now, None)?;
    store::keys::insert(&mut tx, &new_next).await?;
    tx.commit().await?;
    Ok(Rotation {
        active: next.kid,
        retired: retiring.into_iter().map(|k| k.kid).collect(),
        next: new_next.kid,
    })
}

/// The active key's id and private key.
pub async fn signing_key(db: &Db) -> Result<(String, EncodingKey), KeyError> {
    let mut conn = db.pool().acquire().await?;
    let key = store::keys::active(&mut conn)
        .await?
        .ok_or(KeyError::NoActiveKey)?;
    let der = STANDARD
        .decode(&key.private_pkcs8)
        .map_err(|e| KeyError::Crypto(e.to_string()))?;
    Ok((key.kid, EncodingKey::from_ed_der(&der)))
}

/// The public keys to publish.
pub async fn jwks(db: &Db) -> Result<JwkSet, KeyError> {
    let mut conn = db.pool().acquire().await?;
    let rows = store::keys::published(&mut conn, store::epoch() - OVERLAP_SECS).await?;
    Ok(JwkSet {
        keys: rows.into_iter().map(|k| jwk(&k.kid, &k.public_x)).collect(),
    })
}

/// The JWK of an Ed25519 public key.
pub fn jwk(kid: &str, x: &str) -> Jwk {
    Jwk {
        common: CommonParameters {
            public_key_use: Some(PublicKeyUse::Signature),
            key_algorithm: Some(KeyAlgorithm::EdDSA),
            key_id: Some(kid.to_string()),
            ..Default::default()
        },
        algorithm: AlgorithmParameters::OctetKeyPair(OctetKeyPairParameters {
            key_type: OctetKeyPairType::OctetKeyPair,
            curve: EllipticCurve::Ed25519,
            x: x.to_string(),
        }),
    }
}

/// How often identity reloads its published keys into its own verifier (so
/// a `bazaar keys rotate` from another process is seen without HTTP).
const KEY_RELOAD: std::time::Duration = std::time::Duration::from_secs(2);

/// The worker that keeps `verifier` on the keys in `db`.
pub fn reload_worker(
    db: Db,
    verifier: std::sync::Arc<bazaar_kit::auth::Verifier>,
) -> bazaar_kit::service::Worker {
    bazaar_kit::service::periodic(KEY_RELOAD, move || {
        let (db, verifier) = (db.clone(), verifier.clone());
        async move {
            match jwks(&db).await {
                Ok(set) => verifier.set_keys(&set).await,
                Err(e) => tracing::warn!(error = %e, "cannot reload signing keys"),
            }
        }
    })
}
