//! Idempotent consumption: inbox rows, retries, dead letters.

use std::time::Duration;

use serde::Serialize;
use sqlx::Row;

use crate::clock::{Backoff, now_rfc3339};
use crate::db::Db;
use crate::events::{Envelope, HandlerError, Subscription};

/// Attempts before an event is dead-lettered.
pub const MAX_ATTEMPTS: i32 = 5;

/// What happened to a delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The handler's effect committed with the inbox row.
    Applied,
    /// The inbox already had it: a redelivery, absorbed.
    Duplicate,
    /// Every attempt failed; it is in the dead-letter table now.
    DeadLettered,
}

static DUPLICATES: std::sync::LazyLock<std::sync::Mutex<std::collections::HashMap<String, u64>>> =
    std::sync::LazyLock::new(Default::default);

fn note_duplicate(consumer: &str) {
    if let Ok(mut map) = DUPLICATES.lock() {
        *map.entry(consumer.to_string()).or_default() += 1;
    }
}

/// Redeliveries this process's inbox absorbed for `consumer` (the
/// `events_duplicates_total` metric, readable in-process).
pub fn duplicates_absorbed(consumer: &str) -> u64 {
    DUPLICATES
        .lock()
        .map(|m| m.get(consumer).copied().unwrap_or(0))
        .unwrap_or(0)
}

/// The service a consumer belongs to (its metrics' registry): a consumer's
/// name is its service's, or starts with it and a dot (`orders.saga`).
fn service_of(consumer: &str) -> String {
    consumer.split('.').next().unwrap_or(consumer).to_string()
}

/// Applies `event` once: the inbox row and the handler's writes commit in
/// one transaction; a second delivery finds the row and does nothing.
pub async fn apply(db: &Db, sub: &Subscription, event: &Envelope) -> Result<Outcome, HandlerError> {
    let mut tx = db.pool().begin().await?;
    let inserted = sqlx::query(
        "INSERT INTO inbox (consumer, event_id, processed_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
    )
    .bind(&sub.consumer)
    .bind(&event.id)
    .bind(now_rfc3339())
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if inserted == 0 {
        tx.rollback().await?;
        metrics::counter!("events_duplicates_total", "service" => service_of(&sub.consumer), "consumer" => sub.consumer.clone())
            .increment(1);
        note_duplicate(&sub.consumer);
        return Ok(Outcome::Duplicate);
    }
    sub.handler.handle(event, &mut tx).await?;
    tx.commit().await?;
    Ok(Outcome::Applied)
}

/// [`apply`] with retries (exponential backoff with jitter); after
/// [`MAX_ATTEMPTS`] the event is dead-lettered. Errors only when even the
/// dead-letter write fails (the broker will redeliver).
pub(crate) async fn deliver(
    db: &Db,
    sub: &Subscription,
    event: &Envelope,
) -> Result<Outcome, HandlerError> {
    if !crate::telemetry::otel::enabled() {
        return deliver_untraced(db, sub, event).await;
    }
    // A consumer span, a child of the publisher's (the envelope's
    // `traceparent`), around every attempt.
    let span = tracing::info_span!(
        "process",
        service = %service_of(&sub.consumer),
        otel.name = format!("process {}", event.event_type),
        otel.kind = "consumer",
        messaging.operation.type = "process",
        messaging.destination.name = %event.event_type,
        messaging.consumer.group.name = %sub.consumer,
        messaging.message.id = %event.id,
    );
    crate::telemetry::otel::set_parent_from_traceparent(&span, event.traceparent.as_deref());
    tracing::Instrument::instrument(deliver_untraced(db, sub, event), span).await
}

async fn deliver_untraced(
    db: &Db,
    sub: &Subscription,
    event: &Envelope,
) -> Result<Outcome, HandlerError> {
    let mut last_error = String::new();
    for attempt in 1..=MAX_ATTEMPTS {
        match apply(db, sub, event).await {
            Ok(outcome) => {
                metrics::counter!("events_consumed_total", "service" => service_of(&sub.consumer), "consumer" => sub.consumer.clone(), "type" => event.event_type.clone())
                    .increment(1);
                return Ok(outcome);
            }
            Err(e) => {
                metrics::counter!("events_failed_total", "service" => service_of(&sub.consumer), "consumer" => sub.consumer.clone(), "type" => event.event_type.clone())
                    .increment(1);
                tracing::warn!(consumer = %sub.consumer, event_id = %event.id, event_type = %event.event_type, attempt, error = %e, "handler failed");
                last_error = e.0;
                if attempt < MAX_ATTEMPTS {
                    let wait = Backoff::EVENTS.delay_millis(i64::from(attempt)).max(0) as u64;
                    tokio::time::sleep(Duration::from_millis(wait)).await;
                }
            }
        }
    }
    dead_letter(db, &sub.consumer, event, &last_error, MAX_ATTEMPTS).await?;
    Ok(Outcome::DeadLettered)
}

