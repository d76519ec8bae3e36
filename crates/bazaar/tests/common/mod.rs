//! Shared end-to-end harness: starts the whole platform in-process on
//! port-0 listeners with fresh databases, and talks to it over real HTTP
//! through the gateway, as a client would.
//!
//! Servers (PostgreSQL, RabbitMQ, NATS, Redis) are used when reachable.
//! When one is absent a test skips with a loud message — unless `CI=true`,
//! where an absent server fails the test.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::time::Duration;

use bazaar::Running;
use bazaar_kit::{Config, ServiceName};

/// Which storage a test platform uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Store {
    /// One SQLite file per service in a temp dir.
    Sqlite,
    /// One fresh PostgreSQL database per service.
    Postgres,
    /// PostgreSQL, with RabbitMQ as the event broker.
    PostgresRabbitMq,
    /// PostgreSQL, with NATS JetStream as the event broker.
    PostgresNats,
    /// PostgreSQL, with Redis Streams as the event broker.
    PostgresRedis,
}

impl Store {
    /// Whether the services' databases are PostgreSQL.
    pub fn is_postgres(self) -> bool {
        self != Store::Sqlite
    }

    /// The servers this store needs: (what, address).
    pub fn servers(self) -> Vec<(&'static str, &'static str)> {
        let mut servers = Vec::new();
        if self.is_postgres() {
            servers.push(("PostgreSQL", "127.0.0.1:5432"));
        }
        match self {
            Store::PostgresRabbitMq => servers.push(("RabbitMQ", "127.0.0.1:5672")),
            Store::PostgresNats => servers.push(("NATS", "127.0.0.1:4222")),
            Store::PostgresRedis => servers.push(("Redis", "127.0.0.1:6379")),
            _ => {}
        }
        servers
    }

    /// `true` when every server it needs answers (skips loudly otherwise;
    /// fails under CI=true).
    pub async fn available(self) -> bool {
        for (what, addr) in self.servers() {
            if !server_available(what, addr).await {
                return false;
            }
        }
        true
    }
}

/// A running platform plus an HTTP client.
pub struct TestPlatform {
    /// The services.
    pub running: Option<Running>,
    /// Gateway base URL (`http://127.0.0.1:PORT`).
    pub base: String,
    /// Client with a sane timeout.
    pub http: reqwest::Client,
    /// Config the platform runs with.
    pub config: std::sync::Arc<Config>,
    dir: tempfile::TempDir,
}

// Not every test binary uses every helper.
#[allow(unused_imports)]
pub use bazaar_kit::testing::{eventually, in_ci, postgres_url, server_available};

/// A base configuration: every listener on port 0, data in `dir`.
pub fn base_config(dir: &std::path::Path, store: Store) -> Config {
    let mut config = Config::default();
    config.data_dir = dir.to_path_buf();
    config.log_level = "warn".into();
    // Many test platforms share one PostgreSQL (max_connections = 100).
    config.db_max_connections = 4;
    for name in ServiceName::ALL {
        config.service_mut(name).listen = Some(SocketAddr::from(([127, 0, 0, 1], 0)));
    }
    let tag = uuid::Uuid::new_v4().simple().to_string()[..12].to_string();
    if store.is_postgres() {
        config.database_url = Some(bazaar_kit::Secret::new(format!(
            "{}/bzt_{tag}",
            postgres_url()
        )));
    }
    // A namespace of its own on a shared broker.
    config.broker_namespace = format!("bzt{tag}");
    match store {
        Store::PostgresRabbitMq => {
            config.broker_url =
                bazaar_kit::Secret::new("amqp://guest:guest@127.0.0.1:5672/%2f".into());
        }
        Store::PostgresNats => {
            config.broker_url = bazaar_kit::Secret::new("nats://127.0.0.1:4222".into())
        }
        Store::PostgresRedis => {
            config.broker_url = bazaar_kit::Secret::new("redis://127.0.0.1:6379".into())
        }
        _ => {}
    }
    config
}

