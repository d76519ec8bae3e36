//! The payments service's SQL, in one place (runs on SQLite and PostgreSQL).

use bazaar_kit::clock::now_millis;
use bazaar_kit::clock::now_rfc3339;
use bazaar_kit::events::Envelope;
use bazaar_kit::events::outbox::enqueue;
use bazaar_kit::{Db, ServiceName};
use serde_json::json;

use crate::domain::{Status, money};
use crate::events;
// Dynamic SQL below is built from constant fragments only; values are bound.
use sqlx::{AssertSqlSafe, FromRow};

/// One payment row (one per order).
#[derive(Debug, Clone, FromRow)]
pub struct Payment {
    /// Payment id.
    pub id: String,
    /// The order it pays.
    pub order_id: String,
    /// The order's owner.
    pub user_id: String,
    /// Amount in cents.
    pub amount_cents: i64,
    /// ISO currency.
    pub currency: String,
    /// Test token given at the first charge.
    pub payment_token: String,
    /// Where the payment is.
    #[sqlx(try_from = "String")]
    pub status: Status,
    /// Decline reason or last error.
    pub reason: Option<String>,
    /// Millis until which a provider call owns the row.
    pub charging_until: Option<i64>,
    /// Creation time.
    pub created_at: String,
}

const COLUMNS: &str = "id, order_id, user_id, amount_cents, currency, payment_token, status, \
                       reason, charging_until, created_at";

/// A charge as first requested.
pub struct NewCharge<'a> {
    /// Order id.
    pub order_id: &'a str,
    /// Owner.
    pub user_id: &'a str,
    /// Cents.
    pub amount_cents: i64,
    /// Currency.
    pub currency: &'a str,
    /// Test token.
    pub payment_token: &'a str,
}

/// Records the order's payment unless one exists (first request wins), and
/// returns the row.
pub async fn upsert(db: &Db, c: &NewCharge<'_>) -> Result<Payment, sqlx::Error> {
    let now = now_rfc3339();
    sqlx::query(
        "INSERT INTO payments (id, order_id, user_id, amount_cents, currency, payment_token, \
         status, attempts, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, 'pending', 0, $7, $7) ON CONFLICT (order_id) DO NOTHING",
    )
    .bind(uuid::Uuid::now_v7().to_string())
    .bind(c.order_id)
    .bind(c.user_id)
    .bind(c.amount_cents)
    .bind(c.currency)
    .bind(c.payment_token)
    .bind(&now)
    .execute(db.pool())
    .await?;
    by_order(db, c.order_id)
        .await?
        .ok_or(sqlx::Error::RowNotFound)
}

/// The payment of an order.
pub async fn by_order(db: &Db, order_id: &str) -> Result<Option<Payment>, sqlx::Error> {
    sqlx::query_as(AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM payments WHERE order_id = $1"
    )))
    .bind(order_id)
    .fetch_optional(db.pool())
    .await
}

/// Takes the row for one provider call (`pending`/`failed`, or a `charging`
/// claim that expired). `false`: someone else holds it, or it is final.
pub async fn claim(db: &Db, order_id: &str, hold_ms: i64) -> Result<bool, sqlx::Error> {
    let now = now_millis();
    let done = sqlx::query(
        "UPDATE payments SET status = 'charging', charging_until = $1, attempts = attempts + 1, \
         updated_at = $2 WHERE order_id = $3 AND (status IN ('pending', 'failed') \
         OR (status = 'charging' AND charging_until < $4))",
    )
    .bind(now + hold_ms)
    .bind(now_rfc3339())
    .bind(order_id)
    .bind(now)
    .execute(db.pool())
    .await?;
    Ok(done.rows_affected() == 1)
}

fn event_data(p: &Payment, reason: Option<&str>) -> serde_json::Value {
    json!({
        "order_id": p.order_id,
        "payment_id": p.id,
        "amount": money(p.amount_cents),
        "currency": p.currency,
        "reason": reason,
    })
}

