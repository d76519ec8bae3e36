//! `console`: prints each email to stdout, readably (Django's console
//! backend, for `bazaar up` and development).

use std::io::Write as _;

use futures::future::BoxFuture;

use super::{EmailBackend, OutgoingEmail, SendError};

/// Prints emails instead of sending them.
pub struct ConsoleBackend;

/// The printed form: headers, the plain-text body, a note on the HTML part.
pub fn format(email: &OutgoingEmail) -> String {
    let rule = "-".repeat(72);
    format!(
        "{rule}\nMessage-ID: {}\nFrom: {}\nTo: {}\nSubject: {}\nDate: {}\n\n{}\n\n[text/html alternative: {} bytes]\n{rule}\n",
        email.message_id(),
        email.from,
        email.to,
        email.subject,
        bazaar_kit::clock::now_rfc3339(),
        email.text.trim_end(),
        email.html.len(),
    )
}

impl EmailBackend for ConsoleBackend {
    fn send<'a>(&'a self, email: &'a OutgoingEmail) -> BoxFuture<'a, Result<(), SendError>> {
        Box::pin(async move {
            let text = format(email);
            let mut out = std::io::stdout().lock();
            out.write_all(text.as_bytes())
                .and_then(|()| out.flush())
                .map_err(|e| SendError::transient(format!("stdout: {e}")))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prints_headers_and_text_body() {
        let out = format(&crate::email::tests::sample());
        assert!(out.contains("To: ada@example.com\nSubject: Welcome to Bazaar, ada!\n"));
        assert!(out.contains("Hi ada,\n\nWelcome!"));
        assert!(out.contains("[text/html alternative: 14 bytes]"));
    }
}
