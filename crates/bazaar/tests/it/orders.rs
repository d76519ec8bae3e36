//! The checkout saga end to end, through the gateway as a shopper would:
//! happy path, declined, provider timeout, out of stock, cancel + refund,
//! idempotent replays, IDOR, client-set fields ignored, live status over
//! SSE, oversell under 100 concurrent orders, and a platform stopped
//! mid-saga then restarted on the same data. SQLite and PostgreSQL.
//!
//! Tokens come from a stand-in issuer (`orders/issuer.rs`) serving JWKS and
//! the client-credentials grant of `docs/contracts.md`.

use crate::common;
pub(crate) mod issuer;
pub(crate) mod shop;

use std::collections::BTreeMap;

use common::Store;
use reqwest::StatusCode;
use serde_json::{Value, json};
use shop::{Shop, body};

fn history(order: &Value) -> Vec<(String, Option<String>)> {
    order["history"]
        .as_array()
        .expect("history")
        .iter()
        .map(|h| {
            assert!(h["at"].is_string());
            (
                h["status"].as_str().unwrap_or_default().to_string(),
                h["reason"].as_str().map(str::to_string),
            )
        })
        .collect()
}

fn statuses(order: &Value) -> Vec<String> {
    history(order).into_iter().map(|(s, _)| s).collect()
}

async fn happy_path(s: &Shop) {
    let a = s.product("19.99", 10).await;
    let b = s.product("5.00", 10).await;
    let u = s.user();
    // Duplicate lines merge; client-set price/status/total are ignored.
    let mut req = body(&[(&a, 1), (&b, 2), (&a, 1)], "tok_visa");
    req["status"] = json!("confirmed");
    req["total"] = json!("0.01");
    req["items"][0]["price"] = json!("0.01");
    req["items"][0]["unit_price"] = json!("0.01");
    let r = s.post_order(&u.token, &req, None).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let o: Value = r.json().await.expect("order");
    assert_eq!(o["status"], "pending");
    assert_eq!(o["total"], "49.98");
    assert_eq!(o["currency"], "USD");
    assert!(o["status_reason"].is_null());
    assert_eq!(o["shipping_address"]["city"], "London");
    let items = o["items"].as_array().expect("items");
    assert_eq!(items.len(), 2, "duplicates merged");
    assert_eq!(items[0]["product_id"], a.as_str());
    assert_eq!(items[0]["quantity"], 2);
    assert_eq!(items[0]["unit_price"], "19.99");
    assert_eq!(items[0]["line_total"], "39.98");
    assert!(
        items[0]["name"]
            .as_str()
            .is_some_and(|n| n.starts_with("Widget"))
    );
    for k in ["id", "created_at", "updated_at"] {
        assert!(o[k].is_string(), "{k}");
    }
    let id = o["id"].as_str().expect("id");
    let done = s.final_order(&u.token, id).await;
    assert_eq!(done["status"], "confirmed", "{done}");
    assert_eq!(
        statuses(&done),
        ["pending", "awaiting_payment", "confirmed"]
    );
    assert_eq!(s.stock(&a).await, 8);
    assert_eq!(s.stock(&b).await, 8);
    let pays = s.payments(&u.token, id).await;
    assert_eq!(pays.len(), 1, "{pays:?}");
    assert_eq!(pays[0]["status"], "succeeded");
    assert_eq!(pays[0]["amount"], "49.98");
    assert_eq!(pays[0]["order_id"], id);
    for k in ["id", "currency", "created_at"] {
        assert!(pays[0][k].is_string(), "{k}");
    }
    // Listed among the user's own orders.
    let (st, list) = s.get(&u.token, "/api/v1/orders/").await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(list["count"], 1);
    assert_eq!(list["results"][0]["id"], id);
}

