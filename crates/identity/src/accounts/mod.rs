//! Account use cases shared by the HTTP routes and `bazaar createsuperuser`:
//! validating a new account and creating it with its `user.registered`
//! event in one transaction; `admin` holds the operator commands' side.

pub mod admin;

use bazaar_kit::error::FieldErrors;
use bazaar_kit::events::{Envelope, outbox};
use bazaar_kit::{Db, ServiceName};
use serde::Serialize;

use crate::domain::{Email, PasswordPolicy, Username};
use crate::error::{IdentityError, Result};
use crate::store::users::{self, NewUser, UserRow};

/// Username already registered (any case).
pub const USERNAME_TAKEN: &str = "A user with that username already exists.";
/// Email already registered (any case).
pub const EMAIL_TAKEN: &str = "A user with that email already exists.";

/// A validated sign-up.
#[derive(Debug)]
pub struct SignUp {
    /// Username.
    pub username: Username,
    /// Email.
    pub email: Email,
}

fn push(errors: &mut FieldErrors, field: &str, message: impl Into<String>) {
    errors.entry(field.into()).or_default().push(message.into());
}

/// Applies every field rule, collecting all errors as DRF does.
pub fn validate_sign_up(
    username: &str,
    email: &str,
    password: &str,
) -> std::result::Result<SignUp, FieldErrors> {
    let mut errors = FieldErrors::new();
    let parsed_username = Username::parse(username)
        .map_err(|e| push(&mut errors, "username", e))
        .ok();
    let parsed_email = Email::parse(email)
        .map_err(|e| push(&mut errors, "email", e))
        .ok();
    for message in password_errors(password, username.trim(), email.trim()) {
        push(&mut errors, "password", message);
    }
    match (parsed_username, parsed_email) {
        (Some(username), Some(email)) if errors.is_empty() => Ok(SignUp { username, email }),
        _ => Err(errors),
    }
}

/// The password rules broken, given the user's attributes.
pub fn password_errors(password: &str, username: &str, email: &str) -> Vec<String> {
    if password.is_empty() {
        return vec![crate::domain::BLANK.into()];
    }
    PasswordPolicy {
        username: Some(username),
        email: Some(email),
    }
    .check(password)
}

/// Argon2 runs at most this many at once: each takes 19 MiB and a core's
/// worth of CPU, so more in flight only queue on the CPU and bloat memory
/// (the allocator keeps freed 19 MiB blocks resident).
static HASHING: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(4);

async fn hashing_permit() -> Result<tokio::sync::SemaphorePermit<'static>> {
    HASHING
        .acquire()
        .await
        .map_err(|e| IdentityError::Internal(e.to_string()))
}

/// Hashes off the async runtime (Argon2 takes tens of milliseconds).
pub async fn hash(password: String) -> Result<String> {
    let _permit = hashing_permit().await?;
    tokio::task::spawn_blocking(move || crate::domain::hash_password(&password))
        .await
        .map_err(|e| IdentityError::Internal(e.to_string()))?
        .map_err(IdentityError::Internal)
}

/// Verifies off the async runtime; `None` does a dummy verification.
pub async fn verify(password: String, phc: Option<String>) -> Result<bool> {
    let _permit = hashing_permit().await?;
    tokio::task::spawn_blocking(move || crate::domain::verify_password(&password, phc.as_deref()))
        .await
        .map_err(|e| IdentityError::Internal(e.to_string()))
}

/// `user.registered` v1 (docs/contracts.md).
#[derive(Debug, Serialize)]
struct Registered<'a> {
    user_id: &'a str,
    username: &'a str,
    email: &'a str,
}

/// 400 with the taken fields, if any.
pub async fn check_available(db: &Db, sign_up: &SignUp) -> Result<()> {
    let (username_taken, email_taken) = users::taken(
        db.pool(),
        &sign_up.username.folded(),
        &sign_up.email.folded(),
    )
    .await?;
    let mut errors = FieldErrors::new();
    if username_taken {
        push(&mut errors, "username", USERNAME_TAKEN);
    }
    if email_taken {
        push(&mut errors, "email", EMAIL_TAKEN);
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(IdentityError::Validation(errors))
    }
}

/// Maps a unique violation on insert/update to the 400 a client expects.
pub fn map_unique(e: sqlx::Error) -> IdentityError {
    match users::unique_field(&e) {
        Some("username") => IdentityError::field("username", USERNAME_TAKEN),
        Some(_) => IdentityError::field("email", EMAIL_TAKEN),
        None => IdentityError::Sql(e),
    }
}

/// Creates the user and its `user.registered` event in one transaction.
/// The caller nudges the bus after this returns.
pub async fn create(
    db: &Db,
    sign_up: &SignUp,
    password_hash: &str,
    is_staff: bool,
) -> Result<UserRow> {
    check_available(db, sign_up).await?;
    let id = uuid::Uuid::now_v7().to_string();
    let date_joined = bazaar_kit::clock::now_rfc3339();
    let new = NewUser {
        id: &id,
        username: sign_up.username.as_str(),
        username_ci: &sign_up.username.folded(),
        email: sign_up.email.as_str(),
        email_ci: &sign_up.email.folded(),
        password_hash,
        is_staff,
        date_joined: &date_joined,
    };
    let mut tx = db.pool().begin().await?;
    users::insert(&mut tx, &new).await.map_err(map_unique)?;
    let event = Envelope::new(
        crate::events::USER_REGISTERED,
        1,
        ServiceName::Identity,
        Registered {
            user_id: &id,
            username: new.username,
            email: new.email,
        },
    );
    outbox::enqueue(&mut tx, &event).await?;
    tx.commit().await.map_err(map_unique)?;
    Ok(UserRow {
        id: id.clone(),
        username: new.username.to_string(),
        email: new.email.to_string(),
        password_hash: password_hash.to_string(),
        is_staff,
        is_active: true,
        date_joined,
    })
}
