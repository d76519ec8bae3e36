//! Starting and stopping services.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use bazaar_kit::db::{Db, Migrations};
use bazaar_kit::events::Bus;
use bazaar_kit::http::serve;
use bazaar_kit::{CancellationToken, Config, Service, ServiceContext, ServiceName};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// Builds one service from the platform configuration.
pub async fn build_service(ctx: ServiceContext) -> anyhow::Result<Service> {
    let service = match ctx.name {
        ServiceName::Identity => bazaar_identity::build(ctx).await,
        ServiceName::Catalog => bazaar_catalog::build(ctx).await,
        ServiceName::Orders => bazaar_orders::build(ctx).await,
        ServiceName::Payments => bazaar_payments::build(ctx).await,
        ServiceName::Notifications => bazaar_notifications::build(ctx).await,
        ServiceName::Gateway => bazaar_gateway::build(ctx).await,
    };
    service.with_context(|| "could not start the service")
}

/// The migrations of a service that owns data.
pub fn migrations(name: ServiceName) -> Option<&'static Migrations> {
    match name {
        ServiceName::Identity => Some(&bazaar_identity::MIGRATIONS),
        ServiceName::Catalog => Some(&bazaar_catalog::MIGRATIONS),
        ServiceName::Orders => Some(&bazaar_orders::MIGRATIONS),
        ServiceName::Payments => Some(&bazaar_payments::MIGRATIONS),
        ServiceName::Notifications => Some(&bazaar_notifications::MIGRATIONS),
        ServiceName::Gateway => None,
    }
}

/// Applies a service's pending migrations (creating its database if needed).
pub async fn migrate(config: &Config, name: ServiceName) -> anyhow::Result<()> {
    let Some(migrations) = migrations(name) else {
        return Ok(());
    };
    let url = config.database_url(name);
    let db = Db::connect(&url, migrations, config.command_db_wait())
        .await
        .with_context(|| {
            format!(
                "{name}: migrating its database {}",
                bazaar_kit::config::redact_url(&url)
            )
        })?;
    db.close().await;
    Ok(())
}

/// Services running in this process.
pub struct Running {
    /// Where each service listens.
    pub addrs: BTreeMap<ServiceName, SocketAddr>,
    /// Where each service with an operator listener serves it.
    pub admin_addrs: BTreeMap<ServiceName, SocketAddr>,
    /// The configuration they run with (URLs resolved to the bound ports).
    pub config: Arc<Config>,
    shutdown: CancellationToken,
    tasks: Vec<(ServiceName, JoinHandle<anyhow::Result<()>>)>,
}

impl Running {
    /// The gateway's base URL, if it runs here.
    pub fn gateway_url(&self) -> Option<String> {
        self.addrs
            .get(&ServiceName::Gateway)
            .map(|a| format!("http://{a}"))
    }

    /// The base URL of a service running here.
    pub fn url(&self, name: ServiceName) -> Option<String> {
        self.addrs.get(&name).map(|a| format!("http://{a}"))
    }

    /// The base URL of a service's operator listener (`/metrics`, readiness
    /// details), if it has one and runs here.
    pub fn admin_url(&self, name: ServiceName) -> Option<String> {
        self.admin_addrs.get(&name).map(|a| format!("http://{a}"))
    }

    /// A token that stops everything when cancelled.
    pub fn shutdown_token(&self) -> CancellationToken {
        self.shutdown.clone()
    }

    /// Stops every service and waits for them; the first error wins.
    pub async fn stop(self) -> anyhow::Result<()> {
        self.shutdown.cancel();
        self.wait().await
    }

    /// Waits until every service has stopped (after the token is cancelled,
    /// or when one fails, which stops the rest).
    pub async fn wait(self) -> anyhow::Result<()> {
        let mut first_error = None;
        let token = self.shutdown.clone();
        let mut pending: futures::stream::FuturesUnordered<_> = self
            .tasks
            .into_iter()
            .map(|(name, task)| async move { (name, task.await) })
            .collect();
        use futures::StreamExt;
        while let Some((name, result)) = pending.next().await {
            let error = match result {
                Ok(Ok(())) => None,
                Ok(Err(e)) => Some(e.context(format!("{name} stopped with an error"))),
                Err(e) => Some(anyhow::anyhow!("{name} crashed: {e}")),
            };
            if let Some(e) = error {
                token.cancel();
                first_error.get_or_insert(e);
            }
        }
        first_error.map_or(Ok(()), Err)
    }
}

