//! Secret settings: `<VAR>_FILE` (the Docker/Kubernetes convention), the
//! placeholder and strength rules `bazaar check` applies, and masking of
//! secrets inside text that is printed or logged.
//!
//! A world-readable secret file is *accepted with a warning*, not refused:
//! Kubernetes mounts Secret volumes 0644 unless `defaultMode` says
//! otherwise and Compose bind-mounts keep the host file's mode, so refusing
//! would break the ordinary container case, where the container's one user
//! is the only reader anyway. `bazaar check --deploy`, which is asked for a
//! strict verdict, refuses it.

use std::path::{Path, PathBuf};

use crate::config::{ConfigError, ServiceName};

/// The text deploy examples put where a real secret belongs.
pub const PLACEHOLDER: &str = "REPLACE-ME";

/// Shortest secret `bazaar check --deploy` accepts (client secrets).
pub const MIN_SECRET_LEN: usize = 32;

/// Every secret setting, as its configuration key (`catalog.database_url`).
/// Each is also read from the file named by `BAZAAR_<KEY>_FILE`.
pub fn secret_keys() -> Vec<String> {
    let mut keys: Vec<String> = ["database_url", "broker_url", "redis_url"]
        .into_iter()
        .map(String::from)
        .collect();
    for name in ServiceName::ALL {
        keys.push(format!("{name}.database_url"));
        keys.push(format!("{name}.client_secret"));
    }
    keys.push("notifications.email_host_password".into());
    keys
}

/// `catalog.database_url` → `BAZAAR_CATALOG_DATABASE_URL`.
pub fn env_var_of(key: &str) -> String {
    format!("BAZAAR_{}", key.replace('.', "_").to_ascii_uppercase())
}

/// A secret file's contents and what an operator should be told about it.
struct FileSecret {
    value: String,
    warning: Option<String>,
}

fn read_secret_file(var: &str, path: &Path) -> Result<FileSecret, ConfigError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| ConfigError(format!("{var}: cannot read {}: {e}", path.display())))?;
    // Files written with `echo` end in a newline that is not part of the secret.
    let value = text.trim_end_matches(['\n', '\r']).to_string();
    if value.is_empty() {
        return Err(ConfigError(format!("{var}: {} is empty", path.display())));
    }
    Ok(FileSecret {
        value,
        warning: world_readable(path).then(|| {
            format!(
                "{var}: {} is readable by every user of this machine; make it 0600 or 0640 \
                 (in Kubernetes, a Secret volume's defaultMode: 0440)",
                path.display()
            )
        }),
    })
}

/// Whether a file's mode lets every local user read it.
pub fn world_readable(path: &Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::metadata(path).is_ok_and(|m| m.permissions().mode() & 0o004 != 0)
    }
    #[cfg(not(unix))]
    {
        let _ = path;
        false
    }
}

/// Secrets read from `BAZAAR_<KEY>_FILE`, as a nested JSON object to merge
/// over the environment, with the warnings to show.
pub(crate) struct FileSecrets {
    pub values: serde_json::Value,
    pub warnings: Vec<String>,
}

/// Reads every `BAZAAR_<KEY>_FILE` that is set. Setting both the variable
/// and its `_FILE` twin is an error: which one wins would be a guess.
pub(crate) fn from_files(
    lookup: impl Fn(&str) -> Option<String>,
) -> Result<FileSecrets, ConfigError> {
    let mut values = serde_json::Map::new();
    let mut warnings = Vec::new();
    for key in secret_keys() {
        let var = env_var_of(&key);
        let file_var = format!("{var}_FILE");
        let Some(path) = lookup(&file_var).filter(|p| !p.is_empty()) else {
            continue;
        };
        if lookup(&var).is_some() {
            return Err(ConfigError(format!(
                "{var} and {file_var} are both set; keep one"
            )));
        }
        let path = PathBuf::from(path);
        let secret = read_secret_file(&file_var, &path)?;
        warnings.extend(secret.warning);
        let mut parts = key.split('.').collect::<Vec<_>>();
        let leaf = parts.pop().unwrap_or_default();
        let mut table = &mut values;
        for part in parts {
            table = table
                .entry(part.to_string())
                .or_insert_with(|| serde_json::Value::Object(serde_json::Map::new()))
                .as_object_mut()
                .ok_or_else(|| ConfigError(format!("{key}: not a table")))?;
        }
        table.insert(leaf.to_string(), serde_json::Value::String(secret.value));
    }
    Ok(FileSecrets {
        values: serde_json::Value::Object(values),
        warnings,
    })
}

