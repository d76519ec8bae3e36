//! Fault injection: the platform as separate processes (`bazaar serve`) on
//! PostgreSQL and a broker, driven by a few hundred checkouts and cancels
//! (each retried with its Idempotency-Key until it gets an answer) while
//! services are killed with SIGKILL and restarted, and the broker link and
//! two database links are cut through TCP forwarders the test controls (the
//! machine's shared servers are never stopped). Then every invariant is read
//! back from the databases: each accepted order exactly once and final, at
//! most one successful charge per order and exactly one for confirmed
//! orders, a refund exactly once for every cancelled order that was paid,
//! stock conserved per product with no live reservation, one email per
//! event, every outbox drained, no dead letter, and no process that exited
//! without being killed.
//!
//! On RabbitMQ, NATS JetStream and Redis Streams, one run after the other.
//!
//! It reports pending → final p50/p99 while faults ran and the time from the
//! last fault to quiescence (goals: p99 ≤ 5 s, quiescence ≤ 10 s).
//! `BAZAAR_FAULT_ORDERS` changes the number of orders (default 300; with the
//! shoppers' think time the run lasts about 45 s).

#[path = "common/mod.rs"]
mod common;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bazaar_kit::testing::Cable;
use bazaar_kit::{Config, Secret, ServiceName};
use rand::Rng;
use serde_json::{Value, json};
use sqlx::postgres::PgPool;
use tokio::process::{Child, Command};
use tokio::sync::Mutex;

/// Services killed at random (the gateway too: clients retry).
const VICTIMS: [ServiceName; 6] = ServiceName::ALL;
/// Products the orders draw from, and the stock each starts with.
const PRODUCTS: usize = 6;
const INITIAL_STOCK: i64 = 400;
/// Concurrent shoppers.
const SHOPPERS: usize = 8;

#[derive(Clone, Copy, Debug)]
enum Broker {
    RabbitMq,
    Nats,
    Redis,
}

impl Broker {
    fn server(self) -> (&'static str, &'static str) {
        match self {
            Broker::RabbitMq => ("RabbitMQ", "127.0.0.1:5672"),
            Broker::Nats => ("NATS", "127.0.0.1:4222"),
            Broker::Redis => ("Redis", "127.0.0.1:6379"),
        }
    }

    fn url(self, addr: SocketAddr) -> String {
        match self {
            Broker::RabbitMq => format!("amqp://guest:guest@{addr}/%2f"),
            Broker::Nats => format!("nats://{addr}"),
            Broker::Redis => format!("redis://{addr}"),
        }
    }
}

/// One `bazaar serve <service>` process, restartable with the same
/// environment (same ports, same databases).
struct Proc {
    name: ServiceName,
    env: Vec<(String, String)>,
    log: PathBuf,
    child: Option<Child>,
    /// Deaths the test did not cause.
    unexpected: Vec<String>,
}

impl Proc {
    fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("log file");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_bazaar"));
        cmd.arg("serve")
            .arg(self.name.as_str())
            .env_clear()
            .envs(self.env.iter().cloned())
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .kill_on_drop(true);
        self.child = Some(cmd.spawn().expect("bazaar serve starts"));
    }

    /// Records an exit the test did not cause.
    fn check(&mut self) {
        if let Some(child) = self.child.as_mut()
            && let Ok(Some(status)) = child.try_wait()
        {
            self.unexpected.push(format!(
                "{} exited by itself ({status}); log tail:\n{}",
                self.name,
                tail(&self.log, 15)
            ));
            self.child = None;
            self.spawn();
        }
    }

    async fn kill(&mut self) {
        self.check();
        if let Some(mut child) = self.child.take() {
            let _ = child.start_kill();
            let _ = child.wait().await;
        }
    }
}

