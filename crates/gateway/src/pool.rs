//! Upstream pools: instances with live health, least-outstanding
//! (power-of-two-choices) balancing, and one circuit breaker per pool.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::routes::Upstream;

/// One instance of an upstream service.
#[derive(Debug)]
pub struct Instance {
    /// Base URL (`http://host:port`).
    pub url: String,
    /// `host:port` to connect to.
    pub addr: String,
    /// The `Host` header for requests to it.
    pub authority: axum::http::HeaderValue,
    healthy: AtomicBool,
    outstanding: AtomicUsize,
}

impl Instance {
    fn new(url: &str) -> Self {
        let authority = url
            .parse::<axum::http::Uri>()
            .ok()
            .and_then(|uri| uri.authority().map(|a| a.as_str().to_string()));
        let addr = match authority.as_deref() {
            Some(a) if a.contains(':') => a.to_string(),
            Some(a) => format!("{a}:80"),
            None => url.to_string(),
        };
        Self {
            url: url.to_string(),
            authority: axum::http::HeaderValue::from_str(
                authority.as_deref().unwrap_or("localhost"),
            )
            .unwrap_or_else(|_| axum::http::HeaderValue::from_static("localhost")),
            addr,
            healthy: AtomicBool::new(true),
            outstanding: AtomicUsize::new(0),
        }
    }

    /// Whether the last health signal said the instance serves.
    pub fn is_healthy(&self) -> bool {
        self.healthy.load(Ordering::Relaxed)
    }

    /// Requests in flight to it.
    pub fn in_flight(&self) -> usize {
        self.outstanding.load(Ordering::Relaxed)
    }

    /// Records a health signal (active check or passive failure).
    pub fn set_healthy(&self, pool: &str, healthy: bool) {
        let was = self.healthy.swap(healthy, Ordering::Relaxed);
        if was != healthy {
            if healthy {
                tracing::info!(upstream = pool, instance = %self.url, "instance back in rotation");
            } else {
                tracing::warn!(upstream = pool, instance = %self.url, "instance ejected");
            }
        }
        metrics::gauge!("gateway_upstream_instance_healthy", "service" => "gateway", "upstream" => pool.to_string(), "instance" => self.url.clone())
            .set(if healthy { 1.0 } else { 0.0 });
    }
}

/// Counts a request as outstanding on an instance until dropped.
pub struct InFlight<'a>(&'a Instance);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.outstanding.fetch_sub(1, Ordering::Relaxed);
    }
}

/// An upstream service: its instances and its breaker.
#[derive(Debug)]
pub struct Pool {
    /// Service name.
    pub name: String,
    /// Its instances.
    pub instances: Vec<Instance>,
    /// Its circuit breaker.
    pub breaker: Breaker,
    /// `gateway_upstream_duration_seconds{upstream}`.
    pub latency: metrics::Histogram,
}

impl Pool {
    /// A pool over `upstream`'s URLs, every instance presumed healthy until
    /// the first check says otherwise.
    pub fn new(upstream: &Upstream, failures: u32, open_for: Duration) -> Self {
        Self {
            name: upstream.name.clone(),
            instances: upstream.urls.iter().map(|url| Instance::new(url)).collect(),
            breaker: Breaker::new(&upstream.name, failures, open_for),
            latency: metrics::histogram!("gateway_upstream_duration_seconds", "service" => "gateway", "upstream" => upstream.name.clone()),
        }
    }

    /// Picks an instance other than `exclude`: of two random healthy ones,
    /// the one with fewer requests in flight. When none is healthy, any
    /// instance (the breaker then decides).
    pub fn pick(&self, exclude: &[usize]) -> Option<usize> {
        if self.instances.len() == 1 {
            return exclude.is_empty().then_some(0);
        }
        let candidates: Vec<usize> = (0..self.instances.len())
            .filter(|i| !exclude.contains(i) && self.instances[*i].is_healthy())
            .collect();
        let candidates = if candidates.is_empty() {
            (0..self.instances.len())
                .filter(|i| !exclude.contains(i))
                .collect()
        } else {
            candidates
        };
        match candidates.len() {
            0 => None,
            1 => Some(candidates[0]),
            n => {
                use rand::Rng as _;
                let mut rng = rand::rng();
                let a = candidates[rng.random_range(0..n)];
                let mut b = candidates[rng.random_range(0..n - 1)];
                if b == a {
                    b = candidates[n - 1];
                }
                let load = |i: usize| self.instances[i].outstanding.load(Ordering::Relaxed);
                Some(if load(b) < load(a) { b } else { a })
            }
        }
    }

    /// Marks a request in flight on instance `i`.
    pub fn start(&self, i: usize) -> InFlight<'_> {
        let instance = &self.instances[i];
        instance.outstanding.fetch_add(1, Ordering::Relaxed);
        InFlight(instance)
    }

    /// Whether any instance is healthy.
    pub fn any_healthy(&self) -> bool {
        self.instances.iter().any(Instance::is_healthy)
    }
}

