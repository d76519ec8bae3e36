//! The `users` table.

use sqlx::any::AnyRow;
use sqlx::{AnyConnection, AnyPool, Row};

/// A stored user.
#[derive(Clone, Debug)]
pub struct UserRow {
    /// UUIDv7.
    pub id: String,
    /// As registered.
    pub username: String,
    /// Normalised address.
    pub email: String,
    /// Argon2id PHC string (or `!`, unusable).
    pub password_hash: String,
    /// Staff flag.
    pub is_staff: bool,
    /// Inactive users cannot log in.
    pub is_active: bool,
    /// RFC 3339.
    pub date_joined: String,
}

/// A user about to be inserted.
#[derive(Debug)]
pub struct NewUser<'a> {
    /// UUIDv7.
    pub id: &'a str,
    /// As given.
    pub username: &'a str,
    /// Case-folded username.
    pub username_ci: &'a str,
    /// Normalised email.
    pub email: &'a str,
    /// Case-folded email.
    pub email_ci: &'a str,
    /// PHC string.
    pub password_hash: &'a str,
    /// Staff (createsuperuser only).
    pub is_staff: bool,
    /// RFC 3339.
    pub date_joined: &'a str,
}

const COLUMNS: &str = "id, username, email, password_hash, is_staff, is_active, date_joined";

fn from_row(row: &AnyRow) -> Result<UserRow, sqlx::Error> {
    Ok(UserRow {
        id: row.try_get("id")?,
        username: row.try_get("username")?,
        email: row.try_get("email")?,
        password_hash: row.try_get("password_hash")?,
        is_staff: row.try_get::<i64, _>("is_staff")? != 0,
        is_active: row.try_get::<i64, _>("is_active")? != 0,
        date_joined: row.try_get("date_joined")?,
    })
}

/// The field a unique violation is about (`username` or `email`).
pub fn unique_field(e: &sqlx::Error) -> Option<&'static str> {
    let what = bazaar_kit::db::unique_violation(e)?;
    if what.contains("username") {
        Some("username")
    } else if what.contains("email") {
        Some("email")
    } else {
        None
    }
}

/// Inserts a user (within the caller's transaction).
#[tracing::instrument(skip(conn, user), fields(id = user.id))]
pub async fn insert(conn: &mut AnyConnection, user: &NewUser<'_>) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO users (id, username, username_ci, email, email_ci, password_hash, \
         is_staff, is_superuser, is_active, date_joined) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 1, $9)",
    )
    .bind(user.id)
    .bind(user.username)
    .bind(user.username_ci)
    .bind(user.email)
    .bind(user.email_ci)
    .bind(user.password_hash)
    .bind(i64::from(user.is_staff))
    .bind(i64::from(user.is_staff))
    .bind(user.date_joined)
    .execute(conn)
    .await?;
    Ok(())
}

/// Whether the folded username / email are already taken.
#[tracing::instrument(skip(pool))]
pub async fn taken(
    pool: &AnyPool,
    username_ci: &str,
    email_ci: &str,
) -> Result<(bool, bool), sqlx::Error> {
    let rows = sqlx::query(
        "SELECT username_ci, email_ci FROM users WHERE username_ci = $1 OR email_ci = $2",
    )
    .bind(username_ci)
    .bind(email_ci)
    .fetch_all(pool)
    .await?;
    let mut result = (false, false);
    for row in rows {
        result.0 |= row.try_get::<String, _>("username_ci")? == username_ci;
        result.1 |= row.try_get::<String, _>("email_ci")? == email_ci;
    }
    Ok(result)
}

/// A user by folded username.
#[tracing::instrument(skip(pool))]
pub async fn by_username(
    pool: &AnyPool,
    username_ci: &str,
) -> Result<Option<UserRow>, sqlx::Error> {
    let sql = format!("SELECT {COLUMNS} FROM users WHERE username_ci = $1");
    let row = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(username_ci)
        .fetch_optional(pool)
        .await?;
    row.as_ref().map(from_row).transpose()
}

/// A user by id.
#[tracing::instrument(skip(ex))]
pub async fn by_id<'e, E>(ex: E, id: &str) -> Result<Option<UserRow>, sqlx::Error>
where
    E: sqlx::Executor<'e, Database = sqlx::Any>,
{
    let sql = format!("SELECT {COLUMNS} FROM users WHERE id = $1");
    let row = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(id)
        .fetch_optional(ex)
        .await?;
    row.as_ref().map(from_row).transpose()
}

/// Changes a user's email.
#[tracing::instrument(skip(conn))]
pub async fn set_email(
    conn: &mut AnyConnection,
    id: &str,
    email: &str,
    email_ci: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE users SET email = $1, email_ci = $2 WHERE id = $3")
        .bind(email)
        .bind(email_ci)
        .bind(id)
        .execute(conn)
        .await?;
    Ok(())
}

/// Changes a user's password hash.
#[tracing::instrument(skip(conn, hash))]
pub async fn set_password(
    conn: &mut AnyConnection,
    id: &str,
    hash: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE users SET password_hash = $1 WHERE id = $2")
        .bind(hash)
        .bind(id)
        .execute(conn)
        .await?;
    Ok(())
}

/// Records a successful login.
#[tracing::instrument(skip(pool))]
pub async fn touch_login(pool: &AnyPool, id: &str, at: &str) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE users SET last_login = $1 WHERE id = $2")
        .bind(at)
        .bind(id)
        .execute(pool)
        .await?;
    Ok(())
}

/// `LIKE` pattern matching `needle` anywhere, wildcards escaped.
fn contains_pattern(needle: &str) -> String {
    let escaped = needle
        .to_lowercase()
        .replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_");
    format!("%{escaped}%")
}

const SEARCH: &str = "($1 = '' OR username_ci LIKE $2 ESCAPE '\\' OR email_ci LIKE $2 ESCAPE '\\')";

/// How many users match `search` (username or email, case-insensitive).
#[tracing::instrument(skip(pool))]
pub async fn count(pool: &AnyPool, search: &str) -> Result<i64, sqlx::Error> {
    let sql = format!("SELECT COUNT(*) AS n FROM users WHERE {SEARCH}");
    let row = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(search)
        .bind(contains_pattern(search))
        .fetch_one(pool)
        .await?;
    row.try_get("n")
}

/// One page of users matching `search`, oldest first.
#[tracing::instrument(skip(pool))]
pub async fn list(
    pool: &AnyPool,
    search: &str,
    limit: i64,
    offset: i64,
) -> Result<Vec<UserRow>, sqlx::Error> {
    let sql = format!(
        "SELECT {COLUMNS} FROM users WHERE {SEARCH} ORDER BY date_joined, id LIMIT $3 OFFSET $4"
    );
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(search)
        .bind(contains_pattern(search))
        .bind(limit)
        .bind(offset)
        .fetch_all(pool)
        .await?;
    rows.iter().map(from_row).collect()
}
