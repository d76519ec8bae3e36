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
//!   (in-process, durable through outbox + inbox), RabbitMQ or NATS JetStream.

pub mod embedded;
pub mod envelope;
pub mod inbox;
pub mod outbox;
pub mod relay;

use std::sync::Arc;

use futures::future::BoxFuture;
use sqlx::AnyConnection;

pub use envelope::Envelope;

use crate::config::ServiceName;
use crate::db::Db;
use crate::service::{Service, Worker};

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
}

enum BusKind {
    Embedded(embedded::EmbeddedBus),
}

impl std::fmt::Debug for Bus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match *self.inner {
            BusKind::Embedded(_) => "Bus(embedded)",
        })
    }
}

impl Bus {
    /// The bus named by a broker URL.
    pub async fn from_url(url: &str) -> anyhow::Result<Bus> {
        match url {
            "embedded" => Ok(Bus::embedded()),
            other => anyhow::bail!("unsupported broker URL {other:?}"),
        }
    }

    /// An in-process bus (tests and `bazaar up`).
    pub fn embedded() -> Bus {
        Bus {
            inner: Arc::new(BusKind::Embedded(embedded::EmbeddedBus::default())),
            nudge: Arc::new(tokio::sync::Notify::new()),
        }
    }

    /// Wakes the outbox relays now (call after committing an event) instead
    /// of waiting for their next poll.
    pub fn nudge(&self) {
        self.nudge.notify_waiters();
    }

    /// Starts delivery once every service of the process is built.
    pub fn start(&self) {
        match &*self.inner {
            BusKind::Embedded(bus) => bus.seal(),
        }
    }

    /// The workers a service needs: its outbox relay and one consumer per
    /// subscription.
    pub fn workers(
        &self,
        service: ServiceName,
        db: &Db,
        subscriptions: Vec<Subscription>,
    ) -> Vec<(String, Worker)> {
        match &*self.inner {
            BusKind::Embedded(bus) => bus.workers(service, db, subscriptions, self.nudge.clone()),
        }
    }
}

impl Service {
    /// Wires the service into the bus: publishes its outbox and runs its
    /// consumers. Call after [`Service::with_db`].
    pub fn with_events(mut self, bus: &Bus, subscriptions: Vec<Subscription>) -> Self {
        let Some(db) = self.db.clone() else {
            tracing::error!(
                service = self.name.as_str(),
                "with_events needs with_db first"
            );
            return self;
        };
        self.workers
            .extend(bus.workers(self.name, &db, subscriptions));
        self
    }
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
