//! The identity service (see SPEC §3). Read it in this order: `lib.rs` →
//! `routes/` → `domain/` → `store/` → `events/`.

use axum::Router;
use bazaar_kit::db::Migrations;
use bazaar_kit::{Service, ServiceContext};
use sqlx::migrate::Migrator;

static SQLITE: Migrator = sqlx::migrate!("migrations/sqlite");
static POSTGRES: Migrator = sqlx::migrate!("migrations/postgres");

/// This service's schema, one folder per backend.
pub const MIGRATIONS: Migrations = Migrations {
    sqlite: &SQLITE,
    postgres: &POSTGRES,
};

/// Builds the identity service: its database (migrated), routes and workers.
pub async fn build(ctx: ServiceContext) -> anyhow::Result<Service> {
    let db = ctx.database(&MIGRATIONS).await?;
    let router = Router::new();
    Ok(ctx.service(router).with_db(db))
}
