//! The load: closed loop (N workers, each starting its next journey when
//! the last ends) or open loop (arrivals at fixed intervals, latency
//! measured from each arrival's intended time, so a slow server cannot
//! hide its queueing — no coordinated omission). A live progress bar.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};
use tokio::task::JoinSet;

use super::journeys::{self, Scenario};
use super::world::World;

/// How load is offered.
#[derive(Clone, Copy, Debug)]
pub enum Mode {
    /// N concurrent workers.
    Closed(usize),
    /// R journeys per second.
    Open(f64),
}

impl Mode {
    /// For the report.
    pub fn describe(self) -> String {
        match self {
            Mode::Closed(n) => format!("closed loop, {n} workers"),
            Mode::Open(r) => format!("open loop, {r} journeys/s"),
        }
    }
}

/// Most journeys in flight at once in open-loop mode (beyond it arrivals
/// wait, and their wait counts in their latency).
const MAX_IN_FLIGHT: usize = 10_000;

fn progress_bar(duration: Duration, show: bool) -> ProgressBar {
    if !show {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(duration.as_secs().max(1));
    if let Ok(style) =
        ProgressStyle::with_template("{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} s  {msg}")
    {
        bar.set_style(style);
    }
    bar
}

/// Offers load for `duration`; returns the wall time until the last
/// journey ended.
pub async fn drive(
    world: Arc<World>,
    scenario: Scenario,
    mode: Mode,
    duration: Duration,
    show_progress: bool,
) -> Duration {
    let started = Instant::now();
    let deadline = started + duration;
    let bar = progress_bar(duration, show_progress);
    let ticker = {
        let (bar, stats) = (bar.clone(), world.stats.clone());
        tokio::spawn(async move {
            let mut last = (Instant::now(), 0u64);
            let mut tick = tokio::time::interval(Duration::from_millis(500));
            loop {
                tick.tick().await;
                let n = stats.requests.load(Ordering::Relaxed);
                let errors = stats.errors.load(Ordering::Relaxed);
                let rate = (n - last.1) as f64 / last.0.elapsed().as_secs_f64().max(1e-3);
                last = (Instant::now(), n);
                bar.set_position(started.elapsed().as_secs().min(duration.as_secs()));
                bar.set_message(format!("{rate:.0} req/s  {n} requests  {errors} errors"));
            }
        })
    };
    let mut tasks = JoinSet::new();
    match mode {
        Mode::Closed(workers) => {
            for _ in 0..workers.max(1) {
                let world = world.clone();
                tasks.spawn(async move {
                    while Instant::now() < deadline {
                        journeys::run(&world, scenario, Instant::now()).await;
                    }
                });
            }
        }
        Mode::Open(rate) => {
            let period = Duration::from_secs_f64(1.0 / rate.max(0.001));
            let mut tick = tokio::time::interval(period);
            // Late ticks fire at once, each keeping its intended time.
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
            let slots = Arc::new(tokio::sync::Semaphore::new(MAX_IN_FLIGHT));
            loop {
                let intended = tick.tick().await.into_std();
                if intended >= deadline {
                    break;
                }
                let (world, slots) = (world.clone(), slots.clone());
                tasks.spawn(async move {
                    let Ok(_slot) = slots.acquire_owned().await else {
                        return;
                    };
                    journeys::run(&world, scenario, intended).await;
                });
                // Reap finished tasks as we go (keeps the set small).
                while tasks.try_join_next().is_some() {}
            }
        }
    }
    while tasks.join_next().await.is_some() {}
    let elapsed = started.elapsed();
    ticker.abort();
    bar.finish_and_clear();
    elapsed
}
