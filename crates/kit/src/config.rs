//! Typed, layered configuration: defaults < optional TOML file < `BAZAAR_*`
//! environment variables.
//!
//! Per-service settings live in a table named after the service
//! (`[catalog] listen = "..."`) and in env vars prefixed with the service
//! name (`BAZAAR_CATALOG_DATABASE_URL`). A service crate may read its own
//! extra keys from the same table with [`Config::section`].

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// A value that never shows up in logs or `Debug` output.
#[derive(Clone, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct Secret<T>(T);

impl<T> Secret<T> {
    /// Wraps a value.
    pub fn new(value: T) -> Self {
        Self(value)
    }
    /// The wrapped value; call it only where the secret is used.
    pub fn expose(&self) -> &T {
        &self.0
    }
}

impl<T> fmt::Debug for Secret<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// The platform's services.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ServiceName {
    /// The API gateway (edge).
    Gateway,
    /// Users, tokens, keys.
    Identity,
    /// Products, categories, stock.
    Catalog,
    /// Orders and the checkout saga.
    Orders,
    /// Payments and refunds.
    Payments,
    /// Email notifications.
    Notifications,
}

impl ServiceName {
    /// Every service, in start-up order (identity first: others fetch its keys).
    pub const ALL: [ServiceName; 6] = [
        ServiceName::Identity,
        ServiceName::Catalog,
        ServiceName::Orders,
        ServiceName::Payments,
        ServiceName::Notifications,
        ServiceName::Gateway,
    ];

    /// Lowercase name, as used in URLs, env vars and file names.
    pub fn as_str(self) -> &'static str {
        match self {
            ServiceName::Gateway => "gateway",
            ServiceName::Identity => "identity",
            ServiceName::Catalog => "catalog",
            ServiceName::Orders => "orders",
            ServiceName::Payments => "payments",
            ServiceName::Notifications => "notifications",
        }
    }

    /// The port of SPEC §1.
    pub fn default_port(self) -> u16 {
        match self {
            ServiceName::Gateway => 8000,
            ServiceName::Identity => 8001,
            ServiceName::Catalog => 8002,
            ServiceName::Orders => 8003,
            ServiceName::Payments => 8004,
            ServiceName::Notifications => 8005,
        }
    }

    /// Whether other services call it (it serves internal gRPC).
    pub fn serves_grpc(self) -> bool {
        matches!(
            self,
            ServiceName::Identity | ServiceName::Catalog | ServiceName::Payments
        )
    }

    /// Whether the service owns a database.
    pub fn has_database(self) -> bool {
        self != ServiceName::Gateway
    }

    /// Parses a lowercase service name.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|n| n.as_str() == s)
    }
}

impl fmt::Display for ServiceName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Log output format.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// One JSON object per line (default; for machines).
    #[default]
    Json,
    /// Coloured, multi-field lines for humans.
    Pretty,
}

/// Settings every service has, read from its own table.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct ServiceSettings {
    /// Address to listen on; defaults to 127.0.0.1:<SPEC port>.
    pub listen: Option<SocketAddr>,
    /// Database URL (`sqlite://...` or `postgres://...`); defaults to a
    /// SQLite file under `data_dir`, or a database of `database_url`.
    pub database_url: Option<Secret<String>>,
    /// How other services reach this one: one URL, or several separated by
    /// commas (an upstream pool). Defaults to `http://<listen>`.
    pub url: Option<String>,
    /// OAuth2 client secret this service uses to get service tokens from
    /// identity (which checks it). Unset: generated once into
    /// `<data_dir>/service-secrets.json` (fine for one machine; set it
    /// explicitly, from a Kubernetes Secret, when services run apart).
    pub client_secret: Option<Secret<String>>,
    /// Operator listener: `/metrics`, `/readyz` with details and the
    /// service's operator routes, kept off the public port. Unset: none,
    /// except the gateway's (`127.0.0.1:8010`, or port 0 when the gateway
    /// itself listens on port 0).
    pub admin_listen: Option<SocketAddr>,
    /// Internal gRPC listener (services others call: identity, catalog,
    /// payments). Defaults to `127.0.0.1:<9000 + n>` beside the HTTP port
    /// `8000 + n` (port 0 when `listen`'s port is 0); never the public port.
    pub grpc_listen: Option<SocketAddr>,
    /// How other services reach this one's gRPC port: one URL, or several
    /// separated by commas (balanced). Defaults to `http://<grpc_listen>`.
    pub grpc_url: Option<String>,
}

