//! `Idempotency-Key` records: the first response to a (user, key), replayed
//! for the same request, kept at least 24 hours.

use bazaar_kit::Db;
use bazaar_kit::clock::now_millis;
use sqlx::{AnyConnection, FromRow};

/// How long keys are kept (48 h; SPEC asks for at least 24 h).
pub const RETENTION_MS: i64 = 48 * 3600 * 1000;

/// A stored first response.
#[derive(Debug, Clone, FromRow)]
pub struct Record {
    /// Canonical request body.
    pub request: String,
    /// Status code answered.
    pub status_code: i64,
    /// Body answered.
    pub response: String,
}

/// The record of `(user, key)`, if any.
pub async fn find(db: &Db, user_id: &str, key: &str) -> Result<Option<Record>, sqlx::Error> {
    sqlx::query_as(
        "SELECT request, status_code, response FROM idempotency_keys \
         WHERE user_id = $1 AND idem_key = $2",
    )
    .bind(user_id)
    .bind(key)
    .fetch_optional(db.pool())
    .await
}

/// Stores a first response, in the transaction that created the order. A
/// unique violation means a concurrent request with the same key won.
pub async fn insert(
    conn: &mut AnyConnection,
    user_id: &str,
    key: &str,
    record: &Record,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO idempotency_keys (user_id, idem_key, request, status_code, response, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(user_id)
    .bind(key)
    .bind(&record.request)
    .bind(record.status_code)
    .bind(&record.response)
    .bind(now_millis())
    .execute(conn)
    .await?;
    Ok(())
}

/// Deletes keys past retention; returns how many.
pub async fn purge(db: &Db) -> Result<u64, sqlx::Error> {
    let done = sqlx::query("DELETE FROM idempotency_keys WHERE created_at < $1")
        .bind(now_millis() - RETENTION_MS)
        .execute(db.pool())
        .await?;
    Ok(done.rows_affected())
}
