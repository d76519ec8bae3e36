//! Shopper journeys (browse, auth, checkout; mixed picks among them) and
//! the after-run verification of every order placed.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use futures::StreamExt;
use rand::Rng;
use reqwest::StatusCode;
use serde_json::{Value, json};

use super::report::{Expect, Placed, Verification};
use super::world::{PASSWORD, World};

/// Which journeys a run replays.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Scenario {
    /// List, filter by category, search, product detail.
    Browse,
    /// Register, log in, refresh.
    Auth,
    /// Place an order and wait for its final status.
    Checkout,
    /// 80 % browse, 15 % auth, 5 % checkout.
    Mixed,
    /// GET / (the hello-world comparison).
    #[value(hide = true)]
    Hello,
}

impl Scenario {
    /// Lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            Scenario::Browse => "browse",
            Scenario::Auth => "auth",
            Scenario::Checkout => "checkout",
            Scenario::Mixed => "mixed",
            Scenario::Hello => "hello",
        }
    }

    /// The journey to run next.
    fn pick(self) -> Scenario {
        if self != Scenario::Mixed {
            return self;
        }
        match rand::rng().random_range(0..100) {
            0..80 => Scenario::Browse,
            80..95 => Scenario::Auth,
            _ => Scenario::Checkout,
        }
    }
}

/// Share of checkouts paid with a card that is declined.
const DECLINED_SHARE: f64 = 0.10;
/// How often a checkout polls its order.
const POLL: Duration = Duration::from_millis(25);
/// How long an order may take to become final.
const FINAL_WITHIN: Duration = Duration::from_secs(30);

/// Runs one journey of `scenario` (picking one for mixed), timed from
/// `start`.
pub async fn run(world: &World, scenario: Scenario, start: Instant) {
    let journey = scenario.pick();
    let outcome = match journey {
        Scenario::Browse => browse(world, start).await,
        Scenario::Auth => auth(world, start).await,
        Scenario::Checkout => checkout(world, start).await,
        Scenario::Hello | Scenario::Mixed => hello(world, start).await,
    };
    world.stats.journey(
        journey.as_str(),
        start.elapsed(),
        outcome.as_ref().map(|_| ()).map_err(String::as_str),
    );
}

async fn hello(w: &World, start: Instant) -> Result<(), String> {
    w.call(
        "hello",
        start,
        w.http.get(w.url("/")),
        StatusCode::OK,
        false,
    )
    .await
    .map(drop)
}

async fn browse(w: &World, start: Instant) -> Result<(), String> {
    let (page, product, word) = {
        let mut rng = rand::rng();
        let p = &w.products[rng.random_range(0..w.products.len())];
        let words = ["Lamp", "Kettle", "Chair", "Mug", "Backpack"];
        (
            rng.random_range(1..=w.pages),
            p.id.clone(),
            words[rng.random_range(0..words.len())],
        )
    };
    let ok = StatusCode::OK;
    let list = w.url(&format!("/api/v1/products/?page={page}&page_size=10"));
    w.call("browse.list", start, w.http.get(list), ok, false)
        .await?;
    let cat = w.url(&format!(
        "/api/v1/products/?category={}&ordering=price",
        w.category
    ));
    w.call(
        "browse.category",
        Instant::now(),
        w.http.get(cat),
        ok,
        false,
    )
    .await?;
    let search = w.url(&format!("/api/v1/products/?search={word}&page_size=10"));
    w.call(
        "browse.search",
        Instant::now(),
        w.http.get(search),
        ok,
        false,
    )
    .await?;
    let detail = w.url(&format!("/api/v1/products/{product}/"));
    w.call(
        "browse.detail",
        Instant::now(),
        w.http.get(detail),
        ok,
        false,
    )
    .await
    .map(drop)
}

async fn auth(w: &World, start: Instant) -> Result<(), String> {
    let n = w.counter.fetch_add(1, Ordering::Relaxed);
    let username = format!("b{}a{n}", w.tag);
    let register = w.http.post(w.url("/api/v1/auth/register/")).json(&json!({
        "username": username,
        "email": format!("{username}@bench.example.com"),
        "password": PASSWORD,
    }));
    w.call("auth.register", start, register, StatusCode::CREATED, false)
        .await?;
    let login = w
        .http
        .post(w.url("/api/v1/auth/token/"))
        .json(&json!({"username": username, "password": PASSWORD}));
    let tokens = w
        .call("auth.login", Instant::now(), login, StatusCode::OK, true)
        .await?;
    let refresh = w
        .http
        .post(w.url("/api/v1/auth/token/refresh/"))
        .json(&json!({"refresh": tokens["refresh"]}));
    w.call(
        "auth.refresh",
        Instant::now(),
        refresh,
        StatusCode::OK,
        true,
    )
    .await
    .map(drop)
}

fn order_body(w: &World) -> (Vec<(String, i64)>, Expect) {
    let mut rng = rand::rng();
    let lines = rng.random_range(1..=3);
    let mut items: Vec<(String, i64)> = Vec::new();
    while items.len() < lines {
        let p = &w.products[rng.random_range(0..w.products.len())];
        if !items.iter().any(|(id, _)| *id == p.id) {
            items.push((p.id.clone(), rng.random_range(1..=2)));
        }
    }
    let expect = if rng.random_bool(DECLINED_SHARE) {
        Expect::Declined
    } else {
        Expect::Confirmed
    };
    (items, expect)
}

