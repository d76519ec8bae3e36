//! The catalog's own settings: the `[catalog]` table of the configuration
//! file, or `BAZAAR_CATALOG_*` environment variables.

use std::time::Duration;

use serde::Deserialize;

/// Catalog settings beyond the kit's per-service ones.
#[derive(Clone, Debug, Deserialize)]
#[serde(default)]
pub struct CatalogSettings {
    /// Seconds an uncommitted stock reservation lives before the expiry
    /// worker returns its stock (default 900 = 15 min).
    pub reservation_ttl_secs: u64,
    /// Seconds between expiry sweeps (default 5).
    pub expiry_interval_secs: u64,
    /// Entries kept by the read cache (product pages and list pages).
    pub cache_capacity: u64,
    /// Seconds a cached entry may live; bounds staleness when other
    /// instances write (this instance invalidates on its own writes).
    pub cache_ttl_secs: u64,
}

impl Default for CatalogSettings {
    fn default() -> Self {
        Self {
            reservation_ttl_secs: 900,
            expiry_interval_secs: 5,
            cache_capacity: 10_000,
            cache_ttl_secs: 30,
        }
    }
}

impl CatalogSettings {
    /// The reservation lifetime.
    pub fn reservation_ttl(&self) -> Duration {
        Duration::from_secs(self.reservation_ttl_secs.max(1))
    }
}

impl bazaar_kit::service::Section for CatalogSettings {}