/// A secret from `VAR` or the file `VAR_FILE` names (for settings read
/// outside [`crate::Config`], such as `BAZAAR_SUPERUSER_PASSWORD`).
pub fn env_or_file(var: &str) -> Result<Option<String>, ConfigError> {
    let file_var = format!("{var}_FILE");
    match (std::env::var(var).ok(), std::env::var(&file_var).ok()) {
        (Some(_), Some(_)) => Err(ConfigError(format!(
            "{var} and {file_var} are both set; keep one"
        ))),
        (Some(v), None) => Ok(Some(v)),
        (None, Some(path)) => {
            let secret = read_secret_file(&file_var, Path::new(&path))?;
            if let Some(w) = secret.warning {
                eprintln!("warning: {w}");
            }
            Ok(Some(secret.value))
        }
        (None, None) => Ok(None),
    }
}

/// Whether a value still holds a deploy example's placeholder.
pub fn is_placeholder(value: &str) -> bool {
    let upper = value.to_ascii_uppercase();
    upper.contains(PLACEHOLDER) || upper.contains("CHANGEME") || upper.contains("CHANGE-ME")
}

/// `text` with every password of a URL inside it replaced by `***`: for
/// banners, `check` output, log lines and error messages that may quote a
/// connection string (`amqp://user:pw@host` anywhere in the text).
pub fn mask_secrets_in(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("://") {
        let (head, tail) = rest.split_at(at + 3);
        out.push_str(head);
        // The authority ends at the first '/', '?', '#' or whitespace.
        let end = tail
            .find(|c: char| c == '/' || c == '?' || c == '#' || c.is_whitespace() || c == '"')
            .unwrap_or(tail.len());
        let authority = &tail[..end];
        match authority.rfind('@') {
            Some(at) => {
                let userinfo = &authority[..at];
                match userinfo.find(':') {
                    Some(colon) => {
                        out.push_str(&userinfo[..colon]);
                        out.push_str(":***");
                    }
                    None => out.push_str(userinfo),
                }
                out.push_str(&authority[at..]);
            }
            None => out.push_str(authority),
        }
        rest = &tail[end..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_every_password_in_text() {
        assert_eq!(
            mask_secrets_in("amqp://bazaar:s3cr3t@rabbit:5672/%2f"),
            "amqp://bazaar:***@rabbit:5672/%2f"
        );
        assert_eq!(
            mask_secrets_in("failed: postgres://u:p%40ss@db/x and rediss://:tok@r:6380 end"),
            "failed: postgres://u:***@db/x and rediss://:***@r:6380 end"
        );
        assert_eq!(
            mask_secrets_in("nats://127.0.0.1:4222 sqlite://./data/x.db"),
            "nats://127.0.0.1:4222 sqlite://./data/x.db"
        );
        assert_eq!(
            mask_secrets_in("postgres://user@db/x"),
            "postgres://user@db/x"
        );
    }

    #[test]
    fn placeholders_are_recognised() {
        assert!(is_placeholder("amqps://bazaar:REPLACE-ME@host/x"));
        assert!(is_placeholder("replace-me"));
        assert!(!is_placeholder("a-real-secret"));
    }

    fn load() -> Result<crate::Config, ConfigError> {
        crate::Config::load_from(None, figment::providers::Env::prefixed("BAZAAR_"))
    }

    #[cfg(unix)]
    fn chmod(jail: &figment::Jail, name: &str, mode: u32) {
        use std::os::unix::fs::PermissionsExt as _;
        let path = jail.directory().join(name);
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
    }

    #[test]
    fn every_secret_is_read_from_its_file() {
        figment::Jail::expect_with(|jail| {
            jail.create_file("broker", "amqp://bazaar:from-file@rabbit/%2f\n")?;
            jail.create_file("db", "postgres://u:pw@db/orders")?;
            jail.create_file("client", "s3cret-from-a-file")?;
            jail.create_file("smtp", "smtp-password\r\n")?;
            #[cfg(unix)]
            for f in ["broker", "db", "client", "smtp"] {
                chmod(jail, f, 0o600);
            }
            jail.set_env("BAZAAR_BROKER_URL_FILE", "broker");
            jail.set_env("BAZAAR_ORDERS_DATABASE_URL_FILE", "db");
            jail.set_env("BAZAAR_CATALOG_CLIENT_SECRET_FILE", "client");
            jail.set_env("BAZAAR_NOTIFICATIONS_EMAIL_HOST_PASSWORD_FILE", "smtp");
            let c = load().map_err(|e| e.0)?;
            assert_eq!(c.broker_url.expose(), "amqp://bazaar:from-file@rabbit/%2f");
            assert_eq!(
                c.database_url(ServiceName::Orders),
                "postgres://u:pw@db/orders"
            );
            assert_eq!(
                c.client_secret(ServiceName::Catalog)
                    .map(|s| s.expose().as_str()),
                Some("s3cret-from-a-file")
            );
            let values = c.secret_values();
            assert!(values.contains(&(
                "notifications.email_host_password".into(),
                "smtp-password".into()
            )));
            assert!(c.warnings().is_empty(), "{:?}", c.warnings());
            Ok(())
        });
    }

    #[test]
    fn variable_and_file_together_are_refused() {
        figment::Jail::expect_with(|jail| {
            jail.create_file("redis", "redis://:x@r")?;
            jail.set_env("BAZAAR_REDIS_URL", "redis://r");
            jail.set_env("BAZAAR_REDIS_URL_FILE", "redis");
            let err = load().expect_err("both set");
            assert!(err.0.contains("both set"), "{}", err.0);
            Ok(())
        });
        figment::Jail::expect_with(|jail| {
            jail.set_env("BAZAAR_REDIS_URL_FILE", "missing-file");
            let err = load().expect_err("missing");
            assert!(err.0.contains("BAZAAR_REDIS_URL_FILE"), "{}", err.0);
            Ok(())
        });
    }

    #[cfg(unix)]
    #[test]
    fn world_readable_secret_file_is_a_warning() {
        figment::Jail::expect_with(|jail| {
            jail.create_file("redis", "redis://:x@r")?;
            chmod(jail, "redis", 0o644);
            jail.set_env("BAZAAR_REDIS_URL_FILE", "redis");
            let c = load().map_err(|e| e.0)?;
            assert_eq!(c.warnings().len(), 1);
            assert!(c.warnings()[0].contains("readable by every user"));
            assert!(!c.warnings()[0].contains("redis://"), "never the secret");
            Ok(())
        });
    }

    #[test]
    fn placeholders_are_problems() {
        figment::Jail::expect_with(|jail| {
            jail.set_env("BAZAAR_IDENTITY_CLIENT_SECRET", "REPLACE-ME");
            jail.set_env("BAZAAR_BROKER_URL", "amqps://bazaar:REPLACE-ME@rabbit/x");
            let c = load().map_err(|e| e.0)?;
            let problems = c.validate();
            assert!(
                problems
                    .iter()
                    .any(|p| p.starts_with("identity.client_secret:")
                        && p.contains("BAZAAR_IDENTITY_CLIENT_SECRET_FILE")),
                "{problems:?}"
            );
            assert!(
                problems.iter().any(|p| p.starts_with("broker_url:")),
                "{problems:?}"
            );
            Ok(())
        });
    }
}
