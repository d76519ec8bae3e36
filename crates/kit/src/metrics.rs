//! Prometheus metrics, one registry per service.
//!
//! The process-wide recorder routes each series by its `service` label to
//! that service's own Prometheus recorder, so under `bazaar up` (all
//! services in one process) each port serves only its own service's series
//! and scraping every port counts nothing twice. Series without a `service`
//! label (`process_*`, `bazaar_build_info`) describe the process and are
//! served on every port.
//!
//! Every family is described (`# HELP`): the kit's own here, a service's in
//! its `build` with the `metrics::describe_*!` macros. Descriptions reach
//! every service's registry, including ones created later.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock, RwLock};

use metrics::{
    Counter, Gauge, Histogram, Key, KeyName, Metadata, Recorder, SharedString, Unit,
    describe_counter, describe_gauge, describe_histogram,
};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusRecorder};

mod process;

/// Latency buckets in seconds: 0.5 ms .. 10 s.
const BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Buckets of the longer durations (`*_lifetime_seconds`, a saga's
/// placement → final state): 10 ms .. 10 min.
const LONG_BUCKETS: &[f64] = &[
    0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0,
];

/// The label that picks a series' registry.
pub const SERVICE_LABEL: &str = "service";

#[derive(Clone, Copy)]
enum Kind {
    Counter,
    Gauge,
    Histogram,
}

type Description = (Kind, KeyName, Option<Unit>, SharedString);

/// The process-wide recorder: a Prometheus recorder per service (by the
/// `service` label) and one for the process's own series.
pub struct Registries {
    shared: PrometheusRecorder,
    services: RwLock<HashMap<String, Arc<PrometheusRecorder>>>,
    descriptions: RwLock<Vec<Description>>,
}

fn new_recorder() -> PrometheusRecorder {
    // Overrides are tried in sorted order: `_lifetime_seconds` before `_seconds`.
    PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Suffix("_lifetime_seconds".into()), LONG_BUCKETS)
        .and_then(|b| b.set_buckets_for_metric(Matcher::Suffix("_seconds".into()), BUCKETS))
        .unwrap_or_else(|_| PrometheusBuilder::new())
        .build_recorder()
}

fn describe_on(recorder: &PrometheusRecorder, d: &Description) {
    let (kind, key, unit, text) = d.clone();
    match kind {
        Kind::Counter => recorder.describe_counter(key, unit, text),
        Kind::Gauge => recorder.describe_gauge(key, unit, text),
        Kind::Histogram => recorder.describe_histogram(key, unit, text),
    }
}

impl Registries {
    fn new() -> Self {
        Self {
            shared: new_recorder(),
            services: RwLock::new(HashMap::new()),
            descriptions: RwLock::new(Vec::new()),
        }
    }

    /// The registry of `service`, created (with every description so far)
    /// on first use.
    fn service(&self, service: &str) -> Arc<PrometheusRecorder> {
        if let Some(r) = self
            .services
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(service)
        {
            return r.clone();
        }
        // Lock order everywhere: `descriptions`, then `services` (as in
        // `describe`); the other order deadlocks against it.
        let descriptions = self
            .descriptions
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut services = self
            .services
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        services
            .entry(service.to_string())
            .or_insert_with(|| {
                let recorder = new_recorder();
                for d in descriptions.iter() {
                    describe_on(&recorder, d);
                }
                Arc::new(recorder)
            })
            .clone()
    }

    fn route<T>(&self, key: &Key, f: impl FnOnce(&PrometheusRecorder) -> T) -> T {
        match key.labels().find(|l| l.key() == SERVICE_LABEL) {
            Some(label) => f(&self.service(label.value())),
            None => f(&self.shared),
        }
    }

    fn describe(&self, d: Description) {
        // Hold the list while describing so a registry created meanwhile
        // either sees it in the list or here.
        let mut list = self
            .descriptions
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        describe_on(&self.shared, &d);
        for r in self
            .services
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .values()
        {
            describe_on(r, &d);
        }
        list.push(d);
    }

    /// The Prometheus text of `service`'s series and the process's.
    pub fn render(&self, service: &str) -> String {
        metrics::with_local_recorder(&self.shared, process::record);
        let mut text = self.service(service).handle().render();
        text.push_str(&self.shared.handle().render());
        text
    }

    fn upkeep(&self) {
        self.shared.handle().run_upkeep();
        let all: Vec<_> = self
            .services
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .values()
            .cloned()
            .collect();
        for r in all {
            r.handle().run_upkeep();
        }
    }
}

impl Recorder for Registries {
    fn describe_counter(&self, key: KeyName, unit: Option<Unit>, description: SharedString) {
        self.describe((Kind::Counter, key, unit, description));
    }

    fn describe_gauge(&self, key: KeyName, unit: Option<Unit>, description: SharedString) {
        self.describe((Kind::Gauge, key, unit, description));
    }

    fn describe_histogram(&self, key: KeyName, unit: Option<Unit>, description: SharedString) {
        self.describe((Kind::Histogram, key, unit, description));
    }

    fn register_counter(&self, key: &Key, metadata: &Metadata<'_>) -> Counter {
        self.route(key, |r| r.register_counter(key, metadata))
    }

