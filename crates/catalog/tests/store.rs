//! Store-level tests on SQLite and PostgreSQL (skipped loudly when no
//! PostgreSQL server answers, failed under CI=true).

use std::sync::Arc;
use std::time::Duration;

use bazaar_catalog::domain::reservation::{Line, Outcome, ReserveBody};
use bazaar_catalog::domain::{ProductBody, ProductFilter};
use bazaar_catalog::store as catalog;
use bazaar_catalog::store::reservations::ReleaseKind;
use bazaar_catalog::{MIGRATIONS, seed};
use bazaar_kit::Db;

async fn sqlite() -> (Db, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}/catalog.db", dir.path().display());
    let db = Db::connect(&url, &MIGRATIONS, Duration::from_secs(5))
        .await
        .expect("sqlite");
    (db, dir)
}

async fn postgres() -> Option<Db> {
    if !bazaar_kit::testing::server_available("PostgreSQL", "127.0.0.1:5432").await {
        return None;
    }
    let name = format!(
        "bzt_{}_catalog",
        &uuid::Uuid::new_v4().simple().to_string()[..12]
    );
    let url = format!("{}/{name}", bazaar_kit::testing::postgres_url());
    Some(
        Db::connect(&url, &MIGRATIONS, Duration::from_secs(5))
            .await
            .expect("postgres"),
    )
}

async fn product(store: &Db, sku: &str, stock: i64) -> String {
    if catalog::category_id(store, "test")
        .await
        .expect("cat")
        .is_none()
    {
        let slug = bazaar_catalog::domain::Slug::parse("test").expect("slug");
        catalog::create_category(store, "Test", &slug)
            .await
            .expect("category");
    }
    let body = ProductBody {
        sku: Some(sku.into()),
        name: Some(format!("Widget {sku}")),
        price: Some(serde_json::json!("10.00")),
        category: Some("test".into()),
        stock: Some(stock),
        ..ProductBody::default()
    };
    let patch = body.validate(true).expect("valid");
    catalog::create_product(store, patch)
        .await
        .expect("created")
        .id
}

fn reservation(
    order: &str,
    lines: &[(&str, i64)],
) -> bazaar_catalog::domain::reservation::Reservation {
    ReserveBody {
        order_id: order.into(),
        items: lines
            .iter()
            .map(|(p, q)| Line {
                product_id: (*p).into(),
                quantity: *q,
            })
            .collect(),
    }
    .validate()
    .expect("valid")
}

async fn stock(store: &Db, id: &str) -> i64 {
    catalog::product(store, id)
        .await
        .expect("read")
        .expect("exists")
        .stock
}

async fn never_oversells(db: Db) {
    let store = db;
    let id = product(&store, "CONC-1", 10).await;
    let store = Arc::new(store);
    let tasks: Vec<_> = (0..50)
        .map(|i| {
            let store = store.clone();
            let id = id.clone();
            tokio::spawn(async move {
                catalog::reserve(
                    &store,
                    &reservation(&format!("order-{i}"), &[(&id, 1)]),
                    60_000,
                )
                .await
                .expect("reserve")
            })
        })
        .collect();
    let mut reserved = 0;
    for t in tasks {
        if t.await.expect("task") == Outcome::Reserved {
            reserved += 1;
        }
    }
    assert_eq!(reserved, 10);
    assert_eq!(stock(&store, &id).await, 0);

    // The same reservation retried (even concurrently) counts once.
    let other = product(&store, "CONC-2", 10).await;
    let retries: Vec<_> = (0..5)
        .map(|_| {
            let store = store.clone();
            let other = other.clone();
            tokio::spawn(async move {
                catalog::reserve(&store, &reservation("retried", &[(&other, 3)]), 60_000)
                    .await
                    .expect("reserve")
            })
        })
        .collect();
    for t in retries {
        assert_eq!(t.await.expect("task"), Outcome::Reserved);
    }
    assert_eq!(stock(&store, &other).await, 7);
}

