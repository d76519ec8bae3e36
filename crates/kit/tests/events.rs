//! Event-bus conformance: the same suite against the embedded bus,
//! RabbitMQ and NATS JetStream, on SQLite and PostgreSQL.

mod support;

use std::time::Duration;

use bazaar_kit::events::inbox;
use support::{Broker, Rig, Store};

#[allow(unused_imports)]
use async_nats as _;

/// N events published from an outbox all arrive, each applied once.
async fn all_arrive(broker: Broker, store: Store) {
    let Some(rig) = Rig::new(broker, store).await else {
        return;
    };
    let mut ids = Vec::new();
    for i in 0..200 {
        ids.push(rig.publish(serde_json::json!({ "i": i })).await.id);
    }
    let applied = rig.wait_applied(&ids, 60).await;
    assert!(
        ids.iter().all(|id| applied[id] == 1),
        "an event was applied twice"
    );
    rig.stop().await;
}

/// A handler that fails gets the event again (with backoff) until it succeeds.
async fn failures_are_retried(broker: Broker, store: Store) {
    let Some(rig) = Rig::new(broker, store).await else {
        return;
    };
    let event = rig.publish(serde_json::json!({ "flaky": true })).await;
    rig.control
        .fail
        .lock()
        .expect("lock")
        .insert(event.id.clone(), 2);
    let applied = rig.wait_applied(std::slice::from_ref(&event.id), 30).await;
    assert_eq!(applied[&event.id], 1);
    assert_eq!(
        rig.control.fail.lock().expect("lock")[&event.id],
        0,
        "both failures were seen"
    );
    rig.stop().await;
}

