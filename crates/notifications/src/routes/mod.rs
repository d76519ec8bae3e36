//! HTTP routes.

mod notifications;

use axum::Router;
use bazaar_kit::Db;

/// What handlers share.
#[derive(Clone)]
pub struct AppState {
    /// The service's database.
    pub db: Db,
}

/// Every route of the service.
pub fn router(state: AppState) -> Router {
    Router::new()
        .merge(notifications::router())
        .with_state(state)
}

pub use notifications::{ApiDoc, NotificationView};
