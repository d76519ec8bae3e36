//! What a run measured: HDR histograms per request kind and per journey,
//! errors by status, checkout time-to-final, orders to verify afterwards;
//! and the report (a table for people, JSON for machines).

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use hdrhistogram::Histogram;
use serde::Serialize;

/// Latencies are recorded in microseconds, up to two minutes.
fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 120_000_000, 3).expect("constant, valid histogram bounds")
}

/// One request kind or journey: latencies and outcomes.
#[derive(Clone)]
pub struct Series {
    hist: Histogram<u64>,
    errors: BTreeMap<String, u64>,
}

impl Default for Series {
    fn default() -> Self {
        Self {
            hist: histogram(),
            errors: BTreeMap::new(),
        }
    }
}

impl Series {
    fn record(&mut self, latency: Duration, outcome: Result<(), &str>) {
        self.hist.saturating_record(
            u64::try_from(latency.as_micros())
                .unwrap_or(u64::MAX)
                .max(1),
        );
        if let Err(e) = outcome {
            *self.errors.entry(e.to_string()).or_insert(0) += 1;
        }
    }

    fn row(&self, name: &str, secs: f64) -> Row {
        let ms = |q: f64| self.hist.value_at_quantile(q) as f64 / 1000.0;
        let count = self.hist.len();
        Row {
            name: name.to_string(),
            count,
            error_count: self.errors.values().sum(),
            errors: self.errors.clone(),
            per_sec: if secs > 0.0 { count as f64 / secs } else { 0.0 },
            mean_ms: self.hist.mean() / 1000.0,
            p50_ms: ms(0.5),
            p90_ms: ms(0.9),
            p99_ms: ms(0.99),
            p999_ms: ms(0.999),
            max_ms: self.hist.max() as f64 / 1000.0,
        }
    }
}

/// What a checkout expected of its order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Expect {
    /// Paid with `tok_visa`: must end `confirmed`.
    Confirmed,
    /// Paid with `tok_chargeDeclined`: must end `rejected`/`payment_declined`.
    Declined,
}

/// An order placed during the run, checked afterwards.
#[derive(Clone, Debug)]
pub struct Placed {
    /// Order id.
    pub id: String,
    /// Expected outcome.
    pub expect: Expect,
    /// `(product id, quantity)` as ordered.
    pub items: Vec<(String, i64)>,
}

/// Everything recorded, behind one lock (held for a histogram insert).
#[derive(Default)]
struct Inner {
    requests: BTreeMap<&'static str, Series>,
    journeys: BTreeMap<&'static str, Series>,
    to_confirmed: Series,
    to_rejected: Series,
    placed: Vec<Placed>,
}

/// Shared by every load task.
#[derive(Default)]
pub struct Stats {
    inner: Mutex<Inner>,
    /// Requests finished (live, for the progress bar).
    pub requests: AtomicU64,
    /// Requests that failed (live).
    pub errors: AtomicU64,
}

impl Stats {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Records one request.
    pub fn request(&self, kind: &'static str, latency: Duration, outcome: Result<(), &str>) {
        self.requests.fetch_add(1, Ordering::Relaxed);
        if outcome.is_err() {
            self.errors.fetch_add(1, Ordering::Relaxed);
        }
        self.lock()
            .requests
            .entry(kind)
            .or_default()
            .record(latency, outcome);
    }

    /// Records one journey.
    pub fn journey(&self, name: &'static str, latency: Duration, outcome: Result<(), &str>) {
        self.lock()
            .journeys
            .entry(name)
            .or_default()
            .record(latency, outcome);
    }

    /// Records the time from placing an order to its final status.
    pub fn settled(&self, expect: Expect, latency: Duration) {
        let mut inner = self.lock();
        match expect {
            Expect::Confirmed => inner.to_confirmed.record(latency, Ok(())),
            Expect::Declined => inner.to_rejected.record(latency, Ok(())),
        }
    }

    /// Remembers an order for the verification pass.
    pub fn placed(&self, order: Placed) {
        self.lock().placed.push(order);
    }

    /// Orders placed so far.
    pub fn placed_orders(&self) -> Vec<Placed> {
        self.lock().placed.clone()
    }

