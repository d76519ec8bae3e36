//! bazaar-kit: the batteries every Bazaar service shares.
//!
//! A service crate only adds its routes, store and workers; the kit owns
//! configuration, telemetry, the HTTP bootstrap (health, readiness, metrics,
//! request ids, timeouts, body limits, graceful shutdown), problem+json
//! errors, pagination and storage.

pub mod access;
pub mod auth;
pub mod client;
pub mod clock;
pub mod config;
pub mod db;
pub mod deploy_check;
pub mod error;
pub mod events;
pub mod extract;
pub mod grpc;
pub mod http;
pub mod metrics;
pub mod openapi;
pub mod pagination;
pub mod secrets;
pub mod service;
pub mod telemetry;
#[cfg(feature = "testing")]
pub mod testing;

pub use config::{Config, Secret, ServiceName};
pub use db::Db;
pub use error::Problem;
pub use service::{Service, ServiceContext};

/// This service's migrations, one folder per backend
/// (`migrations/sqlite`, `migrations/postgres` beside its `Cargo.toml`):
///
/// ```ignore
/// pub const MIGRATIONS: bazaar_kit::db::Migrations = bazaar_kit::migrations!();
/// ```
#[macro_export]
macro_rules! migrations {
    () => {{
        static SQLITE: ::sqlx::migrate::Migrator = ::sqlx::migrate!("migrations/sqlite");
        static POSTGRES: ::sqlx::migrate::Migrator = ::sqlx::migrate!("migrations/postgres");
        $crate::db::Migrations {
            sqlite: &SQLITE,
            postgres: &POSTGRES,
        }
    }};
}

/// Re-exported so services name one cancellation type.
pub use tokio_util::sync::CancellationToken;
