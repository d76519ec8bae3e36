//! Redis Streams backend (the Celery-with-Redis setup, with consumer
//! groups instead of lists):
//!
//! * one stream per event type, `<ns>:events:<type>`; each entry holds the
//!   envelope as JSON in its `body` field (plus `id` and `type` for tools);
//! * one consumer group per consuming service on each stream it reads
//!   (created from the stream's start, `XGROUP CREATE ... 0 MKSTREAM`), so
//!   replicas share the work; each process reads as its own consumer;
//! * `XACK` only after the inbox transaction commits; an entry left
//!   unacknowledged for [`CLAIM_IDLE`] (its consumer crashed, or its inbox
//!   write failed) is taken over by a live consumer with `XAUTOCLAIM`, and
//!   the inbox absorbs any second delivery;
//! * the publisher trims each stream with `XTRIM MINID ~` below the oldest
//!   entry some group has not acknowledged — never an unconsumed entry —
//!   and keeps [`RETENTION`] of history for a group that joins later.
//!
//! Durability is Redis's own: run it with `appendonly yes` (AOF) when it is
//! the broker, or a crash of Redis loses what it had not written to disk.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use futures::future::BoxFuture;
use redis::AsyncCommands;
use redis::aio::{ConnectionManager, MultiplexedConnection};
use redis::streams::{
    StreamAutoClaimOptions, StreamAutoClaimReply, StreamId, StreamInfoConsumersReply,
    StreamInfoGroupsReply, StreamPendingReply, StreamReadOptions, StreamReadReply,
};
use tokio::sync::OnceCell;
use tokio_util::sync::CancellationToken;

use crate::db::Db;
use crate::events::relay::Publisher;
use crate::events::{Envelope, Subscription, inbox};

/// Entries a consumer reads (and applies concurrently) at once.
const BATCH: usize = 32;
/// How long one `XREADGROUP` blocks waiting for entries.
const BLOCK: Duration = Duration::from_secs(1);
/// An entry unacknowledged this long is taken over by a live consumer.
pub(crate) const CLAIM_IDLE: Duration = Duration::from_secs(5);
/// How often a consumer looks for such entries.
const CLAIM_EVERY: Duration = Duration::from_secs(1);
/// A consumer name idle this long with nothing pending (a process that
/// ended) is removed from its group.
const FORGET_IDLE: Duration = Duration::from_secs(3600);
/// How often a consumer looks for such names.
const FORGET_EVERY: Duration = Duration::from_secs(60);
/// Acknowledged history kept for a consumer group created later.
pub(crate) const RETENTION: Duration = Duration::from_secs(600);
/// How often the publisher trims a stream it writes to.
const TRIM_EVERY: Duration = Duration::from_secs(10);
/// A publish, or a command on the shared connection, gives up after this.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(5);

/// A Redis client plus naming.
#[derive(Clone)]
pub struct RedisStreams {
    client: redis::Client,
    namespace: String,
    /// This process's consumer name inside every group.
    consumer: String,
    /// Shared, self-reconnecting connection for publishing, acks and trims.
    shared: Arc<OnceCell<ConnectionManager>>,
    /// When each stream was last trimmed by this process.
    trimmed: Arc<Mutex<HashMap<String, Instant>>>,
}

impl RedisStreams {
    /// A client for `url` (`redis://`); connects lazily.
    pub fn new(url: &str, namespace: &str) -> anyhow::Result<RedisStreams> {
        let client = redis::Client::open(url)?;
        let short = uuid::Uuid::new_v4().simple().to_string();
        Ok(RedisStreams {
            client,
            namespace: namespace.to_string(),
            consumer: format!("{}-{}", std::process::id(), &short[..8]),
            shared: Arc::new(OnceCell::new()),
            trimmed: Arc::new(Mutex::new(HashMap::new())),
        })
    }

    fn key(&self, event_type: &str) -> String {
        format!("{}:events:{event_type}", self.namespace)
    }

