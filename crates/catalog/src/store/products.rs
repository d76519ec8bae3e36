//! Products: reads (filters, search, orderings, pagination) and writes
//! (each announcing `product.changed` through the outbox).

use bazaar_kit::ServiceName;
use bazaar_kit::clock::now_rfc3339;
use bazaar_kit::db::Backend;
use bazaar_kit::events::{Envelope, outbox};
use serde::Serialize;
use sqlx::{AnyConnection, AssertSqlSafe, FromRow};

use bazaar_kit::Db;

use super::{Arg, begin_write, bind_all, bind_scalar, category_id};
use crate::domain::{Money, Ordering, ProductFilter, ProductPatch};
use crate::error::CatalogError;

/// A product as the API shows it.
#[derive(Clone, Debug, Serialize, FromRow, PartialEq, Eq, utoipa::ToSchema)]
pub struct Product {
    /// UUID.
    pub id: String,
    /// Unique SKU.
    pub sku: String,
    /// Display name.
    pub name: String,
    /// Long text.
    pub description: String,
    /// Price: a decimal string with two places (stored as cents).
    #[serde(rename = "price", serialize_with = "as_decimal")]
    #[schema(value_type = String, example = "19.99")]
    pub price_cents: i64,
    /// Always `USD`.
    pub currency: String,
    /// Category slug.
    pub category: String,
    /// Units on hand (not reserved).
    pub stock: i64,
    /// RFC 3339.
    pub created_at: String,
    /// RFC 3339.
    pub updated_at: String,
}

fn as_decimal<S: serde::Serializer>(cents: &i64, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(&Money::from_cents(*cents))
}

const SELECT: &str = "SELECT p.id, p.sku, p.name, p.description, p.price_cents, p.currency, \
     c.slug AS category, p.stock, p.created_at, p.updated_at \
     FROM products p JOIN categories c ON c.id = p.category_id";

/// `product.changed` v1 data.
#[derive(Serialize)]
struct ProductChanged<'a> {
    product_id: &'a str,
    sku: &'a str,
    change: &'a str,
}

async fn announce(
    conn: &mut AnyConnection,
    id: &str,
    sku: &str,
    change: &str,
) -> Result<(), sqlx::Error> {
    let data = ProductChanged {
        product_id: id,
        sku,
        change,
    };
    outbox::enqueue(
        conn,
        &Envelope::new(
            crate::events::PRODUCT_CHANGED,
            1,
            ServiceName::Catalog,
            data,
        ),
    )
    .await
}

/// One product.
#[tracing::instrument(skip(db))]
pub async fn product(db: &Db, id: &str) -> Result<Option<Product>, CatalogError> {
    let sql = format!("{SELECT} WHERE p.id = $1");
    Ok(sqlx::query_as::<_, Product>(AssertSqlSafe(sql))
        .bind(id)
        .fetch_optional(db.pool())
        .await?)
}

/// Products by id (unknown ids are absent), for the orders service.
#[tracing::instrument(skip(db, ids), fields(n = ids.len()))]
pub async fn products_by_ids(db: &Db, ids: &[String]) -> Result<Vec<Product>, CatalogError> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let marks: Vec<String> = (1..=ids.len()).map(|i| format!("${i}")).collect();
    let sql = format!("{SELECT} WHERE p.id IN ({})", marks.join(", "));
    let args: Vec<Arg> = ids.iter().cloned().map(Arg::Text).collect();
    Ok(
        bind_all(sqlx::query_as::<_, Product>(AssertSqlSafe(sql)), &args)
            .fetch_all(db.pool())
            .await?,
    )
}

/// The WHERE clause and binds of a filter; `category_id` is the
/// already-resolved category.
fn where_clause(db: &Db, filter: &ProductFilter, category_id: Option<&str>) -> (String, Vec<Arg>) {
    let mut clauses: Vec<String> = Vec::new();
    let mut args: Vec<Arg> = Vec::new();
    let next = |args: &mut Vec<Arg>, a: Arg| {
        args.push(a);
        format!("${}", args.len())
    };
    if !filter.terms.is_empty() {
        match db.backend() {
            Backend::Sqlite => {
                let q = filter
                    .terms
                    .iter()
                    .map(|t| format!("\"{t}\"*"))
                    .collect::<Vec<_>>()
                    .join(" AND ");
                let m = next(&mut args, Arg::Text(q));
                clauses.push(format!(
                    "p.pk IN (SELECT rowid FROM products_fts WHERE products_fts MATCH {m})"
                ));
            }
            Backend::Postgres => {
                let q = filter
                    .terms
                    .iter()
                    .map(|t| format!("{t}:*"))
                    .collect::<Vec<_>>()
                    .join(" & ");
                let m = next(&mut args, Arg::Text(q));
                clauses.push(format!("p.search @@ to_tsquery('simple', {m})"));
            }
        }
    }
    if let Some(c) = category_id {
        let m = next(&mut args, Arg::Text(c.to_string()));
        clauses.push(format!("p.category_id = {m}"));
    }
    if let Some(lo) = filter.min_price {
        let m = next(&mut args, Arg::Int(lo));
        clauses.push(format!("p.price_cents >= {m}"));
    }
    if let Some(hi) = filter.max_price {
        let m = next(&mut args, Arg::Int(hi));
        clauses.push(format!("p.price_cents <= {m}"));
    }
    match filter.in_stock {
        Some(true) => clauses.push("p.stock > 0".into()),
        Some(false) => clauses.push("p.stock = 0".into()),
        None => {}
    }
    let text = if clauses.is_empty() {
        String::new()
    } else {
        format!(" WHERE {}", clauses.join(" AND "))
    };
    (text, args)
}

