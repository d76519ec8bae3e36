//! bazaar-kit: the batteries every Bazaar service shares.
//!
//! A service crate only adds its routes, store and workers; the kit owns
//! configuration, telemetry, the HTTP bootstrap (health, readiness, metrics,
//! request ids, timeouts, body limits, graceful shutdown), problem+json
//! errors, pagination and storage.

pub mod auth;
pub mod client;
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

pub use config::{Config, Secret, ServiceName};
pub use db::Db;
pub use error::Problem;
pub use service::{Service, ServiceContext};

/// Re-exported so services name one cancellation type.
pub use tokio_util::sync::CancellationToken;
