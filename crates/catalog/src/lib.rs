//! The catalog service (see SPEC §3): categories, products, search, stock
//! and stock reservations. Read it in the template's order
//! (docs/service-template.md): `lib.rs` → `routes/` → `domain/` → `store/`
//! → `events/`, then `seed/`.

pub mod config;
pub mod domain;
pub mod error;
pub mod events;
mod grpc;
pub mod openapi;
pub mod routes;
pub mod seed;
pub mod state;
pub mod store;

use std::sync::Arc;
use std::time::Duration;

use bazaar_kit::clock::now_millis;
use bazaar_kit::db::Migrations;
use bazaar_kit::service::periodic;
use bazaar_kit::{Service, ServiceContext};

pub use config::CatalogSettings;
pub use state::AppState;

use crate::routes::cache::ReadCache;

/// This service's schema, one folder per backend.
pub const MIGRATIONS: Migrations = bazaar_kit::migrations!();

/// Builds the catalog service: its database (migrated), routes, the event
/// relay and the reservation-expiry worker.
pub async fn build(ctx: ServiceContext) -> anyhow::Result<Service> {
    bazaar_kit::metrics::describe(|| {
        metrics::describe_counter!(
            "catalog_cache_total",
            "Product read-cache lookups, by result (hit, miss)."
        );
    });
    let settings: CatalogSettings = ctx.settings()?;
    let db = ctx.database(&MIGRATIONS).await?;
    let ttl = Duration::from_secs(settings.cache_ttl_secs.max(1));
    let every = Duration::from_secs(settings.expiry_interval_secs.max(1));
    let state = AppState {
        db: db.clone(),
        cache: Arc::new(ReadCache::new(settings.cache_capacity, ttl)),
        settings: Arc::new(settings),
        bus: ctx.bus.clone(),
    };
    let sweeper = state.clone();
    let (rpcs, names) = grpc::routes(state.clone(), ctx.verifier.clone());
    Ok(ctx
        .service(routes::router(state))
        .with_openapi(openapi::doc())
        .with_grpc(rpcs, names)
        .with_db(db)
        .with_events(Vec::new())
        .with_worker(
            "reservation-expiry",
            periodic(every, move || expire_reservations(sweeper.clone())),
        ))
}

/// Returns the stock of reservations whose time ran out.
async fn expire_reservations(state: AppState) {
    match store::expire_reservations(&state.db, now_millis(), 100).await {
        Ok(0) => {}
        Ok(n) => {
            tracing::info!(released = n, "expired stock reservations released");
            state.written();
        }
        Err(e) => tracing::warn!(error = %e, "reservation expiry sweep failed"),
    }
}
