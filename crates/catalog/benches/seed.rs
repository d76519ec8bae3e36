//! `cargo bench -p bazaar-catalog`: how long seeding 100,000 products
//! takes on SQLite (what `bazaar seed --products 100000` does). Reported,
//! not asserted: a loaded machine is slower, and that is no bug.

use std::time::{Duration, Instant};

use bazaar_catalog::{MIGRATIONS, seed};
use bazaar_kit::Db;

const PRODUCTS: u64 = 100_000;

fn main() {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async {
        let dir = tempfile::tempdir().expect("tempdir");
        let url = format!("sqlite://{}/catalog.db", dir.path().display());
        let db = Db::connect(&url, &MIGRATIONS, Duration::from_secs(5))
            .await
            .expect("sqlite");
        let started = Instant::now();
        let report = seed::seed(&db, PRODUCTS).await.expect("seed");
        let took = started.elapsed();
        assert_eq!(report.total, PRODUCTS, "every product seeded");
        println!(
            "seed {PRODUCTS} products on SQLite: {:>8.2} s  ({:.0} products/s)",
            took.as_secs_f64(),
            PRODUCTS as f64 / took.as_secs_f64()
        );
        db.close().await;
    });
}
