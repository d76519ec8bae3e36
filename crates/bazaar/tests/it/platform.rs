//! Foundation: the whole platform starts on port-0 listeners with fresh
//! databases (SQLite and PostgreSQL), answers health, readiness and metrics
//! through the gateway, renders errors as problem+json, and stops cleanly.

use crate::common;

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

    // Operator endpoints are off the public port.
    let r = p.http.get(p.url("/metrics")).send().await.expect("metrics");
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let r = p.http.get(p.url("/readyz")).send().await.expect("readyz");
    let body: serde_json::Value = r.json().await.expect("readyz body");
    assert!(body.get("checks").is_none(), "no details in public: {body}");

    // Prometheus text with per-route request counts and latency buckets,
    // on the gateway's operator listener.
    let metrics = p
        .http
        .get(p.admin_url("/metrics"))
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

/// A JSON body with anything after its value is a 400 problem on every
/// service, and nothing is created from it.
async fn trailing_json_is_refused(p: &TestPlatform) {
    let user = p.register_and_login("trailing").await;
    let registration =
        r#"{"username":"ghost","email":"ghost@example.com","password":"Sturdy-Ghost-Pass-42"}"#;
    let cases = [
        (
            "/api/v1/auth/register/",
            format!("{registration} garbage"),
            None,
        ),
        (
            "/api/v1/auth/register/",
            format!("{registration}{registration}"),
            None,
        ),
        (
            "/api/v1/auth/token/",
            r#"{"username":"trailing","password":"x"}{}"#.to_string(),
            None,
        ),
        (
            "/api/v1/orders/",
            r#"{"items":[]} []"#.to_string(),
            Some(&user.access),
        ),
        (
            "/api/v1/products/",
            r#"{"name":"x"} x"#.to_string(),
            Some(&user.access),
        ),
    ];
    for (path, body, bearer) in cases {
        let mut request = p
            .http
            .post(p.url(path))
            .header("content-type", "application/json")
            .body(body.clone());
        if let Some(token) = bearer {
            request = request.bearer_auth(token);
        }
        let r = request.send().await.expect("request");
        let status = r.status();
        // Catalog checks permissions before the body: a customer's create
        // is a 403 whatever the body; everything else must name the JSON.
        if path == "/api/v1/products/" {
            assert_eq!(status, StatusCode::FORBIDDEN, "{path} {body}");
            continue;
        }
        assert_eq!(status, StatusCode::BAD_REQUEST, "{path} {body}");
        let problem: serde_json::Value = r.json().await.expect("problem");
        // The token endpoint answers RFC 6749 §5.2 errors, the rest problem+json.
        let detail = if path == "/api/v1/auth/token/" {
            assert_eq!(problem["error"], "invalid_request", "{problem}");
            &problem["error_description"]
        } else {
            &problem["detail"]
        };
        assert!(
            detail.as_str().is_some_and(|d| d.contains("trailing")),
            "{path}: {problem}"
        );
    }
    let r = p.login("ghost", "Sturdy-Ghost-Pass-42").await;
    assert_ne!(r.status(), StatusCode::OK, "no user came of a refused body");
}

#[tokio::test]
async fn platform_on_sqlite() {
    let p = common::start(Store::Sqlite)
        .await
        .expect("sqlite needs no server");
    foundation(&p).await;
    trailing_json_is_refused(&p).await;
    for name in ["identity", "catalog", "orders", "payments", "notifications"] {
        assert!(
            p.data_dir().join(format!("{name}.db")).exists(),
            "{name}.db missing"
        );
    }
    p.stop().await;
}

/// Signing keys, password and refresh-token hashes and service secrets are
/// readable by their owner only: the data directory is created 0700, the
/// SQLite files (with their -wal and -shm) and the secrets file are 0600.
#[cfg(unix)]
#[tokio::test]
async fn data_at_rest_is_owner_only() {
    use std::os::unix::fs::PermissionsExt as _;
    let p = common::start_with(Store::Sqlite, |c| c.data_dir = c.data_dir.join("fresh"))
        .await
        .expect("sqlite needs no server");
    // Writes happen, so the -wal files exist.
    p.register_and_login("modes").await;
    let dir = p.config.data_dir.clone();
    assert!(dir.ends_with("fresh"), "{}", dir.display());
    let mode = |path: &std::path::Path| {
        std::fs::metadata(path)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
            .permissions()
            .mode()
            & 0o777
    };
    assert_eq!(mode(&dir), 0o700, "{}", dir.display());
    let mut files = 0;
    for entry in std::fs::read_dir(&dir).expect("data dir") {
        let path = entry.expect("entry").path();
        assert_eq!(mode(&path), 0o600, "{}", path.display());
        files += 1;
    }
    assert!(dir.join("identity.db").exists() && dir.join("service-secrets.json").exists());
    assert!(files >= 6, "{files} files");
    p.stop().await;
}

