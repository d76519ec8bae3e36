//! `GET /api/v1/notifications/` through the gateway, with tokens from a
//! stand-in issuer.

use bazaar_kit::ServiceName;
use bazaar_kit::events::Envelope;
use reqwest::StatusCode;
use serde_json::{Value, json};

use super::common::{self, Store, TestPlatform};
use super::{notifications_db, publish, unique, user_registered, wait_status, with_notifications};
use crate::tokens;

pub async fn list_requires_a_token(store: Store) {
    let Some(p) = common::start(store).await else {
        return;
    };
    let r = p
        .http
        .get(p.url("/api/v1/notifications/"))
        .send()
        .await
        .expect("list");
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(r.headers()["www-authenticate"], "Bearer");
    assert_eq!(r.headers()["content-type"], "application/problem+json");
    p.stop().await;
}

pub async fn get_list(p: &TestPlatform, token: &str, query: &str) -> (StatusCode, Value) {
    let r = p
        .http
        .get(p.url(&format!("/api/v1/notifications/{query}")))
        .bearer_auth(token)
        .send()
        .await
        .expect("list");
    let status = r.status();
    (status, r.json().await.expect("json body"))
}

pub async fn list_shows_own_newest_first_and_staff_may_filter(store: Store) {
    let issuer = tokens::Issuer::start().await;
    let issuer_url = issuer.url.clone();
    let Some(p) = common::start_with(store, move |c| {
        with_notifications(c, "email_backend = \"memory\"\npoll_interval_ms = 50");
        c.identity.url = Some(issuer_url);
    })
    .await
    else {
        return;
    };
    let db = notifications_db(&p).await;
    let (ann_id, ann_email, ann) = user_registered(&unique("ann"));
    let (ben_id, ben_email, ben) = user_registered(&unique("ben"));
    publish(&db, &ann).await;
    publish(&db, &ben).await;
    // Three order emails for ann after her welcome.
    let mut orders = Vec::new();
    for _ in 0..3 {
        let order = Envelope::new(
            "order.confirmed",
            1,
            ServiceName::Orders,
            json!({"order_id": uuid::Uuid::now_v7().to_string(), "user_id": ann_id,
                   "status": "confirmed", "total": "5.00", "currency": "USD", "items": []}),
        );
        wait_status(&db, &ann.id, "sent").await;
        publish(&db, &order).await;
        wait_status(&db, &order.id, "sent").await;
        orders.push(order);
    }
    wait_status(&db, &ben.id, "sent").await;
    let ann_token = issuer.access(&ann_id, "ann", false);
    let ben_token = issuer.access(&ben_id, "ben", false);
    let staff_token = issuer.access(&uuid::Uuid::now_v7().to_string(), "root", true);

    let (status, body) = get_list(&p, &ann_token, "?page_size=2").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["count"], 4);
    assert_eq!(body["previous"], Value::Null);
    assert!(
        body["next"]
            .as_str()
            .expect("next")
            .ends_with("/api/v1/notifications/?page_size=2&page=2"),
        "{body}"
    );
    let results = body["results"].as_array().expect("results");
    assert_eq!(results.len(), 2);
    let first = results[0].as_object().expect("object");
    let mut keys: Vec<&str> = first.keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "body",
            "channel",
            "created_at",
            "id",
            "kind",
            "sent_at",
            "status",
            "subject",
            "to"
        ]
    );
    assert_eq!(first["kind"], "order_confirmed");
    assert_eq!(first["channel"], "email");
    assert_eq!(first["to"], ann_email.as_str());
    assert_eq!(first["status"], "sent");
    assert!(first["sent_at"].is_string());
    let (_, page2) = get_list(&p, &ann_token, "?page_size=2&page=2").await;
    let last = &page2["results"][1];
    assert_eq!(last["kind"], "welcome", "oldest last: {page2}");
    assert!(
        last["body"]
            .as_str()
            .expect("body")
            .contains("Welcome to Bazaar")
    );
    let all: Vec<String> = results
        .iter()
        .chain(page2["results"].as_array().expect("results"))
        .map(|n| n["created_at"].as_str().expect("created_at").to_string())
        .collect();
    let mut sorted = all.clone();
    sorted.sort_by(|a, b| b.cmp(a));
    assert_eq!(all, sorted, "newest first");
    let (status, _) = get_list(&p, &ann_token, "?page_size=2&page=3").await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // Ben sees only his own welcome; asking for ann's is refused.
    let (_, body) = get_list(&p, &ben_token, "").await;
    assert_eq!(body["count"], 1);
    assert_eq!(body["results"][0]["to"], ben_email.as_str());
    let (status, body) = get_list(&p, &ben_token, &format!("?user={ann_id}")).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    let (status, body) = get_list(&p, &ben_token, "?user=not-a-uuid").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body["errors"]["user"].is_array(), "{body}");

    // Staff may look at anyone's.
    let (status, body) = get_list(&p, &staff_token, &format!("?user={ann_id}")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["count"], 4);
    let (_, body) = get_list(&p, &staff_token, "").await;
    assert_eq!(body["count"], 0, "staff's own list is their own");
    p.stop().await;
}