async fn checkout(w: &World, start: Instant) -> Result<(), String> {
    let (items, expect) = order_body(w);
    let user = rand::rng().random_range(0..w.shoppers.len());
    let token = w.access(user).await?;
    let body = json!({
        "items": items.iter().map(|(id, q)| json!({"product_id": id, "quantity": q})).collect::<Vec<_>>(),
        "payment_token": if expect == Expect::Confirmed { "tok_visa" } else { "tok_chargeDeclined" },
        "shipping_address": {"name": "Ada Lovelace", "line1": "12 St James's Sq", "city": "London",
                             "postal_code": "SW1Y 4JH", "country": "GB"},
    });
    let placed_at = Instant::now();
    let post = w
        .http
        .post(w.url("/api/v1/orders/"))
        .bearer_auth(&token)
        .json(&body);
    let order = w
        .call("checkout.order", start, post, StatusCode::CREATED, true)
        .await?;
    let id = order["id"].as_str().ok_or("no_order_id")?.to_string();
    w.stats.placed(Placed {
        id: id.clone(),
        expect,
        items,
    });
    let url = w.url(&format!("/api/v1/orders/{id}/"));
    loop {
        tokio::time::sleep(POLL).await;
        let o = w
            .call(
                "checkout.poll",
                Instant::now(),
                w.http.get(&url).bearer_auth(&token),
                StatusCode::OK,
                true,
            )
            .await?;
        let status = o["status"].as_str().unwrap_or_default();
        if matches!(status, "confirmed" | "rejected" | "cancelled") {
            w.stats.settled(expect, placed_at.elapsed());
            let wanted = match expect {
                Expect::Confirmed => "confirmed",
                Expect::Declined => "rejected",
            };
            return if status == wanted {
                Ok(())
            } else {
                Err(format!("unexpected:{status}"))
            };
        }
        if placed_at.elapsed() > FINAL_WITHIN {
            return Err("not_final".into());
        }
    }
}

/// "19.99" → 1999.
pub fn cents(v: &Value) -> Option<i64> {
    let s = v.as_str()?;
    let (whole, frac) = s.split_once('.').unwrap_or((s, "0"));
    let frac = format!("{frac:0<2}");
    if frac.len() != 2 {
        return None;
    }
    Some(whole.parse::<i64>().ok()? * 100 + frac.parse::<i64>().ok()?)
}

/// What is wrong with a final order, if anything.
fn check(w: &World, placed: &Placed, o: &Value) -> Option<String> {
    let id = &placed.id;
    let status = o["status"].as_str().unwrap_or_default();
    let reason = o["status_reason"].as_str().unwrap_or_default();
    match placed.expect {
        Expect::Declined => {
            return (status != "rejected" || reason != "payment_declined")
                .then(|| format!("{id}: declined card but status {status} ({reason})"));
        }
        Expect::Confirmed if status != "confirmed" => {
            return Some(format!("{id}: paid but status {status} ({reason})"));
        }
        Expect::Confirmed => {}
    }
    let lines = o["items"].as_array().cloned().unwrap_or_default();
    let mut sum = 0;
    let mut seen = BTreeMap::new();
    for l in &lines {
        let (Some(unit), Some(line), Some(q)) = (
            cents(&l["unit_price"]),
            cents(&l["line_total"]),
            l["quantity"].as_i64(),
        ) else {
            return Some(format!("{id}: malformed line {l}"));
        };
        if unit * q != line {
            return Some(format!("{id}: line {unit}×{q} ≠ {line} cents"));
        }
        let pid = l["product_id"].as_str().unwrap_or_default();
        let price = w.products.iter().find(|p| p.id == pid).map(|p| p.cents);
        if price != Some(unit) {
            return Some(format!(
                "{id}: unit price {unit} cents for {pid}, catalog has {price:?}"
            ));
        }
        seen.insert(pid.to_string(), q);
        sum += line;
    }
    let ordered: BTreeMap<String, i64> = placed.items.iter().cloned().collect();
    if seen != ordered {
        return Some(format!("{id}: lines {seen:?} ≠ ordered {ordered:?}"));
    }
    match cents(&o["total"]) {
        Some(t) if t == sum => None,
        t => Some(format!("{id}: total {t:?} ≠ sum of lines {sum} cents")),
    }
}

/// Checks every order placed: final (waiting up to 30 s) and correct.
pub async fn verify(w: &World, placed: &[Placed]) -> anyhow::Result<Verification> {
    let staff = w.staff_token(true).await?;
    let results: Vec<Option<String>> = futures::stream::iter(placed)
        .map(|p| {
            let staff = staff.clone();
            async move {
                let url = w.url(&format!("/api/v1/orders/{}/", p.id));
                let deadline = Instant::now() + FINAL_WITHIN;
                loop {
                    let got = super::world::send(
                        w.http.get(&url).bearer_auth(&staff),
                        StatusCode::OK,
                        true,
                    )
                    .await;
                    match got {
                        Ok(o)
                            if matches!(
                                o["status"].as_str(),
                                Some("confirmed" | "rejected" | "cancelled")
                            ) =>
                        {
                            return check(w, p, &o);
                        }
                        Ok(o) if Instant::now() > deadline => {
                            return Some(format!("{}: not final ({})", p.id, o["status"]));
                        }
                        Err(e) if Instant::now() > deadline => {
                            return Some(format!("{}: GET failed (HTTP {e})", p.id));
                        }
                        _ => tokio::time::sleep(Duration::from_millis(100)).await,
                    }
                }
            }
        })
        .buffer_unordered(16)
        .collect()
        .await;
    let problems: Vec<String> = results.into_iter().flatten().collect();
    Ok(Verification {
        checked: placed.len(),
        correct: placed.len() - problems.len(),
        problems,
    })
}
