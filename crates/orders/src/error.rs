//! The orders service's errors, rendered as problem+json by the kit.

use axum::response::{IntoResponse, Response};
use bazaar_kit::Problem;
use bazaar_kit::client::ClientError;

/// Everything an orders handler can fail with.
#[derive(Debug, thiserror::Error)]
pub enum OrdersError {
    /// Already a problem (validation, auth, not found, conflict).
    #[error("{}", .0.detail)]
    Problem(Problem),
    /// Catalog (or another upstream) failed: 503/504, never a half-made order.
    #[error(transparent)]
    Upstream(#[from] ClientError),
    /// Storage failed.
    #[error(transparent)]
    Db(#[from] sqlx::Error),
}

impl From<Problem> for OrdersError {
    fn from(p: Problem) -> Self {
        Self::Problem(p)
    }
}

impl From<OrdersError> for Problem {
    fn from(e: OrdersError) -> Self {
        match e {
            OrdersError::Problem(p) => p,
            OrdersError::Upstream(e) => Problem::from(e),
            OrdersError::Db(e) => Problem::from(e),
        }
    }
}

impl IntoResponse for OrdersError {
    fn into_response(self) -> Response {
        Problem::from(self).into_response()
    }
}
