//! Extractors whose rejections are problem+json, not axum's plain text.

use std::collections::BTreeMap;

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::{FieldErrors, Problem};

/// JSON body extractor and responder. Rejections: 415 (not JSON), 413 (over
/// the body limit), 400 (malformed JSON, or a field of the wrong type —
/// named in `errors`).
#[derive(Debug, Clone, Copy, Default)]
pub struct Json<T>(pub T);

impl<T, S> FromRequest<S> for Json<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = Problem;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let is_json = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<mime_lite::Mime>().ok())
            .is_some_and(|m| m.is_json());
        if !is_json {
            return Err(Problem::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "Unsupported media type; send the body as application/json.",
            ));
        }
        let bytes = Bytes::from_request(req, state).await.map_err(|rejection| {
            if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                Problem::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "Request body exceeds the 1 MiB limit.",
                )
            } else {
                Problem::bad_request(format!(
                    "Could not read the request body: {}",
                    rejection.body_text()
                ))
            }
        })?;
        parse_json(&bytes).map(Json)
    }
}

/// Parses a JSON body, naming the offending field on a type error.
/// A body must be one JSON value: trailing data after it (`{..} garbage`,
/// `{..}{..}`) is a 400, never silently ignored.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, Problem> {
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut *de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        match inner.classify() {
            serde_json::error::Category::Data => {
                let (field, message) = data_error(&path, &inner);
                let mut errors = FieldErrors::new();
                errors.insert(field, vec![message]);
                Problem::validation(errors)
            }
            _ => Problem::bad_request(format!("JSON parse error - {inner}")),
        }
    })?;
    de.end()
        .map_err(|e| Problem::bad_request(format!("JSON parse error - {e}")))?;
    Ok(value)
}

/// The DRF field name and message of a serde data error. A missing field is
/// reported on the field itself, as DRF does ("This field is required.").
fn data_error(path: &str, e: &serde_json::Error) -> (String, String) {
    let text = e.to_string();
    let text = match text.rfind(" at line ") {
        Some(i) => text[..i].to_string(),
        None => text,
    };
    let base = if path == "." { "" } else { path };
    if let Some(rest) = text.strip_prefix("missing field `") {
        let name = rest.trim_end_matches('`');
        let field = if base.is_empty() {
            name.to_string()
        } else {
            format!("{base}.{name}")
        };
        return (field, "This field is required.".into());
    }
    let field = if base.is_empty() {
        "non_field_errors".to_string()
    } else {
        base.to_string()
    };
    (field, text)
}

impl<T: Serialize> IntoResponse for Json<T> {
    fn into_response(self) -> Response {
        axum::Json(self.0).into_response()
    }
}

/// Query-string extractor; a bad value is a 400 naming the parameter.
#[derive(Debug, Clone, Copy, Default)]
pub struct Query<T>(pub T);

impl<T, S> FromRequestParts<S> for Query<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let query = parts.uri.query().unwrap_or_default();
        let de = serde_urlencoded::Deserializer::new(form_urlencoded_parse(query));
        serde_path_to_error::deserialize(de)
            .map(Query)
            .map_err(|e| {
                let field = e.path().to_string();
                let field = if field == "." {
                    "query".to_string()
                } else {
                    field
                };
                Problem::field(field, e.into_inner().to_string())
            })
    }
}

fn form_urlencoded_parse(query: &str) -> url::form_urlencoded::Parse<'_> {
    url::form_urlencoded::parse(query.as_bytes())
}

/// All query parameters, last value wins.
pub fn query_map(parts_query: Option<&str>) -> BTreeMap<String, String> {
    url::form_urlencoded::parse(parts_query.unwrap_or_default().as_bytes())
        .into_owned()
        .collect()
}

/// The absolute URL the client used, honouring `X-Forwarded-Proto/Host`
/// set by the gateway. Used for pagination links.
#[derive(Debug, Clone)]
pub struct RequestUrl(pub url::Url);