/// The whole platform's configuration.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(default)]
pub struct Config {
    /// Folder for SQLite files and generated secrets.
    pub data_dir: PathBuf,
    /// Base database URL. A `postgres://host/NAME` URL gives every service its
    /// own database `NAME_<service>` (`bazaar` when NAME is empty); unset
    /// means one SQLite file per service under `data_dir`.
    pub database_url: Option<Secret<String>>,
    /// Event broker: `embedded`, `amqp://...`, `nats://...` or `redis://...`.
    pub broker_url: Secret<String>,
    /// Prefix of every broker exchange, queue, stream and consumer name.
    pub broker_namespace: String,
    /// Redis, for state shared by gateway replicas (rate limits).
    pub redis_url: Option<Secret<String>>,
    /// `json` or `pretty`.
    pub log_format: LogFormat,
    /// `tracing` filter directive, e.g. `info,bazaar_catalog=debug`.
    pub log_level: String,
    /// Per-request timeout in seconds (504 after it).
    pub request_timeout_secs: u64,
    /// Seconds to wait for in-flight requests on shutdown.
    pub shutdown_grace_secs: u64,
    /// Seconds a service's start-up keeps retrying its database; 0 (the
    /// default) waits as long as it takes, answering `/readyz` 503 with
    /// the reason meanwhile. Commands (`migrate`, `seed`, ...) give up
    /// after this many seconds, or 30 when it is 0.
    pub db_connect_timeout_secs: u64,
    /// Pooled connections per service (PostgreSQL).
    pub db_max_connections: u32,
    /// Per-service tables.
    pub gateway: ServiceSettings,
    /// Identity settings.
    pub identity: ServiceSettings,
    /// Catalog settings.
    pub catalog: ServiceSettings,
    /// Orders settings.
    pub orders: ServiceSettings,
    /// Payments settings.
    pub payments: ServiceSettings,
    /// Notifications settings.
    pub notifications: ServiceSettings,
    /// Whether `serve`/`up` apply pending migrations at start (Django's
    /// `migrate` run by hand otherwise). Turn it off where a separate job
    /// migrates with a DDL-capable role (the Kubernetes manifests do);
    /// services then wait for the schema instead.
    pub migrate_on_start: bool,
    /// The figment the values came from, for service-specific keys.
    #[serde(skip)]
    figment: Option<Figment>,
    /// Things the operator should know about how secrets were read.
    #[serde(skip)]
    warnings: Vec<String>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from("./data"),
            database_url: None,
            broker_url: Secret::new("embedded".into()),
            broker_namespace: "bazaar".into(),
            redis_url: None,
            log_format: LogFormat::Json,
            log_level: "info".into(),
            request_timeout_secs: 30,
            shutdown_grace_secs: 10,
            db_connect_timeout_secs: 0,
            db_max_connections: 10,
            gateway: ServiceSettings::default(),
            identity: ServiceSettings::default(),
            catalog: ServiceSettings::default(),
            orders: ServiceSettings::default(),
            payments: ServiceSettings::default(),
            notifications: ServiceSettings::default(),
            migrate_on_start: true,
            figment: None,
            warnings: Vec::new(),
        }
    }
}

/// A configuration problem, worded for the operator.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(pub String);

/// Maps `BAZAAR_CATALOG_DATABASE_URL` to `catalog.database_url`.
fn env_key(key: &str) -> String {
    let lower = key.to_ascii_lowercase();
    for name in ServiceName::ALL {
        let prefix = format!("{}_", name.as_str());
        if let Some(rest) = lower.strip_prefix(&prefix) {
            return format!("{}.{}", name.as_str(), rest);
        }
    }
    lower
}

impl Config {
    /// Layers defaults, `file` (if given and present) and `BAZAAR_*` env vars.
    pub fn load(file: Option<&Path>) -> Result<Self, ConfigError> {
        Self::load_from(file, Env::prefixed("BAZAAR_"))
    }

    /// Like [`Config::load`] with an explicit env provider (tests).
    pub fn load_from(file: Option<&Path>, env: Env) -> Result<Self, ConfigError> {
        let mut figment = Figment::from(Serialized::defaults(Config::default()));
        if let Some(path) = file {
            if !path.exists() {
                return Err(ConfigError(format!(
                    "configuration file {} does not exist",
                    path.display()
                )));
            }
            figment = figment.merge(Toml::file(path));
        }
        let figment = figment.merge(
            env.ignore(&["CONFIG"])
                .map(|k| env_key(k.as_str()).into())
                .lowercase(false),
        );
        // `BAZAAR_<KEY>_FILE` last: a secret's file stands in for its variable.
        let files = crate::secrets::from_files(|var| std::env::var(var).ok())?;
        let figment = figment.merge(Serialized::defaults(files.values));
        let mut config: Config = figment.extract().map_err(|e| ConfigError(describe(e)))?;
        config.figment = Some(figment);
        config.warnings = files.warnings;
        Ok(config)
    }

