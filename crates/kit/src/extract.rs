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

/// Middleware: reads the whole request body (at most the body limit)
/// before the handler runs. A handler that refuses a request from its
/// headers alone (401, 403) would otherwise answer while the client is
/// still sending, and the server would close the connection under it: the
/// client (the gateway) sees a broken pipe instead of the answer, and a
/// 403 becomes a 503. Past the limit the answer is the 413 problem.
pub async fn read_body_first(req: Request, next: axum::middleware::Next) -> Response {
    let (parts, body) = req.into_parts();
    match axum::body::to_bytes(body, usize::MAX).await {
        Ok(bytes) => {
            next.run(Request::from_parts(parts, axum::body::Body::from(bytes)))
                .await
        }
        Err(_) => Problem::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "Request body exceeds the 1 MiB limit.",
        )
        .into_response(),
    }
}

/// Parses a JSON body, naming the offending field on a type error.
/// A body must be one JSON object: trailing data after it (`{..} garbage`,
/// `{..}{..}`) is a 400, never silently ignored, and so is an array (serde
/// would read `[null, null]` as a struct's fields in order).
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, Problem> {
    let first = bytes.iter().find(|b| !b.is_ascii_whitespace());
    if first.is_some_and(|b| *b != b'{') {
        return Err(Problem::field(
            "non_field_errors",
            "Invalid data; expected a JSON object.",
        ));
    }
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
    (field, public_message(&text))
}

/// A serde error in our words: never a Rust type name (`expected struct
/// RefreshBody`, `u32`) or serde's jargon ("duplicate field", "variant").
/// Messages a deserializer wrote itself (`deserialize_with`) pass as they are.
pub fn public_message(text: &str) -> String {
    let text = match text.rfind(" at line ") {
        Some(i) => &text[..i],
        None => text,
    };
    let quoted = |s: &str| s.split('`').nth(1).unwrap_or_default().to_string();
    if let Some(rest) = text.strip_prefix("unknown variant ") {
        let got = quoted(rest);
        let choices: Vec<&str> = rest
            .split_once("expected ")
            .map(|(_, e)| e.split('`').skip(1).step_by(2).collect())
            .unwrap_or_default();
        return format!(
            "\"{got}\" is not a valid choice; one of: {}.",
            choices.join(", ")
        );
    }
    if let Some(rest) = text.strip_prefix("unknown field ") {
        return format!("Unknown field \"{}\".", quoted(rest));
    }
    if text.starts_with("duplicate field ") {
        return "Give this field once.".into();
    }
    if let Some(expected) = text
        .strip_prefix("invalid type: ")
        .or_else(|| text.strip_prefix("invalid value: "))
        .and_then(|rest| rest.rsplit_once(", expected "))
    {
        let (got, expected) = expected;
        if got == "null" {
            return "This field may not be null.".into();
        }
        return expected_in_words(expected).into();
    }
    if text.starts_with("invalid length ") {
        return "Invalid number of elements.".into();
    }
    if text.contains("invalid digit")
        || text.contains("parse integer")
        || text.contains("too large to fit")
        || text.contains("too small to fit")
    {
        return "A valid integer is required.".into();
    }
    if text.contains("invalid float literal") {
        return "A valid number is required.".into();
    }
    if text.contains("`true` or `false`") {
        return "Must be a valid boolean (`true` or `false`).".into();
    }
    if text.contains("untagged enum") || text.contains("struct ") || text.contains("enum ") {
        return "Invalid value.".into();
    }
    text.to_string()
}

fn expected_in_words(expected: &str) -> &'static str {
    let e = expected.trim();
    if e.contains("struct") || e.contains("map") {
        "Invalid data; expected a JSON object."
    } else if e.contains("sequence") || e.contains("tuple") {
        "Expected a list of items."
    } else if e.contains("bool") {
        "Must be a valid boolean."
    } else if e.starts_with('u') && e[1..].chars().all(|c| c.is_ascii_digit()) {
        "A valid non-negative integer is required."
    } else if (e.starts_with('i') && e[1..].chars().all(|c| c.is_ascii_digit()))
        || e.contains("integer")
    {
        "A valid integer is required."
    } else if e.starts_with('f') && e[1..].chars().all(|c| c.is_ascii_digit())
        || e.contains("number")
    {
        "A valid number is required."
    } else if e.contains("string") || e.contains("char") {
        "Not a valid string."
    } else if e.contains("variant") || e.contains("enum") {
        "Not a valid choice."
    } else {
        "Invalid value."
    }
}

impl<T: Serialize> IntoResponse for Json<T> {
    fn into_response(self) -> Response {
        axum::Json(self.0).into_response()
    }
}

/// For an `Option<T>` body field that may be left out but not sent as
/// `null` (DRF's non-nullable fields):
/// `#[serde(default, deserialize_with = "bazaar_kit::extract::present")]`.
/// Absent is `None`; `null` is a 400 "This field may not be null.".
pub fn present<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: serde::Deserialize<'de>,
{
    T::deserialize(deserializer).map(Some)
}

