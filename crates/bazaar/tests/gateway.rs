//! The API gateway as a black box: routing and edge headers, `/internal/`
//! hidden, JWT pre-verification, rate limits (in memory, and shared through
//! Redis by two gateway instances), breaker, failover, timeouts, SSE, body
//! limit, CORS, compression and the offline docs. Upstreams are tiny axum
//! servers on port 0 (tests/gateway/upstream.rs).

mod common;
#[path = "gateway/upstream.rs"]
mod upstream;

use std::net::SocketAddr;
use std::time::Duration;

use bazaar::Running;
use bazaar_kit::{Config, ServiceName};
use reqwest::StatusCode;
use upstream::{Upstream, token};

const SERVICES: [ServiceName; 5] = [
    ServiceName::Identity,
    ServiceName::Catalog,
    ServiceName::Orders,
    ServiceName::Payments,
    ServiceName::Notifications,
];

fn any_port() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

/// One gateway in front of `urls` (service → comma-separated URLs), with
/// `toml` as the `[gateway]` table body.
struct Gateway {
    running: Option<Running>,
    base: String,
    http: reqwest::Client,
    _dir: tempfile::TempDir,
}

impl Gateway {
    async fn start(toml: &str, urls: &[(ServiceName, String)], redis: Option<&str>) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let file = dir.path().join("bazaar.toml");
        std::fs::write(&file, format!("[gateway]\n{toml}\n")).expect("write config");
        let mut config = Config::load(Some(&file)).expect("config loads");
        config.data_dir = dir.path().to_path_buf();
        config.log_level = "warn".into();
        config.redis_url = redis.map(|r| bazaar_kit::Secret::new(r.to_string()));
        config.gateway.listen = Some(any_port());
        for (name, url) in urls {
            config.service_mut(*name).url = Some(url.clone());
        }
        let running = bazaar::start(config, &[ServiceName::Gateway])
            .await
            .expect("gateway starts");
        let base = running.gateway_url().expect("gateway url");
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(20))
            .redirect(reqwest::redirect::Policy::limited(3))
            .build()
            .expect("client");
        Self {
            running: Some(running),
            base,
            http,
            _dir: dir,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    async fn get(&self, path: &str, bearer: Option<&str>) -> reqwest::Response {
        let mut req = self.http.get(self.url(path));
        if let Some(t) = bearer {
            req = req.bearer_auth(t);
        }
        req.send().await.expect("request")
    }

    async fn metrics(&self) -> String {
        self.get("/metrics", None)
            .await
            .text()
            .await
            .expect("metrics")
    }

    async fn stop(mut self) {
        if let Some(r) = self.running.take() {
            r.stop().await.expect("clean shutdown");
        }
    }
}

/// Every service played by one upstream.
async fn single(toml: &str) -> (Upstream, Gateway) {
    let up = upstream::start("all", any_port()).await;
    let urls: Vec<_> = SERVICES.iter().map(|s| (*s, up.url())).collect();
    let gw = Gateway::start(toml, &urls, None).await;
    (up, gw)
}

