//! Email backends, as Django's `EMAIL_BACKEND`: `console`, `file`, `smtp`
//! and `memory`, chosen by `[notifications] email_backend`.

mod console;
mod file;
pub mod memory;
pub mod sender;
mod smtp;

use std::path::Path;
use std::sync::Arc;

use futures::future::BoxFuture;
use lettre::Message;
use lettre::message::{Mailbox, MultiPart};

use crate::config::{BackendKind, NotificationsSettings};

/// One email ready to go; `id` is the notification's id and becomes the
/// `Message-ID`, so a receiver can drop the rare resend after a crash.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutgoingEmail {
    /// Notification id.
    pub id: String,
    /// `From:`.
    pub from: String,
    /// `To:` (one address).
    pub to: String,
    /// Subject line.
    pub subject: String,
    /// Plain-text part.
    pub text: String,
    /// HTML part.
    pub html: String,
}

impl OutgoingEmail {
    /// The `Message-ID` header value.
    pub fn message_id(&self) -> String {
        format!("<{}@notifications.bazaar>", self.id)
    }

    /// The MIME message (multipart/alternative: text, then HTML).
    pub fn to_message(&self) -> Result<Message, SendError> {
        let from: Mailbox = self.from.parse().map_err(|e| {
            SendError::permanent(format!("bad sender address {:?}: {e}", self.from))
        })?;
        let to: Mailbox = self.to.parse().map_err(|e| {
            SendError::permanent(format!("bad recipient address {:?}: {e}", self.to))
        })?;
        Message::builder()
            .from(from)
            .to(to)
            .subject(self.subject.clone())
            .message_id(Some(self.message_id()))
            .multipart(MultiPart::alternative_plain_html(
                self.text.clone(),
                self.html.clone(),
            ))
            .map_err(|e| SendError::permanent(format!("cannot build the message: {e}")))
    }
}

/// Why a send failed, and whether trying again may help.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct SendError {
    /// `true` for 4xx replies, timeouts, refused connections; `false` for
    /// 5xx replies and unusable addresses.
    pub transient: bool,
    /// What happened, kept as the notification's last error.
    pub message: String,
}

impl SendError {
    /// A failure worth retrying.
    pub fn transient(message: impl Into<String>) -> Self {
        Self {
            transient: true,
            message: message.into(),
        }
    }

    /// A failure no retry will fix.
    pub fn permanent(message: impl Into<String>) -> Self {
        Self {
            transient: false,
            message: message.into(),
        }
    }
}

/// Sends emails somewhere.
pub trait EmailBackend: Send + Sync + 'static {
    /// Delivers one email; `Ok` means the backend accepted it.
    fn send<'a>(&'a self, email: &'a OutgoingEmail) -> BoxFuture<'a, Result<(), SendError>>;
}

/// The backend the settings name. `data_dir` anchors the `file` default.
pub fn from_settings(
    settings: &NotificationsSettings,
    data_dir: &Path,
) -> anyhow::Result<Arc<dyn EmailBackend>> {
    Ok(match settings.email_backend {
        BackendKind::Console => Arc::new(console::ConsoleBackend),
        BackendKind::File => {
            let dir = settings
                .email_file_path
                .clone()
                .unwrap_or_else(|| data_dir.join("emails"));
            Arc::new(file::FileBackend::new(dir)?)
        }
        BackendKind::Smtp => Arc::new(smtp::SmtpBackend::new(settings)?),
        BackendKind::Memory => Arc::new(memory::MemoryBackend::new(&settings.memory_mailbox)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn sample() -> OutgoingEmail {
        OutgoingEmail {
            id: "0190a1b2-0000-7000-8000-000000000001".into(),
            from: "Bazaar <no-reply@bazaar.localhost>".into(),
            to: "ada@example.com".into(),
            subject: "Welcome to Bazaar, ada!".into(),
            text: "Hi ada,\n\nWelcome!".into(),
            html: "<p>Hi ada,</p>".into(),
        }
    }

    #[test]
    fn message_has_both_parts_and_our_message_id() {
        let raw =
            String::from_utf8(sample().to_message().expect("builds").formatted()).expect("utf8");
        assert!(
            raw.contains("Message-ID: <0190a1b2-0000-7000-8000-000000000001@notifications.bazaar>"),
            "{raw}"
        );
        assert!(raw.contains("To: ada@example.com"));
        assert!(raw.contains("multipart/alternative"));
        assert!(raw.contains("text/plain"));
        assert!(raw.contains("text/html"));
    }

    #[test]
    fn bad_addresses_are_permanent_failures() {
        let mut email = sample();
        email.to = "not an address".into();
        let err = email.to_message().expect_err("refused");
        assert!(!err.transient);
        assert!(err.message.contains("recipient"));
    }
}
