//! The payments service (see SPEC §3). Read it in the template's order
//! (docs/service-template.md): `lib.rs` → `routes/` → `domain/` → `store/`
//! → `events/`.
//!
//! One payment row per order (UNIQUE `order_id`): a charge is idempotent
//! per order, so the saga may retry it freely and the customer is charged at
//! most once. The provider is simulated (test tokens, configurable latency
//! and timeout).

pub mod config;
pub mod domain;
pub mod error;
pub mod events;
mod grpc;
pub mod openapi;
pub mod routes;
pub mod state;
pub mod store;

use std::time::Duration;

use bazaar_kit::db::Migrations;
use bazaar_kit::{Service, ServiceContext};

pub use config::Settings;
pub use state::AppState;

/// This service's schema, one folder per backend.
pub const MIGRATIONS: Migrations = bazaar_kit::migrations!();

/// Builds the payments service: its database (migrated), routes and the
/// outbox relay.
pub async fn build(ctx: ServiceContext) -> anyhow::Result<Service> {
    let settings: Settings = ctx.settings()?;
    let db = ctx.database(&MIGRATIONS).await?;
    let state = AppState {
        db: db.clone(),
        bus: ctx.bus.clone(),
        provider: domain::provider::Provider {
            latency: Duration::from_millis(settings.latency_ms),
            timeout: Duration::from_millis(settings.provider_timeout_ms.max(1)),
        },
    };
    let (rpcs, names) = grpc::routes(state.clone(), ctx.verifier.clone());
    Ok(ctx
        .service(routes::router(state))
        .with_openapi(openapi::doc())
        .with_grpc(rpcs, names)
        .with_db(db)
        .with_events(Vec::new()))
}
