//! The `bazaar` binary as an operator runs it: secrets never printed,
//! placeholders and unsafe production settings refused, `<VAR>_FILE`
//! secrets, read-only commands that touch nothing, and the management
//! commands (showmigrations, migrate --plan, changepassword,
//! sendtestemail, healthcheck, completions).

use std::io::Write as _;
use std::path::Path;
use std::process::{Command, Output, Stdio};

/// Runs `bazaar ARGS` in `dir` with only `env` (no inherited `BAZAAR_*`).
fn bazaar(dir: &Path, args: &[&str], env: &[(&str, &str)], stdin: Option<&str>) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_bazaar"));
    cmd.current_dir(dir)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("BAZAAR_DATA_DIR", dir.join("data"))
        .env("BAZAAR_DB_CONNECT_TIMEOUT_SECS", "2")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("spawn bazaar");
    if let Some(input) = stdin {
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(input.as_bytes())
            .expect("write stdin");
    }
    drop(child.stdin.take());
    child.wait_with_output().expect("bazaar output")
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn private_file(path: &Path, contents: &str) {
    std::fs::write(path, contents).expect("write secret");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    }
}

#[test]
fn check_masks_every_password() {
    let dir = tempfile::tempdir().expect("dir");
    let o = bazaar(
        dir.path(),
        &["check"],
        &[
            (
                "BAZAAR_BROKER_URL",
                "amqp://bazaar:hunter2-broker@mq:5672/%2f",
            ),
            (
                "BAZAAR_DATABASE_URL",
                "postgres://shop:hunter2-db@db:5432/shop",
            ),
            ("BAZAAR_REDIS_URL", "redis://:hunter2-redis@cache:6379"),
        ],
        None,
    );
    let out = text(&o);
    assert!(o.status.success(), "{out}");
    assert!(out.contains("amqp://bazaar:***@mq:5672"), "{out}");
    assert!(
        out.contains("postgres://shop:***@db:5432/shop_orders"),
        "{out}"
    );
    assert!(!out.contains("hunter2"), "a secret was printed:\n{out}");

    // A broken setting's message does not quote its password either.
    let o = bazaar(
        dir.path(),
        &["check"],
        &[("BAZAAR_BROKER_URL", "kafka://bazaar:hunter2-broker@mq:9092")],
        None,
    );
    let out = text(&o);
    assert!(!o.status.success());
    assert!(out.contains("broker_url"), "{out}");
    assert!(!out.contains("hunter2"), "a secret was printed:\n{out}");
}

#[test]
fn check_refuses_placeholders() {
    let dir = tempfile::tempdir().expect("dir");
    let o = bazaar(
        dir.path(),
        &["check"],
        &[
            ("BAZAAR_IDENTITY_CLIENT_SECRET", "REPLACE-ME"),
            ("BAZAAR_BROKER_URL", "amqps://bazaar:REPLACE-ME@mq/bazaar"),
        ],
        None,
    );
    let out = text(&o);
    assert!(!o.status.success(), "{out}");
    assert!(out.contains("identity.client_secret: still holds"), "{out}");
    assert!(out.contains("BAZAAR_IDENTITY_CLIENT_SECRET_FILE"), "{out}");
    assert!(out.contains("broker_url: still holds"), "{out}");
    // Every other command refuses to start on them too.
    let o = bazaar(
        dir.path(),
        &["showmigrations"],
        &[("BAZAAR_IDENTITY_CLIENT_SECRET", "REPLACE-ME")],
        None,
    );
    assert!(!o.status.success());
}

