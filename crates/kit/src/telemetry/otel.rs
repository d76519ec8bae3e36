//! OpenTelemetry traces over OTLP, configured only by the standard
//! variables and off (no layer, no cost) when no endpoint is set:
//!
//! - `OTEL_EXPORTER_OTLP_ENDPOINT` / `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`:
//!   where to send spans (unset or empty: tracing off);
//! - `OTEL_EXPORTER_OTLP_PROTOCOL` (`_TRACES_PROTOCOL`): `http/protobuf`
//!   (default) or `grpc`;
//! - `OTEL_SERVICE_NAME`: one `service.name` for every span; unset, each
//!   span is named after the Bazaar service it belongs to (so `bazaar up`
//!   still shows six services);
//! - `OTEL_TRACES_SAMPLER`/`_ARG`, `OTEL_RESOURCE_ATTRIBUTES`,
//!   `OTEL_SDK_DISABLED`, `OTEL_TRACES_EXPORTER=none`: as the spec says
//!   (read by the SDK).
//!
//! A span belongs to the service named by its own `service` field (the
//! request, worker and RPC spans carry one) or else its parent's: a span
//! processor routes each finished span to a batch processor of that
//! service, whose exporter carries the service's resource.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock, RwLock};
use std::time::Duration;

use opentelemetry::trace::{SpanId, TraceContextExt as _, TracerProvider as _};
use opentelemetry::{Context, KeyValue, Value};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{
    BatchSpanProcessor, SdkTracerProvider, Span, SpanData, SpanProcessor,
};

/// Name of spans outside every service (CLI commands).
const PROCESS: &str = "bazaar";

static PROVIDER: OnceLock<SdkTracerProvider> = OnceLock::new();

/// Whether spans are exported (checked before doing any propagation work).
pub fn enabled() -> bool {
    PROVIDER.get().is_some()
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

/// The tracer, when the environment asks for traces; installs the W3C
/// trace-context propagator.
pub(super) fn tracer() -> Option<opentelemetry_sdk::trace::Tracer> {
    let endpoint =
        env("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT").or_else(|| env("OTEL_EXPORTER_OTLP_ENDPOINT"));
    let disabled = env("OTEL_SDK_DISABLED").is_some_and(|v| v.eq_ignore_ascii_case("true"))
        || env("OTEL_TRACES_EXPORTER").is_some_and(|v| v.eq_ignore_ascii_case("none"));
    if endpoint.is_none() || disabled {
        return None;
    }
    if PROVIDER.get().is_none() {
        let base = Resource::builder().build();
        let fixed_name = env("OTEL_SERVICE_NAME").is_some();
        let by_service = ByService {
            base: base.clone(),
            fixed_name,
            owners: Mutex::new(HashMap::new()),
            processors: RwLock::new(HashMap::new()),
        };
        // The exporters are made here, on the runtime (the gRPC one needs
        // it), rather than by whichever thread first ends a span.
        for name in crate::config::ServiceName::ALL
            .iter()
            .map(|n| n.as_str())
            .chain([PROCESS])
        {
            by_service.processor(&Arc::from(name));
        }
        let provider = SdkTracerProvider::builder()
            .with_resource(base)
            .with_span_processor(by_service)
            .build();
        let _ = PROVIDER.set(provider);
        opentelemetry::global::set_text_map_propagator(
            opentelemetry_sdk::propagation::TraceContextPropagator::new(),
        );
    }
    PROVIDER.get().map(|p| p.tracer("bazaar"))
}

/// Exports what is buffered (at exit).
pub fn flush() {
    if let Some(provider) = PROVIDER.get() {
        let _ = provider.force_flush();
    }
}

/// Routes finished spans to one batch processor per service.
#[derive(Debug)]
struct ByService {
    /// The resource from the environment (`OTEL_RESOURCE_ATTRIBUTES`...).
    base: Resource,
    /// `OTEL_SERVICE_NAME` is set: it names every span.
    fixed_name: bool,
    /// The service of each span started and not yet ended.
    owners: Mutex<HashMap<SpanId, Arc<str>>>,
    processors: RwLock<HashMap<Arc<str>, Arc<BatchSpanProcessor>>>,
}

impl ByService {
    fn processor(&self, service: &Arc<str>) -> Option<Arc<BatchSpanProcessor>> {
        if let Some(p) = self.processors.read().ok()?.get(service) {
            return Some(p.clone());
        }
        let mut all = self.processors.write().ok()?;
        if let Some(p) = all.get(service) {
            return Some(p.clone());
        }
        let exporter = match opentelemetry_otlp::SpanExporter::builder().build() {
            Ok(exporter) => exporter,
            Err(e) => {
                eprintln!("OTLP span exporter: {e}");
                return None;
            }
        };
        let mut processor = BatchSpanProcessor::builder(exporter).build();
        let resource = if self.fixed_name {
            self.base.clone()
        } else {
            Resource::builder_empty()
                .with_attributes(
                    self.base
                        .iter()
                        .map(|(k, v)| KeyValue::new(k.clone(), v.clone())),
                )
                .with_service_name(service.to_string())
                .build()
        };
        processor.set_resource(&resource);
        let processor = Arc::new(processor);
        all.insert(service.clone(), processor.clone());
        Some(processor)
    }
}

impl SpanProcessor for ByService {
    fn on_start(&self, span: &mut Span, cx: &Context) {
        let Some(data) = span.exported_data() else {
            return;
        };
        let own = data
            .attributes
            .iter()
            .find_map(|kv| match (kv.key.as_str(), &kv.value) {
                ("service", Value::String(s)) => Some(Arc::<str>::from(s.as_str())),
                _ => None,
            });
        let Ok(mut owners) = self.owners.lock() else {
            return;
        };
        let service = own
            .or_else(|| {
                let parent = cx.span().span_context().span_id();
                owners.get(&parent).cloned()
            })
            .unwrap_or_else(|| Arc::from(PROCESS));
        owners.insert(data.span_context.span_id(), service);
    }

    fn on_end(&self, span: SpanData) {
        let service = self
            .owners
            .lock()
            .ok()
            .and_then(|mut o| o.remove(&span.span_context.span_id()))
            .unwrap_or_else(|| Arc::from(PROCESS));
        if let Some(p) = self.processor(&service) {
            p.on_end(span);
        }
    }

    fn force_flush(&self) -> OTelSdkResult {
        let all: Vec<_> = self
            .processors
            .read()
            .map(|p| p.values().cloned().collect())
            .unwrap_or_default();
        for p in all {
            p.force_flush()?;
        }
        Ok(())
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        let all: Vec<_> = self
            .processors
            .read()
            .map(|p| p.values().cloned().collect())
            .unwrap_or_default();
        for p in all {
            p.shutdown_with_timeout(timeout)?;
        }
        Ok(())
    }
}

/// Reads W3C headers from an HTTP header map.
struct Headers<'a>(&'a axum::http::HeaderMap);

