//! Router-level tests (`oneshot`, no server): who may call what.

use axum::http::StatusCode;
use bazaar_kit::ServiceName;
use bazaar_kit::testing::TestApp;
use serde_json::json;

async fn app() -> TestApp {
    TestApp::build(ServiceName::Payments, crate::build).await
}

#[tokio::test]
async fn listing_payments_needs_a_token() {
    let (status, body) = app().await.send("GET", "/api/v1/payments/", None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["status"], 401);
}

#[tokio::test]
async fn charges_and_refunds_need_a_service_token() {
    let app = app().await;
    let charge = json!({"order_id": uuid::Uuid::now_v7().to_string(), "user_id": "u",
        "amount_cents": 100, "currency": "USD", "payment_token": "tok_visa"});
    let (status, _) = app
        .send("POST", "/internal/payments/charge", Some(charge))
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = app
        .send(
            "POST",
            "/internal/payments/refund",
            Some(json!({"order_id": "o"})),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}
