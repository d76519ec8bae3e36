//! Tiny upstreams for the gateway tests: each plays one or more services
//! on a port-0 (or given) listener, counts its hits, reports the headers
//! it saw (and the body), serves a test JWKS, an SSE stream, a chunked
//! JSON stream and a slow route.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// RFC 8032 test vector 1 (also RFC 8037's example): an Ed25519 key pair.
const SEED_HEX: &str = "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60";
const PUBLIC_X: &str = "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo";
const KID: &str = "gateway-test";

/// An access token for `sub`, signed with the test key the upstreams publish.
pub fn token(sub: &str) -> String {
    let mut der = hex("302e020100300506032b657004220420");
    der.extend(hex(SEED_HEX));
    let key = EncodingKey::from_ed_der(&der);
    let mut header = Header::new(Algorithm::EdDSA);
    header.kid = Some(KID.into());
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    let claims = serde_json::json!({
        "iss": bazaar_kit::auth::ISSUER, "aud": bazaar_kit::auth::API_AUDIENCE,
        "sub": sub, "exp": now + 600, "iat": now, "jti": uuid::Uuid::new_v4().to_string(),
        "token_type": "access", "username": sub, "is_staff": false,
    });
    jsonwebtoken::encode(&header, &claims, &key).expect("sign")
}

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
        .collect()
}

/// Shared state of one upstream.
pub struct Shared {
    /// Name reported in responses.
    pub name: String,
    /// Requests to `/api/...` served.
    pub hits: AtomicUsize,
    /// Lets the SSE route send its second event.
    pub next_event: Notify,
    /// TCP connections accepted.
    pub connections: AtomicUsize,
    /// Every request received, as `METHOD path?query`.
    pub seen: std::sync::Mutex<Vec<String>>,
}

/// A running upstream.
pub struct Upstream {
    /// Where it listens.
    pub addr: SocketAddr,
    /// Its state.
    pub shared: Arc<Shared>,
    stop: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

impl Upstream {
    /// Base URL.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Requests served so far.
    pub fn hits(&self) -> usize {
        self.shared.hits.load(Ordering::SeqCst)
    }

    /// Every request received so far (`METHOD path?query`).
    pub fn seen(&self) -> Vec<String> {
        self.shared.seen.lock().expect("seen").clone()
    }

    /// TCP connections accepted so far.
    pub fn connections(&self) -> usize {
        self.shared.connections.load(Ordering::SeqCst)
    }

    /// Stops it (graceful: in-flight requests finish, keep-alives close).
    pub async fn kill(self) -> SocketAddr {
        self.stop.cancel();
        let _ = tokio::time::timeout(Duration::from_secs(5), self.task).await;
        self.addr
    }
}

/// Starts an upstream named `name` on `addr` (port 0 for a fresh one).
pub async fn start(name: &str, addr: SocketAddr) -> Upstream {
    let shared = Arc::new(Shared {
        name: name.into(),
        hits: AtomicUsize::new(0),
        next_event: Notify::new(),
        connections: AtomicUsize::new(0),
        seen: std::sync::Mutex::new(Vec::new()),
    });
    let app = Router::new()
        .route("/readyz", get(|| async { "ok" }))
        .route("/.well-known/jwks.json", get(jwks))
        .route("/openapi.json", get(openapi))
        .route("/api/v1/orders/{id}/events/", get(events))
        .route("/api/v1/payments/slow/", get(slow))
        .route("/api/v1/payments/chunked/", get(chunked))
        .route("/api/{*rest}", any(echo))
        .fallback(unknown)
        .with_state(shared.clone());
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .expect("bind upstream");
    let addr = listener.local_addr().expect("addr");
    let counted = shared.clone();
    let listener = axum::serve::ListenerExt::tap_io(listener, move |_| {
        counted.connections.fetch_add(1, Ordering::SeqCst);
    });
    let stop = CancellationToken::new();
    let token = stop.clone();
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app)
            .with_graceful_shutdown(async move { token.cancelled().await })
            .await;
    });
    Upstream {
        addr,
        shared,
        stop,
        task,
    }
}

async fn jwks() -> impl IntoResponse {
    axum::Json(serde_json::json!({"keys": [{
        "kty": "OKP", "crv": "Ed25519", "x": PUBLIC_X, "kid": KID, "alg": "EdDSA", "use": "sig"
    }]}))
}

async fn openapi(State(s): State<Arc<Shared>>) -> Response {
    if s.name != "catalog" {
        // Tolerated: a service without a document yet.
        return axum::http::StatusCode::NOT_FOUND.into_response();
    }
    axum::Json(serde_json::json!({
        "openapi": "3.1.0", "info": {"title": "catalog", "version": "1"},
        "paths": {
            "/api/v1/products/": {"get": {"responses": {"200": {"description": "ok"}}}},
            "/internal/products/lookup": {"post": {"responses": {"200": {"description": "ok"}}}}
        },
        "components": {"schemas": {"Product": {"type": "object"}}}
    }))
    .into_response()
}

fn record(s: &Shared, req: &Request) {
    let target = req.uri().path_and_query().map_or("", |p| p.as_str());
    s.seen
        .lock()
        .expect("seen")
        .push(format!("{} {target}", req.method()));
}

async fn unknown(State(s): State<Arc<Shared>>, req: Request) -> Response {
    record(&s, &req);
    axum::http::StatusCode::NOT_FOUND.into_response()
}

async fn echo(State(s): State<Arc<Shared>>, req: Request) -> Response {
    s.hits.fetch_add(1, Ordering::SeqCst);
    record(&s, &req);
    let (parts, body) = req.into_parts();
    let header = |n: &str| {
        parts
            .headers
            .get(n)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let body = axum::body::to_bytes(body, 4 << 20)
        .await
        .unwrap_or_default();
    axum::Json(serde_json::json!({
        "upstream": s.name,
        "method": parts.method.as_str(),
        "path": parts.uri.path_and_query().map(|p| p.as_str()),
        "body": String::from_utf8_lossy(&body),
        "x_forwarded_for": header("x-forwarded-for"),
        "x_forwarded_host": header("x-forwarded-host"),
        "x_forwarded_proto": header("x-forwarded-proto"),
        "traceparent": header("traceparent"),
        "x_request_id": header("x-request-id"),
        "x_hop": header("x-hop"),
        "authorization": header("authorization").is_some(),
        "padding": "x".repeat(400),
    }))
    .into_response()
}

async fn events(State(s): State<Arc<Shared>>) -> Response {
    let stream = futures::stream::unfold(0u8, move |step| {
        let s = s.clone();
        async move {
            match step {
                0 => Some((
                    Ok::<_, Infallible>(bytes::Bytes::from("event: status\ndata: pending\n\n")),
                    1,
                )),
                1 => {
                    s.next_event.notified().await;
                    Some((
                        Ok(bytes::Bytes::from("event: status\ndata: confirmed\n\n")),
                        2,
                    ))
                }
                _ => None,
            }
        }
    });
    Response::builder()
        .header(header::CONTENT_TYPE, "text/event-stream")
        .header(header::CACHE_CONTROL, "no-cache")
        .body(Body::from_stream(stream))
        .expect("sse response")
}

/// A JSON body streamed in three chunks (no length, not an event stream).
async fn chunked() -> Response {
    let parts = ["[1,", "2,", "3]"].map(|p| Ok::<_, Infallible>(bytes::Bytes::from(p)));
    Response::builder()
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from_stream(futures::stream::iter(parts)))
        .expect("chunked response")
}

async fn slow() -> &'static str {
    tokio::time::sleep(Duration::from_secs(5)).await;
    "late"
}
