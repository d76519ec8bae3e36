//! `GET /openapi.json`: one OpenAPI 3.1 document merged from every
//! upstream's own `/openapi.json` (a service without one is skipped), and
//! `GET /docs`: Swagger UI, every asset served from this binary.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{OriginalUri, Path, Request, State};
use axum::http::{HeaderValue, Uri, header};
use axum::response::{IntoResponse, Redirect, Response};
use bazaar_kit::Problem;
use http_body_util::BodyExt;
use serde_json::{Map, Value, json};

use crate::proxy::Proxy;

/// The merged document, cached for a few seconds.
pub struct Docs {
    proxy: Arc<Proxy>,
    ttl: Duration,
    cached: Mutex<Option<(Instant, Arc<Merged>)>>,
    ui: Arc<utoipa_swagger_ui::Config<'static>>,
}

impl Docs {
    /// Docs over the proxy's upstreams.
    pub fn new(proxy: Arc<Proxy>, ttl: Duration) -> Self {
        Self {
            proxy,
            ttl,
            cached: Mutex::new(None),
            ui: Arc::new(utoipa_swagger_ui::Config::from("/openapi.json")),
        }
    }

    async fn document(&self) -> Arc<Merged> {
        if let Some((at, doc)) = &*self
            .cached
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            && at.elapsed() < self.ttl
        {
            return doc.clone();
        }
        let fetched = futures::future::join_all(
            self.proxy
                .pools
                .iter()
                .map(|pool| async move { (pool.name.clone(), self.fetch(pool).await) }),
        )
        .await;
        let doc = Arc::new(merge(fetched));
        *self
            .cached
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) =
            Some((Instant::now(), doc.clone()));
        doc
    }

    async fn fetch(&self, pool: &crate::pool::Pool) -> Option<Value> {
        let i = pool.pick(&[])?;
        let uri: Uri = format!("{}/openapi.json", pool.instances[i].url)
            .parse()
            .ok()?;
        let request = Request::get(uri).body(Body::empty()).ok()?;
        let response =
            tokio::time::timeout(Duration::from_secs(2), self.proxy.client.request(request))
                .await
                .ok()?
                .ok()?;
        if !response.status().is_success() {
            return None;
        }
        let bytes = tokio::time::timeout(Duration::from_secs(2), response.into_body().collect())
            .await
            .ok()?
            .ok()?
            .to_bytes();
        serde_json::from_slice(&bytes).ok()
    }
}

/// The merged document, or why the services' documents cannot be merged.
pub type Merged = Result<Value, String>;

/// Merges service documents: paths (never `/internal/`), component maps
/// and tags. A component two services both define must be the same
/// (it is kept once); a name defined differently, or a path documented by
/// two services differently, is an error naming both services.
pub fn merge(docs: Vec<(String, Option<Value>)>) -> Merged {
    let mut paths = Map::new();
    let mut components: Map<String, Value> = Map::new();
    let mut owners: std::collections::BTreeMap<String, String> = Default::default();
    let mut tags = Vec::<Value>::new();
    let mut sources = Vec::new();
    let mut put =
        |map: &mut Map<String, Value>, at: String, name: &str, v: &Value, service: &str| match map
            .get(name)
        {
            Some(existing) if existing != v => Err(format!(
                "{at}: {} and {service} define it differently",
                owners.get(&at).map_or("?", String::as_str)
            )),
            Some(_) => Ok(()),
            None => {
                map.insert(name.to_string(), v.clone());
                owners.insert(at, service.to_string());
                Ok(())
            }
        };
    for (service, doc) in docs {
        let Some(doc) = doc else {
            continue;
        };
        if let Some(p) = doc.get("paths").and_then(Value::as_object) {
            for (path, item) in p {
                if !crate::routes::is_forbidden_path(path) {
                    put(&mut paths, format!("paths.{path}"), path, item, &service)?;
                }
            }
        }
        if let Some(c) = doc.get("components").and_then(Value::as_object) {
            for (kind, entries) in c {
                let Some(entries) = entries.as_object() else {
                    continue;
                };
                let slot = components
                    .entry(kind.clone())
                    .or_insert_with(|| Value::Object(Map::new()));
                if let Some(slot) = slot.as_object_mut() {
                    for (name, v) in entries {
                        put(slot, format!("components.{kind}.{name}"), name, v, &service)?;
                    }
                }
            }
        }
        if let Some(t) = doc.get("tags").and_then(Value::as_array) {
            for tag in t {
                if !tags.iter().any(|x| x.get("name") == tag.get("name")) {
                    tags.push(tag.clone());
                }
            }
        }
        sources.push(Value::String(service));
    }
    Ok(json!({
        "openapi": "3.1.0",
        "info": {
            "title": "Bazaar API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Every Bazaar service's public API, through the gateway.",
            "license": {"name": env!("CARGO_PKG_LICENSE"), "identifier": env!("CARGO_PKG_LICENSE")},
        },
        "servers": [{"url": "/"}],
        "x-bazaar-sources": sources,
        "tags": tags,
        "paths": paths,
        "components": components,
    }))
}

