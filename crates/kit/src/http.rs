//! The HTTP bootstrap every service shares: default endpoints, the
//! middleware stack, and a server with graceful shutdown.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use http_body_util::BodyExt;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tower_http::limit::RequestBodyLimitLayer;
use tracing::Instrument;

use crate::error::{PROBLEM_JSON, PendingProblem, Problem};
use crate::service::Service;

/// The request-id header.
pub const REQUEST_ID: &str = "x-request-id";
/// Largest request body accepted anywhere (413 beyond).
pub const BODY_LIMIT: usize = 1024 * 1024;

/// Options of the middleware stack.
#[derive(Clone, Debug)]
pub struct HttpOptions {
    /// Time allowed to produce a response head (504 after it).
    pub request_timeout: Duration,
    /// Time allowed for in-flight requests after shutdown starts.
    pub shutdown_grace: Duration,
}

impl Default for HttpOptions {
    fn default() -> Self {
        Self {
            request_timeout: Duration::from_secs(30),
            shutdown_grace: Duration::from_secs(10),
        }
    }
}

struct Observe {
    service: &'static str,
    timeout: Duration,
}

/// Wraps a service's routes with the default endpoints and middleware:
/// request ids, problem rendering, metrics, tracing, timeout, body limit and
/// security headers.
pub fn app(service: &Service, options: &HttpOptions) -> Router {
    // Install the recorder before the first request is counted.
    crate::metrics::handle();
    let name = service.name.as_str();
    // With an operator listener, metrics and readiness details live there.
    let no_admin = service.admin.is_none();
    let defaults = probes(service, no_admin);
    let defaults = if no_admin {
        defaults.route("/metrics", get(move || metrics_text(name)))
    } else {
        defaults
    };
    let defaults = match &service.openapi {
        Some(doc) => {
            let json = doc.to_json().unwrap_or_else(|_| "{}".into());
            defaults.route(
                "/openapi.json",
                get(move || {
                    let json = json.clone();
                    async move { ([(header::CONTENT_TYPE, "application/json")], json) }
                }),
            )
        }
        None => defaults,
    };
    let observe = Arc::new(Observe {
        service: name,
        timeout: options.request_timeout,
    });
    let mut router = service.router.clone();
    if let Some(verifier) = &service.verifier {
        router = router.layer(axum::Extension(verifier.clone()));
    }
    router
        .merge(defaults)
        .fallback(|| async { Problem::not_found() })
        .layer(middleware::from_fn(crate::extract::read_body_first))
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(RequestBodyLimitLayer::new(BODY_LIMIT))
        .layer(middleware::from_fn(security_headers))
        .layer(middleware::from_fn_with_state(observe, observe_request))
        .layer(middleware::from_fn(request_id))
}

/// Headers every response carries unless it set its own.
pub(crate) const SECURITY_HEADERS: [(HeaderName, &str); 3] = [
    (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
    (header::X_FRAME_OPTIONS, "DENY"),
    (header::REFERRER_POLICY, "no-referrer"),
];

/// Adds the [`SECURITY_HEADERS`] a response does not set itself.
pub fn add_security_headers(headers: &mut axum::http::HeaderMap) {
    for (name, value) in SECURITY_HEADERS {
        headers
            .entry(name)
            .or_insert_with(|| HeaderValue::from_static(value));
    }
}

async fn security_headers(req: Request, next: Next) -> Response {
    let mut response = next.run(req).await;
    add_security_headers(response.headers_mut());
    response
}

/// `/healthz` and `/readyz`; readiness failures are named only when
/// `details` (an operator is asking).
fn probes(service: &Service, details: bool) -> Router {
    let checks = service.readiness.clone();
    Router::new()
        .route(
            "/healthz",
            get(|| async { axum::Json(serde_json::json!({"status": "ok"})) }),
        )
        .route(
            "/readyz",
            get(move || {
                let checks = checks.clone();
                async move { readiness(checks, details).await }
            }),
        )
}

/// Answers on a service's port while the service is being built, until
/// `done` fires: `/healthz` 200 (the process is alive), `/readyz` and every
/// other path 503 with `Retry-After`, naming what the service waits for
/// when `details` (its database at start-up: `starting` is
/// [`crate::service::ServiceContext::starting`]). The listener stays the
/// caller's; this serves a duplicate of its socket, so the service's own
/// server takes over the same port without a gap in which connections
/// are refused.
pub fn serve_starting(
    listener: &TcpListener,
    starting: tokio::sync::watch::Receiver<String>,
    details: bool,
    done: CancellationToken,
) -> std::io::Result<()> {
    let socket: std::net::TcpListener = socket2::SockRef::from(listener).try_clone()?.into();
    socket.set_nonblocking(true)?;
    let socket = TcpListener::from_std(socket)?;
    let not_ready = move || {
        let why = starting.borrow().clone();
        async move {
            let problem = if details {
                Problem::unavailable(format!("Not ready: {why}."))
            } else {
                Problem::unavailable("Not ready.")
            };
            problem.with_retry_after(1).into_response()
        }
    };
    // `Connection: close` on every answer: no client keeps a pooled
    // connection to this placeholder that would break at the hand-over.
    let router = Router::new()
        .route(
            "/healthz",
            get(|| async { axum::Json(serde_json::json!({"status": "ok"})) }),
        )
        .fallback(not_ready)
        .layer(middleware::from_fn(security_headers))
        .layer(tower_http::set_header::SetResponseHeaderLayer::overriding(
            header::CONNECTION,
            HeaderValue::from_static("close"),
        ));
    tokio::spawn(async move {
        let served = axum::serve(socket, router)
            .with_graceful_shutdown(done.cancelled_owned())
            .await;
        if let Err(e) = served {
            tracing::warn!(error = %e, "start-up placeholder listener failed");
        }
    });
    Ok(())
}

/// The operator listener's app: probes with details, `/metrics` and the
/// service's admin routes.
fn admin_app(service: &Service) -> Router {
    let name = service.name.as_str();
    probes(service, true)
        .route("/metrics", get(move || metrics_text(name)))
        .merge(service.admin_routes.clone())
        .fallback(|| async { Problem::not_found() })
        .layer(middleware::from_fn(security_headers))
}

/// `service`'s series and the process's, in Prometheus text.
pub async fn metrics_text(service: &'static str) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        crate::metrics::render(service),
    )
        .into_response()
}

