//! `/api/v1/products/`: list (filters, search, ordering, pagination) and
//! detail are public and cached; writes are staff only.

use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use bazaar_kit::Problem;
use bazaar_kit::auth::StaffUser;
use bazaar_kit::extract::{Json, RequestUrl, query_map};
use bazaar_kit::pagination::{Page, PageRequest};

use super::{AppState, json_bytes, to_bytes};
use crate::domain::product::{ProductCreate, ProductPatchDoc};
use crate::domain::{Ordering, ProductBody, ProductFilter};
use crate::error::CatalogError;
use crate::store;
use crate::store::Product;
use crate::store::products::invalid_category;

/// Routes of this resource.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/products", get(list).post(create))
        .route(
            "/api/v1/products/{id}",
            get(detail).put(replace).patch(update).delete(remove),
        )
}

/// `GET /products/` query parameters (documentation only: the handler
/// parses them with [`ProductFilter::parse`] and [`PageRequest`]).
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
struct ListParams {
    /// Words that must all start a word of the name or description.
    search: Option<String>,
    /// A category slug.
    category: Option<String>,
    /// Lowest price, inclusive (decimal, e.g. `5` or `19.99`).
    #[param(
        pattern = r"^\s*((?=\+?\.?[0-9])\+?0*[0-9]{0,8}(\.[0-9]{0,2}0*)?|-(?=\.?0)0*(\.0*)?)?\s*$"
    )]
    min_price: Option<String>,
    /// Highest price, inclusive (decimal).
    #[param(
        pattern = r"^\s*((?=\+?\.?[0-9])\+?0*[0-9]{0,8}(\.[0-9]{0,2}0*)?|-(?=\.?0)0*(\.0*)?)?\s*$"
    )]
    max_price: Option<String>,
    /// `true`: only products in stock; `false`: only those out of stock.
    #[param(schema_with = in_stock_schema)]
    in_stock: Option<String>,
    #[param(schema_with = ordering_schema)]
    ordering: Option<String>,
    /// Page number (or `last`).
    page: Option<u64>,
    /// Items per page (default 20, max 100).
    page_size: Option<u64>,
}

fn in_stock_schema() -> utoipa::openapi::schema::Object {
    utoipa::openapi::schema::ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::Type::String)
        .enum_values(Some(["true", "false", "True", "False", "1", "0"]))
        .build()
}

fn ordering_schema() -> utoipa::openapi::schema::Object {
    utoipa::openapi::schema::ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::Type::String)
        .enum_values(Some(Ordering::CHOICES.split(", ")))
        .description(Some("Sort order (default `-created_at`)."))
        .build()
}

/// Products matching the filters, paginated.
#[utoipa::path(get, path = "/api/v1/products/", operation_id = "list_products", tag = "catalog",
    params(ListParams),
    responses((status = 200, description = "a page of products", body = Page<Product>),
              (status = 400, description = "a bad filter value (named in `errors`)"),
              (status = 404, description = "no such page")))]
#[tracing::instrument(skip_all)]
async fn list(
    State(state): State<AppState>,
    RequestUrl(url): RequestUrl,
) -> Result<Response, Problem> {
    let key = url.as_str().to_string();
    let generation = state.cache.generation();
    if let Some(body) = state.cache.get(generation, &key).await {
        return Ok(json_bytes(body));
    }
    let filter = ProductFilter::parse(&query_map(url.query())).map_err(CatalogError::Invalid)?;
    let mut pr = PageRequest::from_url(url)?;
    let category_id = match filter.category.as_deref() {
        Some(slug) => Some(store::category_id(&state.db, slug).await?.ok_or_else(|| {
            CatalogError::field(
                "category",
                format!(
                    "Select a valid choice. {} That choice is not one of the available choices.",
                    invalid_category(slug)
                ),
            )
        })?),
        None => None,
    };
    let count = store::count_products(&state.db, &filter, category_id.as_deref()).await?;
    pr.resolve(count)?;
    let results = store::list_products(
        &state.db,
        &filter,
        category_id.as_deref(),
        pr.limit(),
        pr.offset(),
    )
    .await?;
    let body = to_bytes(&pr.page(count, results))?;
    state.cache.insert(generation, key, body.clone()).await;
    Ok(json_bytes(body))
}

/// One product.
#[utoipa::path(get, path = "/api/v1/products/{id}/", operation_id = "get_product", tag = "catalog",
    params(("id" = String, Path, description = "product id (UUID)")),
    responses((status = 200, description = "the product", body = Product), (status = 404, description = "no such product")))]
