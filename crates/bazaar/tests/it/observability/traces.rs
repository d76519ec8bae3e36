//! Traces: one checkout, one trace, received over OTLP inside the test.

use bazaar_kit::testing::eventually;

use super::Up;
use crate::common::Store;

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

    // Spans arrive in batches, children before their parents, each service
    // on its own schedule: wait until every hop is there and every parent
    // with it (the client's aside).
    let client_span = traceparent[36..52].to_string();
    let trace: Vec<Got> = eventually(60, "the whole trace, down to the email send", || async {
        let got: Vec<Got> = spans
            .lock()
            .expect("spans")
            .iter()
            .filter(|s| s.trace_id == trace_id)
            .cloned()
            .collect();
        let ids: std::collections::HashSet<&str> = got.iter().map(|s| s.span_id.as_str()).collect();
        // Each service exports on its own schedule: wait for all of them.
        let has = |service: &str, pred: &dyn Fn(&Got) -> bool| {
            got.iter().any(|s| s.service == service && pred(s))
        };
        let rpc = |s: &Got| s.attributes.contains_key("rpc.system");
        let whole = has("notifications", &|s| s.name == "send email")
            && has("notifications", &|s| s.name == "process order.confirmed")
            && has("orders", &|s| s.name == "publish order.confirmed")
            && has("orders", &|s| s.name == "saga charge")
            && has("catalog", &rpc)
            && has("payments", &rpc)
            && has("gateway", &|_| true)
            && got
                .iter()
                .all(|s| s.parent == client_span || ids.contains(s.parent.as_str()));
        whole.then_some(got)
    })
    .await;
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
    let client_span = client_span.as_str();
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

bazaar_kit::both_stores!(Store { sqlite: Sqlite, postgres_rabbitmq: PostgresRabbitMq }; [one_trace_per_checkout]);
