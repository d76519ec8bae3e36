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

/// OpenID Connect discovery (the parts that apply to this provider).
#[utoipa::path(get, path = "/.well-known/openid-configuration", tag = "identity", responses((status = 200, description = "Discovery document")))]
pub async fn openid_configuration(RequestUrl(url): RequestUrl) -> Json<serde_json::Value> {
    let base = url.origin().ascii_serialization();
    Json(json!({
        "issuer": bazaar_kit::auth::ISSUER,
        "jwks_uri": format!("{base}/.well-known/jwks.json"),
        "token_endpoint": format!("{base}/api/v1/auth/token/"),
        "registration_endpoint": format!("{base}/api/v1/auth/register/"),
        "userinfo_endpoint": format!("{base}/api/v1/users/me/"),
        "grant_types_supported": ["password", "refresh_token", "client_credentials"],
        "response_types_supported": ["token"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["EdDSA"],
        "token_endpoint_auth_methods_supported": ["client_secret_post", "client_secret_basic"],
        "claims_supported": ["iss", "aud", "sub", "exp", "iat", "jti", "username", "is_staff"],
    }))
}
