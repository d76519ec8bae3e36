//! The gateway's HTTP/1.1 server, built like nginx: one acceptor hands
//! connections round-robin to worker threads, each a single-threaded
//! runtime with its own upstream keep-alive connections, so a proxied
//! request never crosses threads. hyper serves every connection: `/api/`
//! and `/.well-known/` go through the proxy (request id, security headers,
//! metrics, CORS, compression and problem bodies done here), every other
//! path through the kit's app (docs, `/openapi.json`, `/healthz`,
//! `/readyz`, 404s).

use std::cell::RefCell;
use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::body::Body as AppBody;
use axum::extract::ConnectInfo;
use axum::http::{HeaderName, HeaderValue, Method, Request, Response, header};
use bazaar_kit::http::{NormalizedApp, REQUEST_ID, add_security_headers, request_id_of};
use bazaar_kit::service::{Server, ServerArgs};
use bazaar_kit::{CancellationToken, Problem};
use bytes::Bytes;
use futures::future::LocalBoxFuture;
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio_util::task::TaskTracker;
use tower::{Service, ServiceBuilder, ServiceExt as _};
use tower_http::compression::{Compression, CompressionBody, CompressionLayer};
use tower_http::cors::{Cors, CorsLayer};
use tracing::Instrument as _;

use crate::proxy::Proxy;
use crate::upstream::{Connections, Pooled};

const X_REQUEST_ID: HeaderName = HeaderName::from_static(REQUEST_ID);

/// The gateway's server for [`bazaar_kit::Service::with_server`]:
/// `workers` threads (0: one per core).
pub fn server(proxy: Arc<Proxy>, cors: Option<CorsLayer>, workers: usize) -> Server {
    Box::new(move |args| Box::pin(run(proxy, cors, workers, args)))
}

