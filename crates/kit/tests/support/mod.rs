//! Harness for the event-bus conformance suite: a producer and a consumer
//! database, a bus of the chosen backend, and a test handler whose
//! behaviour each event's data controls.
#![allow(dead_code)]

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bazaar_kit::db::{Backend as DbBackend, Db, Migrations};
use bazaar_kit::events::{Bus, Envelope, Handler, HandlerError, Subscription, outbox};
use bazaar_kit::{CancellationToken, ServiceName};
use futures::future::BoxFuture;
use sqlx::AnyConnection;
use sqlx::migrate::Migrator;
use tokio::task::JoinHandle;

static SQLITE: Migrator = sqlx::migrate!("tests/migrations/sqlite");
static POSTGRES: Migrator = sqlx::migrate!("tests/migrations/postgres");
/// The test schema.
pub const MIGRATIONS: Migrations = Migrations {
    sqlite: &SQLITE,
    postgres: &POSTGRES,
};

/// A broker backend.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Broker {
    Embedded,
    RabbitMq,
    Nats,
    Redis,
}

/// A database backend.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Store {
    Sqlite,
    Postgres,
}

pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

/// Whether a server answers; skips loudly, or panics under CI=true.
pub async fn available(what: &str, addr: &str) -> bool {
    let ok = matches!(
        tokio::time::timeout(Duration::from_secs(2), tokio::net::TcpStream::connect(addr)).await,
        Ok(Ok(_))
    );
    if !ok {
        if in_ci() {
            panic!("{what} is not reachable at {addr}, and CI=true requires it");
        }
        eprintln!(
            "\n!!!!!!!! SKIPPED: {what} is not reachable at {addr} (CI=true makes this a failure) !!!!!!!!\n"
        );
    }
    ok
}

pub fn broker_url(broker: Broker) -> &'static str {
    match broker {
        Broker::Embedded => "embedded",
        Broker::RabbitMq => "amqp://guest:guest@127.0.0.1:5672/%2f",
        Broker::Nats => "nats://127.0.0.1:4222",
        Broker::Redis => "redis://127.0.0.1:6379",
    }
}

/// What the test handler does, per event id.
#[derive(Default)]
pub struct Control {
    /// Remaining failures per event id.
    pub fail: Mutex<HashMap<String, u32>>,
    /// Poison events fail until this is set.
    pub poison_fixed: AtomicBool,
    /// Events whose first attempt hangs (a consumer that dies before acking).
    pub hang_once: Mutex<HashMap<String, bool>>,
}

/// Writes one `applied` row per event (n counts applications).
pub struct TestHandler {
    pub consumer: String,
    pub control: Arc<Control>,
    /// Events this handler instance (one replica) applied.
    pub handled: Arc<std::sync::atomic::AtomicUsize>,
}

impl Handler for TestHandler {
    fn handle<'a>(
        &'a self,
        event: &'a Envelope,
        tx: &'a mut AnyConnection,
    ) -> BoxFuture<'a, Result<(), HandlerError>> {
        Box::pin(async move {
            if event.data["poison"].as_bool() == Some(true)
                && !self.control.poison_fixed.load(Ordering::SeqCst)
            {
                return Err(HandlerError::new("poisoned event"));
            }
            let hang = self
                .control
                .hang_once
                .lock()
                .expect("lock")
                .get_mut(&event.id)
                .map(|first| std::mem::replace(first, false))
                .unwrap_or(false);
            if hang {
                tokio::time::sleep(Duration::from_secs(3600)).await;
            }
            let fail = {
                let mut fail = self.control.fail.lock().expect("lock");
                match fail.get_mut(&event.id) {
                    Some(n) if *n > 0 => {
                        *n -= 1;
                        true
                    }
                    _ => false,
                }
            };
            if fail {
                return Err(HandlerError::new("transient failure"));
            }
            sqlx::query(
                "INSERT INTO applied (consumer, event_id, n) VALUES ($1, $2, 1) \
                 ON CONFLICT (consumer, event_id) DO UPDATE SET n = applied.n + 1",
            )
            .bind(&self.consumer)
            .bind(&event.id)
            .execute(&mut *tx)
            .await?;
            self.handled.fetch_add(1, Ordering::SeqCst);
            Ok(())
        })
    }
}

/// A producer and a consumer "service" connected through a bus.
pub struct Rig {
    pub broker: Broker,
    pub producer: Db,
    pub consumer: Db,
    pub consumer_name: String,
    pub namespace: String,
    pub control: Arc<Control>,
    pub bus: Bus,
    /// Events the first replica's handler applied.
    pub handled: Arc<std::sync::atomic::AtomicUsize>,
    token: CancellationToken,
    tasks: Vec<JoinHandle<()>>,
    _dir: tempfile::TempDir,
    urls: (String, String),
}

pub const EVENT_TYPE: &str = "test.happened";

async fn open(url: &str) -> Db {
    Db::connect(url, &MIGRATIONS, Duration::from_secs(10))
        .await
        .expect("db")
}