impl<S: Send + Sync> FromRequestParts<S> for RequestUrl {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let header = |name: &str| {
            parts
                .headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(|v| v.split(',').next().unwrap_or_default().trim().to_string())
                .filter(|v| !v.is_empty())
        };
        let proto = header("x-forwarded-proto").unwrap_or_else(|| "http".into());
        let proto = if proto == "https" { "https" } else { "http" };
        let host = header("x-forwarded-host")
            .or_else(|| header("host"))
            .unwrap_or_else(|| "localhost".into());
        let uri = parts
            .extensions
            .get::<axum::extract::OriginalUri>()
            .map_or_else(|| parts.uri.clone(), |o| o.0.clone());
        let path_and_query = uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
        let url = url::Url::parse(&format!("{proto}://{host}{path_and_query}"))
            .map_err(|_| Problem::bad_request("Invalid Host header."))?;
        Ok(RequestUrl(url))
    }
}

/// The request id of the current request (set by the kit's middleware).
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

impl<S: Send + Sync> FromRequestParts<S> for RequestId {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(RequestId(
            parts
                .headers
                .get(crate::http::REQUEST_ID)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_string(),
        ))
    }
}

/// A tiny media-type check: `application/json` or `application/*+json`.
mod mime_lite {
    pub struct Mime(String);

    impl std::str::FromStr for Mime {
        type Err = ();
        fn from_str(s: &str) -> Result<Self, ()> {
            let essence = s
                .split(';')
                .next()
                .unwrap_or_default()
                .trim()
                .to_ascii_lowercase();
            if essence.contains('/') {
                Ok(Mime(essence))
            } else {
                Err(())
            }
        }
    }

    impl Mime {
        pub fn is_json(&self) -> bool {
            self.0 == "application/json"
                || (self.0.starts_with("application/") && self.0.ends_with("+json"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Deserialize, Debug)]
    #[allow(dead_code)]
    struct Line {
        product_id: String,
        quantity: u32,
    }
    #[derive(Deserialize, Debug)]
    #[allow(dead_code)]
    struct Body {
        items: Vec<Line>,
    }

    #[test]
    fn wrong_type_names_the_field() {
        let err = parse_json::<Body>(br#"{"items":[{"product_id":"x","quantity":"two"}]}"#)
            .expect_err("bad");
        assert_eq!(err.status, 400);
        let errors = err.errors.expect("field errors");
        assert!(errors.contains_key("items[0].quantity"), "{errors:?}");
    }

    #[test]
    fn missing_field_is_required() {
        let err = parse_json::<Body>(br#"{"items":[{"product_id":"x"}]}"#).expect_err("bad");
        let errors = err.errors.expect("field errors");
        assert_eq!(errors["items[0].quantity"][0], "This field is required.");
    }

    #[test]
    fn malformed_json_is_400_without_field_errors() {
        let err = parse_json::<Body>(b"{nope").expect_err("bad");
        assert_eq!(err.status, 400);
        assert!(err.errors.is_none());
        assert!(err.detail.starts_with("JSON parse error"));
    }

    #[test]
    fn trailing_data_after_the_value_is_400() {
        let one = br#"{"items":[]}"#;
        assert!(parse_json::<Body>(one).is_ok());
        assert!(
            parse_json::<Body>(b" {\"items\":[]} \r\n\t").is_ok(),
            "white space is fine"
        );
        for body in [
            &br#"{"items":[]} garbage"#[..],
            br#"{"items":[]}{"items":[]}"#,
            br#"{"items":[]}]"#,
            br#"{"items":[]} 1"#,
        ] {
            let err = parse_json::<Body>(body).expect_err("trailing data");
            assert_eq!(err.status, 400, "{}", String::from_utf8_lossy(body));
            assert!(err.detail.contains("trailing"), "{}", err.detail);
        }
    }
}
