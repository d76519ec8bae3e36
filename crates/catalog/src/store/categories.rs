//! Categories.

use bazaar_kit::clock::now_rfc3339;
use serde::Serialize;
use sqlx::FromRow;

use bazaar_kit::Db;

use crate::domain::Slug;
use crate::error::CatalogError;

/// A category as the API shows it.
#[derive(Clone, Debug, Serialize, FromRow, PartialEq, Eq, utoipa::ToSchema)]
pub struct Category {
    /// UUID.
    pub id: String,
    /// Display name.
    pub name: String,
    /// Unique slug (what products name).
    pub slug: String,
}

/// The id of the category with `slug`.
pub async fn category_id(db: &Db, slug: &str) -> Result<Option<String>, CatalogError> {
    // fetch_all steps the statement to completion, so no read
    // snapshot lingers on the pooled SQLite connection.
    let ids: Vec<String> = sqlx::query_scalar("SELECT id FROM categories WHERE slug = $1")
        .bind(slug)
        .fetch_all(db.pool())
        .await?;
    Ok(ids.into_iter().next())
}

/// How many categories exist.
pub async fn count_categories(db: &Db) -> Result<u64, CatalogError> {
    let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM categories")
        .fetch_one(db.pool())
        .await?;
    Ok(n.max(0) as u64)
}

/// One page of categories, by name.
pub async fn list_categories(
    db: &Db,
    limit: i64,
    offset: i64,
) -> Result<Vec<Category>, CatalogError> {
    Ok(sqlx::query_as::<_, Category>(
        "SELECT id, name, slug FROM categories ORDER BY name, id LIMIT $1 OFFSET $2",
    )
    .bind(limit)
    .bind(offset)
    .fetch_all(db.pool())
    .await?)
}

/// Creates a category; a taken slug is a 400 on `slug`.
#[tracing::instrument(skip(db))]
pub async fn create_category(db: &Db, name: &str, slug: &Slug) -> Result<Category, CatalogError> {
    let category = Category {
        id: uuid::Uuid::now_v7().to_string(),
        name: name.to_string(),
        slug: slug.as_str().to_string(),
    };
    sqlx::query("INSERT INTO categories (id, name, slug, created_at) VALUES ($1, $2, $3, $4)")
        .bind(&category.id)
        .bind(&category.name)
        .bind(&category.slug)
        .bind(now_rfc3339())
        .execute(db.pool())
        .await?;
    Ok(category)
}
