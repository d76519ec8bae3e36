//! Time: the clock every service reads, the one retry backoff policy and
//! lease renewal.

use std::time::Duration;

/// Milliseconds since the epoch (leases, due times, outbox ordering).
pub fn now_millis() -> i64 {
    (time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64
}

/// Now as RFC 3339 UTC with microseconds, the text form timestamps are stored in.
pub fn now_rfc3339() -> String {
    format_rfc3339(time::OffsetDateTime::now_utc())
}

/// Formats a timestamp the way the platform stores and shows it.
pub fn format_rfc3339(t: time::OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    let fmt = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:6]Z"
    );
    t.format(&fmt).unwrap_or_default()
}

/// Exponential backoff: `base · 2^(attempt-1)`, capped at `max`, plus up to
/// a quarter of that at random when `jitter` is set (so retries of many
/// rows do not fire together).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Backoff {
    /// Delay after the first failure.
    pub base: Duration,
    /// Largest delay (before jitter).
    pub max: Duration,
    /// Adds 0–25 % at random.
    pub jitter: bool,
}

impl Backoff {
    /// The policy of event delivery (outbox relay and inbox handlers):
    /// 100 ms doubling to 30 s, with jitter.
    pub const EVENTS: Backoff =
        Backoff::new(Duration::from_millis(100), Duration::from_secs(30)).with_jitter();

    /// The policy of reaching a server (database or broker at start-up,
    /// broker links, consumers): 200 ms doubling to 2 s, with jitter, so
    /// work resumes within a couple of seconds of the server's return.
    pub const LINK: Backoff =
        Backoff::new(Duration::from_millis(200), Duration::from_secs(2)).with_jitter();

    /// `base` doubling up to `max`, without jitter.
    pub const fn new(base: Duration, max: Duration) -> Self {
        Self {
            base,
            max,
            jitter: false,
        }
    }

    /// The same policy with jitter.
    pub const fn with_jitter(mut self) -> Self {
        self.jitter = true;
        self
    }

    /// The delay after `attempt` failures (1 = the first); 0 or less counts as 1.
    pub fn delay(&self, attempt: i64) -> Duration {
        let exp = attempt.clamp(1, 31) as u32 - 1;
        let base = self.base.as_millis().min(u128::from(u64::MAX)) as u64;
        let max = self.max.as_millis().min(u128::from(u64::MAX)) as u64;
        let mut ms = base.saturating_mul(1u64 << exp).min(max);
        if self.jitter {
            ms += rand::random_range(0..=ms / 4);
        }
        Duration::from_millis(ms)
    }

    /// [`Backoff::delay`] in milliseconds, for due-time columns.
    pub fn delay_millis(&self, attempt: i64) -> i64 {
        i64::try_from(self.delay(attempt).as_millis()).unwrap_or(i64::MAX)
    }
}

/// Runs `work` while calling `renew` every `every` (in its own task, so a
/// slow renewal never stalls the work), and stops renewing when `work` ends
/// or is dropped. Pair it with a lease a few times longer than `every`: a
/// holder that dies stops renewing, and its work is taken over as soon as
/// the lease runs out, not after the longest step could take.
pub async fn renewing<T, W, R, RF>(every: Duration, mut renew: R, work: W) -> T
where
    W: std::future::Future<Output = T>,
    R: FnMut() -> RF + Send + 'static,
    RF: std::future::Future<Output = ()> + Send,
{
    struct AbortOnDrop(tokio::task::JoinHandle<()>);
    impl Drop for AbortOnDrop {
        fn drop(&mut self) {
            self.0.abort();
        }
    }
    let _renewer = AbortOnDrop(tokio::spawn(async move {
        loop {
            tokio::time::sleep(every).await;
            renew().await;
        }
    }));
    work.await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_and_caps() {
        let b = Backoff::new(Duration::from_millis(200), Duration::from_secs(5));
        assert_eq!(b.delay_millis(0), 200);
        assert_eq!(b.delay_millis(1), 200);
        assert_eq!(b.delay_millis(2), 400);
        assert_eq!(b.delay_millis(30), 5000);
        assert_eq!(b.delay_millis(i64::MAX), 5000);
    }

    #[test]
    fn jitter_adds_at_most_a_quarter() {
        for attempt in 1..20 {
            let ms = Backoff::EVENTS.delay_millis(attempt);
            let base = (100i64 << (attempt - 1)).min(30_000);
            assert!((base..=base + base / 4).contains(&ms), "{attempt}: {ms}");
        }
    }

    #[test]
    fn timestamps_are_utc_with_microseconds() {
        let t = time::macros::datetime!(2024-01-02 03:04:05.123456 +02:00);
        assert_eq!(format_rfc3339(t), "2024-01-02T01:04:05.123456Z");
        assert!(now_millis() > 1_700_000_000_000);
    }
}
