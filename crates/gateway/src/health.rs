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

/// Readiness of one pool: an instance marked healthy, or (when none is)
/// one that answers right now.
pub async fn ready(proxy: &Proxy, idx: usize) -> Result<(), String> {
    let pool = &proxy.pools[idx];
    if pool.any_healthy() {
        return Ok(());
    }
    check_pool(&proxy.client, pool, Duration::from_secs(1)).await;
    if pool.any_healthy() {
        Ok(())
    } else {
        Err(format!("{}: no ready instance", pool.name))
    }
}
