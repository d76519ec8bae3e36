//! HTTP routes, one module per resource.

pub mod public;

use axum::Router;

use crate::AppState;

/// Every payments route.
pub fn router(state: AppState) -> Router {
    Router::new().merge(public::router()).with_state(state)
}

#[cfg(test)]
mod tests;
