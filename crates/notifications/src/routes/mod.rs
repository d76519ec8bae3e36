//! HTTP routes, one module per resource.

pub mod notifications;

use axum::Router;

use crate::AppState;

/// Every route of the service.
pub fn router(state: AppState) -> Router {
    Router::new()
        .merge(notifications::router())
        .with_state(state)
}

#[cfg(test)]
mod tests;
