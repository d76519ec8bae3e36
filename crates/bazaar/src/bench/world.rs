//! The bench's view of the platform: an HTTP client, its own category and
//! products (made as staff), a pool of shoppers with tokens — all prepared
//! through the public API, as any client would.

use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::{Duration, Instant};

use anyhow::Context;
use futures::StreamExt;
use reqwest::{RequestBuilder, StatusCode};
use serde_json::{Value, json};
use tokio::sync::Mutex;

use super::report::Stats;

/// Access tokens live 5 minutes (SPEC: ≤ 15); refresh well before.
const TOKEN_MAX_AGE: Duration = Duration::from_secs(180);

/// A password that passes Django's validators for any bench username.
pub const PASSWORD: &str = "Lantern-Harbour-4721";

/// A product the bench made.
#[derive(Clone, Debug)]
pub struct Product {
    /// Id.
    pub id: String,
    /// Price in cents.
    pub cents: i64,
}

struct Tokens {
    access: String,
    refresh: String,
    at: Instant,
}

/// A registered shopper of the pool.
pub struct Shopper {
    tokens: Mutex<Tokens>,
}

/// Everything a journey needs.
pub struct World {
    /// Shared client (keep-alive pool).
    pub http: reqwest::Client,
    /// Gateway base URL.
    pub base: String,
    /// Unique per run: names, skus, usernames.
    pub tag: String,
    /// The bench's category slug.
    pub category: String,
    /// The bench's products.
    pub products: Vec<Product>,
    /// Pages of 10 the product list has (browsing stays within them).
    pub pages: u64,
    /// The shopper pool.
    pub shoppers: Vec<Shopper>,
    /// Staff access token.
    pub staff: Mutex<(String, Instant)>,
    /// Staff credentials, when known (to log in again).
    pub staff_login: Option<(String, String)>,
    /// Counter for unique usernames (auth journeys).
    pub counter: AtomicU64,
    /// Where measurements go.
    pub stats: Arc<Stats>,
}

/// A request's outcome: the body, or the error key (status code,
/// `timeout`, `connect`, `io`...).
pub type Outcome = Result<Value, String>;

fn error_key(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        "timeout".into()
    } else if e.is_connect() {
        "connect".into()
    } else {
        "io".into()
    }
}

/// Sends `req`; `Ok(body)` when the status is `expect` (the body parsed as
/// JSON only when `parse`), the error key otherwise.
pub async fn send(req: RequestBuilder, expect: StatusCode, parse: bool) -> Outcome {
    let r = req.send().await.map_err(|e| error_key(&e))?;
    let status = r.status();
    let body = r.bytes().await.map_err(|e| error_key(&e))?;
    if status != expect {
        return Err(status.as_u16().to_string());
    }
    if parse {
        serde_json::from_slice(&body).map_err(|_| "bad_json".to_string())
    } else {
        Ok(Value::Null)
    }
}

impl World {
    /// Sends and records one request of `kind`, timed from `start` (the
    /// intended send time in open-loop mode).
    pub async fn call(
        &self,
        kind: &'static str,
        start: Instant,
        req: RequestBuilder,
        expect: StatusCode,
        parse: bool,
    ) -> Outcome {
        let out = send(req, expect, parse).await;
        self.stats.request(
            kind,
            start.elapsed(),
            out.as_ref().map(|_| ()).map_err(String::as_str),
        );
        out
    }

    /// Absolute URL of a path.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// A shopper's access token, refreshed when old.
    pub async fn access(&self, i: usize) -> Result<String, String> {
        let mut t = self.shoppers[i % self.shoppers.len()].tokens.lock().await;
        if t.at.elapsed() > TOKEN_MAX_AGE {
            let body = send(
                self.http
                    .post(self.url("/api/v1/auth/token/refresh/"))
                    .json(&json!({"refresh": t.refresh})),
                StatusCode::OK,
                true,
            )
            .await?;
            t.access = str_field(&body, "access")?;
            t.refresh = str_field(&body, "refresh")?;
            t.at = Instant::now();
        }
        Ok(t.access.clone())
    }

    /// The staff token (logging in again when credentials are known).
    pub async fn staff_token(&self, relogin: bool) -> anyhow::Result<String> {
        let mut t = self.staff.lock().await;
        if relogin
            && t.1.elapsed() > TOKEN_MAX_AGE
            && let Some((u, p)) = &self.staff_login
        {
            t.0 = login(&self.http, &self.base, u, p).await?.0;
            t.1 = Instant::now();
        }
        Ok(t.0.clone())
    }
}

fn str_field(v: &Value, k: &str) -> Result<String, String> {
    v[k].as_str()
        .map(str::to_string)
        .ok_or_else(|| format!("no_{k}"))
}

/// Logs in: `(access, refresh)`.
pub async fn login(
    http: &reqwest::Client,
    base: &str,
    username: &str,
    password: &str,
) -> anyhow::Result<(String, String)> {
    let body = send(
        http.post(format!("{base}/api/v1/auth/token/"))
            .json(&json!({"username": username, "password": password})),
        StatusCode::OK,
        true,
    )
    .await
    .map_err(|e| anyhow::anyhow!("login as {username}: HTTP {e}"))?;
    let access = str_field(&body, "access").map_err(anyhow::Error::msg)?;
    let refresh = str_field(&body, "refresh").map_err(anyhow::Error::msg)?;
    Ok((access, refresh))
}

/// How the bench gets staff rights.
pub enum Staff {
    /// A ready token.
    Token(String),
    /// Credentials to log in with.
    Login(String, String),
    /// None: browse and auth only need no staff (products must exist).
    None,
}