async fn readiness(checks: Vec<crate::service::ReadinessCheck>, details: bool) -> Response {
    let results = futures::future::join_all(checks.iter().map(|(name, check)| {
        let name = name.clone();
        let fut = check();
        async move { (name, fut.await) }
    }))
    .await;
    let mut report = serde_json::Map::new();
    let mut failures = Vec::new();
    for (name, result) in results {
        match result {
            Ok(()) => {
                report.insert(name, "ok".into());
            }
            Err(e) => {
                report.insert(name.clone(), e.clone().into());
                failures.push(e);
            }
        }
    }
    match (failures.is_empty(), details) {
        (true, true) => {
            axum::Json(serde_json::json!({"status": "ready", "checks": report})).into_response()
        }
        (true, false) => axum::Json(serde_json::json!({"status": "ready"})).into_response(),
        (false, true) => Problem::unavailable(format!("Not ready: {}", failures.join("; ")))
            .with_retry_after(1)
            .into_response(),
        (false, false) => Problem::unavailable("Not ready.")
            .with_retry_after(1)
            .into_response(),
    }
}

/// The router behind a trailing-slash normaliser: `/api/v1/products/` and
/// `/api/v1/products` reach the same route, and the client's original URI
/// stays available as [`axum::extract::OriginalUri`] (for pagination links).
pub(crate) fn into_service(router: Router) -> NormalizedApp {
    tower::ServiceBuilder::new()
        .map_request(normalize_path as fn(Request) -> Request)
        .service(router)
}

/// A router wrapped by [`into_service`].
pub type NormalizedApp = tower::util::MapRequest<Router, fn(Request) -> Request>;

fn normalize_path(mut req: Request) -> Request {
    let uri = req.uri().clone();
    req.extensions_mut()
        .insert(axum::extract::OriginalUri(uri.clone()));
    let path = uri.path();
    if path.len() > 1 && path.ends_with('/') {
        let trimmed = path.trim_end_matches('/');
        let trimmed = if trimmed.is_empty() { "/" } else { trimmed };
        let pq = match uri.query() {
            Some(q) => format!("{trimmed}?{q}"),
            None => trimmed.to_string(),
        };
        let mut parts = uri.into_parts();
        if let Ok(p) = pq.parse() {
            parts.path_and_query = Some(p);
            if let Ok(new) = axum::http::Uri::from_parts(parts) {
                *req.uri_mut() = new;
            }
        }
    }
    req
}

/// The request's id: the client's `X-Request-ID` when sane (visible ASCII,
/// at most 200 bytes), else a new one.
pub fn request_id_of(headers: &axum::http::HeaderMap) -> HeaderValue {
    match headers.get(REQUEST_ID) {
        Some(v) if is_sane_request_id(v.as_bytes()) => v.clone(),
        _ => new_request_id(),
    }
}

/// Whether a client's `X-Request-ID` is echoed: 1–200 visible ASCII
/// characters.
pub(crate) fn is_sane_request_id(value: &[u8]) -> bool {
    !value.is_empty() && value.len() <= 200 && value.iter().all(u8::is_ascii_graphic)
}

