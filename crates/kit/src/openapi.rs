//! What every service's OpenAPI document shares: the bearer security
//! scheme its protected operations name, and checks its tests (and the
//! platform's) run on a document.

use std::collections::BTreeSet;

use serde_json::{Value, json};
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

/// The name of the error body schema every error response refers to.
pub const PROBLEM: &str = "Problem";

/// The media type of every error body.
pub const PROBLEM_JSON: &str = crate::error::PROBLEM_JSON;

/// The [`PROBLEM`] schema: RFC 9457 problem details as the kit renders them
/// (`crate::error::Problem` plus `instance` and `request_id`).
pub fn problem_schema() -> Value {
    json!({
        "type": "object",
        "description": "RFC 9457 problem details (`application/problem+json`), the body of every error response.",
        "required": ["type", "title", "status", "detail", "instance", "request_id"],
        "properties": {
            "type": {"type": "string", "description": "A URI naming the problem kind.",
                "examples": ["https://bazaar.dev/problems/validation-error"]},
            "title": {"type": "string", "description": "Short summary of the kind."},
            "status": {"type": "integer", "minimum": 400, "maximum": 599, "description": "The HTTP status."},
            "detail": {"type": "string", "description": "What went wrong this time."},
            "instance": {"type": "string", "description": "The request path."},
            "request_id": {"type": "string", "description": "The request's `X-Request-Id`."},
            "errors": {
                "type": "object",
                "description": "Validation problems only: field name → messages.",
                "additionalProperties": {"type": "array", "items": {"type": "string"}},
            },
        },
    })
}

/// What each status the kit adds means.
const COMMON: [(u16, &str); 8] = [
    (
        400,
        "Invalid input; `errors` names each offending field or parameter.",
    ),
    (401, "No token, or a bad or expired one."),
    (404, "No such resource (or page)."),
    (413, "The body exceeds the 1 MiB limit."),
    (415, "The body is not `application/json`."),
    (429, "Rate limited; retry after `Retry-After` seconds."),
    (
        503,
        "A service this request needs is unavailable; retry shortly.",
    ),
    (504, "A service this request needs did not answer in time."),
];

/// The statuses every operation can answer, whatever it does: the gateway's
/// rate limit, an upstream that is down, and one too slow (504).
const ALWAYS: [u16; 3] = [429, 503, 504];

/// Makes a document's error responses say what the kit's server does, for
/// every operation: adds the [`PROBLEM`] schema; gives every 4xx/5xx
/// response a problem+json body; adds the statuses the kit and the gateway
/// answer whatever the handler does — 400 (a parameter or body), 401 (a
/// protected operation), 404 (a path parameter, or a page), 413 and 415 (a
/// body), 429, 503, 504 — and gives `page`/`page_size` the bounds
/// [`crate::pagination::PageRequest`] enforces. An operation's own
/// responses (403, 409, 422, ...) are kept with their own descriptions.
/// `#[openapi(modifiers(&BearerAuth, &Contract))]`
pub struct Contract;

impl Modify for Contract {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let Ok(mut doc) = serde_json::to_value(&*openapi) else {
            return;
        };
        harden(&mut doc);
        match serde_json::from_value(doc) {
            Ok(hardened) => *openapi = hardened,
            Err(e) => tracing::error!(error = %e, "openapi: hardened document does not parse"),
        }
    }
}

/// [`Contract`] on a JSON document.
pub fn harden(doc: &mut Value) {
    let Some(root) = doc.as_object_mut() else {
        return;
    };
    let components = root
        .entry("components")
        .or_insert_with(|| json!({}))
        .as_object_mut();
    if let Some(components) = components {
        let schemas = components.entry("schemas").or_insert_with(|| json!({}));
        if let Some(schemas) = schemas.as_object_mut() {
            schemas.insert(PROBLEM.into(), problem_schema());
            refer_page_items(schemas);
        }
    }
    let Some(paths) = root.get_mut("paths").and_then(Value::as_object_mut) else {
        return;
    };
    for item in paths.values_mut() {
        for method in METHODS {
            if let Some(op) = item.get_mut(method).and_then(Value::as_object_mut) {
                harden_operation(op);
            }
        }
    }
}