    async fn shared(&self) -> redis::RedisResult<ConnectionManager> {
        let conn = self
            .shared
            .get_or_try_init(|| async {
                let config = redis::aio::ConnectionManagerConfig::new()
                    .set_connection_timeout(Some(Duration::from_secs(3)))
                    .set_response_timeout(Some(COMMAND_TIMEOUT));
                ConnectionManager::new_with_config(self.client.clone(), config).await
            })
            .await?;
        Ok(conn.clone())
    }

    /// Creates `sub`'s consumer group on each of its streams (and the
    /// streams) when missing.
    pub async fn declare(&self, sub: &Subscription) -> anyhow::Result<()> {
        let mut conn = self.shared().await?;
        for event_type in &sub.types {
            create_group(&mut conn, &self.key(event_type), &sub.consumer).await?;
        }
        Ok(())
    }

    /// The relay's publisher.
    pub fn publisher(&self) -> Arc<RedisPublisher> {
        Arc::new(RedisPublisher {
            redis: self.clone(),
        })
    }

    /// Consumes `sub`'s types until cancelled, reconnecting after errors.
    pub async fn consume(&self, db: Db, sub: Subscription, token: CancellationToken) {
        let replays = crate::events::replay_poller(db.clone(), sub.clone(), token.clone());
        let work = async {
            let mut failures = 0;
            while !token.is_cancelled() {
                match self.consume_until_error(&db, &sub, &token).await {
                    Ok(()) => failures = 0,
                    Err(e) => {
                        failures += 1;
                        tracing::warn!(consumer = %sub.consumer, error = %e, "Redis consumer lost; reconnecting");
                        tokio::select! {
                            () = token.cancelled() => break,
                            () = tokio::time::sleep(crate::clock::Backoff::LINK.delay(failures)) => {}
                        }
                    }
                }
            }
        };
        tokio::join!(work, replays);
    }