/// Records the provider's final answer ([`Status::Succeeded`] or
/// [`Status::Declined`]) and its event, in one transaction.
pub async fn finish(
    db: &Db,
    p: &Payment,
    status: Status,
    reason: Option<&str>,
) -> Result<(), sqlx::Error> {
    let mut tx = db.pool().begin().await?;
    sqlx::query(
        "UPDATE payments SET status = $1, reason = $2, charging_until = NULL, updated_at = $3 \
         WHERE id = $4 AND status = 'charging'",
    )
    .bind(status.as_str())
    .bind(reason)
    .bind(now_rfc3339())
    .bind(&p.id)
    .execute(&mut *tx)
    .await?;
    if let Some(kind) = events::on_status(status) {
        let event = Envelope::new(kind, 1, ServiceName::Payments, event_data(p, reason));
        enqueue(&mut tx, &event).await?;
    }
    tx.commit().await
}

/// Records a failed (timed-out) provider call; the row may be charged again.
pub async fn fail(db: &Db, p: &Payment, error: &str) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE payments SET status = 'failed', reason = $1, charging_until = NULL, \
         updated_at = $2 WHERE id = $3 AND status = 'charging'",
    )
    .bind(error)
    .bind(now_rfc3339())
    .bind(&p.id)
    .execute(db.pool())
    .await?;
    Ok(())
}

/// Refunds a succeeded payment: the refund row (unique per order), the
/// payment's new status and the event, in one transaction.
pub async fn refund(db: &Db, p: &Payment) -> Result<(), sqlx::Error> {
    let mut tx = db.pool().begin().await?;
    let now = now_rfc3339();
    let changed = sqlx::query(
        "UPDATE payments SET status = 'refunded', updated_at = $1 WHERE id = $2 AND status = 'succeeded'",
    )
    .bind(&now)
    .bind(&p.id)
    .execute(&mut *tx)
    .await?;
    if changed.rows_affected() == 1 {
        sqlx::query(
            "INSERT INTO refunds (id, payment_id, order_id, amount_cents, created_at) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(uuid::Uuid::now_v7().to_string())
        .bind(&p.id)
        .bind(&p.order_id)
        .bind(p.amount_cents)
        .bind(&now)
        .execute(&mut *tx)
        .await?;
        let event = Envelope::new(
            events::PAYMENT_REFUNDED,
            1,
            ServiceName::Payments,
            event_data(p, None),
        );
        enqueue(&mut tx, &event).await?;
    }
    tx.commit().await
}

/// Visible payments: final ones, optionally of one order and/or one user.
/// Returns the total and one page.
pub async fn list(
    db: &Db,
    order_id: Option<&str>,
    user_id: Option<&str>,
    limit: i64,
    offset: i64,
) -> Result<(i64, Vec<Payment>), sqlx::Error> {
    let mut clause = String::from("status IN ('succeeded', 'declined', 'refunded')");
    let mut binds: Vec<&str> = Vec::new();
    if let Some(o) = order_id {
        binds.push(o);
        clause.push_str(&format!(" AND order_id = ${}", binds.len()));
    }
    if let Some(u) = user_id {
        binds.push(u);
        clause.push_str(&format!(" AND user_id = ${}", binds.len()));
    }
    let count_sql = format!("SELECT COUNT(*) FROM payments WHERE {clause}");
    let mut count = sqlx::query_scalar::<_, i64>(AssertSqlSafe(count_sql));
    for b in &binds {
        count = count.bind(*b);
    }
    let count = count.fetch_one(db.pool()).await?;
    let n = binds.len();
    let page_sql = format!(
        "SELECT {COLUMNS} FROM payments WHERE {clause} ORDER BY created_at DESC, id DESC \
         LIMIT ${} OFFSET ${}",
        n + 1,
        n + 2
    );
    let mut page = sqlx::query_as::<_, Payment>(AssertSqlSafe(page_sql));
    for b in &binds {
        page = page.bind(*b);
    }
    let rows = page.bind(limit).bind(offset).fetch_all(db.pool()).await?;
    Ok((count, rows))
}