async fn all_or_nothing_and_lifecycle(db: Db) {
    let store = db;
    let a = product(&store, "LIFE-A", 5).await;
    let b = product(&store, "LIFE-B", 1).await;
    let out = catalog::reserve(&store, &reservation("o1", &[(&a, 2), (&b, 2)]), 60_000)
        .await
        .expect("reserve");
    assert_eq!(
        out,
        Outcome::Rejected {
            product_ids: vec![b.clone()]
        }
    );
    assert_eq!((stock(&store, &a).await, stock(&store, &b).await), (5, 1));
    // A rejected order stays rejected on retry.
    let again = catalog::reserve(&store, &reservation("o1", &[(&a, 1)]), 60_000)
        .await
        .expect("retry");
    assert!(matches!(again, Outcome::Rejected { .. }));

    assert_eq!(
        catalog::reserve(&store, &reservation("o2", &[(&a, 2), (&b, 1)]), 60_000)
            .await
            .expect("ok"),
        Outcome::Reserved
    );
    assert_eq!((stock(&store, &a).await, stock(&store, &b).await), (3, 0));
    assert_eq!(
        catalog::commit_reservation(&store, "o2")
            .await
            .expect("commit"),
        Outcome::Committed
    );
    assert_eq!(
        catalog::commit_reservation(&store, "o2")
            .await
            .expect("again"),
        Outcome::Committed
    );
    // Committed reservations never expire...
    assert_eq!(
        catalog::expire_reservations(&store, i64::MAX, 100)
            .await
            .expect("sweep"),
        0
    );
    // ...but a cancel returns their stock, once.
    assert!(
        catalog::release_reservation(&store, "o2", ReleaseKind::Requested)
            .await
            .expect("release")
    );
    assert!(
        !catalog::release_reservation(&store, "o2", ReleaseKind::Requested)
            .await
            .expect("again")
    );
    assert!(
        !catalog::release_reservation(&store, "unknown", ReleaseKind::Requested)
            .await
            .expect("noop")
    );
    assert_eq!((stock(&store, &a).await, stock(&store, &b).await), (5, 1));

    // Uncommitted reservations expire and give their stock back.
    catalog::reserve(&store, &reservation("o3", &[(&a, 4)]), 1_000)
        .await
        .expect("ok");
    assert_eq!(stock(&store, &a).await, 1);
    assert_eq!(
        catalog::expire_reservations(&store, 0, 100)
            .await
            .expect("not yet"),
        0
    );
    assert_eq!(
        catalog::expire_reservations(&store, i64::MAX, 100)
            .await
            .expect("sweep"),
        1
    );
    assert_eq!(stock(&store, &a).await, 5);
    assert!(
        catalog::commit_reservation(&store, "o3").await.is_err(),
        "expired cannot commit"
    );
    assert_eq!(
        catalog::reserve(&store, &reservation("o3", &[(&a, 4)]), 1_000)
            .await
            .expect("retry"),
        Outcome::Released
    );
}

async fn seeded_search_and_filters(db: Db) {
    let report = seed::seed(&db, 1_000).await.expect("seed");
    assert_eq!((report.products, report.total), (1_000, 1_000));
    assert!(report.categories >= 10);
    assert_eq!(seed::seed(&db, 1_000).await.expect("again").products, 0);
    assert!(seed::seed_if_empty(&db).await.expect("noop").is_none());
    let store = db;
    let all = ProductFilter::default();
    assert_eq!(
        catalog::count_products(&store, &all, None)
            .await
            .expect("count"),
        1_000
    );
    let search = ProductFilter {
        terms: vec!["kettl".into()],
        ..ProductFilter::default()
    };
    let n = catalog::count_products(&store, &search, None)
        .await
        .expect("search");
    assert!(n > 0 && n < 1_000, "{n}");
    let page = catalog::list_products(&store, &search, None, 100, 0)
        .await
        .expect("page");
    assert!(page.iter().all(|p| {
        let text = format!("{} {}", p.name, p.description).to_lowercase();
        text.contains("kettl")
    }));
    let cat = catalog::category_id(&store, "books")
        .await
        .expect("q")
        .expect("books");
    let cheap = ProductFilter {
        max_price: Some(1_000),
        in_stock: Some(true),
        ordering: bazaar_catalog::domain::Ordering::PriceDesc,
        ..ProductFilter::default()
    };
    let rows = catalog::list_products(&store, &cheap, Some(&cat), 100, 0)
        .await
        .expect("rows");
    assert!(!rows.is_empty());
    assert!(
        rows.iter()
            .all(|p| p.category == "books" && p.price_cents <= 1_000 && p.stock > 0)
    );
    assert!(
        rows.windows(2)
            .all(|w| w[0].price_cents >= w[1].price_cents)
    );
}

