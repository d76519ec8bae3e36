//! The orders service's SQL, in one place (runs on SQLite and PostgreSQL).

pub mod idempotency;
pub mod saga;

use bazaar_kit::clock::now_millis;
use bazaar_kit::clock::now_rfc3339;
use bazaar_kit::events::Envelope;
use bazaar_kit::events::outbox::enqueue;
use bazaar_kit::{Db, ServiceName};
use serde_json::json;
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, AssertSqlSafe, FromRow, Row};

use crate::domain::order::NewOrder;
use crate::domain::{Status, money};
use crate::events;

/// An order row.
#[derive(Debug, Clone)]
pub struct OrderRow {
    /// Id (UUIDv7).
    pub id: String,
    /// Owner.
    pub user_id: String,
    /// Where the order is.
    pub status: Status,
    /// Why it was rejected, if it was.
    pub status_reason: Option<String>,
    /// Sum of line totals, cents.
    pub total_cents: i64,
    /// ISO currency.
    pub currency: String,
    /// Test token to charge.
    pub payment_token: String,
    /// Shipping address JSON.
    pub shipping_address: String,
    /// Whether a cancelled order still owes a refund/release.
    pub compensate: bool,
    /// Consecutive transient failures of the current step.
    pub attempts: i64,
    /// Charges that timed out so far.
    pub charge_attempts: i64,
    /// Creation time.
    pub created_at: String,
    /// Last change.
    pub updated_at: String,
}

/// An order line (the catalog's data at order time).
#[derive(Debug, Clone, FromRow)]
pub struct LineRow {
    /// Product id.
    pub product_id: String,
    /// Product name then.
    pub name: String,
    /// Unit price then, cents.
    pub unit_price_cents: i64,
    /// Units.
    pub quantity: i64,
    /// `unit_price × quantity`, cents.
    pub line_total_cents: i64,
}

/// One history entry.
#[derive(Debug, Clone, FromRow)]
pub struct HistoryRow {
    /// Status entered.
    pub status: String,
    /// Reason given.
    pub reason: Option<String>,
    /// When.
    pub at: String,
}

/// An order with its lines.
#[derive(Debug, Clone)]
pub struct Order {
    /// The row.
    pub row: OrderRow,
    /// Its lines.
    pub lines: Vec<LineRow>,
}

impl FromRow<'_, AnyRow> for OrderRow {
    fn from_row(row: &AnyRow) -> Result<Self, sqlx::Error> {
        let status: String = row.try_get("status")?;
        let status = Status::parse(&status).ok_or_else(|| sqlx::Error::ColumnDecode {
            index: "status".into(),
            source: format!("unknown order status {status:?}").into(),
        })?;
        let compensate: i64 = row.try_get("compensate")?;
        Ok(Self {
            id: row.try_get("id")?,
            user_id: row.try_get("user_id")?,
            status,
            status_reason: row.try_get("status_reason")?,
            total_cents: row.try_get("total_cents")?,
            currency: row.try_get("currency")?,
            payment_token: row.try_get("payment_token")?,
            shipping_address: row.try_get("shipping_address")?,
            compensate: compensate != 0,
            attempts: row.try_get("attempts")?,
            charge_attempts: row.try_get("charge_attempts")?,
            created_at: row.try_get("created_at")?,
            updated_at: row.try_get("updated_at")?,
        })
    }
}

impl Order {
    /// The order as first stored, from the domain's [`NewOrder`].
    pub fn from_new(new: NewOrder, now: String) -> Result<Self, serde_json::Error> {
        let row = OrderRow {
            id: new.id,
            user_id: new.user_id,
            status: new.status,
            status_reason: None,
            total_cents: new.total_cents,
            currency: new.currency,
            payment_token: new.payment_token,
            shipping_address: serde_json::to_string(&new.address)?,
            compensate: false,
            attempts: 0,
            charge_attempts: 0,
            created_at: now.clone(),
            updated_at: now,
        };
        let lines = new
            .lines
            .into_iter()
            .map(|l| LineRow {
                product_id: l.product_id,
                name: l.name,
                unit_price_cents: l.unit_price_cents,
                quantity: l.quantity,
                line_total_cents: l.line_total_cents,
            })
            .collect();
        Ok(Order { row, lines })
    }

