//! The OpenAPI document of identity's public routes.

use bazaar_kit::openapi::BearerAuth;
use utoipa::OpenApi;

use crate::routes::{UserOut, auth, users, wellknown};

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
        users::MePatch)),
    modifiers(&BearerAuth),
    tags((name = "identity"))
)]
struct Doc;

/// The document.
pub fn doc() -> utoipa::openapi::OpenApi {
    Doc::openapi()
}
