//! The embedded bus: in-process delivery straight from outboxes to the
//! subscribed handlers. It keeps nothing in memory that matters: an event
//! leaves its outbox (is marked published) only after every subscriber has
//! applied it (inbox committed) or dead-lettered it, so a crash at any point
//! redelivers and the inboxes absorb the duplicates.
//!
//! It spans one process: `bazaar up`. Services run apart (`bazaar serve`)
//! need RabbitMQ or NATS to hear each other.

use std::sync::{Arc, RwLock};

use futures::StreamExt;
use futures::future::BoxFuture;
use tokio::sync::{mpsc, oneshot, watch};
use tokio_stream_lite::ReceiverStream;

use crate::config::ServiceName;
use crate::db::Db;
use crate::events::relay::{Publisher, relay_loop};
use crate::events::{Envelope, Subscription, inbox};
use crate::service::Worker;

/// Events a consumer may apply at once.
const CONSUMER_CONCURRENCY: usize = 16;

struct Delivery {
    event: Envelope,
    ack: oneshot::Sender<bool>,
}

struct Registered {
    types: Vec<String>,
    tx: mpsc::Sender<Delivery>,
}

/// In-process subscribers, shared by every service of the process.
#[derive(Clone)]
pub struct EmbeddedBus {
    subs: Arc<RwLock<Vec<Registered>>>,
    sealed: watch::Sender<bool>,
}

impl Default for EmbeddedBus {
    fn default() -> Self {
        Self {
            subs: Arc::new(RwLock::new(Vec::new())),
            sealed: watch::Sender::new(false),
        }
    }
}

impl EmbeddedBus {
    /// Relay and consumer workers of one service.
    pub fn workers(
        &self,
        service: ServiceName,
        db: &Db,
        subscriptions: Vec<Subscription>,
        nudge: Arc<tokio::sync::Notify>,
    ) -> Vec<(String, Worker)> {
        let mut workers: Vec<(String, Worker)> = Vec::new();
        let publisher = Arc::new(EmbeddedPublisher { bus: self.clone() });
        let relay_db = db.clone();
        let sealed = self.sealed.subscribe();
        workers.push((
            "outbox-relay".into(),
            Box::new(move |token| {
                Box::pin(async move {
                    if wait_sealed(sealed, &token).await {
                        relay_loop(service, relay_db, publisher, nudge, token).await;
                    }
                })
            }),
        ));
        for sub in subscriptions {
            let (tx, rx) = mpsc::channel::<Delivery>(1024);
            if let Ok(mut subs) = self.subs.write() {
                subs.push(Registered {
                    types: sub.types.clone(),
                    tx,
                });
            }
            let db = db.clone();
            workers.push((
                format!("consumer:{}", sub.consumer),
                Box::new(move |token| Box::pin(consume(db, sub, rx, token))),
            ));
        }
        workers
    }

    /// Starts delivery once every service of the process has subscribed, so
    /// no early event is published to an incomplete subscriber list.
    pub fn seal(&self) {
        self.sealed.send_replace(true);
    }
}

async fn wait_sealed(
    mut sealed: watch::Receiver<bool>,
    token: &tokio_util::sync::CancellationToken,
) -> bool {
    tokio::select! {
        r = sealed.wait_for(|s| *s) => r.is_ok(),
        () = token.cancelled() => false,
    }
}

async fn consume(
    db: Db,
    sub: Subscription,
    rx: mpsc::Receiver<Delivery>,
    token: tokio_util::sync::CancellationToken,
) {
    let replays = crate::events::replay_poller(db.clone(), sub.clone(), token.clone());
    let deliveries = ReceiverStream::new(rx)
        .take_until(token.clone().cancelled_owned())
        .for_each_concurrent(CONSUMER_CONCURRENCY, |delivery| {
            let db = db.clone();
            let sub = sub.clone();
            async move {
                let ok = inbox::deliver(&db, &sub, &delivery.event).await.is_ok();
                let _ = delivery.ack.send(ok);
            }
        });
    tokio::join!(deliveries, replays);
}

struct EmbeddedPublisher {
    bus: EmbeddedBus,
}

impl Publisher for EmbeddedPublisher {
    fn publish<'a>(&'a self, event: &'a Envelope) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async move {
            let targets: Vec<mpsc::Sender<Delivery>> = match self.bus.subs.read() {
                Ok(subs) => subs
                    .iter()
                    .filter(|s| s.types.iter().any(|t| t == &event.event_type))
                    .map(|s| s.tx.clone())
                    .collect(),
                Err(_) => return Err("subscriber list poisoned".into()),
            };
            let mut acks = Vec::with_capacity(targets.len());
            for tx in targets {
                let (ack, done) = oneshot::channel();
                tx.send(Delivery {
                    event: event.clone(),
                    ack,
                })
                .await
                .map_err(|_| "consumer stopped".to_string())?;
                acks.push(done);
            }
            for done in acks {
                match done.await {
                    Ok(true) => {}
                    Ok(false) => return Err("a consumer could not record the event".into()),
                    Err(_) => return Err("consumer stopped before acknowledging".into()),
                }
            }
            Ok(())
        })
    }
}

/// `mpsc::Receiver` as a `Stream` (tokio-stream's wrapper, inlined).
mod tokio_stream_lite {
    use std::pin::Pin;
    use std::task::{Context, Poll};

    use tokio::sync::mpsc::Receiver;

    pub struct ReceiverStream<T>(Receiver<T>);

    impl<T> ReceiverStream<T> {
        pub fn new(rx: Receiver<T>) -> Self {
            Self(rx)
        }
    }

    impl<T> futures::Stream for ReceiverStream<T> {
        type Item = T;
        fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<T>> {
            self.0.poll_recv(cx)
        }
    }
}
