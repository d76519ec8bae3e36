//! Notifications through identity and orders: registration and checkout
//! as a client does them, over the gateway.

use reqwest::StatusCode;
use serde_json::{Value, json};

use super::common::{self, Store, TestPlatform};
use super::smtp_sink::{Mode, SmtpSink};
use super::{get_list, platform, smtp_keys, unique};

struct Shopper {
    id: String,
    username: String,
    email: String,
    access: String,
}

async fn register(p: &TestPlatform, prefix: &str) -> Shopper {
    let username = unique(prefix);
    let email = format!("{username}@example.com");
    let password = "correct-horse-battery-9";
    let r = p
        .http
        .post(p.url("/api/v1/auth/register/"))
        .json(&json!({"username": username, "email": email, "password": password}))
        .send()
        .await
        .expect("register");
    assert_eq!(
        r.status(),
        StatusCode::CREATED,
        "{}",
        r.text().await.unwrap_or_default()
    );
    let user: Value = r.json().await.expect("user");
    let r = p
        .http
        .post(p.url("/api/v1/auth/token/"))
        .json(&json!({"username": username, "password": password}))
        .send()
        .await
        .expect("token");
    assert_eq!(r.status(), StatusCode::OK);
    let tokens: Value = r.json().await.expect("tokens");
    Shopper {
        id: user["id"].as_str().expect("id").to_string(),
        username,
        email,
        access: tokens["access"].as_str().expect("access").to_string(),
    }
}

/// The shopper's notifications of `kind` once one is `sent`.
async fn wait_notification(p: &TestPlatform, who: &Shopper, kind: &str) -> Value {
    common::eventually(
        20,
        &format!("{kind} notification of {}", who.username),
        || async {
            let (status, body) = get_list(p, &who.access, "").await;
            assert_eq!(status, StatusCode::OK, "{body}");
            body["results"]
                .as_array()
                .expect("results")
                .iter()
                .find(|n| n["kind"] == kind && n["status"] == "sent")
                .cloned()
        },
    )
    .await
}

pub async fn registration_sends_one_welcome_email_over_smtp(store: Store) {
    let sink = SmtpSink::start(Mode::Accept).await;
    let Some(p) = platform(store, smtp_keys(&sink, "")).await else {
        return;
    };
    let ann = register(&p, "ann").await;
    let ben = register(&p, "ben").await;
    for who in [&ann, &ben] {
        let n = wait_notification(&p, who, "welcome").await;
        assert_eq!(n["to"], who.email.as_str());
        let got = sink.messages_to(&who.email);
        assert_eq!(got.len(), 1, "exactly one welcome email to {}", who.email);
        assert_eq!(
            got[0].header("Subject").as_deref(),
            Some(format!("Welcome to Bazaar, {}!", who.username).as_str())
        );
    }
    assert_eq!(sink.messages().len(), 2);
    p.stop().await;
}

pub async fn new_user_sees_welcome_and_others_do_not(store: Store) {
    let Some(p) = common::start(store).await else {
        return;
    };
    let ann = register(&p, "ann").await;
    let ben = register(&p, "ben").await;
    let n = wait_notification(&p, &ann, "welcome").await;
    assert_eq!(n["channel"], "email");
    assert_eq!(n["to"], ann.email.as_str());
    assert!(
        n["subject"]
            .as_str()
            .expect("subject")
            .contains(&ann.username)
    );
    wait_notification(&p, &ben, "welcome").await;
    let (_, body) = get_list(&p, &ben.access, "").await;
    assert_eq!(body["count"], 1);
    assert!(
        body.to_string().find(&ann.email).is_none(),
        "ben sees nothing of ann's"
    );
    let (status, _) = get_list(&p, &ben.access, &format!("?user={}", ann.id)).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    p.stop().await;
}

pub async fn order_confirmed_after_checkout(store: Store) {
    let Some(p) = common::start(store).await else {
        return;
    };
    let ann = register(&p, "ann").await;
    let ben = register(&p, "ben").await;
    // A product of its own, made by staff through the public API.
    let staff = p.staff_user("notify_admin").await;
    let r = p
        .http
        .post(p.url("/api/v1/categories/"))
        .bearer_auth(&staff.access)
        .json(&json!({"name": "Lamps", "slug": "lamps"}))
        .send()
        .await
        .expect("category");
    assert_eq!(
        r.status(),
        StatusCode::CREATED,
        "{}",
        r.text().await.unwrap_or_default()
    );
    let r = p
        .http
        .post(p.url("/api/v1/products/"))
        .bearer_auth(&staff.access)
        .json(
            &json!({"sku": "LAMP-1", "name": "Brass desk lamp", "description": "Warm light",
                      "price": "24.50", "currency": "USD", "category": "lamps", "stock": 5}),
        )
        .send()
        .await
        .expect("product");
    assert_eq!(
        r.status(),
        StatusCode::CREATED,
        "{}",
        r.text().await.unwrap_or_default()
    );
    let product: Value = r.json().await.expect("product");
    let r = p
        .http
        .post(p.url("/api/v1/orders/"))
        .bearer_auth(&ann.access)
        .json(&json!({
            "items": [{"product_id": product["id"], "quantity": 1}],
            "payment_token": "tok_visa",
            "shipping_address": {"name": "Ann", "line1": "1 Main St", "city": "Springfield",
                                 "postal_code": "12345", "country": "US"}
        }))
        .send()
        .await
        .expect("order");
    assert_eq!(
        r.status(),
        StatusCode::CREATED,
        "{}",
        r.text().await.unwrap_or_default()
    );
    let order: Value = r.json().await.expect("order");
    let n = wait_notification(&p, &ann, "order_confirmed").await;
    assert_eq!(n["to"], ann.email.as_str());
    let body = n["body"].as_str().expect("body");
    assert!(
        body.contains(product["name"].as_str().expect("name")),
        "{body}"
    );
    assert!(
        body.contains(order["total"].as_str().expect("total")),
        "{body}"
    );
    let (_, theirs) = get_list(&p, &ben.access, "").await;
    assert!(
        theirs["results"]
            .as_array()
            .expect("results")
            .iter()
            .all(|n| n["kind"] == "welcome"),
        "{theirs}"
    );
    p.stop().await;
}
