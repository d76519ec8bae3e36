//! Foundation: the whole platform starts on port-0 listeners with fresh
//! databases (SQLite and PostgreSQL), answers health, readiness and metrics
//! through the gateway, renders errors as problem+json, and stops cleanly.

mod common;

use common::{Store, TestPlatform};
use reqwest::StatusCode;

async fn foundation(p: &TestPlatform) {
    let r = p.http.get(p.url("/healthz")).send().await.expect("healthz");
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.headers().contains_key("x-request-id"));
    assert_eq!(r.headers()["x-content-type-options"], "nosniff");

    let r = p.http.get(p.url("/readyz")).send().await.expect("readyz");
    assert_eq!(
        r.status(),
        StatusCode::OK,
        "{}",
        r.text().await.unwrap_or_default()
    );

    // Every data-owning service is ready on its own database.
    for name in bazaar_kit::ServiceName::ALL {
        let r = p
            .http
            .get(format!("{}/readyz", p.service_url(name)))
            .send()
            .await
            .expect("service readyz");
        assert_eq!(r.status(), StatusCode::OK, "{name} not ready");
    }

    // Request ids are echoed.
    let r = p
        .http
        .get(p.url("/healthz"))
        .header("x-request-id", "test-rid-42")
        .send()
        .await
        .expect("healthz");
    assert_eq!(r.headers()["x-request-id"], "test-rid-42");

    // Unknown paths and /internal/ are 404 problems through the gateway.
    for path in [
        "/nope",
        "/internal/anything",
        "/api/v1/../internal/x",
        "/api/v1/products%2F..%2Finternal",
    ] {
        let r = p.http.get(p.url(path)).send().await.expect("404");
        assert_eq!(r.status(), StatusCode::NOT_FOUND, "{path}");
        assert_eq!(
            r.headers()["content-type"],
            "application/problem+json",
            "{path}"
        );
        let body: serde_json::Value = r.json().await.expect("problem body");
        assert_eq!(body["status"], 404);
        assert!(body["request_id"].as_str().is_some_and(|s| !s.is_empty()));
        assert!(body["instance"].is_string());
    }

    // A body over 1 MiB is a 413 problem.
    let big = vec![b'x'; 1024 * 1024 + 10];
    let r = p
        .http
        .post(p.url("/api/v1/auth/register/"))
        .header("content-type", "application/json")
        .body(big)
        .send()
        .await
        .expect("413");
    assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(r.headers()["content-type"], "application/problem+json");

    // Prometheus text with per-route request counts and latency buckets.
    let metrics = p
        .http
        .get(p.url("/metrics"))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    assert!(metrics.contains("http_requests_total"), "{metrics}");
    assert!(
        metrics.contains("http_request_duration_seconds_bucket"),
        "{metrics}"
    );
}

#[tokio::test]
async fn platform_on_sqlite() {
    let p = common::start(Store::Sqlite)
        .await
        .expect("sqlite needs no server");
    foundation(&p).await;
    for name in ["identity", "catalog", "orders", "payments", "notifications"] {
        assert!(
            p.data_dir().join(format!("{name}.db")).exists(),
            "{name}.db missing"
        );
    }
    p.stop().await;
}

#[tokio::test]
async fn platform_on_postgres() {
    let Some(p) = common::start(Store::Postgres).await else {
        return;
    };
    foundation(&p).await;
    p.stop().await;
}
