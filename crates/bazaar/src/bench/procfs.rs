//! A process's memory and CPU from `/proc` (Linux): resident set sampled
//! every 250 ms for its peak, CPU ticks (user + system) for CPU seconds.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bazaar_kit::CancellationToken;

/// USER_HZ: the unit of `/proc/<pid>/stat` times (100 on every mainstream
/// Linux architecture).
const TICKS_PER_SEC: f64 = 100.0;

fn status_kib(pid: u32, field: &str) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|v| v.parse().ok())
}

/// Resident set size, KiB.
pub fn rss_kib(pid: u32) -> Option<u64> {
    status_kib(pid, "VmRSS:")
}

/// Peak resident set size over the process's life (VmHWM), KiB.
pub fn hwm_kib(pid: u32) -> Option<u64> {
    status_kib(pid, "VmHWM:")
}

/// CPU seconds (user + system) used so far.
pub fn cpu_secs(pid: u32) -> Option<f64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces; fields restart after its ')'.
    let rest = &text[text.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After ')': state is field 3, so utime (14) and stime (15) are at 11, 12.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) as f64 / TICKS_PER_SEC)
}

/// KiB to MiB.
pub fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

/// Samples a process's RSS every 250 ms, keeping the peak.
pub struct Sampler {
    peak: Arc<AtomicU64>,
    stop: CancellationToken,
}

impl Sampler {
    /// Starts sampling `pid`.
    pub fn start(pid: u32) -> Self {
        let peak = Arc::new(AtomicU64::new(rss_kib(pid).unwrap_or(0)));
        let stop = CancellationToken::new();
        let (p, s) = (peak.clone(), stop.clone());
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(250));
            loop {
                tokio::select! {
                    _ = tick.tick() => {
                        if let Some(rss) = rss_kib(pid) {
                            p.fetch_max(rss, Ordering::Relaxed);
                        }
                    }
                    () = s.cancelled() => break,
                }
            }
        });
        Self { peak, stop }
    }

    /// Stops sampling; the peak RSS in KiB.
    pub fn finish(self, pid: u32) -> u64 {
        self.stop.cancel();
        let last = rss_kib(pid).unwrap_or(0);
        self.peak.load(Ordering::Relaxed).max(last)
    }
}
