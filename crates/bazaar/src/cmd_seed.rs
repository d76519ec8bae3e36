//! `bazaar seed [--products N]`, and the demo catalog `bazaar up` seeds on
//! first start.

use std::time::Instant;

use anyhow::Context;
use bazaar_kit::db::Db;
use bazaar_kit::{Config, ServiceName};

async fn open(config: &Config) -> anyhow::Result<Db> {
    let url = config.database_url(ServiceName::Catalog);
    Db::connect(&url, &bazaar_catalog::MIGRATIONS, config.command_db_wait())
        .await
        .context("catalog: opening its database")
}

/// Grows the catalog to at least `products` products (demo categories
/// included) and prints what it did.
pub async fn run(config: &Config, products: u64) -> anyhow::Result<()> {
    let db = open(config).await?;
    let started = Instant::now();
    let report = bazaar_catalog::seed::seed(&db, products)
        .await
        .context("catalog: seeding")?;
    db.close().await;
    println!(
        "catalog: {} categories and {} products added in {:.2?} ({} products in total)",
        report.categories,
        report.products,
        started.elapsed(),
        report.total
    );
    Ok(())
}

/// Seeds the demo catalog when the catalog has no products yet (the first
/// `bazaar up`).
pub async fn demo_if_empty(config: &Config) -> anyhow::Result<()> {
    let db = open(config).await?;
    let report = bazaar_catalog::seed::seed_if_empty(&db)
        .await
        .context("catalog: seeding the demo catalog")?;
    db.close().await;
    if let Some(r) = report {
        tracing::info!(
            categories = r.categories,
            products = r.products,
            "demo catalog seeded"
        );
    }
    Ok(())
}
