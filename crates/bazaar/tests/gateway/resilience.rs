//! Resilience: breaker, failover between instances, timeouts, SSE streaming.

use std::time::Duration;

use bazaar_kit::ServiceName;
use reqwest::StatusCode;

use crate::harness::{Gateway, SERVICES, any_port, assert_problem, eventually, single};
use crate::upstream::{self, token};

#[tokio::test]
async fn breaker_opens_on_a_dead_upstream_and_closes_when_it_returns() {
    let toml = "breaker_failures = 3\nbreaker_open_ms = 300\nhealth_interval_ms = 200\n";
    let up = upstream::start("catalog", any_port()).await;
    let others = upstream::start("other", any_port()).await;
    let urls: Vec<_> = SERVICES
        .iter()
        .map(|s| {
            (
                *s,
                if *s == ServiceName::Catalog {
                    up.url()
                } else {
                    others.url()
                },
            )
        })
        .collect();
    let gw = Gateway::start(toml, &urls, None).await;
    assert_eq!(
        gw.get("/api/v1/products/", None).await.status(),
        StatusCode::OK
    );
    assert_eq!(gw.get("/readyz", None).await.status(), StatusCode::OK);

    let addr = up.kill().await;
    for _ in 0..3 {
        let r = gw.get("/api/v1/products/", None).await;
        assert!(r.headers().contains_key("retry-after"));
        assert_problem(r, StatusCode::SERVICE_UNAVAILABLE).await;
    }
    let r = gw.get("/api/v1/products/", None).await;
    assert!(r.headers().contains_key("retry-after"));
    let body = assert_problem(r, StatusCode::SERVICE_UNAVAILABLE).await;
    assert!(
        body["detail"]
            .as_str()
            .is_some_and(|d| d.contains("circuit open")),
        "{body}"
    );
    assert!(
        gw.metrics()
            .await
            .contains("gateway_breaker_state{service=\"gateway\",upstream=\"catalog\"} 1")
    );
    // Other upstreams are unaffected, and the gateway stays ready: one dead
    // pool must not take every gateway replica out of its Service. The
    // operator listener names the dead pool; the public port has no metrics.
    assert_eq!(
        gw.get("/api/v1/orders/", Some(&token("u"))).await.status(),
        StatusCode::OK
    );
    let upstreams = |gw: &Gateway| {
        let url = format!("{}/upstreams", gw.admin);
        let http = gw.http.clone();
        async move {
            let body: serde_json::Value = http
                .get(url)
                .send()
                .await
                .expect("upstreams")
                .json()
                .await
                .expect("json");
            body["upstreams"]
                .as_array()
                .expect("list")
                .iter()
                .find(|u| u["name"] == "catalog")
                .cloned()
                .expect("catalog pool")
        }
    };
    eventually(5, "catalog pool reported down", || async {
        let pool = upstreams(&gw).await;
        (pool["ready"] == false && pool["instances"][0]["healthy"] == false).then_some(())
    })
    .await;
    assert_eq!(upstreams(&gw).await["breaker"], "open");
    let r = gw.get("/readyz", None).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(
        r.json::<serde_json::Value>().await.expect("json"),
        serde_json::json!({"status": "ready"})
    );
    assert_eq!(
        gw.get("/metrics", None).await.status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        gw.get("/upstreams", None).await.status(),
        StatusCode::NOT_FOUND
    );

    let back = upstream::start("catalog", addr).await;
    eventually(5, "breaker closes", || async {
        (gw.get("/api/v1/products/", None).await.status() == StatusCode::OK).then_some(())
    })
    .await;
    assert!(
        gw.metrics()
            .await
            .contains("gateway_breaker_state{service=\"gateway\",upstream=\"catalog\"} 0")
    );
    assert!(back.hits() >= 1);
    eventually(5, "catalog pool ready again", || async {
        (upstreams(&gw).await["ready"] == true).then_some(())
    })
    .await;
    gw.stop().await;
}