/// How many products match.
#[tracing::instrument(skip(db))]
pub async fn count_products(
    db: &Db,
    filter: &ProductFilter,
    category_id: Option<&str>,
) -> Result<u64, CatalogError> {
    let (clause, args) = where_clause(db, filter, category_id);
    let sql = format!("SELECT COUNT(*) FROM products p{clause}");
    let n: i64 = bind_scalar(sqlx::query_scalar(AssertSqlSafe(sql)), &args)
        .fetch_one(db.pool())
        .await?;
    Ok(n.max(0) as u64)
}

/// One page of matching products, in the filter's order.
#[tracing::instrument(skip(db))]
pub async fn list_products(
    db: &Db,
    filter: &ProductFilter,
    category_id: Option<&str>,
    limit: i64,
    offset: i64,
) -> Result<Vec<Product>, CatalogError> {
    let (clause, mut args) = where_clause(db, filter, category_id);
    let name = match db.backend() {
        Backend::Sqlite => "p.name",
        Backend::Postgres => "p.name COLLATE \"C\"",
    };
    let order = match filter.ordering {
        Ordering::Price => "p.price_cents ASC, p.id ASC".to_string(),
        Ordering::PriceDesc => "p.price_cents DESC, p.id DESC".to_string(),
        Ordering::Name => format!("{name} ASC, p.id ASC"),
        Ordering::NameDesc => format!("{name} DESC, p.id DESC"),
        Ordering::CreatedAt => "p.created_at ASC, p.id ASC".to_string(),
        Ordering::CreatedAtDesc => "p.created_at DESC, p.id DESC".to_string(),
    };
    args.push(Arg::Int(limit));
    let l = args.len();
    args.push(Arg::Int(offset));
    let o = args.len();
    let sql = format!("{SELECT}{clause} ORDER BY {order} LIMIT ${l} OFFSET ${o}");
    Ok(
        bind_all(sqlx::query_as::<_, Product>(AssertSqlSafe(sql)), &args)
            .fetch_all(db.pool())
            .await?,
    )
}

/// Creates a product from a full (validated) body.
#[tracing::instrument(skip(db, p))]
pub async fn create_product(db: &Db, p: ProductPatch) -> Result<Product, CatalogError> {
    let category = p.category.as_deref().unwrap_or_default();
    let category_id = category_id(db, category)
        .await?
        .ok_or_else(|| CatalogError::field("category", invalid_category(category)))?;
    let id = uuid::Uuid::now_v7().to_string();
    let sku = p
        .sku
        .as_ref()
        .map(|s| s.as_str().to_string())
        .unwrap_or_default();
    let now = now_rfc3339();
    let mut tx = begin_write(db).await?;
    sqlx::query(
        "INSERT INTO products (id, sku, name, description, price_cents, currency, \
         category_id, stock, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9)",
    )
    .bind(&id)
    .bind(&sku)
    .bind(p.name.unwrap_or_default())
    .bind(p.description.unwrap_or_default())
    .bind(p.price.map(Money::cents).unwrap_or_default())
    .bind(p.currency.unwrap_or_else(|| "USD".into()))
    .bind(&category_id)
    .bind(p.stock.unwrap_or_default())
    .bind(&now)
    .execute(&mut *tx)
    .await?;
    announce(&mut tx, &id, &sku, "created").await?;
    tx.commit().await?;
    product(db, &id).await?.ok_or(CatalogError::NotFound)
}

/// Applies a (validated) patch; PUT passes a full one.
#[tracing::instrument(skip(db, p))]
pub async fn update_product(db: &Db, id: &str, p: ProductPatch) -> Result<Product, CatalogError> {
    let category_id = match p.category.as_deref() {
        Some(slug) => Some(
            category_id(db, slug)
                .await?
                .ok_or_else(|| CatalogError::field("category", invalid_category(slug)))?,
        ),
        None => None,
    };
    let mut tx = begin_write(db).await?;
    // The UPDATE comes first so SQLite takes its write lock at once.
    let done = sqlx::query(
        "UPDATE products SET sku = COALESCE($1, sku), name = COALESCE($2, name), \
         description = COALESCE($3, description), price_cents = COALESCE($4, price_cents), \
         currency = COALESCE($5, currency), category_id = COALESCE($6, category_id), \
         stock = COALESCE($7, stock), updated_at = $8 WHERE id = $9",
    )
    .bind(p.sku.as_ref().map(|s| s.as_str().to_string()))
    .bind(p.name)
    .bind(p.description)
    .bind(p.price.map(Money::cents))
    .bind(p.currency)
    .bind(category_id)
    .bind(p.stock)
    .bind(now_rfc3339())
    .bind(id)
    .execute(&mut *tx)
    .await?;
    if done.rows_affected() == 0 {
        return Err(CatalogError::NotFound);
    }
    let sql = format!("{SELECT} WHERE p.id = $1");
    let product = sqlx::query_as::<_, Product>(AssertSqlSafe(sql))
        .bind(id)
        .fetch_one(&mut *tx)
        .await?;
    announce(&mut tx, id, &product.sku, "updated").await?;
    tx.commit().await?;
    Ok(product)
}

/// Deletes a product.
#[tracing::instrument(skip(db))]
pub async fn delete_product(db: &Db, id: &str) -> Result<(), CatalogError> {
    let mut tx = begin_write(db).await?;
    let sku: Option<String> =
        sqlx::query_scalar("DELETE FROM products WHERE id = $1 RETURNING sku")
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?;
    let Some(sku) = sku else {
        return Err(CatalogError::NotFound);
    };
    announce(&mut tx, id, &sku, "deleted").await?;
    tx.commit().await?;
    Ok(())
}

/// django-filter's and DRF's wording for an unknown related object.
pub fn invalid_category(slug: &str) -> String {
    format!("Object with slug={slug} does not exist.")
}