#[test]
fn secrets_come_from_files() {
    let dir = tempfile::tempdir().expect("dir");
    let broker = dir.path().join("broker-url");
    private_file(&broker, "amqp://bazaar:from-a-file-pw@mq:5672/%2f\n");
    let o = bazaar(
        dir.path(),
        &["check"],
        &[("BAZAAR_BROKER_URL_FILE", broker.to_str().expect("path"))],
        None,
    );
    let out = text(&o);
    assert!(o.status.success(), "{out}");
    assert!(out.contains("amqp://bazaar:***@mq:5672"), "{out}");
    assert!(!out.contains("from-a-file-pw"), "{out}");
    assert!(!out.contains("warning"), "{out}");

    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&broker, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        let o = bazaar(
            dir.path(),
            &["check"],
            &[("BAZAAR_BROKER_URL_FILE", broker.to_str().expect("path"))],
            None,
        );
        let out = text(&o);
        assert!(o.status.success(), "a warning, not a refusal: {out}");
        assert!(out.contains("warning: BAZAAR_BROKER_URL_FILE"), "{out}");
    }
}

#[test]
fn check_deploy_refuses_laptop_settings_and_passes_production_ones() {
    let dir = tempfile::tempdir().expect("dir");
    let o = bazaar(dir.path(), &["check", "--deploy"], &[], None);
    let out = text(&o);
    assert!(!o.status.success(), "{out}");
    for expected in [
        "catalog.database_url: SQLite",
        "broker_url: the embedded bus",
        "orders.client_secret: unset",
        "gateway.trusted_proxies: unset",
    ] {
        assert!(out.contains(expected), "missing {expected:?} in:\n{out}");
    }
    // The plain check accepts the same laptop settings.
    assert!(bazaar(dir.path(), &["check"], &[], None).status.success());

    let secret = "0123456789abcdef0123456789abcdef";
    let mut env = vec![
        (
            "BAZAAR_DATABASE_URL",
            "postgres://shop:a-long-db-password@db:5432/shop",
        ),
        (
            "BAZAAR_BROKER_URL",
            "amqps://bazaar:a-long-broker-password@mq/bazaar",
        ),
        ("BAZAAR_GATEWAY_TRUSTED_PROXIES", "10.0.0.0/8"),
    ];
    let vars: Vec<String> = [
        "GATEWAY",
        "IDENTITY",
        "CATALOG",
        "ORDERS",
        "PAYMENTS",
        "NOTIFICATIONS",
    ]
    .iter()
    .map(|s| format!("BAZAAR_{s}_CLIENT_SECRET"))
    .collect();
    for v in &vars {
        env.push((v.as_str(), secret));
    }
    let o = bazaar(dir.path(), &["check", "--deploy"], &env, None);
    let out = text(&o);
    assert!(o.status.success(), "{out}");
    assert!(!out.contains(secret) && !out.contains("a-long-"), "{out}");

    env.retain(|(k, _)| *k != "BAZAAR_ORDERS_CLIENT_SECRET");
    env.push(("BAZAAR_ORDERS_CLIENT_SECRET", "short"));
    let o = bazaar(dir.path(), &["check", "--deploy"], &env, None);
    let out = text(&o);
    assert!(!o.status.success());
    assert!(
        out.contains("orders.client_secret: 5 characters is too short"),
        "{out}"
    );
}

#[test]
fn read_only_commands_create_nothing() {
    let dir = tempfile::tempdir().expect("dir");
    for args in [
        &["events", "dead-letters"][..],
        &["showmigrations"],
        &["migrate", "--plan"],
        &["changepassword", "nobody"],
    ] {
        let o = bazaar(dir.path(), args, &[], Some(""));
        let _ = text(&o);
        assert!(
            !dir.path().join("data").exists(),
            "`bazaar {}` created {}",
            args.join(" "),
            dir.path().join("data").display()
        );
    }
    let o = bazaar(dir.path(), &["migrate", "--plan"], &[], None);
    let out = text(&o);
    assert!(o.status.success(), "{out}");
    assert!(out.contains("Create database sqlite://"), "{out}");
    assert!(out.contains("Apply kit.0001"), "{out}");

    // After `migrate`, everything shows as applied and nothing is planned.
    let o = bazaar(dir.path(), &["migrate"], &[], None);
    assert!(o.status.success(), "{}", text(&o));
    let o = bazaar(dir.path(), &["showmigrations", "catalog"], &[], None);
    let out = text(&o);
    assert!(o.status.success(), "{out}");
    assert!(out.starts_with("catalog\n [X] kit."), "{out}");
    assert!(!out.contains("[ ]"), "{out}");
    let o = bazaar(dir.path(), &["migrate", "--plan"], &[], None);
    assert!(
        text(&o).contains("No planned migration operations."),
        "{}",
        text(&o)
    );
    let o = bazaar(dir.path(), &["events", "dead-letters"], &[], None);
    assert!(text(&o).contains("0 dead letter(s)"), "{}", text(&o));
}

