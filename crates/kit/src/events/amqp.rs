//! RabbitMQ backend (lapin): a durable topic exchange `<ns>.events`, one
//! durable queue `<ns>.<consumer>` per consuming service bound to the types
//! it handles, persistent messages with publisher confirms, manual acks
//! after the inbox commit, and reconnection after broker restarts. Replicas
//! of a service share its queue (competing consumers).

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use futures::future::BoxFuture;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicNackOptions, BasicPublishOptions, BasicQosOptions,
    ConfirmSelectOptions, ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions,
};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties, ExchangeKind};
use tokio::sync::Mutex;
use tokio_util::sync::CancellationToken;

use crate::db::Db;
use crate::events::relay::Publisher;
use crate::events::{Envelope, Subscription, inbox};

/// Deliveries a consumer holds unacknowledged at once.
const PREFETCH: u16 = 32;

/// Connection settings shared by the publisher and consumers.
#[derive(Clone, Debug)]
pub struct Amqp {
    url: String,
    exchange: String,
    namespace: String,
}

impl Amqp {
    /// Settings for the broker at `url` (checked, not contacted: every
    /// link opens, and declares the exchange, when first used).
    pub fn new(url: &str, namespace: &str) -> anyhow::Result<Amqp> {
        url.parse::<lapin::uri::AMQPUri>()
            .map_err(|e| anyhow::anyhow!("invalid URL: {e}"))?;
        Ok(Amqp {
            url: url.to_string(),
            exchange: format!("{namespace}.events"),
            namespace: namespace.to_string(),
        })
    }

    async fn open(&self) -> lapin::Result<(Connection, Channel)> {
        // A broker that is starting may accept the TCP connection and stall
        // the handshake: give up and let the caller retry.
        tokio::time::timeout(LINK_TIMEOUT, self.open_now())
            .await
            .unwrap_or_else(|_| Err(link_timed_out()))
    }

    async fn open_now(&self) -> lapin::Result<(Connection, Channel)> {
        let conn = Connection::connect(&self.url, ConnectionProperties::default()).await?;
        let channel = conn.create_channel().await?;
        channel
            .exchange_declare(
                self.exchange.clone().into(),
                ExchangeKind::Topic,
                ExchangeDeclareOptions {
                    durable: true,
                    ..ExchangeDeclareOptions::default()
                },
                FieldTable::default(),
            )
            .await?;
        Ok((conn, channel))
    }

    /// A publisher with its own connection (opened lazily, reopened on error).
    pub fn publisher(&self) -> Arc<AmqpPublisher> {
        Arc::new(AmqpPublisher {
            amqp: self.clone(),
            link: Mutex::new(None),
        })
    }

    /// Consumes `sub`'s queue until cancelled, reconnecting as needed.
    pub async fn consume(&self, db: Db, sub: Subscription, token: CancellationToken) {
        let replays = crate::events::replay_poller(db.clone(), sub.clone(), token.clone());
        let consuming = async {
            let mut failures = 0;
            while !token.is_cancelled() {
                match self.consume_once(&db, &sub, &token).await {
                    Ok(()) => failures = 0,
                    Err(e) => {
                        failures += 1;
                        tracing::warn!(consumer = %sub.consumer, error = %e, "RabbitMQ consumer lost; reconnecting");
                        tokio::select! {
                            () = token.cancelled() => break,
                            () = tokio::time::sleep(crate::clock::Backoff::LINK.delay(failures)) => {}
                        }
                    }
                }
            }
        };
        tokio::join!(consuming, replays);
    }

    /// Declares `sub`'s durable queue and binds it to its event types.
    pub async fn declare(&self, sub: &Subscription) -> anyhow::Result<()> {
        let (conn, channel) = self.open().await?;
        self.declare_on(&channel, sub).await?;
        let _ = conn.close(200, "ok".into()).await;
        Ok(())
    }

    async fn declare_on(&self, channel: &Channel, sub: &Subscription) -> lapin::Result<String> {
        let queue = format!("{}.{}", self.namespace, sub.consumer);
        channel
            .queue_declare(
                queue.clone().into(),
                QueueDeclareOptions {
                    durable: true,
                    ..QueueDeclareOptions::default()
                },
                FieldTable::default(),
            )
            .await?;
        for event_type in &sub.types {
            channel
                .queue_bind(
                    queue.clone().into(),
                    self.exchange.clone().into(),
                    event_type.clone().into(),
                    QueueBindOptions::default(),
                    FieldTable::default(),
                )
                .await?;
        }
        Ok(queue)
    }

