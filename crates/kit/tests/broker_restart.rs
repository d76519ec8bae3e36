//! A broker restart in the middle of a stream loses nothing: every event
//! sent before, during and after the outage is applied exactly once.
//!
//! This stops and starts the machine's RabbitMQ / NATS / Redis server, so
//! it runs under `CI=true` (or with `BAZAAR_TEST_BROKER_RESTART=1`) only.

mod support;

use std::process::Command;
use std::time::Duration;

use support::{Broker, Rig, Store};

fn enabled() -> bool {
    let on =
        support::in_ci() || std::env::var("BAZAAR_TEST_BROKER_RESTART").is_ok_and(|v| v == "1");
    if !on {
        eprintln!(
            "\n!!!!!!!! SKIPPED: broker restart tests restart system services; run with CI=true or BAZAAR_TEST_BROKER_RESTART=1 !!!!!!!!\n"
        );
    }
    on
}

fn sh(script: &str) {
    let status = Command::new("bash")
        .arg("-c")
        .arg(script)
        .status()
        .expect("bash");
    assert!(status.success(), "command failed: {script}");
}

async fn wait_port(addr: &str, up: bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let open = tokio::net::TcpStream::connect(addr).await.is_ok();
        if open == up {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{addr} did not go {}",
            if up { "up" } else { "down" }
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn restart(broker: Broker) {
    match broker {
        Broker::RabbitMq => {
            sh("rabbitmqctl -q stop_app");
            wait_port("127.0.0.1:5672", false).await;
            tokio::time::sleep(Duration::from_secs(2)).await;
            sh("rabbitmqctl -q start_app");
            wait_port("127.0.0.1:5672", true).await;
        }
        Broker::Nats => {
            sh("pkill -x nats-server || true");
            wait_port("127.0.0.1:4222", false).await;
            tokio::time::sleep(Duration::from_secs(2)).await;
            sh(
                "start-stop-daemon --start --oknodo --background --exec /usr/sbin/nats-server -- -a 127.0.0.1 -p 4222 -js -sd /var/lib/nats-server -l /var/log/nats-server.log",
            );
            wait_port("127.0.0.1:4222", true).await;
        }
        Broker::Redis => {
            // A clean stop writes the dataset to disk (`SHUTDOWN SAVE`, even
            // with no save points configured) and the restart loads it, as
            // an operator's restart of a Redis broker with persistence does.
            let dir = String::from_utf8(
                Command::new("redis-cli")
                    .args(["--raw", "CONFIG", "GET", "dir"])
                    .output()
                    .expect("redis-cli")
                    .stdout,
            )
            .expect("utf-8");
            let dir = dir.lines().nth(1).unwrap_or("/var/lib/redis").to_string();
            sh("redis-cli SHUTDOWN SAVE || true");
            wait_port("127.0.0.1:6379", false).await;
            tokio::time::sleep(Duration::from_secs(2)).await;
            sh(&format!(
                "mkdir -p /var/log/redis && redis-server --daemonize yes --bind '127.0.0.1 -::1' --port 6379 \
                 --save '' --appendonly no --dir '{dir}' --logfile /var/log/redis/ci.log"
            ));
            wait_port("127.0.0.1:6379", true).await;
        }
        Broker::Embedded => {}
    }
}

async fn survives_restart(broker: Broker) {
    if !enabled() {
        return;
    }
    let Some(rig) = Rig::new(broker, Store::Sqlite).await else {
        return;
    };
    let mut ids = Vec::new();
    for i in 0..100 {
        ids.push(
            rig.publish(serde_json::json!({ "phase": "before", "i": i }))
                .await
                .id,
        );
    }
    rig.wait_applied(&ids, 60).await;
    let outage = tokio::spawn(restart(broker));
    // Keep producing through the outage; the outbox holds what cannot go out.
    while !outage.is_finished() {
        ids.push(
            rig.publish(serde_json::json!({ "phase": "during" }))
                .await
                .id,
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    outage.await.expect("restart");
    for i in 0..100 {
        ids.push(
            rig.publish(serde_json::json!({ "phase": "after", "i": i }))
                .await
                .id,
        );
    }
    let applied = rig.wait_applied(&ids, 120).await;
    assert!(
        ids.iter().all(|id| applied[id] == 1),
        "an event was applied twice"
    );
    assert_eq!(applied.len(), ids.len());
    eprintln!(
        "{broker:?}: {} events across a restart, each applied once",
        ids.len()
    );
    rig.stop().await;
}

/// Both restarts in one test: they must not overlap with each other.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broker_restarts_lose_nothing() {
    survives_restart(Broker::RabbitMq).await;
    survives_restart(Broker::Nats).await;
    survives_restart(Broker::Redis).await;
}
