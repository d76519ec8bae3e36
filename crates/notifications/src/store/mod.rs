//! The SQL, in one place. Runs on SQLite and PostgreSQL through `AnyPool`.

use bazaar_kit::Db;
use bazaar_kit::clock::{now_millis, now_rfc3339};
use sqlx::AnyConnection;

use crate::domain::{Kind, Rendered, Status};

/// Where a user's email goes.
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct Recipient {
    /// The user's username.
    pub username: String,
    /// The user's email address.
    pub email: String,
}

/// Records (or refreshes) a user's address, inside the handler's transaction.
pub async fn upsert_recipient(
    conn: &mut AnyConnection,
    user_id: &str,
    r: &Recipient,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO recipients (user_id, username, email, updated_at) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (user_id) DO UPDATE SET username = excluded.username, \
         email = excluded.email, updated_at = excluded.updated_at",
    )
    .bind(user_id)
    .bind(&r.username)
    .bind(&r.email)
    .bind(now_rfc3339())
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// The locally known address of a user.
pub async fn recipient(
    conn: &mut AnyConnection,
    user_id: &str,
) -> Result<Option<Recipient>, sqlx::Error> {
    sqlx::query_as("SELECT username, email FROM recipients WHERE user_id = $1")
        .bind(user_id)
        .fetch_optional(&mut *conn)
        .await
}

/// A notification about to be recorded.
#[derive(Debug, Clone)]
pub struct NewNotification<'a> {
    /// The event that caused it.
    pub event_id: &'a str,
    /// What it announces.
    pub kind: Kind,
    /// Whose it is.
    pub user_id: &'a str,
    /// Address it goes to.
    pub to: &'a str,
    /// Rendered email.
    pub email: &'a Rendered,
}

/// Inserts a pending notification; returns its id, or `None` when this
/// (event, kind) already has one (a belt to the inbox's braces).
pub async fn insert(
    conn: &mut AnyConnection,
    n: &NewNotification<'_>,
) -> Result<Option<String>, sqlx::Error> {
    let id = uuid::Uuid::now_v7().to_string();
    let inserted = sqlx::query(
        "INSERT INTO notifications (id, event_id, kind, channel, user_id, to_address, subject, \
         body_text, body_html, status, attempts, next_attempt_at, locked_until, created_at, \
         traceparent) \
         VALUES ($1, $2, $3, 'email', $4, $5, $6, $7, $8, 'pending', 0, 0, 0, $9, $10) \
         ON CONFLICT (event_id, kind) DO NOTHING",
    )
    .bind(&id)
    .bind(n.event_id)
    .bind(n.kind.as_str())
    .bind(n.user_id)
    .bind(n.to)
    .bind(&n.email.subject)
    .bind(&n.email.text)
    .bind(&n.email.html)
    .bind(now_rfc3339())
    // The send joins the trace of the event being handled (tracing on).
    .bind(bazaar_kit::telemetry::otel::current_traceparent())
    .execute(&mut *conn)
    .await?
    .rows_affected();
    Ok((inserted == 1).then_some(id))
}

/// A stored notification, every column an operator or a test may want.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct NotificationRow {
    /// Id (UUIDv7).
    pub id: String,
    /// Causing event.
    pub event_id: String,
    /// `welcome`, `order_confirmed`, ...
    pub kind: String,
    /// Always `email` for now.
    pub channel: String,
    /// Owner.
    pub user_id: String,
    /// Recipient address.
    pub to_address: String,
    /// Subject.
    pub subject: String,
    /// Plain-text body.
    pub body_text: String,
    /// HTML body.
    pub body_html: String,
    /// `pending`, `sent` or `failed`.
    pub status: String,
    /// Sending attempts made.
    pub attempts: i64,
    /// Epoch ms of the next attempt (pending rows).
    pub next_attempt_at: i64,
    /// The last sending error (kept on `failed`).
    pub last_error: Option<String>,
    /// RFC 3339.
    pub created_at: String,
    /// RFC 3339, once sent.
    pub sent_at: Option<String>,
    /// W3C trace context of the event that caused it (tracing on).
    pub traceparent: Option<String>,
}

macro_rules! select {
    ($($rest:literal),+) => {
        concat!(
            "SELECT id, event_id, kind, channel, user_id, to_address, subject, body_text, \
             body_html, status, attempts, next_attempt_at, last_error, created_at, sent_at, \
             traceparent FROM notifications ",
            $($rest),+
        )
    };
}