#[test]
fn read_only_commands_create_no_postgres_database() {
    let reachable = std::net::TcpStream::connect("127.0.0.1:5432").is_ok();
    if !reachable {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "PostgreSQL is required under CI=true"
        );
        eprintln!("SKIPPED: PostgreSQL not reachable on 127.0.0.1:5432");
        return;
    }
    let dir = tempfile::tempdir().expect("dir");
    let stem = format!("bzt_{}", uuid::Uuid::now_v7().simple());
    let url = format!("postgres://postgres@127.0.0.1:5432/{stem}");
    let env = [("BAZAAR_DATABASE_URL", url.as_str())];
    for args in [
        &["events", "dead-letters"][..],
        &["showmigrations"],
        &["migrate", "--plan"],
    ] {
        let o = bazaar(dir.path(), args, &env, None);
        assert!(o.status.success(), "{}: {}", args.join(" "), text(&o));
    }
    let rt = tokio::runtime::Runtime::new().expect("rt");
    let count: i64 = rt.block_on(async {
        let pool = sqlx::PgPool::connect("postgres://postgres@127.0.0.1:5432/postgres")
            .await
            .expect("pg");
        let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM pg_database WHERE datname LIKE $1")
            .bind(format!("{stem}%"))
            .fetch_one(&pool)
            .await
            .expect("count");
        n
    });
    assert_eq!(count, 0, "a read-only command created a database");
}

#[test]
fn changepassword_as_django() {
    let dir = tempfile::tempdir().expect("dir");
    // The password from a file (BAZAAR_SUPERUSER_PASSWORD_FILE).
    let file = dir.path().join("superuser-password");
    private_file(&file, "First-Passw0rd-long\n");
    let env = [(
        "BAZAAR_SUPERUSER_PASSWORD_FILE",
        file.to_str().expect("path"),
    )];
    let o = bazaar(
        dir.path(),
        &[
            "createsuperuser",
            "--noinput",
            "--username",
            "root",
            "--email",
            "root@example.com",
        ],
        &env,
        None,
    );
    assert!(o.status.success(), "{}", text(&o));

    let o = bazaar(dir.path(), &["changepassword", "nobody"], &[], Some(""));
    assert!(!o.status.success());
    assert!(
        text(&o).contains("user 'nobody' does not exist"),
        "{}",
        text(&o)
    );

    // Three mismatches (or invalid passwords) abort, as Django does.
    let o = bazaar(
        dir.path(),
        &["changepassword", "root"],
        &[],
        Some("Aa-1-long-pass\nBb-2-long-pass\n12345678\n12345678\nx\ny\n"),
    );
    let out = text(&o);
    assert!(!o.status.success(), "{out}");
    assert!(out.contains("Passwords do not match"), "{out}");
    assert!(out.contains("after 3 attempts"), "{out}");

    let o = bazaar(
        dir.path(),
        &["changepassword", "ROOT"],
        &[],
        Some("Second-Passw0rd-long\nSecond-Passw0rd-long\n"),
    );
    let out = text(&o);
    assert!(o.status.success(), "{out}");
    assert!(
        out.contains("Password changed successfully for user 'root'"),
        "{out}"
    );

    let rt = tokio::runtime::Runtime::new().expect("rt");
    rt.block_on(async {
        let mut config = bazaar_kit::Config::default();
        config.data_dir = dir.path().join("data");
        let db = bazaar_identity::accounts::admin::open_existing(&config)
            .await
            .expect("db");
        let user = bazaar_identity::accounts::admin::find_user(&db, "root")
            .await
            .expect("query")
            .expect("root");
        let phc = Some(user.password_hash.clone());
        assert!(
            bazaar_identity::accounts::verify("Second-Passw0rd-long".into(), phc.clone())
                .await
                .expect("verify")
        );
        assert!(
            !bazaar_identity::accounts::verify("First-Passw0rd-long".into(), phc)
                .await
                .expect("verify")
        );
        db.close().await;
    });
}

