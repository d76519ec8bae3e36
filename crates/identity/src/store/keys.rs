//! The `signing_keys` table.

use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

/// A stored signing key.
#[derive(Clone)]
pub struct KeyRow {
    /// Key id (the JWT `kid`).
    pub kid: String,
    /// PKCS#8 private key, standard base64.
    pub private_pkcs8: String,
    /// Raw public key, base64url (the JWK `x`).
    pub public_x: String,
    /// Epoch seconds.
    pub created_at: i64,
    /// When it started signing; `None` for the published next key.
    pub activated_at: Option<i64>,
    /// When it stopped signing.
    pub retired_at: Option<i64>,
}

impl std::fmt::Debug for KeyRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyRow")
            .field("kid", &self.kid)
            .field("activated_at", &self.activated_at)
            .field("retired_at", &self.retired_at)
            .finish_non_exhaustive()
    }
}

const COLUMNS: &str = "kid, private_pkcs8, public_x, created_at, activated_at, retired_at";

fn from_row(r: &AnyRow) -> Result<KeyRow, sqlx::Error> {
    Ok(KeyRow {
        kid: r.try_get("kid")?,
        private_pkcs8: r.try_get("private_pkcs8")?,
        public_x: r.try_get("public_x")?,
        created_at: r.try_get("created_at")?,
        activated_at: r.try_get("activated_at")?,
        retired_at: r.try_get("retired_at")?,
    })
}

/// Stores a key.
#[tracing::instrument(skip(conn, key), fields(kid = %key.kid))]
pub async fn insert(conn: &mut AnyConnection, key: &KeyRow) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO signing_keys (kid, private_pkcs8, public_x, created_at, activated_at, retired_at) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(&key.kid)
    .bind(&key.private_pkcs8)
    .bind(&key.public_x)
    .bind(key.created_at)
    .bind(key.activated_at)
    .bind(key.retired_at)
    .execute(conn)
    .await?;
    Ok(())
}

/// The key that signs now (the most recently activated live one).
#[tracing::instrument(skip(conn))]
pub async fn active(conn: &mut AnyConnection) -> Result<Option<KeyRow>, sqlx::Error> {
    let sql = format!(
        "SELECT {COLUMNS} FROM signing_keys WHERE activated_at IS NOT NULL AND retired_at IS NULL \
         ORDER BY activated_at DESC, kid DESC LIMIT 1"
    );
    let row = sqlx::query(sqlx::AssertSqlSafe(sql))
        .fetch_optional(conn)
        .await?;
    row.as_ref().map(from_row).transpose()
}

/// The published key that signs after the next rotation.
#[tracing::instrument(skip(conn))]
pub async fn next(conn: &mut AnyConnection) -> Result<Option<KeyRow>, sqlx::Error> {
    let sql = format!(
        "SELECT {COLUMNS} FROM signing_keys WHERE activated_at IS NULL AND retired_at IS NULL \
         ORDER BY created_at, kid LIMIT 1"
    );
    let row = sqlx::query(sqlx::AssertSqlSafe(sql))
        .fetch_optional(conn)
        .await?;
    row.as_ref().map(from_row).transpose()
}

/// Keys to publish: all but those retired before `retired_after`.
#[tracing::instrument(skip(conn))]
pub async fn published(
    conn: &mut AnyConnection,
    retired_after: i64,
) -> Result<Vec<KeyRow>, sqlx::Error> {
    let sql = format!(
        "SELECT {COLUMNS} FROM signing_keys WHERE retired_at IS NULL OR retired_at > $1 \
         ORDER BY created_at, kid"
    );
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(retired_after)
        .fetch_all(conn)
        .await?;
    rows.iter().map(from_row).collect()
}

/// Retires every signing key.
#[tracing::instrument(skip(conn))]
pub async fn retire_active(conn: &mut AnyConnection, now: i64) -> Result<u64, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE signing_keys SET retired_at = $1 WHERE activated_at IS NOT NULL AND retired_at IS NULL",
    )
    .bind(now)
    .execute(conn)
    .await?;
    Ok(done.rows_affected())
}

/// Starts signing with `kid`.
#[tracing::instrument(skip(conn))]
pub async fn activate(conn: &mut AnyConnection, kid: &str, now: i64) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE signing_keys SET activated_at = $1 WHERE kid = $2")
        .bind(now)
        .bind(kid)
        .execute(conn)
        .await?;
    Ok(())
}
