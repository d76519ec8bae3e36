//! Access logs of the `bazaar` binary at `info`.

use bazaar_kit::testing::eventually;

use super::Up;

/// One request at `info` leaves exactly one access-log line per service it
/// crossed (gateway, then the service), each with its request id (as sent,
/// unquoted), the trace id the gateway started, route template, status,
/// duration and size; an authenticated request names its user (on the
/// gateway, which pre-verifies the token, and on the service).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_access_line_per_request_and_service() {
    let up = Up::start();
    let http = reqwest::Client::new();
    let rid = format!("access-{}", uuid::Uuid::now_v7());
    let r = http
        .get(format!("{}/api/v1/products/?page_size=1", up.gateway))
        .header("x-request-id", &rid)
        .send()
        .await
        .expect("products");
    assert_eq!(r.status(), 200);
    let lines = eventually(10, "access lines of gateway and catalog", || async {
        let lines = up.access_lines(&rid);
        (lines.len() >= 2).then_some(lines)
    })
    .await;
    // Nothing else comes for it.
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert_eq!(up.access_lines(&rid).len(), 2, "{lines:#?}");
    let by = |service: &str| {
        lines
            .iter()
            .find(|l| l["service"] == service)
            .unwrap_or_else(|| panic!("no {service} access line: {lines:#?}"))
            .clone()
    };
    let (gateway, catalog) = (by("gateway"), by("catalog"));
    let trace_id = gateway["trace_id"].as_str().expect("trace_id").to_string();
    assert_eq!(trace_id.len(), 32, "{gateway}");
    assert_eq!(catalog["trace_id"], trace_id.as_str(), "one trace id");
    for line in [&gateway, &catalog] {
        assert_eq!(line["level"], "INFO");
        assert_eq!(line["message"], "request");
        assert_eq!(line["method"], "GET");
        assert_eq!(line["status"], 200);
        assert_eq!(line["path"], "/api/v1/products/");
        assert!(line["duration_ms"].as_f64().is_some(), "{line}");
        assert!(line["user_id"].is_null(), "anonymous: {line}");
    }
    assert_eq!(catalog["route"], "/api/v1/products");
    assert_eq!(gateway["route"], "/api/{*rest}");
    assert!(
        catalog["bytes"].as_u64().is_some_and(|b| b > 0),
        "{catalog}"
    );

    // An authenticated request names its user on the service that
    // verified the token.
    let password = "Sturdy-Access-Pass-42";
    let username = format!("acc{}", &uuid::Uuid::new_v4().simple().to_string()[..10]);
    let r = http
        .post(format!("{}/api/v1/auth/register/", up.gateway))
        .json(&serde_json::json!({"username": username, "email": format!("{username}@example.com"), "password": password}))
        .send()
        .await
        .expect("register");
    assert_eq!(r.status(), 201);
    let user: serde_json::Value = r.json().await.expect("user");
    let tokens: serde_json::Value = http
        .post(format!("{}/api/v1/auth/token/", up.gateway))
        .json(&serde_json::json!({"username": username, "password": password}))
        .send()
        .await
        .expect("token")
        .json()
        .await
        .expect("tokens");
    let rid = format!("access-me-{}", uuid::Uuid::now_v7());
    let r = http
        .get(format!("{}/api/v1/users/me/", up.gateway))
        .bearer_auth(tokens["access"].as_str().expect("access"))
        .header("x-request-id", &rid)
        .send()
        .await
        .expect("me");
    assert_eq!(r.status(), 200);
    let lines = eventually(10, "access lines of gateway and identity", || async {
        let lines = up.access_lines(&rid);
        (lines.len() >= 2).then_some(lines)
    })
    .await;
    for service in ["gateway", "identity"] {
        let line = lines
            .iter()
            .find(|l| l["service"] == service)
            .unwrap_or_else(|| panic!("no {service} access line: {lines:#?}"));
        assert_eq!(line["user_id"], user["id"], "{line}");
    }
    let identity = lines.iter().find(|l| l["service"] == "identity");
    assert_eq!(
        identity.map(|l| l["route"].clone()),
        Some("/api/v1/users/me".into())
    );
}
