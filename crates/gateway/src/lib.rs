//! The API gateway: the platform's one public door. It owns no data; it
//! routes `/api/v1/...` to the owning service, hides `/internal/`, and
//! passes request ids and trace context on.

mod proxy;
mod routes;

use std::sync::Arc;

use axum::Router;
use axum::routing::any;
use bazaar_kit::{Service, ServiceContext};

pub use routes::{RouteTable, Upstream};

/// Builds the gateway from the platform configuration.
pub async fn build(ctx: ServiceContext) -> anyhow::Result<Service> {
    let table = RouteTable::from_config(&ctx.config);
    let proxy = Arc::new(proxy::Proxy::new(table, ctx.http_options().request_timeout));
    let router = Router::new()
        .route("/api/{*rest}", any(proxy::forward))
        .route("/.well-known/{*rest}", any(proxy::forward))
        .route("/internal/{*rest}", any(proxy::hidden))
        .with_state(proxy.clone());
    let mut service = ctx.service(router);
    for upstream in proxy.upstreams() {
        let proxy = proxy.clone();
        let name = upstream.name.clone();
        service = service.with_ready_check(&format!("upstream:{name}"), move || {
            let proxy = proxy.clone();
            let name = name.clone();
            Box::pin(async move { proxy.probe(&name).await })
        });
    }
    Ok(service)
}