/// Drops the PostgreSQL databases a test platform made (`bzt_*`), so runs
/// do not pile them up. Best effort: a failure only leaves one behind.
pub async fn drop_databases(config: &Config) {
    use sqlx::Connection as _;
    for name in ServiceName::ALL.into_iter().filter(|n| n.has_database()) {
        let url = config.database_url(name);
        let Ok(parsed) = url::Url::parse(&url) else {
            continue;
        };
        let db = parsed.path().trim_start_matches('/').to_string();
        if !url.starts_with("postgres") || !db.starts_with("bzt_") {
            continue;
        }
        let mut admin = parsed.clone();
        admin.set_path("/postgres");
        if let Ok(mut conn) = sqlx::PgConnection::connect(admin.as_str()).await {
            let sql = format!("DROP DATABASE IF EXISTS \"{db}\" WITH (FORCE)");
            if let Err(e) = sqlx::query(sqlx::AssertSqlSafe(sql))
                .execute(&mut conn)
                .await
            {
                eprintln!("could not drop test database {db}: {e}");
            }
            let _ = conn.close().await;
        }
    }
}

/// Starts the whole platform; `None` when a needed server is absent (skip).
pub async fn start(store: Store) -> Option<TestPlatform> {
    start_with(store, |_| {}).await
}

