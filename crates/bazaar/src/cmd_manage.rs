//! Django's management commands, by Django's names: `showmigrations`,
//! `migrate --plan`, `changepassword`, `sendtestemail`, plus `healthcheck`
//! (for images without a shell) and `check --deploy`. Read-only commands
//! open databases with [`Db::open_existing`]: they never create or migrate.

use std::io::{BufRead, IsTerminal, Write};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use bazaar_kit::db::MigrationState;
use bazaar_kit::{Config, Db, ServiceName};

use crate::platform::migrations;

/// The services whose databases a command looks at: one, or all.
pub fn services(only: Option<&str>) -> anyhow::Result<Vec<ServiceName>> {
    let names = match only {
        Some(name) => vec![ServiceName::parse(name).with_context(|| {
            format!("unknown service {name:?}; expected one of identity, catalog, orders, payments, notifications")
        })?],
        None => ServiceName::ALL.to_vec(),
    };
    Ok(names.into_iter().filter(|n| n.has_database()).collect())
}

/// Each migration of `name` and whether its database has it; `None` when
/// the database does not exist yet. Reads only.
pub async fn status(
    config: &Config,
    name: ServiceName,
) -> anyhow::Result<Option<Vec<MigrationState>>> {
    let Some(migrations) = migrations(name) else {
        return Ok(None);
    };
    let url = config.database_url(name);
    let Some(db) = Db::open_existing(&url)
        .await
        .with_context(|| format!("{name}: opening its database"))?
    else {
        return Ok(None);
    };
    let states = db.migration_status(migrations).await;
    db.close().await;
    Ok(Some(states?))
}

fn all_pending(config: &Config, name: ServiceName) -> Vec<MigrationState> {
    migrations(name).map_or_else(Vec::new, |m| {
        bazaar_kit::db::all_pending(&config.database_url(name), m)
    })
}

