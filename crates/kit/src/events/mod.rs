//! Events: the asynchronous half of the platform.
//!
//! * [`Envelope`]: what travels (id, type, version, source, time, trace, data).
//! * [`outbox::enqueue`]: a service records an event in its own database, in
//!   the same transaction as the state change.
//! * A relay (one worker per service) publishes committed outbox rows to the
//!   bus and marks them sent; failures retry with backoff.
//! * [`Handler`]s consume events through [`inbox::apply`]: the inbox row
//!   (consumer, event id) is written in the same transaction as the
//!   handler's effect, so a redelivered event is applied once. A handler
//!   that keeps failing lands in the dead-letter table for an operator.
//! * [`Bus`]: the backend, chosen by `BAZAAR_BROKER_URL` — `embedded`
//!   (in-process, durable through outbox + inbox), RabbitMQ, NATS JetStream
//!   or Redis Streams.

mod amqp;
mod embedded;
pub mod envelope;
pub mod inbox;
mod nats;
pub mod outbox;
mod redis_streams;
mod relay;

use std::sync::Arc;

use futures::future::BoxFuture;
use sqlx::AnyConnection;

pub use envelope::Envelope;

use crate::config::ServiceName;
use crate::db::Db;
use crate::service::Worker;

/// Why a handler could not apply an event; it is retried with backoff and,
/// after [`inbox::MAX_ATTEMPTS`], dead-lettered with this message.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct HandlerError(pub String);

impl HandlerError {
    /// An error with a message.
    pub fn new(message: impl Into<String>) -> Self {
        Self(message.into())
    }
}

impl From<sqlx::Error> for HandlerError {
    fn from(e: sqlx::Error) -> Self {
        Self(format!("database: {e}"))
    }
}

impl From<serde_json::Error> for HandlerError {
    fn from(e: serde_json::Error) -> Self {
        Self(format!("bad event data: {e}"))
    }
}

/// Applies one event inside the consumer's transaction. Do every write
/// through `tx`; the kit commits it together with the inbox row.
pub trait Handler: Send + Sync + 'static {
    /// Applies `event`.
    fn handle<'a>(
        &'a self,
        event: &'a Envelope,
        tx: &'a mut AnyConnection,
    ) -> BoxFuture<'a, Result<(), HandlerError>>;
}

/// A consumer: its name (the inbox key and the broker queue), the event
/// types it wants, and its handler.
#[derive(Clone)]
pub struct Subscription {
    /// Durable consumer name, e.g. `notifications`.
    pub consumer: String,
    /// Event types, e.g. `order.confirmed`.
    pub types: Vec<String>,
    /// What to do with each event.
    pub handler: Arc<dyn Handler>,
}

impl Subscription {
    /// A subscription of `consumer` to `types`.
    pub fn new(consumer: impl Into<String>, types: &[&str], handler: impl Handler) -> Self {
        Self {
            consumer: consumer.into(),
            types: types.iter().map(|t| (*t).to_string()).collect(),
            handler: Arc::new(handler),
        }
    }
}

/// The event bus of this process.
#[derive(Clone)]
pub struct Bus {
    inner: Arc<BusKind>,
    nudge: Arc<tokio::sync::Notify>,
    /// Set once every subscriber's queue exists; relays wait for it.
    started: tokio::sync::watch::Sender<bool>,
    /// Subscriptions registered in this process (declared on start).
    registered: Arc<std::sync::Mutex<Vec<Subscription>>>,
    /// Why the last start attempt failed, while the bus is not started.
    start_error: Arc<std::sync::Mutex<Option<String>>>,
}

enum BusKind {
    Embedded(embedded::EmbeddedBus),
    Amqp(amqp::Amqp),
    Nats(nats::Nats),
    Redis(redis_streams::RedisStreams),
}

impl std::fmt::Debug for Bus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match *self.inner {
            BusKind::Embedded(_) => "Bus(embedded)",
            BusKind::Amqp(_) => "Bus(rabbitmq)",
            BusKind::Nats(_) => "Bus(nats)",
            BusKind::Redis(_) => "Bus(redis)",
        })
    }
}

