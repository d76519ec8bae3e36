//! Identity through a real OAuth 2.0 / OpenID Connect client library:
//! `scripts/oauth-client-check.py` (authlib) validates the discovery
//! documents and expects RFC 6749 errors to raise, against a platform
//! started here. Needs python3 with authlib (`.ci/run` installs it): the
//! test skips loudly without it, and fails under `CI=true`.

use crate::common;

use bazaar_kit::ServiceName;
use common::Store;

fn authlib_available() -> bool {
    std::process::Command::new("python3")
        .args(["-c", "import authlib, requests"])
        .output()
        .is_ok_and(|o| o.status.success())
}

#[tokio::test]
async fn authlib_accepts_discovery_and_raises_rfc6749_errors() {
    if !authlib_available() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "python3 with authlib is required under CI=true (pip install authlib)"
        );
        eprintln!("SKIPPED: python3 with authlib not available");
        return;
    }
    let p = common::start(Store::Sqlite).await.expect("platform");
    let user = p.register_and_login("olivia").await;
    let secret = p
        .config
        .client_secret(ServiceName::Orders)
        .expect("secret")
        .expose()
        .clone();
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../scripts/oauth-client-check.py"
    );
    // Straight to identity, and through the gateway as a client would.
    for base in [p.service_url(ServiceName::Identity), p.url("")] {
        let out = tokio::process::Command::new("python3")
            .arg(script)
            .args([&base, "orders", &secret, &user.username, &user.password])
            .output()
            .await
            .expect("python3");
        let log = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.status.success(), "against {base}:\n{log}");
        assert!(log.contains("all OAuth client checks passed"), "{log}");
    }
    p.stop().await;
}

/// The same rules without Python: RFC 6749 §5.1/§5.2 shapes and headers.
#[tokio::test]
async fn token_endpoints_speak_rfc6749() {
    use reqwest::StatusCode;
    use serde_json::Value;
    let p = common::start(Store::Sqlite).await.expect("platform");
    let user = p.register_and_login("oscar").await;
    let secret = p
        .config
        .client_secret(ServiceName::Payments)
        .expect("secret")
        .expose()
        .clone();
    let form = |path: &str, body: String, basic: Option<(&str, &str)>| {
        let mut req = p
            .http
            .post(p.url(path))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body);
        if let Some((id, pw)) = basic {
            req = req.basic_auth(id, Some(pw));
        }
        req.send()
    };
    let expect_error = |r: reqwest::Response, status: StatusCode, code: &'static str| async move {
        assert_eq!(r.status(), status, "{code}");
        assert_eq!(r.headers()["cache-control"], "no-store");
        assert_eq!(r.headers()["pragma"], "no-cache");
        assert_eq!(r.headers()["content-type"], "application/json");
        let challenge = r.headers().get("www-authenticate").cloned();
        let body: Value = r.json().await.expect("json");
        assert_eq!(body["error"], code, "{body}");
        assert!(body["error_description"].is_string(), "{body}");
        assert!(body.get("type").is_none(), "not problem+json: {body}");
        challenge
    };
    for path in ["/api/v1/auth/token/", "/api/v1/auth/service-token/"] {
        let r = form(
            path,
            "grant_type=client_credentials".into(),
            Some(("payments", "wrong")),
        )
        .await
        .expect("post");
        let challenge = expect_error(r, StatusCode::UNAUTHORIZED, "invalid_client").await;
        assert!(
            challenge.is_some_and(|c| c.to_str().unwrap_or_default().starts_with("Basic")),
            "{path}: WWW-Authenticate: Basic"
        );
        let r = form(path, "grant_type=authorization_code&code=x".into(), None)
            .await
            .expect("post");
        expect_error(r, StatusCode::BAD_REQUEST, "unsupported_grant_type").await;
        let r = form(path, "scope=x".into(), None).await.expect("post");
        expect_error(r, StatusCode::BAD_REQUEST, "invalid_request").await;
    }
    let r = form(
        "/api/v1/auth/token/",
        format!(
            "grant_type=password&username={}&password=nope",
            user.username
        ),
        None,
    )
    .await
    .expect("post");
    expect_error(r, StatusCode::BAD_REQUEST, "invalid_grant").await;

    let r = form(
        "/api/v1/auth/token/",
        "grant_type=client_credentials".into(),
        Some(("payments", &secret)),
    )
    .await
    .expect("post");
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["pragma"], "no-cache");
    let body: Value = r.json().await.expect("json");
    assert_eq!(body["token_type"], "Bearer");
    assert!(body["access_token"].is_string());

    let r = form(
        "/api/v1/auth/token/",
        format!(
            "grant_type=password&username={}&password={}",
            user.username, user.password
        ),
        None,
    )
    .await
    .expect("post");
    assert_eq!(r.status(), StatusCode::OK);
    let body: Value = r.json().await.expect("json");
    for field in ["access_token", "refresh_token", "token_type", "expires_in"] {
        assert!(!body[field].is_null(), "{field} in {body}");
    }
    // Everything else keeps problem+json.
    let r = p
        .http
        .get(p.url("/api/v1/users/me/"))
        .send()
        .await
        .expect("get");
    assert_eq!(r.headers()["content-type"], "application/problem+json");
    // The discovery document's authorization endpoint answers a standard error.
    let r = p
        .http
        .get(format!(
            "{}/api/v1/auth/authorize/?response_type=code&client_id=x",
            p.service_url(ServiceName::Identity)
        ))
        .send()
        .await
        .expect("get");
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let body: Value = r.json().await.expect("json");
    assert_eq!(body["error"], "unsupported_response_type");
    p.stop().await;
}
