//! What every orders handler shares.

use std::time::Duration;

use bazaar_kit::Db;
use bazaar_kit::client::ServiceClient;
use tokio::sync::broadcast;

use crate::saga::Saga;
use crate::store::Change;

/// Shared handler state.
#[derive(Clone)]
pub struct AppState {
    /// The orders database.
    pub db: Db,
    /// Calls catalog (price lookups).
    pub client: ServiceClient,
    /// Drives orders through checkout.
    pub saga: Saga,
    /// Every status change, for SSE streams.
    pub changes: broadcast::Sender<Change>,
    /// Catalog call timeout.
    pub catalog_timeout: Duration,
}