#[tracing::instrument(skip(state))]
async fn detail(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, Problem> {
    let key = format!("product:{id}");
    let generation = state.cache.generation();
    if let Some(body) = state.cache.get(generation, &key).await {
        return Ok(json_bytes(body));
    }
    let product = store::product(&state.db, &id)
        .await?
        .ok_or(CatalogError::NotFound)?;
    let body = to_bytes(&product)?;
    state.cache.insert(generation, key, body.clone()).await;
    Ok(json_bytes(body))
}

/// Creates a product (staff): `sku`, `name`, `price` and `category` required.
#[utoipa::path(post, path = "/api/v1/products/", operation_id = "create_product", tag = "catalog",
    request_body = ProductCreate,
    responses((status = 201, description = "created", body = Product),
              (status = 400, description = "invalid fields, taken sku or unknown category"),
              (status = 401, description = "no or bad token"),
              (status = 403, description = "not staff")),
    security(("bearer" = [])))]
#[tracing::instrument(skip_all)]
async fn create(
    State(state): State<AppState>,
    _staff: StaffUser,
    Json(body): Json<ProductBody>,
) -> Result<Response, Problem> {
    let patch = body.validate(true).map_err(CatalogError::Invalid)?;
    let product = store::create_product(&state.db, patch).await?;
    state.written();
    Ok((StatusCode::CREATED, Json(product)).into_response())
}

/// Replaces a product (staff): `sku`, `name`, `price` and `category` required.
#[utoipa::path(put, path = "/api/v1/products/{id}/", operation_id = "replace_product", tag = "catalog",
    params(("id" = String, Path, description = "product id (UUID)")),
    request_body = ProductCreate,
    responses((status = 200, description = "the product", body = Product),
              (status = 400, description = "invalid fields, taken sku or unknown category"),
              (status = 401, description = "no or bad token"),
              (status = 403, description = "not staff"),
              (status = 404, description = "no such product")),
    security(("bearer" = [])))]
#[tracing::instrument(skip(state, _staff, body))]
async fn replace(
    State(state): State<AppState>,
    _staff: StaffUser,
    Path(id): Path<String>,
    Json(body): Json<ProductBody>,
) -> Result<Response, Problem> {
    write(state, &id, body, true).await
}

/// Changes some fields of a product (staff).
#[utoipa::path(patch, path = "/api/v1/products/{id}/", operation_id = "update_product", tag = "catalog",
    params(("id" = String, Path, description = "product id (UUID)")),
    request_body = ProductPatchDoc,
    responses((status = 200, description = "the product", body = Product),
              (status = 400, description = "invalid fields, taken sku or unknown category"),
              (status = 401, description = "no or bad token"),
              (status = 403, description = "not staff"),
              (status = 404, description = "no such product")),
    security(("bearer" = [])))]
#[tracing::instrument(skip(state, _staff, body))]
async fn update(
    State(state): State<AppState>,
    _staff: StaffUser,
    Path(id): Path<String>,
    Json(body): Json<ProductBody>,
) -> Result<Response, Problem> {
    write(state, &id, body, false).await
}

async fn write(
    state: AppState,
    id: &str,
    body: ProductBody,
    full: bool,
) -> Result<Response, Problem> {
    // A missing product is a 404 before any validation error, as in DRF.
    if store::product(&state.db, id).await?.is_none() {
        return Err(CatalogError::NotFound.into());
    }
    let patch = body.validate(full).map_err(CatalogError::Invalid)?;
    let result = store::update_product(&state.db, id, patch).await;
    if result.is_ok() {
        state.written();
    }
    Ok(Json(result?).into_response())
}

/// Deletes a product (staff).
#[utoipa::path(delete, path = "/api/v1/products/{id}/", operation_id = "delete_product", tag = "catalog",
    params(("id" = String, Path, description = "product id (UUID)")),
    responses((status = 204, description = "deleted"),
              (status = 401, description = "no or bad token"),
              (status = 403, description = "not staff"),
              (status = 404, description = "no such product")),
    security(("bearer" = [])))]
#[tracing::instrument(skip(state, _staff))]
async fn remove(
    State(state): State<AppState>,
    _staff: StaffUser,
    Path(id): Path<String>,
) -> Result<Response, Problem> {
    store::delete_product(&state.db, &id).await?;
    state.written();
    Ok(StatusCode::NO_CONTENT.into_response())
}
