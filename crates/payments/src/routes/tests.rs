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
async fn charges_and_refunds_are_not_on_http() {
    // They are internal gRPC (`grpc.rs`), on their own port.
    let app = app().await;
    for path in ["/internal/payments/charge", "/internal/payments/refund"] {
        let (status, _) = app.send("POST", path, Some(json!({"order_id": "o"}))).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
    }
}