#[derive(Debug, Clone, Copy)]
enum State {
    Closed { failures: u32 },
    Open { until: Instant },
    HalfOpen { since: Instant },
}

/// A circuit breaker: `failures` consecutive transport failures open it;
/// while open, requests fail at once; after `open_for` one probe request
/// passes (half-open) and its outcome closes or re-opens the circuit.
#[derive(Debug)]
pub struct Breaker {
    name: String,
    state: Mutex<State>,
    failures: u32,
    open_for: Duration,
}

/// What the breaker lets through.
#[derive(Debug, PartialEq, Eq)]
pub enum Admission {
    /// Normal traffic.
    Pass,
    /// The one half-open probe.
    Probe,
}

impl Breaker {
    fn new(name: &str, failures: u32, open_for: Duration) -> Self {
        let breaker = Self {
            name: name.to_string(),
            state: Mutex::new(State::Closed { failures: 0 }),
            failures: failures.max(1),
            open_for,
        };
        breaker.gauge(0.0);
        breaker
    }

    fn gauge(&self, value: f64) {
        metrics::gauge!("gateway_breaker_state", "service" => "gateway", "upstream" => self.name.clone()).set(value);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Lets a request through, or says how long until the next probe.
    pub fn admit(&self) -> Result<Admission, Duration> {
        let mut state = self.lock();
        if let State::Closed { .. } = *state {
            return Ok(Admission::Pass);
        }
        let now = Instant::now();
        match *state {
            State::Closed { .. } => Ok(Admission::Pass),
            State::Open { until } if now >= until => {
                *state = State::HalfOpen { since: now };
                self.gauge(2.0);
                Ok(Admission::Probe)
            }
            State::Open { until } => Err(until - now),
            // A probe whose caller vanished must not wedge the breaker.
            State::HalfOpen { since } if now.duration_since(since) >= self.open_for => {
                *state = State::HalfOpen { since: now };
                Ok(Admission::Probe)
            }
            State::HalfOpen { .. } => Err(Duration::from_secs(1)),
        }
    }

    /// Records the outcome of an admitted request.
    pub fn record(&self, ok: bool) {
        let mut state = self.lock();
        match (*state, ok) {
            (State::Closed { failures: 0 }, true) => {}
            (_, true) => {
                if !matches!(*state, State::Closed { .. }) {
                    tracing::info!(upstream = %self.name, "circuit closed");
                }
                *state = State::Closed { failures: 0 };
                self.gauge(0.0);
            }
            (State::Closed { failures }, false) if failures + 1 < self.failures => {
                *state = State::Closed {
                    failures: failures + 1,
                };
            }
            (_, false) => {
                tracing::warn!(upstream = %self.name, "circuit open");
                *state = State::Open {
                    until: Instant::now() + self.open_for,
                };
                self.gauge(1.0);
            }
        }
    }

    /// `closed`, `open` or `half-open`.
    pub fn state_name(&self) -> &'static str {
        match *self.lock() {
            State::Closed { .. } => "closed",
            State::Open { .. } => "open",
            State::HalfOpen { .. } => "half-open",
        }
    }

    /// Whether the circuit is open now.
    #[cfg(test)]
    pub fn is_open(&self) -> bool {
        matches!(*self.lock(), State::Open { until } if Instant::now() < until)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pool(n: usize) -> Pool {
        let upstream = Upstream {
            name: "t".into(),
            urls: (0..n).map(|i| format!("http://h:{i}")).collect(),
        };
        Pool::new(&upstream, 2, Duration::from_millis(30))
    }

    #[test]
    fn breaker_opens_probes_and_closes() {
        let p = pool(1);
        assert_eq!(p.breaker.admit(), Ok(Admission::Pass));
        p.breaker.record(false);
        assert_eq!(p.breaker.admit(), Ok(Admission::Pass));
        p.breaker.record(false);
        assert!(p.breaker.admit().is_err(), "open after two failures");
        std::thread::sleep(Duration::from_millis(40));
        assert_eq!(p.breaker.admit(), Ok(Admission::Probe));
        assert!(p.breaker.admit().is_err(), "one probe at a time");
        p.breaker.record(false);
        assert!(p.breaker.is_open(), "failed probe re-opens");
        std::thread::sleep(Duration::from_millis(40));
        assert_eq!(p.breaker.admit(), Ok(Admission::Probe));
        p.breaker.record(true);
        assert_eq!(p.breaker.admit(), Ok(Admission::Pass));
    }

    #[test]
    fn picks_skip_unhealthy_and_prefer_idle_instances() {
        let p = pool(3);
        p.instances[0].set_healthy("t", false);
        let _busy = p.start(1);
        for _ in 0..50 {
            assert_eq!(p.pick(&[]), Some(2));
        }
        assert_eq!(p.pick(&[2]), Some(1));
        p.instances[1].set_healthy("t", false);
        p.instances[2].set_healthy("t", false);
        assert!(p.pick(&[]).is_some(), "falls back to any instance");
        assert_eq!(pool(0).pick(&[]), None);
    }
}