    /// Builds the report over `elapsed`.
    pub fn report(&self, scenario: &str, mode: &str, elapsed: Duration) -> Report {
        let inner = self.lock();
        let secs = elapsed.as_secs_f64();
        let requests: Vec<Row> = inner.requests.iter().map(|(k, s)| s.row(k, secs)).collect();
        let journeys = inner.journeys.iter().map(|(k, s)| s.row(k, secs)).collect();
        let total_requests: u64 = requests.iter().map(|r| r.count).sum();
        let total_errors: u64 = requests.iter().map(|r| r.error_count).sum();
        let checkout = (!inner.placed.is_empty()).then(|| Checkout {
            placed: inner.placed.len(),
            per_sec: inner.placed.len() as f64 / secs.max(f64::EPSILON),
            to_confirmed: inner.to_confirmed.row("to_confirmed", secs),
            to_rejected: inner.to_rejected.row("to_rejected", secs),
        });
        Report {
            scenario: scenario.to_string(),
            mode: mode.to_string(),
            elapsed_secs: secs,
            total_requests,
            total_errors,
            requests_per_sec: total_requests as f64 / secs.max(f64::EPSILON),
            error_rate: if total_requests == 0 {
                0.0
            } else {
                total_errors as f64 / total_requests as f64
            },
            requests,
            journeys,
            checkout,
            verification: None,
            platform: None,
            hello: None,
        }
    }
}

/// One table row.
#[derive(Clone, Debug, Serialize)]
pub struct Row {
    /// Request kind or journey.
    pub name: String,
    /// How many.
    pub count: u64,
    /// Errors by status (`500`, `timeout`, `unexpected:rejected`...).
    pub errors: BTreeMap<String, u64>,
    /// Sum of `errors`.
    pub error_count: u64,
    /// Throughput over the run.
    pub per_sec: f64,
    /// Mean latency.
    pub mean_ms: f64,
    /// Median.
    pub p50_ms: f64,
    /// 90th percentile.
    pub p90_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
    /// 99.9th percentile.
    pub p999_ms: f64,
    /// Slowest.
    pub max_ms: f64,
}

/// Checkout outcomes.
#[derive(Clone, Debug, Serialize)]
pub struct Checkout {
    /// Orders placed (201).
    pub placed: usize,
    /// Orders placed per second.
    pub per_sec: f64,
    /// From POST to `confirmed` (tok_visa).
    pub to_confirmed: Row,
    /// From POST to `rejected` (tok_chargeDeclined).
    pub to_rejected: Row,
}

/// The after-run check of every order placed.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Verification {
    /// Orders checked.
    pub checked: usize,
    /// Orders final and correct.
    pub correct: usize,
    /// What was wrong with the others.
    pub problems: Vec<String>,
}

/// The platform process's resources (from `/proc`).
#[derive(Clone, Debug, Default, Serialize)]
pub struct Resources {
    /// Process id measured.
    pub pid: u32,
    /// `true` when the bench client runs in the same process (in-process
    /// spawn): then the figures include the client.
    pub includes_client: bool,
    /// RSS right after start-up, MiB.
    pub rss_start_mib: f64,
    /// RSS after preparation, before load (idle), MiB.
    pub rss_idle_mib: f64,
    /// Peak RSS sampled every 250 ms under load, MiB.
    pub rss_peak_mib: f64,
    /// Kernel's high-water mark (VmHWM) at the end, MiB.
    pub vm_hwm_mib: f64,
    /// CPU seconds (user + system) spent during the load.
    pub cpu_secs: f64,
    /// `cpu_secs` / wall seconds: cores kept busy on average.
    pub cpu_cores: f64,
}

/// The hello-world ceiling measured in the same run.
#[derive(Clone, Debug, Serialize)]
pub struct Hello {
    /// Closed-loop GET `/` against a minimal axum JSON server.
    pub row: Row,
    /// Its RSS under load, MiB (child process).
    pub rss_peak_mib: f64,
    /// Browse requests/s of this run as a fraction of hello req/s.
    pub browse_ratio: f64,
    /// All requests/s of this run as a fraction of hello req/s.
    pub total_ratio: f64,
}

