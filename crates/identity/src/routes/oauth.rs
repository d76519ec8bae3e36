//! The token endpoints as OAuth 2.0 (RFC 6749) clients expect them.
//!
//! `POST /api/v1/auth/token/` takes simplejwt's JSON login
//! (`{username, password}` → `{access, refresh, ...}`) and RFC 6749 form
//! requests (`grant_type=password|refresh_token|client_credentials` →
//! `{access_token, token_type, expires_in, ...}`, §5.1);
//! `service-token/` takes client credentials as form or JSON. Both answer
//! errors per §5.2 — `{"error", "error_description"}`, `Cache-Control:
//! no-store`, `Pragma: no-cache`, and `WWW-Authenticate: Basic` with
//! `invalid_client` — while the rest of the API keeps problem+json.
//!
//! Status codes: §5.2's 400 for form requests; simplejwt's (and SPEC's)
//! 401 for a wrong password in a JSON login, which existing clients rely on.

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::{Value, json};

use super::ClientIp;
use super::auth::{self, ServiceTokenBody, TokenBody};
use crate::AppState;
use crate::error::IdentityError;

/// The body of an RFC 6749 §5.2 error, as documented.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub struct OAuthErrorBody {
    /// The error code: `invalid_request`, `invalid_grant`,
    /// `invalid_client`, `unsupported_grant_type`,
    /// `temporarily_unavailable`, `unsupported_response_type`.
    error: String,
    /// What went wrong, for a human.
    error_description: String,
}

/// An RFC 6749 §5.2 error response.
#[derive(Debug)]
pub struct OAuthError {
    status: StatusCode,
    code: &'static str,
    description: String,
    retry_after: Option<u64>,
}

impl OAuthError {
    fn new(status: StatusCode, code: &'static str, description: impl Into<String>) -> Self {
        Self {
            status,
            code,
            description: description.into(),
            retry_after: None,
        }
    }

    fn invalid_request(description: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_request", description)
    }

    /// Maps a handler error; `json_login` keeps simplejwt's 401 for a wrong
    /// password.
    fn from_identity(e: IdentityError, json_login: bool) -> Self {
        let grant_status = if json_login {
            StatusCode::UNAUTHORIZED
        } else {
            StatusCode::BAD_REQUEST
        };
        match e {
            IdentityError::BadCredentials => Self::new(
                grant_status,
                "invalid_grant",
                "No active account found with the given credentials",
            ),
            IdentityError::TokenInvalid => Self::new(
                grant_status,
                "invalid_grant",
                "The refresh token is invalid, expired or revoked.",
            ),
            IdentityError::BadClient => Self::new(
                StatusCode::UNAUTHORIZED,
                "invalid_client",
                "Client authentication failed.",
            ),
            IdentityError::UnsupportedGrant => Self::new(
                StatusCode::BAD_REQUEST,
                "unsupported_grant_type",
                "Use one of password, refresh_token, client_credentials.",
            ),
            IdentityError::Validation(errors) => Self::invalid_request(
                errors
                    .iter()
                    .map(|(field, messages)| format!("{field}: {}", messages.join(" ")))
                    .collect::<Vec<_>>()
                    .join("; "),
            ),
            IdentityError::Throttled(secs) => Self {
                retry_after: Some(secs),
                ..Self::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    "temporarily_unavailable",
                    format!("Too many failed attempts; retry in {secs} seconds."),
                )
            },
            IdentityError::Problem(p) if p.status < 500 => Self::new(
                StatusCode::from_u16(p.status).unwrap_or(StatusCode::BAD_REQUEST),
                "invalid_request",
                match &p.errors {
                    Some(errors) => errors
                        .iter()
                        .map(|(field, messages)| format!("{field}: {}", messages.join(" ")))
                        .collect::<Vec<_>>()
                        .join("; "),
                    None => p.detail,
                },
            ),
            other => {
                tracing::error!(error = %other, "token endpoint failed");
                Self::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "server_error",
                    "The server could not issue a token; try again.",
                )
            }
        }
    }
}

impl IntoResponse for OAuthError {
    fn into_response(self) -> Response {
        let body = json!({"error": self.code, "error_description": self.description});
        let mut response = (self.status, axum::Json(body)).into_response();
        let headers = response.headers_mut();
        if self.code == "invalid_client" {
            headers.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"bazaar\", charset=\"UTF-8\""),
            );
        }
        if let Some(secs) = self.retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        no_cache(response)
    }
}

/// §5.1: token responses (and their errors) are never cached.
fn no_cache(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    response
}

fn ok<T: Serialize>(body: T) -> Response {
    no_cache(axum::Json(body).into_response())
}

fn is_form(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"))
}

