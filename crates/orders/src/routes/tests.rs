//! Router-level tests (`oneshot`, no server): who may call what.

use axum::http::StatusCode;
use bazaar_kit::ServiceName;
use bazaar_kit::testing::TestApp;
use serde_json::json;

#[tokio::test]
async fn every_order_route_needs_a_token() {
    let app = TestApp::build(ServiceName::Orders, crate::build).await;
    let id = uuid::Uuid::now_v7();
    let order = json!({"items": [{"product_id": id.to_string(), "quantity": 1}],
        "payment_token": "tok_visa", "shipping_address": {}});
    for (method, path, body) in [
        ("POST", "/api/v1/orders/".to_string(), Some(order)),
        ("GET", "/api/v1/orders/".to_string(), None),
        ("GET", format!("/api/v1/orders/{id}/"), None),
        ("POST", format!("/api/v1/orders/{id}/cancel/"), None),
        ("GET", format!("/api/v1/orders/{id}/events/"), None),
    ] {
        let (status, problem) = app.send(method, &path, body).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{method} {path}");
        assert_eq!(problem["status"], 401, "{method} {path}");
    }
}
