//! `bazaar bench` end to end: a platform spawned in-process, a short mixed
//! run (closed loop, with the hello-world comparison) and a short checkout
//! run (open loop); zero errors, and every order placed verified final and
//! correct. SQLite + embedded broker, and PostgreSQL + RabbitMQ.

use crate::common;

use std::time::Duration;

use bazaar::bench::{Mode, Options, Scenario, SpawnOptions, bench};
use common::Store;

fn options(spawn: SpawnOptions, scenario: Scenario, mode: Mode, secs: u64) -> Options {
    Options {
        target: String::new(),
        spawn: Some(spawn),
        scenario,
        mode,
        duration: Duration::from_secs(secs),
        staff_token: None,
        staff_login: None,
        users: 8,
        products: 5,
        hello: false,
        progress: false,
    }
}

fn spawn_options(store: Store) -> SpawnOptions {
    SpawnOptions {
        database_url: store.is_postgres().then(common::postgres_url),
        broker_url: (store == Store::PostgresRabbitMq)
            .then(|| "amqp://guest:guest@127.0.0.1:5672/%2f".to_string()),
        in_process: true,
    }
}

fn assert_clean(r: &bazaar::bench::Report) {
    assert!(r.total_requests > 0, "no requests made");
    assert_eq!(r.total_errors, 0, "errors: {:#?}", r.requests);
    for j in &r.journeys {
        assert_eq!(
            j.error_count, 0,
            "journey {} failed: {:?}",
            j.name, j.errors
        );
    }
}

async fn mixed_and_checkout(store: Store) {
    if !store.available().await {
        return;
    }
    let mut mixed = options(spawn_options(store), Scenario::Mixed, Mode::Closed(8), 3);
    mixed.hello = store == Store::Sqlite;
    let r = bench(mixed).await.expect("mixed run");
    assert_clean(&r);
    let names: Vec<&str> = r.requests.iter().map(|k| k.name.as_str()).collect();
    for kind in [
        "browse.list",
        "browse.category",
        "browse.search",
        "browse.detail",
    ] {
        assert!(names.contains(&kind), "{kind} missing from {names:?}");
    }
    let platform = r.platform.as_ref().expect("resources measured");
    assert!(
        platform.rss_peak_mib > 1.0 && platform.cpu_secs > 0.0,
        "{platform:?}"
    );
    if let Some(v) = &r.verification {
        assert!(v.problems.is_empty(), "{:?}", v.problems);
    }
    if store == Store::Sqlite {
        let hello = r.hello.as_ref().expect("hello-world comparison");
        assert!(
            hello.row.count > 0 && hello.row.error_count == 0,
            "{hello:?}"
        );
        assert!(hello.browse_ratio > 0.0);
    }

    // Checkout only, open loop: orders placed, confirmed and declined, all
    // verified afterwards.
    let r = bench(options(
        spawn_options(store),
        Scenario::Checkout,
        Mode::Open(15.0),
        3,
    ))
    .await
    .expect("checkout run");
    assert_clean(&r);
    let c = r.checkout.as_ref().expect("orders placed");
    assert!(c.placed >= 20, "only {} orders in 3 s at 15/s", c.placed);
    assert!(c.to_confirmed.count > 0, "none confirmed");
    let v = r.verification.as_ref().expect("verified");
    assert_eq!(v.checked, c.placed);
    assert_eq!(v.correct, v.checked, "{:?}", v.problems);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bench_runs_clean_on_sqlite() {
    mixed_and_checkout(Store::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bench_runs_clean_on_postgres_rabbitmq() {
    mixed_and_checkout(Store::PostgresRabbitMq).await;
}
