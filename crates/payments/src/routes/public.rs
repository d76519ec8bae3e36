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
#[derive(Serialize)]
pub struct PaymentView {
    id: String,
    order_id: String,
    amount: String,
    currency: String,
    status: String,
    created_at: String,
}

/// Payments of the caller, filtered by `?order_id=`; another user's order
/// yields an empty list, never its payment.
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
            amount: crate::money(p.amount_cents),
            currency: p.currency,
            status: p.status,
            created_at: p.created_at,
        })
        .collect();
    Ok(Json(pr.page(count as u64, results)))
}
