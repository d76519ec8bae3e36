//! `/api/v1/categories/`.

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use bazaar_kit::Problem;
use bazaar_kit::auth::StaffUser;
use bazaar_kit::extract::Json;
use bazaar_kit::pagination::PageRequest;
use serde::Deserialize;

use super::AppState;
use crate::domain::Slug;
use crate::error::CatalogError;

/// Routes of this resource.
pub fn router() -> Router<AppState> {
    Router::new().route("/api/v1/categories", get(list).post(create))
}

#[tracing::instrument(skip_all)]
async fn list(State(state): State<AppState>, mut pr: PageRequest) -> Result<Response, Problem> {
    let count = state.store.count_categories().await?;
    pr.resolve(count)?;
    let results = state.store.list_categories(pr.limit(), pr.offset()).await?;
    Ok(Json(pr.page(count, results)).into_response())
}

#[derive(Debug, Deserialize)]
struct CategoryBody {
    name: Option<String>,
    slug: Option<String>,
}

#[tracing::instrument(skip_all)]
async fn create(
    State(state): State<AppState>,
    _staff: StaffUser,
    Json(body): Json<CategoryBody>,
) -> Result<Response, Problem> {
    let name = body.name.unwrap_or_default().trim().to_string();
    if name.is_empty() {
        return Err(CatalogError::field("name", "This field is required.").into());
    }
    if name.chars().count() > 100 {
        return Err(CatalogError::field(
            "name",
            "Ensure this field has no more than 100 characters.",
        )
        .into());
    }
    let slug = match body.slug {
        Some(s) => Slug::parse(&s),
        None => Slug::from_name(&name),
    }
    .map_err(|e| CatalogError::field("slug", e))?;
    let category = state.store.create_category(&name, &slug).await?;
    state.written();
    Ok((StatusCode::CREATED, Json(category)).into_response())
}