async fn eventually<T, F, Fut>(secs: u64, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out after {secs}s waiting for: {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn assert_problem(r: reqwest::Response, status: StatusCode) -> serde_json::Value {
    assert_eq!(r.status(), status);
    assert_eq!(r.headers()["content-type"], "application/problem+json");
    let body: serde_json::Value = r.json().await.expect("problem body");
    assert_eq!(body["status"], status.as_u16());
    body
}

#[tokio::test]
async fn routes_forward_edge_headers_and_hide_internal() {
    let extra = upstream::start("reviews", any_port()).await;
    let toml = format!(
        "[gateway.routes]\n\"/api/v1/reviews/\" = \"{}\"\n",
        extra.url()
    );
    let up = upstream::start("catalog", any_port()).await;
    let others = upstream::start("other", any_port()).await;
    let urls: Vec<_> = SERVICES
        .iter()
        .map(|s| {
            let url = if *s == ServiceName::Catalog {
                up.url()
            } else {
                others.url()
            };
            (*s, url)
        })
        .collect();
    let gw = Gateway::start(&toml, &urls, None).await;

    let r = gw
        .http
        .get(gw.url("/api/v1/products/?page=2"))
        .header("x-request-id", "rid-gw-1")
        .header("connection", "x-hop")
        .header("x-hop", "secret")
        .send()
        .await
        .expect("products");
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["x-request-id"], "rid-gw-1");
    assert_eq!(r.headers()["x-content-type-options"], "nosniff");
    let body: serde_json::Value = r.json().await.expect("json");
    assert_eq!(body["upstream"], "catalog");
    assert_eq!(body["path"], "/api/v1/products/?page=2");
    assert_eq!(body["x_forwarded_for"], "127.0.0.1");
    assert_eq!(body["x_forwarded_proto"], "http");
    assert!(
        body["x_forwarded_host"]
            .as_str()
            .is_some_and(|h| h.starts_with("127.0.0.1:"))
    );
    assert_eq!(body["x_request_id"], "rid-gw-1");
    assert!(
        body["x_hop"].is_null(),
        "headers named by Connection are hop-by-hop"
    );
    let tp = body["traceparent"].as_str().expect("traceparent started");
    assert_eq!(tp.split('-').count(), 4, "{tp}");

    // An incoming traceparent is passed on untouched.
    let incoming = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
    let body: serde_json::Value = gw
        .http
        .get(gw.url("/api/v1/categories/"))
        .header("traceparent", incoming)
        .send()
        .await
        .expect("categories")
        .json()
        .await
        .expect("json");
    assert_eq!(body["traceparent"], incoming);

    // Protected routes reach their own service with a token.
    let t = token("user-1");
    let body: serde_json::Value = gw
        .get("/api/v1/orders/", Some(&t))
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(body["upstream"], "other");
    assert_eq!(body["authorization"], true, "the token is passed on");
    // Configured extra route.
    let body: serde_json::Value = gw
        .get("/api/v1/reviews/1/", Some(&t))
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(body["upstream"], "reviews");

    let before = up.hits() + others.hits();
    for path in [
        "/internal/products/lookup",
        "/api/v1/../internal/x",
        "/api/v1/products/%2e%2e/%2e%2e/internal/x",
        "/api/v1/products%2F..%2F..%2Finternal",
        "/api/v1/products/..%5Cinternal",
        "/api/v2/products/",
        "/api/v1/nothing-here/",
    ] {
        let r = gw.get(path, Some(&t)).await;
        assert_problem(r, StatusCode::NOT_FOUND).await;
    }
    let r = gw
        .http
        .post(gw.url("/internal/reservations"))
        .send()
        .await
        .expect("post");
    assert_problem(r, StatusCode::NOT_FOUND).await;
    assert_eq!(
        up.hits() + others.hits(),
        before,
        "nothing reached an upstream"
    );
    gw.stop().await;
}

#[tokio::test]
async fn protected_routes_need_a_valid_token_before_forwarding() {
    let (up, gw) = single("").await;
    for (path, bearer) in [
        ("/api/v1/orders/", None),
        ("/api/v1/users/me/", Some("not-a-jwt")),
        (
            "/api/v1/payments/?order_id=x",
            Some("eyJhbGciOiJIUzI1NiJ9.e30.x"),
        ),
        ("/api/v1/notifications/", Some("")),
    ] {
        let r = gw.get(path, bearer).await;
        assert_eq!(r.headers()["www-authenticate"], "Bearer", "{path}");
        assert_problem(r, StatusCode::UNAUTHORIZED).await;
    }
    let r = gw
        .http
        .post(gw.url("/api/v1/products/"))
        .send()
        .await
        .expect("post");
    assert_problem(r, StatusCode::UNAUTHORIZED).await;
    assert_eq!(up.hits(), 0, "refused requests are not forwarded");

    // Public routes pass without a token.
    for path in [
        "/api/v1/auth/register/",
        "/api/v1/auth/token/",
        "/api/v1/auth/token/refresh",
        "/api/v1/auth/logout/",
    ] {
        let r = gw
            .http
            .post(gw.url(path))
            .json(&serde_json::json!({}))
            .send()
            .await
            .expect("post");
        assert_eq!(r.status(), StatusCode::OK, "{path}");
    }
    assert_eq!(
        gw.get("/api/v1/products/", None).await.status(),
        StatusCode::OK
    );
    assert_eq!(
        gw.get("/.well-known/jwks.json", None).await.status(),
        StatusCode::OK
    );
    assert_eq!(
        gw.get("/api/v1/users/me/", Some(&token("u")))
            .await
            .status(),
        StatusCode::OK
    );
    gw.stop().await;
}

#[tokio::test]
async fn rate_limits_per_ip_group_and_per_user() {
    let toml = "auth_limit = { rps = 0.01, burst = 3 }\nuser_limit = { rps = 0.01, burst = 2 }\n";
    let (_up, gw) = single(toml).await;
    for _ in 0..3 {
        let r = gw
            .http
            .post(gw.url("/api/v1/auth/token/"))
            .send()
            .await
            .expect("token");
        assert_eq!(r.status(), StatusCode::OK);
    }
    let r = gw
        .http
        .post(gw.url("/api/v1/auth/token/"))
        .send()
        .await
        .expect("token");
    let retry: u64 = r.headers()["retry-after"]
        .to_str()
        .expect("ascii")
        .parse()
        .expect("secs");
    assert!(retry >= 1, "{retry}");
    assert_problem(r, StatusCode::TOO_MANY_REQUESTS).await;
    // Other groups have their own (generous) budget.
    assert_eq!(
        gw.get("/api/v1/products/", None).await.status(),
        StatusCode::OK
    );

    let alice = token("alice");
    for _ in 0..2 {
        assert_eq!(
            gw.get("/api/v1/orders/", Some(&alice)).await.status(),
            StatusCode::OK
        );
    }
    let r = gw.get("/api/v1/orders/", Some(&alice)).await;
    assert!(r.headers().contains_key("retry-after"));
    assert_problem(r, StatusCode::TOO_MANY_REQUESTS).await;
    assert_eq!(
        gw.get("/api/v1/orders/", Some(&token("bob")))
            .await
            .status(),
        StatusCode::OK
    );
    gw.stop().await;
}

#[tokio::test]
async fn two_gateways_share_one_limit_through_redis() {
    if !common::server_available("Redis", "127.0.0.1:6379").await {
        return;
    }
    let prefix = format!("bazaar-test:{}", uuid::Uuid::new_v4().simple());
    let toml =
        format!("rate_limit_prefix = \"{prefix}\"\nauth_limit = {{ rps = 0.01, burst = 3 }}\n");
    let up = upstream::start("all", any_port()).await;
    let urls: Vec<_> = SERVICES.iter().map(|s| (*s, up.url())).collect();
    let redis = Some("redis://127.0.0.1:6379");
    let a = Gateway::start(&toml, &urls, redis).await;
    let b = Gateway::start(&toml, &urls, redis).await;
    for _ in 0..3 {
        let r = a
            .http
            .post(a.url("/api/v1/auth/token/"))
            .send()
            .await
            .expect("token");
        assert_eq!(r.status(), StatusCode::OK);
    }
    // The second instance sees the first one's count.
    let r = b
        .http
        .post(b.url("/api/v1/auth/token/"))
        .send()
        .await
        .expect("token");
    assert!(r.headers().contains_key("retry-after"));
    assert_problem(r, StatusCode::TOO_MANY_REQUESTS).await;
    let r = a
        .http
        .post(a.url("/api/v1/auth/token/"))
        .send()
        .await
        .expect("token");
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(up.hits(), 3);
    a.stop().await;
    b.stop().await;
}

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
            .contains("gateway_breaker_state{upstream=\"catalog\"} 1")
    );
    // Other upstreams are unaffected; readiness reports the dead pool.
    assert_eq!(
        gw.get("/api/v1/orders/", Some(&token("u"))).await.status(),
        StatusCode::OK
    );
    eventually(5, "gateway not ready", || async {
        (gw.get("/readyz", None).await.status() == StatusCode::SERVICE_UNAVAILABLE).then_some(())
    })
    .await;

    let back = upstream::start("catalog", addr).await;
    eventually(5, "breaker closes", || async {
        (gw.get("/api/v1/products/", None).await.status() == StatusCode::OK).then_some(())
    })
    .await;
    assert!(
        gw.metrics()
            .await
            .contains("gateway_breaker_state{upstream=\"catalog\"} 0")
    );
    assert!(back.hits() >= 1);
    eventually(5, "gateway ready", || async {
        (gw.get("/readyz", None).await.status() == StatusCode::OK).then_some(())
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
    let ejected =
        format!("gateway_upstream_instance_healthy{{instance=\"{b_url}\",upstream=\"catalog\"}} 0");
    eventually(5, "dead instance ejected", || async {
        let m = gw.metrics().await;
        (m.contains(&ejected)
            || m.contains(&format!(
                "gateway_upstream_instance_healthy{{upstream=\"catalog\",instance=\"{b_url}\"}} 0"
            )))
        .then_some(())
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
    let (_up, gw) = single("upstream_timeout_secs = 1\n").await;
    let started = std::time::Instant::now();
    let r = gw.get("/api/v1/payments/slow/", Some(&token("u"))).await;
    assert_problem(r, StatusCode::GATEWAY_TIMEOUT).await;
    assert!(started.elapsed() < Duration::from_secs(4));
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
async fn oversized_bodies_are_refused_with_413() {
    let (up, gw) = single("").await;
    let big = vec![b'a'; 1024 * 1024 + 1];
    for (path, bearer) in [
        ("/api/v1/auth/register/", None),
        ("/api/v1/orders/", Some(token("u"))),
    ] {
        let mut req = gw.http.post(gw.url(path)).body(big.clone());
        if let Some(t) = bearer {
            req = req.bearer_auth(t);
        }
        let r = req.send().await.expect("post");
        assert_problem(r, StatusCode::PAYLOAD_TOO_LARGE).await;
    }
    assert_eq!(up.hits(), 0);
    gw.stop().await;
}

#[tokio::test]
async fn cors_preflight_allows_configured_origins_only() {
    let (up, gw) = single("cors_origins = [\"http://shop.example\"]\n").await;
    let preflight = |origin: &'static str| {
        gw.http
            .request(reqwest::Method::OPTIONS, gw.url("/api/v1/orders/"))
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header(
                "access-control-request-headers",
                "authorization,content-type,idempotency-key",
            )
            .send()
    };
    let r = preflight("http://shop.example").await.expect("preflight");
    assert!(r.status().is_success(), "{}", r.status());
    assert_eq!(
        r.headers()["access-control-allow-origin"],
        "http://shop.example"
    );
    let methods = r.headers()["access-control-allow-methods"]
        .to_str()
        .expect("ascii")
        .to_string();
    assert!(methods.contains("POST"), "{methods}");
    let headers = r.headers()["access-control-allow-headers"]
        .to_str()
        .expect("ascii")
        .to_ascii_lowercase();
    assert!(
        headers.contains("authorization") && headers.contains("idempotency-key"),
        "{headers}"
    );
    let r = preflight("http://evil.example").await.expect("preflight");
    assert!(!r.headers().contains_key("access-control-allow-origin"));
    // Actual responses carry the header too.
    let r = gw
        .http
        .get(gw.url("/api/v1/products/"))
        .header("origin", "http://shop.example")
        .send()
        .await
        .expect("get");
    assert_eq!(
        r.headers()["access-control-allow-origin"],
        "http://shop.example"
    );
    assert_eq!(up.hits(), 1, "preflights are answered at the edge");
    gw.stop().await;
}

#[tokio::test]
async fn json_is_gzip_compressed_when_asked() {
    let (_up, gw) = single("").await;
    let r = gw
        .http
        .get(gw.url("/api/v1/products/"))
        .header("accept-encoding", "gzip")
        .send()
        .await
        .expect("get");
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["content-encoding"], "gzip");
    gw.stop().await;
}

#[tokio::test]
async fn merged_openapi_and_offline_docs() {
    let catalog = upstream::start("catalog", any_port()).await;
    let others = upstream::start("other", any_port()).await;
    let urls: Vec<_> = SERVICES
        .iter()
        .map(|s| {
            (
                *s,
                if *s == ServiceName::Catalog {
                    catalog.url()
                } else {
                    others.url()
                },
            )
        })
        .collect();
    let gw = Gateway::start("", &urls, None).await;
    let doc: serde_json::Value = gw
        .get("/openapi.json", None)
        .await
        .json()
        .await
        .expect("doc");
    assert_eq!(doc["openapi"], "3.1.0");
    assert!(doc["paths"]["/api/v1/products/"]["get"].is_object());
    assert!(doc["paths"].get("/internal/products/lookup").is_none());
    assert!(doc["components"]["schemas"]["Product"].is_object());

    let r = gw.get("/docs", None).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.url().path(), "/docs/");
    let html = r.text().await.expect("html");
    assert!(html.contains("swagger-ui"), "{html}");
    let mut assets = Vec::new();
    for attr in ["src=\"", "href=\""] {
        for part in html.split(attr).skip(1) {
            let link = part.split('"').next().expect("link").to_string();
            assert!(!link.contains("//"), "external asset {link}");
            assets.push(link);
        }
    }
    assert!(assets.iter().any(|a| a.ends_with(".js")), "{assets:?}");
    for asset in assets {
        let path = format!("/docs/{}", asset.trim_start_matches("./"));
        let r = gw.get(&path, None).await;
        assert_eq!(r.status(), StatusCode::OK, "{path}");
    }
    let init = gw
        .get("/docs/swagger-initializer.js", None)
        .await
        .text()
        .await
        .expect("js");
    assert!(init.contains("/openapi.json"), "{init}");
    assert!(!init.contains("https://"), "{init}");
    gw.stop().await;
}
