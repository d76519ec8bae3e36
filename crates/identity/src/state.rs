//! What every identity handler shares.

use std::sync::Arc;

use bazaar_kit::events::Bus;
use bazaar_kit::{Config, Db};

use crate::Settings;

/// What every handler shares.
#[derive(Clone, Debug)]
pub struct AppState {
    /// Identity's database.
    pub db: Db,
    /// For nudging the outbox relay after a commit.
    pub bus: Bus,
    /// Platform configuration (client secrets).
    pub config: Arc<Config>,
    /// Identity's own settings.
    pub settings: Settings,
}