/// The whole report.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    /// browse, auth, checkout or mixed.
    pub scenario: String,
    /// `closed, 32 workers` or `open, 200/s`.
    pub mode: String,
    /// Wall time of the load.
    pub elapsed_secs: f64,
    /// Requests made.
    pub total_requests: u64,
    /// Requests that failed.
    pub total_errors: u64,
    /// Overall throughput.
    pub requests_per_sec: f64,
    /// `total_errors / total_requests`.
    pub error_rate: f64,
    /// Per request kind.
    pub requests: Vec<Row>,
    /// Per journey.
    pub journeys: Vec<Row>,
    /// Checkout outcomes, when orders were placed.
    pub checkout: Option<Checkout>,
    /// The check of every order placed.
    pub verification: Option<Verification>,
    /// Platform resources, with `--spawn`.
    pub platform: Option<Resources>,
    /// The hello-world comparison, with `--spawn`.
    pub hello: Option<Hello>,
}

impl Report {
    /// Browse requests per second (every `browse.*` kind).
    pub fn browse_per_sec(&self) -> f64 {
        self.requests
            .iter()
            .filter(|r| r.name.starts_with("browse."))
            .map(|r| r.per_sec)
            .sum()
    }

    /// Prints the tables.
    pub fn print(&self) {
        println!();
        println!(
            "bazaar bench: scenario {}, {}, {:.1} s",
            self.scenario, self.mode, self.elapsed_secs
        );
        println!();
        table("request", &self.requests);
        println!();
        table("journey", &self.journeys);
        if let Some(c) = &self.checkout {
            println!();
            println!(
                "checkout: {} orders placed ({:.1}/s); placement → confirmed: n={} p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms; → rejected (declined): n={} p50 {:.1} ms, p99 {:.1} ms",
                c.placed,
                c.per_sec,
                c.to_confirmed.count,
                c.to_confirmed.p50_ms,
                c.to_confirmed.p99_ms,
                c.to_confirmed.max_ms,
                c.to_rejected.count,
                c.to_rejected.p50_ms,
                c.to_rejected.p99_ms,
            );
        }
        if let Some(v) = &self.verification {
            println!(
                "orders verified: {}/{} final and correct",
                v.correct, v.checked
            );
            for p in v.problems.iter().take(20) {
                println!("  NOT CORRECT: {p}");
            }
        }
        if let Some(p) = &self.platform {
            println!();
            println!(
                "platform (pid {}{}): RSS start {:.1} MiB, idle {:.1} MiB, peak under load {:.1} MiB (VmHWM {:.1} MiB); CPU {:.1} s over the load = {:.2} cores",
                p.pid,
                if p.includes_client {
                    ", in-process: figures include the bench client"
                } else {
                    ", child process"
                },
                p.rss_start_mib,
                p.rss_idle_mib,
                p.rss_peak_mib,
                p.vm_hwm_mib,
                p.cpu_secs,
                p.cpu_cores
            );
        }
        if let Some(h) = &self.hello {
            println!(
                "hello-world axum server, same client and concurrency: {:.0} req/s, p50 {:.2} ms, p99 {:.2} ms, RSS {:.1} MiB",
                h.row.per_sec, h.row.p50_ms, h.row.p99_ms, h.rss_peak_mib
            );
            println!(
                "  → browse through the gateway at {:.1}% of hello-world req/s; all requests at {:.1}%",
                h.browse_ratio * 100.0,
                h.total_ratio * 100.0
            );
        }
        println!();
        println!(
            "total: {} requests, {:.0} req/s, {} errors ({:.3}%)",
            self.total_requests,
            self.requests_per_sec,
            self.total_errors,
            self.error_rate * 100.0
        );
    }
}

fn table(what: &str, rows: &[Row]) {
    println!(
        "{what:<18} {:>8} {:>7} {:>9} {:>8} {:>8} {:>8} {:>8} {:>8}  errors",
        "count", "err", "per s", "p50 ms", "p90 ms", "p99 ms", "p99.9", "max ms"
    );
    for r in rows {
        let errors = r
            .errors
            .iter()
            .map(|(k, v)| format!("{k}×{v}"))
            .collect::<Vec<_>>()
            .join(" ");
        println!(
            "{:<18} {:>8} {:>7} {:>9.1} {:>8.2} {:>8.2} {:>8.2} {:>8.2} {:>8.1}  {errors}",
            r.name,
            r.count,
            r.error_count,
            r.per_sec,
            r.p50_ms,
            r.p90_ms,
            r.p99_ms,
            r.p999_ms,
            r.max_ms
        );
    }
}