/// utoipa inlines `T` in `Page<T>` (`Page_Order`); where `T` is also a
/// component of the same content, the page refers to it instead, so the
/// component is used and clients see one named type.
fn refer_page_items(schemas: &mut serde_json::Map<String, Value>) {
    let pages: Vec<(String, String)> = schemas
        .keys()
        .filter_map(|k| Some((k.clone(), k.strip_prefix("Page_")?.to_string())))
        .collect();
    for (page, item) in pages {
        let Some(component) = schemas.get(&item).cloned() else {
            continue;
        };
        if let Some(items) = schemas
            .get_mut(&page)
            .and_then(|p| p.pointer_mut("/properties/results/items"))
            && *items == component
        {
            *items = json!({"$ref": format!("#/components/schemas/{item}")});
        }
    }
}

fn harden_operation(op: &mut serde_json::Map<String, Value>) {
    let params: Vec<(String, String)> = op
        .get("parameters")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|p| {
            Some((
                p.get("name")?.as_str()?.to_string(),
                p.get("in")?.as_str()?.to_string(),
            ))
        })
        .collect();
    if let Some(list) = op.get_mut("parameters").and_then(Value::as_array_mut) {
        for p in list.iter_mut() {
            let bound = match p.get("name").and_then(Value::as_str) {
                Some("page") => Some(crate::pagination::page_schema()),
                Some("page_size") => Some(crate::pagination::page_size_schema()),
                _ => None,
            };
            if let (Some(schema), Some(p)) = (bound, p.as_object_mut()) {
                p.insert("schema".into(), schema);
            }
        }
    }
    let has_body = op.contains_key("requestBody");
    let protected = is_protected(op.get("security"));
    let mut add: Vec<u16> = ALWAYS.to_vec();
    if has_body || params.iter().any(|(_, at)| at == "query" || at == "header") {
        add.push(400);
    }
    if protected {
        add.push(401);
    }
    if params.iter().any(|(n, at)| at == "path" || n == "page") {
        add.push(404);
    }
    if has_body {
        add.extend([413, 415]);
    }
    let responses = op.entry("responses").or_insert_with(|| json!({}));
    let Some(responses) = responses.as_object_mut() else {
        return;
    };
    for status in add {
        let description = COMMON
            .iter()
            .find(|(s, _)| *s == status)
            .map_or("Error.", |(_, d)| *d);
        responses
            .entry(status.to_string())
            .or_insert_with(|| json!({"description": description}));
    }
    for (status, response) in responses.iter_mut() {
        let error = status.starts_with('4') || status.starts_with('5');
        if let Some(r) = response.as_object_mut()
            && error
            && !r.contains_key("$ref")
        {
            // Beside any body the operation documents itself (OAuth's
            // `{error, error_description}`): the kit's and the gateway's
            // own errors are problems whatever the handler.
            if let Some(content) = r
                .entry("content")
                .or_insert_with(|| json!({}))
                .as_object_mut()
            {
                content.insert(
                    PROBLEM_JSON.into(),
                    json!({"schema": {"$ref": format!("#/components/schemas/{PROBLEM}")}}),
                );
            }
        }
    }
    // An open operation says so (`[{}]`: no credentials needed), so a
    // reader never wonders whether security was forgotten.
    op.entry("security").or_insert_with(|| json!([{}]));
}

/// One OpenAPI link: a value of a response of operation `from` feeds the
/// parameters (`path.id`, `query.x`) or the body of operation `to`, so
/// clients (and stateful fuzzers) can chain calls.
pub struct Link {
    /// The `operationId` whose response carries the link.
    pub from: &'static str,
    /// The response status (`"201"`).
    pub status: &'static str,
    /// The link's name.
    pub name: &'static str,
    /// The `operationId` it leads to.
    pub to: &'static str,
    /// Parameter → runtime expression (`("path.id", "$response.body#/id")`).
    pub parameters: &'static [(&'static str, &'static str)],
    /// The request body of `to`, as JSON text whose strings may be runtime
    /// expressions; `None` for none.
    pub body: Option<&'static str>,
}