    /// Where the order is.
    pub fn status(&self) -> Status {
        self.row.status
    }

    /// The `order.*` event payload of the contracts.
    pub fn event_data(&self, status: Status, reason: Option<&str>) -> serde_json::Value {
        json!({
            "order_id": self.row.id,
            "user_id": self.row.user_id,
            "status": status.as_str(),
            "status_reason": reason,
            "total": money(self.row.total_cents),
            "currency": self.row.currency,
            "items": self.lines.iter().map(|l| json!({
                "product_id": l.product_id,
                "name": l.name,
                "unit_price": money(l.unit_price_cents),
                "quantity": l.quantity,
                "line_total": money(l.line_total_cents),
            })).collect::<Vec<_>>(),
        })
    }
}

const ORDER_COLUMNS: &str = "id, user_id, status, status_reason, total_cents, currency, \
     payment_token, shipping_address, compensate, attempts, charge_attempts, created_at, updated_at";

/// Inserts a new (pending) order, its lines, first history entry and
/// `order.created` event through `conn` (the caller's transaction).
pub async fn insert(conn: &mut AnyConnection, order: &Order) -> Result<(), sqlx::Error> {
    let r = &order.row;
    sqlx::query(
        "INSERT INTO orders (id, user_id, status, status_reason, total_cents, currency, \
         payment_token, shipping_address, compensate, attempts, charge_attempts, next_attempt_at, \
         lease_until, created_at, updated_at, traceparent) \
         VALUES ($1, $2, $3, NULL, $4, $5, $6, $7, 0, 0, 0, $8, 0, $9, $9, $10)",
    )
    .bind(&r.id)
    .bind(&r.user_id)
    .bind(r.status.as_str())
    .bind(r.total_cents)
    .bind(&r.currency)
    .bind(&r.payment_token)
    .bind(&r.shipping_address)
    .bind(now_millis())
    .bind(&r.created_at)
    // The saga's steps join the placing request's trace (tracing on).
    .bind(bazaar_kit::telemetry::otel::current_traceparent())
    .execute(&mut *conn)
    .await?;
    for (i, l) in order.lines.iter().enumerate() {
        sqlx::query(
            "INSERT INTO order_lines (order_id, line_no, product_id, name, unit_price_cents, \
             quantity, line_total_cents) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&r.id)
        .bind(i as i64)
        .bind(&l.product_id)
        .bind(&l.name)
        .bind(l.unit_price_cents)
        .bind(l.quantity)
        .bind(l.line_total_cents)
        .execute(&mut *conn)
        .await?;
    }
    history(conn, &r.id, Status::Pending, None, &r.created_at).await?;
    let event = Envelope::new(
        events::ORDER_CREATED,
        1,
        ServiceName::Orders,
        order.event_data(Status::Pending, None),
    );
    enqueue(conn, &event).await
}

async fn history(
    conn: &mut AnyConnection,
    id: &str,
    status: Status,
    reason: Option<&str>,
    at: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query("INSERT INTO order_history (order_id, status, reason, at) VALUES ($1, $2, $3, $4)")
        .bind(id)
        .bind(status.as_str())
        .bind(reason)
        .bind(at)
        .execute(conn)
        .await?;
    Ok(())
}

/// One order with its lines.
pub async fn get(db: &Db, id: &str) -> Result<Option<Order>, sqlx::Error> {
    let row: Option<OrderRow> = sqlx::query_as(AssertSqlSafe(format!(
        "SELECT {ORDER_COLUMNS} FROM orders WHERE id = $1"
    )))
    .bind(id)
    .fetch_optional(db.pool())
    .await?;
    let Some(row) = row else { return Ok(None) };
    let lines = lines(db, id).await?;
    Ok(Some(Order { row, lines }))
}

/// The lines of an order.
pub async fn lines(db: &Db, id: &str) -> Result<Vec<LineRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT product_id, name, unit_price_cents, quantity, line_total_cents \
         FROM order_lines WHERE order_id = $1 ORDER BY line_no",
    )
    .bind(id)
    .fetch_all(db.pool())
    .await
}

