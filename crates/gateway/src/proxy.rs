//! Streaming reverse proxy over a pooled hyper client.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::body::Body;
use axum::extract::{ConnectInfo, OriginalUri, Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Uri, header};
use axum::response::{IntoResponse, Response};
use bazaar_kit::Problem;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use crate::routes::{RouteTable, Upstream, is_forbidden_path};

/// Forwards requests to the upstream that owns their path.
pub struct Proxy {
    table: RouteTable,
    client: Client<HttpConnector, Body>,
    timeout: Duration,
    next: AtomicUsize,
}

/// Headers that describe one hop, not the message (RFC 9110 §7.6.1).
const HOP_BY_HOP: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

impl Proxy {
    /// A proxy over `table`; upstream responses must start within `timeout`.
    pub fn new(table: RouteTable, timeout: Duration) -> Self {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.set_connect_timeout(Some(Duration::from_secs(2)));
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(60))
            .pool_max_idle_per_host(512)
            .build(connector);
        Self {
            table,
            client,
            timeout,
            next: AtomicUsize::new(0),
        }
    }

    /// Every upstream pool.
    pub fn upstreams(&self) -> &[Upstream] {
        self.table.upstreams()
    }

    /// Ready when at least one instance of the pool answers `/readyz`.
    pub async fn probe(&self, name: &str) -> Result<(), String> {
        let Some(upstream) = self.table.upstreams().iter().find(|u| u.name == name) else {
            return Err(format!("{name}: unknown upstream"));
        };
        for url in &upstream.urls {
            let Ok(uri) = format!("{url}/readyz").parse::<Uri>() else {
                continue;
            };
            let request = Request::get(uri).body(Body::empty());
            let Ok(request) = request else { continue };
            if let Ok(Ok(response)) =
                tokio::time::timeout(Duration::from_secs(2), self.client.request(request)).await
            {
                if response.status().is_success() {
                    return Ok(());
                }
            }
        }
        Err(format!("{name}: no ready instance"))
    }

    fn pick<'a>(&self, upstream: &'a Upstream) -> Option<&'a str> {
        if upstream.urls.is_empty() {
            return None;
        }
        let i = self.next.fetch_add(1, Ordering::Relaxed) % upstream.urls.len();
        Some(upstream.urls[i].as_str())
    }
}

/// `/internal/...` is never routed.
pub async fn hidden() -> Problem {
    Problem::not_found()
}

/// Forwards one request, streaming both bodies.
pub async fn forward(State(proxy): State<Arc<Proxy>>, req: Request) -> Response {
    let original = req
        .extensions()
        .get::<OriginalUri>()
        .map_or_else(|| req.uri().clone(), |o| o.0.clone());
    let raw_path = original.path();
    if is_forbidden_path(raw_path) {
        return Problem::not_found().into_response();
    }
    let Some(upstream) = proxy.table.route(raw_path) else {
        return Problem::not_found().into_response();
    };
    let Some(base) = proxy.pick(upstream) else {
        return Problem::unavailable(format!("No instance of {} is configured.", upstream.name))
            .into_response();
    };
    let path_and_query = original.path_and_query().map_or("/", |p| p.as_str());
    let Ok(uri) = format!("{base}{path_and_query}").parse::<Uri>() else {
        return Problem::not_found().into_response();
    };
    let client_ip = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip().to_string());
    let (mut parts, body) = req.into_parts();
    let host = parts.headers.get(header::HOST).cloned();
    strip_hop_by_hop(&mut parts.headers);
    forwarded_headers(&mut parts.headers, client_ip, host);
    parts.uri = uri;
    parts.version = axum::http::Version::HTTP_11;
    let upstream_req = Request::from_parts(parts, body);
    let name = upstream.name.clone();
    let started = std::time::Instant::now();
    let result = tokio::time::timeout(proxy.timeout, proxy.client.request(upstream_req)).await;
    metrics::histogram!("gateway_upstream_duration_seconds", "upstream" => name.clone())
        .record(started.elapsed().as_secs_f64());
    match result {
        Ok(Ok(response)) => {
            let (mut parts, body) = response.into_parts();
            strip_hop_by_hop(&mut parts.headers);
            Response::from_parts(parts, Body::new(body))
        }
        Ok(Err(e)) => {
            metrics::counter!("gateway_upstream_errors_total", "upstream" => name.clone(), "kind" => "unavailable")
                .increment(1);
            tracing::warn!(upstream = %name, error = %e, "upstream unavailable");
            Problem::unavailable(format!(
                "The {name} service is unavailable; try again shortly."
            ))
            .with_retry_after(1)
            .into_response()
        }
        Err(_) => {
            metrics::counter!("gateway_upstream_errors_total", "upstream" => name.clone(), "kind" => "timeout")
                .increment(1);
            Problem::gateway_timeout(format!("The {name} service did not answer in time."))
                .into_response()
        }
    }
}

fn strip_hop_by_hop(headers: &mut HeaderMap) {
    let listed: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|name| HeaderName::from_bytes(name.trim().as_bytes()).ok())
        .collect();
    for name in listed {
        headers.remove(name);
    }
    for name in HOP_BY_HOP {
        headers.remove(*name);
    }
}

fn forwarded_headers(
    headers: &mut HeaderMap,
    client_ip: Option<String>,
    host: Option<HeaderValue>,
) {
    if let Some(ip) = client_ip {
        let value = match headers.get("x-forwarded-for").and_then(|v| v.to_str().ok()) {
            Some(prior) => format!("{prior}, {ip}"),
            None => ip,
        };
        if let Ok(v) = HeaderValue::from_str(&value) {
            headers.insert("x-forwarded-for", v);
        }
    }
    if !headers.contains_key("x-forwarded-proto") {
        headers.insert("x-forwarded-proto", HeaderValue::from_static("http"));
    }
    if let Some(host) = host {
        if !headers.contains_key("x-forwarded-host") {
            headers.insert("x-forwarded-host", host);
        }
    }
    headers.remove(header::HOST);
    if !headers.contains_key("traceparent") {
        // Start the trace here so every hop shares one trace id.
        let trace = uuid::Uuid::new_v4().simple().to_string();
        let span = &uuid::Uuid::new_v4().simple().to_string()[..16];
        if let Ok(v) = HeaderValue::from_str(&format!("00-{trace}-{span}-01")) {
            headers.insert("traceparent", v);
        }
    }
}
