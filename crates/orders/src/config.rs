//! Orders' own settings: the `[orders]` table of the configuration file,
//! or `BAZAAR_ORDERS_*` environment variables.

use bazaar_kit::service::Section;
use serde::Deserialize;

/// `[orders]` settings beyond the kit's.
#[derive(Clone, Debug, Deserialize)]
#[serde(default)]
pub struct Settings {
    /// How often the timer looks for orders whose saga step is due (ms).
    pub saga_interval_ms: u64,
    /// How long a driver owns an order without renewing (it renews every
    /// third of this while a step runs); after a crash, the order resumes
    /// once this has passed (ms).
    pub lease_ms: u64,
    /// Charges that time out before the order is rejected `payment_timeout`.
    pub charge_attempts: u32,
    /// Delay between timed-out charges (ms).
    pub charge_retry_ms: u64,
    /// Timeout of calls to catalog and of refunds (ms).
    pub catalog_timeout_ms: u64,
    /// Timeout of a charge call; above payments' provider timeout (ms).
    pub charge_timeout_ms: u64,
    /// Orders driven concurrently by one instance.
    pub max_inflight: usize,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            saga_interval_ms: 500,
            lease_ms: 3000,
            charge_attempts: 3,
            charge_retry_ms: 500,
            catalog_timeout_ms: 5000,
            charge_timeout_ms: 10_000,
            max_inflight: 64,
        }
    }
}

impl Section for Settings {}