impl Rig {
    /// A rig, or `None` when a server it needs is absent (skipped).
    pub async fn new(broker: Broker, store: Store) -> Option<Rig> {
        if store == Store::Postgres && !available("PostgreSQL", "127.0.0.1:5432").await {
            return None;
        }
        match broker {
            Broker::RabbitMq if !available("RabbitMQ", "127.0.0.1:5672").await => return None,
            Broker::Nats if !available("NATS", "127.0.0.1:4222").await => return None,
            Broker::Redis if !available("Redis", "127.0.0.1:6379").await => return None,
            _ => {}
        }
        if std::env::var("RUST_LOG").is_ok() {
            bazaar_kit::telemetry::init(bazaar_kit::config::LogFormat::Pretty, "info");
        }
        let dir = tempfile::tempdir().expect("tempdir");
        let tag = uuid::Uuid::new_v4().simple().to_string()[..10].to_string();
        let urls = match store {
            Store::Sqlite => (
                format!("sqlite://{}/producer.db", dir.path().display()),
                format!("sqlite://{}/consumer.db", dir.path().display()),
            ),
            Store::Postgres => (
                format!("postgres://postgres@127.0.0.1:5432/bzt_{tag}_producer"),
                format!("postgres://postgres@127.0.0.1:5432/bzt_{tag}_consumer"),
            ),
        };
        let producer = open(&urls.0).await;
        let consumer = open(&urls.1).await;
        assert_eq!(
            producer.backend() == DbBackend::Postgres,
            store == Store::Postgres
        );
        let namespace = format!("t{tag}");
        let bus = Bus::connect(broker_url(broker), &namespace)
            .await
            .expect("bus");
        let mut rig = Rig {
            broker,
            producer,
            consumer,
            consumer_name: format!("consumer_{tag}"),
            namespace,
            control: Arc::new(Control::default()),
            bus,
            handled: Arc::default(),
            token: CancellationToken::new(),
            tasks: Vec::new(),
            _dir: dir,
            urls,
        };
        rig.spawn().await;
        Some(rig)
    }

    async fn spawn(&mut self) {
        let sub = Subscription::new(
            self.consumer_name.clone(),
            &[EVENT_TYPE],
            TestHandler {
                consumer: self.consumer_name.clone(),
                control: self.control.clone(),
                handled: self.handled.clone(),
            },
        );
        let mut workers = self
            .bus
            .workers(ServiceName::Orders, &self.producer, vec![]);
        workers.extend(
            self.bus
                .workers(ServiceName::Notifications, &self.consumer, vec![sub]),
        );
        self.bus.start().await.expect("bus start");
        for (_, worker) in workers {
            self.tasks
                .push(tokio::spawn(worker(self.token.child_token())));
        }
    }

    /// Starts a second replica of the consumer service: its own broker
    /// connection, same database, same consumer name (competing consumers).
    /// Returns the count of events it applies.
    pub async fn add_replica(&mut self) -> Arc<std::sync::atomic::AtomicUsize> {
        let handled: Arc<std::sync::atomic::AtomicUsize> = Arc::default();
        let bus = Bus::connect(broker_url(self.broker), &self.namespace)
            .await
            .expect("bus");
        let sub = Subscription::new(
            self.consumer_name.clone(),
            &[EVENT_TYPE],
            TestHandler {
                consumer: self.consumer_name.clone(),
                control: self.control.clone(),
                handled: handled.clone(),
            },
        );
        let workers = bus.workers(ServiceName::Notifications, &self.consumer, vec![sub]);
        bus.start().await.expect("bus start");
        for (_, worker) in workers {
            self.tasks
                .push(tokio::spawn(worker(self.token.child_token())));
        }
        handled
    }

    /// Kills every worker mid-flight (a crash), then starts a fresh
    /// process's worth: new bus connection, same databases.
    pub async fn crash_and_restart(&mut self) {
        for task in self.tasks.drain(..) {
            task.abort();
            let _ = task.await;
        }
        self.token = CancellationToken::new();
        self.bus = Bus::connect(broker_url(self.broker), &self.namespace)
            .await
            .expect("bus");
        self.producer = open(&self.urls.0).await;
        self.consumer = open(&self.urls.1).await;
        self.spawn().await;
    }

    /// Records an event in the producer's outbox (its own transaction).
    pub async fn publish(&self, data: serde_json::Value) -> Envelope {
        let event = Envelope::new(EVENT_TYPE, 1, ServiceName::Orders, data);
        let mut tx = self.producer.pool().begin().await.expect("begin");
        outbox::enqueue(&mut tx, &event).await.expect("enqueue");
        tx.commit().await.expect("commit");
        self.bus.nudge();
        event
    }

    /// How many times each event was applied.
    pub async fn applied(&self) -> HashMap<String, i64> {
        let rows: Vec<(String, i64)> =
            sqlx::query_as("SELECT event_id, CAST(n AS BIGINT) FROM applied WHERE consumer = $1")
                .bind(&self.consumer_name)
                .fetch_all(self.consumer.pool())
                .await
                .expect("applied");
        rows.into_iter().collect()
    }

    /// Polls until `ids` are all applied (or panics after `secs`).
    pub async fn wait_applied(&self, ids: &[String], secs: u64) -> HashMap<String, i64> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
        loop {
            let applied = self.applied().await;
            if ids.iter().all(|id| applied.contains_key(id)) {
                return applied;
            }
            if tokio::time::Instant::now() > deadline {
                let missing = ids.iter().filter(|id| !applied.contains_key(*id)).count();
                panic!(
                    "{:?}: {missing} of {} events not applied after {secs}s",
                    self.broker,
                    ids.len()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Stops the workers.
    pub async fn stop(self) {
        self.token.cancel();
        for task in self.tasks {
            let _ = tokio::time::timeout(Duration::from_secs(5), task).await;
        }
    }
}