    fn register_gauge(&self, key: &Key, metadata: &Metadata<'_>) -> Gauge {
        self.route(key, |r| r.register_gauge(key, metadata))
    }

    fn register_histogram(&self, key: &Key, metadata: &Metadata<'_>) -> Histogram {
        self.route(key, |r| r.register_histogram(key, metadata))
    }
}

/// Forwards to the process's [`Registries`] (the global recorder is owned).
struct Global(&'static Registries);

impl Recorder for Global {
    fn describe_counter(&self, key: KeyName, unit: Option<Unit>, description: SharedString) {
        self.0.describe_counter(key, unit, description);
    }
    fn describe_gauge(&self, key: KeyName, unit: Option<Unit>, description: SharedString) {
        self.0.describe_gauge(key, unit, description);
    }
    fn describe_histogram(&self, key: KeyName, unit: Option<Unit>, description: SharedString) {
        self.0.describe_histogram(key, unit, description);
    }
    fn register_counter(&self, key: &Key, metadata: &Metadata<'_>) -> Counter {
        self.0.register_counter(key, metadata)
    }
    fn register_gauge(&self, key: &Key, metadata: &Metadata<'_>) -> Gauge {
        self.0.register_gauge(key, metadata)
    }
    fn register_histogram(&self, key: &Key, metadata: &Metadata<'_>) -> Histogram {
        self.0.register_histogram(key, metadata)
    }
}

static REGISTRIES: OnceLock<&'static Registries> = OnceLock::new();

/// The process's registries, installed as the global recorder on first use
/// (with the kit's descriptions).
pub fn handle() -> &'static Registries {
    REGISTRIES.get_or_init(|| {
        let registries: &'static Registries = Box::leak(Box::new(Registries::new()));
        // Another recorder installed (a test harness): ours stays private.
        let _ = metrics::set_global_recorder(Global(registries));
        metrics::with_local_recorder(registries, describe_kit);
        // Histograms buffer samples until drained; drain them even when
        // nothing scrapes `/metrics`, or memory grows with traffic.
        let _ = std::thread::Builder::new()
            .name("metrics-upkeep".into())
            .spawn(move || {
                loop {
                    std::thread::sleep(std::time::Duration::from_secs(5));
                    registries.upkeep();
                }
            });
        registries
    })
}

/// The Prometheus text exposition of `service`'s metrics.
pub fn render(service: &str) -> String {
    handle().render(service)
}

/// Runs `describe` (a service's `metrics::describe_*!` calls) against the
/// process's registries: every family a service emits needs its `# HELP`.
pub fn describe(describe: impl FnOnce()) {
    metrics::with_local_recorder(handle(), describe);
}

/// The families the kit itself emits.
fn describe_kit() {
    describe_counter!(
        "http_requests_total",
        "HTTP requests answered, by method, route template and status."
    );
    describe_histogram!(
        "http_request_duration_seconds",
        Unit::Seconds,
        "Time to answer an HTTP request (to the response head), by method, route template and status."
    );
    describe_counter!(
        "events_published_total",
        "Events the outbox relay handed to the broker, by event type."
    );
    describe_counter!(
        "events_publish_failed_total",
        "Outbox relay attempts the broker refused or that timed out."
    );
    describe_gauge!(
        "events_outbox_backlog",
        "Outbox rows written but not yet published."
    );
    describe_counter!(
        "events_consumed_total",
        "Events a consumer handled successfully, by consumer and type."
    );
    describe_counter!(
        "events_failed_total",
        "Event deliveries whose handler failed (to be retried), by consumer and type."
    );
    describe_counter!(
        "events_duplicates_total",
        "Redeliveries the inbox recognised and skipped, by consumer."
    );
    describe_counter!(
        "events_dead_lettered_total",
        "Events moved to the dead-letter store after their last retry, by consumer."
    );
    describe_gauge!(
        "db_pool_connections",
        "Database pool connections, by state (open, idle)."
    );
    process::describe();
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Descriptions and new services' first series race from several
    /// threads without deadlocking (both paths take `descriptions`, then
    /// `services`), and a service created at any point has every
    /// description.
    #[test]
    fn describing_while_services_appear_never_deadlocks() {
        let registries = Arc::new(Registries::new());
        let workers: Vec<_> = (0..4)
            .map(|t| {
                let registries = registries.clone();
                std::thread::spawn(move || {
                    for i in 0..200 {
                        registries.describe((
                            Kind::Counter,
                            KeyName::from(format!("race_{t}_{i}_total")),
                            None,
                            SharedString::from("A family described mid-race."),
                        ));
                        let _ = registries.service(&format!("svc{t}_{i}"));
                    }
                })
            })
            .collect();
        for worker in workers {
            worker.join().expect("no panic");
        }
        let last = registries.service("svc3_199");
        metrics::with_local_recorder(last.as_ref(), || {
            metrics::counter!("race_0_0_total").increment(1);
        });
        assert!(
            last.handle()
                .render()
                .contains("# HELP race_0_0_total A family described mid-race."),
            "a registry misses a description"
        );
    }
}
