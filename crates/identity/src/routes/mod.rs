//! HTTP routes, one file per resource.

pub mod auth;
pub mod oauth;
pub mod users;
pub mod wellknown;

use std::net::{IpAddr, SocketAddr};

use axum::Router;
use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::routing::{get, post};
use serde::Serialize;
use utoipa::ToSchema;

use crate::AppState;
use crate::store::users::UserRow;

/// Every identity route (paths without the trailing slash; the kit accepts
/// both forms).
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/api/v1/auth/register", post(auth::register))
        .route("/api/v1/auth/token", post(auth::token))
        .route("/api/v1/auth/token/refresh", post(auth::refresh))
        .route("/api/v1/auth/logout", post(auth::logout))
        .route("/api/v1/auth/service-token", post(auth::service_token))
        .route("/api/v1/users", get(users::list))
        .route("/api/v1/users/me", get(users::me).patch(users::update_me))
        .route("/api/v1/users/{id}", get(users::detail))
        .route("/.well-known/jwks.json", get(wellknown::jwks))
        .route(
            "/.well-known/openid-configuration",
            get(wellknown::openid_configuration),
        )
        .route(
            "/.well-known/oauth-authorization-server",
            get(wellknown::oauth_authorization_server),
        )
        .route("/api/v1/auth/authorize", get(wellknown::authorize))
        .with_state(state)
}

/// A user as the public API shows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct UserOut {
    /// UUID.
    pub id: String,
    /// Username.
    pub username: String,
    /// Email address.
    pub email: String,
    /// Staff flag.
    pub is_staff: bool,
    /// RFC 3339 UTC.
    pub date_joined: String,
}

impl From<UserRow> for UserOut {
    fn from(u: UserRow) -> Self {
        Self {
            id: u.id,
            username: u.username,
            email: u.email,
            is_staff: u.is_staff,
            date_joined: u.date_joined,
        }
    }
}

/// The client's IP: the entry the gateway appended to `X-Forwarded-For`
/// (its last one — earlier entries are whatever the client sent, so they
/// cannot be trusted for throttling), else the TCP peer.
#[derive(Debug, Clone)]
pub struct ClientIp(pub String);

impl<S: Send + Sync> FromRequestParts<S> for ClientIp {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let forwarded = parts
            .headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .rfind(|v| !v.is_empty())
            .and_then(|v| v.parse::<IpAddr>().ok());
        let ip = forwarded.or_else(|| {
            parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|c| c.0.ip())
        });
        Ok(ClientIp(ip.map_or_else(
            || "unknown".to_string(),
            |ip| ip.to_string(),
        )))
    }
}

#[cfg(test)]
mod tests;
