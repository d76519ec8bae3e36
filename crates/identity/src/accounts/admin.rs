//! Operator commands' logic (`bazaar createsuperuser`, `bazaar keys
//! rotate`). They work on identity's database directly, so they run beside
//! a live platform, on SQLite or PostgreSQL alike.

use std::time::Duration;

use bazaar_kit::{Config, Db, ServiceName};

use crate::accounts::{self, SignUp};
use crate::domain::{Email, Username, password::UNUSABLE};
use crate::error::IdentityError;
use crate::signing::keys::{self, Rotation};
use crate::store::users::{self, UserRow};

/// Opens (and migrates) identity's database as configured.
pub async fn open(config: &Config) -> anyhow::Result<Db> {
    let url = config.database_url(ServiceName::Identity);
    Ok(Db::connect(
        &url,
        &crate::MIGRATIONS,
        Duration::from_secs(config.db_connect_timeout_secs),
    )
    .await?)
}

/// A username that is valid and free, or Django's error text.
pub async fn check_username(db: &Db, raw: &str) -> Result<Username, String> {
    let username = Username::parse(raw)?;
    match users::by_username(db.pool(), &username.folded()).await {
        Ok(None) => Ok(username),
        Ok(Some(_)) => Err("That username is already taken.".into()),
        Err(e) => Err(format!("database error: {e}")),
    }
}

/// A valid email address that no account uses, or the error text.
pub async fn check_email(db: &Db, raw: &str) -> Result<Email, String> {
    let email = Email::parse(raw)?;
    match users::taken(db.pool(), "", &email.folded()).await {
        Ok((_, false)) => Ok(email),
        Ok((_, true)) => Err(accounts::EMAIL_TAKEN.into()),
        Err(e) => Err(format!("database error: {e}")),
    }
}

/// Creates a staff superuser. `None` password: an unusable one, as Django
/// does with `--noinput` and no password in the environment. Its
/// `user.registered` event goes through the outbox like any sign-up.
pub async fn create_superuser(
    db: &Db,
    username: Username,
    email: Email,
    password: Option<String>,
) -> Result<UserRow, IdentityError> {
    let hash = match password {
        Some(p) => accounts::hash(p).await?,
        None => UNUSABLE.to_string(),
    };
    accounts::create(db, &SignUp { username, email }, &hash, true).await
}

/// Rotates the signing keys (see [`keys::rotate`]).
pub async fn rotate_keys(db: &Db) -> Result<Rotation, IdentityError> {
    Ok(keys::rotate(db).await?)
}