/// Random bytes for identifiers (request and trace ids): a per-thread
/// small generator seeded from the OS, far cheaper than the thread's
/// cryptographic one. Not for secrets.
pub fn id_bytes<const N: usize>() -> [u8; N] {
    use rand::{Rng as _, SeedableRng as _};
    thread_local! {
        static RNG: std::cell::RefCell<rand::rngs::SmallRng> =
            std::cell::RefCell::new(rand::rngs::SmallRng::from_rng(&mut rand::rng()));
    }
    let mut out = [0u8; N];
    RNG.with(|rng| rng.borrow_mut().fill(&mut out[..]));
    out
}

/// A new request id: a UUIDv7 from the clock and the thread's generator (no
/// system call per request).
pub(crate) fn new_request_id() -> HeaderValue {
    let millis = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
    let random: [u8; 10] = id_bytes();
    let id = uuid::Builder::from_unix_timestamp_millis(millis, &random).into_uuid();
    let mut buf = uuid::Uuid::encode_buffer();
    HeaderValue::from_str(id.hyphenated().encode_lower(&mut buf))
        .unwrap_or_else(|_| HeaderValue::from_static("invalid"))
}

/// Echoes the client's `X-Request-ID` (when sane) or makes one (UUIDv7).
async fn request_id(mut req: Request, next: Next) -> Response {
    let value = request_id_of(req.headers());
    req.headers_mut()
        .insert(HeaderName::from_static(REQUEST_ID), value.clone());
    let mut response = next.run(req).await;
    response
        .headers_mut()
        .insert(HeaderName::from_static(REQUEST_ID), value);
    response
}

async fn observe_request(
    State(observe): State<Arc<Observe>>,
    mut req: Request,
    next: Next,
) -> Response {
    let start = Instant::now();
    let method = req.method().clone();
    let path = req
        .extensions()
        .get::<axum::extract::OriginalUri>()
        .map_or_else(|| req.uri().path().to_string(), |o| o.0.path().to_string());
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_string())
        .unwrap_or_else(|| "unmatched".into());
    let request_id = req
        .headers()
        .get(REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let trace_id = req
        .headers()
        .get("traceparent")
        .and_then(|v| v.to_str().ok())
        .and_then(crate::access::trace_id_of)
        .map(str::to_string);
    let user = crate::access::UserSlot::default();
    req.extensions_mut().insert(user.clone());
    let span = tracing::info_span!(
        "request",
        service = observe.service,
        method = %method,
        route = %route,
        request_id = %request_id,
        trace_id = trace_id.as_deref(),
        otel.name = format!("{method} {route}"),
        otel.kind = "server",
        http.request.method = %method,
        http.route = %route,
        http.response.status_code = tracing::field::Empty,
    );
    crate::telemetry::otel::set_parent_from(&span, req.headers());
    // With tracing on, the span's trace (a new one when the client sent none).
    let trace_id = crate::telemetry::otel::trace_id_of(&span).or(trace_id);
    if let Some(id) = &trace_id {
        span.record("trace_id", id.as_str());
    }
    let response =
        match tokio::time::timeout(observe.timeout, next.run(req).instrument(span.clone())).await {
            Ok(response) => response,
            Err(_) => {
                Problem::gateway_timeout("The request took too long to process.").into_response()
            }
        };
    let response = render_problem(response, &path, &request_id).await;
    let elapsed = start.elapsed();
    let status = response.status().as_u16();
    span.record("http.response.status_code", status);
    let labels = [
        ("service", observe.service.to_string()),
        ("method", method.to_string()),
        ("route", route.clone()),
        ("status", status.to_string()),
    ];
    metrics::counter!("http_requests_total", &labels).increment(1);
    metrics::histogram!("http_request_duration_seconds", &labels).record(elapsed.as_secs_f64());
    crate::access::AccessLog {
        service: observe.service,
        method: method.as_str(),
        route: &route,
        path: &path,
        status,
        duration: elapsed,
        bytes: axum::body::HttpBody::size_hint(response.body()).exact(),
        request_id: &request_id,
        trace_id: trace_id.as_deref(),
        user_id: user.get(),
    }
    .emit();
    response
}

