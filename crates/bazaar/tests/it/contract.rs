//! The server is as strict as its document, through the gateway: bounded
//! pages, validated choices, repeated parameters (the last wins), bodies
//! that must be JSON objects, `null` refused where the document says a
//! string, errors in our words (never a Rust type name), and an early
//! refusal of a large body answered as itself (a 403, not a 503).

use crate::common;

use common::{Store, TestPlatform};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

async fn call(
    p: &TestPlatform,
    method: Method,
    path: &str,
    token: &str,
    body: Option<String>,
) -> (StatusCode, Value) {
    let mut request = p.http.request(method, p.url(path)).bearer_auth(token);
    if let Some(body) = body {
        request = request
            .header("content-type", "application/json")
            .body(body);
    }
    let response = request.send().await.expect("request");
    let status = response.status();
    let text = response.text().await.expect("body");
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// No public error text names a Rust type or serde's jargon.
fn in_our_words(body: &Value) {
    let text = body.to_string();
    for internal in [
        "struct",
        "RefreshBody",
        "MePatch",
        "duplicate field",
        "variant",
        "u64",
        "i64",
    ] {
        assert!(!text.contains(internal), "{internal:?} in {text}");
    }
}

#[tokio::test]
async fn the_server_is_as_strict_as_the_document() {
    let p = common::start(Store::Sqlite)
        .await
        .expect("sqlite needs no server");
    let user = p.register_and_login("strict").await;
    let t = user.access.as_str();

    // Pages: a bad page or page size is a 400 naming it; past the end, however
    // far, a 404.
    for (query, param) in [
        ("page=0", "page"),
        ("page=-1", "page"),
        ("page=", "page"),
        ("page_size=0", "page_size"),
        ("page_size=101", "page_size"),
        ("page_size=-1", "page_size"),
        ("page_size=18446744073709551616", "page_size"),
    ] {
        let (status, body) = call(
            &p,
            Method::GET,
            &format!("/api/v1/orders/?{query}"),
            t,
            None,
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}: {body}");
        assert!(body["errors"][param].is_array(), "{query}: {body}");
        in_our_words(&body);
    }
    for query in [
        "page=2",
        "page=18446744073709551615",
        "page=99999999999999999999999",
    ] {
        let (status, body) = call(
            &p,
            Method::GET,
            &format!("/api/v1/orders/?{query}"),
            t,
            None,
        )
        .await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{query}: {body}");
    }
    let (status, body) = call(
        &p,
        Method::GET,
        "/api/v1/orders/?page=last&page_size=100",
        t,
        None,
    )
    .await;
    assert_eq!((status, body["count"].as_u64()), (StatusCode::OK, Some(0)));

    // Choices: an unknown status is a 400 naming `status` and the choices;
    // repeated, the last one wins.
    let (status, body) = call(&p, Method::GET, "/api/v1/orders/?status=bogus", t, None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let message = body["errors"]["status"][0].as_str().expect("status error");
    assert!(
        message.contains("\"bogus\"") && message.contains("pending"),
        "{message}"
    );
    in_our_words(&body);
    let (status, body) = call(
        &p,
        Method::GET,
        "/api/v1/orders/?status=bogus&status=pending",
        t,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    for query in ["in_stock=", "in_stock=maybe", "ordering=", "ordering=stock"] {
        let (status, body) = call(
            &p,
            Method::GET,
            &format!("/api/v1/products/?{query}"),
            t,
            None,
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}: {body}");
        let name = query.split('=').next().unwrap_or_default();
        assert!(body["errors"][name].is_array(), "{query}: {body}");
    }

    // Bodies: a JSON object, with the types the document gives, in our words.
    let (status, body) = call(
        &p,
        Method::POST,
        "/api/v1/auth/logout/",
        t,
        Some("\"x\"".into()),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(
        body["errors"]["non_field_errors"][0],
        "Invalid data; expected a JSON object."
    );
    in_our_words(&body);
    let (status, body) = call(
        &p,
        Method::PATCH,
        "/api/v1/users/me/",
        t,
        Some("[null, null]".into()),
    )
    .await;
    assert_eq!(
        status,
        StatusCode::BAD_REQUEST,
        "an array is no object: {body}"
    );
    in_our_words(&body);
    let (status, body) = call(
        &p,
        Method::POST,
        "/api/v1/auth/logout/",
        t,
        Some(json!({"refresh": 7}).to_string()),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["errors"]["refresh"][0], "Not a valid string.");
    in_our_words(&body);
    let (status, body) = call(
        &p,
        Method::POST,
        "/api/v1/auth/logout/",
        t,
        Some(r#"{"refresh": "a", "refresh": "b"}"#.into()),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    in_our_words(&body);

    // Staff-only writes: `null` for a field the document types as a string
    // is refused, not read as "absent".
    let staff = p.staff_user("strictstaff").await;
    let (status, body) = call(
        &p,
        Method::POST,
        "/api/v1/products/",
        &staff.access,
        Some(
            json!({"sku": "N-1", "name": "Mug", "price": "5.00", "category": "kitchen",
            "description": null})
            .to_string(),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(
        body["errors"]["description"][0],
        "This field may not be null."
    );

    // A shopper's large write to a staff-only route: the 403 arrives whole
    // (the service reads the body before refusing), never a 503.
    let big = json!({"name": "x".repeat(900 * 1024)}).to_string();
    for _ in 0..3 {
        let (status, body) = call(
            &p,
            Method::PUT,
            &format!("/api/v1/products/{}/", uuid::Uuid::now_v7()),
            t,
            Some(big.clone()),
        )
        .await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    }
    p.stop().await;
}