    /// Warnings about the secrets read (world-readable secret files).
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    /// The settings of one service.
    pub fn service(&self, name: ServiceName) -> &ServiceSettings {
        match name {
            ServiceName::Gateway => &self.gateway,
            ServiceName::Identity => &self.identity,
            ServiceName::Catalog => &self.catalog,
            ServiceName::Orders => &self.orders,
            ServiceName::Payments => &self.payments,
            ServiceName::Notifications => &self.notifications,
        }
    }

    /// Mutable settings of one service (used by `bazaar up` and tests).
    pub fn service_mut(&mut self, name: ServiceName) -> &mut ServiceSettings {
        match name {
            ServiceName::Gateway => &mut self.gateway,
            ServiceName::Identity => &mut self.identity,
            ServiceName::Catalog => &mut self.catalog,
            ServiceName::Orders => &mut self.orders,
            ServiceName::Payments => &mut self.payments,
            ServiceName::Notifications => &mut self.notifications,
        }
    }

    /// Where a service listens.
    pub fn listen(&self, name: ServiceName) -> SocketAddr {
        self.service(name)
            .listen
            .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], name.default_port())))
    }

    /// Where `name`'s operator listener binds, if it has one.
    pub fn admin_listen(&self, name: ServiceName) -> Option<SocketAddr> {
        if let Some(addr) = self.service(name).admin_listen {
            return Some(addr);
        }
        (name == ServiceName::Gateway).then(|| {
            let port = if self.listen(name).port() == 0 {
                0
            } else {
                8010
            };
            SocketAddr::from(([127, 0, 0, 1], port))
        })
    }

    /// Where `name` serves internal gRPC, if it does.
    pub fn grpc_listen(&self, name: ServiceName) -> Option<SocketAddr> {
        if let Some(addr) = self.service(name).grpc_listen {
            return Some(addr);
        }
        name.serves_grpc().then(|| {
            let port = match self.listen(name).port() {
                0 => 0,
                _ => name.default_port() + 1000,
            };
            SocketAddr::from(([127, 0, 0, 1], port))
        })
    }

    /// The gRPC URLs other services use to reach `name` (several for a pool).
    pub fn grpc_urls(&self, name: ServiceName) -> Vec<String> {
        match &self.service(name).grpc_url {
            Some(urls) => split_urls(urls),
            None => self
                .grpc_listen(name)
                .map(|addr| vec![format!("http://{addr}")])
                .unwrap_or_default(),
        }
    }

    /// The URLs other services use to reach `name` (several for a pool).
    pub fn urls(&self, name: ServiceName) -> Vec<String> {
        match &self.service(name).url {
            Some(urls) => split_urls(urls),
            None => vec![format!("http://{}", self.listen(name))],
        }
    }

    /// The first URL of `name`.
    pub fn url(&self, name: ServiceName) -> String {
        self.urls(name).into_iter().next().unwrap_or_default()
    }

    /// How long a service's start-up retries its database:
    /// `db_connect_timeout_secs`, or without end when that is 0.
    pub fn service_db_wait(&self) -> Duration {
        match self.db_connect_timeout_secs {
            0 => Duration::MAX,
            secs => Duration::from_secs(secs),
        }
    }

    /// How long a command (`migrate`, `seed`, ...) retries a database:
    /// `db_connect_timeout_secs`, or 30 s when that is 0.
    pub fn command_db_wait(&self) -> Duration {
        Duration::from_secs(match self.db_connect_timeout_secs {
            0 => 30,
            secs => secs,
        })
    }

    /// The database URL a service uses, resolved from its own setting, the
    /// base `database_url`, or the SQLite default.
    pub fn database_url(&self, name: ServiceName) -> String {
        if let Some(url) = &self.service(name).database_url {
            return url.expose().clone();
        }
        if let Some(base) = &self.database_url {
            let base = base.expose();
            if base.starts_with("postgres")
                && let Ok(mut url) = url::Url::parse(base)
            {
                let stem = url.path().trim_matches('/').to_string();
                let stem = if stem.is_empty() {
                    "bazaar".into()
                } else {
                    stem
                };
                url.set_path(&format!("/{stem}_{}", name.as_str()));
                return url.to_string();
            }
            if let Some(dir) = base.strip_prefix("sqlite://") {
                return format!(
                    "sqlite://{}/{}.db",
                    dir.trim_end_matches('/'),
                    name.as_str()
                );
            }
        }
        format!("sqlite://{}/{}.db", self.data_dir.display(), name.as_str())
    }

    /// The client secret of `name` (see [`ServiceSettings::client_secret`]).
    pub fn client_secret(&self, name: ServiceName) -> Option<&Secret<String>> {
        self.service(name).client_secret.as_ref()
    }

    /// Fills unset client secrets from `<data_dir>/service-secrets.json`,
    /// generating and saving (mode 0600) the ones it lacks.
    pub fn ensure_client_secrets(&mut self) -> Result<(), ConfigError> {
        if ServiceName::ALL
            .iter()
            .all(|n| self.service(*n).client_secret.is_some())
        {
            return Ok(());
        }
        let path = self.data_dir.join("service-secrets.json");
        let mut stored: BTreeMap<String, String> = match std::fs::read_to_string(&path) {
            Ok(text) => serde_json::from_str(&text)
                .map_err(|e| ConfigError(format!("{}: {e}", path.display())))?,
            Err(_) => BTreeMap::new(),
        };
        let mut changed = false;
        for name in ServiceName::ALL {
            let secret = stored.entry(name.as_str().to_string()).or_insert_with(|| {
                changed = true;
                random_secret()
            });
            let settings = self.service_mut(name);
            if settings.client_secret.is_none() {
                settings.client_secret = Some(Secret::new(secret.clone()));
            }
        }
        if changed {
            create_private_dir(&self.data_dir)
                .map_err(|e| ConfigError(format!("{}: {e}", self.data_dir.display())))?;
            let text = serde_json::to_string_pretty(&stored).unwrap_or_default();
            write_private(&path, &text)
                .map_err(|e| ConfigError(format!("{}: {e}", path.display())))?;
        }
        Ok(())
    }

    /// Reads a service's extra keys (e.g. `[payments] latency_ms`) into `T`.
    pub fn section<T: DeserializeOwned + Default>(
        &self,
        name: ServiceName,
    ) -> Result<T, ConfigError> {
        let Some(figment) = &self.figment else {
            return Ok(T::default());
        };
        match figment.find_value(name.as_str()) {
            Ok(_) => figment
                .extract_inner::<T>(name.as_str())
                .map_err(|e| ConfigError(describe(e))),
            Err(_) => Ok(T::default()),
        }
    }

    /// Every problem found, worded for `bazaar check`; empty when valid.
    pub fn validate(&self) -> Vec<String> {
        let mut problems = Vec::new();
        let mut ports: BTreeMap<SocketAddr, ServiceName> = BTreeMap::new();
        for name in ServiceName::ALL {
            let listeners = [
                ("listen", Some(self.listen(name))),
                ("grpc_listen", self.grpc_listen(name)),
                ("admin_listen", self.admin_listen(name)),
            ];
            for (key, addr) in listeners {
                if let Some(addr) = addr
                    && addr.port() != 0
                    && let Some(other) = ports.insert(addr, name)
                {
                    problems.push(format!(
                        "{name}.{key}: {addr} is also used by {other}; give each listener its own port"
                    ));
                }
            }
            for url in self.grpc_urls(name) {
                if !url.starts_with("http://") {
                    problems.push(format!(
                        "{name}.grpc_url: {url:?} is not an http:// URL (BAZAAR_{}_GRPC_URL)",
                        name.as_str().to_uppercase()
                    ));
                }
            }
            for url in self.urls(name) {
                match url::Url::parse(&url) {
                    Ok(u) if u.scheme() == "http" || u.scheme() == "https" => {}
                    _ => problems.push(format!(
                        "{name}.url: {url:?} is not an http(s) URL (BAZAAR_{}_URL)",
                        name.as_str().to_uppercase()
                    )),
                }
            }
            if name.has_database() {
                let db = self.database_url(name);
                if !(db.starts_with("sqlite:")
                    || db.starts_with("postgres://")
                    || db.starts_with("postgresql://"))
                {
                    problems.push(format!(
                        "{name}.database_url: must start with sqlite:// or postgres:// (BAZAAR_{}_DATABASE_URL)",
                        name.as_str().to_uppercase()
                    ));
                }
            }
        }
        let broker = self.broker_url.expose();
        if !(broker == "embedded"
            || broker.starts_with("amqp://")
            || broker.starts_with("amqps://")
            || broker.starts_with("nats://")
            || broker.starts_with("tls://")
            || broker.starts_with("redis://"))
        {
            problems.push(format!(
                "broker_url: {broker:?} is not one of embedded, amqp://..., nats://..., redis://... (BAZAAR_BROKER_URL)"
            ));
        }
        if let Some(redis) = &self.redis_url
            && !(redis.expose().starts_with("redis://") || redis.expose().starts_with("rediss://"))
        {
            problems
                .push("redis_url: must start with redis:// or rediss:// (BAZAAR_REDIS_URL)".into());
        }
        if self.request_timeout_secs == 0 {
            problems.push("request_timeout_secs: must be at least 1".into());
        }
        problems.extend(self.placeholder_problems());
        problems
    }

    /// Every secret setting that is set, as (key, value).
    pub fn secret_values(&self) -> Vec<(String, String)> {
        crate::secrets::secret_keys()
            .into_iter()
            .filter_map(|key| {
                // The typed field (callers may have changed it since
                // loading), else the raw value (a service's own key).
                let value = self
                    .secret_field(&key)
                    .or_else(|| self.figment.as_ref()?.find_value(&key).ok()?.into_string())?;
                Some((key, value))
            })
            .collect()
    }

    fn secret_field(&self, key: &str) -> Option<String> {
        let expose = |s: &Option<Secret<String>>| s.as_ref().map(|s| s.expose().clone());
        match key.split_once('.') {
            None => match key {
                "database_url" => expose(&self.database_url),
                "broker_url" => Some(self.broker_url.expose().clone()),
                "redis_url" => expose(&self.redis_url),
                _ => None,
            },
            Some((service, field)) => {
                let settings = self.service(ServiceName::parse(service)?);
                match field {
                    "database_url" => expose(&settings.database_url),
                    "client_secret" => expose(&settings.client_secret),
                    _ => None,
                }
            }
        }
    }

    /// `REPLACE-ME` left in any secret: refused by `check` and at start-up.
    fn placeholder_problems(&self) -> Vec<String> {
        self.secret_values()
            .into_iter()
            .filter(|(_, value)| crate::secrets::is_placeholder(value))
            .map(|(key, _)| {
                let var = crate::secrets::env_var_of(&key);
                format!(
                    "{key}: still holds the deploy example's placeholder {}; set the real value ({var} or {var}_FILE)",
                    crate::secrets::PLACEHOLDER
                )
            })
            .collect()
    }
}

