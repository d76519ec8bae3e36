//! `--spawn`: a clean platform for one run — a child `bazaar up` process
//! (so `/proc/<pid>` measures the platform alone), or in this process
//! (tests); fresh data (temp dir, or a new PostgreSQL database), a broker
//! namespace of its own, and a staff user made the way `bazaar
//! createsuperuser` makes one. Also the hello-world server.

use std::net::SocketAddr;
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::Context;
use axum::Json;
use axum::routing::get;
use bazaar_kit::{Config, Secret, ServiceName};
use tokio::net::TcpListener;
use tokio::process::{Child, Command};

/// How to start the platform.
#[derive(Clone, Debug, Default)]
pub struct SpawnOptions {
    /// `postgres://...` (a fresh `bzt_bench_<rand>` database is used on that
    /// server); unset: SQLite files in the temp dir.
    pub database_url: Option<String>,
    /// `embedded` (default), `amqp://...` or `nats://...`.
    pub broker_url: Option<String>,
    /// Run the services in this process instead of a child `bazaar up`.
    pub in_process: bool,
}

enum Inner {
    InProcess(crate::Running),
    Child(Child),
}

/// A platform started for the run.
pub struct Spawned {
    /// Gateway base URL.
    pub base: String,
    /// The process to measure.
    pub pid: u32,
    /// Whether that process is this one (the bench client included).
    pub includes_client: bool,
    /// Staff username and password.
    pub staff: (String, String),
    inner: Inner,
    _dir: tempfile::TempDir,
}

fn tag() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..10].to_string()
}

/// The configuration of a fresh platform in `dir`.
fn config(dir: &std::path::Path, opts: &SpawnOptions, tag: &str) -> anyhow::Result<Config> {
    // One client IP would trip the gateway's per-IP limits by design: the
    // spawned platform runs without them (`BAZAAR_GATEWAY_RATE_LIMIT=false`
    // for the child process).
    let file = dir.join("bench.toml");
    std::fs::write(&file, "[gateway]\nrate_limit = false\n")?;
    let mut config = Config::load(Some(&file)).map_err(|e| anyhow::anyhow!("{e}"))?;
    config.data_dir = dir.to_path_buf();
    config.log_level = "warn".into();
    config.broker_namespace = format!("bzbench{tag}");
    if let Some(b) = &opts.broker_url {
        config.broker_url = Secret::new(b.clone());
    }
    if let Some(db) = &opts.database_url {
        let mut url = url::Url::parse(db).context("--database-url")?;
        if !url.scheme().starts_with("postgres") {
            anyhow::bail!("--database-url must be postgres://... (SQLite is the default)");
        }
        url.set_path(&format!("/bzt_bench_{tag}"));
        config.database_url = Some(Secret::new(url.to_string()));
    }
    Ok(config)
}

/// Free ports for every service (bound then released: a tiny race, fine
/// on a bench machine).
async fn free_ports() -> anyhow::Result<Vec<(ServiceName, SocketAddr)>> {
    let mut held = Vec::new();
    for name in ServiceName::ALL {
        let l = TcpListener::bind("127.0.0.1:0").await?;
        held.push((name, l.local_addr()?, l));
    }
    Ok(held.into_iter().map(|(n, a, _)| (n, a)).collect())
}

/// Starts the platform and its staff user; waits until it answers.
pub async fn start(opts: &SpawnOptions) -> anyhow::Result<Spawned> {
    let dir = tempfile::tempdir().context("temp dir")?;
    let tag = tag();
    let mut config = config(dir.path(), opts, &tag)?;
    let (base, pid, inner) = if opts.in_process {
        for name in ServiceName::ALL {
            config.service_mut(name).listen = Some(SocketAddr::from(([127, 0, 0, 1], 0)));
        }
        let running = crate::start(config.clone(), &ServiceName::ALL).await?;
        let base = running.gateway_url().context("gateway runs")?;
        (base, std::process::id(), Inner::InProcess(running))
    } else {
        let exe = std::env::current_exe().context("locating the bazaar binary")?;
        let log = std::fs::File::create(dir.path().join("platform.log"))?;
        let mut cmd = Command::new(exe);
        cmd.arg("up")
            .current_dir(dir.path())
            .env_remove("BAZAAR_CONFIG")
            .env("BAZAAR_DATA_DIR", dir.path())
            .env("BAZAAR_LOG_LEVEL", "warn")
            .env("BAZAAR_GATEWAY_RATE_LIMIT", "false")
            .env("BAZAAR_BROKER_URL", config.broker_url.expose())
            .env("BAZAAR_BROKER_NAMESPACE", &config.broker_namespace)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .kill_on_drop(true);
        if let Some(db) = &config.database_url {
            cmd.env("BAZAAR_DATABASE_URL", db.expose());
        }
        let mut gateway = None;
        for (name, addr) in free_ports().await? {
            let upper = name.as_str().to_ascii_uppercase();
            cmd.env(format!("BAZAAR_{upper}_LISTEN"), addr.to_string());
            // Internal and operator ports anywhere free: `up` tells the
            // services each other's bound addresses.
            if name.serves_grpc() {
                cmd.env(format!("BAZAAR_{upper}_GRPC_LISTEN"), "127.0.0.1:0");
            }
            if name == ServiceName::Gateway {
                cmd.env("BAZAAR_GATEWAY_ADMIN_LISTEN", "127.0.0.1:0");
            }
            config.service_mut(name).listen = Some(addr);
            if name == ServiceName::Gateway {
                gateway = Some(addr);
            }
        }
        let child = cmd.spawn().context("starting `bazaar up`")?;
        let pid = child.id().context("child pid")?;
        let base = format!("http://{}", gateway.context("gateway port")?);
        (base, pid, Inner::Child(child))
    };
    let mut spawned = Spawned {
        base,
        pid,
        includes_client: opts.in_process,
        staff: (format!("benchstaff{tag}"), format!("Staff-{tag}-pw!")),
        inner,
        _dir: dir,
    };
    if let Err(e) = spawned.wait_ready().await {
        let tail = spawned.log_tail(20);
        spawned.stop().await;
        return Err(e.context(format!("platform log:\n{tail}")));
    }
    create_staff(&config, &spawned.staff).await?;
    Ok(spawned)
}

