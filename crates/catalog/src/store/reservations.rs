//! Stock reservations. Never oversells: each line is one conditional
//! `UPDATE ... SET stock = stock - q WHERE id = ? AND stock >= q`, all lines
//! in one transaction (all or nothing), and the reservation row, keyed by
//! order id, is the first write of that transaction, so a retry (or a
//! concurrent duplicate) finds the first outcome instead of reserving twice.
//! On SQLite the transaction is `BEGIN IMMEDIATE` (see `store::begin_write`),
//! so writers queue on the busy timeout rather than fail a lock upgrade.

use bazaar_kit::ServiceName;
use bazaar_kit::clock::now_rfc3339;
use bazaar_kit::events::{Envelope, outbox};
use serde::Serialize;
use sqlx::{AnyConnection, Row};

use bazaar_kit::Db;

use super::begin_write;
use crate::domain::reservation::{Line, Outcome, Reservation};
use crate::error::CatalogError;

#[derive(Serialize)]
struct StockEvent<'a> {
    order_id: &'a str,
    items: &'a [Line],
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    product_ids: Option<&'a [String]>,
}

async fn publish(
    conn: &mut AnyConnection,
    event_type: &str,
    data: StockEvent<'_>,
) -> Result<(), sqlx::Error> {
    outbox::enqueue(
        conn,
        &Envelope::new(event_type, 1, ServiceName::Catalog, data),
    )
    .await
}

/// Which reservations a release may touch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReleaseKind {
    /// An explicit release (cancel or failed payment): reserved or committed.
    Requested,
    /// The expiry worker: only reservations never committed.
    Expired,
}

async fn outcome_of(
    conn: &mut AnyConnection,
    order_id: &str,
) -> Result<Option<Outcome>, CatalogError> {
    let row = sqlx::query("SELECT status, product_ids FROM reservations WHERE order_id = $1")
        .bind(order_id)
        .fetch_optional(conn)
        .await?;
    let Some(row) = row else { return Ok(None) };
    let status: String = row.try_get("status")?;
    let ids: String = row.try_get("product_ids")?;
    Ok(Some(match status.as_str() {
        "reserved" => Outcome::Reserved,
        "committed" => Outcome::Committed,
        "released" => Outcome::Released,
        _ => Outcome::Rejected {
            product_ids: serde_json::from_str(&ids).unwrap_or_default(),
        },
    }))
}

/// Reserves every line of `r`, or none. Idempotent per order id.
#[tracing::instrument(skip(db, r), fields(order_id = %r.order_id))]
pub async fn reserve(db: &Db, r: &Reservation, ttl_ms: i64) -> Result<Outcome, CatalogError> {
    let now = now_rfc3339();
    let expires_at = bazaar_kit::clock::now_millis() + ttl_ms;
    let mut tx = begin_write(db).await?;
    let claimed = sqlx::query(
        "INSERT INTO reservations (order_id, status, expires_at, created_at, updated_at) \
         VALUES ($1, 'reserved', $2, $3, $3) ON CONFLICT (order_id) DO NOTHING",
    )
    .bind(&r.order_id)
    .bind(expires_at)
    .bind(&now)
    .execute(&mut *tx)
    .await?;
    if claimed.rows_affected() == 0 {
        let outcome = outcome_of(&mut tx, &r.order_id).await?;
        tx.rollback().await?;
        return outcome.ok_or(CatalogError::Conflict("reservation vanished".into()));
    }
    let mut short = Vec::new();
    for line in &r.lines {
        let done = sqlx::query(
            "UPDATE products SET stock = stock - $1, updated_at = $2 \
             WHERE id = $3 AND stock >= $1",
        )
        .bind(line.quantity)
        .bind(&now)
        .bind(&line.product_id)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            short.push(line.product_id.clone());
        }
    }
    if short.is_empty() {
        for line in &r.lines {
            sqlx::query(
                "INSERT INTO reservation_lines (order_id, product_id, quantity) \
                 VALUES ($1, $2, $3)",
            )
            .bind(&r.order_id)
            .bind(&line.product_id)
            .bind(line.quantity)
            .execute(&mut *tx)
            .await?;
        }
        let data = StockEvent {
            order_id: &r.order_id,
            items: &r.lines,
            reason: None,
            product_ids: None,
        };
        publish(&mut tx, crate::events::STOCK_RESERVED, data).await?;
        tx.commit().await?;
        return Ok(Outcome::Reserved);
    }
    // Undo every decrement, then record the rejection as the outcome.
    tx.rollback().await?;
    let mut tx = begin_write(db).await?;
    let ids = serde_json::to_string(&short).unwrap_or_else(|_| "[]".into());
    let claimed = sqlx::query(
        "INSERT INTO reservations (order_id, status, reason, product_ids, expires_at, \
         created_at, updated_at) VALUES ($1, 'rejected', 'out_of_stock', $2, 0, $3, $3) \
         ON CONFLICT (order_id) DO NOTHING",
    )
    .bind(&r.order_id)
    .bind(&ids)
    .bind(&now)
    .execute(&mut *tx)
    .await?;
    if claimed.rows_affected() == 0 {
        // A concurrent duplicate got there first: its outcome stands.
        let outcome = outcome_of(&mut tx, &r.order_id).await?;
        tx.rollback().await?;
        return outcome.ok_or(CatalogError::Conflict("reservation vanished".into()));
    }
    let data = StockEvent {
        order_id: &r.order_id,
        items: &r.lines,
        reason: Some("out_of_stock"),
        product_ids: Some(&short),
    };
    publish(&mut tx, crate::events::STOCK_REJECTED, data).await?;
    tx.commit().await?;
    Ok(Outcome::Rejected { product_ids: short })
}

