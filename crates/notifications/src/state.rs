//! What every notifications handler shares.

use bazaar_kit::Db;

/// What handlers share.
#[derive(Clone)]
pub struct AppState {
    /// The service's database.
    pub db: Db,
}
