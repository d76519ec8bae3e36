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
        Up::start_with(&[])
    }

    /// `bazaar up` with `env` on top (OTLP, stores, email).
    fn start_with(env: &[(&str, String)]) -> Up {
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
        for (k, v) in env {
            cmd.env(k, v);
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

/// One span as an OTLP receiver got it.
#[derive(Clone, Debug)]
struct Got {
    service: String,
    name: String,
    trace_id: String,
    span_id: String,
    parent: String,
    attributes: std::collections::HashMap<String, String>,
}

type Spans = std::sync::Arc<std::sync::Mutex<Vec<Got>>>;

/// Keeps the spans of one OTLP export request.
fn keep(
    request: opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest,
    sink: &Spans,
) {
    use opentelemetry_proto::tonic::common::v1::any_value::Value;
    let text = |v: &Option<opentelemetry_proto::tonic::common::v1::AnyValue>| match v
        .as_ref()
        .and_then(|v| v.value.as_ref())
    {
        Some(Value::StringValue(s)) => s.clone(),
        Some(Value::IntValue(i)) => i.to_string(),
        Some(other) => format!("{other:?}"),
        None => String::new(),
    };
    let mut got = sink.lock().expect("spans");
    for rs in request.resource_spans {
        let service = rs
            .resource
            .iter()
            .flat_map(|r| r.attributes.iter())
            .find(|kv| kv.key == "service.name")
            .map(|kv| text(&kv.value))
            .unwrap_or_default();
        for span in rs.scope_spans.into_iter().flat_map(|s| s.spans) {
            got.push(Got {
                service: service.clone(),
                name: span.name,
                trace_id: hex(&span.trace_id),
                span_id: hex(&span.span_id),
                parent: hex(&span.parent_span_id),
                attributes: span
                    .attributes
                    .iter()
                    .map(|kv| (kv.key.clone(), text(&kv.value)))
                    .collect(),
            });
        }
    }
}

/// An OTLP receiver keeping every span: HTTP (`POST /v1/traces`,
/// protobuf) or gRPC (`TraceService/Export`). Returns its endpoint.
async fn otlp_receiver(grpc: bool) -> (String, Spans) {
    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
    use prost::Message as _;
    let spans: Spans = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let sink = spans.clone();
    if grpc {
        use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::TraceServiceServer;
        let incoming = tonic::transport::server::TcpIncoming::from(listener);
        tokio::spawn(
            tonic::transport::Server::builder()
                .add_service(TraceServiceServer::new(Collector(sink)))
                .serve_with_incoming(incoming),
        );
    } else {
        let app = axum::Router::new().route(
            "/v1/traces",
            axum::routing::post(move |body: axum::body::Bytes| {
                let sink = sink.clone();
                async move {
                    keep(
                        ExportTraceServiceRequest::decode(body).expect("OTLP protobuf"),
                        &sink,
                    );
                    axum::http::StatusCode::OK
                }
            }),
        );
        tokio::spawn(async move { axum::serve(listener, app).await });
    }
    (url, spans)
}

/// The gRPC side of [`otlp_receiver`].
struct Collector(Spans);

#[tonic::async_trait]
impl opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::TraceService
    for Collector
{
    async fn export(
        &self,
        request: tonic::Request<
            opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest,
        >,
    ) -> Result<
        tonic::Response<
            opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceResponse,
        >,
        tonic::Status,
    > {
        keep(request.into_inner(), &self.0);
        Ok(tonic::Response::new(Default::default()))
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// One checkout through the gateway is one trace: gateway → orders →
/// catalog and payments (gRPC) → the saga's steps → the outbox publish →
/// the notifications consumer → the email send (SMTP), every span's parent
/// in the trace, each span under its own service's `service.name`. SQLite
/// and the embedded bus export over OTLP/gRPC, PostgreSQL and RabbitMQ over
/// OTLP/HTTP.
async fn one_trace_per_checkout(store: Store) {
    if !store.available().await {
        return;
    }
    // One store exports over gRPC, the other over HTTP/protobuf.
    let protocol = if store.is_postgres() {
        "http/protobuf"
    } else {
        "grpc"
    };
    let (otlp, spans) = otlp_receiver(protocol == "grpc").await;
    let sink = crate::notifications::smtp_sink::SmtpSink::start(
        crate::notifications::smtp_sink::Mode::Accept,
    )
    .await;
    let tag = uuid::Uuid::new_v4().simple().to_string()[..12].to_string();
    let mut env = vec![
        ("OTEL_EXPORTER_OTLP_ENDPOINT", otlp),
        ("OTEL_EXPORTER_OTLP_PROTOCOL", protocol.to_string()),
        ("OTEL_BSP_SCHEDULE_DELAY", "200".to_string()),
        ("BAZAAR_NOTIFICATIONS_EMAIL_BACKEND", "smtp".to_string()),
        ("BAZAAR_NOTIFICATIONS_EMAIL_HOST", "127.0.0.1".to_string()),
        (
            "BAZAAR_NOTIFICATIONS_EMAIL_PORT",
            sink.addr.port().to_string(),
        ),
        ("BAZAAR_NOTIFICATIONS_POLL_INTERVAL_MS", "50".to_string()),
        ("BAZAAR_BROKER_NAMESPACE", format!("bzt{tag}")),
    ];
    if store.is_postgres() {
        env.push((
            "BAZAAR_DATABASE_URL",
            format!("{}/bzt_{tag}", bazaar_kit::testing::postgres_url()),
        ));
        env.push((
            "BAZAAR_BROKER_URL",
            "amqp://guest:guest@127.0.0.1:5672/%2f".to_string(),
        ));
    }
    let up = Up::start_with(&env);
    let http = reqwest::Client::new();
    let password = "Sturdy-Trace-Pass-42";
    let username = format!("tr{}", &uuid::Uuid::new_v4().simple().to_string()[..10]);
    let r = http
        .post(format!("{}/api/v1/auth/register/", up.gateway))
        .json(&serde_json::json!({"username": username, "email": format!("{username}@example.com"), "password": password}))
        .send()
        .await
        .expect("register");
    assert_eq!(r.status(), 201);
    let tokens: serde_json::Value = http
        .post(format!("{}/api/v1/auth/token/", up.gateway))
        .json(&serde_json::json!({"username": username, "password": password}))
        .send()
        .await
        .expect("token")
        .json()
        .await
        .expect("tokens");
    let access = tokens["access"].as_str().expect("access").to_string();
    let products: serde_json::Value = http
        .get(format!("{}/api/v1/products/?in_stock=true", up.gateway))
        .send()
        .await
        .expect("products")
        .json()
        .await
        .expect("page");
    let product = products["results"][0]["id"].as_str().expect("a product");

    // The client starts the trace; every hop joins it.
    let trace_id = hex(&bazaar_kit::http::id_bytes::<16>());
    let traceparent = format!(
        "00-{trace_id}-{}-01",
        hex(&bazaar_kit::http::id_bytes::<8>())
    );
    let r = http
        .post(format!("{}/api/v1/orders/", up.gateway))
        .bearer_auth(&access)
        .header("traceparent", &traceparent)
        .json(&crate::orders::shop::body(&[(product, 1)], "tok_visa"))
        .send()
        .await
        .expect("order");
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap_or_default());
    let order: serde_json::Value = r.json().await.expect("order");
    let id = order["id"].as_str().expect("id").to_string();

    eventually(60, "the email send's span in the trace", || async {
        let got: Vec<Got> = spans
            .lock()
            .expect("spans")
            .iter()
            .filter(|s| s.trace_id == trace_id)
            .cloned()
            .collect();
        got.iter().any(|s| s.name == "send email").then_some(())
    })
    .await;
    // The late spans (the send's parents end after it) have a moment.
    tokio::time::sleep(std::time::Duration::from_millis(800)).await;
    let trace: Vec<Got> = spans
        .lock()
        .expect("spans")
        .iter()
        .filter(|s| s.trace_id == trace_id)
        .cloned()
        .collect();
    let summary: Vec<String> = trace
        .iter()
        .map(|s| format!("{} {} {} <- {}", s.service, s.name, s.span_id, s.parent))
        .collect();
    let find = |service: &str, pred: &dyn Fn(&Got) -> bool| -> Got {
        trace
            .iter()
            .find(|s| s.service == service && pred(s))
            .cloned()
            .unwrap_or_else(|| {
                panic!(
                    "no such {service} span in the trace:\n{}",
                    summary.join("\n")
                )
            })
    };
    let by_id: std::collections::HashMap<&str, &Got> =
        trace.iter().map(|s| (s.span_id.as_str(), s)).collect();
    // Every parent is in the trace, except the client's span (the root's).
    let client_span = &traceparent[36..52];
    for s in &trace {
        assert!(
            s.parent == client_span || by_id.contains_key(s.parent.as_str()),
            "{} {}: parent {} missing:\n{}",
            s.service,
            s.name,
            s.parent,
            summary.join("\n")
        );
    }
    let descends = |child: &Got, ancestor: &Got| {
        let mut at = child.parent.clone();
        while let Some(p) = by_id.get(at.as_str()) {
            if p.span_id == ancestor.span_id {
                return true;
            }
            at = p.parent.clone();
        }
        false
    };
    let gateway = find("gateway", &|s| {
        s.attributes
            .get("http.request.method")
            .is_some_and(|m| m == "POST")
    });
    assert_eq!(
        gateway.parent, client_span,
        "the gateway joins the client's trace"
    );
    let placed = find("orders", &|s| s.name == "POST /api/v1/orders");
    assert_eq!(
        placed.attributes.get("http.route").map(String::as_str),
        Some("/api/v1/orders")
    );
    assert!(descends(&placed, &gateway), "orders under the gateway");
    let reserve = find("orders", &|s| s.name == "saga reserve");
    assert_eq!(reserve.attributes.get("order_id"), Some(&id));
    assert!(
        descends(&reserve, &placed),
        "the saga joins the placing request"
    );
    let charge = find("orders", &|s| s.name == "saga charge");
    assert!(descends(&charge, &placed));
    let catalog = find("catalog", &|s| {
        s.attributes.get("rpc.system").is_some_and(|v| v == "grpc") && descends(s, &reserve)
    });
    let payments = find("payments", &|s| {
        s.attributes.get("rpc.system").is_some_and(|v| v == "grpc") && descends(s, &charge)
    });
    let publish = find("orders", &|s| s.name == "publish order.confirmed");
    assert!(
        descends(&publish, &charge),
        "the event is the charge step's"
    );
    assert_eq!(
        publish
            .attributes
            .get("messaging.destination.name")
            .map(String::as_str),
        Some("order.confirmed")
    );
    let process = find("notifications", &|s| s.name == "process order.confirmed");
    assert!(
        descends(&process, &publish),
        "the consumer under the producer"
    );
    let send = find("notifications", &|s| s.name == "send email");
    assert!(descends(&send, &process), "the send under the consumer");
    assert!(!sink.messages().is_empty(), "the email went out over SMTP");
    eprintln!(
        "{} spans in trace {trace_id}: gateway {} → orders {} → catalog {} / payments {} → publish {} → process {} → send {}",
        trace.len(),
        gateway.span_id,
        placed.span_id,
        catalog.span_id,
        payments.span_id,
        publish.span_id,
        process.span_id,
        send.span_id
    );
    drop(up);
    if store.is_postgres() {
        let mut config = bazaar_kit::Config::default();
        config.database_url = Some(bazaar_kit::Secret::new(format!(
            "{}/bzt_{tag}",
            bazaar_kit::testing::postgres_url()
        )));
        crate::common::drop_databases(&config).await;
    }
}

bazaar_kit::both_stores!(Store { trace_sqlite: Sqlite, trace_postgres_rabbitmq: PostgresRabbitMq }; [one_trace_per_checkout]);
