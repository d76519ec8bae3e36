//! `GET /api/v1/payments/`: a user's own payments (staff: everyone's).

use axum::Router;
use axum::extract::State;
use axum::routing::get;
use bazaar_kit::auth::AuthUser;
use bazaar_kit::extract::{Json, Query};
use bazaar_kit::pagination::{Page, PageRequest};
use serde::{Deserialize, Serialize};

use crate::AppState;
use crate::error::PaymentsError;
use crate::store;

/// Routes of this module.
pub fn router() -> Router<AppState> {
    Router::new().route("/api/v1/payments", get(list))
}

#[derive(Deserialize)]
struct ListQuery {
    order_id: Option<String>,
    user: Option<String>,
}

/// A payment as clients see it.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = Payment)]
pub struct PaymentView {
    /// Payment id (UUIDv7).
    id: String,
    /// The order it pays.
    order_id: String,
    /// The order's total: a decimal string with two places.
    #[schema(example = "19.99")]
    amount: String,
    /// ISO currency code.
    #[schema(example = "USD")]
    currency: String,
    /// The charge's outcome (payments still in progress are not listed).
    #[schema(schema_with = status_schema)]
    status: String,
    /// RFC 3339 UTC.
    created_at: String,
}

fn status_schema() -> utoipa::openapi::schema::Object {
    utoipa::openapi::schema::ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::Type::String)
        // The statuses `store::list` shows.
        .enum_values(Some(["succeeded", "declined", "refunded"]))
        .description(Some(
            "The charge's outcome (payments still in progress are not listed).",
        ))
        .build()
}

/// Payments of the caller, filtered by `?order_id=`; another user's order
/// yields an empty list, never its payment.
#[utoipa::path(get, path = "/api/v1/payments/", operation_id = "list_payments", tag = "payments",
    params(("order_id" = Option<String>, Query, description = "only this order's payment"),
           ("user" = Option<String>, Query, description = "staff only: one user's payments (ignored for others)"),
           ("page" = Option<u64>, Query, description = "page number (or `last`)"),
           ("page_size" = Option<u64>, Query, description = "items per page (default 20, max 100)")),
    responses((status = 200, description = "a page of payments, newest first", body = Page<PaymentView>),
              (status = 401, description = "no or bad token"),
              (status = 404, description = "no such page")),
    security(("bearer" = [])))]
#[tracing::instrument(skip_all)]
async fn list(
    State(state): State<AppState>,
    user: AuthUser,
    Query(q): Query<ListQuery>,
    mut pr: PageRequest,
) -> Result<Json<Page<PaymentView>>, PaymentsError> {
    let owner = if user.is_staff {
        q.user.clone()
    } else {
        Some(user.id.clone())
    };
    let order_id = q.order_id.as_deref().filter(|s| !s.is_empty());
    let (count, _) = store::list(&state.db, order_id, owner.as_deref(), 0, 0).await?;
    pr.resolve(count as u64)?;
    let (count, rows) = store::list(
        &state.db,
        order_id,
        owner.as_deref(),
        pr.limit(),
        pr.offset(),
    )
    .await?;
    let results = rows
        .into_iter()
        .map(|p| PaymentView {
            id: p.id,
            order_id: p.order_id,
            amount: crate::domain::money(p.amount_cents),
            currency: p.currency,
            status: p.status.as_str().to_string(),
            created_at: p.created_at,
        })
        .collect();
    Ok(Json(pr.page(count as u64, results)))
}
