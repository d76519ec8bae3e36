//! The saga's bookkeeping: which orders are due, and who drives each.

use bazaar_kit::Db;
use bazaar_kit::clock::now_millis;

/// Ids of orders whose next saga step is due and that nobody drives.
pub async fn due(db: &Db, limit: i64) -> Result<Vec<String>, sqlx::Error> {
    let now = now_millis();
    sqlx::query_scalar(
        "SELECT id FROM orders WHERE (status IN ('pending', 'awaiting_payment') OR compensate = 1) \
         AND next_attempt_at <= $1 AND lease_until < $1 ORDER BY next_attempt_at LIMIT $2",
    )
    .bind(now)
    .bind(limit)
    .fetch_all(db.pool())
    .await
}

/// Takes the order for `lease_ms` unless another driver holds it.
pub async fn claim(db: &Db, id: &str, lease_ms: i64) -> Result<bool, sqlx::Error> {
    let now = now_millis();
    let done = sqlx::query("UPDATE orders SET lease_until = $1 WHERE id = $2 AND lease_until < $3")
        .bind(now + lease_ms)
        .bind(id)
        .bind(now)
        .execute(db.pool())
        .await?;
    Ok(done.rows_affected() == 1)
}

/// Extends a lease this driver holds (one that has not run out yet).
pub async fn renew(db: &Db, id: &str, lease_ms: i64) -> Result<(), sqlx::Error> {
    let now = now_millis();
    sqlx::query("UPDATE orders SET lease_until = $1 WHERE id = $2 AND lease_until >= $3")
        .bind(now + lease_ms)
        .bind(id)
        .bind(now)
        .execute(db.pool())
        .await?;
    Ok(())
}

/// Gives the order back to whoever comes next.
pub async fn release(db: &Db, id: &str) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE orders SET lease_until = 0 WHERE id = $1")
        .bind(id)
        .execute(db.pool())
        .await?;
    Ok(())
}

/// Schedules the next try of the current step after `delay_ms`, counting a
/// transient failure (or a timed-out charge when `charge` is set).
pub async fn retry_later(
    db: &Db,
    id: &str,
    delay_ms: i64,
    charge: bool,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE orders SET next_attempt_at = $1, attempts = attempts + 1, \
         charge_attempts = charge_attempts + $2 WHERE id = $3",
    )
    .bind(now_millis() + delay_ms)
    .bind(i64::from(charge))
    .bind(id)
    .execute(db.pool())
    .await?;
    Ok(())
}

/// Sets or clears the "refund and release owed" flag of a cancelled order.
pub async fn set_compensate(db: &Db, id: &str, owed: bool) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE orders SET compensate = $1, next_attempt_at = $2 WHERE id = $3 AND status = 'cancelled'")
        .bind(i64::from(owed))
        .bind(now_millis())
        .bind(id)
        .execute(db.pool())
        .await?;
    Ok(())
}

/// How many orders are under way (pending, awaiting payment, or owing a
/// compensation) and the creation time of the oldest.
pub async fn in_flight(db: &Db) -> Result<(i64, Option<String>), sqlx::Error> {
    use sqlx::Row as _;
    let row = sqlx::query(
        "SELECT COUNT(*) AS n, MIN(created_at) AS oldest FROM orders \
         WHERE status IN ('pending', 'awaiting_payment') OR compensate = 1",
    )
    .fetch_one(db.pool())
    .await?;
    Ok((row.try_get("n")?, row.try_get("oldest")?))
}

/// The trace context the order was placed in, if tracing recorded one.
pub async fn traceparent(db: &Db, id: &str) -> Result<Option<String>, sqlx::Error> {
    let tp: Option<Option<String>> =
        sqlx::query_scalar("SELECT traceparent FROM orders WHERE id = $1")
            .bind(id)
            .fetch_optional(db.pool())
            .await?;
    Ok(tp.flatten())
}
