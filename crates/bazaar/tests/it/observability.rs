//! Observability end to end: after checkouts, every service's metrics port
//! serves only that service's series (plus the process's), every family has
//! its `# HELP`, the saga's series are there, and `promtool check metrics`
//! finds nothing to say (promtool is required in CI, skipped elsewhere
//! when missing).

use bazaar_kit::ServiceName;
use bazaar_kit::testing::{eventually, in_ci};

use crate::common::Store;
use crate::orders::shop::Shop;

/// Series any port may serve: the process's own.
fn process_wide(family: &str) -> bool {
    family.starts_with("process_") || family == "bazaar_build_info"
}

/// The family a sample line belongs to (histogram and summary suffixes
/// stripped).
fn family_of(sample: &str) -> &str {
    let name = sample.split(['{', ' ']).next().unwrap_or_default();
    ["_bucket", "_sum", "_count"]
        .iter()
        .find_map(|s| name.strip_suffix(s))
        .unwrap_or(name)
}

/// Checks one port's exposition: HELP before every TYPE, only `service`'s
/// series, and the process's series.
fn check_exposition(service: &str, text: &str) {
    let mut helped = std::collections::HashSet::new();
    let mut typed = std::collections::HashSet::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let family = rest.split(' ').next().unwrap_or_default();
            assert!(helped.insert(family), "{service}: {family} twice");
        } else if let Some(rest) = line.strip_prefix("# TYPE ") {
            let family = rest.split(' ').next().unwrap_or_default();
            assert!(helped.contains(family), "{service}: no HELP for {family}");
            typed.insert(family);
        } else if !line.is_empty() {
            let family = family_of(line);
            assert!(typed.contains(family), "{service}: untyped sample {line}");
            if process_wide(family) {
                continue;
            }
            let own = format!("service=\"{service}\"");
            assert!(
                line.contains(&own),
                "{service}'s port serves another's (or an unlabelled) series: {line}"
            );
        }
    }
    for family in [
        "process_cpu_seconds_total",
        "process_resident_memory_bytes",
        "process_open_fds",
        "process_start_time_seconds",
        "bazaar_build_info",
        "http_requests_total",
    ] {
        assert!(typed.contains(family), "{service}: no {family}\n{text}");
    }
}

/// `promtool check metrics` on `text`; `false` when promtool is missing
/// outside CI.
fn promtool_check(service: &str, text: &str) -> bool {
    use std::io::Write as _;
    let child = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn();
    let mut child = match child {
        Ok(child) => child,
        Err(e) => {
            assert!(!in_ci(), "promtool is required in CI: {e}");
            eprintln!("promtool missing: lint skipped");
            return false;
        }
    };
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(text.as_bytes())
        .expect("write to promtool");
    let out = child.wait_with_output().expect("promtool");
    assert!(
        out.status.success(),
        "promtool check metrics on {service}'s port:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    true
}

async fn metrics_per_port(store: Store) {
    let Some(s) = Shop::start(store).await else {
        return;
    };
    let product = s.product("3.00", 2).await;
    let u = s.user();
    let ok = s.order(&u, &[(&product, 1)], "tok_visa").await;
    let declined = s.order(&u, &[(&product, 1)], "tok_chargeDeclined").await;
    let out_of_stock = s.order(&u, &[(&product, 5)], "tok_visa").await;
    for (order, status) in [
        (&ok, "confirmed"),
        (&declined, "rejected"),
        (&out_of_stock, "rejected"),
    ] {
        let id = order["id"].as_str().expect("id");
        assert_eq!(s.final_order(&u.token, id).await["status"], status);
    }

    let scrape = |name: ServiceName| {
        let url = match name {
            ServiceName::Gateway => s.p.admin_url("/metrics"),
            _ => format!("{}/metrics", s.p.service_url(name)),
        };
        let http = s.p.http.clone();
        async move {
            http.get(url)
                .send()
                .await
                .expect("scrape")
                .text()
                .await
                .expect("text")
        }
    };
    // The gauges of orders under way are refreshed every few seconds.
    let orders = eventually(20, "orders_in_saga", || async {
        let text = scrape(ServiceName::Orders).await;
        text.contains("orders_in_saga{").then_some(text)
    })
    .await;
    for wanted in [
        r#"orders_finished_total{service="orders",status="confirmed",reason="none"}"#,
        r#"orders_finished_total{service="orders",status="rejected",reason="payment_declined"}"#,
        r#"orders_finished_total{service="orders",status="rejected",reason="out_of_stock"}"#,
        "orders_saga_lifetime_seconds_bucket{",
        "orders_saga_oldest_age_seconds{",
    ] {
        assert!(orders.contains(wanted), "orders: no {wanted}\n{orders}");
    }

    let mut linted = 0;
    for name in ServiceName::ALL {
        // Every service has answered at least this.
        let health = match name {
            ServiceName::Gateway => s.p.url("/healthz"),
            _ => format!("{}/healthz", s.p.service_url(name)),
        };
        s.p.http.get(health).send().await.expect("healthz");
        let text = scrape(name).await;
        check_exposition(name.as_str(), &text);
        if promtool_check(name.as_str(), &text) {
            linted += 1;
        }
    }
    let gateway = scrape(ServiceName::Gateway).await;
    assert!(gateway.contains("gateway_upstream_duration_seconds_bucket{"));
    eprintln!("{linted} port(s) linted by promtool");
    s.p.stop().await;
}

bazaar_kit::both_stores!(Store { sqlite: Sqlite, postgres: Postgres }; [metrics_per_port]);

/// `bazaar up` (the binary, JSON logs at `info`) with its log lines as
/// they come.
struct Up {
    child: std::process::Child,
    gateway: String,
    lines: std::sync::Arc<std::sync::Mutex<Vec<serde_json::Value>>>,
    _dir: tempfile::TempDir,
}

impl Up {
    fn start() -> Up {
        use std::io::BufRead as _;
        use std::process::{Command, Stdio};
        let dir = tempfile::tempdir().expect("dir");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_bazaar"));
        cmd.current_dir(dir.path())
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("BAZAAR_DATA_DIR", dir.path().join("data"))
            .env("BAZAAR_LOG_LEVEL", "info")
            .env("BAZAAR_LOG_FORMAT", "json")
            .arg("up")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for name in ServiceName::ALL {
            let var = format!("BAZAAR_{}_LISTEN", name.as_str().to_uppercase());
            cmd.env(var, "127.0.0.1:0");
        }
        let mut child = cmd.spawn().expect("bazaar up");
        let lines = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let stderr = child.stderr.take().expect("stderr");
        let sink = lines.clone();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if let Ok(value) = serde_json::from_str(&line) {
                    sink.lock().expect("lines").push(value);
                }
            }
        });
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(url) = line.trim().strip_prefix("Gateway (public API)") {
                    let _ = tx.send(url.trim().trim_end_matches("/api/v1/").to_string());
                }
            }
        });
        let gateway = rx
            .recv_timeout(std::time::Duration::from_secs(90))
            .expect("the banner within 90 s");
        Up {
            child,
            gateway,
            lines,
            _dir: dir,
        }
    }

    /// Access-log lines carrying `request_id`.
    fn access_lines(&self, request_id: &str) -> Vec<serde_json::Value> {
        self.lines
            .lock()
            .expect("lines")
            .iter()
            .filter(|l| l["target"] == "access" && l["request_id"] == request_id)
            .cloned()
            .collect()
    }
}

