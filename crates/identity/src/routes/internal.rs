//! `/internal/` routes for other services (service token required).

use axum::extract::{Path, State};
use bazaar_kit::auth::ServiceCaller;
use bazaar_kit::extract::Json;
use serde::Serialize;

use crate::AppState;
use crate::error::{IdentityError, Result};
use crate::store;

/// docs/contracts.md: `{id, username, email, is_staff}`.
#[derive(Debug, Serialize)]
pub struct InternalUser {
    id: String,
    username: String,
    email: String,
    is_staff: bool,
}

/// `GET /internal/users/{id}` (scope `identity:read`).
#[tracing::instrument(skip_all, fields(caller = %caller.name))]
pub async fn user(
    State(state): State<AppState>,
    caller: ServiceCaller,
    Path(id): Path<String>,
) -> Result<Json<InternalUser>> {
    caller.require("identity:read")?;
    let row = store::users::by_id(state.db.pool(), &id)
        .await?
        .ok_or(IdentityError::NotFound)?;
    Ok(Json(InternalUser {
        id: row.id,
        username: row.username,
        email: row.email,
        is_staff: row.is_staff,
    }))
}