/// The request's parameters (form or JSON object), as strings.
fn parameters(
    headers: &HeaderMap,
    body: &[u8],
) -> Result<serde_json::Map<String, Value>, OAuthError> {
    if is_form(headers) {
        let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(body)
            .map_err(|e| OAuthError::invalid_request(format!("Invalid form body: {e}")))?;
        let mut map = serde_json::Map::new();
        for (k, v) in pairs {
            // §3.2: parameters must not be repeated.
            if map.insert(k.clone(), Value::String(v)).is_some() {
                return Err(OAuthError::invalid_request(format!("{k} is repeated")));
            }
        }
        return Ok(map);
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(OAuthError::invalid_request(
            "The body must be a JSON object.",
        )),
        Err(e) => Err(OAuthError::invalid_request(format!(
            "JSON parse error - {e}"
        ))),
    }
}

fn text(params: &serde_json::Map<String, Value>, name: &str) -> Result<String, OAuthError> {
    match params.get(name) {
        // §3.1: a parameter without a value is treated as omitted.
        Some(Value::String(s)) if s.is_empty() => Err(OAuthError::invalid_request(format!(
            "{name}: This field is required."
        ))),
        Some(Value::String(s)) => Ok(s.clone()),
        Some(_) => Err(OAuthError::invalid_request(format!(
            "{name}: must be a string"
        ))),
        None => Err(OAuthError::invalid_request(format!(
            "{name}: This field is required."
        ))),
    }
}

fn optional(params: &serde_json::Map<String, Value>, name: &str) -> Option<String> {
    params
        .get(name)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

/// §5.1's successful response of the password and refresh grants.
#[derive(Serialize)]
struct AccessTokenResponse {
    access_token: String,
    token_type: &'static str,
    expires_in: i64,
    refresh_token: String,
}

/// `POST /api/v1/auth/token/`.
pub async fn token(state: &AppState, ip: &ClientIp, headers: &HeaderMap, body: &[u8]) -> Response {
    let params = match parameters(headers, body) {
        Ok(p) => p,
        Err(e) => return e.into_response(),
    };
    let json_login = !is_form(headers) && !params.contains_key("grant_type");
    match grant(state, ip, headers, params, json_login).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

async fn grant(
    state: &AppState,
    ip: &ClientIp,
    headers: &HeaderMap,
    params: serde_json::Map<String, Value>,
    json_login: bool,
) -> Result<Response, OAuthError> {
    let fail = |e| OAuthError::from_identity(e, json_login);
    if json_login {
        let body = TokenBody {
            username: text(&params, "username")?,
            password: text(&params, "password")?,
        };
        let pair = auth::password_grant(state, ip, body).await.map_err(fail)?;
        return Ok(ok(pair));
    }
    match text(&params, "grant_type")?.as_str() {
        "password" => {
            let body = TokenBody {
                username: text(&params, "username")?,
                password: text(&params, "password")?,
            };
            let pair = auth::password_grant(state, ip, body).await.map_err(fail)?;
            Ok(ok(AccessTokenResponse {
                access_token: pair.access,
                token_type: pair.token_type,
                expires_in: pair.expires_in,
                refresh_token: pair.refresh,
            }))
        }
        "refresh_token" => {
            let refreshed = auth::refresh_grant(state, &text(&params, "refresh_token")?)
                .await
                .map_err(fail)?;
            Ok(ok(AccessTokenResponse {
                access_token: refreshed.access,
                token_type: "Bearer",
                expires_in: state.settings.access_ttl_secs,
                refresh_token: refreshed.refresh,
            }))
        }
        "client_credentials" => client_credentials(state, headers, &params).await,
        _ => Err(fail(IdentityError::UnsupportedGrant)),
    }
}

async fn client_credentials(
    state: &AppState,
    headers: &HeaderMap,
    params: &serde_json::Map<String, Value>,
) -> Result<Response, OAuthError> {
    let body = ServiceTokenBody {
        grant_type: text(params, "grant_type")?,
        client_id: optional(params, "client_id"),
        client_secret: optional(params, "client_secret"),
    };
    let out = auth::client_credentials_grant(state, headers, body)
        .await
        .map_err(|e| OAuthError::from_identity(e, false))?;
    Ok(ok(out))
}

/// `POST /api/v1/auth/service-token/`: client credentials only.
pub async fn service_token(state: &AppState, headers: &HeaderMap, body: &[u8]) -> Response {
    let result = match parameters(headers, body) {
        Ok(params) => match text(&params, "grant_type") {
            Ok(g) if g == "client_credentials" => client_credentials(state, headers, &params).await,
            Ok(_) => Err(OAuthError::from_identity(
                IdentityError::UnsupportedGrant,
                false,
            )),
            Err(e) => Err(e),
        },
        Err(e) => Err(e),
    };
    result.unwrap_or_else(IntoResponse::into_response)
}
