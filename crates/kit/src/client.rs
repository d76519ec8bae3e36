//! Service-to-service calls: the client one Bazaar service uses to call
//! another's internal gRPC API ([`ServiceClient::grpc`]), and JSON over
//! HTTP where a public route is the contract ([`ServiceClient::post_json`]).
//!
//! * **Transport**: one tonic channel per upstream service over HTTP/2,
//!   connections reused; a comma-separated `grpc_url` is a pool, balanced
//!   by tonic's channel (power of two choices over ready endpoints).
//! * **Auth**: a service token from identity's client-credentials grant
//!   (`POST /api/v1/auth/service-token/` with the caller's
//!   [`Config::client_secret`]), cached until shortly before it expires and
//!   fetched again when an upstream answers 401.
//! * **Timeouts**: every call has one ([`CallOptions::timeout`]).
//! * **Retries** with exponential backoff, only when safe: connection
//!   failures (the request never reached the upstream) always; timeouts and
//!   502/503 answers only for calls marked idempotent. Every internal call of
//!   `docs/contracts.md` is idempotent per `order_id`, so callers mark them so.
//! * **Circuit breaker** per upstream: after
//!   [`ClientOptions::breaker_threshold`] consecutive failures the upstream
//!   is not called for [`ClientOptions::breaker_cooldown`]; calls fail fast
//!   with [`ClientError::Unavailable`] (callers map it to a 503 problem).
//!   After the cool-down one trial call decides whether it closes again.
//! * **Tracing**: `x-request-id` and `traceparent` are forwarded when given.
//!
//! Errors are typed ([`ClientError`]); a non-2xx answer is
//! [`ClientError::Status`] with its body, so a caller can read contract
//! outcomes such as catalog's `409 out_of_stock`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::config::{Config, ServiceName};
use crate::error::Problem;

/// Why a call to another service failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ClientError {
    /// The upstream could not be reached, its circuit is open, or it
    /// answered 502/503 (after the retries allowed).
    #[error("{service} unavailable: {detail}")]
    Unavailable {
        /// The upstream.
        service: ServiceName,
        /// What happened.
        detail: String,
    },
    /// No answer within the call's timeout.
    #[error("{service} timed out")]
    Timeout {
        /// The upstream.
        service: ServiceName,
    },
    /// The upstream answered an RPC with a gRPC error.
    #[error("{service} answered {code:?}: {message}")]
    Rpc {
        /// The upstream.
        service: ServiceName,
        /// The gRPC status code.
        code: tonic::Code,
        /// Its message.
        message: String,
    },
    /// The upstream answered with a non-success status.
    #[error("{service} answered {status}")]
    Status {
        /// The upstream.
        service: ServiceName,
        /// HTTP status code.
        status: u16,
        /// The response body (problem+json or a contract outcome).
        body: String,
    },
}

impl ClientError {
    /// Whether the upstream refused the service token (it may have expired).
    fn is_unauthenticated(&self) -> bool {
        matches!(
            self,
            ClientError::Status { status: 401, .. }
                | ClientError::Rpc {
                    code: tonic::Code::Unauthenticated,
                    ..
                }
        )
    }

