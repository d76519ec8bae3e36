//! What a service crate hands the kit: its router, database, readiness
//! checks and background workers.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use futures::future::BoxFuture;
use tokio_util::sync::CancellationToken;

use crate::auth::Verifier;
use crate::config::{Config, ServiceName};
use crate::db::{Db, DbError, Migrations};
use crate::events::{Bus, Subscription};
use crate::http::HttpOptions;

/// A named readiness probe: `Ok` when the dependency answers.
pub type ReadinessCheck = (
    String,
    Arc<dyn Fn() -> BoxFuture<'static, Result<(), String>> + Send + Sync>,
);

/// A background task; it must return soon after its token is cancelled.
pub type Worker = Box<dyn FnOnce(CancellationToken) -> BoxFuture<'static, ()> + Send>;

/// What a service's own server receives from [`crate::http::serve`].
pub struct ServerArgs {
    /// The bound listener.
    pub listener: tokio::net::TcpListener,
    /// The service's routes behind the kit's default endpoints and
    /// middleware, for every request the server does not answer itself.
    pub app: crate::http::NormalizedApp,
    /// Timeouts and the shutdown grace period.
    pub options: HttpOptions,
    /// Fires when the service must stop accepting and drain.
    pub shutdown: CancellationToken,
}

/// A worker that calls `tick` every `period` until its token is cancelled
/// (sweeps, reloads, pollers).
pub fn periodic<F, Fut>(period: Duration, mut tick: F) -> Worker
where
    F: FnMut() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    Box::new(move |token: CancellationToken| {
        Box::pin(async move {
            loop {
                tokio::select! {
                    () = token.cancelled() => break,
                    () = tokio::time::sleep(period) => {}
                }
                tick().await;
            }
        })
    })
}

/// A server in place of the kit's default (axum) one; it must stop accepting
/// when the token fires and return within the grace period.
pub type Server = Box<dyn FnOnce(ServerArgs) -> BoxFuture<'static, anyhow::Result<()>> + Send>;

/// A built service, ready for [`crate::http::serve`].
pub struct Service {
    /// Which service this is.
    pub name: ServiceName,
    /// Its routes (state already applied).
    pub router: Router,
    /// Its database, closed on shutdown.
    pub db: Option<Db>,
    /// Probes behind `/readyz`.
    pub readiness: Vec<ReadinessCheck>,
    /// Background workers (outbox relay, consumers, timers).
    pub workers: Vec<(String, Worker)>,
    /// Token verifier the auth extractors use.
    pub verifier: Option<Arc<Verifier>>,
    /// The service's OpenAPI document, served at `/openapi.json` (the
    /// gateway merges every service's into one).
    pub openapi: Option<utoipa::openapi::OpenApi>,
    /// Its own server, when the default one is not enough (the gateway's
    /// per-core proxy server).
    pub server: Option<Server>,
    /// The operator listener (bound by the platform from `admin_listen`):
    /// `/metrics`, `/readyz` with details and [`Service::admin_routes`].
    /// With one, the public port answers neither `/metrics` nor readiness
    /// details.
    pub admin: Option<tokio::net::TcpListener>,
    /// Operator-only routes, served on the admin listener.
    pub admin_routes: Router,
    /// Its internal RPCs and their gRPC service names (for health checks).
    pub grpc: Option<(crate::grpc::Routes, Vec<&'static str>)>,
    /// The internal gRPC listener (bound by the platform from
    /// `grpc_listen`).
    pub grpc_listener: Option<tokio::net::TcpListener>,
    /// The bus its outbox relay and consumers use (set by
    /// [`ServiceContext::service`]).
    bus: Option<Bus>,
    /// Subscriptions waiting for the database (see [`Service::with_events`]).
    pending_events: Option<Vec<Subscription>>,
}

impl Service {
    /// A service with routes only.
    pub fn new(name: ServiceName, router: Router) -> Self {
        Self {
            name,
            router,
            db: None,
            readiness: Vec::new(),
            workers: Vec::new(),
            verifier: None,
            openapi: None,
            server: None,
            admin: None,
            admin_routes: Router::new(),
            grpc: None,
            grpc_listener: None,
            bus: None,
            pending_events: None,
        }
    }

    /// Publishes the service's OpenAPI document at `/openapi.json`.
    pub fn with_openapi(mut self, doc: utoipa::openapi::OpenApi) -> Self {
        self.openapi = Some(doc);
        self
    }

    /// Serves the service with `server` instead of the kit's default one.
    pub fn with_server(mut self, server: Server) -> Self {
        self.server = Some(server);
        self
    }

    /// Adds operator-only routes (served on the admin listener, never on
    /// the public port).
    pub fn with_admin_routes(mut self, routes: Router) -> Self {
        self.admin_routes = self.admin_routes.merge(routes);
        self
    }

    /// Serves `routes` on the internal gRPC port; `names` are the gRPC
    /// services in it (`bazaar.catalog.v1.Catalog`), reported serving by
    /// `grpc.health.v1`.
    pub fn with_grpc(mut self, routes: crate::grpc::Routes, names: Vec<&'static str>) -> Self {
        self.grpc = Some((routes, names));
        self
    }

