//! Helpers for tests (feature `testing`): skip-unless-CI server checks,
//! waiting on a condition instead of sleeping, and running one scenario on
//! every store.

use std::time::Duration;

/// Whether CI demands every server (`CI=true` or `CI=1`).
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

/// `true` when a TCP server answers at `addr`. Otherwise the test skips
/// loudly (`false`), or panics under `CI=true`.
pub async fn server_available(what: &str, addr: &str) -> bool {
    let ok = matches!(
        tokio::time::timeout(Duration::from_secs(2), tokio::net::TcpStream::connect(addr)).await,
        Ok(Ok(_))
    );
    if !ok {
        assert!(
            !in_ci(),
            "{what} is not reachable at {addr}, and CI=true requires it"
        );
        eprintln!(
            "\n!!!!!!!! SKIPPED: {what} is not reachable at {addr} (CI=true makes this a failure) !!!!!!!!\n"
        );
    }
    ok
}

/// The PostgreSQL server tests use (`BAZAAR_TEST_POSTGRES_URL`, default
/// `postgres://postgres@127.0.0.1:5432`), without a database name.
pub fn postgres_url() -> String {
    std::env::var("BAZAAR_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into())
}

/// Polls `check` every 50 ms until it yields `Some`; panics naming `what`
/// after `secs` (a bound that only catches a hang).
pub async fn eventually<T, F, Fut>(secs: u64, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out after {secs}s waiting for: {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Runs each named `async fn(store)` scenario once per store: a module per
/// store (`sqlite`, `postgres`, ...) holding one `#[tokio::test]` each.
///
/// ```ignore
/// bazaar_kit::both_stores!(Store { sqlite: Sqlite, postgres: Postgres };
///     [registration, login_throttling]);
/// ```
#[macro_export]
macro_rules! both_stores {
    ($store:ident { $($module:ident: $variant:ident),+ $(,)? }; $names:tt) => {
        $( $crate::both_stores!(@one $store $module $variant $names); )+
    };
    (@one $store:ident $module:ident $variant:ident [$($(#[$attr:meta])* $name:ident),+ $(,)?]) => {
        mod $module {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                $(#[$attr])*
                async fn $name() {
                    super::$name(super::$store::$variant).await
                }
            )+
        }
    };
}

/// A service built the way the platform builds it (SQLite in a temp dir,
/// the embedded bus), behind the kit's middleware: for `oneshot` router
/// tests of validation and permissions, without a server or a port.
pub struct TestApp {
    /// The service's routes behind the kit's default endpoints and
    /// middleware (trailing-slash forms, problem rendering, body limit,
    /// auth extractors), as the server runs them.
    app: crate::http::NormalizedApp,
    /// The service's database.
    pub db: Option<crate::Db>,
    _dir: tempfile::TempDir,
}

impl TestApp {
    /// Builds service `name` with its `build` function.
    pub async fn build<F, Fut>(name: crate::ServiceName, build: F) -> TestApp
    where
        F: FnOnce(crate::ServiceContext) -> Fut,
        Fut: std::future::Future<Output = anyhow::Result<crate::Service>>,
    {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut config = crate::Config::default();
        config.data_dir = dir.path().to_path_buf();
        config.log_level = "warn".into();
        let ctx = crate::ServiceContext::new(
            name,
            std::sync::Arc::new(config),
            crate::events::Bus::embedded(),
        );
        let service = build(ctx).await.expect("the service builds");
        let router = crate::http::app(&service, &crate::http::HttpOptions::default());
        TestApp {
            app: crate::http::into_service(router),
            db: service.db.clone(),
            _dir: dir,
        }
    }

    /// Sends one request through the app; returns the status and the
    /// body as JSON (`Null` when it is not JSON).
    pub async fn send(
        &self,
        method: &str,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> (axum::http::StatusCode, serde_json::Value) {
        use tower::ServiceExt as _;
        let mut request = axum::http::Request::builder().method(method).uri(path);
        let body = match body {
            Some(json) => {
                request = request.header("content-type", "application/json");
                axum::body::Body::from(json.to_string())
            }
            None => axum::body::Body::empty(),
        };
        let request = request.body(body).expect("request");
        let response = self.app.clone().oneshot(request).await.expect("infallible");
        let status = response.status();
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .expect("body");
        let json = serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null);
        (status, json)
    }
}

/// A TCP forwarder the test controls, between a service and one of its
/// servers (database, broker): the test can refuse connections, cut every
/// connection it carries, or cut each new one after a number of bytes — the
/// server "goes away" without stopping the machine's shared server.
pub struct Cable {
    addr: std::net::SocketAddr,
    upstream: String,
    /// Set while the cable listens; `send(true)` cuts it.
    link: std::sync::Mutex<Option<tokio::sync::watch::Sender<bool>>>,
    /// Bytes a new connection carries from the server before it is cut
    /// (`u64::MAX`: no limit).
    limit: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

impl Cable {
    /// A cable on a free local port to `upstream`, carrying traffic.
    pub async fn open(upstream: &str) -> Cable {
        let cable = Cable::closed(upstream);
        cable.connect().await;
        cable
    }

    /// A cable whose port is chosen but closed (connections are refused)
    /// until [`Cable::connect`].
    pub fn closed(upstream: &str) -> Cable {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
        let addr = probe.local_addr().expect("addr");
        drop(probe);
        Cable {
            addr,
            upstream: upstream.to_string(),
            link: std::sync::Mutex::new(None),
            limit: std::sync::Arc::new(std::sync::atomic::AtomicU64::new(u64::MAX)),
        }
    }

    /// Where services connect.
    pub fn addr(&self) -> std::net::SocketAddr {
        self.addr
    }

    /// Starts (or restarts) listening and forwarding on the same port.
    pub async fn connect(&self) {
        self.cut();
        let listener = {
            let mut tries = 0;
            loop {
                match tokio::net::TcpListener::bind(self.addr).await {
                    Ok(l) => break l,
                    Err(e) if tries < 100 => {
                        tries += 1;
                        let _ = e;
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                    Err(e) => panic!("cable cannot listen on {} again: {e}", self.addr),
                }
            }
        };
        let (tx, rx) = tokio::sync::watch::channel(false);
        let upstream = self.upstream.clone();
        let limit = self.limit.clone();
        tokio::spawn(async move {
            let mut stop = rx.clone();
            loop {
                tokio::select! {
                    _ = stop.changed() => break,
                    accepted = listener.accept() => {
                        let Ok((client, _)) = accepted else { break };
                        let bytes = limit.load(std::sync::atomic::Ordering::Relaxed);
                        tokio::spawn(carry(client, upstream.clone(), bytes, rx.clone()));
                    }
                }
            }
        });
        *self
            .link
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(tx);
    }

    /// Closes the port and drops every connection it carries.
    pub fn cut(&self) {
        if let Some(tx) = self
            .link
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take()
        {
            let _ = tx.send(true);
        }
    }

    /// Connections opened from now on carry at most `bytes` from the
    /// server and are then cut (`None`: no limit) — a link that dies in
    /// the middle of a handshake or a declaration.
    pub fn limit_bytes(&self, bytes: Option<u64>) {
        self.limit.store(
            bytes.unwrap_or(u64::MAX),
            std::sync::atomic::Ordering::Relaxed,
        );
    }
}

impl Drop for Cable {
    fn drop(&mut self) {
        self.cut();
    }
}

async fn carry(
    client: tokio::net::TcpStream,
    upstream: String,
    limit: u64,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    use tokio::io::AsyncReadExt;
    let Ok(server) = tokio::net::TcpStream::connect(&upstream).await else {
        return;
    };
    let (mut client_rx, mut client_tx) = client.into_split();
    let (server_rx, mut server_tx) = server.into_split();
    let mut server_rx = server_rx.take(limit);
    tokio::select! {
        _ = tokio::io::copy(&mut client_rx, &mut server_tx) => {}
        _ = tokio::io::copy(&mut server_rx, &mut client_tx) => {}
        _ = stop.changed() => {}
    }
}