    async fn consume_once(
        &self,
        db: &Db,
        sub: &Subscription,
        token: &CancellationToken,
    ) -> lapin::Result<()> {
        let (conn, channel) = self.open().await?;
        let queue = self.declare_on(&channel, sub).await?;
        channel
            .basic_qos(PREFETCH, BasicQosOptions::default())
            .await?;
        let consumer = channel
            .basic_consume(
                queue.clone().into(),
                "".into(),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await?;
        tracing::info!(consumer = %sub.consumer, queue = %queue, "consuming from RabbitMQ");
        let failed = std::sync::atomic::AtomicBool::new(false);
        consumer
            .take_until(token.clone().cancelled_owned())
            .take_while(|d| {
                let ok = d.is_ok();
                if !ok {
                    failed.store(true, std::sync::atomic::Ordering::Relaxed);
                }
                std::future::ready(ok)
            })
            .for_each_concurrent(usize::from(PREFETCH), |delivery| async move {
                let Ok(delivery) = delivery else { return };
                let event: Envelope = match serde_json::from_slice(&delivery.data) {
                    Ok(e) => e,
                    Err(e) => {
                        // Unreadable: nothing can ever apply it; drop it loudly.
                        tracing::error!(consumer = %sub.consumer, error = %e, "unreadable message dropped");
                        let _ = delivery.acker.ack(BasicAckOptions::default()).await;
                        return;
                    }
                };
                match inbox::deliver(db, sub, &event).await {
                    Ok(_) => {
                        let _ = delivery.acker.ack(BasicAckOptions::default()).await;
                    }
                    Err(e) => {
                        tracing::warn!(consumer = %sub.consumer, error = %e, "could not record event; requeueing");
                        let _ = delivery
                            .acker
                            .nack(BasicNackOptions {
                                requeue: true,
                                ..BasicNackOptions::default()
                            })
                            .await;
                    }
                }
            })
            .await;
        let _ = conn.close(200, "bye".into()).await;
        if failed.load(std::sync::atomic::Ordering::Relaxed) {
            return Err(lapin::Error::from(
                lapin::ErrorKind::InvalidConnectionState(lapin::ConnectionState::Closed),
            ));
        }
        Ok(())
    }
}

/// Longest a connection handshake or a publish confirm may take.
const LINK_TIMEOUT: Duration = Duration::from_secs(10);

fn link_timed_out() -> lapin::Error {
    lapin::Error::from(lapin::ErrorKind::InvalidConnectionState(
        lapin::ConnectionState::Closed,
    ))
}

/// Publishes with confirms over one lazily (re)opened channel.
pub struct AmqpPublisher {
    amqp: Amqp,
    link: Mutex<Option<(Connection, Channel)>>,
}

impl AmqpPublisher {
    async fn channel(&self) -> lapin::Result<Channel> {
        let mut link = self.link.lock().await;
        if let Some((conn, channel)) = link.as_ref()
            && conn.status().connected()
            && channel.status().connected()
        {
            return Ok(channel.clone());
        }
        let (conn, channel) = self.amqp.open().await?;
        channel
            .confirm_select(ConfirmSelectOptions::default())
            .await?;
        *link = Some((conn, channel.clone()));
        Ok(channel)
    }

    async fn reset(&self) {
        *self.link.lock().await = None;
    }
}

impl Publisher for AmqpPublisher {
    fn publish<'a>(&'a self, event: &'a Envelope) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async move {
            let payload = serde_json::to_vec(event).map_err(|e| e.to_string())?;
            let attempt = async {
                let channel = self.channel().await?;
                let confirm = channel
                    .basic_publish(
                        self.amqp.exchange.clone().into(),
                        event.event_type.clone().into(),
                        BasicPublishOptions::default(),
                        &payload,
                        BasicProperties::default()
                            .with_delivery_mode(2)
                            .with_content_type("application/json".into())
                            .with_message_id(event.id.clone().into()),
                    )
                    .await?
                    .await?;
                Ok::<bool, lapin::Error>(confirm.is_ack())
            };
            // A confirm that never comes (the link died half-open) must not
            // hold the relay: the event stays in the outbox and is retried.
            let result = tokio::time::timeout(LINK_TIMEOUT, attempt)
                .await
                .unwrap_or_else(|_| Err(link_timed_out()));
            match result {
                Ok(true) => Ok(()),
                Ok(false) => Err("broker refused the message (nack)".into()),
                Err(e) => {
                    self.reset().await;
                    Err(format!("RabbitMQ: {e}"))
                }
            }
        })
    }
}
