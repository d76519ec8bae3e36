//! Streaming reverse proxy: edge checks, breaker, balancing, retries
//! (idempotent, bodiless requests whose connection failed, so nothing
//! reached the upstream) and timeouts. Requests travel on the worker
//! thread's own keep-alive connections ([`crate::upstream`]).

use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, HeaderValue, Method, Request, Response, header};
use bazaar_kit::Problem;
use bazaar_kit::http::BODY_LIMIT;
use http_body_util::Limited;
use hyper::body::Incoming;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use crate::guard::Guard;
use crate::headers::{Peer, TrustedProxies, set_forwarded, strip_hop_by_hop};
use crate::pool::{Admission, Pool};
use crate::routes::{RouteTable, is_forbidden_path};
use crate::upstream::{Connections, Pooled, SendError};

/// The HTTP client used for upstreams and health checks.
pub type HttpClient = Client<HttpConnector, axum::body::Body>;

/// Forwards requests to the upstream that owns their path.
pub struct Proxy {
    /// Prefix → pool index.
    pub table: RouteTable,
    /// One pool per upstream, indexed like `table.upstreams()`.
    pub pools: Vec<Pool>,
    /// Pooled client for health checks and documents (requests travel on
    /// the workers' own connections).
    pub client: HttpClient,
    /// Edge policy.
    pub guard: Guard,
    /// Time allowed for an upstream's response head.
    pub timeout: Duration,
    /// Time allowed to open a connection to an upstream.
    pub connect_timeout: Duration,
    /// Peers whose `X-Forwarded-*` headers are believed.
    pub trusted_proxies: TrustedProxies,
}

/// Attempts per request when connections fail (idempotent, bodiless only).
pub const MAX_ATTEMPTS: usize = 3;

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

/// How an exchange with an upstream failed.
pub enum Failure {
    /// No instance could be reached (nothing was sent).
    Connect,
    /// The exchange broke after the request may have been sent.
    Other(String),
    /// No response head in time.
    Timeout,
    /// The client's body went over the limit while streaming.
    TooLarge,
}

impl Proxy {
    /// The pool that owns `path`; 404 for `/internal/`, traversal tricks
    /// and unknown prefixes.
    pub fn route(&self, path: &str) -> Result<usize, Problem> {
        if is_forbidden_path(path) {
            return Err(Problem::not_found());
        }
        self.table.route(path).ok_or_else(Problem::not_found)
    }

    /// Edge checks (rate limits, token pre-verification), then pool `idx`'s
    /// circuit breaker.
    pub async fn admit(
        &self,
        idx: usize,
        method: &Method,
        path: &str,
        authorization: Option<&[u8]>,
        client_ip: &str,
    ) -> Result<(Admission, Option<Arc<str>>), Problem> {
        let subject = self
            .guard
            .admit(method, path, authorization, Some(client_ip))
            .await?;
        let pool = &self.pools[idx];
        pool.breaker.admit().map_err(|wait| {
            metrics::counter!("gateway_upstream_errors_total", "service" => "gateway", "upstream" => pool.name.clone(), "kind" => "circuit_open")
                .increment(1);
            Problem::unavailable(format!(
                "The {} service is unavailable (circuit open); try again shortly.",
                pool.name
            ))
            .with_retry_after(wait.as_secs() + 1)
        })
        .map(|admission| (admission, subject))
    }

    /// Records an admitted exchange's outcome (breaker, latency); `ok`
    /// unless the upstream was at fault.
    pub fn record(&self, idx: usize, admission: Admission, started: Instant, ok: bool) {
        let pool = &self.pools[idx];
        pool.latency.record(started.elapsed().as_secs_f64());
        pool.breaker.record(ok);
        if admission == Admission::Probe {
            tracing::info!(upstream = %pool.name, ok, "half-open probe");
        }
    }

    /// Counts a failed exchange with pool `idx` and names the problem to
    /// answer it with.
    pub fn failed(&self, idx: usize, failure: Failure) -> Problem {
        let name = &self.pools[idx].name;
        let kind = match &failure {
            Failure::Connect => "connect",
            Failure::Other(_) => "unavailable",
            Failure::Timeout => "timeout",
            Failure::TooLarge => return too_large_problem(),
        };
        metrics::counter!("gateway_upstream_errors_total", "service" => "gateway", "upstream" => name.clone(), "kind" => kind)
            .increment(1);
        match failure {
            Failure::Timeout => {
                Problem::gateway_timeout(format!("The {name} service did not answer in time."))
            }
            Failure::Other(e) => {
                tracing::warn!(upstream = %name, error = %e, "upstream failed");
                Problem::unavailable(format!(
                    "The {name} service is unavailable; try again shortly."
                ))
                .with_retry_after(1)
            }
            Failure::Connect | Failure::TooLarge => Problem::unavailable(format!(
                "The {name} service is unavailable; try again shortly."
            ))
            .with_retry_after(1),
        }
    }