/// Marks a reservation committed (the order is paid). Idempotent.
#[tracing::instrument(skip(db))]
pub async fn commit_reservation(db: &Db, order_id: &str) -> Result<Outcome, CatalogError> {
    let mut tx = begin_write(db).await?;
    let done = sqlx::query(
        "UPDATE reservations SET status = 'committed', updated_at = $1 \
         WHERE order_id = $2 AND status = 'reserved'",
    )
    .bind(now_rfc3339())
    .bind(order_id)
    .execute(&mut *tx)
    .await?;
    if done.rows_affected() == 1 {
        tx.commit().await?;
        return Ok(Outcome::Committed);
    }
    let outcome = outcome_of(&mut tx, order_id).await?;
    tx.rollback().await?;
    match outcome {
        Some(Outcome::Committed) => Ok(Outcome::Committed),
        Some(Outcome::Released) => Err(CatalogError::Conflict(
            "The reservation was released (expired or cancelled); its stock is gone.".into(),
        )),
        Some(Outcome::Rejected { .. }) => Err(CatalogError::Conflict(
            "The reservation was rejected; there is nothing to commit.".into(),
        )),
        Some(Outcome::Reserved) | None => Err(CatalogError::NotFound),
    }
}

/// Gives a reservation's stock back. Returns whether stock moved
/// (`false`: unknown, rejected or already released — a no-op).
#[tracing::instrument(skip(db))]
pub async fn release_reservation(
    db: &Db,
    order_id: &str,
    kind: ReleaseKind,
) -> Result<bool, CatalogError> {
    let now = now_rfc3339();
    let statuses = match kind {
        ReleaseKind::Requested => "('reserved', 'committed')",
        ReleaseKind::Expired => "('reserved')",
    };
    let mut tx = begin_write(db).await?;
    let sql = format!(
        "UPDATE reservations SET status = 'released', reason = $1, updated_at = $2 \
         WHERE order_id = $3 AND status IN {statuses}"
    );
    let reason = match kind {
        ReleaseKind::Requested => "released",
        ReleaseKind::Expired => "expired",
    };
    let done = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(reason)
        .bind(&now)
        .bind(order_id)
        .execute(&mut *tx)
        .await?;
    if done.rows_affected() == 0 {
        tx.rollback().await?;
        return Ok(false);
    }
    let rows = sqlx::query(
        "SELECT product_id, quantity FROM reservation_lines WHERE order_id = $1 \
         ORDER BY product_id",
    )
    .bind(order_id)
    .fetch_all(&mut *tx)
    .await?;
    let mut lines = Vec::with_capacity(rows.len());
    for row in rows {
        lines.push(Line {
            product_id: row.try_get("product_id")?,
            quantity: row.try_get("quantity")?,
        });
    }
    for line in &lines {
        sqlx::query("UPDATE products SET stock = stock + $1, updated_at = $2 WHERE id = $3")
            .bind(line.quantity)
            .bind(&now)
            .bind(&line.product_id)
            .execute(&mut *tx)
            .await?;
    }
    let data = StockEvent {
        order_id,
        items: &lines,
        reason: Some(reason),
        product_ids: None,
    };
    publish(&mut tx, crate::events::STOCK_RELEASED, data).await?;
    tx.commit().await?;
    Ok(true)
}

/// Releases up to `limit` uncommitted reservations whose time ran out by
/// `now_ms`; returns how many were released.
#[tracing::instrument(skip(db))]
pub async fn expire_reservations(db: &Db, now_ms: i64, limit: i64) -> Result<u64, CatalogError> {
    let due: Vec<String> = sqlx::query_scalar(
        "SELECT order_id FROM reservations WHERE status = 'reserved' AND expires_at <= $1 \
         ORDER BY expires_at LIMIT $2",
    )
    .bind(now_ms)
    .bind(limit)
    .fetch_all(db.pool())
    .await?;
    let mut released = 0;
    for order_id in due {
        if release_reservation(db, &order_id, ReleaseKind::Expired).await? {
            released += 1;
        }
    }
    Ok(released)
}
