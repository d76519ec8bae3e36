//! The read cache for product pages and list pages: serialized response
//! bodies in a `moka` cache, hit/miss counted in `/metrics`.
//!
//! Keys carry a generation number. A write bumps the generation (after its
//! commit) and drops every entry, so a reader that loaded data before the
//! write can only store it under the old generation, which nobody reads
//! again: no stale read after a write on this instance, without tracking
//! which lists a product appears in.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use moka::future::Cache;

/// Cached response bodies.
#[derive(Debug)]
pub struct ReadCache {
    generation: AtomicU64,
    entries: Cache<(u64, String), Bytes>,
}

impl ReadCache {
    /// A cache of up to `capacity` entries, each living at most `ttl`.
    pub fn new(capacity: u64, ttl: Duration) -> Self {
        Self {
            generation: AtomicU64::new(0),
            entries: Cache::builder()
                .max_capacity(capacity)
                .time_to_live(ttl)
                .build(),
        }
    }

    /// The current generation; read it before loading from the database.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// The cached body for `key` in generation `generation`, counting the
    /// hit or miss.
    pub async fn get(&self, generation: u64, key: &str) -> Option<Bytes> {
        let found = self.entries.get(&(generation, key.to_string())).await;
        let result = if found.is_some() { "hit" } else { "miss" };
        metrics::counter!("catalog_cache_total", "service" => "catalog", "result" => result)
            .increment(1);
        found
    }

    /// Stores a body loaded during `generation`.
    pub async fn insert(&self, generation: u64, key: String, body: Bytes) {
        if generation == self.generation() {
            self.entries.insert((generation, key), body).await;
        }
    }

    /// Forgets everything (call after a committed write).
    pub fn invalidate(&self) {
        self.generation.fetch_add(1, Ordering::AcqRel);
        self.entries.invalidate_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_write_hides_data_loaded_before_it() {
        let cache = ReadCache::new(100, Duration::from_secs(60));
        let g = cache.generation();
        assert!(cache.get(g, "k").await.is_none());
        cache.insert(g, "k".into(), Bytes::from_static(b"v1")).await;
        assert_eq!(cache.get(g, "k").await.as_deref(), Some(&b"v1"[..]));
        // A reader loads old data, a write lands, then the reader stores it.
        let stale_reader = cache.generation();
        cache.invalidate();
        cache
            .insert(stale_reader, "k".into(), Bytes::from_static(b"old"))
            .await;
        assert!(cache.get(cache.generation(), "k").await.is_none());
    }
}