/// The status history of an order, oldest first.
pub async fn history_of(db: &Db, id: &str) -> Result<Vec<HistoryRow>, sqlx::Error> {
    sqlx::query_as("SELECT status, reason, at FROM order_history WHERE order_id = $1 ORDER BY seq")
        .bind(id)
        .fetch_all(db.pool())
        .await
}

/// A page of orders (all, or one user's), newest first, and the total.
pub async fn list(
    db: &Db,
    user_id: Option<&str>,
    status: Option<&str>,
    limit: i64,
    offset: i64,
) -> Result<(i64, Vec<Order>), sqlx::Error> {
    let mut clause = String::from("1 = 1");
    let mut binds: Vec<&str> = Vec::new();
    for (column, value) in [("user_id", user_id), ("status", status)] {
        if let Some(v) = value {
            binds.push(v);
            clause.push_str(&format!(" AND {column} = ${}", binds.len()));
        }
    }
    let mut count = sqlx::query_scalar::<_, i64>(AssertSqlSafe(format!(
        "SELECT COUNT(*) FROM orders WHERE {clause}"
    )));
    for b in &binds {
        count = count.bind(*b);
    }
    let count = count.fetch_one(db.pool()).await?;
    let n = binds.len();
    let mut page = sqlx::query_as::<_, OrderRow>(AssertSqlSafe(format!(
        "SELECT {ORDER_COLUMNS} FROM orders WHERE {clause} ORDER BY created_at DESC, id DESC \
         LIMIT ${} OFFSET ${}",
        n + 1,
        n + 2
    )));
    for b in &binds {
        page = page.bind(*b);
    }
    let rows = page.bind(limit).bind(offset).fetch_all(db.pool()).await?;
    let mut orders = Vec::with_capacity(rows.len());
    for row in rows {
        let lines = lines(db, &row.id).await?;
        orders.push(Order { row, lines });
    }
    Ok((count, orders))
}

/// A status change that happened (broadcast to SSE streams).
#[derive(Clone, Debug)]
pub struct Change {
    /// Order id.
    pub order_id: String,
    /// New status.
    pub status: Status,
    /// Reason.
    pub reason: Option<String>,
    /// When.
    pub at: String,
}

/// A conditional status change.
pub struct Transition<'a> {
    /// Only from one of these statuses.
    pub from: &'a [Status],
    /// To this one.
    pub to: Status,
    /// With this reason.
    pub reason: Option<&'a str>,
    /// Mark a refund/release as owed (cancel).
    pub compensate: bool,
    /// Publish `order.<to>`.
    pub publish: bool,
}

/// Applies `t` to `order` if its status is still one of `t.from`: the
/// status, history and event commit together. `None` when the order moved on.
pub async fn transition(
    db: &Db,
    order: &Order,
    t: &Transition<'_>,
) -> Result<Option<Change>, sqlx::Error> {
    let at = now_rfc3339();
    let mut tx = db.pool().begin().await?;
    let from: Vec<String> = t.from.iter().map(|s| format!("'{}'", s.as_str())).collect();
    let done = sqlx::query(AssertSqlSafe(format!(
        "UPDATE orders SET status = $1, status_reason = $2, updated_at = $3, attempts = 0, \
         next_attempt_at = $4, compensate = $5 WHERE id = $6 AND status IN ({})",
        from.join(", ")
    )))
    .bind(t.to.as_str())
    .bind(t.reason)
    .bind(&at)
    .bind(now_millis())
    .bind(i64::from(t.compensate))
    .bind(&order.row.id)
    .execute(&mut *tx)
    .await?;
    if done.rows_affected() != 1 {
        tx.rollback().await?;
        return Ok(None);
    }
    history(&mut tx, &order.row.id, t.to, t.reason, &at).await?;
    if let Some(kind) = events::on_status(t.to).filter(|_| t.publish) {
        let event = Envelope::new(
            kind,
            1,
            ServiceName::Orders,
            order.event_data(t.to, t.reason),
        );
        enqueue(&mut tx, &event).await?;
    }
    tx.commit().await?;
    Ok(Some(Change {
        order_id: order.row.id.clone(),
        status: t.to,
        reason: t.reason.map(str::to_string),
        at,
    }))
}