/// Makes every error response a problem+json with `instance` and `request_id`.
async fn render_problem(response: Response, instance: &str, request_id: &str) -> Response {
    if response.status().as_u16() < 400 {
        return response;
    }
    if let Some(PendingProblem(problem)) = response.extensions().get::<PendingProblem>().cloned() {
        // Keep the parts: handlers may add headers beside the problem's own.
        let (mut parts, _) = response.into_parts();
        parts.extensions.remove::<PendingProblem>();
        let body = problem.to_body(instance, request_id).to_string();
        parts
            .headers
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        parts.headers.remove(header::CONTENT_LENGTH);
        return Response::from_parts(parts, Body::from(body));
    }
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("json"));
    if is_json {
        // Already structured (an upstream's problem passed through the gateway).
        return response;
    }
    let status = response.status();
    let (mut parts, body) = response.into_parts();
    let text = match tokio::time::timeout(Duration::from_millis(200), body.collect()).await {
        Ok(Ok(collected)) => String::from_utf8_lossy(&collected.to_bytes())
            .trim()
            .to_string(),
        _ => String::new(),
    };
    let detail = match status {
        StatusCode::NOT_FOUND => "Not found.".to_string(),
        StatusCode::METHOD_NOT_ALLOWED => "Method not allowed.".to_string(),
        StatusCode::PAYLOAD_TOO_LARGE => "Request body exceeds the 1 MiB limit.".to_string(),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => {
            "Unsupported media type; send application/json.".to_string()
        }
        _ if !text.is_empty() && text.len() < 500 => text,
        _ => status.canonical_reason().unwrap_or("Error").to_string(),
    };
    let problem = Problem::new(status, detail);
    let body = problem.to_body(instance, request_id).to_string();
    parts
        .headers
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, Body::from(body))
}

/// Runs a service until `shutdown` fires: starts its workers, serves HTTP,
/// then drains in-flight requests for up to the grace period, stops the
/// workers and closes the database.
pub async fn serve(
    mut service: Service,
    listener: TcpListener,
    options: HttpOptions,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    service.check()?;
    let name = service.name;
    let custom = service.server.take();
    let app = into_service(app(&service, &options));
    let grpc = match (service.grpc.take(), service.grpc_listener.take()) {
        (Some((routes, names)), Some(listener)) => {
            let token = shutdown.clone();
            Some(tokio::spawn(async move {
                if let Err(e) =
                    crate::grpc::serve(name.as_str(), routes, names, listener, token.clone()).await
                {
                    tracing::error!(service = name.as_str(), error = %e, "internal gRPC server failed");
                    // Without its internal port the service cannot do its job.
                    token.cancel();
                }
            }))
        }
        (Some(_), None) => {
            tracing::warn!(
                service = name.as_str(),
                "no grpc_listen: internal RPCs not served"
            );
            None
        }
        _ => None,
    };
    let admin = service.admin.take().map(|listener| {
        let token = shutdown.clone();
        let router = admin_app(&service);
        tokio::spawn(async move {
            let served = axum::serve(listener, router)
                .with_graceful_shutdown(async move { token.cancelled().await })
                .await;
            if let Err(e) = served {
                tracing::error!(service = name.as_str(), error = %e, "admin listener failed");
            }
        })
    });
    let workers: Vec<_> = service
        .workers
        .into_iter()
        .map(|(worker_name, worker)| {
            let token = shutdown.child_token();
            let span =
                tracing::info_span!("worker", service = name.as_str(), worker = %worker_name);
            tokio::spawn(worker(token).instrument(span))
        })
        .collect();
    let server: futures::future::BoxFuture<'static, anyhow::Result<()>> = match custom {
        Some(run) => run(crate::service::ServerArgs {
            listener,
            app,
            options: options.clone(),
            shutdown: shutdown.clone(),
        }),
        None => {
            let token = shutdown.clone();
            // Small responses must not wait for delayed ACKs (Nagle).
            let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
                let _ = tcp.set_nodelay(true);
            });
            let server = axum::serve(
                listener,
                axum::ServiceExt::<Request>::into_make_service_with_connect_info::<SocketAddr>(app),
            )
            .with_graceful_shutdown(async move { token.cancelled().await });
            Box::pin(async move { server.await.map_err(anyhow::Error::from) })
        }
    };
    let mut server = tokio::spawn(server);
    let result = tokio::select! {
        r = &mut server => r,
        () = shutdown.cancelled() => {
            match tokio::time::timeout(options.shutdown_grace, &mut server).await {
                Ok(r) => r,
                Err(_) => {
                    tracing::warn!(service = name.as_str(), "in-flight requests outlived the grace period");
                    server.abort();
                    Ok(Ok(()))
                }
            }
        }
    };
    shutdown.cancel();
    for task in [admin, grpc].into_iter().flatten() {
        let _ = tokio::time::timeout(options.shutdown_grace, task).await;
    }
    for worker in workers {
        if tokio::time::timeout(options.shutdown_grace, worker)
            .await
            .is_err()
        {
            tracing::warn!(service = name.as_str(), "a worker did not stop in time");
        }
    }
    if let Some(db) = &service.db {
        db.close().await;
    }
    match result {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(e),
        Err(e) => Err(anyhow::anyhow!("server task failed: {e}")),
    }
}

/// Resolves on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
}