/// A relay that crashes after publishing but before marking the row sent
/// republishes it; the consumer's inbox absorbs the duplicate.
async fn duplicates_are_absorbed(broker: Broker, store: Store) {
    let Some(rig) = Rig::new(broker, store).await else {
        return;
    };
    let event = rig.publish(serde_json::json!({ "once": true })).await;
    rig.wait_applied(std::slice::from_ref(&event.id), 30).await;
    let before = inbox::duplicates_absorbed(&rig.consumer_name);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let published: Option<String> =
            sqlx::query_scalar("SELECT published_at FROM outbox WHERE id = $1")
                .bind(&event.id)
                .fetch_one(rig.producer.pool())
                .await
                .expect("outbox row");
        if published.is_some() {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "never marked published"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Simulate the crash window: published, but the mark was lost.
    sqlx::query("UPDATE outbox SET published_at = NULL WHERE id = $1")
        .bind(&event.id)
        .execute(rig.producer.pool())
        .await
        .expect("reset");
    rig.bus.nudge();
    if broker == Broker::Nats {
        // JetStream drops the republish itself (same Nats-Msg-Id within the
        // duplicate window): the relay gets an ack, the stream keeps one copy.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            let published: Option<String> =
                sqlx::query_scalar("SELECT published_at FROM outbox WHERE id = $1")
                    .bind(&event.id)
                    .fetch_one(rig.producer.pool())
                    .await
                    .expect("outbox row");
            if published.is_some() {
                break;
            }
            assert!(tokio::time::Instant::now() < deadline, "never republished");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let client = async_nats::connect("127.0.0.1:4222").await.expect("nats");
        let js = async_nats::jetstream::new(client);
        let mut stream = js
            .get_stream(format!("{}_EVENTS", rig.namespace.to_uppercase()))
            .await
            .expect("stream");
        assert_eq!(
            stream.info().await.expect("info").state.messages,
            1,
            "duplicate stored"
        );
        assert_eq!(rig.applied().await[&event.id], 1);
        rig.stop().await;
        return;
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while inbox::duplicates_absorbed(&rig.consumer_name) == before {
        if tokio::time::Instant::now() > deadline {
            let row: (Option<String>, i64, i32, Option<String>) = sqlx::query_as("SELECT published_at, next_attempt_at, attempts, last_error FROM outbox WHERE id = $1")
                .bind(&event.id)
                .fetch_one(rig.producer.pool())
                .await
                .expect("outbox row");
            panic!("the duplicate never arrived; outbox row {row:?}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(rig.applied().await[&event.id], 1, "duplicate applied twice");
    rig.stop().await;
}

/// A poisoned event ends in the dead-letter store with its error, and
/// replays once the handler is fixed.
async fn poison_dead_letters_and_replays(broker: Broker, store: Store) {
    let Some(rig) = Rig::new(broker, store).await else {
        return;
    };
    let poison = rig.publish(serde_json::json!({ "poison": true })).await;
    let healthy = rig.publish(serde_json::json!({ "fine": true })).await;
    rig.wait_applied(std::slice::from_ref(&healthy.id), 30)
        .await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let letter = loop {
        let letters = inbox::list_dead_letters(&rig.consumer).await.expect("list");
        if let Some(l) = letters.into_iter().find(|l| l.event_id == poison.id) {
            break l;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "poison never dead-lettered"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(letter.error, "poisoned event");
    assert_eq!(letter.attempts, inbox::MAX_ATTEMPTS);
    assert!(!rig.applied().await.contains_key(&poison.id));
    // The operator fixes the bug and replays.
    rig.control
        .poison_fixed
        .store(true, std::sync::atomic::Ordering::SeqCst);
    assert_eq!(
        inbox::request_replay(&rig.consumer, Some(&letter.id))
            .await
            .expect("replay"),
        1
    );
    let applied = rig.wait_applied(std::slice::from_ref(&poison.id), 30).await;
    assert_eq!(applied[&poison.id], 1);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !inbox::list_dead_letters(&rig.consumer)
        .await
        .expect("list")
        .is_empty()
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "dead letter not marked replayed"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    rig.stop().await;
}

/// A consumer that dies before acknowledging gets the event again after a
/// restart, and applies it once.
async fn unacked_events_are_redelivered(broker: Broker, store: Store) {
    let Some(mut rig) = Rig::new(broker, store).await else {
        return;
    };
    let event = rig.publish(serde_json::json!({ "slow": true })).await;
    rig.control
        .hang_once
        .lock()
        .expect("lock")
        .insert(event.id.clone(), true);
    // Wait until the handler is stuck on it, then crash everything.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while rig.control.hang_once.lock().expect("lock")[&event.id] {
        assert!(
            tokio::time::Instant::now() < deadline,
            "event never delivered"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    rig.crash_and_restart().await;
    let applied = rig.wait_applied(std::slice::from_ref(&event.id), 60).await;
    assert_eq!(applied[&event.id], 1);
    rig.stop().await;
}

/// Two replicas of a consuming service share its queue / durable consumer:
/// both do some of the work, and every event is applied exactly once.
async fn replicas_share_the_work(broker: Broker) {
    let Some(mut rig) = Rig::new(broker, Store::Postgres).await else {
        return;
    };
    let second = rig.add_replica().await;
    let mut ids = Vec::new();
    for i in 0..300 {
        ids.push(rig.publish(serde_json::json!({ "i": i })).await.id);
    }
    let applied = rig.wait_applied(&ids, 60).await;
    assert!(
        ids.iter().all(|id| applied[id] == 1),
        "an event was applied twice"
    );
    let first = rig.handled.load(std::sync::atomic::Ordering::SeqCst);
    let second = second.load(std::sync::atomic::Ordering::SeqCst);
    assert_eq!(first + second, ids.len());
    assert!(
        first > 0 && second > 0,
        "one replica did all the work: {first} / {second}"
    );
    rig.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rabbitmq_replicas_share_the_work() {
    replicas_share_the_work(Broker::RabbitMq).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nats_replicas_share_the_work() {
    replicas_share_the_work(Broker::Nats).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_replicas_share_the_work() {
    replicas_share_the_work(Broker::Redis).await;
}

macro_rules! suite {
    ($module:ident, $broker:expr) => {
        mod $module {
            use super::*;

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn all_arrive_sqlite() {
                all_arrive($broker, Store::Sqlite).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn all_arrive_postgres() {
                all_arrive($broker, Store::Postgres).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn failures_are_retried_sqlite() {
                failures_are_retried($broker, Store::Sqlite).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn failures_are_retried_postgres() {
                failures_are_retried($broker, Store::Postgres).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn duplicates_are_absorbed_sqlite() {
                duplicates_are_absorbed($broker, Store::Sqlite).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn duplicates_are_absorbed_postgres() {
                duplicates_are_absorbed($broker, Store::Postgres).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn poison_dead_letters_and_replays_sqlite() {
                poison_dead_letters_and_replays($broker, Store::Sqlite).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn poison_dead_letters_and_replays_postgres() {
                poison_dead_letters_and_replays($broker, Store::Postgres).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn unacked_events_are_redelivered_sqlite() {
                unacked_events_are_redelivered($broker, Store::Sqlite).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn unacked_events_are_redelivered_postgres() {
                unacked_events_are_redelivered($broker, Store::Postgres).await;
            }
        }
    };
}

suite!(embedded, Broker::Embedded);
suite!(rabbitmq, Broker::RabbitMq);
suite!(nats, Broker::Nats);
suite!(redis, Broker::Redis);