impl Drop for Up {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One request at `info` leaves exactly one access-log line per service it
/// crossed (gateway, then the service), each with its request id (as sent,
/// unquoted), the trace id the gateway started, route template, status,
/// duration and size; an authenticated request names its user.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_access_line_per_request_and_service() {
    let up = Up::start();
    let http = reqwest::Client::new();
    let rid = format!("access-{}", uuid::Uuid::now_v7());
    let r = http
        .get(format!("{}/api/v1/products/?page_size=1", up.gateway))
        .header("x-request-id", &rid)
        .send()
        .await
        .expect("products");
    assert_eq!(r.status(), 200);
    let lines = eventually(10, "access lines of gateway and catalog", || async {
        let lines = up.access_lines(&rid);
        (lines.len() >= 2).then_some(lines)
    })
    .await;
    // Nothing else comes for it.
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert_eq!(up.access_lines(&rid).len(), 2, "{lines:#?}");
    let by = |service: &str| {
        lines
            .iter()
            .find(|l| l["service"] == service)
            .unwrap_or_else(|| panic!("no {service} access line: {lines:#?}"))
            .clone()
    };
    let (gateway, catalog) = (by("gateway"), by("catalog"));
    let trace_id = gateway["trace_id"].as_str().expect("trace_id").to_string();
    assert_eq!(trace_id.len(), 32, "{gateway}");
    assert_eq!(catalog["trace_id"], trace_id.as_str(), "one trace id");
    for line in [&gateway, &catalog] {
        assert_eq!(line["level"], "INFO");
        assert_eq!(line["message"], "request");
        assert_eq!(line["method"], "GET");
        assert_eq!(line["status"], 200);
        assert_eq!(line["path"], "/api/v1/products/");
        assert!(line["duration_ms"].as_f64().is_some(), "{line}");
        assert!(line["user_id"].is_null(), "anonymous: {line}");
    }
    assert_eq!(catalog["route"], "/api/v1/products");
    assert_eq!(gateway["route"], "/api/{*rest}");
    assert!(
        catalog["bytes"].as_u64().is_some_and(|b| b > 0),
        "{catalog}"
    );

    // An authenticated request names its user on the service that
    // verified the token.
    let password = "Sturdy-Access-Pass-42";
    let username = format!("acc{}", &uuid::Uuid::new_v4().simple().to_string()[..10]);
    let r = http
        .post(format!("{}/api/v1/auth/register/", up.gateway))
        .json(&serde_json::json!({"username": username, "email": format!("{username}@example.com"), "password": password}))
        .send()
        .await
        .expect("register");
    assert_eq!(r.status(), 201);
    let user: serde_json::Value = r.json().await.expect("user");
    let tokens: serde_json::Value = http
        .post(format!("{}/api/v1/auth/token/", up.gateway))
        .json(&serde_json::json!({"username": username, "password": password}))
        .send()
        .await
        .expect("token")
        .json()
        .await
        .expect("tokens");
    let rid = format!("access-me-{}", uuid::Uuid::now_v7());
    let r = http
        .get(format!("{}/api/v1/users/me/", up.gateway))
        .bearer_auth(tokens["access"].as_str().expect("access"))
        .header("x-request-id", &rid)
        .send()
        .await
        .expect("me");
    assert_eq!(r.status(), 200);
    let lines = eventually(10, "access line of identity", || async {
        let lines = up.access_lines(&rid);
        lines
            .iter()
            .find(|l| l["service"] == "identity")
            .cloned()
            .map(|l| (l, lines.len()))
    })
    .await;
    assert_eq!(lines.0["user_id"], user["id"], "{}", lines.0);
    assert_eq!(lines.0["route"], "/api/v1/users/me");
}
