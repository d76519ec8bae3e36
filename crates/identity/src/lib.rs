//! The identity service (see SPEC §3): users with Django's rules, a JWT
//! identity provider (Ed25519 keys in its database, JWKS, rotation), refresh
//! rotation with reuse detection, OAuth2 client credentials for services,
//! and login throttling. Read it in the template's order
//! (docs/service-template.md): `lib.rs` → `routes/` → `accounts/` →
//! `domain/` → `signing/` → `store/` → `events/`.

pub mod accounts;
pub mod config;
pub mod domain;
pub mod error;
pub mod events;
mod grpc;
mod openapi;
pub mod routes;
pub mod signing;
pub mod state;
pub mod store;

use bazaar_kit::db::Migrations;
use bazaar_kit::{Service, ServiceContext};

pub use config::Settings;
pub use state::AppState;

/// This service's schema, one folder per backend.
pub const MIGRATIONS: Migrations = bazaar_kit::migrations!();

/// Builds the identity service: its database (migrated), signing keys,
/// routes and workers.
pub async fn build(ctx: ServiceContext) -> anyhow::Result<Service> {
    let settings: Settings = ctx.settings()?;
    let db = ctx.database(&MIGRATIONS).await?;
    signing::keys::ensure(&db).await?;
    ctx.verifier
        .set_keys(&signing::keys::jwks(&db).await?)
        .await;
    // The dummy hash for unknown users must exist before the first login,
    // or that login would be measurably slower.
    tokio::task::spawn_blocking(domain::password::warm_up).await?;
    let state = AppState {
        db: db.clone(),
        bus: ctx.bus.clone(),
        config: ctx.config.clone(),
        settings,
    };
    let reload = signing::keys::reload_worker(db.clone(), ctx.verifier.clone());
    let (rpcs, names) = grpc::routes(state.clone(), ctx.verifier.clone());
    Ok(ctx
        .service(routes::router(state))
        .with_db(db)
        .with_events(Vec::new())
        .with_openapi(openapi::doc())
        .with_grpc(rpcs, names)
        .with_worker("jwks-reload", reload))
}
