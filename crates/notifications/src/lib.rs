//! The notifications service (see SPEC §3): emails on platform events,
//! exactly one per event, through Django-style email backends. Read it in
//! the template's order (docs/service-template.md): `lib.rs` → `routes/` →
//! `domain/` → `store/` → `events/`, then `email/` (backends and the sender
//! worker).

pub mod config;
pub mod domain;
pub mod email;
pub mod error;
pub mod events;
pub mod openapi;
pub mod routes;
pub mod state;
pub mod store;

use std::sync::Arc;

use bazaar_kit::db::Migrations;
use bazaar_kit::{Service, ServiceContext};

pub use config::NotificationsSettings;
pub use state::AppState;

/// This service's schema, one folder per backend.
pub const MIGRATIONS: Migrations = bazaar_kit::migrations!();

/// Builds the notifications service: database (migrated), the list route,
/// the event consumer and the sender worker.
pub async fn build(ctx: ServiceContext) -> anyhow::Result<Service> {
    bazaar_kit::metrics::describe(email::sender::describe_metrics);
    let settings: Arc<NotificationsSettings> = Arc::new(ctx.settings()?);
    let backend = email::from_settings(&settings, &ctx.config.data_dir)?;
    let db = ctx.database(&MIGRATIONS).await?;
    let wake = Arc::new(tokio::sync::Notify::new());
    let subscription = events::handler(&ctx, wake.clone())?.subscription();
    let sender = email::sender::Sender {
        db: db.clone(),
        backend,
        settings,
        wake,
    };
    Ok(ctx
        .service(routes::router(AppState { db: db.clone() }))
        .with_openapi(openapi::doc())
        .with_db(db)
        .with_events(vec![subscription])
        .with_worker("email-sender", move |token| Box::pin(sender.run(token))))
}
