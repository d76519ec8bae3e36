//! The orders service (see SPEC §3). Read it in this order: `lib.rs` →
//! `routes/` → `domain/` → `saga/` → `store/`.
//!
//! Orders owns the checkout saga (see [`saga`]): it reserves stock in
//! catalog, charges through payments, and confirms or rejects, with every
//! step recorded in its own database so a restart resumes where it stopped.

use std::time::Duration;

use bazaar_kit::client::{ClientOptions, ServiceClient};
use bazaar_kit::db::Migrations;
use bazaar_kit::{Db, Service, ServiceContext, ServiceName};
use serde::Deserialize;
use sqlx::migrate::Migrator;
use tokio::sync::broadcast;

pub mod domain;
pub mod error;
pub mod openapi;
pub mod routes;
pub mod saga;
pub mod store;

static SQLITE: Migrator = sqlx::migrate!("migrations/sqlite");
static POSTGRES: Migrator = sqlx::migrate!("migrations/postgres");

/// This service's schema, one folder per backend.
pub const MIGRATIONS: Migrations = Migrations {
    sqlite: &SQLITE,
    postgres: &POSTGRES,
};

/// `[orders]` settings beyond the kit's.
#[derive(Clone, Debug, Deserialize)]
#[serde(default)]
pub struct Settings {
    /// How often the timer looks for orders whose saga step is due (ms).
    pub saga_interval_ms: u64,
    /// How long a driver owns an order; after a crash, the order resumes
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
            saga_interval_ms: 1000,
            lease_ms: 15_000,
            charge_attempts: 3,
            charge_retry_ms: 500,
            catalog_timeout_ms: 5000,
            charge_timeout_ms: 10_000,
            max_inflight: 64,
        }
    }
}

/// Shared handler state.
#[derive(Clone)]
pub struct AppState {
    /// The orders database.
    pub db: Db,
    /// Calls catalog (price lookups).
    pub client: ServiceClient,
    /// Drives orders through checkout.
    pub saga: saga::Saga,
    /// Every status change, for SSE streams.
    pub changes: broadcast::Sender<store::Change>,
    /// Catalog call timeout.
    pub catalog_timeout: Duration,
}

/// Builds the orders service: its database (migrated), routes, the saga
/// timer and the outbox relay.
pub async fn build(ctx: ServiceContext) -> anyhow::Result<Service> {
    let settings: Settings = ctx
        .config
        .section(ServiceName::Orders)
        .map_err(|e| anyhow::anyhow!("[orders]: {e}"))?;
    let db = ctx.database(&MIGRATIONS).await?;
    let options = ClientOptions {
        timeout: Duration::from_millis(settings.catalog_timeout_ms),
        ..ClientOptions::default()
    };
    let client = ServiceClient::with_options(ServiceName::Orders, ctx.config.clone(), options);
    let (changes, _) = broadcast::channel(1024);
    let upstream = saga::upstream::Upstream {
        client: client.clone(),
        catalog_timeout: Duration::from_millis(settings.catalog_timeout_ms),
        charge_timeout: Duration::from_millis(settings.charge_timeout_ms),
    };
    let saga = saga::Saga::new(
        db.clone(),
        ctx.bus.clone(),
        upstream,
        changes.clone(),
        settings.clone(),
    );
    let state = AppState {
        db: db.clone(),
        client,
        saga: saga.clone(),
        changes,
        catalog_timeout: Duration::from_millis(settings.catalog_timeout_ms),
    };
    let router = routes::router().with_state(state);
    Ok(ctx
        .service(router)
        .with_openapi(openapi::doc())
        .with_db(db)
        .with_events(&ctx.bus, Vec::new())
        .with_worker("saga-timer", move |token| Box::pin(saga.run_timer(token))))
}
