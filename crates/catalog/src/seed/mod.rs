//! The demo catalog: `bazaar up` seeds it into an empty catalog on first
//! start; `bazaar seed --products N` grows the catalog to N products.
//! Rows go in as multi-row INSERTs inside one transaction (no events: a
//! demo catalog is not news to other services).

pub mod data;

use bazaar_kit::Db;
use bazaar_kit::clock::format_rfc3339;
use bazaar_kit::db::Backend;
use sqlx::AssertSqlSafe;
use sqlx::any::AnyArguments;
use sqlx::{Any, Arguments};

/// Products in the demo catalog `bazaar up` seeds.
pub const DEMO_PRODUCTS: u64 = 1_000;
/// Rows per INSERT (10 binds each; well under both engines' limits).
const BATCH: usize = 500;

/// What a seeding run did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SeedReport {
    /// Categories created.
    pub categories: u64,
    /// Products created.
    pub products: u64,
    /// Products in the catalog afterwards.
    pub total: u64,
}

/// Seeds the demo catalog when the catalog holds no products at all.
pub async fn seed_if_empty(db: &Db) -> Result<Option<SeedReport>, sqlx::Error> {
    let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM products")
        .fetch_one(db.pool())
        .await?;
    if n > 0 {
        return Ok(None);
    }
    seed(db, DEMO_PRODUCTS).await.map(Some)
}

/// Creates the demo categories (when missing) and adds generated products
/// until the catalog holds at least `target`.
pub async fn seed(db: &Db, target: u64) -> Result<SeedReport, sqlx::Error> {
    let mut tx = match db.backend() {
        Backend::Sqlite => db.pool().begin_with("BEGIN IMMEDIATE").await?,
        Backend::Postgres => db.pool().begin().await?,
    };
    let started = time::OffsetDateTime::now_utc();
    let mut categories = 0;
    let mut category_ids = Vec::with_capacity(data::CATEGORIES.len());
    for spec in data::CATEGORIES {
        let id = uuid::Uuid::now_v7().to_string();
        let done = sqlx::query(
            "INSERT INTO categories (id, name, slug, created_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (slug) DO NOTHING",
        )
        .bind(&id)
        .bind(spec.name)
        .bind(spec.slug)
        .bind(format_rfc3339(started))
        .execute(&mut *tx)
        .await?;
        categories += done.rows_affected();
        let id: String = sqlx::query_scalar("SELECT id FROM categories WHERE slug = $1")
            .bind(spec.slug)
            .fetch_one(&mut *tx)
            .await?;
        category_ids.push(id);
    }
    let existing: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM products")
        .fetch_one(&mut *tx)
        .await?;
    let existing = existing.max(0) as u64;
    let mut created = 0;
    let mut next = existing;
    while next < target {
        let end = (next + BATCH as u64).min(target);
        let mut sql = String::from(
            "INSERT INTO products (id, sku, name, description, price_cents, currency, \
             category_id, stock, created_at, updated_at) VALUES ",
        );
        let mut args = AnyArguments::default();
        for (row, i) in (next..end).enumerate() {
            let p = data::product(i);
            // Spread creation times over the past so `ordering=created_at`
            // means something; product i is always i seconds after product 0.
            let at = started - time::Duration::seconds((target - i) as i64);
            let at = format_rfc3339(at);
            let base = row * 10;
            if row > 0 {
                sql.push_str(", ");
            }
            sql.push('(');
            for col in 1..=10 {
                if col > 1 {
                    sql.push_str(", ");
                }
                sql.push_str(&format!("${}", base + col));
            }
            sql.push(')');
            let bind_err = |e| sqlx::Error::Encode(e);
            args.add(uuid::Uuid::now_v7().to_string())
                .map_err(bind_err)?;
            args.add(p.sku).map_err(bind_err)?;
            args.add(p.name).map_err(bind_err)?;
            args.add(p.description).map_err(bind_err)?;
            args.add(p.price_cents).map_err(bind_err)?;
            args.add("USD".to_string()).map_err(bind_err)?;
            args.add(category_ids[p.category].clone())
                .map_err(bind_err)?;
            args.add(p.stock).map_err(bind_err)?;
            args.add(at.clone()).map_err(bind_err)?;
            args.add(at).map_err(bind_err)?;
        }
        sql.push_str(" ON CONFLICT (sku) DO NOTHING");
        let done = sqlx::query_with::<Any, _>(AssertSqlSafe(sql), args)
            .execute(&mut *tx)
            .await?;
        created += done.rows_affected();
        next = end;
    }
    tx.commit().await?;
    Ok(SeedReport {
        categories,
        products: created,
        total: existing + created,
    })
}
