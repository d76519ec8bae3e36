//! The API gateway: the platform's one public door. It owns no data; it
//! routes `/api/v1/...` to the owning service's pool, hides `/internal/`,
//! pre-verifies JWTs, rate-limits per IP and per user, balances and
//! health-checks instances, breaks circuits, and serves one merged OpenAPI
//! document with offline Swagger UI.

mod config;
mod docs;
mod edge;
mod guard;
mod headers;
mod health;
mod limit;
mod pool;
mod proxy;
mod routes;
mod upstream;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::http::{HeaderValue, Method, header};
use axum::routing::{any, get};
use bazaar_kit::{Service, ServiceContext, ServiceName};
use tower_http::cors::{AllowOrigin, CorsLayer};

pub use config::{GatewaySettings, Limit};
pub use routes::{RouteTable, Upstream};

/// Builds the gateway from the platform configuration.
pub async fn build(ctx: ServiceContext) -> anyhow::Result<Service> {
    let settings: GatewaySettings = ctx
        .config
        .section(ServiceName::Gateway)
        .map_err(|e| anyhow::anyhow!("gateway settings: {e}"))?;
    let table =
        RouteTable::from_config(&ctx.config, &settings.routes).map_err(|e| anyhow::anyhow!(e))?;
    // Metric handles below need the recorder installed first.
    bazaar_kit::metrics::describe(describe_metrics);
    let open_for = Duration::from_millis(settings.breaker_open_ms.max(1));
    let pools = table
        .upstreams()
        .iter()
        .map(|u| pool::Pool::new(u, settings.breaker_failures, open_for))
        .collect();
    let limiter = limit::Limiter::new(
        ctx.config.redis_url.as_ref().map(|s| s.expose().as_str()),
        &settings.rate_limit_prefix,
    )?;
    let timeout = settings
        .upstream_timeout_secs
        .map_or(ctx.http_options().request_timeout, Duration::from_secs);
    let connect_timeout = Duration::from_millis(settings.connect_timeout_ms.max(1));
    let trusted_proxies = headers::TrustedProxies::parse(&settings.trusted_proxies)
        .map_err(|e| anyhow::anyhow!(e))?;
    let proxy = Arc::new(proxy::Proxy {
        table,
        pools,
        client: proxy::client(connect_timeout),
        connect_timeout,
        guard: guard::Guard::new(settings.clone(), limiter, ctx.verifier.clone()),
        timeout,
        trusted_proxies,
    });
    let docs = Arc::new(docs::Docs::new(
        proxy.clone(),
        Duration::from_secs(settings.openapi_cache_secs),
    ));
    let docs_router = Router::new()
        .route("/openapi.json", get(docs::openapi))
        .route("/docs", get(docs::ui_index))
        .route("/docs/{*file}", get(docs::ui_asset))
        .with_state(docs);
    // `/api/` and `/.well-known/` never reach this router: the edge
    // server proxies them (see `edge`).
    let router = Router::new()
        .route(
            "/internal/{*rest}",
            any(|| async { bazaar_kit::Problem::not_found() }),
        )
        .merge(docs_router);
    // The gateway is ready when it can serve: one empty pool makes that
    // pool's routes answer 503, it does not take the whole edge out of
    // rotation. Per-upstream state is on the admin listener.
    let upstreams = proxy.clone();
    let admin = Router::new().route(
        "/upstreams",
        get(move || {
            let proxy = upstreams.clone();
            async move { axum::Json(health::report(&proxy)) }
        }),
    );
    let service = ctx
        .service(router)
        .with_admin_routes(admin)
        .with_server(edge::server(
            proxy.clone(),
            cors(&settings.cors_origins),
            settings.workers,
        ));
    let interval = Duration::from_millis(settings.health_interval_ms.max(100));
    let checker = proxy.clone();
    Ok(service.with_worker("health-checks", move |token| {
        Box::pin(health::run(checker, interval, token))
    }))
}

/// CORS for the configured origins (`*` = any); `None` when none are.
fn cors(origins: &[String]) -> Option<CorsLayer> {
    if origins.is_empty() {
        return None;
    }
    let allow = if origins.iter().any(|o| o == "*") {
        AllowOrigin::any()
    } else {
        AllowOrigin::list(
            origins
                .iter()
                .filter_map(|o| HeaderValue::from_str(o.trim_end_matches('/')).ok()),
        )
    };
    Some(
        CorsLayer::new()
            .allow_origin(allow)
            .allow_methods([
                Method::GET,
                Method::HEAD,
                Method::POST,
                Method::PUT,
                Method::PATCH,
                Method::DELETE,
                Method::OPTIONS,
            ])
            .allow_headers([
                header::AUTHORIZATION,
                header::CONTENT_TYPE,
                header::ACCEPT,
                header::HeaderName::from_static("idempotency-key"),
                header::HeaderName::from_static("x-request-id"),
            ])
            .expose_headers([
                header::HeaderName::from_static("x-request-id"),
                header::RETRY_AFTER,
                header::LOCATION,
            ])
            .max_age(Duration::from_secs(600)),
    )
}

/// The gateway's own metric families.
fn describe_metrics() {
    use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};
    describe_histogram!(
        "gateway_upstream_duration_seconds",
        Unit::Seconds,
        "Time an upstream took to answer a proxied request (to the response head), by upstream."
    );
    describe_counter!(
        "gateway_upstream_errors_total",
        "Proxied requests that got no upstream answer, by upstream and kind (connect, timeout, unavailable, circuit_open)."
    );
    describe_gauge!(
        "gateway_breaker_state",
        "Circuit breaker per upstream: 0 closed, 1 open, 2 half-open."
    );
    describe_gauge!(
        "gateway_upstream_instance_healthy",
        "Whether an upstream instance is in rotation (1) or ejected by health checks (0)."
    );
    describe_counter!(
        "gateway_rate_limited_total",
        "Requests refused with 429 by the rate limits."
    );
    describe_counter!(
        "gateway_rate_limit_redis_errors_total",
        "Rate-limit checks that fell back to local limiting because Redis failed."
    );
}