/// Waits until the gateway serves the catalog (up to 60 s).
async fn wait_catalog(http: &reqwest::Client, base: &str) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let ok = http
            .get(format!("{base}/api/v1/products/?page_size=1"))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success());
        if ok {
            return Ok(());
        }
        if Instant::now() > deadline {
            anyhow::bail!("{base}: GET /api/v1/products/ did not succeed within 60 s");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Prepares a world: category and `products` products (staff), `users`
/// shoppers registered and logged in.
pub async fn prepare(
    base: &str,
    staff: Staff,
    products: usize,
    users: usize,
    http_pool: usize,
    stats: Arc<Stats>,
) -> anyhow::Result<World> {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .pool_max_idle_per_host(http_pool.max(16))
        .tcp_nodelay(true)
        .build()?;
    let base = base.trim_end_matches('/').to_string();
    wait_catalog(&http, &base).await?;
    let tag = uuid::Uuid::new_v4().simple().to_string()[..8].to_string();
    let (staff_token, staff_login) = match staff {
        Staff::Token(t) => (t, None),
        Staff::Login(u, p) => (login(&http, &base, &u, &p).await?.0, Some((u, p))),
        Staff::None => (String::new(), None),
    };
    let category = format!("bench-{tag}");
    let made = if staff_token.is_empty() {
        anyhow::bail!(
            "the bench needs staff rights to create its products: --staff-token, --staff-username/--staff-password, or --spawn"
        );
    } else {
        make_products(&http, &base, &staff_token, &tag, &category, products).await?
    };
    let shoppers: Vec<Shopper> = futures::stream::iter(0..users)
        .map(|i| {
            let (http, base, tag) = (http.clone(), base.clone(), tag.clone());
            async move {
                let username = format!("b{tag}p{i}");
                register(&http, &base, &username)
                    .await
                    .map_err(|e| anyhow::anyhow!("registering {username}: HTTP {e}"))?;
                let (access, refresh) = login(&http, &base, &username, PASSWORD).await?;
                anyhow::Ok(Shopper {
                    tokens: Mutex::new(Tokens {
                        access,
                        refresh,
                        at: Instant::now(),
                    }),
                })
            }
        })
        .buffer_unordered(8)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<anyhow::Result<_>>()?;
    let listed = send(
        http.get(format!("{base}/api/v1/products/?page_size=10")),
        StatusCode::OK,
        true,
    )
    .await
    .map_err(|e| anyhow::anyhow!("listing products: HTTP {e}"))?;
    let pages = listed["count"]
        .as_u64()
        .unwrap_or(0)
        .div_ceil(10)
        .clamp(1, 5);
    Ok(World {
        http,
        base,
        tag,
        category,
        products: made,
        pages,
        shoppers,
        staff: Mutex::new((staff_token, Instant::now())),
        staff_login,
        counter: AtomicU64::new(0),
        stats,
    })
}

/// Registers `username` with [`PASSWORD`].
pub async fn register(http: &reqwest::Client, base: &str, username: &str) -> Outcome {
    send(
        http.post(format!("{base}/api/v1/auth/register/"))
            .json(&json!({
                "username": username,
                "email": format!("{username}@bench.example.com"),
                "password": PASSWORD,
            })),
        StatusCode::CREATED,
        false,
    )
    .await
}

async fn make_products(
    http: &reqwest::Client,
    base: &str,
    staff: &str,
    tag: &str,
    category: &str,
    n: usize,
) -> anyhow::Result<Vec<Product>> {
    send(
        http.post(format!("{base}/api/v1/categories/"))
            .bearer_auth(staff)
            .json(&json!({"name": format!("Bench {tag}"), "slug": category})),
        StatusCode::CREATED,
        false,
    )
    .await
    .map_err(|e| anyhow::anyhow!("creating the bench category: HTTP {e}"))?;
    const WORDS: [&str; 5] = ["Lamp", "Kettle", "Chair", "Mug", "Backpack"];
    let mut products = Vec::with_capacity(n);
    for i in 0..n {
        let cents = 199 + (i as i64 * 737) % 9_800;
        let body = json!({
            "sku": format!("BENCH-{tag}-{i}"),
            "name": format!("Bench {} {tag} {i}", WORDS[i % WORDS.len()]),
            "description": "Made by bazaar bench.",
            "price": format!("{}.{:02}", cents / 100, cents % 100),
            "stock": 1_000_000,
            "category": category,
        });
        let made = send(
            http.post(format!("{base}/api/v1/products/"))
                .bearer_auth(staff)
                .json(&body),
            StatusCode::CREATED,
            true,
        )
        .await
        .map_err(|e| anyhow::anyhow!("creating a bench product: HTTP {e}"))?;
        let id = made["id"].as_str().context("product id")?.to_string();
        products.push(Product { id, cents });
    }
    Ok(products)
}

impl World {
    /// A world with no data (the hello-world comparison).
    pub fn bare(base: &str, http_pool: usize, stats: Arc<Stats>) -> anyhow::Result<World> {
        Ok(World {
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .pool_max_idle_per_host(http_pool.max(16))
                .tcp_nodelay(true)
                .build()?,
            base: base.trim_end_matches('/').to_string(),
            tag: String::new(),
            category: String::new(),
            products: Vec::new(),
            pages: 1,
            shoppers: Vec::new(),
            staff: Mutex::new((String::new(), Instant::now())),
            staff_login: None,
            counter: AtomicU64::new(0),
            stats,
        })
    }
}