#[tokio::test]
async fn sqlite_never_oversells() {
    let (db, _dir) = sqlite().await;
    never_oversells(db).await;
}

#[tokio::test]
async fn postgres_never_oversells() {
    if let Some(db) = postgres().await {
        never_oversells(db).await;
    }
}

#[tokio::test]
async fn sqlite_reservation_lifecycle() {
    let (db, _dir) = sqlite().await;
    all_or_nothing_and_lifecycle(db).await;
}

#[tokio::test]
async fn postgres_reservation_lifecycle() {
    if let Some(db) = postgres().await {
        all_or_nothing_and_lifecycle(db).await;
    }
}

#[tokio::test]
async fn sqlite_seed_search_filters() {
    let (db, _dir) = sqlite().await;
    seeded_search_and_filters(db).await;
}

#[tokio::test]
async fn postgres_seed_search_filters() {
    if let Some(db) = postgres().await {
        seeded_search_and_filters(db).await;
    }
}

#[tokio::test]
async fn sqlite_concurrent_writes() {
    let (db, _dir) = sqlite().await;
    let store = Arc::new(db);
    product(&store, "FIRST", 1).await;
    let tasks: Vec<_> = (0..101)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move {
                let body = ProductBody {
                    sku: Some(format!("BULK-{i}")),
                    name: Some("Bulk".into()),
                    price: Some(serde_json::json!("1.00")),
                    category: Some("test".into()),
                    ..ProductBody::default()
                };
                catalog::create_product(&store, body.validate(true).expect("valid")).await
            })
        })
        .collect();
    for t in tasks {
        if let Err(e) = t.await.expect("task") {
            panic!("{e:?}");
        }
    }
}

async fn outbox_types(db: &Db) -> Vec<String> {
    sqlx::query_scalar("SELECT event_type FROM outbox ORDER BY seq")
        .fetch_all(db.pool())
        .await
        .expect("outbox")
}

#[tokio::test]
async fn writes_publish_events_through_the_outbox() {
    let (db, _dir) = sqlite().await;
    let store = db.clone();
    let id = product(&store, "EVT-1", 2).await;
    let patch = ProductBody {
        stock: Some(5),
        ..ProductBody::default()
    }
    .validate(false)
    .expect("valid");
    catalog::update_product(&store, &id, patch)
        .await
        .expect("update");
    catalog::reserve(&store, &reservation("e1", &[(&id, 1)]), 60_000)
        .await
        .expect("reserve");
    catalog::reserve(&store, &reservation("e2", &[(&id, 99)]), 60_000)
        .await
        .expect("reject");
    catalog::release_reservation(&store, "e1", ReleaseKind::Requested)
        .await
        .expect("release");
    catalog::delete_product(&store, &id).await.expect("delete");
    assert_eq!(
        outbox_types(&db).await,
        [
            "product.changed",
            "product.changed",
            "stock.reserved",
            "stock.rejected",
            "stock.released",
            "product.changed"
        ]
    );
    let data: String = sqlx::query_scalar("SELECT data FROM outbox ORDER BY seq LIMIT 1")
        .fetch_one(db.pool())
        .await
        .expect("data");
    let data: serde_json::Value = serde_json::from_str(&data).expect("json");
    assert_eq!(data["product_id"], id.as_str());
    assert_eq!(data["sku"], "EVT-1");
    assert_eq!(data["change"], "created");
}