/// `GET /openapi.json`; a 500 (logged with the clash) when the services'
/// documents disagree.
pub async fn openapi(State(docs): State<Arc<Docs>>) -> Response {
    match &*docs.document().await {
        Ok(doc) => (
            [(header::CONTENT_TYPE, "application/json")],
            doc.to_string(),
        )
            .into_response(),
        Err(clash) => Problem::internal(format!("the API documents cannot be merged: {clash}"))
            .into_response(),
    }
}

/// `GET /docs`: redirects to `/docs/` so relative asset links resolve.
pub async fn ui_index(State(docs): State<Arc<Docs>>, uri: OriginalUri) -> Response {
    if !uri.0.path().ends_with('/') {
        return Redirect::permanent("/docs/").into_response();
    }
    asset(&docs, "")
}

/// `GET /docs/{file}`.
pub async fn ui_asset(State(docs): State<Arc<Docs>>, Path(file): Path<String>) -> Response {
    asset(&docs, &file)
}

/// The documentation page may load only its own assets and the merged
/// document (Swagger UI styles elements inline and draws icons as data
/// URLs); nothing from elsewhere, no framing, no plugins.
pub const DOCS_CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
     img-src 'self' data:; font-src 'self' data:; connect-src 'self'; base-uri 'none'; \
     form-action 'none'; frame-ancestors 'none'";

fn asset(docs: &Docs, file: &str) -> Response {
    match utoipa_swagger_ui::serve(file, docs.ui.clone()) {
        Ok(Some(f)) => {
            let mut response = Response::new(Body::from(f.bytes.into_owned()));
            response.headers_mut().insert(
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static(DOCS_CSP),
            );
            if let Ok(v) = HeaderValue::from_str(&f.content_type) {
                response.headers_mut().insert(header::CONTENT_TYPE, v);
            }
            if f.gzpipped {
                response
                    .headers_mut()
                    .insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
            }
            response
        }
        Ok(None) => Problem::not_found().into_response(),
        Err(e) => Problem::internal(e).into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_keeps_public_paths_and_tolerates_missing_docs() {
        let a = json!({"openapi": "3.1.0", "paths": {"/api/v1/products/": {"get": {}}, "/internal/products/lookup": {"post": {}}},
            "components": {"schemas": {"Product": {"type": "object"}}}, "tags": [{"name": "catalog"}]});
        let b = json!({"paths": {"/api/v1/orders/": {"post": {}}}, "components": {"schemas": {"Order": {}}}});
        let merged = merge(vec![
            ("catalog".into(), Some(a.clone())),
            ("identity".into(), None),
            ("orders".into(), Some(b)),
        ])
        .expect("no clash");
        assert_eq!(merged["openapi"], "3.1.0");
        assert!(merged["paths"]["/api/v1/products/"].is_object());
        assert!(merged["paths"]["/api/v1/orders/"].is_object());
        assert!(merged["paths"].get("/internal/products/lookup").is_none());
        assert!(merged["components"]["schemas"]["Order"].is_object());
        assert!(merged["components"].get("securitySchemes").is_none());
        assert_eq!(merged["x-bazaar-sources"], json!(["catalog", "orders"]));
        // The same component from two services is kept once.
        let c = json!({"components": {"schemas": {"Product": {"type": "object"}, "Problem": {"type": "object"}}}});
        let merged = merge(vec![
            ("catalog".into(), Some(a)),
            ("orders".into(), Some(c)),
        ])
        .expect("identical components merge");
        assert_eq!(
            merged["components"]["schemas"]
                .as_object()
                .map(|m| m.keys().cloned().collect::<Vec<_>>()),
            Some(vec!["Problem".to_string(), "Product".to_string()])
        );
    }

    #[test]
    fn merge_fails_on_a_name_clash() {
        let a = json!({"components": {"schemas": {"Item": {"type": "object"}}}});
        let b = json!({"components": {"schemas": {"Item": {"type": "string"}}}});
        let err = merge(vec![
            ("catalog".into(), Some(a)),
            ("orders".into(), Some(b)),
        ])
        .expect_err("clash");
        assert_eq!(
            err,
            "components.schemas.Item: catalog and orders define it differently"
        );
        let a = json!({"paths": {"/x/": {"get": {"operationId": "a"}}}});
        let b = json!({"paths": {"/x/": {"get": {"operationId": "b"}}}});
        let err = merge(vec![
            ("catalog".into(), Some(a)),
            ("orders".into(), Some(b)),
        ])
        .expect_err("clash");
        assert_eq!(err, "paths./x/: catalog and orders define it differently");
    }
}