/// Notifications of `user_id` (or everyone's), newest first, one page.
pub async fn list(
    db: &Db,
    user_id: Option<&str>,
    limit: i64,
    offset: i64,
) -> Result<Vec<NotificationRow>, sqlx::Error> {
    match user_id {
        Some(user) => {
            sqlx::query_as(select!(
                "WHERE user_id = $1 ORDER BY created_at DESC, id DESC LIMIT $2 OFFSET $3"
            ))
            .bind(user)
            .bind(limit)
            .bind(offset)
            .fetch_all(db.pool())
            .await
        }
        None => {
            sqlx::query_as(select!(
                "ORDER BY created_at DESC, id DESC LIMIT $1 OFFSET $2"
            ))
            .bind(limit)
            .bind(offset)
            .fetch_all(db.pool())
            .await
        }
    }
}

/// How many notifications `user_id` (or everyone) has.
pub async fn count(db: &Db, user_id: Option<&str>) -> Result<u64, sqlx::Error> {
    let n: i64 = match user_id {
        Some(user) => {
            sqlx::query_scalar("SELECT COUNT(*) FROM notifications WHERE user_id = $1")
                .bind(user)
                .fetch_one(db.pool())
                .await?
        }
        None => {
            sqlx::query_scalar("SELECT COUNT(*) FROM notifications")
                .fetch_one(db.pool())
                .await?
        }
    };
    Ok(n.max(0) as u64)
}

/// Every notification an event produced (operators and tests).
pub async fn by_event(db: &Db, event_id: &str) -> Result<Vec<NotificationRow>, sqlx::Error> {
    sqlx::query_as(select!("WHERE event_id = $1 ORDER BY id"))
        .bind(event_id)
        .fetch_all(db.pool())
        .await
}

/// Pending notifications whose time has come and that no sender holds.
pub async fn due(db: &Db, now_ms: i64, limit: i64) -> Result<Vec<NotificationRow>, sqlx::Error> {
    sqlx::query_as(select!(
        "WHERE status = 'pending' AND next_attempt_at <= $1 \
         AND locked_until <= $1 ORDER BY next_attempt_at, id LIMIT $2"
    ))
    .bind(now_ms)
    .bind(limit)
    .fetch_all(db.pool())
    .await
}

/// Reserves a due notification for this sender until `lease_until` and
/// counts the attempt. `false` when another sender got it first.
pub async fn claim(db: &Db, id: &str, now_ms: i64, lease_until: i64) -> Result<bool, sqlx::Error> {
    let n = sqlx::query(
        "UPDATE notifications SET attempts = attempts + 1, locked_until = $1 \
         WHERE id = $2 AND status = 'pending' AND next_attempt_at <= $3 AND locked_until <= $3",
    )
    .bind(lease_until)
    .bind(id)
    .bind(now_ms)
    .execute(db.pool())
    .await?
    .rows_affected();
    Ok(n == 1)
}

/// Marks a notification sent.
pub async fn mark_sent(db: &Db, id: &str) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE notifications SET status = $1, sent_at = $2, last_error = NULL, locked_until = 0 \
         WHERE id = $3",
    )
    .bind(Status::Sent.as_str())
    .bind(now_rfc3339())
    .bind(id)
    .execute(db.pool())
    .await?;
    Ok(())
}

/// Keeps a notification pending until `next_ms`, remembering the error.
pub async fn schedule_retry(
    db: &Db,
    id: &str,
    next_ms: i64,
    error: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE notifications SET next_attempt_at = $1, last_error = $2, locked_until = 0 \
         WHERE id = $3",
    )
    .bind(next_ms)
    .bind(error)
    .bind(id)
    .execute(db.pool())
    .await?;
    Ok(())
}

/// Gives up on a notification, keeping the error.
pub async fn mark_failed(db: &Db, id: &str, error: &str) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE notifications SET status = $1, last_error = $2, locked_until = 0 WHERE id = $3",
    )
    .bind(Status::Failed.as_str())
    .bind(error)
    .bind(id)
    .execute(db.pool())
    .await?;
    Ok(())
}

/// Gives a claimed notification back (sender shutting down mid-send).
/// Extends a sender's claim on a row it is still sending (while unexpired).
pub async fn renew(db: &Db, id: &str, lease_until: i64) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE notifications SET locked_until = $1 \
         WHERE id = $2 AND status = 'pending' AND locked_until >= $3",
    )
    .bind(lease_until)
    .bind(id)
    .bind(now_millis())
    .execute(db.pool())
    .await?;
    Ok(())
}

/// Gives a claimed row back at once (shutdown mid-send).
pub async fn release(db: &Db, id: &str) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE notifications SET locked_until = 0 WHERE id = $1 AND status = 'pending'")
        .bind(id)
        .execute(db.pool())
        .await?;
    Ok(())
}
