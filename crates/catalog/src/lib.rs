//! The catalog service (see SPEC §3): categories, products, search, stock
//! and stock reservations. Read it in this order: `lib.rs` → `routes/` →
//! `domain/` → `store/` → `cache.rs` → `seed/`.

pub mod cache;
pub mod config;
pub mod domain;
pub mod error;
mod grpc;
pub mod openapi;
pub mod routes;
pub mod seed;
pub mod store;

use std::sync::Arc;
use std::time::Duration;

use bazaar_kit::db::Migrations;
use bazaar_kit::events::outbox::now_millis;
use bazaar_kit::{CancellationToken, Service, ServiceContext, ServiceName};
use sqlx::migrate::Migrator;

pub use config::CatalogSettings;
pub use store::Store;

use crate::cache::ReadCache;
use crate::routes::AppState;

static SQLITE: Migrator = sqlx::migrate!("migrations/sqlite");
static POSTGRES: Migrator = sqlx::migrate!("migrations/postgres");

/// This service's schema, one folder per backend.
pub const MIGRATIONS: Migrations = Migrations {
    sqlite: &SQLITE,
    postgres: &POSTGRES,
};

/// Builds the catalog service: its database (migrated), routes, the event
/// relay and the reservation-expiry worker.
pub async fn build(ctx: ServiceContext) -> anyhow::Result<Service> {
    let settings: CatalogSettings = ctx
        .config
        .section(ServiceName::Catalog)
        .map_err(|e| anyhow::anyhow!("[catalog] settings: {e}"))?;
    let db = ctx.database(&MIGRATIONS).await?;
    let cache = Arc::new(ReadCache::new(
        settings.cache_capacity,
        Duration::from_secs(settings.cache_ttl_secs.max(1)),
    ));
    let state = AppState {
        store: Store::new(db.clone()),
        cache,
        settings: Arc::new(settings),
        bus: ctx.bus.clone(),
    };
    let worker_state = state.clone();
    let (rpcs, names) = grpc::routes(state.clone(), ctx.verifier.clone());
    let router = routes::router(state);
    Ok(ctx
        .service(router)
        .with_openapi(openapi::doc())
        .with_grpc(rpcs, names)
        .with_db(db)
        .with_events(&ctx.bus, Vec::new())
        .with_worker("reservation-expiry", move |token| {
            Box::pin(expire_reservations(worker_state, token))
        }))
}

/// Returns the stock of reservations whose time ran out, every few seconds.
async fn expire_reservations(state: AppState, token: CancellationToken) {
    let every = Duration::from_secs(state.settings.expiry_interval_secs.max(1));
    loop {
        tokio::select! {
            () = token.cancelled() => break,
            () = tokio::time::sleep(every) => {}
        }
        match state.store.expire_reservations(now_millis(), 100).await {
            Ok(0) => {}
            Ok(n) => {
                tracing::info!(released = n, "expired stock reservations released");
                state.written();
            }
            Err(e) => tracing::warn!(error = %e, "reservation expiry sweep failed"),
        }
    }
}