    /// The status code of a [`ClientError::Status`].
    pub fn status(&self) -> Option<u16> {
        match self {
            ClientError::Status { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// The body of a [`ClientError::Status`], parsed as `T`.
    pub fn body_as<T: DeserializeOwned>(&self) -> Option<T> {
        match self {
            ClientError::Status { body, .. } => serde_json::from_str(body).ok(),
            _ => None,
        }
    }
}

impl From<ClientError> for Problem {
    /// Unreachable/open circuit → 503, timeout → 504, anything else the
    /// upstream said → 502 (its body is logged, not passed on).
    fn from(e: ClientError) -> Self {
        match &e {
            ClientError::Unavailable { service, .. } => {
                tracing::warn!(error = %e, "upstream unavailable");
                Problem::unavailable(format!(
                    "The {service} service is unavailable; try again shortly."
                ))
                .with_retry_after(1)
            }
            ClientError::Timeout { service } => {
                Problem::gateway_timeout(format!("The {service} service did not answer in time."))
            }
            ClientError::Rpc { service, .. } => {
                tracing::warn!(error = %e, "unexpected upstream answer");
                Problem::new(
                    axum::http::StatusCode::BAD_GATEWAY,
                    format!("The {service} service gave an unexpected answer."),
                )
            }
            ClientError::Status { service, body, .. } => {
                tracing::warn!(error = %e, %body, "unexpected upstream answer");
                Problem::new(
                    axum::http::StatusCode::BAD_GATEWAY,
                    format!("The {service} service gave an unexpected answer."),
                )
            }
        }
    }
}

/// Client-wide settings.
#[derive(Clone, Debug)]
pub struct ClientOptions {
    /// Default per-call timeout.
    pub timeout: Duration,
    /// Extra attempts after the first, when a retry is safe.
    pub retries: u32,
    /// First backoff delay (doubled per retry).
    pub backoff: Duration,
    /// Consecutive failures that open an upstream's circuit.
    pub breaker_threshold: u32,
    /// How long an open circuit fails fast before a trial call.
    pub breaker_cooldown: Duration,
}

impl Default for ClientOptions {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(5),
            retries: 2,
            backoff: Duration::from_millis(50),
            breaker_threshold: 5,
            breaker_cooldown: Duration::from_millis(500),
        }
    }
}

/// Per-call settings.
#[derive(Clone, Debug, Default)]
pub struct CallOptions {
    /// Overrides [`ClientOptions::timeout`].
    pub timeout: Option<Duration>,
    /// The call may be repeated safely (retry timeouts and 502/503 too).
    pub idempotent: bool,
    /// `x-request-id` of the request being served, forwarded.
    pub request_id: Option<String>,
    /// W3C `traceparent`, forwarded.
    pub traceparent: Option<String>,
}

impl CallOptions {
    /// An idempotent call (every internal call of the contracts).
    pub fn idempotent() -> Self {
        Self {
            idempotent: true,
            ..Self::default()
        }
    }

    /// With a timeout.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }
}

#[derive(Default)]
struct Breaker {
    failures: u32,
    open_until: Option<Instant>,
}

struct Token {
    value: String,
    refresh_at: Instant,
}

struct Inner {
    caller: ServiceName,
    config: Arc<Config>,
    http: reqwest::Client,
    options: ClientOptions,
    token: tokio::sync::Mutex<Option<Token>>,
    breakers: Mutex<HashMap<ServiceName, Breaker>>,
    channels: Mutex<HashMap<ServiceName, tonic::transport::Channel>>,
}

/// Calls other services' internal APIs with a service token. Cheap to clone.
#[derive(Clone)]
pub struct ServiceClient {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for ServiceClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceClient")
            .field("caller", &self.inner.caller)
            .finish()
    }
}

#[derive(serde::Deserialize)]
struct TokenResponse {
    access_token: String,
    #[serde(default)]
    expires_in: Option<u64>,
}

enum Attempt<T = String> {
    Done(Result<T, ClientError>),
    /// Failed in a way a retry may fix; `safe` says whether it always is.
    Retry {
        error: ClientError,
        safe: bool,
    },
}

/// How a gRPC error status bears on the call: UNAVAILABLE may be retried;
/// the server's own DEADLINE_EXCEEDED (it waited for its dependency) is a
/// timeout answer, not retried here; the rest are answers.
fn rpc_failure<T>(service: ServiceName, status: tonic::Status) -> Attempt<T> {
    match status.code() {
        tonic::Code::Unavailable => Attempt::Retry {
            error: ClientError::Unavailable {
                service,
                detail: status.message().to_string(),
            },
            safe: false,
        },
        tonic::Code::DeadlineExceeded | tonic::Code::Cancelled => {
            Attempt::Done(Err(ClientError::Timeout { service }))
        }
        code => Attempt::Done(Err(ClientError::Rpc {
            service,
            code,
            message: status.message().to_string(),
        })),
    }
}

impl ServiceClient {
    /// A client for `caller`, with default options.
    pub fn new(caller: ServiceName, config: Arc<Config>) -> Self {
        Self::with_options(caller, config, ClientOptions::default())
    }

