//! Streaming reverse proxy over a pooled hyper client: edge checks, breaker,
//! balancing, retries (idempotent, bodiless requests whose connection
//! failed, so nothing reached the upstream) and timeouts.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{ConnectInfo, OriginalUri, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, Uri, header};
use axum::response::{IntoResponse, Response};
use bazaar_kit::Problem;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use crate::guard::Guard;
use crate::pool::{Admission, Pool};
use crate::routes::{RouteTable, is_forbidden_path};

/// The HTTP client used for upstreams and health checks.
pub type HttpClient = Client<HttpConnector, Body>;

/// Forwards requests to the upstream that owns their path.
pub struct Proxy {
    /// Prefix → pool index.
    pub table: RouteTable,
    /// One pool per upstream, indexed like `table.upstreams()`.
    pub pools: Vec<Pool>,
    /// Pooled keep-alive client.
    pub client: HttpClient,
    /// Edge policy.
    pub guard: Guard,
    /// Time allowed for an upstream's response head.
    pub timeout: Duration,
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

/// Attempts per request when connections fail (idempotent, bodiless only).
const MAX_ATTEMPTS: usize = 3;

/// A client with nodelay, a connect timeout and a large keep-alive pool.
pub fn client(connect_timeout: Duration) -> HttpClient {
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    connector.set_connect_timeout(Some(connect_timeout));
    Client::builder(TokioExecutor::new())
        .pool_idle_timeout(Duration::from_secs(60))
        .pool_max_idle_per_host(512)
        .build(connector)
}

/// `/internal/...` is never routed.
pub async fn hidden() -> Problem {
    Problem::not_found()
}

/// Forwards one request, streaming both bodies.
pub async fn forward(State(proxy): State<Arc<Proxy>>, req: Request) -> Response {
    match proxy.forward(req).await {
        Ok(response) => response,
        Err(problem) => problem.into_response(),
    }
}

enum Failure {
    Connect,
    Other(String),
    Timeout,
}

impl Proxy {
    async fn forward(&self, req: Request) -> Result<Response, Problem> {
        let original = req
            .extensions()
            .get::<OriginalUri>()
            .map_or_else(|| req.uri().clone(), |o| o.0.clone());
        let raw_path = original.path();
        if is_forbidden_path(raw_path) {
            return Err(Problem::not_found());
        }
        let idx = self.table.route(raw_path).ok_or_else(Problem::not_found)?;
        let pool = &self.pools[idx];
        let client_ip = req
            .extensions()
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip());
        self.guard
            .admit(req.method(), raw_path, req.headers(), client_ip)
            .await?;
        let admission = pool.breaker.admit().map_err(|wait| {
            metrics::counter!("gateway_upstream_errors_total", "upstream" => pool.name.clone(), "kind" => "circuit_open")
                .increment(1);
            Problem::unavailable(format!(
                "The {} service is unavailable (circuit open); try again shortly.",
                pool.name
            ))
            .with_retry_after(wait.as_secs() + 1)
        })?;
        let path_and_query = original
            .path_and_query()
            .map_or("/", |p| p.as_str())
            .to_string();
        let (mut parts, body) = req.into_parts();
        let host = parts.headers.get(header::HOST).cloned();
        strip_hop_by_hop(&mut parts.headers);
        forwarded_headers(&mut parts.headers, client_ip.map(|ip| ip.to_string()), host);
        parts.version = axum::http::Version::HTTP_11;
        let retryable = is_idempotent(&parts.method) && has_no_body(&parts.headers);
        let mut body = Some(body);
        let mut tried = Vec::new();
        let started = Instant::now();
        let outcome = loop {
            let Some(i) = pool.pick(&tried) else {
                break Err(Failure::Connect);
            };
            tried.push(i);
            let instance = &pool.instances[i];
            let uri: Uri = format!("{}{path_and_query}", instance.url)
                .parse()
                .map_err(|_| Problem::not_found())?;
            let attempt_body = body.take().unwrap_or_else(Body::empty);
            let request = rebuild(&parts, uri, attempt_body);
            let _in_flight = pool.start(i);
            match tokio::time::timeout(self.timeout, self.client.request(request)).await {
                Ok(Ok(response)) => break Ok(response),
                Ok(Err(e)) if e.is_connect() => {
                    instance.set_healthy(&pool.name, false);
                    tracing::warn!(upstream = %pool.name, instance = %instance.url, error = %e, "connect failed");
                    if !(retryable && tried.len() < MAX_ATTEMPTS.min(pool.instances.len())) {
                        break Err(Failure::Connect);
                    }
                }
                Ok(Err(e)) => break Err(Failure::Other(error_chain(&e))),
                Err(_) => break Err(Failure::Timeout),
            }
        };
        let name = &pool.name;
        metrics::histogram!("gateway_upstream_duration_seconds", "upstream" => name.clone())
            .record(started.elapsed().as_secs_f64());
        let upstream_fault = match &outcome {
            Ok(_) => false,
            Err(Failure::Other(e)) => !e.contains("length limit exceeded"),
            Err(_) => true,
        };
        pool.breaker.record(!upstream_fault);
        if admission == Admission::Probe {
            tracing::info!(upstream = %name, ok = outcome.is_ok(), "half-open probe");
        }
        match outcome {
            Ok(response) => {
                let (mut parts, body) = response.into_parts();
                strip_hop_by_hop(&mut parts.headers);
                Ok(Response::from_parts(parts, Body::new(body)))
            }
            Err(failure) => {
                let kind = match &failure {
                    Failure::Connect => "connect",
                    Failure::Other(_) => "unavailable",
                    Failure::Timeout => "timeout",
                };
                metrics::counter!("gateway_upstream_errors_total", "upstream" => name.clone(), "kind" => kind)
                    .increment(1);
                Err(match failure {
                    Failure::Timeout => Problem::gateway_timeout(format!(
                        "The {name} service did not answer in time."
                    )),
                    Failure::Other(e) if e.contains("length limit exceeded") => Problem::new(
                        axum::http::StatusCode::PAYLOAD_TOO_LARGE,
                        "Request body exceeds the 1 MiB limit.",
                    ),
                    Failure::Other(e) => {
                        tracing::warn!(upstream = %name, error = %e, "upstream failed");
                        Problem::unavailable(format!(
                            "The {name} service is unavailable; try again shortly."
                        ))
                        .with_retry_after(1)
                    }
                    Failure::Connect => Problem::unavailable(format!(
                        "The {name} service is unavailable; try again shortly."
                    ))
                    .with_retry_after(1),
                })
            }
        }
    }
}