/// Starts the whole platform after `customize` adjusts the configuration.
pub async fn start_with(store: Store, customize: impl FnOnce(&mut Config)) -> Option<TestPlatform> {
    if !store.available().await {
        return None;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let mut config = base_config(dir.path(), store);
    customize(&mut config);
    let running = bazaar::start(config, &ServiceName::ALL)
        .await
        .expect("platform starts");
    let base = running.gateway_url().expect("gateway runs");
    let config = running.config.clone();
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .expect("client");
    Some(TestPlatform {
        running: Some(running),
        base,
        http,
        config,
        dir,
    })
}

impl TestPlatform {
    /// Absolute URL of a path on the gateway's operator listener.
    pub fn admin_url(&self, path: &str) -> String {
        let base = self
            .running
            .as_ref()
            .and_then(|r| r.admin_url(ServiceName::Gateway))
            .expect("gateway admin listener");
        format!("{base}{path}")
    }

    /// Absolute URL of a gateway path.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Base URL of one service (bypassing the gateway).
    pub fn service_url(&self, name: ServiceName) -> String {
        self.running
            .as_ref()
            .and_then(|r| r.url(name))
            .expect("service runs")
    }

    /// The data folder.
    pub fn data_dir(&self) -> &std::path::Path {
        self.dir.path()
    }

    /// Stops the platform cleanly.
    pub async fn stop(mut self) {
        if let Some(running) = self.running.take() {
            running.stop().await.expect("clean shutdown");
        }
    }

    /// Stops the platform and drops its PostgreSQL databases (for tests
    /// that are done with them; a restart test must use [`Self::stop`]).
    pub async fn stop_and_drop(self) {
        let config = self.config.clone();
        self.stop().await;
        drop_databases(&config).await;
    }
}

/// A registered, logged-in user.
#[derive(Clone, Debug)]
pub struct TestUser {
    /// User id.
    pub id: String,
    /// Username.
    pub username: String,
    /// Password.
    pub password: String,
    /// Access token.
    pub access: String,
    /// Refresh token.
    pub refresh: String,
}

impl TestPlatform {
    /// Logs `username` in; returns the token response body.
    pub async fn login(&self, username: &str, password: &str) -> reqwest::Response {
        self.http
            .post(self.url("/api/v1/auth/token/"))
            .json(&serde_json::json!({"username": username, "password": password}))
            .send()
            .await
            .expect("token request")
    }

    /// Registers `username` (email `<username>@example.com`) and logs in.
    pub async fn register_and_login(&self, username: &str) -> TestUser {
        let password = format!("Sturdy-{username}-Pass-42");
        let r = self
            .http
            .post(self.url("/api/v1/auth/register/"))
            .json(&serde_json::json!({
                "username": username,
                "email": format!("{username}@example.com"),
                "password": password,
            }))
            .send()
            .await
            .expect("register");
        assert_eq!(
            r.status(),
            201,
            "register {username}: {}",
            r.text().await.unwrap_or_default()
        );
        let user: serde_json::Value = r.json().await.expect("user body");
        let r = self.login(username, &password).await;
        assert_eq!(r.status(), 200, "login {username}");
        let tokens: serde_json::Value = r.json().await.expect("token body");
        TestUser {
            id: user["id"].as_str().expect("id").to_string(),
            username: username.to_string(),
            password,
            access: tokens["access"].as_str().expect("access").to_string(),
            refresh: tokens["refresh"].as_str().expect("refresh").to_string(),
        }
    }

    /// Creates a staff user straight in identity's database (what `bazaar
    /// createsuperuser` does) and logs it in through the gateway.
    pub async fn staff_user(&self, username: &str) -> TestUser {
        let password = format!("Staff-{username}-Pass-42");
        let db = bazaar_identity::accounts::admin::open(&self.config)
            .await
            .expect("identity db");
        bazaar_identity::accounts::admin::create_superuser(
            &db,
            bazaar_identity::domain::Username::parse(username).expect("username"),
            bazaar_identity::domain::Email::parse(&format!("{username}@example.com"))
                .expect("email"),
            Some(password.clone()),
        )
        .await
        .expect("superuser");
        db.close().await;
        let r = self.login(username, &password).await;
        assert_eq!(r.status(), 200, "staff login");
        let tokens: serde_json::Value = r.json().await.expect("token body");
        let access = tokens["access"].as_str().expect("access").to_string();
        let me: serde_json::Value = self
            .http
            .get(self.url("/api/v1/users/me/"))
            .bearer_auth(&access)
            .send()
            .await
            .expect("me")
            .json()
            .await
            .expect("me body");
        TestUser {
            id: me["id"].as_str().expect("id").to_string(),
            username: username.to_string(),
            password,
            access,
            refresh: tokens["refresh"].as_str().expect("refresh").to_string(),
        }
    }
}

/// Starts the platform on `config` in `dir` — pass the same pair again
/// after [`TestPlatform::stop_keep`] to restart on the same data (same
/// SQLite files, same PostgreSQL databases).
pub async fn start_in(dir: tempfile::TempDir, config: Config) -> TestPlatform {
    let running = bazaar::start(config, &ServiceName::ALL)
        .await
        .expect("platform starts");
    let base = running.gateway_url().expect("gateway runs");
    let config = running.config.clone();
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .expect("client");
    TestPlatform {
        running: Some(running),
        base,
        http,
        config,
        dir,
    }
}

/// Layers `toml` (service sections such as `[payments] latency_ms = 5`)
/// over a test configuration, the way an operator's file would be.
pub fn with_toml(config: &mut Config, toml: &str) {
    let path = config.data_dir.join(format!(
        "test-{}.toml",
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    ));
    std::fs::write(&path, toml).expect("write toml");
    let mut loaded = Config::load(Some(&path)).expect("config loads");
    loaded.data_dir = config.data_dir.clone();
    loaded.log_level = config.log_level.clone();
    loaded.database_url = config.database_url.clone();
    loaded.broker_url = config.broker_url.clone();
    loaded.broker_namespace = config.broker_namespace.clone();
    for name in ServiceName::ALL {
        *loaded.service_mut(name) = config.service(name).clone();
    }
    *config = loaded;
}

impl TestPlatform {
    /// Stops the platform and hands back its data folder (for a restart
    /// with [`start_in`]).
    pub async fn stop_keep(mut self) -> tempfile::TempDir {
        if let Some(running) = self.running.take() {
            running.stop().await.expect("clean shutdown");
        }
        self.dir
    }
}