fn tail(path: &Path, n: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

fn free_port() -> SocketAddr {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("free port");
    l.local_addr().expect("addr")
}

struct Rig {
    procs: Vec<Arc<Mutex<Proc>>>,
    broker_cable: Cable,
    /// Database links of orders and notifications.
    db_cables: Vec<(ServiceName, Cable)>,
    gateway: String,
    config: Config,
    dir: tempfile::TempDir,
}

impl Rig {
    async fn start(broker: Broker, tag: &str) -> Rig {
        let dir = tempfile::tempdir().expect("dir");
        let broker_cable = Cable::open(broker.server().1).await;
        let db_cables = vec![
            (ServiceName::Orders, Cable::open("127.0.0.1:5432").await),
            (
                ServiceName::Notifications,
                Cable::open("127.0.0.1:5432").await,
            ),
        ];
        let base_db = format!("{}/bzt_f{tag}", common::postgres_url());
        let mut env: Vec<(String, String)> = vec![
            ("BAZAAR_DATA_DIR".into(), dir.path().display().to_string()),
            ("BAZAAR_LOG_LEVEL".into(), "warn".into()),
            ("BAZAAR_DATABASE_URL".into(), base_db.clone()),
            ("BAZAAR_BROKER_URL".into(), broker.url(broker_cable.addr())),
            ("BAZAAR_BROKER_NAMESPACE".into(), format!("bzf{tag}")),
            ("BAZAAR_DB_MAX_CONNECTIONS".into(), "4".into()),
            ("BAZAAR_GATEWAY_RATE_LIMIT".into(), "false".into()),
            ("BAZAAR_GATEWAY_ADMIN_LISTEN".into(), "127.0.0.1:0".into()),
            ("BAZAAR_NOTIFICATIONS_EMAIL_BACKEND".into(), "file".into()),
        ];
        let mut config = Config::default();
        config.data_dir = dir.path().to_path_buf();
        config.database_url = Some(Secret::new(base_db));
        let mut gateway = String::new();
        for name in ServiceName::ALL {
            let upper = name.as_str().to_ascii_uppercase();
            let addr = free_port();
            env.push((format!("BAZAAR_{upper}_LISTEN"), addr.to_string()));
            if name.serves_grpc() {
                env.push((
                    format!("BAZAAR_{upper}_GRPC_LISTEN"),
                    free_port().to_string(),
                ));
            }
            env.push((
                format!("BAZAAR_{upper}_CLIENT_SECRET"),
                format!("fault-test-secret-{tag}-{upper}-0123456789abcdef"),
            ));
            if name == ServiceName::Gateway {
                gateway = format!("http://{addr}");
            }
        }
        for (name, cable) in &db_cables {
            let upper = name.as_str().to_ascii_uppercase();
            let url = format!(
                "postgres://postgres@{}/bzt_f{tag}_{}",
                cable.addr(),
                name.as_str()
            );
            env.push((format!("BAZAAR_{upper}_DATABASE_URL"), url));
        }
        let procs = ServiceName::ALL
            .into_iter()
            .map(|name| {
                let mut p = Proc {
                    name,
                    env: env.clone(),
                    log: dir.path().join(format!("{}.log", name.as_str())),
                    child: None,
                    unexpected: Vec::new(),
                };
                p.spawn();
                Arc::new(Mutex::new(p))
            })
            .collect();
        let rig = Rig {
            procs,
            broker_cable,
            db_cables,
            gateway,
            config,
            dir,
        };
        rig.wait_ready().await;
        rig
    }

    /// Every service answers `/readyz` 200 (database and broker reached).
    async fn wait_ready(&self) {
        let http = reqwest::Client::new();
        for p in &self.procs {
            let (name, listen) = {
                let p = p.lock().await;
                let key = format!("BAZAAR_{}_LISTEN", p.name.as_str().to_ascii_uppercase());
                let listen = p
                    .env
                    .iter()
                    .find(|(k, _)| *k == key)
                    .map(|(_, v)| v.clone())
                    .expect("listen");
                (p.name, listen)
            };
            let url = format!("http://{listen}/readyz");
            let started = Instant::now();
            loop {
                let ok = http
                    .get(&url)
                    .timeout(Duration::from_secs(2))
                    .send()
                    .await
                    .is_ok_and(|r| r.status() == 200);
                if ok {
                    break;
                }
                if started.elapsed() > Duration::from_secs(60) {
                    let log = p.lock().await.log.clone();
                    panic!("{name} not ready after 60 s; log:\n{}", tail(&log, 30));
                }
                p.lock().await.check();
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }

    async fn pool(&self, name: ServiceName) -> PgPool {
        let url = self.config.database_url(name);
        sqlx::postgres::PgPoolOptions::new()
            .max_connections(2)
            .connect(&url)
            .await
            .unwrap_or_else(|e| panic!("{name} database: {e}"))
    }

    async fn stop(self) {
        for p in &self.procs {
            p.lock().await.kill().await;
        }
        common::drop_databases(&self.config).await;
        drop(self.dir);
    }
}

/// What the shoppers did.
#[derive(Default)]
struct Ledger {
    /// Idempotency-Key → the order id every 201 for it carried.
    accepted: std::sync::Mutex<HashMap<String, HashSet<String>>>,
    /// Orders whose cancel answered 200.
    cancelled: std::sync::Mutex<HashSet<String>>,
    /// Requests that failed and were retried (5xx, timeouts, resets).
    retries: AtomicUsize,
}

/// Sends `req` until it gets a 2xx or a 4xx answer (the same body each
/// time: the Idempotency-Key makes a retried checkout one order).
async fn until_answered(
    ledger: &Ledger,
    make: impl Fn() -> reqwest::RequestBuilder,
) -> (u16, Value) {
    let started = Instant::now();
    loop {
        match make().timeout(Duration::from_secs(15)).send().await {
            Ok(r) if r.status().as_u16() < 500 => {
                let status = r.status().as_u16();
                let body = r.json().await.unwrap_or(Value::Null);
                return (status, body);
            }
            _ => {
                ledger.retries.fetch_add(1, Ordering::Relaxed);
                assert!(
                    started.elapsed() < Duration::from_secs(120),
                    "a request went unanswered for two minutes"
                );
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
}

async fn register(http: &reqwest::Client, gateway: &str, i: usize, tag: &str) -> String {
    let ledger = Ledger::default();
    let username = format!("shopper{i}x{tag}");
    let password = format!("Quartz-Meadow-{i}-Lantern-42");
    let (status, body) = until_answered(&ledger, || {
        http.post(format!("{gateway}/api/v1/auth/register/"))
            .json(&json!({"username": username, "email": format!("{username}@example.com"), "password": password}))
    })
    .await;
    assert_eq!(status, 201, "register: {body}");
    let (status, body) = until_answered(&ledger, || {
        http.post(format!("{gateway}/api/v1/auth/token/"))
            .json(&json!({"username": username, "password": password}))
    })
    .await;
    assert_eq!(status, 200, "login: {body}");
    body["access"].as_str().expect("access").to_string()
}

async fn shop(
    http: reqwest::Client,
    gateway: String,
    token: String,
    products: Arc<Vec<String>>,
    next: Arc<AtomicUsize>,
    total: usize,
    ledger: Arc<Ledger>,
) {
    loop {
        let n = next.fetch_add(1, Ordering::Relaxed);
        if n >= total {
            break;
        }
        let (items, payment, cancel) = {
            let mut rng = rand::rng();
            let lines = rng.random_range(1..=2);
            let mut chosen: Vec<usize> = Vec::new();
            while chosen.len() < lines {
                let p = rng.random_range(0..products.len());
                if !chosen.contains(&p) {
                    chosen.push(p);
                }
            }
            let items: Vec<Value> = chosen
                .iter()
                .map(|p| json!({"product_id": products[*p], "quantity": rng.random_range(1..=2)}))
                .collect();
            let payment = if rng.random_bool(0.2) {
                "tok_chargeDeclined"
            } else {
                "tok_visa"
            };
            (items, payment, rng.random_bool(0.25))
        };
        // Think time: the run lasts long enough for a dozen faults.
        let think = rand::rng().random_range(400..1200);
        tokio::time::sleep(Duration::from_millis(think)).await;
        let key = uuid::Uuid::new_v4().to_string();
        let body = json!({
            "items": items,
            "payment_token": payment,
            "shipping_address": {"name": "Ada Lovelace", "line1": "12 St James's Sq",
                                 "city": "London", "postal_code": "SW1Y 4JH", "country": "GB"},
        });
        let (status, order) = until_answered(&ledger, || {
            http.post(format!("{gateway}/api/v1/orders/"))
                .bearer_auth(&token)
                .header("Idempotency-Key", &key)
                .json(&body)
        })
        .await;
        assert_eq!(status, 201, "checkout: {order}");
        let id = order["id"].as_str().expect("order id").to_string();
        ledger
            .accepted
            .lock()
            .expect("ledger")
            .entry(key)
            .or_default()
            .insert(id.clone());
        if cancel {
            let wait = rand::rng().random_range(0..800);
            tokio::time::sleep(Duration::from_millis(wait)).await;
            let (status, body) = until_answered(&ledger, || {
                http.post(format!("{gateway}/api/v1/orders/{id}/cancel/"))
                    .bearer_auth(&token)
            })
            .await;
            match status {
                200 => {
                    ledger.cancelled.lock().expect("ledger").insert(id);
                }
                409 => {} // already rejected (declined) or cancelled
                _ => panic!("cancel answered {status}: {body}"),
            }
        }
    }
}

/// The faults, one every 2–3 s: every service killed once (SIGKILL, then
/// restarted after 0.2–0.8 s) in a random order, interleaved with cuts of
/// 3 s of the broker link (twice) and of each database link (once), all of
/// them even if the shoppers finish first; then random kills until the
/// shoppers are done. Returns the instant of the
/// last fault and what was done.
async fn chaos(rig: &Rig, done: &AtomicBool) -> (Instant, BTreeMap<String, usize>) {
    enum Fault {
        Kill(usize),
        Cut(&'static str, usize),
    }
    let mut plan: Vec<Fault> = {
        let mut kills: Vec<usize> = (0..VICTIMS.len()).collect();
        kills.sort_by_key(|_| rand::rng().random::<u32>());
        let mut kills = kills.into_iter().map(Fault::Kill);
        let mut plan = Vec::new();
        plan.extend(kills.next());
        plan.push(Fault::Cut("broker link", usize::MAX));
        plan.extend(kills.next());
        plan.push(Fault::Cut("orders database link", 0));
        plan.extend(kills.next());
        plan.extend(kills.next());
        plan.push(Fault::Cut("notifications database link", 1));
        plan.extend(kills.next());
        plan.push(Fault::Cut("broker link", usize::MAX));
        plan.extend(kills);
        plan.reverse();
        plan
    };
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    let mut last_fault = Instant::now();
    loop {
        let pause = rand::rng().random_range(2000..3000);
        let step = Instant::now() + Duration::from_millis(pause);
        // The planned faults all happen, even when the shoppers finish
        // first; random kills only while they shop.
        let over = || done.load(Ordering::Relaxed) && plan.is_empty();
        while Instant::now() < step && !over() {
            for p in &rig.procs {
                p.lock().await.check();
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        if over() {
            break;
        }
        let fault = plan
            .pop()
            .unwrap_or_else(|| Fault::Kill(rand::rng().random_range(0..VICTIMS.len())));
        match fault {
            Fault::Cut(what, which) => {
                let cable = match which {
                    usize::MAX => &rig.broker_cable,
                    i => &rig.db_cables[i].1,
                };
                cable.cut();
                *counts.entry(format!("cut {what} 3 s")).or_default() += 1;
                tokio::time::sleep(Duration::from_secs(3)).await;
                cable.connect().await;
            }
            Fault::Kill(i) => {
                // `procs` is in `ServiceName::ALL` order.
                let victim = VICTIMS[i];
                let mut p = rig.procs[i].lock().await;
                p.kill().await;
                *counts.entry(format!("kill -9 {victim}")).or_default() += 1;
                let down = rand::rng().random_range(200..800);
                tokio::time::sleep(Duration::from_millis(down)).await;
                p.spawn();
            }
        }
        last_fault = Instant::now();
    }
    (last_fault, counts)
}

/// Quiescent: every order final with nothing owed, every outbox drained,
/// every email out.
async fn quiescent(pools: &HashMap<ServiceName, PgPool>) -> Result<(), String> {
    let q = |name: ServiceName, sql: &'static str| {
        let pool = pools[&name].clone();
        async move {
            sqlx::query_scalar::<_, i64>(sql)
                .fetch_one(&pool)
                .await
                .map_err(|e| format!("{name}: {e}"))
        }
    };
    let busy = q(
        ServiceName::Orders,
        "SELECT COUNT(*) FROM orders WHERE status IN ('pending', 'awaiting_payment') OR compensate = 1",
    )
    .await?;
    if busy > 0 {
        return Err(format!("{busy} orders not final"));
    }
    for name in [
        ServiceName::Orders,
        ServiceName::Catalog,
        ServiceName::Payments,
        ServiceName::Identity,
    ] {
        let n = q(
            name,
            "SELECT COUNT(*) FROM outbox WHERE published_at IS NULL",
        )
        .await?;
        if n > 0 {
            return Err(format!("{name}: {n} events unpublished"));
        }
    }
    let final_events = q(
        ServiceName::Orders,
        "SELECT COUNT(*) FROM outbox WHERE event_type IN ('order.confirmed', 'order.rejected', 'order.cancelled')",
    )
    .await?;
    let welcomes = q(
        ServiceName::Identity,
        "SELECT COUNT(*) FROM outbox WHERE event_type = 'user.registered'",
    )
    .await?;
    let sent = q(
        ServiceName::Notifications,
        "SELECT COUNT(*) FROM notifications WHERE status = 'sent'",
    )
    .await?;
    if sent < final_events + welcomes {
        return Err(format!("{sent} of {} emails sent", final_events + welcomes));
    }
    Ok(())
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn parse_time(s: &str) -> f64 {
    let t = time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|e| panic!("timestamp {s}: {e}"));
    t.unix_timestamp_nanos() as f64 / 1e9
}

async fn faults_lose_nothing(broker: Broker) {
    let (what, server) = broker.server();
    if !common::server_available("PostgreSQL", "127.0.0.1:5432").await
        || !common::server_available(what, server).await
    {
        return;
    }
    let total: usize = std::env::var("BAZAAR_FAULT_ORDERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(300);
    let tag = uuid::Uuid::new_v4().simple().to_string()[..10].to_string();
    let rig = Rig::start(broker, &tag).await;
    let http = reqwest::Client::new();

    // Products with known stock, straight in catalog's database.
    let catalog = rig.pool(ServiceName::Catalog).await;
    let db = bazaar_kit::Db::connect(
        &rig.config.database_url(ServiceName::Catalog),
        &bazaar_catalog::MIGRATIONS,
        Duration::from_secs(10),
    )
    .await
    .expect("catalog db");
    bazaar_catalog::seed::seed(&db, PRODUCTS as u64)
        .await
        .expect("seed");
    db.close().await;
    let products: Vec<String> = sqlx::query_scalar("SELECT id FROM products ORDER BY pk LIMIT $1")
        .bind(PRODUCTS as i64)
        .fetch_all(&catalog)
        .await
        .expect("products");
    sqlx::query("UPDATE products SET stock = $1")
        .bind(INITIAL_STOCK)
        .execute(&catalog)
        .await
        .expect("stock");
    let products = Arc::new(products);

    let mut tokens = Vec::new();
    for i in 0..SHOPPERS {
        tokens.push(register(&http, &rig.gateway, i, &tag).await);
    }

    // Shoppers and chaos together.
    let ledger = Arc::new(Ledger::default());
    let next = Arc::new(AtomicUsize::new(0));
    let done = AtomicBool::new(false);
    let started = Instant::now();
    let shoppers = futures::future::join_all(tokens.into_iter().map(|token| {
        tokio::spawn(shop(
            http.clone(),
            rig.gateway.clone(),
            token,
            products.clone(),
            next.clone(),
            total,
            ledger.clone(),
        ))
    }));
    let ((last_fault, faults), results) = tokio::join!(chaos(&rig, &done), async {
        let r = shoppers.await;
        done.store(true, Ordering::Relaxed);
        r
    });
    for r in results {
        r.expect("a shopper panicked");
    }
    let load_secs = started.elapsed().as_secs_f64();

    // Quiescence, read from the databases.
    let mut pools = HashMap::new();
    for name in ServiceName::ALL.into_iter().filter(|n| n.has_database()) {
        pools.insert(name, rig.pool(name).await);
    }
    let mut state = Err(String::new());
    while last_fault.elapsed() < Duration::from_secs(120) {
        for p in &rig.procs {
            p.lock().await.check();
        }
        state = quiescent(&pools).await;
        if state.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let quiet_after = last_fault.elapsed().as_secs_f64();
    if let Err(why) = &state {
        let mut logs = String::new();
        for p in &rig.procs {
            let p = p.lock().await;
            logs.push_str(&format!("--- {}\n{}\n", p.name, tail(&p.log, 10)));
        }
        panic!("not quiescent 120 s after the last fault: {why}\n{logs}");
    }

    // Invariants.
    let orders = &pools[&ServiceName::Orders];
    let accepted = ledger.accepted.lock().expect("ledger").clone();
    for (key, ids) in &accepted {
        assert_eq!(ids.len(), 1, "key {key} answered several orders: {ids:?}");
    }
    let accepted_ids: HashSet<String> = accepted.values().flatten().cloned().collect();
    let rows: Vec<(String, String, i64)> =
        sqlx::query_as("SELECT id, status, compensate FROM orders")
            .fetch_all(orders)
            .await
            .expect("orders");
    assert_eq!(rows.len(), total, "one order per checkout");
    let status: HashMap<String, String> = rows
        .iter()
        .map(|(id, s, _)| (id.clone(), s.clone()))
        .collect();
    assert_eq!(
        status.keys().cloned().collect::<HashSet<_>>(),
        accepted_ids,
        "the orders are exactly the accepted ones"
    );
    for id in ledger.cancelled.lock().expect("ledger").iter() {
        assert_eq!(status[id], "cancelled", "order {id} was cancelled (200)");
    }

    let payments: Vec<(String, String)> = sqlx::query_as("SELECT order_id, status FROM payments")
        .fetch_all(&pools[&ServiceName::Payments])
        .await
        .expect("payments");
    let refunds: HashSet<String> = sqlx::query_scalar("SELECT order_id FROM refunds")
        .fetch_all(&pools[&ServiceName::Payments])
        .await
        .expect("refunds")
        .into_iter()
        .collect();
    let paid: HashMap<String, String> = payments.into_iter().collect();
    for (id, s) in &status {
        let payment = paid.get(id).map(String::as_str);
        match s.as_str() {
            "confirmed" => assert_eq!(payment, Some("succeeded"), "order {id} confirmed"),
            "rejected" | "cancelled" => assert!(
                !matches!(payment, Some("succeeded" | "pending" | "charging")),
                "order {id} {s} but its payment is {payment:?}"
            ),
            other => panic!("order {id} is {other}"),
        }
        assert_eq!(
            payment == Some("refunded"),
            refunds.contains(id),
            "order {id}: refund row and refunded payment go together"
        );
    }

    let catalog = &pools[&ServiceName::Catalog];
    let live: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM reservations WHERE status = 'reserved'")
            .fetch_one(catalog)
            .await
            .expect("reservations");
    assert_eq!(live, 0, "no live reservation");
    let sold: Vec<(String, i64)> = sqlx::query_as(
        "SELECT l.product_id, CAST(SUM(l.quantity) AS BIGINT) FROM order_lines l \
         JOIN orders o ON o.id = l.order_id WHERE o.status = 'confirmed' GROUP BY l.product_id",
    )
    .fetch_all(orders)
    .await
    .expect("sold");
    let sold: HashMap<String, i64> = sold.into_iter().collect();
    let stock: Vec<(String, i64)> =
        sqlx::query_as("SELECT id, stock FROM products WHERE id = ANY($1)")
            .bind(products.as_slice())
            .fetch_all(catalog)
            .await
            .expect("stock");
    for (id, left) in stock {
        let sold = sold.get(&id).copied().unwrap_or(0);
        assert_eq!(
            left + sold,
            INITIAL_STOCK,
            "product {id}: {left} left + {sold} sold"
        );
    }

    let notifications = &pools[&ServiceName::Notifications];
    let emails: Vec<(String, String)> =
        sqlx::query_as("SELECT id, status FROM notifications WHERE kind LIKE 'order%'")
            .fetch_all(notifications)
            .await
            .expect("notifications");
    let final_events: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM outbox WHERE event_type IN ('order.confirmed', 'order.rejected', 'order.cancelled')",
    )
    .fetch_one(orders)
    .await
    .expect("events");
    assert_eq!(emails.len() as i64, final_events, "one email per event");
    assert!(emails.iter().all(|(_, s)| s == "sent"), "every email sent");
    let mut files: HashMap<String, usize> = HashMap::new();
    for entry in std::fs::read_dir(rig.dir.path().join("emails")).expect("emails dir") {
        let name = entry
            .expect("entry")
            .file_name()
            .to_string_lossy()
            .to_string();
        if let Some(id) = name
            .strip_suffix(".eml")
            .and_then(|n| n.split_once('-'))
            .map(|(_, id)| id.to_string())
        {
            *files.entry(id).or_default() += 1;
        }
    }
    for (id, _) in &emails {
        assert!(files.contains_key(id), "email {id} was written");
    }
    let resent = files.values().filter(|n| **n > 1).count();
    for name in pools.keys() {
        let dead: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM dead_letters")
            .fetch_one(&pools[name])
            .await
            .expect("dead letters");
        assert_eq!(dead, 0, "{name}: dead letters");
    }
    let mut unexpected = Vec::new();
    for p in &rig.procs {
        let mut p = p.lock().await;
        p.check();
        unexpected.append(&mut p.unexpected);
    }
    assert!(
        unexpected.is_empty(),
        "processes exited by themselves:\n{}",
        unexpected.join("\n")
    );

    // Pending → final, from the history the saga wrote.
    let history: Vec<(String, String, String)> =
        sqlx::query_as("SELECT order_id, status, at FROM order_history ORDER BY seq")
            .fetch_all(orders)
            .await
            .expect("history");
    let mut first: HashMap<String, f64> = HashMap::new();
    let mut settled: HashMap<String, f64> = HashMap::new();
    for (id, s, at) in &history {
        let t = parse_time(at);
        first.entry(id.clone()).or_insert(t);
        if matches!(s.as_str(), "confirmed" | "rejected" | "cancelled") {
            settled.entry(id.clone()).or_insert(t);
        }
    }
    let mut latencies: Vec<f64> = settled
        .iter()
        .filter_map(|(id, t)| first.get(id).map(|f| t - f))
        .collect();
    latencies.sort_by(f64::total_cmp);
    let by_status = status.values().fold(BTreeMap::new(), |mut m, s| {
        *m.entry(s.clone()).or_insert(0) += 1;
        m
    });
    let report = format!(
        "fault injection ({broker:?}): {total} orders in {load_secs:.1} s, {by_status:?}; \
         faults {faults:?}; {} client retries; {resent} emails written twice (a sender killed between \
         the server's acceptance and its own record)\n\
         pending → final: p50 {:.2} s, p99 {:.2} s, max {:.2} s (goal p99 ≤ 5 s); \
         quiescent {quiet_after:.1} s after the last fault (goal ≤ 10 s); 0 unexpected exits\n",
        ledger.retries.load(Ordering::Relaxed),
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.99),
        latencies.last().copied().unwrap_or(0.0),
    );
    println!("\n{report}");
    // `.ci/run` prints this file after the tests (their output is captured).
    let file = Path::new(env!("CARGO_TARGET_TMPDIR")).join("faults-report.txt");
    let appended = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&file)
        .and_then(|mut f| std::io::Write::write_all(&mut f, report.as_bytes()));
    if let Err(e) = appended {
        eprintln!("could not write {}: {e}", file.display());
    }
    rig.stop().await;
}

/// One run at a time: each needs the machine to itself to say anything
/// about recovery times.
static ONE_AT_A_TIME: Mutex<()> = Mutex::const_new(());

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn faults_lose_nothing_on_rabbitmq() {
    let _alone = ONE_AT_A_TIME.lock().await;
    faults_lose_nothing(Broker::RabbitMq).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn faults_lose_nothing_on_nats() {
    let _alone = ONE_AT_A_TIME.lock().await;
    faults_lose_nothing(Broker::Nats).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn faults_lose_nothing_on_redis_streams() {
    let _alone = ONE_AT_A_TIME.lock().await;
    faults_lose_nothing(Broker::Redis).await;
}
