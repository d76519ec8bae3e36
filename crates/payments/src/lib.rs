//! The payments service (see SPEC §3). Read it in this order: `lib.rs` →
//! `routes/` → `provider.rs` → `store.rs`.
//!
//! One payment row per order (UNIQUE `order_id`): a charge is idempotent
//! per order, so the saga may retry it freely and the customer is charged at
//! most once. The provider is simulated (test tokens, configurable latency
//! and timeout).

use std::time::Duration;

use axum::Router;
use bazaar_kit::db::Migrations;
use bazaar_kit::events::Bus;
use bazaar_kit::{Db, Service, ServiceContext, ServiceName};
use serde::Deserialize;
use sqlx::migrate::Migrator;

pub mod error;
mod grpc;
pub mod openapi;
pub mod provider;
pub mod routes;
pub mod store;

static SQLITE: Migrator = sqlx::migrate!("migrations/sqlite");
static POSTGRES: Migrator = sqlx::migrate!("migrations/postgres");

/// This service's schema, one folder per backend.
pub const MIGRATIONS: Migrations = Migrations {
    sqlite: &SQLITE,
    postgres: &POSTGRES,
};

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

/// Shared handler state.
#[derive(Clone)]
pub struct AppState {
    /// The payments database.
    pub db: Db,
    /// The event bus (nudged after commits).
    pub bus: Bus,
    /// The simulated provider.
    pub provider: provider::Provider,
}

/// Formats cents as the API's decimal string (`1999` → `"19.99"`).
pub fn money(cents: i64) -> String {
    let sign = if cents < 0 { "-" } else { "" };
    let c = cents.unsigned_abs();
    format!("{sign}{}.{:02}", c / 100, c % 100)
}

/// Builds the payments service: its database (migrated), routes and workers.
pub async fn build(ctx: ServiceContext) -> anyhow::Result<Service> {
    let settings: Settings = ctx
        .config
        .section(ServiceName::Payments)
        .map_err(|e| anyhow::anyhow!("[payments]: {e}"))?;
    let db = ctx.database(&MIGRATIONS).await?;
    let state = AppState {
        db: db.clone(),
        bus: ctx.bus.clone(),
        provider: provider::Provider {
            latency: Duration::from_millis(settings.latency_ms),
            timeout: Duration::from_millis(settings.provider_timeout_ms.max(1)),
        },
    };
    let (rpcs, names) = grpc::routes(state.clone(), ctx.verifier.clone());
    let router = Router::new()
        .merge(routes::public::router())
        .with_state(state);
    Ok(ctx
        .service(router)
        .with_openapi(openapi::doc())
        .with_grpc(rpcs, names)
        .with_db(db)
        .with_events(&ctx.bus, Vec::new()))
}

#[cfg(test)]
mod tests {
    #[test]
    fn money_has_two_places() {
        assert_eq!(super::money(1999), "19.99");
        assert_eq!(super::money(5), "0.05");
        assert_eq!(super::money(100), "1.00");
    }
}
