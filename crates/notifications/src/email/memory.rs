//! `memory`: keeps sent emails in process memory, in named mailboxes
//! (Django's locmem backend and `mail.outbox`). Tests read them back with
//! [`mailbox`]; give each test its own mailbox name.

use std::collections::HashMap;
use std::sync::{LazyLock, Mutex};

use futures::future::BoxFuture;

use super::{EmailBackend, OutgoingEmail, SendError};

static MAILBOXES: LazyLock<Mutex<HashMap<String, Vec<OutgoingEmail>>>> =
    LazyLock::new(|| Mutex::new(HashMap::new()));

/// Every email the `memory` backend accepted into mailbox `name`, in order.
pub fn mailbox(name: &str) -> Vec<OutgoingEmail> {
    MAILBOXES
        .lock()
        .map(|m| m.get(name).cloned().unwrap_or_default())
        .unwrap_or_default()
}

/// Stores emails in a named in-process mailbox.
pub struct MemoryBackend {
    name: String,
}

impl MemoryBackend {
    /// A backend filling mailbox `name`.
    pub fn new(name: &str) -> Self {
        Self { name: name.into() }
    }
}

impl EmailBackend for MemoryBackend {
    fn send<'a>(&'a self, email: &'a OutgoingEmail) -> BoxFuture<'a, Result<(), SendError>> {
        Box::pin(async move {
            // Same checks a real backend makes on the addresses.
            email.to_message()?;
            let mut boxes = MAILBOXES
                .lock()
                .map_err(|_| SendError::transient("memory mailbox poisoned"))?;
            boxes
                .entry(self.name.clone())
                .or_default()
                .push(email.clone());
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn keeps_messages_per_mailbox() {
        let a = MemoryBackend::new("memory-test-a");
        a.send(&crate::email::tests::sample()).await.expect("sent");
        assert_eq!(mailbox("memory-test-a").len(), 1);
        assert!(mailbox("memory-test-b").is_empty());
    }
}
