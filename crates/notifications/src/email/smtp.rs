//! `smtp`: sends through an SMTP server with lettre (rustls; plain,
//! STARTTLS or implicit TLS; optional credentials; a timeout on the whole
//! conversation). 4xx replies, timeouts and connection failures are
//! transient (retried with backoff); 5xx replies are permanent.

use std::time::Duration;

use futures::future::BoxFuture;
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};

use super::{EmailBackend, OutgoingEmail, SendError};
use crate::config::{NotificationsSettings, SmtpSecurity};

/// Sends over SMTP; one connection per message (no pool), so a server
/// restart never leaves a dead pooled connection behind.
pub struct SmtpBackend {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    timeout: Duration,
}

impl SmtpBackend {
    /// A transport from the `email_*` settings.
    pub fn new(s: &NotificationsSettings) -> anyhow::Result<Self> {
        let host = s.email_host.trim();
        let builder = match s.email_security {
            SmtpSecurity::None => AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host),
            SmtpSecurity::Starttls => AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(host)?,
            SmtpSecurity::Tls => AsyncSmtpTransport::<Tokio1Executor>::relay(host)?,
        };
        let timeout = Duration::from_secs(s.email_timeout_secs.max(1));
        let mut builder = builder.port(s.port()).timeout(Some(timeout));
        if let Some(user) = &s.email_host_user {
            let password = s
                .email_host_password
                .as_ref()
                .map(|p| p.expose().clone())
                .unwrap_or_default();
            builder = builder.credentials(Credentials::new(user.clone(), password));
        }
        Ok(Self {
            transport: builder.build(),
            timeout,
        })
    }
}

fn classify(e: &lettre::transport::smtp::Error) -> SendError {
    let message = format!("smtp: {e}");
    if e.is_permanent() {
        SendError::permanent(message)
    } else {
        SendError::transient(message)
    }
}

impl EmailBackend for SmtpBackend {
    fn send<'a>(&'a self, email: &'a OutgoingEmail) -> BoxFuture<'a, Result<(), SendError>> {
        Box::pin(async move {
            let message = email.to_message()?;
            // lettre's timeout is per socket operation; bound the whole
            // conversation too so a trickling server cannot hold a sender.
            let whole = self.timeout * 3;
            match tokio::time::timeout(whole, self.transport.send(message)).await {
                Ok(Ok(_response)) => Ok(()),
                Ok(Err(e)) => Err(classify(&e)),
                Err(_) => Err(SendError::transient(format!(
                    "smtp: no answer within {}s",
                    whole.as_secs()
                ))),
            }
        })
    }
}