/// A URL with its password replaced by `***`, for logs and banners.
pub fn redact_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("***"));
            u.to_string()
        }
        Ok(_) => url.to_string(),
        // Not a URL the parser takes: mask whatever looks like userinfo.
        Err(_) => crate::secrets::mask_secrets_in(url),
    }
}

fn random_secret() -> String {
    use rand::Rng as _;
    let bytes: [u8; 32] = rand::rng().random();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A comma-separated URL list, trimmed, without trailing slashes.
fn split_urls(urls: &str) -> Vec<String> {
    urls.split(',')
        .map(|u| u.trim().trim_end_matches('/').to_string())
        .filter(|u| !u.is_empty())
        .collect()
}

fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write as _;
    let mut file = private_file(path, true)?;
    file.write_all(text.as_bytes())
}

/// Creates `dir` (and missing parents) readable by the owner only: it holds
/// signing keys, password hashes and service secrets.
pub(crate) fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    if dir.as_os_str().is_empty() || dir.is_dir() {
        return Ok(());
    }
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)
}

/// Opens (creating it if missing) a file only its owner may read or
/// write, tightening the mode of one that exists; `truncate` empties it.
pub(crate) fn private_file(path: &Path, truncate: bool) -> std::io::Result<std::fs::File> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(truncate);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let file = options.open(path)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    }
    Ok(file)
}

