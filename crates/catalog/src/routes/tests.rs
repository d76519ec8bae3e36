//! Router-level tests (`oneshot`, no server): validation and who may call
//! what.

use axum::http::StatusCode;
use bazaar_kit::ServiceName;
use bazaar_kit::testing::TestApp;
use serde_json::json;

async fn app() -> TestApp {
    TestApp::build(ServiceName::Catalog, crate::build).await
}

#[tokio::test]
async fn reading_is_public_and_writing_needs_staff() {
    let app = app().await;
    let (status, page) = app.send("GET", "/api/v1/products/", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(page["count"], 0);
    let (status, _) = app.send("GET", "/api/v1/categories/", None).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = app
        .send("POST", "/api/v1/products/", Some(json!({"sku": "A-1"})))
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = app
        .send(
            "POST",
            "/api/v1/categories/",
            Some(json!({"name": "Books"})),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn an_unknown_product_is_404_and_reservations_are_not_on_http() {
    let app = app().await;
    let id = uuid::Uuid::now_v7();
    let (status, problem) = app
        .send("GET", &format!("/api/v1/products/{id}/"), None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(problem["detail"], "Not found.");
    let (status, _) = app
        .send(
            "POST",
            "/internal/reservations",
            Some(json!({"order_id": "o", "items": []})),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "reservations are internal gRPC"
    );
}
