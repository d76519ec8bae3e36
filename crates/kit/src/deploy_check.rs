//! `bazaar check --deploy` (Django's `check --deploy`): settings that work
//! on a laptop but are unsafe or broken in production, each with its fix.

use crate::config::{Config, ServiceName};
use crate::secrets::{self, MIN_SECRET_LEN};

/// Shortest password `check --deploy` accepts inside a connection URL.
pub const MIN_URL_PASSWORD_LEN: usize = 12;

/// Every production problem of `config`, worded for the operator; empty
/// when it is fit to deploy. `env` looks up environment variables (the
/// `_FILE` twins whose files it inspects).
pub fn deploy_problems(config: &Config, env: impl Fn(&str) -> Option<String>) -> Vec<String> {
    let mut problems = config.validate();
    for name in ServiceName::ALL.into_iter().filter(|n| n.has_database()) {
        let url = config.database_url(name);
        if url.starts_with("sqlite:") {
            let var = secrets::env_var_of(&format!("{name}.database_url"));
            problems.push(format!(
                "{name}.database_url: SQLite ({url}) under `serve`: each service runs as its own \
                 process, often several replicas, and they cannot share one SQLite file; set \
                 BAZAAR_DATABASE_URL=postgres://... (one database per service) or {var}"
            ));
        }
    }
    if config.broker_url.expose() == "embedded" {
        problems.push(
            "broker_url: the embedded bus only connects services inside one process (`bazaar up`); \
             with `serve` events would never leave their service; set BAZAAR_BROKER_URL to \
             amqp://..., amqps://..., nats://... or redis://..."
                .into(),
        );
    }
    if !gateway_trusts_a_proxy(config) {
        problems.push(
            "gateway.trusted_proxies: unset, so behind an ingress or load balancer every client \
             looks like the proxy itself (one shared per-IP rate limit, and the proxy's \
             X-Forwarded-* are discarded); set BAZAAR_GATEWAY_TRUSTED_PROXIES to the proxy's \
             addresses or CIDRs, e.g. 10.0.0.0/8"
                .into(),
        );
    }
    for name in ServiceName::ALL {
        let var = secrets::env_var_of(&format!("{name}.client_secret"));
        match config.client_secret(name) {
            None => problems.push(format!(
                "{name}.client_secret: unset, so each machine would generate its own and the \
                 services would not recognise each other; set {var} (or {var}_FILE) to a random \
                 value of at least {MIN_SECRET_LEN} characters (`openssl rand -hex 32`), the same \
                 in identity and in {name}"
            )),
            Some(s) if s.expose().len() < MIN_SECRET_LEN => problems.push(format!(
                "{name}.client_secret: {} characters is too short to resist guessing; use at least \
                 {MIN_SECRET_LEN} random characters (`openssl rand -hex 32`) in {var}",
                s.expose().len()
            )),
            Some(_) => {}
        }
    }
    for (key, value) in config.secret_values() {
        if let Ok(url) = url::Url::parse(&value)
            && let Some(password) = url.password()
            && !secrets::is_placeholder(password)
            && password.len() < MIN_URL_PASSWORD_LEN
        {
            problems.push(format!(
                "{key}: the password in this URL is {} characters; use at least \
                 {MIN_URL_PASSWORD_LEN} random characters ({})",
                password.len(),
                secrets::env_var_of(&key)
            ));
        }
    }
    for key in secrets::secret_keys() {
        let file_var = format!("{}_FILE", secrets::env_var_of(&key));
        if let Some(path) = env(&file_var)
            && secrets::world_readable(std::path::Path::new(&path))
        {
            problems.push(format!(
                "{file_var}: {path} is readable by every user; chmod 0600 (or 0440 with the \
                 service's group; in Kubernetes a Secret volume's defaultMode: 0440)"
            ));
        }
    }
    problems
}