/// Stores an event a consumer gave up on.
pub(crate) async fn dead_letter(
    db: &Db,
    consumer: &str,
    event: &Envelope,
    error: &str,
    attempts: i32,
) -> Result<(), HandlerError> {
    sqlx::query(
        "INSERT INTO dead_letters (id, consumer, event_id, event_type, envelope, error, attempts, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(uuid::Uuid::now_v7().to_string())
    .bind(consumer)
    .bind(&event.id)
    .bind(&event.event_type)
    .bind(serde_json::to_string(event)?)
    .bind(error)
    .bind(attempts)
    .bind(now_rfc3339())
    .execute(db.pool())
    .await?;
    metrics::counter!("events_dead_lettered_total", "service" => service_of(consumer), "consumer" => consumer.to_string())
        .increment(1);
    tracing::error!(consumer, event_id = %event.id, event_type = %event.event_type, error, "event dead-lettered");
    Ok(())
}

/// A dead letter, as `bazaar events dead-letters` lists it.
#[derive(Debug, Clone, Serialize)]
pub struct DeadLetter {
    /// Dead-letter id (for replay).
    pub id: String,
    /// The consumer that gave up.
    pub consumer: String,
    /// The event's id.
    pub event_id: String,
    /// The event's type.
    pub event_type: String,
    /// The last error.
    pub error: String,
    /// Attempts made.
    pub attempts: i32,
    /// When it was dead-lettered.
    pub created_at: String,
    /// Whether a replay is queued.
    pub replay_requested: bool,
}

/// Dead letters not yet replayed successfully.
pub async fn list_dead_letters(db: &Db) -> Result<Vec<DeadLetter>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT id, consumer, event_id, event_type, error, attempts, created_at, replay_requested \
         FROM dead_letters WHERE replayed_at IS NULL ORDER BY created_at",
    )
    .fetch_all(db.pool())
    .await?;
    rows.into_iter()
        .map(|r| {
            Ok(DeadLetter {
                id: r.try_get("id")?,
                consumer: r.try_get("consumer")?,
                event_id: r.try_get("event_id")?,
                event_type: r.try_get("event_type")?,
                error: r.try_get("error")?,
                attempts: r.try_get("attempts")?,
                created_at: r.try_get("created_at")?,
                replay_requested: r.try_get::<i32, _>("replay_requested")? != 0,
            })
        })
        .collect()
}

/// Queues dead letters for replay (`id`, or all when `None`); the running
/// consumer picks them up within a second. Returns how many were queued.
pub async fn request_replay(db: &Db, id: Option<&str>) -> Result<u64, sqlx::Error> {
    let result = match id {
        Some(id) => sqlx::query(
            "UPDATE dead_letters SET replay_requested = 1 WHERE id = $1 AND replayed_at IS NULL",
        )
        .bind(id)
        .execute(db.pool())
        .await?,
        None => {
            sqlx::query("UPDATE dead_letters SET replay_requested = 1 WHERE replayed_at IS NULL")
                .execute(db.pool())
                .await?
        }
    };
    Ok(result.rows_affected())
}

/// Replays queued dead letters of `sub`'s consumer once each: success marks
/// them replayed; failure keeps them with the new error.
pub async fn replay_requested(db: &Db, sub: &Subscription) -> Result<usize, HandlerError> {
    let rows = sqlx::query(
        "SELECT id, envelope FROM dead_letters WHERE consumer = $1 AND replay_requested = 1 AND replayed_at IS NULL",
    )
    .bind(&sub.consumer)
    .fetch_all(db.pool())
    .await?;
    let mut done = 0;
    for row in rows {
        let id: String = row.try_get("id")?;
        let envelope: String = row.try_get("envelope")?;
        let event: Envelope = serde_json::from_str(&envelope)?;
        match apply(db, sub, &event).await {
            Ok(_) => {
                sqlx::query(
                    "UPDATE dead_letters SET replayed_at = $1, replay_requested = 0 WHERE id = $2",
                )
                .bind(now_rfc3339())
                .bind(&id)
                .execute(db.pool())
                .await?;
                done += 1;
            }
            Err(e) => {
                sqlx::query("UPDATE dead_letters SET replay_requested = 0, error = $1, attempts = attempts + 1 WHERE id = $2")
                    .bind(&e.0)
                    .bind(&id)
                    .execute(db.pool())
                    .await?;
            }
        }
    }
    Ok(done)
}
