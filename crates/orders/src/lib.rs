//! The orders service (see SPEC §3). Read it in the template's order
//! (docs/service-template.md): `lib.rs` → `routes/` → `domain/` → `store/`
//! → `events/`, then `saga/`.
//!
//! Orders owns the checkout saga (see [`saga`]): it reserves stock in
//! catalog, charges through payments, and confirms or rejects, with every
//! step recorded in its own database so a restart resumes where it stopped.

pub mod config;
pub mod domain;
pub mod error;
pub mod events;
pub mod openapi;
pub mod routes;
pub mod saga;
pub mod state;
pub mod store;

use std::time::Duration;

use bazaar_kit::client::{ClientOptions, ServiceClient};
use bazaar_kit::db::Migrations;
use bazaar_kit::{Service, ServiceContext, ServiceName};
use tokio::sync::broadcast;

pub use config::Settings;
pub use state::AppState;

/// This service's schema, one folder per backend.
pub const MIGRATIONS: Migrations = bazaar_kit::migrations!();

/// Builds the orders service: its database (migrated), routes, the saga
/// timer and the outbox relay.
pub async fn build(ctx: ServiceContext) -> anyhow::Result<Service> {
    bazaar_kit::metrics::describe(saga::metrics::describe);
    let settings: Settings = ctx.settings()?;
    let db = ctx.database(&MIGRATIONS).await?;
    let catalog_timeout = Duration::from_millis(settings.catalog_timeout_ms);
    let options = ClientOptions {
        timeout: catalog_timeout,
        ..ClientOptions::default()
    };
    let client = ServiceClient::with_options(ServiceName::Orders, ctx.config.clone(), options);
    let (changes, _) = broadcast::channel(1024);
    let upstream = saga::upstream::Upstream::new(client.clone(), &settings);
    let saga = saga::Saga::new(
        db.clone(),
        ctx.bus.clone(),
        upstream,
        changes.clone(),
        settings,
    );
    let state = AppState {
        db: db.clone(),
        client,
        saga: saga.clone(),
        changes,
        catalog_timeout,
    };
    Ok(ctx
        .service(routes::router().with_state(state))
        .with_openapi(openapi::doc())
        .with_db(db)
        .with_events(Vec::new())
        .with_worker("saga-timer", move |token| Box::pin(saga.run_timer(token))))
}
