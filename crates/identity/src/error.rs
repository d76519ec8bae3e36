//! Identity's one error type, rendered as problem+json by the kit.

use axum::response::{IntoResponse, Response};
use bazaar_kit::Problem;
use bazaar_kit::error::FieldErrors;

use crate::signing::keys::KeyError;

/// Everything a handler can fail with.
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    /// 400 with DRF-style field errors.
    #[error("invalid input")]
    Validation(FieldErrors),
    /// 401: wrong username or password (never says which).
    #[error("bad credentials")]
    BadCredentials,
    /// 401: a refresh token that is unknown, expired, used or revoked.
    #[error("refresh token not valid")]
    TokenInvalid,
    /// 401: unknown client or wrong client secret.
    #[error("bad client credentials")]
    BadClient,
    /// 400: a grant type other than `client_credentials`.
    #[error("unsupported grant type")]
    UnsupportedGrant,
    /// 429: too many failed logins; retry after this many seconds.
    #[error("throttled")]
    Throttled(u64),
    /// 404.
    #[error("not found")]
    NotFound,
    /// An error already shaped as a problem (from the kit's extractors).
    #[error("{}", .0.detail)]
    Problem(Problem),
    /// Database failure.
    #[error(transparent)]
    Sql(#[from] sqlx::Error),
    /// Signing key failure.
    #[error(transparent)]
    Keys(#[from] KeyError),
    /// Anything else that is our fault.
    #[error("{0}")]
    Internal(String),
}

impl IdentityError {
    /// 400 with one field error.
    pub fn field(field: &str, message: impl Into<String>) -> Self {
        let mut errors = FieldErrors::new();
        errors.insert(field.into(), vec![message.into()]);
        Self::Validation(errors)
    }
}

impl From<Problem> for IdentityError {
    fn from(p: Problem) -> Self {
        Self::Problem(p)
    }
}

impl From<IdentityError> for Problem {
    fn from(e: IdentityError) -> Self {
        match e {
            IdentityError::Validation(errors) => Problem::validation(errors),
            IdentityError::BadCredentials => {
                Problem::unauthorized("No active account found with the given credentials")
            }
            IdentityError::TokenInvalid => Problem::unauthorized("Token is invalid or expired"),
            IdentityError::BadClient => Problem::unauthorized("Invalid client credentials."),
            IdentityError::UnsupportedGrant => Problem::field(
                "grant_type",
                "Unsupported grant type; use \"client_credentials\".",
            ),
            IdentityError::Throttled(secs) => Problem::too_many_requests(secs),
            IdentityError::NotFound => Problem::not_found(),
            IdentityError::Problem(p) => p,
            IdentityError::Sql(e) => Problem::internal(e),
            IdentityError::Keys(e) => Problem::internal(e),
            IdentityError::Internal(e) => Problem::internal(e),
        }
    }
}

impl IntoResponse for IdentityError {
    fn into_response(self) -> Response {
        Problem::from(self).into_response()
    }
}

/// Handler result.
pub type Result<T, E = IdentityError> = std::result::Result<T, E>;
