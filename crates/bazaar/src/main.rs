//! `bazaar`: the platform's one binary.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use bazaar::platform;

mod cmd_createsuperuser;
mod cmd_keys;
mod cmd_manage;
use bazaar_kit::config::LogFormat;
use bazaar_kit::{Config, ServiceName};
use clap::{CommandFactory, Parser, Subcommand, ValueEnum};

/// mimalloc: request handling allocates many small, short-lived buffers,
/// which it serves faster than the system allocator under concurrency.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Bazaar: an e-commerce platform as microservices, in one binary.
#[derive(Parser, Debug)]
#[command(name = "bazaar", version, about)]
struct Cli {
    /// TOML configuration file (optional; `BAZAAR_*` env vars override it).
    #[arg(long, global = true, env = "BAZAAR_CONFIG")]
    config: Option<PathBuf>,
    /// Log format: json (default) or pretty.
    #[arg(long, global = true, value_enum)]
    log_format: Option<LogFormatArg>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum LogFormatArg {
    Json,
    Pretty,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the whole platform in this process (embedded defaults).
    Up,
    /// Run one service alone (for containers and scaling out).
    Serve {
        /// gateway, identity, catalog, orders, payments or notifications.
        service: String,
    },
    /// Apply database migrations (all services, or one).
    Migrate {
        /// Only this service.
        service: Option<String>,
        /// Show what would be applied, and change nothing.
        #[arg(long)]
        plan: bool,
    },
    /// List each service's migrations: [X] applied, [ ] pending (reads only).
    Showmigrations {
        /// Only this service.
        service: Option<String>,
    },
    /// Validate the configuration and say exactly what is wrong (secrets masked).
    Check {
        /// Also refuse settings unsafe in production (placeholder or short
        /// secrets, SQLite or the embedded bus under `serve`, ...).
        #[arg(long)]
        deploy: bool,
    },
    /// Change a user's password (prompts twice, as Django's).
    Changepassword {
        /// The user's username.
        username: String,
    },
    /// Send a test email to each address through the configured backend.
    Sendtestemail {
        /// Recipients.
        #[arg(required = true)]
        addresses: Vec<String>,
    },
    /// Exit 0 when the local /healthz answers 200, else 1 (for images without a shell).
    Healthcheck {
        /// The service whose listener to ask (default: gateway).
        service: Option<String>,
        /// Ask this base URL instead.
        #[arg(long)]
        url: Option<String>,
        /// Seconds to wait for the answer.
        #[arg(long, default_value_t = 3)]
        timeout: u64,
    },
    /// Print a shell completion script (bash, zsh, fish, ...).
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Create a staff superuser (prompts, or --noinput with BAZAAR_SUPERUSER_PASSWORD).
    Createsuperuser(cmd_createsuperuser::Args),
    /// Manage identity's token signing keys (`keys rotate`).
    Keys(cmd_keys::Args),
    /// Replay shopper journeys against a platform and report its performance.
    Bench(bazaar::bench::Args),
    /// Inspect and replay dead-lettered events.
    Events {
        #[command(subcommand)]
        command: bazaar::cmd_events::EventsCommand,
    },
    /// Seed the demo catalog: grow it to at least N products.
    Seed {
        /// Products the catalog should hold.
        #[arg(long, default_value_t = 1000)]
        products: u64,
    },
}

fn parse_service(name: &str) -> anyhow::Result<ServiceName> {
    ServiceName::parse(name).with_context(|| {
        format!("unknown service {name:?}; expected one of gateway, identity, catalog, orders, payments, notifications")
    })
}

fn load_config(cli: &Cli) -> anyhow::Result<Config> {
    let default_file = PathBuf::from("bazaar.toml");
    let file = cli
        .config
        .clone()
        .or_else(|| default_file.exists().then_some(default_file));
    let mut config = Config::load(file.as_deref())
        .map_err(|e| anyhow::anyhow!("invalid configuration:\n{e}"))?;
    if let Some(format) = cli.log_format {
        config.log_format = match format {
            LogFormatArg::Json => LogFormat::Json,
            LogFormatArg::Pretty => LogFormat::Pretty,
        };
    }
    Ok(config)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(run(cli));
    // Spans still buffered go out before the exit (the runtime still runs
    // the gRPC exporter's connection); a no-op with tracing off.
    bazaar_kit::telemetry::otel::flush();
    match result {
        Ok(code) => code,
        Err(e) => {
            // Whatever the error quotes (a connection string), no password.
            eprintln!(
                "error: {}",
                bazaar_kit::secrets::mask_secrets_in(&format!("{e:#}"))
            );
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    if let Command::Completions { shell } = cli.command {
        clap_complete::generate(shell, &mut Cli::command(), "bazaar", &mut std::io::stdout());
        return Ok(ExitCode::SUCCESS);
    }
    let config = load_config(&cli)?;
    if let Command::Check { deploy } = cli.command {
        return Ok(cmd_manage::check(&config, deploy));
    }
    let problems = config.validate();
    if !problems.is_empty() {
        anyhow::bail!(
            "invalid configuration:\n  {}",
            bazaar_kit::secrets::mask_secrets_in(&problems.join("\n  "))
        );
    }
    if let Command::Healthcheck {
        service,
        url,
        timeout,
    } = &cli.command
    {
        let timeout = std::time::Duration::from_secs(*timeout);
        return cmd_manage::healthcheck(&config, service.as_deref(), url.clone(), timeout).await;
    }
    bazaar_kit::telemetry::init(config.log_format, &config.log_level);
    for w in config.warnings() {
        tracing::warn!("{w}");
    }
    match cli.command {
        Command::Up => {
            bazaar::cmd_seed::demo_if_empty(&config).await?;
            let running = platform::start(config, &ServiceName::ALL).await?;
            print_banner(&running);
            run_until_signal(running).await?;
        }
        Command::Serve { service } => {
            let name = parse_service(&service)?;
            let running = platform::start(config, &[name]).await?;
            tracing::info!(service = name.as_str(), addr = %running.addrs[&name], "serving");
            run_until_signal(running).await?;
        }
        Command::Migrate {
            service,
            plan: true,
        } => return cmd_manage::migrate_plan(&config, service.as_deref()).await,
        Command::Showmigrations { service } => {
            return cmd_manage::showmigrations(&config, service.as_deref()).await;
        }
        Command::Changepassword { username } => {
            return cmd_manage::changepassword(&config, &username).await;
        }
        Command::Sendtestemail { addresses } => {
            return cmd_manage::sendtestemail(&config, &addresses).await;
        }
        Command::Migrate {
            service,
            plan: false,
        } => {
            let names = match service {
                Some(s) => vec![parse_service(&s)?],
                None => ServiceName::ALL.to_vec(),
            };
            for name in names.into_iter().filter(|n| n.has_database()) {
                platform::migrate(&config, name).await?;
                println!(
                    "{name}: migrations applied ({})",
                    bazaar_kit::config::redact_url(&config.database_url(name))
                );
            }
        }
        Command::Createsuperuser(args) => return cmd_createsuperuser::run(&config, args).await,
        Command::Keys(args) => return cmd_keys::run(&config, args).await,
        Command::Bench(args) => return bazaar::bench::run(args).await,
        Command::Events { command } => bazaar::cmd_events::run(&config, command).await?,
        Command::Seed { products } => bazaar::cmd_seed::run(&config, products).await?,
        // Handled above, before logging starts.
        Command::Check { .. } | Command::Healthcheck { .. } | Command::Completions { .. } => {}
    }
    Ok(ExitCode::SUCCESS)
}

async fn run_until_signal(running: platform::Running) -> anyhow::Result<()> {
    let token = running.shutdown_token();
    let waiter = tokio::spawn(running.wait());
    tokio::select! {
        () = bazaar_kit::http::shutdown_signal() => {
            tracing::info!("shutting down");
            token.cancel();
        }
        () = token.cancelled() => {}
    }
    waiter.await.context("platform task")?
}

fn print_banner(running: &platform::Running) {
    let gateway = running.gateway_url().unwrap_or_default();
    println!();
    println!("  Bazaar is up.");
    println!();
    println!("  Gateway (public API)  {gateway}/api/v1/");
    println!("  API docs              {gateway}/docs");
    println!("  Health / readiness    {gateway}/healthz  {gateway}/readyz");
    if let Some(admin) = running.admin_url(ServiceName::Gateway) {
        println!("  Operator (local)      {admin}/metrics  {admin}/readyz  {admin}/upstreams");
    }
    println!();
    for (name, addr) in &running.addrs {
        if *name == ServiceName::Gateway {
            continue;
        }
        let db = bazaar_kit::config::redact_url(&running.config.database_url(*name));
        println!("  {:<14} http://{addr:<18} {db}", name.as_str());
    }
    println!(
        "  broker         {}",
        bazaar_kit::config::redact_url(running.config.broker_url.expose())
    );
    println!();
    println!("  Ctrl-C stops everything.");
    println!();
}