async fn declined_timeout_out_of_stock(s: &Shop) {
    let p = s.product("10.00", 3).await;
    let u = s.user();
    let declined = s.order(&u, &[(&p, 1)], "tok_chargeDeclined").await;
    let timeout = s.order(&u, &[(&p, 1)], "tok_timeout").await;
    let d = s
        .final_order(&u.token, declined["id"].as_str().expect("id"))
        .await;
    assert_eq!(d["status"], "rejected");
    assert_eq!(d["status_reason"], "payment_declined");
    assert_eq!(
        history(&d).last().expect("h").1.as_deref(),
        Some("payment_declined")
    );
    let t = s
        .final_order(&u.token, timeout["id"].as_str().expect("id"))
        .await;
    assert_eq!(t["status"], "rejected", "{t}");
    assert_eq!(t["status_reason"], "payment_timeout");
    // Stock released by both.
    assert_eq!(s.stock(&p).await, 3);
    let dp = s.payments(&u.token, d["id"].as_str().expect("id")).await;
    assert_eq!(dp.len(), 1);
    assert_eq!(dp[0]["status"], "declined");
    let tp = s.payments(&u.token, t["id"].as_str().expect("id")).await;
    assert!(tp.iter().all(|p| p["status"] != "succeeded"), "{tp:?}");

    // Out of stock: 4 > 3, nothing charged, nothing held.
    let big = s.order(&u, &[(&p, 4)], "tok_visa").await;
    let b = s
        .final_order(&u.token, big["id"].as_str().expect("id"))
        .await;
    assert_eq!(b["status"], "rejected");
    assert_eq!(b["status_reason"], "out_of_stock");
    assert_eq!(statuses(&b), ["pending", "rejected"]);
    assert!(
        s.payments(&u.token, b["id"].as_str().expect("id"))
            .await
            .is_empty()
    );
    assert_eq!(s.stock(&p).await, 3);
}

async fn cancel_refunds_and_restocks(s: &Shop) {
    let p = s.product("7.50", 5).await;
    let u = s.user();
    let o = s.order(&u, &[(&p, 2)], "tok_visa").await;
    let id = o["id"].as_str().expect("id");
    assert_eq!(s.final_order(&u.token, id).await["status"], "confirmed");
    assert_eq!(s.stock(&p).await, 3);
    let cancel = |tok: String| {
        let url = s.p.url(&format!("/api/v1/orders/{id}/cancel/"));
        let http = s.p.http.clone();
        async move {
            http.post(url)
                .bearer_auth(tok)
                .send()
                .await
                .expect("cancel")
        }
    };
    // Another user cannot cancel it (and cannot tell it exists).
    let other = s.user();
    assert_eq!(
        cancel(other.token.clone()).await.status(),
        StatusCode::NOT_FOUND
    );
    let r = cancel(u.token.clone()).await;
    assert_eq!(r.status(), StatusCode::OK);
    let c: Value = r.json().await.expect("cancelled");
    assert_eq!(c["status"], "cancelled");
    assert_eq!(statuses(&c).last().map(String::as_str), Some("cancelled"));
    common::eventually(10, "stock restored and payment refunded", || async {
        let pays = s.payments(&u.token, id).await;
        (s.stock(&p).await == 5 && pays.len() == 1 && pays[0]["status"] == "refunded").then_some(())
    })
    .await;
    let r = cancel(u.token.clone()).await;
    assert_eq!(r.status(), StatusCode::CONFLICT);
    assert_eq!(r.headers()["content-type"], "application/problem+json");

    // A rejected order cannot be cancelled either.
    let d = s.order(&u, &[(&p, 1)], "tok_chargeDeclined").await;
    let did = d["id"].as_str().expect("id");
    s.final_order(&u.token, did).await;
    let r =
        s.p.http
            .post(s.p.url(&format!("/api/v1/orders/{did}/cancel/")))
            .bearer_auth(&u.token)
            .send()
            .await
            .expect("cancel");
    assert_eq!(r.status(), StatusCode::CONFLICT);
}

