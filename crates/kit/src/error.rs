//! RFC 9457 `application/problem+json` errors.
//!
//! Handlers return [`Problem`] (or a service error enum converted into one).
//! The response carries the problem as an extension; the kit's outermost
//! middleware renders the body, adding `instance` (the request path) and
//! `request_id`. Error responses that did not come from a `Problem` (axum
//! rejections, 404/405 fallbacks, body-limit 413s, timeouts) are rewritten
//! into problems by the same middleware, so clients only ever see one shape.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// The media type of every error body.
pub(crate) const PROBLEM_JSON: &str = "application/problem+json";

/// DRF-style field errors: field name → messages.
pub type FieldErrors = BTreeMap<String, Vec<String>>;

/// An HTTP error as RFC 9457 problem details.
#[derive(Clone, Debug, Serialize)]
pub struct Problem {
    /// A URI naming the problem kind.
    #[serde(rename = "type")]
    pub kind: String,
    /// Short, human-readable summary of the kind.
    pub title: String,
    /// HTTP status code.
    pub status: u16,
    /// What went wrong this time.
    pub detail: String,
    /// Field errors (validation problems only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub errors: Option<FieldErrors>,
    /// Extra headers (`WWW-Authenticate`, `Retry-After`, ...).
    #[serde(skip)]
    pub headers: Vec<(HeaderName, HeaderValue)>,
}

impl Problem {
    /// A problem of `status` with the status's canonical title.
    pub fn new(status: StatusCode, detail: impl Into<String>) -> Self {
        let title = status.canonical_reason().unwrap_or("Error").to_string();
        Self {
            kind: format!("https://bazaar.dev/problems/{}", slug(&title)),
            title,
            status: status.as_u16(),
            detail: detail.into(),
            errors: None,
            headers: Vec::new(),
        }
    }

    /// 400 with DRF-style field errors.
    pub fn validation(errors: FieldErrors) -> Self {
        let mut p = Self::new(StatusCode::BAD_REQUEST, "Invalid input.");
        p.kind = "https://bazaar.dev/problems/validation-error".into();
        p.title = "Validation error".into();
        p.errors = Some(errors);
        p
    }

    /// 400 with one field error.
    pub fn field(field: impl Into<String>, message: impl Into<String>) -> Self {
        let mut errors = FieldErrors::new();
        errors.insert(field.into(), vec![message.into()]);
        Self::validation(errors)
    }

    /// 400 without field errors.
    pub fn bad_request(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, detail)
    }

    /// 401 with `WWW-Authenticate: Bearer`.
    pub fn unauthorized(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, detail)
            .with_header(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"))
    }

    /// 403.
    pub fn forbidden(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, detail)
    }

    /// 404 ("Not found.", as DRF says it).
    pub fn not_found() -> Self {
        Self::new(StatusCode::NOT_FOUND, "Not found.")
    }

    /// 409.
    pub fn conflict(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, detail)
    }

    /// 422.
    pub fn unprocessable(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, detail)
    }

    /// 429 with `Retry-After` in seconds.
    pub fn too_many_requests(retry_after_secs: u64) -> Self {
        Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            format!("Request was throttled. Expected available in {retry_after_secs} seconds."),
        )
        .with_retry_after(retry_after_secs)
    }

    /// 503, for a dependency that is down.
    pub fn unavailable(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, detail)
    }

    /// 504, for a dependency that was too slow.
    pub fn gateway_timeout(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::GATEWAY_TIMEOUT, detail)
    }

    /// 500 for a failure the client cannot fix; log `cause`, never send it.
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "internal error");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "An internal error occurred.",
        )
    }

    /// Adds a response header.
    pub fn with_header(mut self, name: HeaderName, value: HeaderValue) -> Self {
        self.headers.push((name, value));
        self
    }

    /// Adds `Retry-After`.
    pub fn with_retry_after(self, secs: u64) -> Self {
        let value = HeaderValue::from(secs.max(1));
        self.with_header(header::RETRY_AFTER, value)
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    /// The body, with the request's path and id.
    pub(crate) fn to_body(&self, instance: &str, request_id: &str) -> serde_json::Value {
        let mut value = serde_json::to_value(self).unwrap_or_default();
        if let Some(map) = value.as_object_mut() {
            map.insert("instance".into(), instance.into());
            map.insert("request_id".into(), request_id.into());
        }
        value
    }

    /// The complete problem+json response for a request to `instance` with
    /// id `request_id`.
    pub fn render(&self, instance: &str, request_id: &str) -> Response {
        let body = self.to_body(instance, request_id).to_string();
        let mut response =
            (self.status(), [(header::CONTENT_TYPE, PROBLEM_JSON)], body).into_response();
        for (name, value) in &self.headers {
            response.headers_mut().append(name, value.clone());
        }
        response
    }
}

fn slug(title: &str) -> String {
    title
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect()
}

/// Marks a response whose body the problem middleware must render.
#[derive(Clone, Debug)]
pub(crate) struct PendingProblem(pub Arc<Problem>);

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let status = self.status();
        let headers = self.headers.clone();
        // A minimal body in case the response escapes the middleware.
        let body = serde_json::to_vec(&self).unwrap_or_default();
        let mut response = (status, [(header::CONTENT_TYPE, PROBLEM_JSON)], body).into_response();
        for (name, value) in headers {
            response.headers_mut().append(name, value);
        }
        response
            .extensions_mut()
            .insert(PendingProblem(Arc::new(self)));
        response
    }
}

impl From<crate::db::DbError> for Problem {
    fn from(e: crate::db::DbError) -> Self {
        Problem::internal(e)
    }
}

impl From<sqlx::Error> for Problem {
    fn from(e: sqlx::Error) -> Self {
        match e {
            sqlx::Error::PoolTimedOut | sqlx::Error::Io(_) | sqlx::Error::PoolClosed => {
                tracing::error!(error = %e, "database unavailable");
                Problem::unavailable("The service's database is unavailable; try again shortly.")
                    .with_retry_after(1)
            }
            other => Problem::internal(other),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation_problem_has_drf_errors() {
        let p = Problem::field(
            "price",
            "Ensure that there are no more than 2 decimal places.",
        );
        let body = p.to_body("/api/v1/products/", "req-1");
        assert_eq!(body["status"], 400);
        assert_eq!(body["title"], "Validation error");
        assert_eq!(body["instance"], "/api/v1/products/");
        assert_eq!(body["request_id"], "req-1");
        assert_eq!(
            body["errors"]["price"][0],
            "Ensure that there are no more than 2 decimal places."
        );
    }

    #[test]
    fn unauthorized_carries_bearer_challenge() {
        let response =
            Problem::unauthorized("Authentication credentials were not provided.").into_response();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(response.headers()[header::WWW_AUTHENTICATE], "Bearer");
        assert_eq!(response.headers()[header::CONTENT_TYPE], PROBLEM_JSON);
    }

    #[test]
    fn throttled_has_retry_after() {
        let response = Problem::too_many_requests(7).into_response();
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(response.headers()[header::RETRY_AFTER], "7");
    }

    #[test]
    fn every_status_has_a_type_and_title() {
        for code in [
            400u16, 401, 403, 404, 409, 413, 415, 422, 429, 500, 503, 504,
        ] {
            let status = StatusCode::from_u16(code).expect("status");
            let body = Problem::new(status, "x").to_body("/", "r");
            assert_eq!(body["status"], code);
            assert!(
                body["type"]
                    .as_str()
                    .is_some_and(|t| t.starts_with("https://"))
            );
            assert!(!body["title"].as_str().unwrap_or_default().is_empty());
        }
    }
}
