//! The `refresh_tokens` table (hashes only).

use sqlx::{AnyConnection, Row};

/// A stored refresh token.
#[derive(Clone, Debug)]
pub struct RefreshRow {
    /// Row id.
    pub id: String,
    /// Session family.
    pub family_id: String,
    /// Owner.
    pub user_id: String,
    /// Epoch seconds.
    pub expires_at: i64,
    /// Set once rotated.
    pub used_at: Option<i64>,
    /// Set once revoked.
    pub revoked_at: Option<i64>,
}

/// A new refresh token row.
#[derive(Debug)]
pub struct NewRefresh<'a> {
    /// SHA-256 (hex) of the token.
    pub token_hash: &'a str,
    /// Session family.
    pub family_id: &'a str,
    /// Owner.
    pub user_id: &'a str,
    /// Epoch seconds.
    pub now: i64,
    /// Epoch seconds.
    pub expires_at: i64,
}

/// Stores a refresh token.
#[tracing::instrument(skip(conn, new), fields(family = new.family_id))]
pub async fn insert(conn: &mut AnyConnection, new: &NewRefresh<'_>) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO refresh_tokens (id, token_hash, family_id, user_id, created_at, expires_at) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(uuid::Uuid::now_v7().to_string())
    .bind(new.token_hash)
    .bind(new.family_id)
    .bind(new.user_id)
    .bind(new.now)
    .bind(new.expires_at)
    .execute(conn)
    .await?;
    Ok(())
}

/// The token with this hash.
#[tracing::instrument(skip_all)]
pub async fn by_hash(
    conn: &mut AnyConnection,
    hash: &str,
) -> Result<Option<RefreshRow>, sqlx::Error> {
    let row = sqlx::query(
        "SELECT id, family_id, user_id, expires_at, used_at, revoked_at \
         FROM refresh_tokens WHERE token_hash = $1",
    )
    .bind(hash)
    .fetch_optional(conn)
    .await?;
    row.map(|r| {
        Ok(RefreshRow {
            id: r.try_get("id")?,
            family_id: r.try_get("family_id")?,
            user_id: r.try_get("user_id")?,
            expires_at: r.try_get("expires_at")?,
            used_at: r.try_get("used_at")?,
            revoked_at: r.try_get("revoked_at")?,
        })
    })
    .transpose()
}

/// Marks a live token used; false when it is unknown, expired, revoked or
/// already used. A write first, so SQLite takes its write lock up front.
#[tracing::instrument(skip_all)]
pub async fn mark_used(
    conn: &mut AnyConnection,
    hash: &str,
    now: i64,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE refresh_tokens SET used_at = $1 WHERE token_hash = $2 \
         AND used_at IS NULL AND revoked_at IS NULL AND expires_at > $1",
    )
    .bind(now)
    .bind(hash)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Revokes every live token of a family.
#[tracing::instrument(skip(conn))]
pub async fn revoke_family(
    conn: &mut AnyConnection,
    family: &str,
    now: i64,
) -> Result<u64, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE refresh_tokens SET revoked_at = $1 WHERE family_id = $2 AND revoked_at IS NULL",
    )
    .bind(now)
    .bind(family)
    .execute(conn)
    .await?;
    Ok(done.rows_affected())
}

/// Revokes the live tokens of the family of the token with this hash
/// (logout); one write statement, so SQLite locks up front.
#[tracing::instrument(skip_all)]
pub async fn revoke_family_of(
    conn: &mut AnyConnection,
    hash: &str,
    now: i64,
) -> Result<u64, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE refresh_tokens SET revoked_at = $1 WHERE revoked_at IS NULL AND family_id = \
         (SELECT family_id FROM refresh_tokens WHERE token_hash = $2 AND expires_at > $1)",
    )
    .bind(now)
    .bind(hash)
    .execute(conn)
    .await?;
    Ok(done.rows_affected())
}

/// Revokes every live token of a user (password change).
#[tracing::instrument(skip(conn))]
pub async fn revoke_user(
    conn: &mut AnyConnection,
    user_id: &str,
    now: i64,
) -> Result<u64, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE refresh_tokens SET revoked_at = $1 WHERE user_id = $2 AND revoked_at IS NULL",
    )
    .bind(now)
    .bind(user_id)
    .execute(conn)
    .await?;
    Ok(done.rows_affected())
}