async fn idempotency(s: &Shop) {
    let p = s.product("3.00", 50).await;
    let u = s.user();
    let req = body(&[(&p, 1)], "tok_visa");
    let first = s.post_order(&u.token, &req, Some("key-1")).await;
    assert_eq!(first.status(), StatusCode::CREATED);
    let first: Value = first.json().await.expect("first");
    // Same key, same body (keys in another order): the first answer again.
    let mut reordered =
        json!({"shipping_address": req["shipping_address"], "payment_token": "tok_visa"});
    reordered["items"] = req["items"].clone();
    let again = s.post_order(&u.token, &reordered, Some("key-1")).await;
    assert_eq!(again.status(), StatusCode::CREATED);
    let again: Value = again.json().await.expect("again");
    assert_eq!(again, first);
    // Same key, different body: 422.
    let other = s
        .post_order(&u.token, &body(&[(&p, 2)], "tok_visa"), Some("key-1"))
        .await;
    assert_eq!(other.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(other.headers()["content-type"], "application/problem+json");
    // Another user may use the same key for their own order.
    let v = s.user();
    let theirs = s.post_order(&v.token, &req, Some("key-1")).await;
    assert_eq!(theirs.status(), StatusCode::CREATED);
    let (_, list) = s.get(&u.token, "/api/v1/orders/").await;
    assert_eq!(list["count"], 1, "one order for the replayed key");
    // Concurrent duplicates also make one order.
    let w = s.user();
    let tasks: Vec<_> = (0..8)
        .map(|_| s.post_order(&w.token, &req, Some("key-c")))
        .collect();
    let answers = futures::future::join_all(tasks).await;
    let mut ids = std::collections::BTreeSet::new();
    for a in answers {
        assert_eq!(a.status(), StatusCode::CREATED);
        let v: Value = a.json().await.expect("body");
        ids.insert(v["id"].as_str().expect("id").to_string());
    }
    assert_eq!(ids.len(), 1);
    s.final_order(&w.token, ids.iter().next().expect("id"))
        .await;
    let (_, list) = s.get(&w.token, "/api/v1/orders/").await;
    assert_eq!(list["count"], 1);
}

async fn rejected(s: &Shop, token: &str, b: Value) -> (StatusCode, Value) {
    let r = s.post_order(token, &b, None).await;
    let status = r.status();
    (status, r.json().await.expect("problem"))
}

async fn validation_and_idor(s: &Shop) {
    let p = s.product("1.00", 5).await;
    let u = s.user();
    let bad = |b: Value| rejected(s, &u.token, b);
    let unknown = uuid::Uuid::now_v7().to_string();
    let (st, b) = bad(body(&[(&p, 1), (&unknown, 1)], "tok_visa")).await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    assert!(
        b["errors"]["items"][0]
            .as_str()
            .is_some_and(|m| m.contains(&unknown)),
        "{b}"
    );
    let (st, b) = bad(body(&[(&p, 1)], "tok_mastercard")).await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    assert!(b["errors"]["payment_token"].is_array());
    let (st, _) = bad(body(&[], "tok_visa")).await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    let (st, b) = bad(body(&[(&p, 101)], "tok_visa")).await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{b}");
    let (st, _) = bad(body(&[(&p, 0)], "tok_visa")).await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    let mut no_city = body(&[(&p, 1)], "tok_visa");
    no_city["shipping_address"]["city"] = json!("");
    let (st, b) = bad(no_city).await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    assert!(b["errors"]["shipping_address.city"].is_array(), "{b}");
    let mut missing = body(&[(&p, 1)], "tok_visa");
    missing
        .as_object_mut()
        .expect("obj")
        .remove("shipping_address");
    let (st, _) = bad(missing).await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    let r =
        s.p.http
            .post(s.p.url("/api/v1/orders/"))
            .json(&body(&[(&p, 1)], "tok_visa"))
            .send()
            .await
            .expect("anon");
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);

    // IDOR: another user's order is a 404 everywhere; staff see it.
    let o = s.order(&u, &[(&p, 1)], "tok_visa").await;
    let id = o["id"].as_str().expect("id");
    let eve = s.user();
    for path in [
        format!("/api/v1/orders/{id}/"),
        format!("/api/v1/orders/{id}/events/"),
    ] {
        let (st, _) = s.get(&eve.token, &path).await;
        assert_eq!(st, StatusCode::NOT_FOUND, "{path}");
    }
    assert!(s.payments(&eve.token, id).await.is_empty());
    let (_, list) = s.get(&eve.token, "/api/v1/orders/").await;
    assert_eq!(list["count"], 0);
    let (_, list) = s
        .get(&eve.token, &format!("/api/v1/orders/?user={}", u.id))
        .await;
    assert_eq!(list["count"], 0, "?user= is for staff only");
    let (st, _) = s.get(&s.staff, &format!("/api/v1/orders/{id}/")).await;
    assert_eq!(st, StatusCode::OK);
    let (_, list) = s
        .get(&s.staff, &format!("/api/v1/orders/?user={}", u.id))
        .await;
    assert_eq!(list["count"], 1);
    let (st, _) = s.get(&u.token, "/api/v1/orders/not-a-uuid/").await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    s.final_order(&u.token, id).await;
    assert_eq!(s.payments(&s.staff, id).await.len(), 1);
}

async fn sse_delivers_confirmed(s: &Shop) {
    let p = s.product("2.00", 5).await;
    let u = s.user();
    let o = s.order(&u, &[(&p, 1)], "tok_visa").await;
    let id = o["id"].as_str().expect("id");
    let r =
        s.p.http
            .get(s.p.url(&format!("/api/v1/orders/{id}/events/")))
            .bearer_auth(&u.token)
            .send()
            .await
            .expect("sse");
    assert_eq!(r.status(), StatusCode::OK);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap_or_default()
            .starts_with("text/event-stream")
    );
    // The stream closes after the final status, so the whole body arrives.
    let text = tokio::time::timeout(std::time::Duration::from_secs(20), r.text())
        .await
        .expect("stream closes after a final status")
        .expect("body");
    let events: Vec<Value> = text
        .lines()
        .filter_map(|l| l.strip_prefix("data:"))
        .map(|d| serde_json::from_str(d.trim()).expect("event json"))
        .collect();
    assert!(!events.is_empty(), "{text}");
    assert_eq!(
        events.last().expect("last")["status"],
        "confirmed",
        "{text}"
    );
    assert!(events.iter().all(|e| e["order_id"] == id));
}

