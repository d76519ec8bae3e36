//! `bazaar bench`: replays shopper journeys against a platform (a running
//! one, or one it starts itself with `--spawn`), then reports throughput,
//! latency percentiles, checkout time-to-confirmed, the platform's memory
//! and CPU, and checks that every order it placed ended correctly.
//!
//! Read: `mod.rs` (the run) → `world.rs` (preparation) → `journeys.rs` →
//! `load.rs` (closed/open loop) → `report.rs`; `spawn.rs`, `procfs.rs`.

pub mod journeys;
pub mod load;
pub mod procfs;
pub mod report;
pub mod spawn;
pub mod world;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;

pub use journeys::Scenario;
pub use load::Mode;
pub use report::Report;
pub use spawn::SpawnOptions;

use report::{Hello, Resources, Stats};
use world::Staff;

/// `bazaar bench` flags.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Gateway URL of a running platform (ignored with --spawn).
    #[arg(long, default_value = "http://127.0.0.1:8000")]
    pub target: String,
    /// How long to offer load: `30s`, `2m`, `500ms`.
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    pub duration: Duration,
    /// Closed loop: this many concurrent shoppers (default 32).
    #[arg(long, conflicts_with = "rate")]
    pub concurrency: Option<usize>,
    /// Open loop: journeys started per second (`200` or `200/s`), latency
    /// measured from each intended start.
    #[arg(long, value_parser = parse_rate)]
    pub rate: Option<f64>,
    /// Journeys to replay.
    #[arg(long, value_enum, default_value = "mixed")]
    pub scenario: Scenario,
    /// Also write the report as JSON to this file.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Exit non-zero when errors / requests exceed this.
    #[arg(long, default_value_t = 0.01)]
    pub max_error_rate: f64,
    /// Start a fresh platform for the run (child `bazaar up`, temp data).
    #[arg(long)]
    pub spawn: bool,
    /// With --spawn: PostgreSQL server URL (a fresh database is made on it).
    #[arg(long, requires = "spawn")]
    pub database_url: Option<String>,
    /// With --spawn: broker URL (amqp://... or nats://...); default embedded.
    #[arg(long, requires = "spawn")]
    pub broker_url: Option<String>,
    /// With --spawn: run the platform inside this process (its RSS and CPU
    /// then include the bench client).
    #[arg(long, requires = "spawn")]
    pub in_process: bool,
    /// With --spawn: skip the hello-world comparison.
    #[arg(long)]
    pub no_hello: bool,
    /// Staff access token (to create the bench's products).
    #[arg(long, env = "BAZAAR_BENCH_STAFF_TOKEN")]
    pub staff_token: Option<String>,
    /// Staff username (e.g. made with `bazaar createsuperuser`).
    #[arg(long, requires = "staff_password")]
    pub staff_username: Option<String>,
    /// Staff password.
    #[arg(long, env = "BAZAAR_BENCH_STAFF_PASSWORD")]
    pub staff_password: Option<String>,
    /// Shoppers registered before the load.
    #[arg(long, default_value_t = 50)]
    pub users: usize,
    /// Products created before the load.
    #[arg(long, default_value_t = 20)]
    pub products: usize,
    /// Serve the hello-world JSON app on ADDR and nothing else (internal:
    /// the comparison's child process).
    #[arg(long, hide = true)]
    pub serve_hello: Option<SocketAddr>,
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (num, unit) = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .map_or((s, "s"), |i| s.split_at(i));
    let v: f64 = num.parse().map_err(|_| format!("not a duration: {s:?}"))?;
    let secs = match unit {
        "ms" => v / 1000.0,
        "s" => v,
        "m" => v * 60.0,
        "h" => v * 3600.0,
        _ => return Err(format!("unknown unit in {s:?} (ms, s, m, h)")),
    };
    Duration::try_from_secs_f64(secs).map_err(|e| e.to_string())
}

fn parse_rate(s: &str) -> Result<f64, String> {
    let v: f64 = s
        .trim()
        .trim_end_matches("/s")
        .parse()
        .map_err(|_| format!("not a rate: {s:?} (e.g. 200 or 200/s)"))?;
    if v > 0.0 && v.is_finite() {
        Ok(v)
    } else {
        Err("the rate must be > 0".into())
    }
}

/// A run, as the library sees it (tests build one directly).
#[derive(Clone, Debug)]
pub struct Options {
    /// Gateway URL (ignored when `spawn` is set).
    pub target: String,
    /// Start a platform: how.
    pub spawn: Option<SpawnOptions>,
    /// Journeys.
    pub scenario: Scenario,
    /// Closed or open loop.
    pub mode: Mode,
    /// Load duration.
    pub duration: Duration,
    /// Staff token, or credentials.
    pub staff_token: Option<String>,
    /// Staff credentials.
    pub staff_login: Option<(String, String)>,
    /// Shoppers to register.
    pub users: usize,
    /// Products to create.
    pub products: usize,
    /// Run the hello-world comparison (with `spawn`).
    pub hello: bool,
    /// Show the live progress bar.
    pub progress: bool,
}