async fn run(
    proxy: Arc<Proxy>,
    cors: Option<CorsLayer>,
    workers: usize,
    args: ServerArgs,
) -> anyhow::Result<()> {
    let ServerArgs {
        listener,
        app,
        options,
        shutdown,
    } = args;
    let workers = match workers {
        0 => std::thread::available_parallelism().map_or(1, std::num::NonZero::get),
        n => n,
    };
    let mut queues = Vec::with_capacity(workers);
    let mut finished = Vec::with_capacity(workers);
    for i in 0..workers {
        let (queue, inbox) = tokio::sync::mpsc::unbounded_channel();
        let (done, done_rx) = tokio::sync::oneshot::channel::<()>();
        let worker = Worker {
            proxy: proxy.clone(),
            cors: cors.clone(),
            app: app.clone(),
            shutdown: shutdown.clone(),
            grace: options.shutdown_grace,
        };
        std::thread::Builder::new()
            .name(format!("gateway-{i}"))
            .spawn(move || {
                worker.run(inbox);
                let _ = done.send(());
            })?;
        queues.push(queue);
        finished.push(done_rx);
    }
    let mut next = 0usize;
    loop {
        tokio::select! {
            () = shutdown.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    let _ = stream.set_nodelay(true);
                    match stream.into_std() {
                        Ok(stream) => {
                            let _ = queues[next % workers].send((stream, peer));
                            next = next.wrapping_add(1);
                        }
                        Err(e) => tracing::warn!(error = %e, "cannot hand over a connection"),
                    }
                }
                Err(e) => {
                    // Out of file descriptors and the like: back off, retry.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
    }
    drop(listener);
    drop(queues);
    for done in finished {
        let _ = done.await;
    }
    Ok(())
}

struct Worker {
    proxy: Arc<Proxy>,
    cors: Option<CorsLayer>,
    app: NormalizedApp,
    shutdown: CancellationToken,
    grace: Duration,
}

type Inbox = tokio::sync::mpsc::UnboundedReceiver<(std::net::TcpStream, SocketAddr)>;

impl Worker {
    fn run(self, mut inbox: Inbox) {
        let runtime = match tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        {
            Ok(runtime) => runtime,
            Err(e) => {
                tracing::error!(error = %e, "cannot start a gateway worker");
                return;
            }
        };
        let local = tokio::task::LocalSet::new();
        local.block_on(&runtime, async move {
            let shutdown = self.shutdown.clone();
            let grace = self.grace;
            let state = Rc::new(Local {
                connections: Connections::new(self.proxy.connect_timeout),
                proxy: self.proxy,
                app: self.app,
                cors: self.cors,
                shutdown: self.shutdown,
                metrics: RefCell::new(HashMap::default()),
            });
            let tracker = TaskTracker::new();
            loop {
                tokio::select! {
                    () = shutdown.cancelled() => break,
                    next = inbox.recv() => match next {
                        Some((stream, peer)) => {
                            tracker.spawn_local(connection(state.clone(), stream, peer));
                        }
                        None => break,
                    }
                }
            }
            tracker.close();
            let drained = async {
                shutdown.cancelled().await;
                tokio::time::sleep(grace).await;
            };
            tokio::select! {
                () = tracker.wait() => {}
                () = drained => tracing::warn!("gateway connections outlived the grace period"),
            }
        });
    }
}

type MetricHandles = HashMap<
    (&'static str, Method, u16),
    (metrics::Counter, metrics::Histogram),
    foldhash::fast::RandomState,
>;

/// What one worker thread shares between its connections.
struct Local {
    proxy: Arc<Proxy>,
    app: NormalizedApp,
    cors: Option<CorsLayer>,
    shutdown: CancellationToken,
    connections: Rc<Connections>,
    /// `http_requests_total` and `http_request_duration_seconds` handles by
    /// (route, method, status): no registry lookup per request.
    metrics: RefCell<MetricHandles>,
}

/// Serves one client connection with hyper.
async fn connection(state: Rc<Local>, stream: std::net::TcpStream, peer: SocketAddr) {
    let Ok(io) = tokio::net::TcpStream::from_std(stream) else {
        return;
    };
    let dispatch = Dispatch {
        state: state.clone(),
        peer: Rc::new(crate::headers::Peer::new(
            peer,
            &state.proxy.trusted_proxies,
        )),
    };
    let stack = ServiceBuilder::new()
        .option_layer(state.cors.clone())
        .layer(CompressionLayer::new())
        .service(dispatch);
    let edge = Edge {
        state: state.clone(),
        stack: Rc::new(stack),
    };
    let mut builder = hyper::server::conn::http1::Builder::new();
    // The timer enables hyper's 30-s limit on reading a request head.
    builder.timer(TokioTimer::new());
    let conn = builder.serve_connection(TokioIo::new(io), TowerToHyperService::new(edge));
    tokio::pin!(conn);
    tokio::select! {
        _ = conn.as_mut() => {}
        () = state.shutdown.cancelled() => {
            conn.as_mut().graceful_shutdown();
            let _ = conn.await;
        }
    }
}

/// The span of a proxied request.
fn request_span(method: &Method, route: &'static str, request_id: &HeaderValue) -> tracing::Span {
    tracing::info_span!(
        "request",
        service = "gateway",
        method = %method,
        route,
        request_id = request_id.to_str().unwrap_or_default(),
        otel.name = format!("{method} {route}"),
        otel.kind = "server",
        http.request.method = %method,
        http.route = route,
    )
}

/// The metrics route of a proxied path; `None` for the kit app's paths.
fn proxied_route(path: &str) -> Option<&'static str> {
    if path.starts_with("/api/") {
        Some("/api/{*rest}")
    } else if path.starts_with("/.well-known/") {
        Some("/.well-known/{*rest}")
    } else {
        None
    }
}

/// CORS (when configured) and compression (tower-http's: its predicate
/// decides, and sets `Vary`) around [`Dispatch`].
type Stack = tower::util::Either<Cors<Compression<Dispatch>>, Compression<Dispatch>>;

/// What the edge answers with.
type EdgeResponse = Response<CompressionBody<EdgeBody>>;

/// The outermost service: request id, span, metrics and security headers
/// around [`Stack`].
#[derive(Clone)]
struct Edge {
    state: Rc<Local>,
    stack: Rc<Stack>,
}

impl Edge {
    fn respond(
        stack: &Stack,
        req: Request<Incoming>,
    ) -> LocalBoxFuture<'static, Result<EdgeResponse, Infallible>> {
        // Boxed once here: the layers' futures are large, and moving them
        // through the span and the edge's own future would copy them.
        Box::pin(stack.clone().oneshot(req))
    }
}

