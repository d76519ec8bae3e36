//! `/api/v1/users/`: me (GET, PATCH), staff list with `?search=`, detail
//! (self or staff; anyone else's is a 404).

use axum::extract::{Path, State};
use bazaar_kit::auth::{AuthUser, StaffUser};
use bazaar_kit::extract::{Json, RequestUrl, query_map};
use bazaar_kit::pagination::{Page, PageRequest};
use serde::Deserialize;
use utoipa::ToSchema;

use super::UserOut;
use crate::AppState;
use crate::accounts::{self, map_unique};
use crate::domain::Email;
use crate::error::{IdentityError, Result};
use crate::store::{self, epoch};

/// The signed-in user.
#[utoipa::path(get, path = "/api/v1/users/me/", tag = "identity", security(("bearer" = [])),
    responses((status = 200, description = "The signed-in user", body = UserOut), (status = 401, description = "No or bad token")))]
#[tracing::instrument(skip_all, fields(user_id = %user.id))]
pub async fn me(State(state): State<AppState>, user: AuthUser) -> Result<Json<UserOut>> {
    let row = store::users::by_id(state.db.pool(), &user.id)
        .await?
        .ok_or(IdentityError::NotFound)?;
    Ok(Json(row.into()))
}

/// `PATCH /users/me/` body: any of `email`, `password` (others ignored).
#[derive(Debug, Deserialize, ToSchema)]
pub struct MePatch {
    /// A new email address (unique).
    #[serde(default)]
    #[schema(format = Email, max_length = 254)]
    email: Option<String>,
    /// A new password (the registration rules apply).
    #[serde(default)]
    #[schema(min_length = 8)]
    password: Option<String>,
}

/// Changes the email and/or password. A new password revokes every refresh
/// token of the user (all sessions end; access tokens expire on their own).
#[utoipa::path(patch, path = "/api/v1/users/me/", request_body = MePatch, tag = "identity", security(("bearer" = [])),
    responses((status = 200, description = "The updated user", body = UserOut),
        (status = 400, description = "Invalid or taken email, or weak password"),
        (status = 401, description = "No or bad token")))]
#[tracing::instrument(skip_all, fields(user_id = %user.id))]
pub async fn update_me(
    State(state): State<AppState>,
    user: AuthUser,
    Json(body): Json<MePatch>,
) -> Result<Json<UserOut>> {
    let current = store::users::by_id(state.db.pool(), &user.id)
        .await?
        .ok_or(IdentityError::NotFound)?;
    let mut errors = bazaar_kit::error::FieldErrors::new();
    let email = match &body.email {
        Some(raw) => match Email::parse(raw) {
            Ok(e) => Some(e),
            Err(msg) => {
                errors.insert("email".into(), vec![msg]);
                None
            }
        },
        None => None,
    };
    if let Some(password) = &body.password {
        let email_now = email.as_ref().map_or(current.email.as_str(), Email::as_str);
        let problems = accounts::password_errors(password, &current.username, email_now);
        if !problems.is_empty() {
            errors.insert("password".into(), problems);
        }
    }
    if !errors.is_empty() {
        return Err(IdentityError::Validation(errors));
    }
    let hash = match body.password {
        Some(p) => Some(accounts::hash(p).await?),
        None => None,
    };
    let mut tx = state.db.pool().begin().await?;
    if let Some(email) = &email {
        store::users::set_email(&mut tx, &user.id, email.as_str(), &email.folded())
            .await
            .map_err(map_unique)?;
    }
    if let Some(hash) = &hash {
        store::users::set_password(&mut tx, &user.id, hash).await?;
        let revoked = store::refresh::revoke_user(&mut tx, &user.id, epoch()).await?;
        tracing::info!(revoked, "password changed; refresh tokens revoked");
    }
    tx.commit().await.map_err(map_unique)?;
    let row = store::users::by_id(state.db.pool(), &user.id)
        .await?
        .ok_or(IdentityError::NotFound)?;
    Ok(Json(row.into()))
}

/// Every user (staff only), oldest first; `?search=` matches username or
/// email, case-insensitively.
#[utoipa::path(get, path = "/api/v1/users/", operation_id = "list_users", tag = "identity", security(("bearer" = [])),
    params(("search" = Option<String>, Query, description = "Part of a username or email"),
           ("page" = Option<u64>, Query), ("page_size" = Option<u64>, Query)),
    responses((status = 200, description = "A page of users", body = Page<UserOut>), (status = 401, description = "No or bad token"),
        (status = 403, description = "Not staff")))]
#[tracing::instrument(skip_all, fields(staff = %staff.0.id))]
pub async fn list(
    State(state): State<AppState>,
    staff: StaffUser,
    RequestUrl(url): RequestUrl,
) -> Result<Json<Page<UserOut>>> {
    let search = query_map(url.query())
        .get("search")
        .map(|s| s.trim().to_string())
        .unwrap_or_default();
    let mut page = PageRequest::from_url(url)?;
    let count = store::users::count(state.db.pool(), &search).await?;
    let count = u64::try_from(count).unwrap_or_default();
    page.resolve(count)?;
    let rows = store::users::list(state.db.pool(), &search, page.limit(), page.offset()).await?;
    Ok(Json(page.page(
        count,
        rows.into_iter().map(UserOut::from).collect(),
    )))
}

/// One user: yourself, or anyone when staff; otherwise 404.
#[utoipa::path(get, path = "/api/v1/users/{id}/", params(("id" = String, Path)), tag = "identity",
    security(("bearer" = [])),
    responses((status = 200, description = "The user", body = UserOut), (status = 401, description = "No or bad token"),
        (status = 404, description = "No such user, or not staff nor self")))]
#[tracing::instrument(skip_all, fields(user_id = %user.id))]
pub async fn detail(
    State(state): State<AppState>,
    user: AuthUser,
    Path(id): Path<String>,
) -> Result<Json<UserOut>> {
    if !user.is_staff && id != user.id {
        return Err(IdentityError::NotFound);
    }
    let row = store::users::by_id(state.db.pool(), &id)
        .await?
        .ok_or(IdentityError::NotFound)?;
    Ok(Json(row.into()))
}
