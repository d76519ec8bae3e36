//! NATS JetStream backend (async-nats): one stream `<NS>_EVENTS` over the
//! subjects `<ns>.events.>`, publishes acknowledged by the stream (and
//! deduplicated by `Nats-Msg-Id`), and durable pull consumers with explicit
//! acks. Each consuming service has one durable consumer per event type
//! (`<ns>_<consumer>_<type>`; nats-server 2.9 has no multi-subject filters);
//! replicas pull from the same consumers, so they share the work.

use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::{self, consumer, stream};
use futures::StreamExt;
use futures::future::BoxFuture;
use tokio_util::sync::CancellationToken;

use crate::db::Db;
use crate::events::relay::Publisher;
use crate::events::{Envelope, Subscription, inbox};

/// Messages a consumer applies at once.
const CONCURRENCY: usize = 32;
/// How long JetStream waits for an ack before redelivering.
const ACK_WAIT: Duration = Duration::from_secs(5);

/// A JetStream context plus naming.
#[derive(Clone)]
pub struct Nats {
    js: jetstream::Context,
    stream: String,
    namespace: String,
}

impl Nats {
    /// A client for `url` that connects in the background and reconnects
    /// by itself (at most 1 s apart); the stream is ensured by
    /// [`crate::events::Bus::start`].
    pub async fn connect(url: &str, namespace: &str) -> anyhow::Result<Nats> {
        let client = async_nats::ConnectOptions::new()
            .retry_on_initial_connect()
            .connection_timeout(Duration::from_secs(3))
            .reconnect_delay_callback(|attempts| {
                Duration::from_millis((100 * attempts as u64).min(1000))
            })
            .connect(url)
            .await?;
        let js = jetstream::new(client);
        Ok(Nats {
            js,
            stream: format!(
                "{}_EVENTS",
                namespace.to_uppercase().replace(['.', '-'], "_")
            ),
            namespace: namespace.to_string(),
        })
    }

    /// Creates the stream when missing.
    pub async fn ensure_stream(&self) -> anyhow::Result<stream::Stream> {
        let stream = self
            .js
            .get_or_create_stream(stream::Config {
                name: self.stream.clone(),
                subjects: vec![format!("{}.events.>", self.namespace)],
                storage: stream::StorageType::File,
                duplicate_window: Duration::from_secs(120),
                ..Default::default()
            })
            .await?;
        Ok(stream)
    }

    fn subject(&self, event_type: &str) -> String {
        format!("{}.events.{event_type}", self.namespace)
    }

    /// The relay's publisher.
    pub fn publisher(&self) -> Arc<NatsPublisher> {
        Arc::new(NatsPublisher { nats: self.clone() })
    }

    /// Consumes `sub`'s types until cancelled, re-attaching after errors.
    pub async fn consume(&self, db: Db, sub: Subscription, token: CancellationToken) {
        let replays = crate::events::replay_poller(db.clone(), sub.clone(), token.clone());
        let per_type = sub.types.clone().into_iter().map(|event_type| {
            let db = db.clone();
            let sub = sub.clone();
            let token = token.clone();
            async move {
                let mut failures = 0;
                while !token.is_cancelled() {
                    match self.consume_type(&db, &sub, &event_type, &token).await {
                        Ok(()) => failures = 0,
                        Err(e) => {
                            failures += 1;
                            tracing::warn!(consumer = %sub.consumer, %event_type, error = %e, "NATS consumer lost; re-attaching");
                            tokio::select! {
                                () = token.cancelled() => break,
                                () = tokio::time::sleep(crate::clock::Backoff::LINK.delay(failures)) => {}
                            }
                        }
                    }
                }
            }
        });
        tokio::join!(futures::future::join_all(per_type), replays);
    }

    /// Creates `sub`'s durable consumers up front (the stream keeps every
    /// event anyway; this makes their position start now, not at first use).
    pub async fn declare(&self, sub: &Subscription) -> anyhow::Result<()> {
        for event_type in &sub.types {
            self.consumer(sub, event_type).await?;
        }
        Ok(())
    }

    async fn consumer(
        &self,
        sub: &Subscription,
        event_type: &str,
    ) -> anyhow::Result<consumer::PullConsumer> {
        let stream = self.ensure_stream().await?;
        let durable = format!("{}_{}_{}", self.namespace, sub.consumer, event_type)
            .replace(['.', '-', '*', '>'], "_");
        let consumer: consumer::PullConsumer = stream
            .get_or_create_consumer(
                &durable,
                consumer::pull::Config {
                    durable_name: Some(durable.clone()),
                    filter_subject: self.subject(event_type),
                    ack_policy: consumer::AckPolicy::Explicit,
                    // A message whose consumer died (or whose ack was lost
                    // with the link) comes back after this; a slow handler
                    // seeing it twice is absorbed by the inbox.
                    ack_wait: ACK_WAIT,
                    max_ack_pending: 1024,
                    ..Default::default()
                },
            )
            .await?;
        Ok(consumer)
    }

    async fn consume_type(
        &self,
        db: &Db,
        sub: &Subscription,
        event_type: &str,
        token: &CancellationToken,
    ) -> anyhow::Result<()> {
        let consumer = self.consumer(sub, event_type).await?;
        let messages = consumer.messages().await?;
        let errored = std::sync::atomic::AtomicBool::new(false);
        messages
            .take_until(token.clone().cancelled_owned())
            .take_while(|m| {
                let ok = m.is_ok();
                if !ok {
                    errored.store(true, std::sync::atomic::Ordering::Relaxed);
                }
                std::future::ready(ok)
            })
            .for_each_concurrent(CONCURRENCY, |message| async move {
                let Ok(message) = message else { return };
                let event: Envelope = match serde_json::from_slice(&message.payload) {
                    Ok(e) => e,
                    Err(e) => {
                        tracing::error!(consumer = %sub.consumer, error = %e, "unreadable message dropped");
                        let _ = message.ack().await;
                        return;
                    }
                };
                match inbox::deliver(db, sub, &event).await {
                    Ok(_) => {
                        let _ = message.ack().await;
                    }
                    Err(e) => {
                        tracing::warn!(consumer = %sub.consumer, error = %e, "could not record event; redelivery requested");
                        let _ = message.ack_with(jetstream::AckKind::Nak(Some(Duration::from_secs(1)))).await;
                    }
                }
            })
            .await;
        if errored.load(std::sync::atomic::Ordering::Relaxed) {
            anyhow::bail!("message stream failed");
        }
        Ok(())
    }
}

/// Publishes to JetStream and waits for the stream's ack.
pub struct NatsPublisher {
    nats: Nats,
}

impl Publisher for NatsPublisher {
    fn publish<'a>(&'a self, event: &'a Envelope) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async move {
            let payload = serde_json::to_vec(event).map_err(|e| e.to_string())?;
            let mut headers = async_nats::HeaderMap::new();
            headers.insert("Nats-Msg-Id", event.id.as_str());
            let ack = self
                .nats
                .js
                .publish_with_headers(
                    self.nats.subject(&event.event_type),
                    headers,
                    payload.into(),
                )
                .await
                .map_err(|e| format!("NATS: {e}"))?;
            tokio::time::timeout(Duration::from_secs(5), ack)
                .await
                .map_err(|_| "NATS: no ack within 5s".to_string())?
                .map_err(|e| format!("NATS: {e}"))?;
            Ok(())
        })
    }
}
