//! What every catalog handler and worker shares.

use std::sync::Arc;

use bazaar_kit::Db;
use bazaar_kit::events::Bus;

use crate::config::CatalogSettings;
use crate::routes::cache::ReadCache;

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    /// The catalog database (see `store/`).
    pub db: Db,
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
