//! Router-level tests (`oneshot`, no server): who may call what.

use axum::http::StatusCode;
use bazaar_kit::ServiceName;
use bazaar_kit::testing::TestApp;

#[tokio::test]
async fn the_email_log_needs_a_token() {
    let app = TestApp::build(ServiceName::Notifications, crate::build).await;
    let (status, problem) = app.send("GET", "/api/v1/notifications/", None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(problem["status"], 401);
}
