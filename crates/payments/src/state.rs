//! What every payments handler shares.

use bazaar_kit::Db;
use bazaar_kit::events::Bus;

use crate::domain::provider::Provider;

/// Shared handler state.
#[derive(Clone)]
pub struct AppState {
    /// The payments database.
    pub db: Db,
    /// The event bus (nudged after commits).
    pub bus: Bus,
    /// The simulated provider.
    pub provider: Provider,
}