impl Service<Request<Incoming>> for Edge {
    type Response = EdgeResponse;
    type Error = Infallible;
    type Future = LocalBoxFuture<'static, Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, mut req: Request<Incoming>) -> Self::Future {
        let state = self.state.clone();
        let stack = self.stack.clone();
        Box::pin(async move {
            let started = Instant::now();
            let route = proxied_route(req.uri().path());
            let request_id = request_id_of(req.headers());
            req.headers_mut().insert(X_REQUEST_ID, request_id.clone());
            let method = req.method().clone();
            // The trace starts here when the client did not start one, so
            // the access log names the trace id every hop shares.
            let path = route.map(|_| req.uri().path().to_string());
            let user = bazaar_kit::access::UserSlot::default();
            if route.is_some() {
                req.extensions_mut().insert(user.clone());
            }
            let mut trace_id = None;
            let mut response = if let Some(route) = route {
                let span = request_span(&method, route, &request_id);
                trace_id = crate::headers::trace(&span, req.headers_mut());
                Self::respond(&stack, req).instrument(span).await?
            } else {
                // The kit app observes its own requests.
                Self::respond(&stack, req).await?
            };
            let headers = response.headers_mut();
            headers.insert(X_REQUEST_ID, request_id);
            add_security_headers(headers);
            if let Some(route) = route {
                let status = response.status().as_u16();
                bazaar_kit::access::AccessLog {
                    service: "gateway",
                    method: method.as_str(),
                    route,
                    path: path.as_deref().unwrap_or_default(),
                    status,
                    duration: started.elapsed(),
                    bytes: response.body().size_hint().exact(),
                    request_id: response
                        .headers()
                        .get(X_REQUEST_ID)
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or_default(),
                    trace_id: trace_id.as_deref(),
                    user_id: user.get(),
                }
                .emit();
                state.record(route, method, status, started);
            }
            Ok(response)
        })
    }
}

impl Local {
    fn record(&self, route: &'static str, method: Method, status: u16, started: Instant) {
        let elapsed = started.elapsed().as_secs_f64();
        let mut cache = self.metrics.borrow_mut();
        let (counter, histogram) =
            cache
                .entry((route, method, status))
                .or_insert_with_key(|(route, method, status)| {
                    let labels = [
                        ("service", "gateway".to_string()),
                        ("method", method.to_string()),
                        ("route", (*route).to_string()),
                        ("status", status.to_string()),
                    ];
                    (
                        metrics::counter!("http_requests_total", &labels),
                        metrics::histogram!("http_request_duration_seconds", &labels),
                    )
                });
        counter.increment(1);
        histogram.record(elapsed);
    }
}

/// Sends proxied paths upstream and the rest to the kit app.
#[derive(Clone)]
struct Dispatch {
    state: Rc<Local>,
    peer: Rc<crate::headers::Peer>,
}

impl Service<Request<Incoming>> for Dispatch {
    type Response = Response<EdgeBody>;
    type Error = Infallible;
    type Future = LocalBoxFuture<'static, Result<Response<EdgeBody>, Infallible>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<Incoming>) -> Self::Future {
        let state = self.state.clone();
        let peer = self.peer.clone();
        Box::pin(async move {
            if crate::headers::names_framing_header(req.headers()) {
                // A client that hides its framing from the next hop is
                // attempting request smuggling: refuse, and end the
                // connection rather than guess where its next request starts.
                let request_id = req.headers().get(X_REQUEST_ID);
                let problem = Problem::bad_request(
                    "The Connection header may not name Content-Length, Transfer-Encoding or Host.",
                )
                .with_header(header::CONNECTION, HeaderValue::from_static("close"));
                return Ok(render(&problem, req.uri().path(), request_id));
            }
            if proxied_route(req.uri().path()).is_none() {
                let mut req = req.map(AppBody::new);
                req.extensions_mut().insert(ConnectInfo(peer.addr));
                let response = state.app.clone().oneshot(req).await?;
                return Ok(response.map(EdgeBody::App));
            }
            let uri = req.uri().clone();
            let request_id = req.headers().get(X_REQUEST_ID).cloned();
            match state.proxy.forward(req, &peer, &state.connections).await {
                Ok(response) => Ok(response.map(EdgeBody::Upstream)),
                Err(problem) => Ok(render(&problem, uri.path(), request_id.as_ref())),
            }
        })
    }
}

fn render(
    problem: &Problem,
    instance: &str,
    request_id: Option<&HeaderValue>,
) -> Response<EdgeBody> {
    let id = request_id.and_then(|v| v.to_str().ok()).unwrap_or_default();
    problem.render(instance, id).map(EdgeBody::App)
}

/// A response body: an upstream's (streamed, connection pooled) or one the
/// gateway made.
pub enum EdgeBody {
    /// Streamed from an upstream.
    Upstream(Pooled),
    /// Made here or by the kit app.
    App(AppBody),
}

impl Default for EdgeBody {
    fn default() -> Self {
        Self::App(AppBody::empty())
    }
}

impl Body for EdgeBody {
    type Data = Bytes;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        match self.get_mut() {
            Self::Upstream(body) => Pin::new(body).poll_frame(cx).map_err(Into::into),
            Self::App(body) => Pin::new(body).poll_frame(cx).map_err(Into::into),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            Self::Upstream(body) => body.is_end_stream(),
            Self::App(body) => body.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            Self::Upstream(body) => body.size_hint(),
            Self::App(body) => body.size_hint(),
        }
    }
}