#[tokio::test]
async fn platform_on_postgres() {
    let Some(p) = common::start(Store::Postgres).await else {
        return;
    };
    foundation(&p).await;
    trailing_json_is_refused(&p).await;
    p.stop_and_drop().await;
}

/// `bazaar serve catalog` on PostgreSQL: `/readyz` is a 503 problem while
/// the database is unreachable and 200 again once it is back, no restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_follows_the_database() {
    if !common::server_available("PostgreSQL", "127.0.0.1:5432").await {
        return;
    }
    let cable = bazaar_kit::testing::Cable::open("127.0.0.1:5432").await;
    let dir = tempfile::tempdir().expect("dir");
    let mut config = common::base_config(dir.path(), Store::Sqlite);
    let db = format!(
        "bzt_{}_catalog",
        &uuid::Uuid::new_v4().simple().to_string()[..12]
    );
    config.catalog.database_url = Some(bazaar_kit::Secret::new(format!(
        "postgres://postgres@{}/{db}",
        cable.addr()
    )));
    let running = bazaar::start(config, &[bazaar_kit::ServiceName::Catalog])
        .await
        .expect("catalog starts");
    let url = format!(
        "{}/readyz",
        running.url(bazaar_kit::ServiceName::Catalog).expect("url")
    );
    let http = reqwest::Client::new();
    let status = |http: reqwest::Client, url: String| async move {
        let r = http.get(&url).send().await.expect("readyz answers");
        let code = r.status();
        let ct = r.headers().get("content-type").cloned();
        (code, ct)
    };
    assert_eq!(status(http.clone(), url.clone()).await.0, StatusCode::OK);

    cable.cut();
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let (code, ct) = status(http.clone(), url.clone()).await;
        if code == StatusCode::SERVICE_UNAVAILABLE {
            assert_eq!(ct.expect("content type"), "application/problem+json");
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "readyz stayed {code} with the database gone"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }

    cable.connect().await;
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(20);
    while status(http.clone(), url.clone()).await.0 != StatusCode::OK {
        assert!(
            tokio::time::Instant::now() < deadline,
            "readyz did not recover"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    running.stop().await.expect("clean stop");
}

/// `bazaar up` (the real binary) prints where everything is, serves, and
/// on SIGTERM exits 0 with no error lines.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn up_stops_cleanly_on_sigterm() {
    use tokio::io::AsyncBufReadExt;
    let dir = tempfile::tempdir().expect("dir");
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_bazaar"));
    command
        .arg("up")
        .current_dir(dir.path())
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true);
    for name in [
        "GATEWAY",
        "IDENTITY",
        "CATALOG",
        "ORDERS",
        "PAYMENTS",
        "NOTIFICATIONS",
    ] {
        command.env(format!("BAZAAR_{name}_LISTEN"), "127.0.0.1:0");
    }
    let mut child = command.spawn().expect("bazaar up");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = tokio::io::BufReader::new(stdout).lines();
    let gateway = tokio::time::timeout(std::time::Duration::from_secs(120), async {
        while let Ok(Some(line)) = lines.next_line().await {
            if let Some(rest) = line.trim().strip_prefix("Gateway (public API)") {
                return rest.trim().trim_end_matches("/api/v1/").to_string();
            }
        }
        panic!("bazaar up never printed the gateway URL");
    })
    .await
    .expect("banner in time");
    let r = reqwest::get(format!("{gateway}/readyz"))
        .await
        .expect("readyz");
    assert_eq!(r.status(), StatusCode::OK);
    assert!(dir.path().join("data/catalog.db").exists());

    let pid = child.id().expect("pid");
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .expect("kill");
    assert!(killed.success());
    // The bound only catches a hang; how fast it stops is the benchmark's
    // business, not this test's.
    let status = tokio::time::timeout(std::time::Duration::from_secs(60), child.wait())
        .await
        .expect("bazaar up hung after SIGTERM")
        .expect("status");
    assert!(status.success(), "exit status {status:?}");
    let mut stderr = String::new();
    use tokio::io::AsyncReadExt;
    child
        .stderr
        .take()
        .expect("stderr")
        .read_to_string(&mut stderr)
        .await
        .expect("stderr");
    let errors: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("\"ERROR\"") || l.contains("\"WARN\""))
        .collect();
    assert!(errors.is_empty(), "error lines on shutdown: {errors:?}");
}
