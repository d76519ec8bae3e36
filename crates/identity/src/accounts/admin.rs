//! Operator commands' logic (`bazaar createsuperuser`, `bazaar keys
//! rotate`). They work on identity's database directly, so they run beside
//! a live platform, on SQLite or PostgreSQL alike.

use bazaar_kit::{Config, Db, ServiceName};

use crate::accounts::{self, SignUp};
use crate::domain::{Email, Username, password::UNUSABLE};
use crate::error::IdentityError;
use crate::signing::keys::{self, Rotation};
use crate::store::users::{self, UserRow};

/// Opens (and migrates) identity's database as configured.
pub async fn open(config: &Config) -> anyhow::Result<Db> {
    let url = config.database_url(ServiceName::Identity);
    Ok(Db::connect(&url, &crate::MIGRATIONS, config.command_db_wait()).await?)
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

/// Opens identity's existing database without creating or migrating it
/// (commands that change one row must not build a schema on the side).
pub async fn open_existing(config: &Config) -> anyhow::Result<Db> {
    let url = config.database_url(ServiceName::Identity);
    match Db::open_existing(&url).await? {
        Some(db) => Ok(db),
        None => anyhow::bail!(
            "identity's database {} does not exist; run `bazaar migrate identity` first",
            bazaar_kit::config::redact_url(&url)
        ),
    }
}

/// A user's username and email, by username (case-insensitive).
pub async fn find_user(db: &Db, username: &str) -> Result<Option<UserRow>, IdentityError> {
    Ok(users::by_username(db.pool(), &crate::domain::username::fold(username)).await?)
}

/// Sets a user's password (Django's `changepassword`) and revokes their
/// refresh tokens, as a password change through the API does.
pub async fn change_password(
    db: &Db,
    user: &UserRow,
    password: String,
) -> Result<(), IdentityError> {
    let hash = accounts::hash(password).await?;
    let mut tx = db.pool().begin().await?;
    users::set_password(&mut tx, &user.id, &hash).await?;
    crate::store::refresh::revoke_user(&mut tx, &user.id, crate::store::epoch()).await?;
    tx.commit().await?;
    Ok(())
}
