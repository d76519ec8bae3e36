//! End-to-end event throughput: outbox write → relay → bus → inbox +
//! handler committed, for each backend on SQLite and PostgreSQL.
//!
//! `cargo bench -p bazaar-kit --bench events` (servers that are absent are
//! skipped). Set `BAZAAR_BENCH_EVENTS=N` to change the event count.

#[path = "../tests/support/mod.rs"]
mod support;

use std::time::Instant;

use bazaar_kit::ServiceName;
use bazaar_kit::events::{Envelope, outbox};
use support::{Broker, Rig, Store};

async fn run(broker: Broker, store: Store, n: usize) -> Option<f64> {
    let rig = Rig::new(broker, store).await?;
    let started = Instant::now();
    let mut ids = Vec::with_capacity(n);
    // Producers commit small transactions, as request handlers do.
    for chunk in 0..n.div_ceil(10) {
        let mut tx = rig.producer.pool().begin().await.expect("begin");
        for i in 0..10.min(n - chunk * 10) {
            let event = Envelope::new(
                support::EVENT_TYPE,
                1,
                ServiceName::Orders,
                serde_json::json!({ "i": i }),
            );
            outbox::enqueue(&mut tx, &event).await.expect("enqueue");
            ids.push(event.id);
        }
        tx.commit().await.expect("commit");
        rig.bus.nudge();
    }
    rig.wait_applied(&ids, 600).await;
    let rate = n as f64 / started.elapsed().as_secs_f64();
    rig.stop().await;
    Some(rate)
}

fn main() {
    let n: usize = std::env::var("BAZAAR_BENCH_EVENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5000);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    println!("events end to end (outbox write → handler committed), {n} events each");
    println!("{:<10} {:<10} {:>12}", "broker", "store", "events/s");
    for broker in [
        Broker::Embedded,
        Broker::RabbitMq,
        Broker::Nats,
        Broker::Redis,
    ] {
        for store in [Store::Sqlite, Store::Postgres] {
            match runtime.block_on(run(broker, store, n)) {
                Some(rate) => println!(
                    "{:<10} {:<10} {:>12.0}",
                    format!("{broker:?}"),
                    format!("{store:?}"),
                    rate
                ),
                None => println!(
                    "{:<10} {:<10} {:>12}",
                    format!("{broker:?}"),
                    format!("{store:?}"),
                    "skipped"
                ),
            }
        }
    }
}
