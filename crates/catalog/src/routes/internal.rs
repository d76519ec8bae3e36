//! `/internal/`: what the orders service calls during checkout (see
//! docs/contracts.md). Service token required; never routed by the gateway.

use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use bazaar_kit::Problem;
use bazaar_kit::auth::ServiceCaller;
use bazaar_kit::extract::Json;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::AppState;
use crate::domain::Money;
use crate::domain::reservation::{Outcome, ReserveBody};
use crate::error::CatalogError;
use crate::store;
use crate::store::reservations::ReleaseKind;

/// Most ids one lookup may ask for.
const MAX_LOOKUP: usize = 500;

/// Routes of the internal API.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/internal/products/lookup", post(lookup))
        .route("/internal/reservations", post(reserve))
        .route("/internal/reservations/{order_id}/commit", post(commit))
        .route("/internal/reservations/{order_id}/release", post(release))
}

#[derive(Deserialize)]
struct LookupBody {
    ids: Vec<String>,
}

#[derive(Serialize)]
struct LookupProduct {
    id: String,
    sku: String,
    name: String,
    price: String,
    price_cents: i64,
    currency: String,
    stock: i64,
}

#[tracing::instrument(skip_all, fields(caller = %caller.name))]
async fn lookup(
    State(state): State<AppState>,
    caller: ServiceCaller,
    Json(body): Json<LookupBody>,
) -> Result<Response, Problem> {
    caller.require("catalog:read")?;
    if body.ids.len() > MAX_LOOKUP {
        return Err(CatalogError::field(
            "ids",
            format!("Ensure this list has at most {MAX_LOOKUP} elements."),
        )
        .into());
    }
    let products = store::products_by_ids(&state.db, &body.ids).await?;
    let products: Vec<LookupProduct> = products
        .into_iter()
        .map(|p| LookupProduct {
            price: Money::from_cents(p.price_cents).to_string(),
            id: p.id,
            sku: p.sku,
            name: p.name,
            price_cents: p.price_cents,
            currency: p.currency,
            stock: p.stock,
        })
        .collect();
    Ok(Json(json!({ "products": products })).into_response())
}

#[tracing::instrument(skip_all, fields(caller = %caller.name))]
async fn reserve(
    State(state): State<AppState>,
    caller: ServiceCaller,
    Json(body): Json<ReserveBody>,
) -> Result<Response, Problem> {
    caller.require("catalog:reserve")?;
    let reservation = body.validate().map_err(CatalogError::Invalid)?;
    let ttl_ms = state.settings.reservation_ttl().as_millis() as i64;
    let outcome = store::reserve(&state.db, &reservation, ttl_ms).await?;
    let order_id = reservation.order_id;
    Ok(match outcome {
        Outcome::Reserved | Outcome::Committed => {
            state.written();
            (
                StatusCode::OK,
                Json(json!({"order_id": order_id, "status": "reserved"})),
            )
                .into_response()
        }
        Outcome::Rejected { product_ids } => {
            state.bus.nudge();
            (
                StatusCode::CONFLICT,
                Json(json!({
                    "order_id": order_id,
                    "status": "rejected",
                    "reason": "out_of_stock",
                    "product_ids": product_ids,
                })),
            )
                .into_response()
        }
        // Reserved once, but its time ran out (or it was cancelled): the
        // stock is no longer held, so the order must not go on.
        Outcome::Released => (
            StatusCode::CONFLICT,
            Json(json!({
                "order_id": order_id,
                "status": "rejected",
                "reason": "expired",
                "product_ids": [],
            })),
        )
            .into_response(),
    })
}

#[tracing::instrument(skip(state, caller), fields(caller = %caller.name))]
async fn commit(
    State(state): State<AppState>,
    caller: ServiceCaller,
    Path(order_id): Path<String>,
) -> Result<Response, Problem> {
    caller.require("catalog:reserve")?;
    store::commit_reservation(&state.db, &order_id).await?;
    Ok(Json(json!({"order_id": order_id, "status": "committed"})).into_response())
}

#[tracing::instrument(skip(state, caller), fields(caller = %caller.name))]
async fn release(
    State(state): State<AppState>,
    caller: ServiceCaller,
    Path(order_id): Path<String>,
) -> Result<Response, Problem> {
    caller.require("catalog:reserve")?;
    if store::release_reservation(&state.db, &order_id, ReleaseKind::Requested).await? {
        state.written();
    }
    Ok(Json(json!({"order_id": order_id, "status": "released"})).into_response())
}