/// Binds every listener first (port 0 picks a free port), points the
/// services at each other's real addresses, then builds and serves them.
pub async fn start(mut config: Config, services: &[ServiceName]) -> anyhow::Result<Running> {
    let mut listeners = Vec::new();
    let mut addrs = BTreeMap::new();
    let mut admin_addrs = BTreeMap::new();
    for &name in ServiceName::ALL.iter().filter(|n| services.contains(n)) {
        let wanted = config.listen(name);
        // Read before `listen` is resolved: port 0 there means port 0 here.
        let wanted_admin = config.admin_listen(name);
        let wanted_grpc = config.grpc_listen(name);
        let listener = TcpListener::bind(wanted)
            .await
            .with_context(|| format!("{name}: cannot listen on {wanted}"))?;
        let addr = listener.local_addr()?;
        addrs.insert(name, addr);
        let admin = match wanted_admin {
            Some(wanted) => {
                let admin = TcpListener::bind(wanted)
                    .await
                    .with_context(|| format!("{name}: cannot listen on {wanted} (admin_listen)"))?;
                admin_addrs.insert(name, admin.local_addr()?);
                Some(admin)
            }
            None => None,
        };
        let settings = config.service_mut(name);
        settings.listen = Some(addr);
        if settings.url.is_none() {
            settings.url = Some(format!("http://{addr}"));
        }
        let grpc = match wanted_grpc {
            Some(wanted) => {
                let grpc = TcpListener::bind(wanted)
                    .await
                    .with_context(|| format!("{name}: cannot listen on {wanted} (grpc_listen)"))?;
                let addr = grpc.local_addr()?;
                let settings = config.service_mut(name);
                settings.grpc_listen = Some(addr);
                if settings.grpc_url.is_none() {
                    settings.grpc_url = Some(format!("http://{addr}"));
                }
                Some(grpc)
            }
            None => None,
        };
        listeners.push((name, listener, admin, grpc));
    }
    config
        .ensure_client_secrets()
        .map_err(|e| anyhow::anyhow!("service client secrets: {e}"))?;
    let config = Arc::new(config);
    // The gateway publishes and consumes nothing: alone it needs no broker.
    let bus = if services.iter().all(|s| *s == ServiceName::Gateway) {
        Bus::embedded()
    } else {
        Bus::connect(config.broker_url.expose(), &config.broker_namespace).await?
    };
    let shutdown = CancellationToken::new();
    // Until a service is built (its database may be out of reach for a
    // while), its port answers `/healthz` 200 and 503 elsewhere, naming why.
    let mut starting = Vec::new();
    for (name, listener, admin, grpc) in listeners {
        let ctx = ServiceContext::new(name, config.clone(), bus.clone());
        let built = shutdown.child_token();
        if let Err(e) = bazaar_kit::http::serve_starting(
            &listener,
            ctx.starting(),
            admin.is_none(),
            built.clone(),
        ) {
            shutdown.cancel();
            return Err(anyhow::Error::new(e).context(format!("{name}: start-up listener")));
        }
        starting.push((ctx, listener, admin, grpc, built));
    }
    let mut tasks = Vec::new();
    for (ctx, listener, admin, grpc, built) in starting {
        let name = ctx.name;
        let options = ctx.http_options();
        let built_service = build_service(ctx).await;
        built.cancel();
        let mut service = match built_service {
            Ok(s) => s,
            Err(e) => {
                shutdown.cancel();
                for (_, task) in tasks {
                    let _ = task.await;
                }
                return Err(e.context(format!("{name} failed to start")));
            }
        };
        service.admin = admin;
        service.grpc_listener = grpc;
        let token = shutdown.clone();
        tasks.push((name, tokio::spawn(serve(service, listener, options, token))));
    }
    // Every subscriber is registered now; delivery may begin once the
    // broker answers (retried in the background; `/readyz` says why not).
    bus.start_in_background(shutdown.clone());
    Ok(Running {
        addrs,
        admin_addrs,
        config,
        shutdown,
        tasks,
    })
}