#[tokio::test]
async fn a_killed_instance_causes_no_failed_gets_and_returns_when_healthy() {
    let toml = "health_interval_ms = 200\n";
    let a = upstream::start("a", any_port()).await;
    let b = upstream::start("b", any_port()).await;
    let others = upstream::start("other", any_port()).await;
    let urls: Vec<_> = SERVICES
        .iter()
        .map(|s| {
            let url = if *s == ServiceName::Catalog {
                format!("{},{}", a.url(), b.url())
            } else {
                others.url()
            };
            (*s, url)
        })
        .collect();
    let gw = Gateway::start(toml, &urls, None).await;
    for _ in 0..40 {
        assert_eq!(
            gw.get("/api/v1/products/", None).await.status(),
            StatusCode::OK
        );
    }
    assert!(
        a.hits() > 0 && b.hits() > 0,
        "both instances serve: {} {}",
        a.hits(),
        b.hits()
    );

    let b_url = b.url();
    let b_addr = b.kill().await;
    let a_before = a.hits();
    // Concurrent GETs right after the kill: none may fail.
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let http = gw.http.clone();
        let url = gw.url("/api/v1/products/");
        tasks.push(tokio::spawn(async move {
            let mut failures = 0;
            for _ in 0..50 {
                let r = http.get(&url).send().await.expect("request");
                if r.status() != StatusCode::OK {
                    failures += 1;
                }
            }
            failures
        }));
    }
    for t in tasks {
        assert_eq!(
            t.await.expect("task"),
            0,
            "failed GETs after an instance died"
        );
    }
    assert_eq!(
        a.hits() - a_before,
        200,
        "the live instance served every request"
    );
    let ejected = format!(
        "gateway_upstream_instance_healthy{{service=\"gateway\",upstream=\"catalog\",instance=\"{b_url}\"}} 0"
    );
    eventually(5, "dead instance ejected", || async {
        gw.metrics().await.contains(&ejected).then_some(())
    })
    .await;

    let b = upstream::start("b", b_addr).await;
    eventually(10, "revived instance gets traffic again", || async {
        let r = gw.get("/api/v1/products/", None).await;
        assert_eq!(r.status(), StatusCode::OK);
        (b.hits() > 0).then_some(())
    })
    .await;
    gw.stop().await;
}

#[tokio::test]
async fn slow_upstream_gives_504() {
    // The route answers after 5 s: a 504 (not its 200) shows the gateway
    // gave up at its own deadline.
    let (_up, gw) = single("upstream_timeout_secs = 1\n").await;
    let r = gw.get("/api/v1/payments/slow/", Some(&token("u"))).await;
    assert_problem(r, StatusCode::GATEWAY_TIMEOUT).await;
    gw.stop().await;
}

#[tokio::test]
async fn sse_streams_through_unbuffered_and_uncompressed() {
    let (up, gw) = single("").await;
    let mut r = gw
        .http
        .get(gw.url("/api/v1/orders/0190/events/"))
        .bearer_auth(token("u"))
        .header("accept-encoding", "gzip")
        .send()
        .await
        .expect("events");
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["content-type"], "text/event-stream");
    assert!(!r.headers().contains_key("content-encoding"));
    // The first event arrives while the upstream still holds the second.
    let first = tokio::time::timeout(Duration::from_secs(5), r.chunk())
        .await
        .expect("first event not buffered")
        .expect("chunk")
        .expect("some");
    assert!(String::from_utf8_lossy(&first).contains("data: pending"));
    up.shared.next_event.notify_one();
    let second = tokio::time::timeout(Duration::from_secs(5), r.chunk())
        .await
        .expect("second event")
        .expect("chunk")
        .expect("some");
    assert!(String::from_utf8_lossy(&second).contains("data: confirmed"));
    gw.stop().await;
}

#[tokio::test]
async fn upstream_connections_are_kept_alive_and_reused() {
    // One worker thread: its keep-alive cache serves every request.
    let (up, gw) = single("workers = 1\nhealth_interval_ms = 60000\n").await;
    let bearer = token("keepalive");
    // Connections are kept per pool (orders, catalog), even on one address.
    for path in ["/api/v1/orders/", "/api/v1/products/"] {
        let warm = gw.get(path, Some(&bearer)).await;
        assert_eq!(warm.status(), StatusCode::OK);
        warm.bytes().await.expect("body");
    }
    let before = up.connections();
    for i in 0..40 {
        // JSON bodies read to the end, then a HEAD (no body at all).
        let r = gw.get(&format!("/api/v1/orders/{i}/"), Some(&bearer)).await;
        assert_eq!(r.status(), StatusCode::OK);
        r.bytes().await.expect("body");
    }
    let head = gw
        .http
        .head(gw.url("/api/v1/products/"))
        .send()
        .await
        .expect("head");
    assert_eq!(head.status(), StatusCode::OK);
    let after_sequential = up.connections();
    assert_eq!(
        after_sequential, before,
        "sequential requests reuse the idle upstream connection"
    );
    // Ten at once need up to ten connections; afterwards they are idle in
    // the cache and the next burst reuses them (a connection whose response
    // is still being finished when the burst starts may be replaced: a
    // little slack, nothing like ten new ones).
    let burst = || {
        futures::future::join_all((0..10).map(|_| async {
            let r = gw.get("/api/v1/orders/", Some(&bearer)).await;
            assert_eq!(r.status(), StatusCode::OK);
            r.bytes().await.expect("body");
        }))
    };
    burst().await;
    let after_burst = up.connections();
    assert!(after_burst <= before + 10, "{before} -> {after_burst}");
    burst().await;
    let after_second = up.connections();
    assert!(
        after_second <= after_burst + 2,
        "the second burst reuses them: {after_burst} -> {after_second}"
    );
    gw.stop().await;
}