/// Runs the command.
pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    if let Some(addr) = args.serve_hello {
        spawn::serve_hello(addr).await?;
        return Ok(ExitCode::SUCCESS);
    }
    let opts = Options {
        target: args.target,
        spawn: args.spawn.then_some(SpawnOptions {
            database_url: args.database_url,
            broker_url: args.broker_url,
            in_process: args.in_process,
        }),
        scenario: args.scenario,
        mode: match args.rate {
            Some(r) => Mode::Open(r),
            None => Mode::Closed(args.concurrency.unwrap_or(32)),
        },
        duration: args.duration,
        staff_token: args.staff_token,
        staff_login: args.staff_username.zip(args.staff_password),
        users: args.users.max(1),
        products: args.products.max(1),
        hello: args.spawn && !args.no_hello,
        progress: true,
    };
    let report = bench(opts).await?;
    report.print();
    if let Some(path) = &args.json {
        let text = serde_json::to_string_pretty(&report)?;
        std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))?;
        println!("report written to {}", path.display());
    }
    let mut ok = true;
    if report.error_rate > args.max_error_rate {
        eprintln!(
            "FAIL: error rate {:.3}% exceeds --max-error-rate {:.3}%",
            report.error_rate * 100.0,
            args.max_error_rate * 100.0
        );
        ok = false;
    }
    if report
        .verification
        .as_ref()
        .is_some_and(|v| !v.problems.is_empty())
    {
        eprintln!("FAIL: some orders did not end correctly (see above)");
        ok = false;
    }
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// Runs a whole bench: spawn (optionally), prepare, load, verify, compare.
pub async fn bench(opts: Options) -> anyhow::Result<Report> {
    let Some(spawn_opts) = &opts.spawn else {
        let staff = match (&opts.staff_token, &opts.staff_login) {
            (Some(t), _) => Staff::Token(t.clone()),
            (None, Some((u, p))) => Staff::Login(u.clone(), p.clone()),
            (None, None) => Staff::None,
        };
        return measure(&opts, &opts.target, staff, None).await;
    };
    eprintln!("starting a fresh platform…");
    let spawned = spawn::start(spawn_opts).await?;
    let staff = Staff::Login(spawned.staff.0.clone(), spawned.staff.1.clone());
    let result = measure(&opts, &spawned.base, staff, Some(&spawned)).await;
    let failed = result.as_ref().map_or(true, |r| {
        r.total_errors > 0
            || r.verification
                .as_ref()
                .is_some_and(|v| !v.problems.is_empty())
    });
    let tail = spawned.log_tail(30);
    if failed && !tail.is_empty() {
        eprintln!("platform log (last lines):\n{tail}");
    }
    spawned.stop().await;
    let mut report = result?;
    if opts.hello {
        report.hello = Some(hello(&opts, &report, spawn_opts.in_process).await?);
    }
    Ok(report)
}

async fn measure(
    opts: &Options,
    base: &str,
    staff: Staff,
    spawned: Option<&spawn::Spawned>,
) -> anyhow::Result<Report> {
    let pool = match opts.mode {
        Mode::Closed(n) => n,
        Mode::Open(r) => r as usize,
    };
    let pid = spawned.map(|s| s.pid);
    let rss_start = pid.and_then(procfs::rss_kib).unwrap_or(0);
    eprintln!(
        "preparing: {} products, {} shoppers…",
        opts.products, opts.users
    );
    let stats = Arc::new(Stats::default());
    let world = Arc::new(
        world::prepare(base, staff, opts.products, opts.users, pool, stats.clone()).await?,
    );
    let before = pid.map(|pid| {
        (
            procfs::rss_kib(pid).unwrap_or(0),
            procfs::cpu_secs(pid).unwrap_or(0.0),
            procfs::Sampler::start(pid),
        )
    });
    eprintln!(
        "load: {} for {:?} ({})",
        opts.scenario.as_str(),
        opts.duration,
        opts.mode.describe()
    );
    let elapsed = load::drive(
        world.clone(),
        opts.scenario,
        opts.mode,
        opts.duration,
        opts.progress,
    )
    .await;
    let mut report = stats.report(opts.scenario.as_str(), &opts.mode.describe(), elapsed);
    if let (Some(s), Some((idle, cpu0, sampler))) = (spawned, before) {
        let peak = sampler.finish(s.pid);
        let cpu = procfs::cpu_secs(s.pid).unwrap_or(0.0) - cpu0;
        report.platform = Some(Resources {
            pid: s.pid,
            includes_client: s.includes_client,
            rss_start_mib: procfs::mib(rss_start),
            rss_idle_mib: procfs::mib(idle),
            rss_peak_mib: procfs::mib(peak),
            vm_hwm_mib: procfs::mib(procfs::hwm_kib(s.pid).unwrap_or(0)),
            cpu_secs: cpu,
            cpu_cores: cpu / elapsed.as_secs_f64().max(1e-3),
        });
    }
    let placed = stats.placed_orders();
    if !placed.is_empty() {
        eprintln!("verifying {} orders…", placed.len());
        report.verification = Some(journeys::verify(&world, &placed).await?);
    }
    Ok(report)
}

/// The same closed-loop client against a hello-world axum server.
async fn hello(opts: &Options, report: &Report, in_process: bool) -> anyhow::Result<Hello> {
    let workers = match opts.mode {
        Mode::Closed(n) => n,
        Mode::Open(_) => 32,
    };
    let duration = opts.duration.min(Duration::from_secs(10));
    eprintln!("hello-world comparison: {workers} workers for {duration:?}…");
    let server = spawn::HelloServer::start(in_process).await?;
    let stats = Arc::new(Stats::default());
    let world = Arc::new(world::World::bare(&server.base, workers, stats.clone())?);
    let sampler = procfs::Sampler::start(server.pid);
    let elapsed = load::drive(
        world,
        Scenario::Hello,
        Mode::Closed(workers),
        duration,
        opts.progress,
    )
    .await;
    let rss = sampler.finish(server.pid);
    server.stop().await;
    let r = stats.report("hello", "closed", elapsed);
    let row = r
        .requests
        .into_iter()
        .next()
        .context("no hello-world requests were made")?;
    let hello_rps = row.per_sec.max(f64::EPSILON);
    Ok(Hello {
        browse_ratio: report.browse_per_sec() / hello_rps,
        total_ratio: report.requests_per_sec / hello_rps,
        rss_peak_mib: procfs::mib(rss),
        row,
    })
}