async fn checkout(store: Store) {
    let Some(s) = Shop::start(store).await else {
        return;
    };
    happy_path(&s).await;
    declined_timeout_out_of_stock(&s).await;
    cancel_refunds_and_restocks(&s).await;
    idempotency(&s).await;
    validation_and_idor(&s).await;
    sse_delivers_confirmed(&s).await;
    s.p.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn checkout_sqlite() {
    checkout(Store::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn checkout_postgres() {
    checkout(Store::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checkout_postgres_rabbitmq() {
    checkout(Store::PostgresRabbitMq).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checkout_postgres_nats() {
    checkout(Store::PostgresNats).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checkout_postgres_redis() {
    checkout(Store::PostgresRedis).await;
}

async fn oversell(store: Store) {
    let Some(s) = Shop::start(store).await else {
        return;
    };
    let p = s.product("4.00", 25).await;
    let users: Vec<_> = (0..100).map(|_| s.user()).collect();
    let placed = futures::future::join_all(users.iter().map(|u| {
        let (p, s) = (p.clone(), &s);
        async move { s.order(u, &[(&p, 1)], "tok_visa").await }
    }))
    .await;
    let mut by_status: BTreeMap<String, usize> = BTreeMap::new();
    for (u, o) in users.iter().zip(&placed) {
        let done = s.final_order(&u.token, o["id"].as_str().expect("id")).await;
        let key = format!(
            "{}/{}",
            done["status"].as_str().unwrap_or_default(),
            done["status_reason"].as_str().unwrap_or("-")
        );
        *by_status.entry(key).or_insert(0) += 1;
    }
    assert_eq!(by_status.get("confirmed/-"), Some(&25), "{by_status:?}");
    assert_eq!(
        by_status.get("rejected/out_of_stock"),
        Some(&75),
        "{by_status:?}"
    );
    assert_eq!(s.stock(&p).await, 0);
    let counts = s.payment_counts().await;
    assert_eq!(counts.get("succeeded"), Some(&25), "{counts:?}");
    assert_eq!(counts.get("refunded"), None, "no refunds needed");
    s.p.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn oversell_sqlite() {
    oversell(Store::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn oversell_postgres() {
    oversell(Store::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn oversell_postgres_rabbitmq() {
    oversell(Store::PostgresRabbitMq).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn oversell_postgres_redis() {
    oversell(Store::PostgresRedis).await;
}

/// Stops the whole platform while 40 orders are mid-saga, starts a new one
/// on the same data, and checks that every order ends correctly and that
/// stock and payments agree with the outcomes.
async fn crash_resume(store: Store) {
    if !store.available().await {
        return;
    }
    let issuer = issuer::Issuer::start().await;
    let dir = tempfile::tempdir().expect("dir");
    // Slow charges, so the stop lands while many orders are mid-saga.
    let slow = "[payments]\nprovider_timeout_ms = 1000\nlatency_ms = 150\n\
        [orders]\nsaga_interval_ms = 200\ncharge_retry_ms = 100\nlease_ms = 2000\n";
    let config = shop::config(store, &issuer, dir.path(), slow).await;
    let s = Shop::on(common::start_in(dir, config.clone()).await, issuer);
    let p = s.product("6.00", 20).await;
    let u = s.user();
    let tokens = ["tok_visa", "tok_visa", "tok_chargeDeclined", "tok_timeout"];
    let placed = futures::future::join_all((0..40).map(|i| {
        let (p, u, s) = (p.clone(), &u, &s);
        async move { s.order(u, &[(&p, 1)], tokens[i % tokens.len()]).await }
    }))
    .await;
    let ids: Vec<String> = placed
        .iter()
        .map(|o| o["id"].as_str().expect("id").to_string())
        .collect();
    // Stop at once, while orders are pending or awaiting payment.
    let mut in_flight = 0;
    for st in ["pending", "awaiting_payment"] {
        let (_, list) = s
            .get(&s.staff, &format!("/api/v1/orders/?status={st}"))
            .await;
        in_flight += list["count"].as_i64().unwrap_or(0);
    }
    assert!(in_flight > 0, "the stop must land mid-saga");
    let (issuer, dir) = (s.issuer, s.p.stop_keep().await);
    let s = Shop::on(common::start_in(dir, config).await, issuer);
    let mut confirmed = 0;
    for (i, id) in ids.iter().enumerate() {
        let o = s.final_order(&u.token, id).await;
        let reason = o["status_reason"].as_str().unwrap_or("-");
        match (
            tokens[i % tokens.len()],
            o["status"].as_str().unwrap_or_default(),
        ) {
            ("tok_visa", "confirmed") => confirmed += 1,
            (_, "rejected") if reason == "out_of_stock" => {}
            ("tok_chargeDeclined", "rejected") => assert_eq!(reason, "payment_declined"),
            ("tok_timeout", "rejected") => assert_eq!(reason, "payment_timeout"),
            (t, st) => panic!("order {id} with {t} ended {st}/{reason}"),
        }
        let h = statuses(&o);
        assert_eq!(h.first().map(String::as_str), Some("pending"));
        assert_eq!(h.iter().filter(|x| *x == "pending").count(), 1, "{h:?}");
    }
    assert!(confirmed > 0);
    assert_eq!(
        s.stock(&p).await,
        20 - confirmed as i64,
        "sold units = confirmed quantities"
    );
    let counts = s.payment_counts().await;
    assert_eq!(
        counts.get("succeeded").copied().unwrap_or(0),
        confirmed,
        "{counts:?}"
    );
    assert_eq!(counts.get("refunded"), None);
    s.p.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn crash_resume_sqlite() {
    crash_resume(Store::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn crash_resume_postgres() {
    crash_resume(Store::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn crash_resume_postgres_rabbitmq() {
    crash_resume(Store::PostgresRabbitMq).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn crash_resume_postgres_nats() {
    crash_resume(Store::PostgresNats).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn crash_resume_postgres_redis() {
    crash_resume(Store::PostgresRedis).await;
}

fn parse_time(t: &str) -> f64 {
    let t = time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339)
        .expect("rfc3339");
    t.unix_timestamp_nanos() as f64 / 1e9
}

/// Places `n` orders from 16 concurrent shoppers and reports checkouts/s
/// (placed → confirmed) and p50/p99 time to confirmation, from the orders'
/// own history timestamps. Run: `cargo test -p bazaar --release --test
/// orders bench -- --ignored --nocapture`.
async fn bench(store: Store, n: usize) {
    let Some(s) = Shop::start(store).await else {
        return;
    };
    let p = s.product("1.00", 1_000_000).await;
    let start = std::time::Instant::now();
    let users: Vec<_> = (0..16).map(|_| s.user()).collect();
    let per = n / users.len();
    let ids: Vec<(usize, String)> =
        futures::future::join_all(users.iter().enumerate().map(|(i, u)| {
            let (p, s) = (p.clone(), &s);
            async move {
                let mut ids = Vec::new();
                for _ in 0..per {
                    let o = s.order(u, &[(&p, 1)], "tok_visa").await;
                    ids.push((i, o["id"].as_str().expect("id").to_string()));
                }
                ids
            }
        }))
        .await
        .into_iter()
        .flatten()
        .collect();
    let mut latencies = Vec::new();
    let mut last_confirmed = 0f64;
    let mut first_placed = f64::MAX;
    for (i, id) in &ids {
        let o = s.final_order(&users[*i].token, id).await;
        assert_eq!(o["status"], "confirmed");
        let h = o["history"].as_array().expect("history");
        let placed = parse_time(h[0]["at"].as_str().expect("at"));
        let done = parse_time(h.last().expect("last")["at"].as_str().expect("at"));
        first_placed = first_placed.min(placed);
        last_confirmed = last_confirmed.max(done);
        latencies.push(done - placed);
    }
    let wall = start.elapsed().as_secs_f64();
    latencies.sort_by(f64::total_cmp);
    let pct = |q: f64| latencies[((latencies.len() as f64 - 1.0) * q).round() as usize] * 1000.0;
    println!(
        "BENCH {store:?}: {} checkouts, {:.1} checkouts/s (first placed → last confirmed), \
         wall {:.2}s, time to confirmation p50 {:.1} ms, p99 {:.1} ms",
        ids.len(),
        ids.len() as f64 / (last_confirmed - first_placed),
        wall,
        pct(0.5),
        pct(0.99)
    );
    s.p.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "benchmark; run with --ignored --nocapture"]
async fn bench_checkout_sqlite() {
    bench(Store::Sqlite, 400).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "benchmark; run with --ignored --nocapture"]
async fn bench_checkout_postgres() {
    bench(Store::Postgres, 400).await;
}
