//! The gateway test harness: one gateway started with
//! `bazaar::start(config, &[ServiceName::Gateway])` in front of tiny upstreams.

use std::net::SocketAddr;
use std::time::Duration;

use bazaar::Running;
pub use bazaar_kit::testing::eventually;
use bazaar_kit::{Config, ServiceName};
use reqwest::StatusCode;

use crate::upstream::{self, Upstream};

pub const SERVICES: [ServiceName; 5] = [
    ServiceName::Identity,
    ServiceName::Catalog,
    ServiceName::Orders,
    ServiceName::Payments,
    ServiceName::Notifications,
];

pub fn any_port() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

/// One gateway in front of `urls` (service → comma-separated URLs), with
/// `toml` as the `[gateway]` table body.
pub struct Gateway {
    running: Option<Running>,
    /// Gateway base URL.
    pub base: String,
    /// Base URL of its operator listener (`/metrics`, `/upstreams`).
    pub admin: String,
    /// Client (follows a few redirects).
    pub http: reqwest::Client,
    _dir: tempfile::TempDir,
}

impl Gateway {
    pub async fn start(toml: &str, urls: &[(ServiceName, String)], redis: Option<&str>) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let file = dir.path().join("bazaar.toml");
        std::fs::write(&file, format!("[gateway]\n{toml}\n")).expect("write config");
        let mut config = Config::load(Some(&file)).expect("config loads");
        config.data_dir = dir.path().to_path_buf();
        config.log_level = "warn".into();
        config.redis_url = redis.map(|r| bazaar_kit::Secret::new(r.to_string()));
        config.gateway.listen = Some(any_port());
        for (name, url) in urls {
            config.service_mut(*name).url = Some(url.clone());
        }
        let running = bazaar::start(config, &[ServiceName::Gateway])
            .await
            .expect("gateway starts");
        let base = running.gateway_url().expect("gateway url");
        let admin = running
            .admin_url(ServiceName::Gateway)
            .expect("admin listener");
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(20))
            .redirect(reqwest::redirect::Policy::limited(3))
            .build()
            .expect("client");
        Self {
            running: Some(running),
            base,
            admin,
            http,
            _dir: dir,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub async fn get(&self, path: &str, bearer: Option<&str>) -> reqwest::Response {
        let mut req = self.http.get(self.url(path));
        if let Some(t) = bearer {
            req = req.bearer_auth(t);
        }
        req.send().await.expect("request")
    }

    pub async fn metrics(&self) -> String {
        self.http
            .get(format!("{}/metrics", self.admin))
            .send()
            .await
            .expect("metrics")
            .text()
            .await
            .expect("metrics")
    }

    pub async fn stop(mut self) {
        if let Some(r) = self.running.take() {
            r.stop().await.expect("clean shutdown");
        }
    }
}

/// Every service played by one upstream.
pub async fn single(toml: &str) -> (Upstream, Gateway) {
    let up = upstream::start("all", any_port()).await;
    let urls: Vec<_> = SERVICES.iter().map(|s| (*s, up.url())).collect();
    let gw = Gateway::start(toml, &urls, None).await;
    (up, gw)
}

pub async fn assert_problem(r: reqwest::Response, status: StatusCode) -> serde_json::Value {
    assert_eq!(r.status(), status);
    assert_eq!(r.headers()["content-type"], "application/problem+json");
    let body: serde_json::Value = r.json().await.expect("problem body");
    assert_eq!(body["status"], status.as_u16());
    body
}
