//! What every service's OpenAPI document shares: the bearer security
//! scheme its protected operations name, and checks its tests (and the
//! platform's) run on a document.

use std::collections::BTreeSet;

use serde_json::Value;
use utoipa::Modify;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};

/// The security scheme protected operations name: `security(("bearer" = []))`.
pub const BEARER: &str = "bearer";

/// Adds the [`BEARER`] scheme (a JWT access token from identity) to a
/// document: `#[openapi(modifiers(&BearerAuth))]`.
pub struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            BEARER,
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .description(Some("An access token from `POST /api/v1/auth/token/`."))
                    .build(),
            ),
        );
    }
}

/// HTTP methods an OpenAPI path item may hold, lowercase.
pub(crate) const METHODS: [&str; 8] = [
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

/// Every `(path, method)` a document describes, method uppercase.
pub fn operations(doc: &Value) -> BTreeSet<(String, String)> {
    let mut out = BTreeSet::new();
    if let Some(paths) = doc.get("paths").and_then(Value::as_object) {
        for (path, item) in paths {
            for method in METHODS {
                if item.get(method).is_some() {
                    out.insert((path.clone(), method.to_uppercase()));
                }
            }
        }
    }
    out
}

/// How a service's document disagrees with the `(path, METHOD)` pairs it
/// routes, one line each, followed by [`lint`]'s findings; empty when the
/// document describes exactly those routes and is sound.
pub fn mismatches<'a>(
    doc: &Value,
    routes: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> Vec<String> {
    let want: BTreeSet<(String, String)> = routes
        .into_iter()
        .map(|(p, m)| (p.to_string(), m.to_string()))
        .collect();
    let have = operations(doc);
    let mut problems: Vec<String> = want
        .difference(&have)
        .map(|(p, m)| format!("routed but undocumented: {m} {p}"))
        .chain(
            have.difference(&want)
                .map(|(p, m)| format!("documented but not routed: {m} {p}")),
        )
        .collect();
    problems.extend(lint(doc));
    problems
}

/// What is wrong with a document, one line each (empty when sound):
/// `$ref`s naming no component, operations requiring an undefined security
/// scheme, responses without the required `description`, duplicate
/// `operationId`s, and `/internal/` paths (never public).
pub fn lint(doc: &Value) -> Vec<String> {
    let mut problems = Vec::new();
    let mut refs = Vec::new();
    collect_refs(doc, &mut refs);
    for r in refs {
        let resolves = r
            .strip_prefix('#')
            .is_some_and(|p| p.starts_with("/components/") && doc.pointer(p).is_some());
        if !resolves {
            problems.push(format!("unresolved $ref {r}"));
        }
    }
    let schemes = doc
        .pointer("/components/securitySchemes")
        .and_then(Value::as_object);
    let mut ids = BTreeSet::new();
    for (path, item) in doc
        .get("paths")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
    {
        if path.contains("/internal/") {
            problems.push(format!("internal path {path}"));
        }
        for method in METHODS {
            let Some(op) = item.get(method) else {
                continue;
            };
            let at = format!("{} {path}", method.to_uppercase());
            for requirement in op
                .get("security")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                for name in requirement.as_object().into_iter().flat_map(|r| r.keys()) {
                    if !schemes.is_some_and(|s| s.contains_key(name)) {
                        problems.push(format!("{at}: undefined security scheme {name}"));
                    }
                }
            }
            for (status, response) in op
                .get("responses")
                .and_then(Value::as_object)
                .into_iter()
                .flatten()
            {
                let described = response.get("$ref").is_some()
                    || response
                        .get("description")
                        .and_then(Value::as_str)
                        .is_some_and(|d| !d.is_empty());
                if !described {
                    problems.push(format!("{at}: response {status} has no description"));
                }
            }
            if let Some(id) = op.get("operationId").and_then(Value::as_str)
                && !ids.insert(id.to_string())
            {
                problems.push(format!("{at}: duplicate operationId {id}"));
            }
        }
    }
    problems
}

fn collect_refs(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (key, v) in map {
                match v {
                    Value::String(s) if key == "$ref" => out.push(s.clone()),
                    _ => collect_refs(v, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| collect_refs(v, out)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn mismatches_name_missing_and_extra_routes() {
        let doc = json!({"paths": {"/a/": {"get": {"responses": {"200": {"description": "ok"}}}}}});
        assert_eq!(mismatches(&doc, [("/a/", "GET")]), Vec::<String>::new());
        assert_eq!(
            mismatches(&doc, [("/a/", "POST")]),
            vec![
                "routed but undocumented: POST /a/".to_string(),
                "documented but not routed: GET /a/".to_string(),
            ]
        );
    }

    #[test]
    fn finds_operations_and_problems() {
        let doc = json!({
            "paths": {
                "/a/": {
                    "get": {"operationId": "a", "security": [{"bearer": []}],
                        "responses": {"200": {"description": "ok", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/A"}}}}}},
                    "post": {"operationId": "a", "security": [{"other": []}],
                        "requestBody": {"$ref": "#/components/schemas/B"}, "responses": {"201": {}}},
                },
                "/internal/x": {},
            },
            "components": {"schemas": {"A": {"type": "object"}}, "securitySchemes": {"bearer": {"type": "http"}}},
        });
        let ops = operations(&doc);
        assert_eq!(
            ops,
            BTreeSet::from([("/a/".into(), "GET".into()), ("/a/".into(), "POST".into())])
        );
        let mut problems = lint(&doc);
        problems.sort();
        assert_eq!(
            problems,
            vec![
                "POST /a/: duplicate operationId a",
                "POST /a/: response 201 has no description",
                "POST /a/: undefined security scheme other",
                "internal path /internal/x",
                "unresolved $ref #/components/schemas/B",
            ]
        );
    }

    #[test]
    fn bearer_auth_adds_the_scheme() {
        let mut doc = utoipa::openapi::OpenApi::default();
        BearerAuth.modify(&mut doc);
        let doc = serde_json::to_value(&doc).expect("json");
        assert_eq!(
            doc["components"]["securitySchemes"][BEARER]["scheme"],
            "bearer"
        );
    }
}
