//! The notifications service (see SPEC §3): emails on platform events,
//! exactly one per event, through Django-style email backends. Read it in
//! this order: `lib.rs` → `routes/` → `domain/` → `store/` → `events/` →
//! `sender.rs` → `email/`.

pub mod config;
pub mod directory;
pub mod domain;
pub mod email;
pub mod error;
pub mod events;
pub mod routes;
pub mod sender;
pub mod store;

use std::sync::Arc;

use bazaar_kit::db::Migrations;
use bazaar_kit::{Service, ServiceContext, ServiceName};
use sqlx::migrate::Migrator;
use utoipa::OpenApi as _;

pub use config::NotificationsSettings;

static SQLITE: Migrator = sqlx::migrate!("migrations/sqlite");
static POSTGRES: Migrator = sqlx::migrate!("migrations/postgres");

/// This service's schema, one folder per backend.
pub const MIGRATIONS: Migrations = Migrations {
    sqlite: &SQLITE,
    postgres: &POSTGRES,
};

/// The `[notifications]` settings of a configuration, validated.
pub fn settings(ctx: &ServiceContext) -> anyhow::Result<NotificationsSettings> {
    let settings: NotificationsSettings = ctx
        .config
        .section(ServiceName::Notifications)
        .map_err(|e| anyhow::anyhow!("notifications settings: {e}"))?;
    settings.validate().map_err(anyhow::Error::msg)?;
    Ok(settings)
}

/// The event handler of a platform, for `Service::with_events` (and for
/// tests that apply an event by hand through the kit's inbox).
pub fn handler(
    ctx: &ServiceContext,
    wake: Arc<tokio::sync::Notify>,
) -> anyhow::Result<events::NotificationHandler> {
    let templates =
        domain::render::Templates::load().map_err(|e| anyhow::anyhow!("email templates: {e}"))?;
    Ok(events::NotificationHandler::new(
        Arc::new(templates),
        directory::Directory::new(bazaar_kit::client::ServiceClient::new(
            ServiceName::Notifications,
            ctx.config.clone(),
        )),
        wake,
    ))
}

/// Builds the notifications service: database (migrated), the list route,
/// the event consumer and the sender worker.
pub async fn build(ctx: ServiceContext) -> anyhow::Result<Service> {
    let settings = Arc::new(settings(&ctx)?);
    let backend = email::from_settings(&settings, &ctx.config.data_dir)?;
    let db = ctx.database(&MIGRATIONS).await?;
    let wake = Arc::new(tokio::sync::Notify::new());
    let subscription = handler(&ctx, wake.clone())?.subscription();
    let sender = sender::Sender {
        db: db.clone(),
        backend,
        settings,
        wake,
    };
    let router = routes::router(routes::AppState { db: db.clone() });
    Ok(ctx
        .service(router)
        .with_openapi(routes::ApiDoc::openapi())
        .with_db(db)
        .with_events(&ctx.bus, vec![subscription])
        .with_worker("email-sender", move |token| Box::pin(sender.run(token))))
}
