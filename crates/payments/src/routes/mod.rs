//! HTTP routes, one module per resource.

pub mod internal;
pub mod public;

use axum::Router;

use crate::AppState;

/// Every payments route.
pub fn router(state: AppState) -> Router {
    Router::new()
        .merge(internal::router())
        .merge(public::router())
        .with_state(state)
}

#[cfg(test)]
mod tests;