    async fn consume_until_error(
        &self,
        db: &Db,
        sub: &Subscription,
        token: &CancellationToken,
    ) -> anyhow::Result<()> {
        // A connection of its own: a blocking read would stall every other
        // command on a shared one.
        let config = redis::AsyncConnectionConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(3)))
            .set_response_timeout(Some(BLOCK + COMMAND_TIMEOUT));
        let mut conn = self
            .client
            .get_multiplexed_async_connection_with_config(&config)
            .await?;
        let keys: Vec<String> = sub.types.iter().map(|t| self.key(t)).collect();
        // The groups may be gone (a Redis restarted without persistence).
        for key in &keys {
            create_group(&mut conn, key, &sub.consumer).await?;
        }
        let read = StreamReadOptions::default()
            .group(&sub.consumer, &self.consumer)
            .count(BATCH)
            .block(BLOCK.as_millis() as usize);
        let newest = vec![">"; keys.len()];
        // The reader keeps a short queue full while the workers apply: it
        // never waits for a whole batch to finish. Acks go over the shared
        // connection (this one is blocked in reads).
        let (found, queue) = tokio::sync::mpsc::channel::<(String, StreamId)>(2 * BATCH);
        let acks = self.shared().await?;
        let reader = async {
            let mut last_claim = Instant::now();
            // Due at once, then every FORGET_EVERY.
            let mut last_forget = Instant::now()
                .checked_sub(FORGET_EVERY)
                .unwrap_or_else(Instant::now);
            loop {
                if last_claim.elapsed() >= CLAIM_EVERY {
                    for key in &keys {
                        for entry in self.claim_idle(&mut conn, sub, key).await? {
                            found.send((key.clone(), entry)).await?;
                        }
                    }
                    last_claim = Instant::now();
                }
                if last_forget.elapsed() >= FORGET_EVERY {
                    for key in &keys {
                        self.forget_ended(&mut conn, sub, key).await?;
                    }
                    last_forget = Instant::now();
                }
                let reply: Option<StreamReadReply> =
                    conn.xread_options(&keys, &newest, &read).await?;
                for stream in reply.map(|r| r.keys).unwrap_or_default() {
                    for entry in stream.ids {
                        found.send((stream.key.clone(), entry)).await?;
                    }
                }
            }
        };
        let workers = tokio_stream::wrappers::ReceiverStream::new(queue).for_each_concurrent(
            BATCH,
            |(key, entry)| {
                let acks = acks.clone();
                async move { self.apply_one(acks, db, sub, &key, entry).await }
            },
        );
        // Stopping drops what is in flight: its transactions roll back and
        // its entries, still pending, are claimed again.
        tokio::select! {
            () = token.cancelled() => Ok(()),
            r = reader => r,
            () = workers => Ok(()),
        }
    }

    /// Claims the entries of `key` that another consumer (or this one) left
    /// unacknowledged for [`CLAIM_IDLE`].
    async fn claim_idle(
        &self,
        conn: &mut MultiplexedConnection,
        sub: &Subscription,
        key: &str,
    ) -> redis::RedisResult<Vec<StreamId>> {
        let mut start = "0-0".to_string();
        let mut claimed = Vec::new();
        // Bounded: a stream with many stale entries is worked off over
        // several rounds rather than in one long stall.
        for _ in 0..8 {
            let reply: StreamAutoClaimReply = conn
                .xautoclaim_options(
                    key,
                    &sub.consumer,
                    &self.consumer,
                    CLAIM_IDLE.as_millis() as u64,
                    &start,
                    StreamAutoClaimOptions::default().count(BATCH),
                )
                .await?;
            claimed.extend(reply.claimed);
            if reply.next_stream_id == "0-0" {
                break;
            }
            start = reply.next_stream_id;
        }
        if !claimed.is_empty() {
            tracing::info!(consumer = %sub.consumer, stream = key, claimed = claimed.len(), "taking over unacknowledged events");
        }
        Ok(claimed)
    }

    /// Removes consumer names of processes that ended (idle for
    /// [`FORGET_IDLE`] with nothing pending), so restarts do not pile
    /// them up in the group.
    async fn forget_ended(
        &self,
        conn: &mut MultiplexedConnection,
        sub: &Subscription,
        key: &str,
    ) -> redis::RedisResult<()> {
        let reply: StreamInfoConsumersReply = conn.xinfo_consumers(key, &sub.consumer).await?;
        for ended in reply.consumers.iter().filter(|c| {
            c.pending == 0 && c.idle as u128 >= FORGET_IDLE.as_millis() && c.name != self.consumer
        }) {
            let _: i64 = conn
                .xgroup_delconsumer(key, &sub.consumer, &ended.name)
                .await?;
        }
        Ok(())
    }

    /// Applies one entry; acknowledges it once its inbox transaction
    /// committed (or it is unreadable and dropped).
    async fn apply_one(
        &self,
        mut acks: ConnectionManager,
        db: &Db,
        sub: &Subscription,
        key: &str,
        entry: StreamId,
    ) {
        let event = entry
            .get::<Vec<u8>>("body")
            .and_then(|body| serde_json::from_slice::<Envelope>(&body).ok());
        let done = match event {
            None => {
                tracing::error!(consumer = %sub.consumer, stream = key, entry = %entry.id, "unreadable entry dropped");
                true
            }
            Some(event) => match inbox::deliver(db, sub, &event).await {
                Ok(_) => true,
                Err(e) => {
                    tracing::warn!(consumer = %sub.consumer, error = %e, "could not record event; left for redelivery");
                    false
                }
            },
        };
        if done {
            let acked: redis::RedisResult<i64> = acks.xack(key, &sub.consumer, &[&entry.id]).await;
            if let Err(e) = acked {
                // Claimed again later; the inbox absorbs it.
                tracing::warn!(consumer = %sub.consumer, error = %e, "ack lost");
            }
        }
    }

    /// Trims `key` below the oldest entry a group has not acknowledged and
    /// below [`RETENTION`], whichever is older (`XTRIM MINID ~`).
    async fn trim(&self, conn: &mut ConnectionManager, key: &str) -> redis::RedisResult<()> {
        let now_ms = u64::try_from(crate::clock::now_millis()).unwrap_or(0);
        let retention_ms = RETENTION.as_millis() as u64;
        let mut floor = StreamPos(now_ms.saturating_sub(retention_ms), 0);
        let groups: StreamInfoGroupsReply = conn.xinfo_groups(key).await?;
        for group in groups.groups {
            let kept = if group.pending > 0 {
                match conn.xpending(key, &group.name).await? {
                    StreamPendingReply::Data(data) => StreamPos::parse(&data.start_id),
                    _ => StreamPos::parse(&group.last_delivered_id).map(StreamPos::next),
                }
            } else {
                // Everything up to its last delivery is acknowledged.
                StreamPos::parse(&group.last_delivered_id).map(StreamPos::next)
            };
            // An unreadable position keeps everything.
            floor = floor.min(kept.unwrap_or(StreamPos(0, 0)));
        }
        let _: i64 = redis::cmd("XTRIM")
            .arg(key)
            .arg("MINID")
            .arg("~")
            .arg(format!("{}-{}", floor.0, floor.1))
            .query_async(conn)
            .await?;
        Ok(())
    }

    fn trim_due(&self, key: &str) -> bool {
        let Ok(mut trimmed) = self.trimmed.lock() else {
            return false;
        };
        let due = trimmed.get(key).is_none_or(|t| t.elapsed() >= TRIM_EVERY);
        if due {
            trimmed.insert(key.to_string(), Instant::now());
        }
        due
    }
}