    /// Attaches the service's database; `/readyz` checks it.
    pub fn with_db(mut self, db: Db) -> Self {
        let probe = db.clone();
        let service = self.name.as_str();
        self.readiness.push((
            "database".into(),
            Arc::new(move || {
                let db = probe.clone();
                Box::pin(async move {
                    db.record_pool_metrics(service);
                    db.ping().await
                })
            }),
        ));
        self.db = Some(db);
        self.wire_events();
        self
    }

    /// Wires the service into the event bus: its outbox relay publishes
    /// what its store enqueues, and one consumer runs per subscription.
    /// Before or after [`Service::with_db`], either order: the workers are
    /// made once both the database and the subscriptions are known. A
    /// service with events but no database fails to start
    /// ([`Service::check`]).
    pub fn with_events(mut self, subscriptions: Vec<Subscription>) -> Self {
        self.pending_events
            .get_or_insert_with(Vec::new)
            .extend(subscriptions);
        self.wire_events();
        self
    }

    fn wire_events(&mut self) {
        let (Some(db), Some(bus)) = (&self.db, &self.bus) else {
            return;
        };
        if let Some(subscriptions) = self.pending_events.take() {
            let workers = bus.workers(self.name, db, subscriptions);
            self.workers.extend(workers);
            if !bus.is_embedded() {
                let bus = bus.clone();
                self.readiness.push((
                    "broker".into(),
                    Arc::new(move || {
                        let ready = bus.readiness();
                        Box::pin(async move { ready })
                    }),
                ));
            }
        }
    }

    /// Whether the service is complete: events asked for without a
    /// database (or without a bus) are an error, not a silent no-op.
    pub fn check(&self) -> anyhow::Result<()> {
        if self.pending_events.is_some() {
            anyhow::bail!(
                "{}: with_events needs a database (with_db) and a bus (ServiceContext::service)",
                self.name
            );
        }
        Ok(())
    }

    /// Adds a background worker.
    pub fn with_worker<F>(mut self, name: &str, worker: F) -> Self
    where
        F: FnOnce(CancellationToken) -> BoxFuture<'static, ()> + Send + 'static,
    {
        self.workers.push((name.into(), Box::new(worker)));
        self
    }
}

/// A service's own settings section, read by [`ServiceContext::settings`].
pub trait Section: serde::de::DeserializeOwned + Default {
    /// Checks the values read (and may normalise them); the error names
    /// the key at fault.
    fn check(self) -> Result<Self, String> {
        Ok(self)
    }
}

/// What a service's `build` receives.
#[derive(Clone, Debug)]
pub struct ServiceContext {
    /// Which service is being built.
    pub name: ServiceName,
    /// The whole platform's configuration.
    pub config: Arc<Config>,
    /// Verifies tokens against identity's JWKS.
    pub verifier: Arc<Verifier>,
    /// The event bus of this process.
    pub bus: Bus,
    /// What the service is waiting for while it is being built.
    starting: Arc<tokio::sync::watch::Sender<String>>,
}

impl ServiceContext {
    /// A context for `name`.
    pub fn new(name: ServiceName, config: Arc<Config>, bus: Bus) -> Self {
        let verifier = Arc::new(Verifier::new(&config.url(ServiceName::Identity)));
        Self {
            name,
            config,
            verifier,
            bus,
            starting: Arc::new(tokio::sync::watch::Sender::new("starting".into())),
        }
    }

    /// What the service waits for while `build` runs ("database not
    /// reached yet: ..."), for a placeholder that answers on its port
    /// meanwhile ([`crate::http::serve_starting`]).
    pub fn starting(&self) -> tokio::sync::watch::Receiver<String> {
        self.starting.subscribe()
    }

    /// A service with `router`, wired to this context's token verifier so
    /// the `AuthUser`/`StaffUser`/`ServiceCaller` extractors work.
    pub fn service(&self, router: Router) -> Service {
        let mut service = Service::new(self.name, router);
        service.verifier = Some(self.verifier.clone());
        service.bus = Some(self.bus.clone());
        service
    }

    /// This service's own settings (its `[<service>]` table beyond the
    /// kit's keys), checked by [`Section::check`]. Every error reads
    /// `[<service>] settings: <what is wrong>`.
    pub fn settings<T: Section>(&self) -> anyhow::Result<T> {
        self.config
            .section::<T>(self.name)
            .map_err(|e| e.to_string())
            .and_then(T::check)
            .map_err(|e| anyhow::anyhow!("[{}] settings: {e}", self.name.as_str()))
    }

    /// Opens and migrates this service's own database; with
    /// `migrate_on_start = false`, opens it once another process (the
    /// migration job) has migrated it. Retries for
    /// [`Config::service_db_wait`], reporting why to [`Self::starting`].
    pub async fn database(&self, migrations: &Migrations) -> Result<Db, DbError> {
        let url = self.config.database_url(self.name);
        let wait = self.config.service_db_wait();
        let max = self.config.db_max_connections;
        let report = |why: String| {
            self.starting.send_replace(why);
        };
        if !self.config.migrate_on_start {
            return Db::connect_migrated_reporting(&url, migrations, wait, max, &report).await;
        }
        Db::connect_reporting(&url, migrations, wait, max, &report).await
    }

    /// HTTP options from the configuration.
    pub fn http_options(&self) -> HttpOptions {
        HttpOptions {
            request_timeout: Duration::from_secs(self.config.request_timeout_secs.max(1)),
            shutdown_grace: Duration::from_secs(self.config.shutdown_grace_secs),
        }
    }
}