impl opentelemetry::propagation::Extractor for Headers<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }
    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(axum::http::HeaderName::as_str).collect()
    }
}

/// Makes `span` a child of the trace context in `headers` (W3C
/// `traceparent`/`tracestate`), when tracing is on and there is one.
pub fn set_parent_from(span: &tracing::Span, headers: &axum::http::HeaderMap) {
    if !enabled() {
        return;
    }
    let cx = opentelemetry::global::get_text_map_propagator(|p| p.extract(&Headers(headers)));
    if cx.span().span_context().is_valid() {
        use tracing_opentelemetry::OpenTelemetrySpanExt as _;
        let _ = span.set_parent(cx);
    }
}

/// Makes `span` a child of a stored `traceparent` (an event envelope, a
/// saga step's order), when tracing is on.
pub fn set_parent_from_traceparent(span: &tracing::Span, traceparent: Option<&str>) {
    let Some(tp) = traceparent else {
        return;
    };
    let mut headers = axum::http::HeaderMap::new();
    if let Ok(v) = tp.parse() {
        headers.insert("traceparent", v);
    }
    set_parent_from(span, &headers);
}

/// The W3C `traceparent` of `span` (to send on or store), when tracing is
/// on and the span is sampled-in or not.
pub fn traceparent_of(span: &tracing::Span) -> Option<String> {
    if !enabled() {
        return None;
    }
    use tracing_opentelemetry::OpenTelemetrySpanExt as _;
    let cx = span.context();
    let mut out: HashMap<String, String> = HashMap::new();
    opentelemetry::global::get_text_map_propagator(|p| p.inject_context(&cx, &mut out));
    out.remove("traceparent")
}

/// The current span's `traceparent`, when tracing is on.
pub fn current_traceparent() -> Option<String> {
    traceparent_of(&tracing::Span::current())
}

/// The trace id of `span` (32 hex), when tracing is on.
pub fn trace_id_of(span: &tracing::Span) -> Option<String> {
    if !enabled() {
        return None;
    }
    use tracing_opentelemetry::OpenTelemetrySpanExt as _;
    let cx = span.context();
    let id = cx.span().span_context().trace_id();
    (id != opentelemetry::trace::TraceId::INVALID).then(|| id.to_string())
}
