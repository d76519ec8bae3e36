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
#[schema(example = json!({"name": "Kitchen", "slug": "kitchen"}))]
pub struct CategoryBody {
    /// Display name, 1–100 characters (required, not blank).
    #[serde(default, deserialize_with = "bazaar_kit::extract::present")]
    #[schema(
        required = true,
        nullable = false,
        max_length = 100,
        pattern = "[^\\t\\n\\u000b\\f\\r \\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000]"
    )]
    name: Option<String>,
    /// 1–50 lowercase letters, digits, `-` and `_`; made from the name when
    /// absent.
    #[serde(default, deserialize_with = "bazaar_kit::extract::present")]
    #[schema(nullable = false, pattern = "^\\s*[a-z0-9_-]{1,50}\\s*$")]
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