/// Adds [`Link`]s to a document: `#[openapi(modifiers(&Links(&[...])))]`.
/// A link naming an operation the document lacks is reported by [`lint`].
pub struct Links(pub &'static [Link]);

impl Modify for Links {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        for link in self.0 {
            let mut built = utoipa::openapi::link::LinkBuilder::new()
                .operation_id(link.to)
                .request_body(
                    link.body
                        .and_then(|b| serde_json::from_str::<Value>(b).ok()),
                );
            for (name, expression) in link.parameters {
                built = built.parameter(*name, *expression);
            }
            let built = built.build();
            for item in openapi.paths.paths.values_mut() {
                for op in [
                    &mut item.get,
                    &mut item.put,
                    &mut item.post,
                    &mut item.delete,
                    &mut item.patch,
                ]
                .into_iter()
                .flatten()
                {
                    if op.operation_id.as_deref() != Some(link.from) {
                        continue;
                    }
                    if let Some(utoipa::openapi::RefOr::T(response)) =
                        op.responses.responses.get_mut(link.status)
                    {
                        response.links.insert(
                            link.name.to_string(),
                            utoipa::openapi::RefOr::T(built.clone()),
                        );
                    }
                }
            }
        }
    }
}

/// Whether an operation's `security` requires credentials (a requirement
/// naming a scheme; `[{}]` and none do not).
pub fn is_protected(security: Option<&Value>) -> bool {
    security.and_then(Value::as_array).is_some_and(|s| {
        s.iter()
            .all(|r| r.as_object().is_some_and(|r| !r.is_empty()))
            && !s.is_empty()
    })
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
/// scheme, responses without the required `description`, error responses
/// without a problem+json body ([`Contract`] adds them), links to no
/// operation, duplicate `operationId`s, and `/internal/` paths (never
/// public).
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
    let operation_ids: BTreeSet<&str> = doc
        .get("paths")
        .and_then(Value::as_object)
        .into_iter()
        .flat_map(|p| p.values())
        .flat_map(|item| METHODS.iter().filter_map(|m| item.get(*m)))
        .filter_map(|op| op.get("operationId").and_then(Value::as_str))
        .collect();
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
                let error = status.starts_with('4') || status.starts_with('5');
                if error
                    && response
                        .pointer(&format!(
                            "/content/{}/schema",
                            PROBLEM_JSON.replace('/', "~1")
                        ))
                        .is_none()
                {
                    problems.push(format!(
                        "{at}: error response {status} has no problem+json body"
                    ));
                }
            }
            for (status, response) in op
                .get("responses")
                .and_then(Value::as_object)
                .into_iter()
                .flatten()
            {
                for (name, link) in response
                    .get("links")
                    .and_then(Value::as_object)
                    .into_iter()
                    .flatten()
                {
                    let target = link.get("operationId").and_then(Value::as_str);
                    if !target.is_some_and(|t| operation_ids.contains(t)) {
                        problems.push(format!(
                            "{at}: response {status} link {name} leads to no operation"
                        ));
                    }
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
                        "responses": {"200": {"description": "ok", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/A"}}},
                            "links": {"self": {"operationId": "a"}, "next": {"operationId": "b"}}}}},
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
                "GET /a/: response 200 link next leads to no operation",
                "POST /a/: duplicate operationId a",
                "POST /a/: response 201 has no description",
                "POST /a/: undefined security scheme other",
                "internal path /internal/x",
                "unresolved $ref #/components/schemas/B",
            ]
        );
    }

    #[test]
    fn contract_documents_the_common_errors_with_the_problem_schema() {
        let mut doc = json!({
            "openapi": "3.1.0",
            "info": {"title": "t", "version": "1"},
            "paths": {
                "/a/": {
                    "get": {"parameters": [{"name": "page", "in": "query", "required": false, "schema": {"type": "integer"}}],
                        "responses": {"200": {"description": "ok"}}},
                    "post": {"security": [{"bearer": []}],
                        "requestBody": {"content": {"application/json": {"schema": {"type": "object"}}}},
                        "responses": {"201": {"description": "made"}, "409": {"description": "taken"}}},
                },
                "/a/{id}/": {"delete": {"parameters": [{"name": "id", "in": "path", "required": true, "schema": {"type": "string"}}],
                    "responses": {"204": {"description": "gone"}}}},
            },
            "components": {
                "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
                "schemas": {
                    "Item": {"type": "object", "properties": {"id": {"type": "string"}}},
                    "Page_Item": {"type": "object", "properties": {"results": {"type": "array",
                        "items": {"type": "object", "properties": {"id": {"type": "string"}}}}}},
                },
            },
        });
        let mut typed: utoipa::openapi::OpenApi =
            serde_json::from_value(doc.clone()).expect("typed");
        doc = serde_json::to_value(&typed).expect("json");
        harden(&mut doc);
        Contract.modify(&mut typed);
        assert_eq!(
            serde_json::to_value(&typed).expect("json"),
            doc,
            "the typed round trip keeps every key"
        );
        let statuses = |method: &str, path: &str| -> Vec<String> {
            doc["paths"][path][method]["responses"]
                .as_object()
                .expect("responses")
                .keys()
                .cloned()
                .collect()
        };
        assert_eq!(
            statuses("get", "/a/"),
            ["200", "400", "404", "429", "503", "504"]
        );
        assert_eq!(
            statuses("post", "/a/"),
            [
                "201", "400", "401", "409", "413", "415", "429", "503", "504"
            ]
        );
        assert_eq!(
            statuses("delete", "/a/{id}/"),
            ["204", "404", "429", "503", "504"]
        );
        let conflict = &doc["paths"]["/a/"]["post"]["responses"]["409"];
        assert_eq!(
            conflict["description"], "taken",
            "an operation's own words stay"
        );
        assert_eq!(
            conflict["content"][PROBLEM_JSON]["schema"]["$ref"],
            "#/components/schemas/Problem"
        );
        assert!(
            doc["paths"]["/a/"]["get"]["responses"]["200"]
                .get("content")
                .is_none()
        );
        assert_eq!(
            doc["paths"]["/a/"]["get"]["parameters"][0]["schema"],
            crate::pagination::page_schema()
        );
        assert_eq!(doc["components"]["schemas"][PROBLEM], problem_schema());
        assert_eq!(
            doc["components"]["schemas"]["Page_Item"]["properties"]["results"]["items"],
            json!({"$ref": "#/components/schemas/Item"})
        );
        assert_eq!(
            doc["paths"]["/a/"]["get"]["security"],
            json!([{}]),
            "open, and says so"
        );
        assert!(is_protected(doc["paths"]["/a/"]["post"].get("security")));
        assert!(!is_protected(doc["paths"]["/a/"]["get"].get("security")));
        assert_eq!(lint(&doc), Vec::<String>::new());
    }

    #[test]
    fn links_join_operations() {
        let mut doc: utoipa::openapi::OpenApi = serde_json::from_value(json!({
            "openapi": "3.1.0",
            "info": {"title": "t", "version": "1"},
            "paths": {
                "/a/": {"post": {"operationId": "make", "responses": {"201": {"description": "made"}}}},
                "/a/{id}/": {"get": {"operationId": "read", "responses": {"200": {"description": "it"}}}},
            },
        }))
        .expect("typed");
        const LINKS: Links = Links(&[Link {
            from: "make",
            status: "201",
            name: "Read",
            to: "read",
            parameters: &[("path.id", "$response.body#/id")],
            body: Some(r#"{"name": "$request.body#/name"}"#),
        }]);
        LINKS.modify(&mut doc);
        let doc = serde_json::to_value(&doc).expect("json");
        assert_eq!(
            doc["paths"]["/a/"]["post"]["responses"]["201"]["links"]["Read"],
            json!({"operationId": "read", "parameters": {"path.id": "$response.body#/id"},
                "requestBody": {"name": "$request.body#/name"}})
        );
        assert_eq!(lint(&doc), Vec::<String>::new());
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
