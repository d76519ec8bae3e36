//! HTTP routes: the public catalog API (the internal reservation API is
//! gRPC, in `grpc.rs`).

pub mod cache;
pub mod categories;
pub mod products;

use axum::Router;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde::Serialize;

pub use crate::state::AppState;

use crate::error::CatalogError;

/// Every catalog route.
pub fn router(state: AppState) -> Router {
    Router::new()
        .merge(categories::router())
        .merge(products::router())
        .with_state(state)
}

/// A JSON body, serialized once (so it can be cached).
pub(crate) fn to_bytes<T: Serialize>(value: &T) -> Result<Bytes, CatalogError> {
    serde_json::to_vec(value)
        .map(Bytes::from)
        .map_err(|e| CatalogError::Internal(format!("serializing a response: {e}")))
}

/// A 200 `application/json` response from serialized bytes.
pub(crate) fn json_bytes(body: Bytes) -> Response {
    ([(header::CONTENT_TYPE, "application/json")], body).into_response()
}

#[cfg(test)]
mod tests;
