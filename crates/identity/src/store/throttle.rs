//! Failed-login counters (fixed window), kept in the database so they
//! survive restarts and are shared by replicas.

use sqlx::{AnyPool, Row};

/// Failures recorded for `key` and when its window started.
#[tracing::instrument(skip(pool))]
pub async fn get(pool: &AnyPool, key: &str) -> Result<Option<(i64, i64)>, sqlx::Error> {
    let row =
        sqlx::query("SELECT failures, window_start FROM login_throttle WHERE throttle_key = $1")
            .bind(key)
            .fetch_optional(pool)
            .await?;
    row.map(|r| Ok((r.try_get("failures")?, r.try_get("window_start")?)))
        .transpose()
}

/// Counts one failure, starting a new window when the last one is over.
#[tracing::instrument(skip(pool))]
pub async fn record_failure(
    pool: &AnyPool,
    key: &str,
    now: i64,
    window_secs: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO login_throttle (throttle_key, failures, window_start) VALUES ($1, 1, $2) \
         ON CONFLICT (throttle_key) DO UPDATE SET \
           failures = CASE WHEN login_throttle.window_start + $3 <= $2 THEN 1 \
                           ELSE login_throttle.failures + 1 END, \
           window_start = CASE WHEN login_throttle.window_start + $3 <= $2 THEN $2 \
                               ELSE login_throttle.window_start END",
    )
    .bind(key)
    .bind(now)
    .bind(window_secs)
    .execute(pool)
    .await?;
    Ok(())
}

/// Forgets the failures of `key` (after a successful login).
#[tracing::instrument(skip(pool))]
pub async fn clear(pool: &AnyPool, key: &str) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM login_throttle WHERE throttle_key = $1")
        .bind(key)
        .execute(pool)
        .await?;
    Ok(())
}
