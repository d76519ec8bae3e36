//! The transactional outbox.

use sqlx::{AnyConnection, Row};

use crate::clock::now_millis;
use crate::db::Db;
use crate::events::Envelope;

/// Records `event` in the outbox. Call it with the same transaction as the
/// state change it announces (`&mut *tx`), so both commit or neither does.
pub async fn enqueue(conn: &mut AnyConnection, event: &Envelope) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO outbox (id, event_type, version, source, occurred_at, traceparent, data) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(&event.id)
    .bind(&event.event_type)
    .bind(event.version)
    .bind(&event.source)
    .bind(&event.occurred_at)
    // The event joins the trace of what wrote it (tracing on).
    .bind(
        event
            .traceparent
            .clone()
            .or_else(crate::telemetry::otel::current_traceparent),
    )
    .bind(event.data.to_string())
    .execute(conn)
    .await?;
    Ok(())
}

/// A pending outbox row.
#[derive(Debug, Clone)]
pub(crate) struct Pending {
    /// Row order.
    pub seq: i64,
    /// Publish attempts so far.
    pub attempts: i32,
    /// The event.
    pub event: Envelope,
}

/// Up to `limit` unpublished events whose retry time has come, oldest first.
pub(crate) async fn due(db: &Db, limit: i64) -> Result<Vec<Pending>, sqlx::Error> {
    let now = now_millis();
    let rows = sqlx::query(
        "SELECT seq, id, event_type, version, source, occurred_at, traceparent, data, attempts \
         FROM outbox WHERE published_at IS NULL AND next_attempt_at <= $1 ORDER BY seq LIMIT $2",
    )
    .bind(now)
    .bind(limit)
    .fetch_all(db.pool())
    .await?;
    rows.into_iter()
        .map(|row| {
            let data: String = row.try_get("data")?;
            Ok(Pending {
                seq: row.try_get("seq")?,
                attempts: row.try_get("attempts")?,
                event: Envelope {
                    id: row.try_get("id")?,
                    event_type: row.try_get("event_type")?,
                    version: row.try_get("version")?,
                    source: row.try_get("source")?,
                    occurred_at: row.try_get("occurred_at")?,
                    traceparent: row.try_get("traceparent")?,
                    data: serde_json::from_str(&data).unwrap_or(serde_json::Value::Null),
                },
            })
        })
        .collect()
}

/// Marks rows published, in one statement (one commit) per batch.
pub(crate) async fn mark_published(db: &Db, seqs: &[i64]) -> Result<(), sqlx::Error> {
    let now = crate::clock::now_rfc3339();
    for chunk in seqs.chunks(500) {
        let placeholders: Vec<String> = (0..chunk.len()).map(|i| format!("${}", i + 2)).collect();
        let sql = format!(
            "UPDATE outbox SET published_at = $1 WHERE seq IN ({})",
            placeholders.join(", ")
        );
        // Only numbered placeholders are formatted in; values are bound.
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(&now);
        for seq in chunk {
            query = query.bind(seq);
        }
        query.execute(db.pool()).await?;
    }
    Ok(())
}

/// Records a failed publish and schedules the next try with the link
/// backoff (200 ms doubling to 2 s, with jitter): a publish fails because
/// the broker is unreachable, and the row must go out soon after it is back.
pub(crate) async fn mark_failed(
    db: &Db,
    seq: i64,
    attempts: i32,
    error: &str,
) -> Result<(), sqlx::Error> {
    let delay = crate::clock::Backoff::LINK.delay_millis(i64::from(attempts) + 1);
    sqlx::query("UPDATE outbox SET attempts = attempts + 1, next_attempt_at = $1, last_error = $2 WHERE seq = $3")
        .bind(now_millis() + delay)
        .bind(error)
        .bind(seq)
        .execute(db.pool())
        .await?;
    Ok(())
}

/// Unpublished rows (the `/metrics` backlog gauge).
pub(crate) async fn backlog(db: &Db) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("SELECT COUNT(*) FROM outbox WHERE published_at IS NULL")
        .fetch_one(db.pool())
        .await
}
