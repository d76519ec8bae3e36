//! `/api/v1/categories/`.

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use bazaar_kit::Problem;
use bazaar_kit::auth::StaffUser;
use bazaar_kit::extract::Json;
use bazaar_kit::pagination::{Page, PageRequest};
use serde::Deserialize;

use super::AppState;
use crate::domain::Slug;
use crate::error::CatalogError;
use crate::store;
use crate::store::Category;

/// Routes of this resource.
pub fn router() -> Router<AppState> {
    Router::new().route("/api/v1/categories", get(list).post(create))
}

/// Every category, by name.
#[utoipa::path(get, path = "/api/v1/categories/", operation_id = "list_categories", tag = "catalog",
    params(("page" = Option<u64>, Query, description = "page number (or `last`)"),
           ("page_size" = Option<u64>, Query, description = "items per page (default 20, max 100)")),
    responses((status = 200, description = "a page of categories", body = Page<Category>),
              (status = 404, description = "no such page")))]
#[tracing::instrument(skip_all)]
async fn list(State(state): State<AppState>, mut pr: PageRequest) -> Result<Response, Problem> {
    let count = store::count_categories(&state.db).await?;
    pr.resolve(count)?;
    let results = store::list_categories(&state.db, pr.limit(), pr.offset()).await?;
    Ok(Json(pr.page(count, results)).into_response())
}

/// `POST /categories/` body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct CategoryBody {
    /// Display name, 1–100 characters (required).
    name: Option<String>,
    /// Lowercase letters, digits, `-` and `_`; made from the name when absent.
    slug: Option<String>,
}

/// Creates a category (staff).
#[utoipa::path(post, path = "/api/v1/categories/", operation_id = "create_category", tag = "catalog",
    request_body = CategoryBody,
    responses((status = 201, description = "created", body = Category),
              (status = 400, description = "invalid or taken name/slug"),
              (status = 401, description = "no or bad token"),
              (status = 403, description = "not staff")),
    security(("bearer" = [])))]
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
    let category = store::create_category(&state.db, &name, &slug).await?;
    state.written();
    Ok((StatusCode::CREATED, Json(category)).into_response())
}
