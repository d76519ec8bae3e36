//! The gateway's merged `GET /openapi.json`, in front of the real services
//! on SQLite: every service contributes, every SPEC §3 public route is there
//! with its methods and nothing else, no `/internal/` path, every `$ref`
//! resolves — and each documented route is really served, with no
//! undocumented method on it.

use crate::common;

use std::collections::{BTreeMap, BTreeSet};

use bazaar_kit::ServiceName;
use bazaar_kit::openapi::{lint, operations};
use common::{Store, TestPlatform};
use reqwest::{Method, StatusCode};
use serde_json::Value;

/// SPEC §3, every public route and method, as the gateway publishes them.
const SPEC: &[(&str, &[&str])] = &[
    ("/api/v1/auth/register/", &["POST"]),
    ("/api/v1/auth/token/", &["POST"]),
    ("/api/v1/auth/token/refresh/", &["POST"]),
    ("/api/v1/auth/logout/", &["POST"]),
    ("/api/v1/auth/service-token/", &["POST"]),
    ("/api/v1/users/me/", &["GET", "PATCH"]),
    ("/api/v1/users/", &["GET"]),
    ("/api/v1/users/{id}/", &["GET"]),
    ("/.well-known/jwks.json", &["GET"]),
    ("/.well-known/openid-configuration", &["GET"]),
    // RFC 8414 metadata and the discovery document's authorization endpoint.
    ("/.well-known/oauth-authorization-server", &["GET"]),
    ("/api/v1/auth/authorize/", &["GET"]),
    ("/api/v1/categories/", &["GET", "POST"]),
    ("/api/v1/products/", &["GET", "POST"]),
    ("/api/v1/products/{id}/", &["GET", "PUT", "PATCH", "DELETE"]),
    ("/api/v1/orders/", &["GET", "POST"]),
    ("/api/v1/orders/{id}/", &["GET"]),
    ("/api/v1/orders/{id}/cancel/", &["POST"]),
    ("/api/v1/orders/{id}/events/", &["GET"]),
    ("/api/v1/payments/", &["GET"]),
    ("/api/v1/notifications/", &["GET"]),
];

const SERVICES: [ServiceName; 5] = [
    ServiceName::Identity,
    ServiceName::Catalog,
    ServiceName::Orders,
    ServiceName::Payments,
    ServiceName::Notifications,
];

async fn get_json(p: &TestPlatform, url: String) -> Value {
    let r = p.http.get(&url).send().await.expect("GET");
    assert_eq!(r.status(), StatusCode::OK, "{url}");
    r.json().await.expect("JSON")
}

#[tokio::test]
async fn merged_document_covers_the_public_api() {
    let p = common::start(Store::Sqlite)
        .await
        .expect("sqlite needs no server");
    let doc = get_json(&p, p.url("/openapi.json")).await;

    assert_eq!(doc["openapi"], "3.1.0");
    let sources: BTreeSet<&str> = doc["x-bazaar-sources"]
        .as_array()
        .expect("x-bazaar-sources")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(
        sources,
        SERVICES.iter().map(|s| s.as_str()).collect::<BTreeSet<_>>()
    );

    let want: BTreeSet<(String, String)> = SPEC
        .iter()
        .flat_map(|(path, methods)| methods.iter().map(|m| (path.to_string(), m.to_string())))
        .collect();
    let have = operations(&doc);
    assert_eq!(
        have.difference(&want).collect::<Vec<_>>(),
        Vec::<&(String, String)>::new(),
        "documented but not in SPEC §3"
    );
    assert_eq!(
        want.difference(&have).collect::<Vec<_>>(),
        Vec::<&(String, String)>::new(),
        "in SPEC §3 but not documented"
    );
    let paths = doc["paths"].as_object().expect("paths");
    assert!(paths.keys().all(|k| !k.contains("/internal/")));
    // Every $ref resolves, every security scheme is defined, every response
    // is described, operation ids are unique across services.
    assert_eq!(lint(&doc), Vec::<String>::new());
    assert_eq!(
        doc["components"]["securitySchemes"][bazaar_kit::openapi::BEARER]["scheme"],
        "bearer",
        "the services' bearer scheme survives the merge"
    );

    // The merge keeps the first definition of a component name, so two
    // services must never define one name differently.
    let mut seen: BTreeMap<(String, String), (ServiceName, Value)> = BTreeMap::new();
    let mut own = Vec::new();
    for service in SERVICES {
        let d = get_json(&p, format!("{}/openapi.json", p.service_url(service))).await;
        for (kind, entries) in d["components"].as_object().into_iter().flatten() {
            for (name, value) in entries.as_object().into_iter().flatten() {
                match seen.get(&(kind.clone(), name.clone())) {
                    Some((other, v)) => assert_eq!(
                        v, value,
                        "components.{kind}.{name}: {other} and {service} differ"
                    ),
                    None => {
                        seen.insert((kind.clone(), name.clone()), (service, value.clone()));
                    }
                }
            }
        }
        own.push((service, d));
    }

    // Each service really serves what it documents, and nothing more on
    // those paths: an undocumented method is a 405 (straight at the
    // service: the gateway answers 401 to an anonymous protected call).
    let id = uuid::Uuid::now_v7().to_string();
    for (service, d) in &own {
        let base = p.service_url(*service);
        let documented = operations(d);
        let paths: BTreeSet<&String> = documented.iter().map(|(path, _)| path).collect();
        for path in paths {
            let url = format!("{base}{}", path.replace("{id}", &id));
            for method in ["GET", "POST", "PUT", "PATCH", "DELETE"] {
                let m = Method::from_bytes(method.as_bytes()).expect("method");
                let mut request = p.http.request(m, &url);
                if method != "GET" && method != "DELETE" {
                    request = request.json(&serde_json::json!({}));
                }
                let status = request.send().await.expect("probe").status();
                if documented.contains(&(path.clone(), method.to_string())) {
                    assert_ne!(
                        status,
                        StatusCode::METHOD_NOT_ALLOWED,
                        "{service}: {method} {path} documented, not served"
                    );
                    if !path.contains('{') {
                        assert_ne!(
                            status,
                            StatusCode::NOT_FOUND,
                            "{service}: {method} {path} documented, not routed"
                        );
                    }
                } else {
                    assert_eq!(
                        status,
                        StatusCode::METHOD_NOT_ALLOWED,
                        "{service}: {method} {path} served but not documented"
                    );
                }
            }
        }
    }
    p.stop().await;
}