/// Creates the staff user directly in identity's database, as `bazaar
/// createsuperuser --noinput` does.
async fn create_staff(
    config: &Config,
    (username, password): &(String, String),
) -> anyhow::Result<()> {
    use bazaar_identity::admin;
    let db = admin::open(config).await?;
    let result = async {
        let user = admin::check_username(&db, username)
            .await
            .map_err(|e| anyhow::anyhow!("staff username: {e}"))?;
        let email = admin::check_email(&db, &format!("{username}@bench.example.com"))
            .await
            .map_err(|e| anyhow::anyhow!("staff email: {e}"))?;
        admin::create_superuser(&db, user, email, Some(password.clone()))
            .await
            .map_err(|e| anyhow::anyhow!("creating the staff user: {e}"))?;
        anyhow::Ok(())
    }
    .await;
    db.close().await;
    result
}

impl Spawned {
    async fn wait_ready(&mut self) -> anyhow::Result<()> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(2))
            .build()?;
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            if let Inner::Child(child) = &mut self.inner
                && let Some(status) = child.try_wait()?
            {
                anyhow::bail!("`bazaar up` exited early ({status})");
            }
            let ready = http
                .get(format!("{}/readyz", self.base))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success());
            if ready {
                return Ok(());
            }
            if Instant::now() > deadline {
                anyhow::bail!("the platform was not ready after 120 s");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The last `n` lines of a child platform's log (warnings and errors).
    pub fn log_tail(&self, n: usize) -> String {
        let log =
            std::fs::read_to_string(self._dir.path().join("platform.log")).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(n)..].join("\n")
    }

    /// Stops the platform (a child is killed).
    pub async fn stop(self) {
        match self.inner {
            Inner::InProcess(running) => {
                if let Err(e) = running.stop().await {
                    tracing::warn!(error = %e, "platform stopped with an error");
                }
            }
            Inner::Child(mut child) => {
                let _ = child.kill().await;
            }
        }
    }
}

/// The hello-world JSON app: the ceiling for any HTTP service here.
pub fn hello_router() -> axum::Router {
    axum::Router::new().route(
        "/",
        get(|| async { Json(serde_json::json!({"hello": "world"})) }),
    )
}

/// Serves hello-world on `addr` until the process ends
/// (`bazaar bench --serve-hello ADDR`, the child side).
pub async fn serve_hello(addr: SocketAddr) -> anyhow::Result<()> {
    let listener = TcpListener::bind(addr).await?;
    axum::serve(listener, hello_router()).await?;
    Ok(())
}

/// A hello-world server for the comparison.
pub struct HelloServer {
    /// Its base URL.
    pub base: String,
    /// Its process (this one when in-process).
    pub pid: u32,
    child: Option<Child>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl HelloServer {
    /// Starts one: a child `bazaar bench --serve-hello`, or a task here.
    pub async fn start(in_process: bool) -> anyhow::Result<Self> {
        if in_process {
            let listener = TcpListener::bind("127.0.0.1:0").await?;
            let base = format!("http://{}", listener.local_addr()?);
            let task = tokio::spawn(async move {
                let _ = axum::serve(listener, hello_router()).await;
            });
            return Ok(Self {
                base,
                pid: std::process::id(),
                child: None,
                task: Some(task),
            });
        }
        let addr = TcpListener::bind("127.0.0.1:0").await?.local_addr()?;
        let child = Command::new(std::env::current_exe()?)
            .args(["bench", "--serve-hello", &addr.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .context("starting the hello-world server")?;
        let pid = child.id().context("child pid")?;
        let base = format!("http://{addr}");
        let http = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(20);
        while !http
            .get(&base)
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
        {
            if Instant::now() > deadline {
                anyhow::bail!("the hello-world server did not answer");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Ok(Self {
            base,
            pid,
            child: Some(child),
            task: None,
        })
    }

    /// Stops it.
    pub async fn stop(mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill().await;
        }
        if let Some(t) = self.task.take() {
            t.abort();
        }
    }
}
