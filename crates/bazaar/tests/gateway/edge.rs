//! Edge behaviour: routing and headers, `/internal/` hidden, JWT
//! pre-verification, rate limits (memory and shared Redis), body limit, CORS,
//! compression, merged OpenAPI and offline docs.

use bazaar_kit::ServiceName;
use reqwest::StatusCode;

use crate::harness::{Gateway, SERVICES, any_port, assert_problem, single};
use crate::upstream::{self, token};

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

    // X-Forwarded-* from a client that is not a trusted proxy are replaced:
    // a client cannot choose the host pagination links name.
    let spoofed = |gw: &Gateway| {
        gw.http
            .get(gw.url("/api/v1/products/"))
            .header("x-forwarded-for", "203.0.113.9")
            .header("x-forwarded-host", "evil.example")
            .header("x-forwarded-proto", "https")
            .send()
    };
    let body: serde_json::Value = spoofed(&gw)
        .await
        .expect("spoofed")
        .json()
        .await
        .expect("json");
    assert_eq!(body["x_forwarded_for"], "127.0.0.1");
    assert_eq!(body["x_forwarded_proto"], "http");
    assert_ne!(body["x_forwarded_host"], "evil.example");
    // From a trusted proxy (the ingress in front) they are kept.
    let trusting = Gateway::start("trusted_proxies = \"127.0.0.0/8\"", &urls, None).await;
    let body: serde_json::Value = spoofed(&trusting)
        .await
        .expect("trusted")
        .json()
        .await
        .expect("json");
    assert_eq!(body["x_forwarded_for"], "203.0.113.9, 127.0.0.1");
    assert_eq!(body["x_forwarded_host"], "evil.example");
    assert_eq!(body["x_forwarded_proto"], "https");
    trusting.stop().await;

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
    if !crate::common::server_available("Redis", "127.0.0.1:6379").await {
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
    // A client still sending a large body gets the 413, not a reset
    // connection: the gateway reads the refused body away (lingering close).
    let huge = vec![b'a'; 8 * 1024 * 1024];
    for _ in 0..5 {
        let r = gw
            .http
            .post(gw.url("/api/v1/auth/register/"))
            .header("content-type", "application/json")
            .body(huge.clone())
            .send()
            .await
            .expect("the 413 arrives while the body is still being sent");
        assert_problem(r, StatusCode::PAYLOAD_TOO_LARGE).await;
    }
    assert_eq!(up.hits(), 0);
    let after = gw.get("/api/v1/products/", None).await;
    assert_eq!(after.status(), StatusCode::OK);
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
    assert_eq!(r.headers()["vary"], "accept-encoding");
    // Without Accept-Encoding: identity, and caches still told it varies.
    let r = gw.get("/api/v1/products/", None).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.headers().get("content-encoding").is_none());
    assert_eq!(r.headers()["vary"], "accept-encoding");
    let body: serde_json::Value = r.json().await.expect("plain JSON");
    assert_eq!(body["upstream"], "all");
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
    let csp = r.headers()["content-security-policy"]
        .to_str()
        .expect("csp")
        .to_string();
    for directive in [
        "default-src 'none'",
        "script-src 'self'",
        "connect-src 'self'",
        "frame-ancestors 'none'",
    ] {
        assert!(csp.contains(directive), "{csp}");
    }
    let html = r.text().await.expect("html");
    assert!(html.contains("swagger-ui"), "{html}");
    // Only its own assets: no inline script the policy would block.
    assert!(
        !html.contains("<script>") && !html.contains("<script type=\"text/javascript\">"),
        "{html}"
    );
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
