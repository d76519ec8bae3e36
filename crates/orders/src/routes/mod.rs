//! HTTP routes, one module per resource.

pub mod create;
pub mod events;
pub mod orders;
pub mod view;

use axum::Router;
use axum::http::HeaderMap;
use axum::routing::{get, post};
use bazaar_kit::Problem;
use bazaar_kit::auth::AuthUser;
use bazaar_kit::client::CallOptions;

use crate::AppState;
use crate::store::{self, Order};

/// Every route of the service.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/orders", get(orders::list).post(create::create))
        .route("/api/v1/orders/{id}", get(orders::detail))
        .route("/api/v1/orders/{id}/cancel", post(orders::cancel))
        .route("/api/v1/orders/{id}/events", get(events::events))
}

/// The order `id` if `user` may see it (owner or staff); otherwise 404, so
/// another user's order is indistinguishable from a missing one.
pub async fn visible(state: &AppState, user: &AuthUser, id: &str) -> Result<Order, Problem> {
    if uuid::Uuid::parse_str(id).is_err() {
        return Err(Problem::not_found());
    }
    match store::get(&state.db, id).await? {
        Some(order) if user.is_staff || order.row.user_id == user.id => Ok(order),
        _ => Err(Problem::not_found()),
    }
}

/// Call options carrying the request's id and trace context on.
pub fn traced(headers: &HeaderMap, call: CallOptions) -> CallOptions {
    let get = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    CallOptions {
        request_id: get(bazaar_kit::http::REQUEST_ID),
        traceparent: get("traceparent"),
        ..call
    }
}

#[cfg(test)]
mod tests;