impl Bus {
    /// The bus named by a broker URL: `embedded`, `amqp(s)://...`,
    /// `nats://...` or `redis://...` (Redis Streams). `namespace` prefixes every exchange, queue, stream and
    /// consumer name (default `bazaar`), so platforms can share a broker.
    ///
    /// Only a malformed URL is an error: the broker itself may be down, and
    /// is reached (and retried) by [`Bus::start_in_background`], the relays
    /// and the consumers.
    pub async fn connect(url: &str, namespace: &str) -> anyhow::Result<Bus> {
        install_crypto_provider();
        let kind =
            if url == "embedded" {
                BusKind::Embedded(embedded::EmbeddedBus::default())
            } else if url.starts_with("amqp://") || url.starts_with("amqps://") {
                BusKind::Amqp(amqp::Amqp::new(url, namespace).map_err(|e| {
                    anyhow::anyhow!("RabbitMQ at {}: {e}", crate::config::redact_url(url))
                })?)
            } else if url.starts_with("nats://") || url.starts_with("tls://") {
                BusKind::Nats(nats::Nats::connect(url, namespace).await.map_err(|e| {
                    anyhow::anyhow!("NATS at {}: {e}", crate::config::redact_url(url))
                })?)
            } else if url.starts_with("redis://") {
                BusKind::Redis(
                    redis_streams::RedisStreams::new(url, namespace).map_err(|e| {
                        anyhow::anyhow!("Redis at {}: {e}", crate::config::redact_url(url))
                    })?,
                )
            } else {
                anyhow::bail!(
                    "unsupported broker URL {:?}",
                    crate::config::redact_url(url)
                );
            };
        Ok(Bus::with_kind(kind))
    }

    /// An in-process bus (tests and `bazaar up`).
    pub fn embedded() -> Bus {
        Bus::with_kind(BusKind::Embedded(embedded::EmbeddedBus::default()))
    }

    fn with_kind(kind: BusKind) -> Bus {
        Bus {
            inner: Arc::new(kind),
            nudge: Arc::new(tokio::sync::Notify::new()),
            started: tokio::sync::watch::Sender::new(false),
            registered: Arc::new(std::sync::Mutex::new(Vec::new())),
            start_error: Arc::new(std::sync::Mutex::new(None)),
        }
    }

    /// Whether this is the in-process bus (nothing to connect to).
    pub fn is_embedded(&self) -> bool {
        matches!(*self.inner, BusKind::Embedded(_))
    }

    /// `Ok` once the bus is started (every subscriber's queue declared);
    /// until then, why not — the `broker` readiness probe.
    pub fn readiness(&self) -> Result<(), String> {
        if *self.started.borrow() {
            return Ok(());
        }
        let why = self
            .start_error
            .lock()
            .ok()
            .and_then(|e| e.clone())
            .unwrap_or_else(|| "connecting".into());
        let kind = match *self.inner {
            BusKind::Embedded(_) => "embedded",
            BusKind::Amqp(_) => "RabbitMQ",
            BusKind::Nats(_) => "NATS",
            BusKind::Redis(_) => "Redis",
        };
        Err(format!("broker ({kind}) not reached yet: {why}"))
    }

    /// Waits until the bus is started (tests, start-up).
    pub async fn wait_started(&self) {
        let mut started = self.started.subscribe();
        let _ = started.wait_for(|s| *s).await;
    }

    /// [`Bus::start`] until it succeeds, with backoff (200 ms doubling to
    /// 2 s, with jitter), in the background: a broker that is down at
    /// start-up, or drops during the declarations, delays delivery and
    /// readiness — it never stops the process. Gives up when `token` fires.
    pub fn start_in_background(&self, token: tokio_util::sync::CancellationToken) {
        let bus = self.clone();
        tokio::spawn(async move {
            let mut attempt = 0;
            loop {
                match bus.start().await {
                    Ok(()) => {
                        if attempt > 0 {
                            tracing::info!(bus = ?bus, "broker reached; event delivery started");
                        }
                        if let Ok(mut e) = bus.start_error.lock() {
                            *e = None;
                        }
                        return;
                    }
                    Err(e) => {
                        attempt += 1;
                        let e = format!("{e:#}");
                        tracing::warn!(bus = ?bus, error = %e, attempt, "broker not reachable; retrying");
                        if let Ok(mut slot) = bus.start_error.lock() {
                            *slot = Some(e);
                        }
                    }
                }
                tokio::select! {
                    () = token.cancelled() => return,
                    () = tokio::time::sleep(crate::clock::Backoff::LINK.delay(attempt)) => {}
                }
            }
        });
    }