    /// Forwards one request, streaming both bodies, or says which problem
    /// to answer with.
    pub async fn forward(
        &self,
        req: Request<Incoming>,
        peer: &Peer,
        connections: &Rc<Connections>,
    ) -> Result<Response<Pooled>, Problem> {
        let raw_path = req.uri().path();
        let idx = self.route(raw_path)?;
        let too_large = req
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok())
            .is_some_and(|n| n > BODY_LIMIT as u64);
        if too_large {
            // Read the body away while the 413 goes out (nginx's lingering
            // close): closing with unread data would reset the connection
            // and the client, still sending, would never see the answer.
            tokio::task::spawn_local(discard(req.into_body()));
            return Err(too_large_problem());
        }
        let authorization = req.headers().get(header::AUTHORIZATION);
        let (admission, subject) = self
            .admit(
                idx,
                req.method(),
                raw_path,
                authorization.map(HeaderValue::as_bytes),
                peer.ip_text(),
            )
            .await?;
        // The access log names the caller the token pre-verification found.
        if let (Some(subject), Some(slot)) = (
            subject,
            req.extensions().get::<bazaar_kit::access::UserSlot>(),
        ) {
            slot.set(&subject);
        }
        let pool = &self.pools[idx];
        let (mut parts, body) = req.into_parts();
        let host = parts.headers.remove(header::HOST);
        strip_hop_by_hop(&mut parts.headers);
        set_forwarded(&mut parts.headers, peer, host);
        parts.version = axum::http::Version::HTTP_11;
        // Origin form: the upstream gets the client's path and query as sent.
        if let Some(pq) = parts.uri.path_and_query().cloned() {
            parts.uri = pq.into();
        }
        let retryable = is_idempotent(&parts.method) && has_no_body(&parts.headers);
        let mut request = Some(Request::from_parts(parts, Limited::new(body, BODY_LIMIT)));
        let mut tried = [usize::MAX; MAX_ATTEMPTS];
        let mut attempts = 0;
        let started = Instant::now();
        let outcome = loop {
            let (Some(i), Some(mut attempt)) = (pool.pick(&tried[..attempts]), request.take())
            else {
                break Err(Failure::Connect);
            };
            tried[attempts] = i;
            attempts += 1;
            let instance = &pool.instances[i];
            attempt
                .headers_mut()
                .insert(header::HOST, instance.authority.clone());
            let _in_flight = pool.start(i);
            match tokio::time::timeout(self.timeout, connections.send((idx, i), instance, attempt))
                .await
            {
                Ok(Ok(response)) => break Ok(response),
                Ok(Err(SendError::Connect(e, unsent))) => {
                    instance.set_healthy(&pool.name, false);
                    tracing::warn!(upstream = %pool.name, instance = %instance.url, error = %e, "connect failed");
                    if !(retryable && attempts < MAX_ATTEMPTS.min(pool.instances.len())) {
                        break Err(Failure::Connect);
                    }
                    // Nothing was sent: the same request goes to another instance.
                    request = Some(unsent);
                }
                Ok(Err(SendError::Other(e))) => {
                    break Err(if is_over_limit(&e) {
                        Failure::TooLarge
                    } else {
                        Failure::Other(error_chain(&e))
                    });
                }
                Err(_) => break Err(Failure::Timeout),
            }
        };
        let upstream_ok = matches!(outcome, Ok(_) | Err(Failure::TooLarge));
        self.record(idx, admission, started, upstream_ok);
        let mut response = outcome.map_err(|failure| self.failed(idx, failure))?;
        strip_hop_by_hop(response.headers_mut());
        Ok(response)
    }
}

/// Bytes and time a refused body may take to be read away before the
/// connection is closed on it.
const DISCARD_LIMIT: usize = 64 * 1024 * 1024;
const DISCARD_TIME: Duration = Duration::from_secs(5);

async fn discard(mut body: Incoming) {
    use http_body_util::BodyExt as _;
    let _ = tokio::time::timeout(DISCARD_TIME, async move {
        let mut read = 0usize;
        while let Some(Ok(frame)) = body.frame().await {
            read += frame.data_ref().map_or(0, bytes::Bytes::len);
            if read > DISCARD_LIMIT {
                break;
            }
        }
    })
    .await;
}

pub fn too_large_problem() -> Problem {
    Problem::new(
        axum::http::StatusCode::PAYLOAD_TOO_LARGE,
        "Request body exceeds the 1 MiB limit.",
    )
}

/// Whether the client's body went over [`BODY_LIMIT`] while streaming.
fn is_over_limit(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cause = Some(e);
    while let Some(e) = cause {
        if e.is::<http_body_util::LengthLimitError>() {
            return true;
        }
        cause = e.source();
    }
    false
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

pub fn is_idempotent(method: &Method) -> bool {
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