/// Whether `[gateway] trusted_proxies` names at least one proxy (a list,
/// or one comma-separated string as the environment gives it).
fn gateway_trusts_a_proxy(config: &Config) -> bool {
    #[derive(serde::Deserialize, Default)]
    #[serde(default)]
    struct Edge {
        trusted_proxies: Option<serde_json::Value>,
    }
    let edge: Edge = config.section(ServiceName::Gateway).unwrap_or_default();
    match edge.trusted_proxies {
        Some(serde_json::Value::String(s)) => s.split(',').any(|p| !p.trim().is_empty()),
        Some(serde_json::Value::Array(list)) => !list.is_empty(),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Secret;

    fn production() -> Config {
        let dir = tempfile::tempdir().expect("dir");
        let file = dir.path().join("bazaar.toml");
        std::fs::write(&file, "[gateway]\ntrusted_proxies = \"10.0.0.0/8\"\n").expect("toml");
        let mut c = Config::load(Some(&file)).expect("config");
        c.database_url = Some(Secret::new(
            "postgres://bazaar:a-long-db-password@db:5432/bazaar".into(),
        ));
        c.broker_url = Secret::new("amqps://bazaar:a-long-broker-password@mq/bazaar".into());
        for name in ServiceName::ALL {
            c.service_mut(name).client_secret = Some(Secret::new("x".repeat(MIN_SECRET_LEN)));
        }
        c
    }

    #[test]
    fn a_production_configuration_passes() {
        let problems = deploy_problems(&production(), |_| None);
        assert!(problems.is_empty(), "{problems:?}");
    }

    #[test]
    fn every_refusal_names_its_fix() {
        // The laptop defaults: SQLite, embedded bus, generated secrets.
        let problems = deploy_problems(&Config::default(), |_| None);
        assert!(
            problems
                .iter()
                .any(|p| p.starts_with("gateway.trusted_proxies: unset") && p.contains("CIDR"))
        );
        let sqlite = problems.iter().filter(|p| p.contains("SQLite")).count();
        assert_eq!(sqlite, 5, "{problems:?}");
        assert!(
            problems
                .iter()
                .any(|p| p.starts_with("broker_url:") && p.contains("amqp://"))
        );
        assert!(
            problems
                .iter()
                .any(|p| p.starts_with("orders.client_secret: unset") && p.contains("openssl rand"))
        );

        let mut c = production();
        c.orders.client_secret = Some(Secret::new("short".into()));
        c.payments.client_secret = Some(Secret::new("REPLACE-ME".into()));
        c.broker_url = Secret::new("amqp://guest:guest@mq/%2f".into());
        let problems = deploy_problems(&c, |_| None);
        assert!(
            problems
                .iter()
                .any(|p| p.starts_with("orders.client_secret: 5 characters"))
        );
        assert!(
            problems
                .iter()
                .any(|p| p.starts_with("payments.client_secret: still holds"))
        );
        assert!(
            problems
                .iter()
                .any(|p| p.starts_with("broker_url: the password in this URL is 5 characters"))
        );
        assert!(
            problems.iter().all(|p| !p.contains("guest:guest")),
            "never prints a secret: {problems:?}"
        );
    }

    #[cfg(unix)]
    #[test]
    fn world_readable_secret_files_are_refused() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("redis");
        std::fs::write(&path, "redis://:x@r").expect("write");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        let p = path.display().to_string();
        let problems = deploy_problems(&production(), |var| {
            (var == "BAZAAR_REDIS_URL_FILE").then(|| p.clone())
        });
        assert!(
            problems
                .iter()
                .any(|x| x.starts_with("BAZAAR_REDIS_URL_FILE:")),
            "{problems:?}"
        );
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).expect("chmod");
        let problems = deploy_problems(&production(), |var| {
            (var == "BAZAAR_REDIS_URL_FILE").then(|| p.clone())
        });
        assert!(problems.is_empty(), "{problems:?}");
    }
}