/// One probe: a query string, a body (content type, text) and what it is.
type Probe = (
    &'static str,
    Option<(&'static str, &'static str)>,
    &'static str,
);

/// The statuses an operation documents.
fn documented_statuses(doc: &Value, path: &str, method: &str) -> BTreeSet<u16> {
    doc["paths"][path][method.to_lowercase()]["responses"]
        .as_object()
        .into_iter()
        .flatten()
        .filter_map(|(status, _)| status.parse().ok())
        .collect()
}

/// Every answer a service gives on its documented routes — anonymous, as a
/// shopper and as staff; with an empty JSON object, a non-JSON body, a
/// malformed one, and out-of-range pages — has a documented status, and
/// every error comes in a media type documented for its status
/// (problem+json; OAuth's JSON errors on the token endpoints). Then the
/// same probes through the gateway against the merged document.
#[tokio::test]
async fn every_answer_has_a_documented_status() {
    let p = common::start(Store::Sqlite)
        .await
        .expect("sqlite needs no server");
    let shopper = p.register_and_login("probe").await;
    let staff = p.staff_user("probestaff").await;
    let id = uuid::Uuid::now_v7().to_string();
    let mut targets: Vec<(String, String, Value)> = Vec::new();
    for service in SERVICES {
        let doc = get_json(&p, format!("{}/openapi.json", p.service_url(service))).await;
        targets.push((service.as_str().to_string(), p.service_url(service), doc));
    }
    let merged = get_json(&p, p.url("/openapi.json")).await;
    targets.push(("gateway".into(), p.url(""), merged));

    let mut undocumented = Vec::new();
    let mut probes = 0;
    for (who, base, doc) in &targets {
        for (path, method) in operations(doc) {
            let op = &doc["paths"][&path][method.to_lowercase()];
            let has_body = op.get("requestBody").is_some();
            let paged = op["parameters"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|p| p["name"] == "page");
            let url = format!("{base}{}", path.replace("{id}", &id));
            let mut variants: Vec<Probe> = vec![("", None, "plain")];
            if has_body {
                variants = vec![
                    ("", Some(("application/json", "{}")), "empty object"),
                    ("", Some(("text/plain", "hello")), "not JSON"),
                    ("", Some(("application/json", "{\"a\": ")), "malformed JSON"),
                    ("", Some(("application/json", "[1]")), "an array"),
                ];
            }
            if paged {
                variants.extend([
                    ("?page=0", None, "page 0"),
                    ("?page=99999", None, "past the end"),
                    ("?page_size=1000", None, "page too large"),
                ]);
            }
            for token in [None, Some(&shopper.access), Some(&staff.access)] {
                for (query, body, what) in &variants {
                    let m = Method::from_bytes(method.as_bytes()).expect("method");
                    let mut request = p.http.request(m, format!("{url}{query}"));
                    if let Some(t) = token {
                        request = request.bearer_auth(t);
                    }
                    if let Some((content_type, text)) = body {
                        request = request
                            .header("content-type", *content_type)
                            .body(text.to_string());
                    }
                    let response = request.send().await.expect("probe");
                    let status = response.status().as_u16();
                    let content_type = response
                        .headers()
                        .get("content-type")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or_default()
                        .to_string();
                    probes += 1;
                    let as_who = if token.is_none() {
                        "anonymous"
                    } else {
                        "with a token"
                    };
                    if !documented_statuses(doc, &path, &method).contains(&status) {
                        undocumented.push(format!(
                            "{who}: {method} {path}{query} ({what}, {as_who}) → {status}, undocumented"
                        ));
                    }
                    let media = content_type.split(';').next().unwrap_or_default().trim();
                    let documented_media = op["responses"][status.to_string()]["content"]
                        .as_object()
                        .is_some_and(|c| c.contains_key(media));
                    if status >= 400 && !documented_media {
                        undocumented.push(format!(
                            "{who}: {method} {path}{query} ({what}, {as_who}) → {status} as {content_type:?}"
                        ));
                    }
                }
            }
        }
    }
    assert!(probes > 300, "{probes} probes");
    assert_eq!(undocumented, Vec::<String>::new());
    p.stop().await;
}
