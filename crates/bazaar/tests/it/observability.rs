//! Observability end to end, one module per signal: metrics (every port
//! serves only its service's series, linted by promtool), logs (one
//! access-log line per request and service) and traces (one trace per
//! checkout, exported over OTLP to a receiver inside the test).

mod logs;
mod metrics;
mod traces;

use bazaar_kit::ServiceName;

/// `bazaar up` (the binary, JSON logs at `info`) with its log lines as
/// they come.
pub(crate) struct Up {
    child: std::process::Child,
    pub(crate) gateway: String,
    lines: std::sync::Arc<std::sync::Mutex<Vec<serde_json::Value>>>,
    _dir: tempfile::TempDir,
}

impl Up {
    pub(crate) fn start() -> Up {
        Up::start_with(&[])
    }

    /// `bazaar up` with `env` on top (OTLP, stores, email).
    pub(crate) fn start_with(env: &[(&str, String)]) -> Up {
        use std::io::BufRead as _;
        use std::process::{Command, Stdio};
        let dir = tempfile::tempdir().expect("dir");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_bazaar"));
        cmd.current_dir(dir.path())
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("BAZAAR_DATA_DIR", dir.path().join("data"))
            .env("BAZAAR_LOG_LEVEL", "info")
            .env("BAZAAR_LOG_FORMAT", "json")
            .arg("up")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for name in ServiceName::ALL {
            let var = format!("BAZAAR_{}_LISTEN", name.as_str().to_uppercase());
            cmd.env(var, "127.0.0.1:0");
        }
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("bazaar up");
        let lines = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let stderr = child.stderr.take().expect("stderr");
        let sink = lines.clone();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                // Lines that are not JSON (a start-up error) are kept as text.
                let value = serde_json::from_str(&line).unwrap_or(serde_json::Value::String(line));
                sink.lock().expect("lines").push(value);
            }
        });
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(url) = line.trim().strip_prefix("Gateway (public API)") {
                    let _ = tx.send(url.trim().trim_end_matches("/api/v1/").to_string());
                }
            }
        });
        let Ok(gateway) = rx.recv_timeout(std::time::Duration::from_secs(90)) else {
            let _ = child.kill();
            let _ = child.wait();
            std::thread::sleep(std::time::Duration::from_millis(200));
            let log: Vec<String> = lines
                .lock()
                .expect("lines")
                .iter()
                .rev()
                .take(20)
                .map(ToString::to_string)
                .collect();
            panic!(
                "no banner from bazaar up within 90 s; its last log lines:\n{}",
                log.join("\n")
            );
        };
        Up {
            child,
            gateway,
            lines,
            _dir: dir,
        }
    }

    /// Access-log lines carrying `request_id`.
    pub(crate) fn access_lines(&self, request_id: &str) -> Vec<serde_json::Value> {
        self.lines
            .lock()
            .expect("lines")
            .iter()
            .filter(|l| l["target"] == "access" && l["request_id"] == request_id)
            .cloned()
            .collect()
    }
}

impl Drop for Up {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