    /// Wakes the outbox relays now (call after committing an event) instead
    /// of waiting for their next poll.
    pub fn nudge(&self) {
        self.nudge.notify_waiters();
    }

    /// Starts delivery once every service of the process is built: first
    /// makes sure every subscriber's durable queue and bindings exist (a
    /// RabbitMQ exchange drops what no queue is bound to), then lets the
    /// relays publish. One attempt; [`Bus::start_in_background`] retries.
    pub async fn start(&self) -> anyhow::Result<()> {
        let subs = self
            .registered
            .lock()
            .map(|s| s.clone())
            .unwrap_or_default();
        match &*self.inner {
            BusKind::Embedded(bus) => bus.seal(),
            BusKind::Amqp(amqp) => {
                for sub in &subs {
                    amqp.declare(sub).await?;
                }
            }
            BusKind::Nats(nats) => {
                nats.ensure_stream().await?;
                for sub in &subs {
                    nats.declare(sub).await?;
                }
            }
            BusKind::Redis(redis) => {
                for sub in &subs {
                    redis.declare(sub).await?;
                }
            }
        }
        self.started.send_replace(true);
        Ok(())
    }

    /// The workers a service needs: its outbox relay and one consumer per
    /// subscription.
    pub fn workers(
        &self,
        service: ServiceName,
        db: &Db,
        subscriptions: Vec<Subscription>,
    ) -> Vec<(String, Worker)> {
        let (publisher, kind): (Arc<dyn relay::Publisher>, &BusKind) = match &*self.inner {
            BusKind::Embedded(bus) => {
                return bus.workers(service, db, subscriptions, self.nudge.clone());
            }
            BusKind::Amqp(amqp) => (amqp.publisher(), &*self.inner),
            BusKind::Nats(nats) => (nats.publisher(), &*self.inner),
            BusKind::Redis(redis) => (redis.publisher(), &*self.inner),
        };
        if let Ok(mut registered) = self.registered.lock() {
            registered.extend(subscriptions.iter().cloned());
        }
        let mut workers: Vec<(String, Worker)> = Vec::new();
        let relay_db = db.clone();
        let nudge = self.nudge.clone();
        let mut started = self.started.subscribe();
        workers.push((
            "outbox-relay".into(),
            Box::new(move |token| {
                Box::pin(async move {
                    let ready = tokio::select! {
                        r = started.wait_for(|s| *s) => r.is_ok(),
                        () = token.cancelled() => false,
                    };
                    if ready {
                        relay::relay_loop(service, relay_db, publisher, nudge, token).await;
                    }
                })
            }),
        ));
        for sub in subscriptions {
            let db = db.clone();
            let name = format!("consumer:{}", sub.consumer);
            let worker: Worker = match kind {
                BusKind::Amqp(amqp) => {
                    let amqp = amqp.clone();
                    Box::new(move |token| {
                        Box::pin(async move { amqp.consume(db, sub, token).await })
                    })
                }
                BusKind::Nats(nats) => {
                    let nats = nats.clone();
                    Box::new(move |token| {
                        Box::pin(async move { nats.consume(db, sub, token).await })
                    })
                }
                BusKind::Redis(redis) => {
                    let redis = redis.clone();
                    Box::new(move |token| {
                        Box::pin(async move { redis.consume(db, sub, token).await })
                    })
                }
                BusKind::Embedded(_) => continue,
            };
            workers.push((name, worker));
        }
        workers
    }
}

/// Installs aws-lc-rs as the process's rustls provider, so a TLS broker
/// URL cannot panic on "no process-level CryptoProvider".
pub(crate) fn install_crypto_provider() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
}

/// Replays dead letters an operator queued (`bazaar events replay`), once
/// a second, until cancelled.
pub(crate) async fn replay_poller(
    db: Db,
    sub: Subscription,
    token: tokio_util::sync::CancellationToken,
) {
    loop {
        tokio::select! {
            () = token.cancelled() => break,
            () = tokio::time::sleep(std::time::Duration::from_secs(1)) => {}
        }
        match inbox::replay_requested(&db, &sub).await {
            Ok(0) => {}
            Ok(n) => {
                tracing::info!(consumer = %sub.consumer, replayed = n, "dead letters replayed")
            }
            Err(e) => tracing::warn!(consumer = %sub.consumer, error = %e, "replay failed"),
        }
    }
}