#[test]
fn sendtestemail_uses_the_configured_backend() {
    let dir = tempfile::tempdir().expect("dir");
    let outbox = dir.path().join("outbox");
    let o = bazaar(
        dir.path(),
        &["sendtestemail", "ops@example.com", "dev@example.com"],
        &[
            ("BAZAAR_NOTIFICATIONS_EMAIL_BACKEND", "file"),
            (
                "BAZAAR_NOTIFICATIONS_EMAIL_FILE_PATH",
                outbox.to_str().expect("path"),
            ),
        ],
        None,
    );
    let out = text(&o);
    assert!(o.status.success(), "{out}");
    assert!(
        out.contains("Sent a test email to ops@example.com"),
        "{out}"
    );
    let files: Vec<String> = std::fs::read_dir(&outbox)
        .expect("outbox")
        .map(|e| std::fs::read_to_string(e.expect("entry").path()).unwrap_or_default())
        .collect();
    assert_eq!(files.len(), 2, "{files:?}");
    assert!(
        files.iter().any(|f| f.contains("To: ops@example.com")),
        "{files:?}"
    );
    assert!(
        !dir.path().join("data").exists(),
        "no database for a test email"
    );
}

#[test]
fn healthcheck_exits_by_the_answer() {
    let dir = tempfile::tempdir().expect("dir");
    let rt = tokio::runtime::Runtime::new().expect("rt");
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let app = axum::Router::new()
        .route("/healthz", axum::routing::get(|| async { "ok" }))
        .route(
            "/down/healthz",
            axum::routing::get(|| async { axum::http::StatusCode::SERVICE_UNAVAILABLE }),
        );
    rt.spawn(async move { axum::serve(listener, app).await });
    let url = format!("http://{addr}");
    let o = bazaar(dir.path(), &["healthcheck", "--url", &url], &[], None);
    assert!(o.status.success(), "{}", text(&o));
    // A wildcard listen address is asked on loopback.
    let listen = format!("0.0.0.0:{}", addr.port());
    let o = bazaar(
        dir.path(),
        &["healthcheck", "catalog"],
        &[("BAZAAR_CATALOG_LISTEN", listen.as_str())],
        None,
    );
    assert!(o.status.success(), "{}", text(&o));
    // Bare, as the image's HEALTHCHECK runs it: the service whose listener is set.
    let o = bazaar(
        dir.path(),
        &["healthcheck"],
        &[
            ("BAZAAR_GATEWAY_LISTEN", "127.0.0.1:1"),
            ("BAZAAR_ORDERS_LISTEN", listen.as_str()),
        ],
        None,
    );
    assert!(o.status.success(), "{}", text(&o));
    let down = format!("{url}/down");
    let o = bazaar(dir.path(), &["healthcheck", "--url", &down], &[], None);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    drop(rt);
    let o = bazaar(
        dir.path(),
        &["healthcheck", "--url", &url, "--timeout", "1"],
        &[],
        None,
    );
    assert_eq!(o.status.code(), Some(1), "nothing listens: {}", text(&o));
}

#[test]
fn completions_for_each_shell() {
    let dir = tempfile::tempdir().expect("dir");
    for shell in ["bash", "zsh", "fish"] {
        let o = bazaar(dir.path(), &["completions", shell], &[], None);
        let out = String::from_utf8_lossy(&o.stdout).to_string();
        assert!(o.status.success(), "{shell}: {}", text(&o));
        for word in ["showmigrations", "changepassword", "healthcheck"] {
            assert!(out.contains(word), "{shell} completions lack {word}");
        }
    }
}

