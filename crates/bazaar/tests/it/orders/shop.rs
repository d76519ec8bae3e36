//! A shopper's view of a running platform for the checkout tests: users
//! with tokens, staff-made products, orders, and waiting for outcomes.

use reqwest::{Response, StatusCode};
use serde_json::{Value, json};

use super::issuer::Issuer;
use crate::common::{self, Store, TestPlatform};

/// `[orders]`/`[payments]` keys that keep the tests quick: a short provider
/// timeout, a fast saga timer and short leases (crash recovery).
pub const FAST: &str = "[payments]\nprovider_timeout_ms = 300\n\
    [orders]\nsaga_interval_ms = 200\ncharge_retry_ms = 100\nlease_ms = 2000\n";

/// A platform plus a token issuer and a staff token.
pub struct Shop {
    /// The platform.
    pub p: TestPlatform,
    /// Signs tokens.
    pub issuer: Issuer,
    /// A staff access token.
    pub staff: String,
}

/// A user: id and access token.
pub struct User {
    /// Id.
    pub id: String,
    /// Bearer token.
    pub token: String,
}

/// Test configuration with the stand-in issuer as identity.
/// `extra` TOML keys come after [`FAST`] (a table named again there wins).
pub async fn config(
    store: Store,
    issuer: &Issuer,
    dir: &std::path::Path,
    extra: &str,
) -> bazaar_kit::Config {
    let mut c = common::base_config(dir, store);
    c.identity.url = Some(issuer.url.clone());
    common::with_toml(&mut c, if extra.is_empty() { FAST } else { extra });
    c
}

impl Shop {
    /// Starts a platform; `None` when its servers are absent (skip).
    pub async fn start(store: Store) -> Option<Shop> {
        if !store.available().await {
            return None;
        }
        let issuer = Issuer::start().await;
        let dir = tempfile::tempdir().expect("temp dir");
        let c = config(store, &issuer, dir.path(), "").await;
        let p = common::start_in(dir, c).await;
        Some(Shop::on(p, issuer))
    }

    /// Wraps a running platform.
    pub fn on(p: TestPlatform, issuer: Issuer) -> Shop {
        let staff = issuer.access(&uuid::Uuid::now_v7().to_string(), "admin", true);
        Shop { p, issuer, staff }
    }

    /// A new shopper.
    pub fn user(&self) -> User {
        let id = uuid::Uuid::now_v7().to_string();
        let token = self.issuer.access(&id, &format!("u{}", &id[..8]), false);
        User { id, token }
    }

    /// Creates a product (staff) in category `test` and returns its id.
    pub async fn product(&self, price: &str, stock: i64) -> String {
        // The category may exist already (409/400 then); only its slug matters.
        let _ = self
            .p
            .http
            .post(self.p.url("/api/v1/categories/"))
            .bearer_auth(&self.staff)
            .json(&json!({"name": "Test", "slug": "test"}))
            .send()
            .await;
        let sku = format!("SKU-{}", &uuid::Uuid::new_v4().simple().to_string()[..10]);
        let r = self
            .p
            .http
            .post(self.p.url("/api/v1/products/"))
            .bearer_auth(&self.staff)
            .json(
                &json!({"sku": sku, "name": format!("Widget {sku}"), "description": "x",
                          "price": price, "stock": stock, "category": "test"}),
            )
            .send()
            .await
            .expect("create product");
        assert_eq!(
            r.status(),
            StatusCode::CREATED,
            "{}",
            r.text().await.unwrap_or_default()
        );
        let body: Value = r.json().await.expect("product");
        body["id"].as_str().expect("id").to_string()
    }

    /// The product's current stock (public API).
    pub async fn stock(&self, id: &str) -> i64 {
        let r = self
            .p
            .http
            .get(self.p.url(&format!("/api/v1/products/{id}/")))
            .send()
            .await
            .expect("product");
        let body: Value = r.json().await.expect("product");
        body["stock"].as_i64().expect("stock")
    }

    /// POSTs an order body.
    pub async fn post_order(&self, token: &str, body: &Value, key: Option<&str>) -> Response {
        let mut req = self
            .p
            .http
            .post(self.p.url("/api/v1/orders/"))
            .bearer_auth(token)
            .json(body);
        if let Some(k) = key {
            req = req.header("Idempotency-Key", k);
        }
        req.send().await.expect("post order")
    }

    /// Places an order of `items` (`[(product, qty)]`); asserts 201.
    pub async fn order(&self, user: &User, items: &[(&str, i64)], token: &str) -> Value {
        let r = self
            .post_order(&user.token, &body(items, token), None)
            .await;
        assert_eq!(
            r.status(),
            StatusCode::CREATED,
            "{}",
            r.text().await.unwrap_or_default()
        );
        r.json().await.expect("order")
    }

    /// GET with a token; status and JSON body.
    pub async fn get(&self, token: &str, path: &str) -> (StatusCode, Value) {
        let r = self
            .p
            .http
            .get(self.p.url(path))
            .bearer_auth(token)
            .send()
            .await
            .expect("get");
        let status = r.status();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    /// Waits until the order is final; returns its detail.
    pub async fn final_order(&self, token: &str, id: &str) -> Value {
        common::eventually(30, &format!("order {id} final"), || async {
            let (s, o) = self.get(token, &format!("/api/v1/orders/{id}/")).await;
            let st = o["status"].as_str().unwrap_or_default().to_string();
            (s == StatusCode::OK && ["confirmed", "rejected", "cancelled"].contains(&st.as_str()))
                .then_some(o)
        })
        .await
    }

    /// Payments of an order as the caller sees them.
    pub async fn payments(&self, token: &str, order_id: &str) -> Vec<Value> {
        let (s, page) = self
            .get(token, &format!("/api/v1/payments/?order_id={order_id}"))
            .await;
        assert_eq!(s, StatusCode::OK, "{page}");
        page["results"].as_array().cloned().unwrap_or_default()
    }

    /// Every payment (staff view), by status.
    pub async fn payment_counts(&self) -> std::collections::BTreeMap<String, usize> {
        let mut counts = std::collections::BTreeMap::new();
        let mut page = 1;
        loop {
            let (s, body) = self
                .get(
                    &self.staff,
                    &format!("/api/v1/payments/?page_size=100&page={page}"),
                )
                .await;
            assert_eq!(s, StatusCode::OK, "{body}");
            for p in body["results"].as_array().cloned().unwrap_or_default() {
                *counts
                    .entry(p["status"].as_str().unwrap_or_default().to_string())
                    .or_insert(0) += 1;
            }
            if body["next"].is_null() {
                return counts;
            }
            page += 1;
        }
    }
}

/// A valid order body.
pub fn body(items: &[(&str, i64)], token: &str) -> Value {
    json!({
        "items": items.iter().map(|(id, q)| json!({"product_id": id, "quantity": q})).collect::<Vec<_>>(),
        "payment_token": token,
        "shipping_address": {"name": "Ada Lovelace", "line1": "12 St James's Sq", "city": "London",
                             "postal_code": "SW1Y 4JH", "country": "GB"},
    })
}
