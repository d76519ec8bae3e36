//! Active health checks: every instance's `/readyz`, every interval.
//! Together with passive ejection (a failed connect in the proxy) a dead
//! instance leaves the rotation within one interval and returns as soon as
//! it answers again.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::Request;
use axum::http::Uri;
use bazaar_kit::CancellationToken;

use crate::pool::{Instance, Pool};
use crate::proxy::{HttpClient, Proxy};

/// Whether one instance answers `/readyz` with 2xx within `timeout`.
pub async fn check(client: &HttpClient, instance: &Instance, timeout: Duration) -> bool {
    let Ok(uri) = format!("{}/readyz", instance.url).parse::<Uri>() else {
        return false;
    };
    let Ok(request) = Request::get(uri).body(Body::empty()) else {
        return false;
    };
    matches!(
        tokio::time::timeout(timeout, client.request(request)).await,
        Ok(Ok(response)) if response.status().is_success()
    )
}

/// Checks every instance of `pool` once, concurrently.
pub async fn check_pool(client: &HttpClient, pool: &Pool, timeout: Duration) {
    futures::future::join_all(pool.instances.iter().map(|instance| async move {
        let healthy = check(client, instance, timeout).await;
        instance.set_healthy(&pool.name, healthy);
    }))
    .await;
}

/// The health-check worker: runs until `token` is cancelled.
pub async fn run(proxy: Arc<Proxy>, interval: Duration, token: CancellationToken) {
    let timeout = interval.clamp(Duration::from_millis(200), Duration::from_secs(2));
    loop {
        futures::future::join_all(
            proxy
                .pools
                .iter()
                .map(|pool| check_pool(&proxy.client, pool, timeout)),
        )
        .await;
        tokio::select! {
            () = token.cancelled() => return,
            () = tokio::time::sleep(interval) => {}
        }
    }
}

/// Every pool's state, for the admin listener's `/upstreams`: breaker
/// state and each instance's health and requests in flight.
pub fn report(proxy: &Proxy) -> serde_json::Value {
    let pools: Vec<serde_json::Value> = proxy
        .pools
        .iter()
        .map(|pool| {
            let instances: Vec<serde_json::Value> = pool
                .instances
                .iter()
                .map(|i| {
                    serde_json::json!({
                        "url": i.url,
                        "healthy": i.is_healthy(),
                        "in_flight": i.in_flight(),
                    })
                })
                .collect();
            serde_json::json!({
                "name": pool.name,
                "ready": pool.any_healthy(),
                "breaker": pool.breaker.state_name(),
                "instances": instances,
            })
        })
        .collect();
    serde_json::json!({ "upstreams": pools })
}