/// `bazaar showmigrations [SERVICE]`: `[X]` applied, `[ ]` pending.
pub async fn showmigrations(config: &Config, only: Option<&str>) -> anyhow::Result<ExitCode> {
    for name in services(only)? {
        println!("{name}");
        let states = match status(config, name).await? {
            Some(s) => s,
            None => {
                println!(" (database does not exist yet)");
                all_pending(config, name)
            }
        };
        for m in states {
            let mark = if m.applied { "X" } else { " " };
            println!(" [{mark}] {}.{:04} {}", m.set, m.version, m.description);
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `bazaar migrate --plan`: what `migrate` would apply, touching nothing.
pub async fn migrate_plan(config: &Config, only: Option<&str>) -> anyhow::Result<ExitCode> {
    println!("Planned operations:");
    let mut planned = 0;
    for name in services(only)? {
        let (states, create) = match status(config, name).await? {
            Some(s) => (s, false),
            None => (all_pending(config, name), true),
        };
        if create {
            println!(
                "{name}:\n    Create database {}",
                bazaar_kit::config::redact_url(&config.database_url(name))
            );
        }
        let pending: Vec<_> = states.into_iter().filter(|m| !m.applied).collect();
        if !pending.is_empty() && !create {
            println!("{name}:");
        }
        for m in &pending {
            println!("    Apply {}.{:04} {}", m.set, m.version, m.description);
        }
        planned += pending.len();
    }
    if planned == 0 {
        println!("  No planned migration operations.");
    }
    Ok(ExitCode::SUCCESS)
}

fn read_line(prompt: &str) -> anyhow::Result<String> {
    print!("{prompt}");
    std::io::stdout().flush()?;
    let mut line = String::new();
    if std::io::stdin().lock().read_line(&mut line)? == 0 {
        anyhow::bail!("input ended; password not changed");
    }
    Ok(line.trim_end_matches(['\r', '\n']).to_string())
}

fn read_password(prompt: &str) -> anyhow::Result<String> {
    if std::io::stdin().is_terminal() {
        rpassword::prompt_password(prompt).context("reading the password")
    } else {
        read_line(prompt)
    }
}

/// `bazaar changepassword USERNAME`, as Django's: the new password twice,
/// validated, three attempts. Works on identity's existing database.
pub async fn changepassword(config: &Config, username: &str) -> anyhow::Result<ExitCode> {
    let db = bazaar_identity::accounts::admin::open_existing(config).await?;
    let result = change(&db, username).await;
    db.close().await;
    result
}

async fn change(db: &Db, username: &str) -> anyhow::Result<ExitCode> {
    let Some(user) = bazaar_identity::accounts::admin::find_user(db, username).await? else {
        eprintln!("Error: user '{username}' does not exist");
        return Ok(ExitCode::FAILURE);
    };
    println!("Changing password for user '{}'", user.username);
    for _ in 0..3 {
        let first = read_password("Password: ")?;
        let second = read_password("Password (again): ")?;
        if first != second {
            eprintln!("Passwords do not match. Please try again.");
            continue;
        }
        let problems =
            bazaar_identity::accounts::password_errors(&first, &user.username, &user.email);
        if !problems.is_empty() {
            eprintln!("{}", problems.join("\n"));
            continue;
        }
        bazaar_identity::accounts::admin::change_password(db, &user, first).await?;
        println!("Password changed successfully for user '{}'", user.username);
        return Ok(ExitCode::SUCCESS);
    }
    eprintln!(
        "Error: Aborting password change for user '{}' after 3 attempts",
        user.username
    );
    Ok(ExitCode::FAILURE)
}

/// `bazaar sendtestemail ADDRESS...`: one email to each address through
/// the configured backend (Django's command, for checking SMTP settings).
pub async fn sendtestemail(config: &Config, to: &[String]) -> anyhow::Result<ExitCode> {
    use bazaar_notifications::email::{self, OutgoingEmail};
    let settings: bazaar_notifications::NotificationsSettings = config
        .section(ServiceName::Notifications)
        .map_err(|e| anyhow::anyhow!("notifications settings: {e}"))?;
    settings.validate().map_err(anyhow::Error::msg)?;
    let backend = email::from_settings(&settings, &config.data_dir)?;
    let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "this machine".into());
    let mut failed = false;
    for address in to {
        let message = OutgoingEmail {
            id: uuid::Uuid::now_v7().to_string(),
            from: settings.from_email.clone(),
            to: address.clone(),
            subject: format!(
                "Test email from {host} on {}",
                bazaar_kit::clock::now_rfc3339()
            ),
            text: "If you're reading this, it was successful.".into(),
            html: "<p>If you're reading this, it was successful.</p>".into(),
        };
        match backend.send(&message).await {
            Ok(()) => println!("Sent a test email to {address}"),
            Err(e) => {
                eprintln!(
                    "Error: sending to {address}: {}",
                    bazaar_kit::secrets::mask_secrets_in(&e.message)
                );
                failed = true;
            }
        }
    }
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// `bazaar healthcheck [SERVICE] [--url URL]`: exit 0 when `/healthz`
/// answers 200 within the timeout, else 1 (the image has no shell or curl).
pub async fn healthcheck(
    config: &Config,
    service: Option<&str>,
    url: Option<String>,
    timeout: Duration,
) -> anyhow::Result<ExitCode> {
    let base = match url {
        Some(u) => u,
        None => {
            let name = match service {
                Some(s) => {
                    ServiceName::parse(s).with_context(|| format!("unknown service {s:?}"))?
                }
                None => container_service(),
            };
            let mut addr = config.listen(name);
            // A wildcard listener is reached on loopback.
            if addr.ip().is_unspecified() {
                addr.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
            }
            format!("http://{addr}")
        }
    };
    let target = format!("{}/healthz", base.trim_end_matches('/'));
    let client = reqwest::Client::builder().timeout(timeout).build()?;
    match client.get(&target).send().await {
        Ok(r) if r.status().is_success() => {
            println!("{target}: {}", r.status());
            Ok(ExitCode::SUCCESS)
        }
        Ok(r) => {
            eprintln!("{target}: {}", r.status());
            Ok(ExitCode::FAILURE)
        }
        Err(e) => {
            eprintln!("{target}: {e}");
            Ok(ExitCode::FAILURE)
        }
    }
}

/// The service a container serves, for a bare `bazaar healthcheck` (the
/// image's HEALTHCHECK): the one service other than the gateway whose
/// `BAZAAR_<SERVICE>_LISTEN` is set (Compose and Kubernetes set it), else
/// the gateway (the image sets its listener for `bazaar up`).
fn container_service() -> ServiceName {
    let set: Vec<ServiceName> = ServiceName::ALL
        .into_iter()
        .filter(|n| *n != ServiceName::Gateway)
        .filter(|n| {
            std::env::var_os(format!("BAZAAR_{}_LISTEN", n.as_str().to_uppercase())).is_some()
        })
        .collect();
    match set.as_slice() {
        [one] => *one,
        _ => ServiceName::Gateway,
    }
}

/// `bazaar check [--deploy]`: every problem, or the configuration with
/// every secret masked.
pub fn check(config: &Config, deploy: bool) -> ExitCode {
    for w in config.warnings() {
        eprintln!("warning: {w}");
    }
    let problems = if deploy {
        bazaar_kit::deploy_check::deploy_problems(config, |v| std::env::var(v).ok())
    } else {
        config.validate()
    };
    if !problems.is_empty() {
        eprintln!("configuration has {} problem(s):", problems.len());
        for p in problems {
            eprintln!("  - {}", bazaar_kit::secrets::mask_secrets_in(&p));
        }
        return ExitCode::FAILURE;
    }
    println!(
        "configuration OK{}",
        if deploy {
            " (deploy checks passed)"
        } else {
            ""
        }
    );
    for name in ServiceName::ALL {
        let db = if name.has_database() {
            bazaar_kit::config::redact_url(&config.database_url(name))
        } else {
            "-".into()
        };
        println!(
            "  {:<14} listen {:<21} db {db}",
            name.as_str(),
            config.listen(name).to_string()
        );
    }
    println!(
        "  broker         {}",
        bazaar_kit::config::redact_url(config.broker_url.expose())
    );
    if let Some(redis) = &config.redis_url {
        println!(
            "  redis          {}",
            bazaar_kit::config::redact_url(redis.expose())
        );
    }
    println!(
        "  migrate_on_start {}",
        if config.migrate_on_start { "on" } else { "off" }
    );
    ExitCode::SUCCESS
}
