//! The identity service (see SPEC §3): users with Django's rules, a JWT
//! identity provider (Ed25519 keys in its database, JWKS, rotation), refresh
//! rotation with reuse detection, OAuth2 client credentials for services,
//! and login throttling. Read it in this order: `lib.rs` → `routes/` →
//! `accounts.rs` → `domain/` → `keys.rs`/`tokens.rs` → `store/`.

pub mod accounts;
pub mod admin;
pub mod config;
pub mod domain;
pub mod error;
mod grpc;
pub mod keys;
mod openapi;
pub mod routes;
pub mod store;
pub mod tokens;

use std::sync::Arc;
use std::time::Duration;

use bazaar_kit::db::Migrations;
use bazaar_kit::events::Bus;
use bazaar_kit::{Config, Db, Service, ServiceContext, ServiceName};
use sqlx::migrate::Migrator;

pub use config::Settings;

static SQLITE: Migrator = sqlx::migrate!("migrations/sqlite");
static POSTGRES: Migrator = sqlx::migrate!("migrations/postgres");

/// This service's schema, one folder per backend.
pub const MIGRATIONS: Migrations = Migrations {
    sqlite: &SQLITE,
    postgres: &POSTGRES,
};

/// What every handler shares.
#[derive(Clone, Debug)]
pub struct AppState {
    /// Identity's database.
    pub db: Db,
    /// For nudging the outbox relay after a commit.
    pub bus: Bus,
    /// Platform configuration (client secrets).
    pub config: Arc<Config>,
    /// Identity's own settings.
    pub settings: Settings,
}

/// How often identity reloads its published keys into its own verifier (so
/// a `bazaar keys rotate` from another process is seen without HTTP).
const KEY_RELOAD: Duration = Duration::from_secs(2);

/// Builds the identity service: its database (migrated), signing keys,
/// routes and workers.
pub async fn build(ctx: ServiceContext) -> anyhow::Result<Service> {
    let db = ctx.database(&MIGRATIONS).await?;
    keys::ensure(&db).await?;
    ctx.verifier.set_keys(&keys::jwks(&db).await?).await;
    let settings = ctx
        .config
        .section::<Settings>(ServiceName::Identity)
        .map_err(|e| anyhow::anyhow!("[identity] settings: {e}"))?
        .sanitized();
    // The dummy hash for unknown users must exist before the first login,
    // or that login would be measurably slower.
    tokio::task::spawn_blocking(domain::password::warm_up).await?;
    let state = AppState {
        db: db.clone(),
        bus: ctx.bus.clone(),
        config: ctx.config.clone(),
        settings,
    };
    let router = routes::router(state.clone());
    let (rpcs, names) = grpc::routes(state, ctx.verifier.clone());
    let verifier = ctx.verifier.clone();
    let key_db = db.clone();
    Ok(ctx
        .service(router)
        .with_db(db)
        .with_events(&ctx.bus, Vec::new())
        .with_openapi(openapi::doc())
        .with_grpc(rpcs, names)
        .with_worker("jwks-reload", move |token| {
            Box::pin(async move {
                loop {
                    tokio::select! {
                        () = token.cancelled() => break,
                        () = tokio::time::sleep(KEY_RELOAD) => {}
                    }
                    match keys::jwks(&key_db).await {
                        Ok(set) => verifier.set_keys(&set).await,
                        Err(e) => tracing::warn!(error = %e, "cannot reload signing keys"),
                    }
                }
            })
        }))
}