#[tokio::test]
async fn services_wait_for_the_migration_job_when_migrate_on_start_is_off() {
    let dir = tempfile::tempdir().expect("dir");
    let mut config = bazaar_kit::Config::default();
    config.data_dir = dir.path().join("data");
    config.migrate_on_start = false;
    config.db_connect_timeout_secs = 1;
    config.catalog.listen = Some("127.0.0.1:0".parse().expect("addr"));
    let err = match bazaar::start(config.clone(), &[bazaar_kit::ServiceName::Catalog]).await {
        Ok(_) => panic!("started without a schema"),
        Err(e) => format!("{e:#}"),
    };
    assert!(err.contains("bazaar migrate"), "{err}");
    assert!(
        !dir.path().join("data/catalog.db").exists(),
        "the service created its database"
    );
    bazaar::migrate(&config, bazaar_kit::ServiceName::Catalog)
        .await
        .expect("migrate");
    let running = bazaar::start(config, &[bazaar_kit::ServiceName::Catalog])
        .await
        .expect("starts once migrated");
    running.stop().await.expect("stop");
}

#[test]
fn errors_never_quote_a_password() {
    let dir = tempfile::tempdir().expect("dir");
    // Nothing listens on port 1: the connection error is reported, masked.
    let o = bazaar(
        dir.path(),
        &["migrate", "catalog"],
        &[(
            "BAZAAR_DATABASE_URL",
            "postgres://shop:hunter2-db@127.0.0.1:1/shop",
        )],
        None,
    );
    let out = text(&o);
    assert!(!o.status.success(), "{out}");
    assert!(out.contains("postgres://shop:***@127.0.0.1:1"), "{out}");
    assert!(!out.contains("hunter2"), "a secret was printed:\n{out}");
    // A value of the wrong shape: the loader's message masks it too.
    let o = bazaar(
        dir.path(),
        &["check"],
        &[("BAZAAR_REDIS_URL", "http://u:hunter2-redis@cache")],
        None,
    );
    let out = text(&o);
    assert!(!o.status.success(), "{out}");
    assert!(!out.contains("hunter2"), "a secret was printed:\n{out}");
}

#[test]
fn up_banner_masks_the_broker_password() {
    if std::net::TcpStream::connect("127.0.0.1:5672").is_err() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "RabbitMQ is required under CI=true"
        );
        eprintln!("SKIPPED: RabbitMQ not reachable on 127.0.0.1:5672");
        return;
    }
    use std::io::BufRead as _;
    let dir = tempfile::tempdir().expect("dir");
    let namespace = format!("bzt{}", uuid::Uuid::now_v7().simple());
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_bazaar"));
    cmd.current_dir(dir.path())
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("BAZAAR_DATA_DIR", dir.path().join("data"))
        .env("BAZAAR_BROKER_URL", "amqp://guest:guest@127.0.0.1:5672/%2f")
        .env("BAZAAR_BROKER_NAMESPACE", &namespace)
        .env("BAZAAR_LOG_LEVEL", "warn")
        .arg("up")
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    for service in [
        "GATEWAY",
        "IDENTITY",
        "CATALOG",
        "ORDERS",
        "PAYMENTS",
        "NOTIFICATIONS",
    ] {
        cmd.env(format!("BAZAAR_{service}_LISTEN"), "127.0.0.1:0");
    }
    let mut child = cmd.spawn().expect("bazaar up");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut banner = String::new();
        for line in std::io::BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            banner.push_str(&line);
            banner.push('\n');
            if line.contains("Ctrl-C stops everything") {
                break;
            }
        }
        let _ = tx.send(banner);
    });
    let banner = rx.recv_timeout(std::time::Duration::from_secs(90));
    let _ = child.kill();
    let _ = child.wait();
    let banner = banner.expect("the banner within 90 s");
    assert!(
        banner.contains("amqp://guest:***@127.0.0.1:5672"),
        "{banner}"
    );
    assert!(
        !banner.contains("guest:guest"),
        "a secret was printed:\n{banner}"
    );
}