fn rebuild(parts: &Parts, uri: Uri, body: Body) -> Request {
    let mut request = Request::new(body);
    *request.method_mut() = parts.method.clone();
    *request.uri_mut() = uri;
    *request.version_mut() = parts.version;
    *request.headers_mut() = parts.headers.clone();
    request
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

fn is_idempotent(method: &Method) -> bool {
    [
        Method::GET,
        Method::HEAD,
        Method::OPTIONS,
        Method::PUT,
        Method::DELETE,
    ]
    .contains(method)
}

fn has_no_body(headers: &HeaderMap) -> bool {
    !headers.contains_key(header::TRANSFER_ENCODING)
        && headers
            .get(header::CONTENT_LENGTH)
            .is_none_or(|v| v.as_bytes() == b"0")
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
    if let Some(host) = host
        && !headers.contains_key("x-forwarded-host")
    {
        headers.insert("x-forwarded-host", host);
    }
    headers.remove(header::HOST);
    if !headers.contains_key("traceparent") {
        // Start the trace here so every hop shares one trace id (a
        // thread-local generator: no syscall per request).
        use rand::Rng as _;
        let mut rng = rand::rng();
        let trace: u128 = rng.random::<u128>().max(1);
        let span: u64 = rng.random::<u64>().max(1);
        if let Ok(v) = HeaderValue::from_str(&format!("00-{trace:032x}-{span:016x}-01")) {
            headers.insert("traceparent", v);
        }
    }
}
