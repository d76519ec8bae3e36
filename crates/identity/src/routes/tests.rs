//! Router-level tests (`oneshot`, no server): validation and who may call
//! what.

use axum::http::StatusCode;
use bazaar_kit::ServiceName;
use bazaar_kit::testing::TestApp;
use serde_json::json;

async fn app() -> TestApp {
    TestApp::build(ServiceName::Identity, crate::build).await
}

#[tokio::test]
async fn registration_names_every_bad_field() {
    let app = app().await;
    let body = json!({"username": "", "email": "not-an-email", "password": "x"});
    let (status, problem) = app.send("POST", "/api/v1/auth/register/", Some(body)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    for field in ["username", "email", "password"] {
        assert!(problem["errors"][field].is_array(), "{field}: {problem}");
    }
}

#[tokio::test]
async fn user_routes_need_a_token() {
    let app = app().await;
    let id = uuid::Uuid::now_v7();
    for path in [
        "/api/v1/users/".to_string(),
        "/api/v1/users/me/".to_string(),
        format!("/api/v1/users/{id}/"),
    ] {
        let (status, _) = app.send("GET", &path, None).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{path}");
    }
}
