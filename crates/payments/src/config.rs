//! Payments' own settings: the `[payments]` table of the configuration
//! file, or `BAZAAR_PAYMENTS_*` environment variables.

use bazaar_kit::service::Section;
use serde::Deserialize;

/// `[payments]` settings beyond the kit's.
#[derive(Clone, Debug, Deserialize)]
#[serde(default)]
pub struct Settings {
    /// Simulated provider latency per call, in ms.
    pub latency_ms: u64,
    /// How long to wait for the provider before recording a failed attempt
    /// and answering 504, in ms.
    pub provider_timeout_ms: u64,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            latency_ms: 0,
            provider_timeout_ms: 2000,
        }
    }
}

impl Section for Settings {}
