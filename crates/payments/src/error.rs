//! The payments service's errors, rendered as problem+json by the kit.

use axum::response::{IntoResponse, Response};
use bazaar_kit::Problem;

/// Everything a payments handler can fail with.
#[derive(Debug, thiserror::Error)]
pub enum PaymentsError {
    /// Already a problem (validation, auth).
    #[error("{}", .0.detail)]
    Problem(Problem),
    /// The provider did not answer; the caller retries with the same order.
    #[error("provider timed out")]
    ProviderTimeout,
    /// Another charge of this order is with the provider right now.
    #[error("charge in progress")]
    InProgress,
    /// Storage failed.
    #[error(transparent)]
    Db(#[from] sqlx::Error),
}

impl From<Problem> for PaymentsError {
    fn from(p: Problem) -> Self {
        Self::Problem(p)
    }
}

impl From<PaymentsError> for Problem {
    fn from(e: PaymentsError) -> Self {
        match e {
            PaymentsError::Problem(p) => p,
            PaymentsError::ProviderTimeout => Problem::gateway_timeout(
                "The payment provider did not answer; retry with the same order_id.",
            ),
            PaymentsError::InProgress => {
                Problem::unavailable("A charge of this order is in progress; retry shortly.")
                    .with_retry_after(1)
            }
            PaymentsError::Db(e) => Problem::from(e),
        }
    }
}

impl IntoResponse for PaymentsError {
    fn into_response(self) -> Response {
        Problem::from(self).into_response()
    }
}
