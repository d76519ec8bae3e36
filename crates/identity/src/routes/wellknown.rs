//! `/.well-known/`: the JWKS and OpenID discovery document.

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use bazaar_kit::extract::{Json, RequestUrl};
use serde_json::json;

use crate::AppState;
use crate::error::Result;
use crate::signing::keys;

/// The public signing keys: active, next and recently retired.
#[utoipa::path(get, path = "/.well-known/jwks.json", tag = "identity", responses((status = 200, description = "JWK set")))]
#[tracing::instrument(skip_all)]
pub async fn jwks(State(state): State<AppState>) -> Result<Response> {
    let set = keys::jwks(&state.db).await?;
    let mut response = Json(set).into_response();
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("public, max-age=60"),
    );
    Ok(response)
}

/// The issuer identifier: the URL this identity is reached under (through
/// the gateway in a deployment: `X-Forwarded-Proto`/`-Host` are honoured),
/// or `[identity] issuer` when set.
fn issuer(state: &AppState, url: &url::Url) -> String {
    match &state.settings.issuer {
        Some(i) => i.trim_end_matches('/').to_string(),
        None => url.origin().ascii_serialization(),
    }
}

/// What the OAuth 2.0 side of this provider really implements (RFC 8414
/// and OpenID Connect Discovery share these fields).
fn metadata(issuer: &str) -> serde_json::Value {
    json!({
        "issuer": issuer,
        "jwks_uri": format!("{issuer}/.well-known/jwks.json"),
        "token_endpoint": format!("{issuer}/api/v1/auth/token/"),
        "grant_types_supported": ["password", "refresh_token", "client_credentials"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        "response_types_supported": ["none"],
        "scopes_supported": ["service", "identity:read", "catalog:read", "catalog:reserve",
            "payments:charge", "payments:refund"],
        "service_documentation": format!("{issuer}/docs"),
    })
}

/// OpenID Connect Discovery 1.0. `authorization_endpoint` is required
/// there; there is no interactive sign-in yet, so it answers every request
/// with RFC 6749's `unsupported_response_type` (and `response_types_supported`
/// is `["none"]`). No ID tokens are issued: access tokens are EdDSA JWTs.
#[utoipa::path(get, path = "/.well-known/openid-configuration", tag = "identity", responses((status = 200, description = "Discovery document")))]
pub async fn openid_configuration(
    State(state): State<AppState>,
    RequestUrl(url): RequestUrl,
) -> Json<serde_json::Value> {
    let issuer = issuer(&state, &url);
    let mut doc = metadata(&issuer);
    if let Some(map) = doc.as_object_mut() {
        map.insert(
            "authorization_endpoint".into(),
            json!(format!("{issuer}/api/v1/auth/authorize/")),
        );
        map.insert("subject_types_supported".into(), json!(["public"]));
        map.insert(
            "id_token_signing_alg_values_supported".into(),
            json!(["EdDSA"]),
        );
        map.insert(
            "claims_supported".into(),
            json!([
                "iss", "aud", "sub", "exp", "iat", "jti", "username", "is_staff"
            ]),
        );
    }
    Json(doc)
}

/// OAuth 2.0 Authorization Server Metadata (RFC 8414): the same provider,
/// without the OpenID fields (no authorization-endpoint grant is offered,
/// so none is listed).
#[utoipa::path(get, path = "/.well-known/oauth-authorization-server", tag = "identity", responses((status = 200, description = "RFC 8414 metadata")))]
pub async fn oauth_authorization_server(
    State(state): State<AppState>,
    RequestUrl(url): RequestUrl,
) -> Json<serde_json::Value> {
    Json(metadata(&issuer(&state, &url)))
}

/// The authorization endpoint of the discovery document: no interactive
/// flow exists, so every request gets RFC 6749 §4.1.2.1's error, as JSON
/// (there is no registered redirect URI to send it to).
#[utoipa::path(get, path = "/api/v1/auth/authorize/", tag = "identity", responses((status = 400, description = "always: `unsupported_response_type` (tokens come from the token endpoint)",
        content_type = "application/json", body = super::oauth::OAuthErrorBody)))]
pub async fn authorize() -> Response {
    let mut response = (
        axum::http::StatusCode::BAD_REQUEST,
        axum::Json(json!({
            "error": "unsupported_response_type",
            "error_description": "Bazaar has no interactive sign-in; get tokens at the token endpoint \
                (grant types password, refresh_token, client_credentials)",
        })),
    )
        .into_response();
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("no-store"),
    );
    response
}
