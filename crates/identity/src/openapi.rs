//! The OpenAPI document of identity's public routes.

use bazaar_kit::openapi::{BearerAuth, Contract, Link, Links};
use utoipa::OpenApi;

use crate::routes::{UserOut, auth, users, wellknown};

/// register → token (the same credentials) → refresh / logout (its refresh
/// token) and me (its access token, as the bearer).
const LINKS: Links = Links(&[
    Link {
        from: "register",
        status: "201",
        name: "LogIn",
        to: "token",
        parameters: &[],
        body: Some(
            r#"{"username": "$request.body#/username", "password": "$request.body#/password"}"#,
        ),
    },
    Link {
        from: "token",
        status: "200",
        name: "Me",
        to: "me",
        parameters: &[],
        body: None,
    },
    Link {
        from: "token",
        status: "200",
        name: "Refresh",
        to: "refresh",
        parameters: &[],
        body: Some(r#"{"refresh": "$response.body#/refresh"}"#),
    },
    Link {
        from: "token",
        status: "200",
        name: "LogOut",
        to: "logout",
        parameters: &[],
        body: Some(r#"{"refresh": "$response.body#/refresh"}"#),
    },
]);

#[derive(OpenApi)]
#[openapi(
    info(title = "Bazaar identity", description = "Users, tokens and keys (SPEC §3 identity)."),
    paths(
        auth::register, auth::token, auth::refresh, auth::logout, auth::service_token,
        users::me, users::update_me, users::list, users::detail,
        wellknown::jwks, wellknown::openid_configuration,
        wellknown::oauth_authorization_server, wellknown::authorize,
    ),
    components(schemas(UserOut, auth::RegisterBody, auth::TokenBody, auth::TokenPair,
        auth::Refreshed, auth::RefreshBody, auth::ServiceTokenBody, auth::ServiceTokenOut,
        users::MePatch, crate::routes::oauth::OAuthErrorBody)),
    modifiers(&BearerAuth, &Contract, &LINKS),
    tags((name = "identity", description = "Users, tokens and keys"))
)]
struct Doc;

/// The document.
pub fn doc() -> utoipa::openapi::OpenApi {
    Doc::openapi()
}
