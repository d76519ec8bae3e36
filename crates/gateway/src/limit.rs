//! Rate limiting with GCRA (a token bucket kept as one "theoretical arrival
//! time" per key). State lives in memory, or in Redis when `redis_url` is
//! set so that every gateway replica enforces one shared limit.

use std::collections::HashMap;
use std::hash::BuildHasher;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use redis::aio::ConnectionManager;
use tokio::sync::OnceCell;

use crate::config::Limit;

const SHARDS: usize = 32;
/// Keys a shard holds before its first sweep of idle ones.
const SWEEP_AT: usize = 4096;

/// One GCRA step in Redis, on Redis's clock (so replicas agree).
/// KEYS[1] = key; ARGV = interval µs, burst → {allowed, retry_after µs}.
const GCRA_LUA: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local tolerance = interval * tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local new_tat = tat + interval
local allow_at = new_tat - tolerance
if allow_at > now then
  return {0, allow_at - now}
end
redis.call('SET', KEYS[1], new_tat, 'PX', math.ceil((new_tat - now) / 1000) + 1000)
return {1, 0}
";

/// The limiter: memory, or Redis with memory as the fallback while Redis
/// is unreachable (failing open to a per-replica limit, not to none).
pub struct Limiter {
    memory: Memory,
    redis: Option<Redis>,
}

struct Redis {
    client: redis::Client,
    conn: OnceCell<ConnectionManager>,
    script: redis::Script,
    prefix: String,
    /// After a failure, Redis is skipped until then (no per-request stalls).
    backoff_until: Mutex<Option<Instant>>,
}

impl Limiter {
    /// An in-memory limiter, shared through Redis when `redis_url` is given.
    pub fn new(redis_url: Option<&str>, prefix: &str) -> anyhow::Result<Self> {
        let redis = match redis_url {
            Some(url) => Some(Redis {
                client: redis::Client::open(url)?,
                conn: OnceCell::new(),
                script: redis::Script::new(GCRA_LUA),
                prefix: prefix.to_string(),
                backoff_until: Mutex::new(None),
            }),
            None => None,
        };
        Ok(Self {
            memory: Memory::new(),
            redis,
        })
    }

    /// `Ok` when a request under `key` fits `limit`; otherwise the wait.
    pub async fn check(&self, key: &str, limit: Limit) -> Result<(), Duration> {
        if let Some(redis) = self.redis.as_ref().filter(|r| r.usable()) {
            match redis.check(key, limit).await {
                Ok(verdict) => return verdict,
                Err(e) => {
                    redis.back_off();
                    metrics::counter!("gateway_rate_limit_redis_errors_total", "service" => "gateway").increment(1);
                    tracing::warn!(error = %e, "rate limiter: Redis unavailable, limiting locally");
                }
            }
        }
        self.memory.check(key, limit)
    }
}

impl Redis {
    fn usable(&self) -> bool {
        let until = *self
            .backoff_until
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        until.is_none_or(|t| Instant::now() >= t)
    }

    fn back_off(&self) {
        *self
            .backoff_until
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) =
            Some(Instant::now() + Duration::from_secs(1));
    }

    async fn connection(&self) -> redis::RedisResult<ConnectionManager> {
        let conn = self
            .conn
            .get_or_try_init(|| async {
                let config = redis::aio::ConnectionManagerConfig::new()
                    .set_connection_timeout(Some(Duration::from_millis(500)))
                    .set_response_timeout(Some(Duration::from_millis(500)));
                ConnectionManager::new_with_config(self.client.clone(), config).await
            })
            .await?;
        Ok(conn.clone())
    }

    async fn check(&self, key: &str, limit: Limit) -> redis::RedisResult<Result<(), Duration>> {
        let mut conn = self.connection().await?;
        let interval = u64::try_from(limit.interval().as_micros()).unwrap_or(u64::MAX / 4);
        let (allowed, wait_us): (i64, i64) = self
            .script
            .key(format!("{}:{key}", self.prefix))
            .arg(interval.max(1))
            .arg(limit.burst.max(1))
            .invoke_async(&mut conn)
            .await?;
        Ok(if allowed == 1 {
            Ok(())
        } else {
            Err(Duration::from_micros(u64::try_from(wait_us).unwrap_or(0)))
        })
    }
}

/// Sharded in-memory GCRA state: key → theoretical arrival time.
struct Memory {
    epoch: Instant,
    hasher: foldhash::fast::RandomState,
    shards: Vec<Mutex<Shard>>,
}

/// One shard: key → theoretical arrival time, and the size at which idle
/// keys are next swept. After a sweep the mark is twice what is left, so
/// sweeps stay amortised O(1) per new key even when every key is live.
struct Shard {
    tats: HashMap<String, Duration, foldhash::fast::RandomState>,
    sweep_at: usize,
}

impl Memory {
    fn new() -> Self {
        Self {
            epoch: Instant::now(),
            hasher: foldhash::fast::RandomState::default(),
            shards: (0..SHARDS)
                .map(|_| {
                    Mutex::new(Shard {
                        tats: HashMap::with_hasher(foldhash::fast::RandomState::default()),
                        sweep_at: SWEEP_AT,
                    })
                })
                .collect(),
        }
    }

    fn check(&self, key: &str, limit: Limit) -> Result<(), Duration> {
        let hash = self.hasher.hash_one(key);
        let shard = &self.shards[usize::try_from(hash).unwrap_or(0) % SHARDS];
        let now = self.epoch.elapsed();
        let interval = limit.interval();
        let tolerance = interval * limit.burst.max(1);
        let mut shard = shard
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        // One lookup for a known key; a new key costs a second (insert).
        let step = |tat: Duration| {
            let new_tat = tat.max(now) + interval;
            let allow_at = new_tat.saturating_sub(tolerance);
            if allow_at > now {
                Err(allow_at - now)
            } else {
                Ok(new_tat)
            }
        };
        if let Some(tat) = shard.tats.get_mut(key) {
            *tat = step(*tat)?;
            return Ok(());
        }
        let new_tat = step(now)?;
        if shard.tats.len() >= shard.sweep_at {
            shard.tats.retain(|_, tat| *tat > now);
            shard.sweep_at = (shard.tats.len() * 2).max(SWEEP_AT);
        }
        shard.tats.insert(key.to_string(), new_tat);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_allows_the_burst_then_throttles_with_a_wait() {
        let m = Memory::new();
        let limit = Limit { rps: 1.0, burst: 3 };
        for _ in 0..3 {
            assert!(m.check("k", limit).is_ok());
        }
        let wait = m.check("k", limit).expect_err("throttled");
        assert!(
            wait > Duration::from_millis(500) && wait <= Duration::from_secs(1),
            "{wait:?}"
        );
        assert!(m.check("other", limit).is_ok(), "keys are independent");
    }

    #[test]
    fn sweeps_stay_rare_when_every_key_is_live() {
        let m = Memory::new();
        // A long interval keeps every key live: nothing can be swept.
        let limit = Limit {
            rps: 0.001,
            burst: 1,
        };
        for i in 0..(SHARDS * SWEEP_AT * 3) {
            assert!(m.check(&format!("ip-{i}"), limit).is_ok());
        }
        for shard in &m.shards {
            let shard = shard.lock().expect("shard");
            assert!(shard.sweep_at > shard.tats.len(), "next sweep is ahead");
            assert!(shard.sweep_at >= SWEEP_AT * 2, "{}", shard.sweep_at);
        }
    }
}
