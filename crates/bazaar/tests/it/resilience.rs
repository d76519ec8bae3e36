//! Start-up that waits out an outage: a service started while its broker
//! is unreachable, or whose link dies in the middle of the declarations,
//! stays up with `/readyz` 503 naming the broker, and becomes ready by
//! itself once the broker answers — on RabbitMQ and on NATS; a service
//! started while its database is unreachable answers `/healthz` 200 and
//! `/readyz` 503 naming the database until it is reached.

use std::net::SocketAddr;
use std::time::Duration;

use bazaar_kit::testing::Cable;
use bazaar_kit::{Secret, ServiceName};
use reqwest::StatusCode;

use crate::common::{self, Store};

#[derive(Clone, Copy, Debug)]
enum Broker {
    RabbitMq,
    Nats,
}

impl Broker {
    fn server(self) -> (&'static str, &'static str) {
        match self {
            Broker::RabbitMq => ("RabbitMQ", "127.0.0.1:5672"),
            Broker::Nats => ("NATS", "127.0.0.1:4222"),
        }
    }

    fn url(self, addr: SocketAddr) -> String {
        match self {
            Broker::RabbitMq => format!("amqp://guest:guest@{addr}/%2f"),
            Broker::Nats => format!("nats://{addr}"),
        }
    }
}

/// Notifications (it consumes events, so it declares a queue) on SQLite,
/// its broker behind `cable`, with an operator listener for the details.
async fn start_notifications(
    broker: Broker,
    cable: &Cable,
    dir: &std::path::Path,
) -> bazaar::Running {
    let mut config = common::base_config(dir, Store::Sqlite);
    config.broker_url = Secret::new(broker.url(cable.addr()));
    config.service_mut(ServiceName::Notifications).admin_listen =
        Some(SocketAddr::from(([127, 0, 0, 1], 0)));
    bazaar::start(config, &[ServiceName::Notifications])
        .await
        .expect("notifications starts although its broker is unreachable")
}

async fn readiness(http: &reqwest::Client, running: &bazaar::Running) -> (StatusCode, String) {
    let url = format!(
        "{}/readyz",
        running
            .admin_url(ServiceName::Notifications)
            .expect("admin url")
    );
    let response = http.get(url).send().await.expect("readyz answers");
    let status = response.status();
    (status, response.text().await.unwrap_or_default())
}

/// Asserts `/readyz` stays 503, naming the broker, for `secs`.
async fn stays_unready(http: &reqwest::Client, running: &bazaar::Running, secs: u64, when: &str) {
    let until = tokio::time::Instant::now() + Duration::from_secs(secs);
    while tokio::time::Instant::now() < until {
        let (status, body) = readiness(http, running).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{when}: {body}");
        assert!(
            body.contains("broker"),
            "{when}: the reason names the broker: {body}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

async fn becomes_ready(http: &reqwest::Client, running: &bazaar::Running, when: &str) {
    common::eventually(30, when, || async {
        (readiness(http, running).await.0 == StatusCode::OK).then_some(())
    })
    .await;
}

async fn waits_out_the_broker(broker: Broker) {
    let (what, server) = broker.server();
    if !common::server_available(what, server).await {
        return;
    }
    let http = reqwest::Client::new();

    // 1. The broker's port is closed at start-up.
    let cable = Cable::closed(server);
    let dir = tempfile::tempdir().expect("dir");
    let running = start_notifications(broker, &cable, dir.path()).await;
    stays_unready(&http, &running, 2, "broker port closed").await;
    cable.connect().await;
    becomes_ready(&http, &running, "ready once the broker's port opens").await;
    running.stop().await.expect("clean stop");

    // 2. The link dies in the middle of the handshake or the declarations:
    // each connection is cut after a number of bytes from the broker. For
    // RabbitMQ, `connection.start` is ≈ 500 bytes; 520–600 land in the
    // tune/open, the exchange and the queue declarations.
    let dir = tempfile::tempdir().expect("dir");
    let running = {
        cable.limit_bytes(Some(40));
        start_notifications(broker, &cable, dir.path()).await
    };
    for bytes in [40, 300, 520, 560, 600] {
        cable.limit_bytes(Some(bytes));
        cable.connect().await;
        stays_unready(&http, &running, 2, &format!("link cut after {bytes} bytes")).await;
    }
    cable.limit_bytes(None);
    cable.connect().await;
    becomes_ready(&http, &running, "ready once the link holds").await;
    running.stop().await.expect("clean stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_waits_out_rabbitmq() {
    waits_out_the_broker(Broker::RabbitMq).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_waits_out_nats() {
    waits_out_the_broker(Broker::Nats).await;
}

/// Catalog on PostgreSQL behind a closed cable: `start` keeps waiting (it
/// never gives up by default) while the port answers `/healthz` 200 and
/// everything else 503 naming the database; once the cable connects, the
/// service is built and serves.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_waits_out_the_database() {
    if !common::server_available("PostgreSQL", "127.0.0.1:5432").await {
        return;
    }
    let http = reqwest::Client::new();
    let cable = Cable::closed("127.0.0.1:5432");
    let dir = tempfile::tempdir().expect("dir");
    let mut config = common::base_config(dir.path(), Store::Postgres);
    let tag = uuid::Uuid::new_v4().simple().to_string()[..12].to_string();
    config.database_url = Some(Secret::new(format!(
        "postgres://postgres@{}/bzt_{tag}",
        cable.addr()
    )));
    assert_eq!(config.db_connect_timeout_secs, 0, "the default waits");
    // A fixed port, so the test can reach it before `start` returns.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    config.catalog.listen = Some(addr);
    let cleanup = config.clone();
    let starting = tokio::spawn(bazaar::start(config, &[ServiceName::Catalog]));
    let base = format!("http://{addr}");
    let get = |path: &str| {
        let request = http.get(format!("{base}{path}")).send();
        async move {
            let response = request.await.ok()?;
            let status = response.status();
            Some((status, response.text().await.unwrap_or_default()))
        }
    };
    common::eventually(30, "catalog's port answers while it waits", || {
        get("/readyz")
    })
    .await;
    let until = tokio::time::Instant::now() + Duration::from_secs(3);
    while tokio::time::Instant::now() < until {
        let response = http
            .get(format!("{base}/healthz"))
            .send()
            .await
            .expect("healthz answers");
        assert_eq!(
            response.headers()["connection"],
            "close",
            "no client pools a connection to the placeholder"
        );
        assert_eq!(response.status(), StatusCode::OK, "alive while waiting");
        for path in ["/readyz", "/api/v1/products/"] {
            let (status, body) = get(path).await.expect("answers");
            assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{path}: {body}");
            assert!(body.contains("database not reached yet"), "{path}: {body}");
            assert!(!body.contains("postgres://"), "{path} shows no URL: {body}");
        }
        assert!(!starting.is_finished(), "start gave up on the database");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    cable.connect().await;
    let running = tokio::time::timeout(Duration::from_secs(60), starting)
        .await
        .expect("start returns once the database answers")
        .expect("start task")
        .expect("catalog starts");
    let (status, body) = get("/readyz").await.expect("readyz answers");
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = get("/api/v1/products/").await.expect("products");
    assert_eq!(status, StatusCode::OK, "{body}");
    running.stop().await.expect("clean stop");
    common::drop_databases(&cleanup).await;
}
