//! This service's errors, rendered by the kit as problem+json.

use bazaar_kit::Problem;

/// Everything a notifications request can fail with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A client error already worded as a problem.
    #[error("{}", .0.detail)]
    Problem(Problem),
    /// The database failed (logged; the client sees a generic 500).
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
}

impl From<Problem> for Error {
    fn from(p: Problem) -> Self {
        Error::Problem(p)
    }
}

impl From<Error> for Problem {
    fn from(e: Error) -> Self {
        match e {
            Error::Problem(p) => p,
            Error::Db(e) => Problem::from(e),
        }
    }
}

impl axum::response::IntoResponse for Error {
    fn into_response(self) -> axum::response::Response {
        Problem::from(self).into_response()
    }
}
