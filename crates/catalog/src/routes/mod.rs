//! HTTP routes: the public catalog API (the internal reservation API is
//! gRPC, in `grpc.rs`).

pub mod categories;
pub mod products;

use std::sync::Arc;

use axum::Router;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use bazaar_kit::events::Bus;
use bytes::Bytes;
use serde::Serialize;

use crate::cache::ReadCache;
use crate::config::CatalogSettings;
use crate::error::CatalogError;
use crate::store::Store;

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    /// Storage.
    pub store: Store,
    /// Read cache.
    pub cache: Arc<ReadCache>,
    /// Settings.
    pub settings: Arc<CatalogSettings>,
    /// Event bus (nudged after a commit that wrote events).
    pub bus: Bus,
}

impl AppState {
    /// After a committed write: drop cached pages, wake the outbox relay.
    pub fn written(&self) {
        self.cache.invalidate();
        self.bus.nudge();
    }
}

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
        .map_err(|e| CatalogError::Conflict(format!("serialization: {e}")))
}

/// A 200 `application/json` response from serialized bytes.
pub(crate) fn json_bytes(body: Bytes) -> Response {
    ([(header::CONTENT_TYPE, "application/json")], body).into_response()
}