/// Query-string extractor; a bad value is a 400 naming the parameter, in
/// our words. A repeated parameter: the last value wins, as in DRF (so a
/// field of `T` holds one value, never a list).
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
        let mut pairs: Vec<(String, String)> = Vec::new();
        for (k, v) in url::form_urlencoded::parse(query.as_bytes()).into_owned() {
            pairs.retain(|(seen, _)| *seen != k);
            pairs.push((k, v));
        }
        let encoded = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(&pairs)
            .finish();
        let de = serde_urlencoded::Deserializer::new(form_urlencoded_parse(&encoded));
        serde_path_to_error::deserialize(de)
            .map(Query)
            .map_err(|e| {
                let field = e.path().to_string();
                let field = if field == "." {
                    "query".to_string()
                } else {
                    field
                };
                Problem::field(field, public_message(&e.into_inner().to_string()))
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
    fn errors_never_name_internal_types() {
        #[derive(Deserialize, Debug)]
        #[allow(dead_code)]
        struct RefreshBody {
            refresh: String,
        }
        let err = parse_json::<RefreshBody>(br#""x""#).expect_err("not an object");
        let errors = err.errors.expect("field errors");
        assert_eq!(
            errors["non_field_errors"][0],
            "Invalid data; expected a JSON object."
        );
        let err = parse_json::<Body>(br#"{"items":[{"product_id":"x","quantity":"two"}]}"#)
            .expect_err("bad");
        assert_eq!(
            err.errors.expect("errors")["items[0].quantity"][0],
            "A valid non-negative integer is required."
        );
        let err = parse_json::<RefreshBody>(br#"{"refresh":null}"#).expect_err("null");
        assert_eq!(
            err.errors.expect("errors")["refresh"][0],
            "This field may not be null."
        );
        let err = parse_json::<RefreshBody>(br#"{"refresh":"a","refresh":"b"}"#).expect_err("dup");
        assert_eq!(
            err.errors.expect("errors")["non_field_errors"][0],
            "Give this field once."
        );
        assert_eq!(
            public_message("unknown variant `bogus`, expected one of `pending`, `paid`"),
            "\"bogus\" is not a valid choice; one of: pending, paid."
        );
    }

    #[tokio::test]
    async fn query_repeated_last_wins_and_errors_name_the_parameter() {
        #[derive(Deserialize, Debug, PartialEq)]
        #[serde(rename_all = "lowercase")]
        enum Colour {
            Red,
            Blue,
        }
        #[derive(Deserialize, Debug)]
        struct Q {
            colour: Option<Colour>,
            n: Option<u32>,
        }
        async fn run(q: &str) -> Result<Q, Problem> {
            let request = axum::http::Request::get(format!("/x?{q}"))
                .body(())
                .expect("request");
            let (mut parts, ()) = request.into_parts();
            Query::<Q>::from_request_parts(&mut parts, &())
                .await
                .map(|Query(q)| q)
        }
        let q = run("colour=red&colour=blue&n=1&n=2")
            .await
            .expect("last wins");
        assert_eq!((q.colour, q.n), (Some(Colour::Blue), Some(2)));
        let err = run("colour=green").await.expect_err("not a choice");
        assert_eq!(
            err.errors.expect("errors")["colour"][0],
            "\"green\" is not a valid choice; one of: red, blue."
        );
        let err = run("n=x").await.expect_err("nan");
        assert_eq!(
            err.errors.expect("errors")["n"][0],
            "A valid integer is required."
        );
    }

    #[test]
    fn present_fields_may_be_absent_but_not_null() {
        #[derive(Deserialize, Debug)]
        struct Patch {
            #[serde(default, deserialize_with = "present")]
            name: Option<String>,
        }
        assert_eq!(parse_json::<Patch>(b"{}").expect("absent").name, None);
        assert_eq!(
            parse_json::<Patch>(br#"{"name":"x"}"#)
                .expect("set")
                .name
                .as_deref(),
            Some("x")
        );
        let err = parse_json::<Patch>(br#"{"name":null}"#).expect_err("null");
        assert_eq!(
            err.errors.expect("errors")["name"][0],
            "This field may not be null."
        );
    }

    #[test]
    fn missing_field_is_required() {
        let err = parse_json::<Body>(br#"{"items":[{"product_id":"x"}]}"#).expect_err("bad");
        let errors = err.errors.expect("field errors");
        assert_eq!(errors["items[0].quantity"][0], "This field is required.");
    }

    #[test]
    fn only_an_object_is_a_body() {
        #[derive(Deserialize, Debug)]
        #[allow(dead_code)]
        struct Patch {
            email: Option<String>,
            password: Option<String>,
        }
        for body in [
            &b"[null, null]"[..],
            b" [\"a\", \"b\"]",
            b"\"x\"",
            b"1",
            b"null",
        ] {
            let err = parse_json::<Patch>(body).expect_err("not an object");
            assert_eq!(
                err.errors.expect("errors")["non_field_errors"][0],
                "Invalid data; expected a JSON object.",
                "{}",
                String::from_utf8_lossy(body)
            );
        }
        assert!(parse_json::<Patch>(b" {}").is_ok());
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