/// A stream entry id, `<ms>-<seq>`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct StreamPos(u64, u64);

impl StreamPos {
    fn parse(id: &str) -> Option<StreamPos> {
        let (ms, seq) = id.split_once('-')?;
        Some(StreamPos(ms.parse().ok()?, seq.parse().ok()?))
    }

    fn next(self) -> StreamPos {
        match self.1.checked_add(1) {
            Some(seq) => StreamPos(self.0, seq),
            None => StreamPos(self.0.saturating_add(1), 0),
        }
    }
}

async fn create_group<C: redis::aio::ConnectionLike + Send>(
    conn: &mut C,
    key: &str,
    group: &str,
) -> redis::RedisResult<()> {
    let created: redis::RedisResult<()> = redis::cmd("XGROUP")
        .arg("CREATE")
        .arg(key)
        .arg(group)
        .arg("0")
        .arg("MKSTREAM")
        .query_async(conn)
        .await;
    match created {
        Err(e) if e.code() == Some("BUSYGROUP") => Ok(()),
        other => other,
    }
}

/// Appends to the event type's stream (`XADD`), trimming now and then.
pub struct RedisPublisher {
    redis: RedisStreams,
}

impl Publisher for RedisPublisher {
    fn publish<'a>(&'a self, event: &'a Envelope) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async move {
            let body = serde_json::to_vec(event).map_err(|e| e.to_string())?;
            let key = self.redis.key(&event.event_type);
            let mut conn = self
                .redis
                .shared()
                .await
                .map_err(|e| format!("Redis: {e}"))?;
            let added: redis::RedisResult<String> = tokio::time::timeout(
                COMMAND_TIMEOUT,
                conn.xadd(
                    &key,
                    "*",
                    &[
                        ("id", event.id.as_bytes()),
                        ("type", event.event_type.as_bytes()),
                        ("body", body.as_slice()),
                    ],
                ),
            )
            .await
            .map_err(|_| "Redis: no answer within 5s".to_string())?;
            added.map_err(|e| format!("Redis: {e}"))?;
            if self.redis.trim_due(&key)
                && let Err(e) = self.redis.trim(&mut conn, &key).await
            {
                tracing::warn!(stream = %key, error = %e, "stream trim failed");
            }
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::StreamPos;

    #[test]
    fn stream_positions_order_and_step() {
        let a = StreamPos::parse("1700000000000-5").expect("id");
        assert_eq!(a, StreamPos(1_700_000_000_000, 5));
        assert!(a < StreamPos::parse("1700000000001-0").expect("id"));
        assert_eq!(a.next(), StreamPos(1_700_000_000_000, 6));
        assert_eq!(
            StreamPos(7, u64::MAX).next(),
            StreamPos(8, 0),
            "a full sequence rolls over to the next millisecond"
        );
        assert_eq!(StreamPos::parse("garbage"), None);
    }
}