/// Turns a figment error into one line per problem, naming the key and where
/// its value came from.
fn describe(error: figment::Error) -> String {
    error
        .into_iter()
        .map(|e| {
            let key = e.path.join(".");
            let source = e
                .metadata
                .as_ref()
                .map(|m| match &m.source {
                    Some(src) => format!(" (from {} {src})", m.name),
                    None => format!(" (from {})", m.name),
                })
                .unwrap_or_default();
            if key.is_empty() {
                format!("{}{source}", e.kind)
            } else {
                format!("{key}: {}{source}", e.kind)
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    // figment::Jail isolates the process env and cwd for each test.
    fn env(_: &[(&str, &str)]) -> Env {
        Env::prefixed("BAZAAR_")
    }

    #[test]
    fn defaults_follow_spec_ports_and_sqlite_files() {
        figment::Jail::expect_with(|_jail| {
            let c = Config::load_from(None, env(&[])).map_err(|e| e.0)?;
            assert_eq!(c.listen(ServiceName::Gateway).port(), 8000);
            assert_eq!(c.listen(ServiceName::Notifications).port(), 8005);
            assert_eq!(
                c.database_url(ServiceName::Catalog),
                "sqlite://./data/catalog.db"
            );
            assert_eq!(c.broker_url.expose(), "embedded");
            assert!(c.validate().is_empty());
            Ok(())
        });
    }

    #[test]
    fn env_overrides_file_overrides_defaults() {
        figment::Jail::expect_with(|jail| {
            jail.create_file(
                "bazaar.toml",
                r#"
                log_level = "debug"
                request_timeout_secs = 5
                [catalog]
                listen = "127.0.0.1:9002"
                database_url = "sqlite://file.db"
                "#,
            )?;
            jail.set_env(
                "BAZAAR_CATALOG_DATABASE_URL",
                "postgres://postgres@127.0.0.1/bazaar_catalog",
            );
            jail.set_env("BAZAAR_REQUEST_TIMEOUT_SECS", "7");
            let c = Config::load_from(Some(Path::new("bazaar.toml")), env(&[])).map_err(|e| e.0)?;
            assert_eq!(c.log_level, "debug");
            assert_eq!(c.request_timeout_secs, 7);
            assert_eq!(c.listen(ServiceName::Catalog).port(), 9002);
            assert_eq!(
                c.database_url(ServiceName::Catalog),
                "postgres://postgres@127.0.0.1/bazaar_catalog"
            );
            Ok(())
        });
    }

    #[test]
    fn base_postgres_url_gives_one_database_per_service() {
        figment::Jail::expect_with(|jail| {
            jail.set_env(
                "BAZAAR_DATABASE_URL",
                "postgres://postgres@127.0.0.1:5432/shop",
            );
            let c = Config::load_from(None, env(&[])).map_err(|e| e.0)?;
            assert_eq!(
                c.database_url(ServiceName::Orders),
                "postgres://postgres@127.0.0.1:5432/shop_orders"
            );
            Ok(())
        });
    }

    #[test]
    fn secrets_are_redacted_in_debug() {
        let s = Secret::new("postgres://u:hunter2@db/x".to_string());
        assert_eq!(format!("{s:?}"), "[redacted]");
        let c = Config {
            database_url: Some(s),
            ..Config::default()
        };
        assert!(!format!("{c:?}").contains("hunter2"));
    }

    #[test]
    fn bad_values_are_reported_with_their_key() {
        figment::Jail::expect_with(|jail| {
            jail.set_env("BAZAAR_GATEWAY_LISTEN", "not-an-address");
            let err = Config::load_from(None, env(&[])).expect_err("must fail");
            assert!(err.0.contains("gateway.listen"), "{}", err.0);
            Ok(())
        });
        figment::Jail::expect_with(|jail| {
            jail.set_env("BAZAAR_BROKER_URL", "kafka://x");
            jail.set_env("BAZAAR_ORDERS_LISTEN", "127.0.0.1:8002");
            let c = Config::load_from(None, env(&[])).map_err(|e| e.0)?;
            let problems = c.validate();
            assert!(
                problems.iter().any(|p| p.starts_with("broker_url")),
                "{problems:?}"
            );
            assert!(
                problems.iter().any(|p| p.contains("also used by")),
                "{problems:?}"
            );
            Ok(())
        });
    }

    #[derive(Deserialize, Default)]
    #[serde(default)]
    struct Extra {
        latency_ms: u64,
    }

    #[test]
    fn service_sections_carry_extra_keys() {
        figment::Jail::expect_with(|jail| {
            jail.set_env("BAZAAR_PAYMENTS_LATENCY_MS", "25");
            let c = Config::load_from(None, env(&[])).map_err(|e| e.0)?;
            let extra: Extra = c.section(ServiceName::Payments).map_err(|e| e.0)?;
            assert_eq!(extra.latency_ms, 25);
            Ok(())
        });
    }
}
