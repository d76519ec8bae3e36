//! The catalog's one error type, rendered as problem+json by the kit.

use axum::response::{IntoResponse, Response};
use bazaar_kit::Problem;
use bazaar_kit::error::FieldErrors;

/// Everything a catalog request can fail with.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    /// No such object.
    #[error("not found")]
    NotFound,
    /// Bad input, by field (400).
    #[error("invalid input: {0:?}")]
    Invalid(FieldErrors),
    /// The request conflicts with the object's state (409).
    #[error("conflict: {0}")]
    Conflict(String),
    /// A database failure.
    #[error("database: {0}")]
    Db(sqlx::Error),
    /// A failure the client cannot fix (500); the cause is logged, never sent.
    #[error("internal: {0}")]
    Internal(String),
}

impl CatalogError {
    /// One field error.
    pub fn field(field: &str, message: impl Into<String>) -> Self {
        let mut errors = FieldErrors::new();
        errors.insert(field.to_string(), vec![message.into()]);
        CatalogError::Invalid(errors)
    }
}

/// Unique-constraint violations become 400 field errors here, in one place.
impl From<sqlx::Error> for CatalogError {
    fn from(e: sqlx::Error) -> Self {
        if let Some(constraint) = bazaar_kit::db::unique_violation(&e) {
            if constraint.contains("sku") {
                return CatalogError::field("sku", "product with this sku already exists.");
            }
            if constraint.contains("slug") {
                return CatalogError::field("slug", "category with this slug already exists.");
            }
        }
        CatalogError::Db(e)
    }
}

impl From<CatalogError> for Problem {
    fn from(e: CatalogError) -> Self {
        match e {
            CatalogError::NotFound => Problem::not_found(),
            CatalogError::Invalid(errors) => Problem::validation(errors),
            CatalogError::Conflict(detail) => Problem::conflict(detail),
            CatalogError::Db(e) => Problem::from(e),
            CatalogError::Internal(cause) => Problem::internal(cause),
        }
    }
}

impl IntoResponse for CatalogError {
    fn into_response(self) -> Response {
        Problem::from(self).into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_failures_are_500_without_their_cause() {
        let problem = Problem::from(CatalogError::Internal("serializing: secret detail".into()));
        assert_eq!(problem.status, 500);
        assert!(!problem.detail.contains("secret"), "{}", problem.detail);
    }
}