    /// A client for `caller` with `options`.
    pub fn with_options(caller: ServiceName, config: Arc<Config>, options: ClientOptions) -> Self {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(2))
            .pool_idle_timeout(Duration::from_secs(60))
            .build()
            .unwrap_or_default();
        Self {
            inner: Arc::new(Inner {
                caller,
                config,
                http,
                options,
                token: tokio::sync::Mutex::new(None),
                breakers: Mutex::new(HashMap::new()),
                channels: Mutex::new(HashMap::new()),
            }),
        }
    }

    /// POSTs `body` as JSON to `path` of `service` and decodes a 2xx answer
    /// as `T`; any other answer is [`ClientError::Status`].
    pub async fn post_json<B: Serialize + ?Sized, T: DeserializeOwned>(
        &self,
        service: ServiceName,
        path: &str,
        body: &B,
        call: &CallOptions,
    ) -> Result<T, ClientError> {
        let body = serde_json::to_vec(body).map_err(|e| ClientError::Unavailable {
            service,
            detail: format!("cannot encode request: {e}"),
        })?;
        let text = self.call(service, path, body, call).await?;
        serde_json::from_str(&text).map_err(|e| ClientError::Status {
            service,
            status: 200,
            body: format!("undecodable answer ({e}): {text}"),
        })
    }

    /// Calls an RPC of `service`'s internal gRPC API: `rpc` gets the
    /// service's channel and the request (service token, deadline, request
    /// id and `traceparent` set) and makes the call with the generated
    /// client. Retries, token refresh and the breaker work as for HTTP;
    /// UNAVAILABLE and client-side deadlines are retried only for
    /// idempotent calls.
    pub async fn grpc<Req, Resp, F, Fut>(
        &self,
        service: ServiceName,
        call: &CallOptions,
        message: Req,
        rpc: F,
    ) -> Result<Resp, ClientError>
    where
        Req: Clone,
        F: Fn(tonic::transport::Channel, tonic::Request<Req>) -> Fut,
        Fut: std::future::Future<Output = Result<tonic::Response<Resp>, tonic::Status>>,
    {
        let timeout = call.timeout.unwrap_or(self.inner.options.timeout);
        self.retrying(service, call, || async {
            match self
                .rpc_request(service, call, message.clone(), timeout)
                .await
            {
                Ok((channel, request)) => {
                    match tokio::time::timeout(timeout, rpc(channel, request)).await {
                        Ok(Ok(response)) => Attempt::Done(Ok(response.into_inner())),
                        Ok(Err(status)) => rpc_failure(service, status),
                        Err(_) => Attempt::Retry {
                            error: ClientError::Timeout { service },
                            safe: false,
                        },
                    }
                }
                Err(error) => Attempt::Retry { error, safe: true },
            }
        })
        .await
    }

    /// The channel to `service` and a request carrying the service token,
    /// deadline and trace headers.
    async fn rpc_request<Req>(
        &self,
        service: ServiceName,
        call: &CallOptions,
        message: Req,
        timeout: Duration,
    ) -> Result<(tonic::transport::Channel, tonic::Request<Req>), ClientError> {
        let token = self.token().await?;
        let channel = self.channel(service)?;
        let mut request = tonic::Request::new(message);
        request.set_timeout(timeout);
        let metadata = request.metadata_mut();
        let mut insert = |key: &'static str, value: &str| {
            if let Ok(v) = value.parse() {
                metadata.insert(key, v);
            }
        };
        insert("authorization", &format!("Bearer {token}"));
        if let Some(id) = &call.request_id {
            insert(crate::http::REQUEST_ID, id);
        }
        // With tracing on, the caller's span is the parent; else the
        // incoming `traceparent` passes through.
        if let Some(tp) = crate::telemetry::otel::current_traceparent().or(call.traceparent.clone())
        {
            insert("traceparent", &tp);
        }
        Ok((channel, request))
    }

    /// The (lazily connecting, shared) channel to `service`'s gRPC URLs.
    fn channel(&self, service: ServiceName) -> Result<tonic::transport::Channel, ClientError> {
        let mut channels = self
            .inner
            .channels
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(channel) = channels.get(&service) {
            return Ok(channel.clone());
        }
        let urls = self.inner.config.grpc_urls(service);
        let endpoints = urls
            .iter()
            .map(|url| {
                tonic::transport::Endpoint::from_shared(url.clone()).map(|e| {
                    e.connect_timeout(Duration::from_secs(2))
                        .tcp_nodelay(true)
                        .http2_keep_alive_interval(Duration::from_secs(30))
                        .keep_alive_while_idle(true)
                })
            })
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| ClientError::Unavailable {
                service,
                detail: format!("bad grpc_url: {e}"),
            })?;
        let channel = match endpoints.as_slice() {
            [] => {
                return Err(ClientError::Unavailable {
                    service,
                    detail: "no grpc_url".into(),
                });
            }
            [one] => one.connect_lazy(),
            _ => tonic::transport::Channel::balance_list(endpoints.into_iter()),
        };
        channels.insert(service, channel.clone());
        Ok(channel)
    }

    async fn call(
        &self,
        service: ServiceName,
        path: &str,
        body: Vec<u8>,
        call: &CallOptions,
    ) -> Result<String, ClientError> {
        self.retrying(service, call, || self.attempt(service, path, &body, call))
            .await
    }

    /// Runs `attempt` under the breaker until it is done: a refused token
    /// is fetched anew once; failures a retry may fix are retried with
    /// exponential backoff while the call allows it.
    async fn retrying<T, A, Fut>(
        &self,
        service: ServiceName,
        call: &CallOptions,
        attempt: A,
    ) -> Result<T, ClientError>
    where
        A: Fn() -> Fut,
        Fut: std::future::Future<Output = Attempt<T>>,
    {
        let options = &self.inner.options;
        let mut delay = options.backoff;
        let mut refreshed = false;
        let mut retries = 0;
        loop {
            self.breaker_admit(service)?;
            match attempt().await {
                Attempt::Done(Err(e)) if e.is_unauthenticated() && !refreshed => {
                    // The token may have expired or keys rotated: once, fetch a new one.
                    refreshed = true;
                    *self.inner.token.lock().await = None;
                }
                Attempt::Done(result) => {
                    self.breaker_record(service, true);
                    return result;
                }
                Attempt::Retry { error, safe } => {
                    self.breaker_record(service, false);
                    retries += 1;
                    if retries > options.retries || !(safe || call.idempotent) {
                        return Err(error);
                    }
                    tracing::debug!(%error, attempt = retries, "retrying internal call");
                    tokio::time::sleep(delay).await;
                    delay = delay.saturating_mul(2);
                }
            }
        }
    }

    async fn attempt(
        &self,
        service: ServiceName,
        path: &str,
        body: &[u8],
        call: &CallOptions,
    ) -> Attempt {
        let token = match self.token().await {
            Ok(t) => t,
            Err(error) => return Attempt::Retry { error, safe: true },
        };
        let url = format!("{}{path}", self.inner.config.url(service));
        let mut request = self
            .inner
            .http
            .post(url)
            .timeout(call.timeout.unwrap_or(self.inner.options.timeout))
            .bearer_auth(token)
            .header("content-type", "application/json")
            .body(body.to_vec());
        if let Some(id) = &call.request_id {
            request = request.header(crate::http::REQUEST_ID, id);
        }
        if let Some(tp) = crate::telemetry::otel::current_traceparent().or(call.traceparent.clone())
        {
            request = request.header("traceparent", tp);
        }
        match request.send().await {
            Ok(response) => {
                let status = response.status().as_u16();
                let text = response.text().await.unwrap_or_default();
                match status {
                    200..=299 => Attempt::Done(Ok(text)),
                    502 | 503 => Attempt::Retry {
                        error: ClientError::Unavailable {
                            service,
                            detail: format!("answered {status}"),
                        },
                        safe: false,
                    },
                    _ => Attempt::Done(Err(ClientError::Status {
                        service,
                        status,
                        body: text,
                    })),
                }
            }
            Err(e) if e.is_timeout() => Attempt::Retry {
                error: ClientError::Timeout { service },
                safe: false,
            },
            Err(e) => Attempt::Retry {
                error: ClientError::Unavailable {
                    service,
                    detail: e.to_string(),
                },
                // Only a failed connect proves the request was never seen.
                safe: e.is_connect(),
            },
        }
    }

    /// A valid service token, fetched when missing or about to expire.
    async fn token(&self) -> Result<String, ClientError> {
        let mut slot = self.inner.token.lock().await;
        if let Some(token) = slot.as_ref()
            && Instant::now() < token.refresh_at
        {
            return Ok(token.value.clone());
        }
        let identity = ServiceName::Identity;
        let secret = self
            .inner
            .config
            .client_secret(self.inner.caller)
            .map(|s| s.expose().clone())
            .unwrap_or_default();
        let url = format!(
            "{}/api/v1/auth/service-token/",
            self.inner.config.url(identity)
        );
        let body = serde_json::json!({
            "grant_type": "client_credentials",
            "client_id": self.inner.caller.as_str(),
            "client_secret": secret,
        });
        let response = self
            .inner
            .http
            .post(url)
            .timeout(self.inner.options.timeout)
            .json(&body)
            .send()
            .await
            .map_err(|e| ClientError::Unavailable {
                service: identity,
                detail: format!("service token: {e}"),
            })?;
        let status = response.status().as_u16();
        if status != 200 {
            let body = response.text().await.unwrap_or_default();
            return Err(ClientError::Status {
                service: identity,
                status,
                body,
            });
        }
        let parsed: TokenResponse = response.json().await.map_err(|e| ClientError::Status {
            service: identity,
            status,
            body: format!("bad token answer: {e}"),
        })?;
        // Refresh at 80% of the lifetime, so a token never expires in flight.
        let lifetime = Duration::from_secs(parsed.expires_in.unwrap_or(300));
        let refresh_at = Instant::now() + lifetime.mul_f64(0.8);
        *slot = Some(Token {
            value: parsed.access_token.clone(),
            refresh_at,
        });
        Ok(parsed.access_token)
    }

    fn breaker_admit(&self, service: ServiceName) -> Result<(), ClientError> {
        let mut breakers = self
            .inner
            .breakers
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let breaker = breakers.entry(service).or_default();
        match breaker.open_until {
            Some(until) if Instant::now() < until => Err(ClientError::Unavailable {
                service,
                detail: "circuit open".into(),
            }),
            Some(_) => {
                // Half-open: let this call through as the trial; keep others
                // out until it reports.
                breaker.open_until = Some(Instant::now() + self.inner.options.breaker_cooldown);
                Ok(())
            }
            None => Ok(()),
        }
    }

    fn breaker_record(&self, service: ServiceName, ok: bool) {
        let mut breakers = self
            .inner
            .breakers
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let breaker = breakers.entry(service).or_default();
        if ok {
            *breaker = Breaker::default();
            return;
        }
        breaker.failures += 1;
        if breaker.failures >= self.inner.options.breaker_threshold {
            if breaker.open_until.is_none() {
                tracing::warn!(upstream = %service, "circuit opened");
            }
            breaker.open_until = Some(Instant::now() + self.inner.options.breaker_cooldown);
        }
    }

    /// Whether `service`'s circuit is open now.
    pub fn circuit_open(&self, service: ServiceName) -> bool {
        let breakers = self
            .inner
            .breakers
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        breakers
            .get(&service)
            .and_then(|b| b.open_until)
            .is_some_and(|until| Instant::now() < until)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::Router;
    use axum::routing::post;
    use std::sync::atomic::{AtomicU32, Ordering};

    async fn serve(router: Router) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move { axum::serve(listener, router).await });
        format!("http://{addr}")
    }

    fn config(identity: &str, catalog: &str) -> Arc<Config> {
        let mut c = Config::default();
        c.identity.url = Some(identity.into());
        c.catalog.url = Some(catalog.into());
        c.orders.client_secret = Some(crate::Secret::new("s3cret".into()));
        Arc::new(c)
    }

    async fn identity(tokens: Arc<AtomicU32>) -> String {
        serve(Router::new().route(
            "/api/v1/auth/service-token/",
            post(move |body: axum::Json<serde_json::Value>| {
                let tokens = tokens.clone();
                async move {
                    assert_eq!(body["client_secret"], "s3cret");
                    assert_eq!(body["client_id"], "orders");
                    let n = tokens.fetch_add(1, Ordering::SeqCst);
                    axum::Json(serde_json::json!({
                        "access_token": format!("tok{n}"), "token_type": "Bearer", "expires_in": 300
                    }))
                }
            }),
        ))
        .await
    }

    #[tokio::test]
    async fn caches_token_refetches_on_401_and_forwards_headers() {
        let tokens = Arc::new(AtomicU32::new(0));
        let id = identity(tokens.clone()).await;
        let catalog = serve(Router::new().route(
            "/x",
            post(|headers: axum::http::HeaderMap| async move {
                let auth = headers["authorization"]
                    .to_str()
                    .unwrap_or_default()
                    .to_string();
                if auth == "Bearer tok0" {
                    return (axum::http::StatusCode::UNAUTHORIZED, String::new());
                }
                let rid = headers
                    .get("x-request-id")
                    .map(|v| v.to_str().unwrap_or_default().to_string())
                    .unwrap_or_default();
                (
                    axum::http::StatusCode::OK,
                    serde_json::json!({"rid": rid, "auth": auth}).to_string(),
                )
            }),
        ))
        .await;
        let client = ServiceClient::new(ServiceName::Orders, config(&id, &catalog));
        let call = CallOptions {
            request_id: Some("rid-1".into()),
            ..CallOptions::idempotent()
        };
        let v: serde_json::Value = client
            .post_json(ServiceName::Catalog, "/x", &serde_json::json!({}), &call)
            .await
            .expect("call");
        assert_eq!(v["rid"], "rid-1");
        assert_eq!(v["auth"], "Bearer tok1");
        let _: serde_json::Value = client
            .post_json(ServiceName::Catalog, "/x", &serde_json::json!({}), &call)
            .await
            .expect("call");
        assert_eq!(
            tokens.load(Ordering::SeqCst),
            2,
            "token cached after refetch"
        );
    }

    #[tokio::test]
    async fn statuses_are_typed_and_the_breaker_opens() {
        let tokens = Arc::new(AtomicU32::new(0));
        let id = identity(tokens).await;
        let hits = Arc::new(AtomicU32::new(0));
        let h = hits.clone();
        let catalog = serve(
            Router::new()
                .route(
                    "/conflict",
                    post(|| async { (axum::http::StatusCode::CONFLICT, "{\"a\":1}") }),
                )
                .route(
                    "/down",
                    post(move || {
                        let h = h.clone();
                        async move {
                            h.fetch_add(1, Ordering::SeqCst);
                            axum::http::StatusCode::SERVICE_UNAVAILABLE
                        }
                    }),
                ),
        )
        .await;
        let options = ClientOptions {
            retries: 1,
            backoff: Duration::from_millis(1),
            breaker_threshold: 4,
            ..ClientOptions::default()
        };
        let client =
            ServiceClient::with_options(ServiceName::Orders, config(&id, &catalog), options);
        let call = CallOptions::idempotent();
        let err = client
            .post_json::<_, serde_json::Value>(ServiceName::Catalog, "/conflict", &(), &call)
            .await
            .expect_err("409");
        assert_eq!(err.status(), Some(409));
        assert_eq!(err.body_as::<serde_json::Value>().expect("body")["a"], 1);
        for _ in 0..2 {
            let err = client
                .post_json::<_, serde_json::Value>(ServiceName::Catalog, "/down", &(), &call)
                .await
                .expect_err("503");
            assert!(matches!(err, ClientError::Unavailable { .. }), "{err:?}");
        }
        assert_eq!(hits.load(Ordering::SeqCst), 4, "one retry per call");
        assert!(client.circuit_open(ServiceName::Catalog));
        let err = client
            .post_json::<_, serde_json::Value>(ServiceName::Catalog, "/down", &(), &call)
            .await
            .expect_err("open");
        assert!(err.to_string().contains("unavailable"));
        assert_eq!(hits.load(Ordering::SeqCst), 4, "open circuit fails fast");
        let problem: Problem = err.into();
        assert_eq!(problem.status, 503);
    }

    #[tokio::test]
    async fn timeouts_are_typed() {
        let tokens = Arc::new(AtomicU32::new(0));
        let id = identity(tokens).await;
        let catalog = serve(Router::new().route(
            "/slow",
            post(|| async {
                tokio::time::sleep(Duration::from_secs(5)).await;
                "{}"
            }),
        ))
        .await;
        let client = ServiceClient::new(ServiceName::Orders, config(&id, &catalog));
        let call = CallOptions::default().timeout(Duration::from_millis(100));
        let err = client
            .post_json::<_, serde_json::Value>(ServiceName::Catalog, "/slow", &(), &call)
            .await
            .expect_err("timeout");
        assert!(matches!(err, ClientError::Timeout { .. }), "{err:?}");
    }
}
