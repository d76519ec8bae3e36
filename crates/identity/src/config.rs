//! Identity's own settings (`[identity]` in the TOML file), beside the
//! kit's per-service ones.

use serde::Deserialize;

/// Token lifetimes and login throttling.
#[derive(Clone, Debug, Deserialize)]
#[serde(default)]
pub struct Settings {
    /// Access token lifetime, seconds (capped at 900).
    pub access_ttl_secs: i64,
    /// Refresh token lifetime, seconds.
    pub refresh_ttl_secs: i64,
    /// Service token lifetime, seconds (capped at 900).
    pub service_ttl_secs: i64,
    /// Failed logins for one username before it is locked for the window.
    pub login_failures_per_username: i64,
    /// Failed logins from one IP before it is locked for the window.
    pub login_failures_per_ip: i64,
    /// Throttle window, seconds.
    pub login_window_secs: i64,
    /// The issuer identifier published in discovery: the public URL of the
    /// platform (e.g. `https://shop.example.com`). Unset: the URL the
    /// discovery document is requested under.
    pub issuer: Option<String>,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            access_ttl_secs: 300,
            refresh_ttl_secs: 24 * 3600,
            service_ttl_secs: 300,
            login_failures_per_username: 5,
            login_failures_per_ip: 30,
            login_window_secs: 900,
            issuer: None,
        }
    }
}

impl Settings {
    /// Clamps values to what the SPEC allows.
    pub fn sanitized(mut self) -> Self {
        self.access_ttl_secs = self.access_ttl_secs.clamp(30, 900);
        self.service_ttl_secs = self.service_ttl_secs.clamp(30, 900);
        self.refresh_ttl_secs = self.refresh_ttl_secs.max(60);
        self.login_failures_per_username = self.login_failures_per_username.max(1);
        self.login_failures_per_ip = self.login_failures_per_ip.max(1);
        self.login_window_secs = self.login_window_secs.max(1);
        self
    }
}

impl bazaar_kit::service::Section for Settings {
    fn check(self) -> Result<Self, String> {
        Ok(self.sanitized())
    }
}
