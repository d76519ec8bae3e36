//! The process's own series (the names Prometheus client libraries use),
//! read from `/proc` at scrape time, and `bazaar_build_info`.

use std::sync::OnceLock;

use metrics::{Unit, describe_counter, describe_gauge};

pub(super) fn describe() {
    describe_counter!(
        "process_cpu_seconds_total",
        Unit::Seconds,
        "User and system CPU time the process has used."
    );
    describe_gauge!(
        "process_resident_memory_bytes",
        Unit::Bytes,
        "Resident memory of the process."
    );
    describe_gauge!(
        "process_virtual_memory_bytes",
        Unit::Bytes,
        "Virtual memory of the process."
    );
    describe_gauge!("process_open_fds", "File descriptors the process has open.");
    describe_gauge!(
        "process_max_fds",
        "Most file descriptors the process may open."
    );
    describe_gauge!(
        "process_start_time_seconds",
        Unit::Seconds,
        "When the process started, in seconds since the Unix epoch."
    );
    describe_gauge!(
        "bazaar_build_info",
        "Always 1; the build's version and the Rust target in labels."
    );
}

/// Sets the process series from `/proc/self` (Linux; nothing elsewhere).
pub(super) fn record() {
    metrics::gauge!(
        "bazaar_build_info",
        "version" => env!("CARGO_PKG_VERSION"),
        "os" => std::env::consts::OS,
        "arch" => std::env::consts::ARCH,
    )
    .set(1.0);
    let Some(stat) = Stat::read() else {
        return;
    };
    let tick = ticks_per_second();
    metrics::counter!("process_cpu_seconds_total")
        .absolute(((stat.utime + stat.stime) as f64 / tick) as u64);
    metrics::gauge!("process_resident_memory_bytes").set(stat.rss_pages as f64 * page_size());
    metrics::gauge!("process_virtual_memory_bytes").set(stat.vsize as f64);
    if let Some(boot) = boot_time() {
        metrics::gauge!("process_start_time_seconds").set(boot + stat.starttime as f64 / tick);
    }
    if let Ok(dir) = std::fs::read_dir("/proc/self/fd") {
        // The directory handle itself is one of them.
        metrics::gauge!("process_open_fds").set(dir.count().saturating_sub(1) as f64);
    }
    if let Some(max) = max_fds() {
        metrics::gauge!("process_max_fds").set(max);
    }
}

/// The fields of `/proc/self/stat` used here (proc(5)).
struct Stat {
    utime: u64,
    stime: u64,
    starttime: u64,
    vsize: u64,
    rss_pages: u64,
}

impl Stat {
    fn read() -> Option<Self> {
        let text = std::fs::read_to_string("/proc/self/stat").ok()?;
        // The command name (field 2) is in parentheses and may hold spaces.
        let rest = &text[text.rfind(')')? + 2..];
        let fields: Vec<&str> = rest.split_whitespace().collect();
        // `rest` starts at field 3 (state): field N is fields[N - 3].
        let field = |n: usize| fields.get(n - 3)?.parse::<u64>().ok();
        Some(Self {
            utime: field(14)?,
            stime: field(15)?,
            starttime: field(22)?,
            vsize: field(23)?,
            rss_pages: field(24)?,
        })
    }
}

/// Clock ticks per second of `/proc` times: USER_HZ, 100 on every Linux
/// ABI Rust targets (there is no `/proc` file that states it).
fn ticks_per_second() -> f64 {
    100.0
}

/// The page size, from the kernel's report of this process's mappings.
fn page_size() -> f64 {
    static PAGE: OnceLock<f64> = OnceLock::new();
    *PAGE.get_or_init(|| {
        std::fs::read_to_string("/proc/self/smaps")
            .ok()
            .and_then(|s| {
                s.lines()
                    .find_map(|l| l.strip_prefix("KernelPageSize:"))
                    .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
            })
            .map_or(4096.0, |kb| kb * 1024.0)
    })
}

fn boot_time() -> Option<f64> {
    static BOOT: OnceLock<Option<f64>> = OnceLock::new();
    *BOOT.get_or_init(|| {
        std::fs::read_to_string("/proc/stat")
            .ok()?
            .lines()
            .find_map(|l| l.strip_prefix("btime "))?
            .trim()
            .parse()
            .ok()
    })
}

fn max_fds() -> Option<f64> {
    std::fs::read_to_string("/proc/self/limits")
        .ok()?
        .lines()
        .find(|l| l.starts_with("Max open files"))?
        .split_whitespace()
        .nth(3)?
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    #[test]
    #[cfg(target_os = "linux")]
    fn stat_parses_this_process() {
        let stat = super::Stat::read().expect("/proc/self/stat");
        assert!(stat.rss_pages > 0);
        assert!(stat.vsize > 0);
        assert!(super::boot_time().is_some_and(|t| t > 1.0e9));
        assert!(super::max_fds().is_some_and(|m| m > 0.0));
    }
}
