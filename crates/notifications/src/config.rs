//! This service's own settings, read from the `[notifications]` table (or
//! `BAZAAR_NOTIFICATIONS_*` env vars), as Django's `EMAIL_*` settings.

use std::path::PathBuf;
use std::time::Duration;

use bazaar_kit::Secret;
use bazaar_kit::clock::Backoff;
use serde::Deserialize;

/// Which email backend sends the mail (Django's `EMAIL_BACKEND`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BackendKind {
    /// Prints each email readably to stdout (the default).
    #[default]
    Console,
    /// Writes one `.eml` file per message into `email_file_path`.
    File,
    /// Sends over SMTP (`email_host`, `email_port`, ...).
    Smtp,
    /// Keeps messages in process memory (tests read them back).
    Memory,
}

/// How the SMTP connection is secured.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SmtpSecurity {
    /// Plain SMTP (a local relay or a test sink).
    #[default]
    None,
    /// Plain connection upgraded with STARTTLS (Django's `EMAIL_USE_TLS`).
    Starttls,
    /// TLS from the first byte, usually port 465 (`EMAIL_USE_SSL`).
    Tls,
}

/// `[notifications]` keys beyond the kit's `listen`/`database_url`/`url`.
#[derive(Clone, Debug, Deserialize)]
#[serde(default)]
pub struct NotificationsSettings {
    /// `console` (default), `file`, `smtp` or `memory`.
    pub email_backend: BackendKind,
    /// The `From:` of every email.
    pub from_email: String,
    /// Folder of the `file` backend; defaults to `<data_dir>/emails`.
    pub email_file_path: Option<PathBuf>,
    /// SMTP server host.
    pub email_host: String,
    /// SMTP port; defaults to 25, 587 (STARTTLS) or 465 (TLS).
    pub email_port: Option<u16>,
    /// `none`, `starttls` or `tls`.
    pub email_security: SmtpSecurity,
    /// SMTP user name, when the server wants credentials.
    pub email_host_user: Option<String>,
    /// SMTP password.
    pub email_host_password: Option<Secret<String>>,
    /// Seconds before an SMTP conversation is abandoned (then retried).
    pub email_timeout_secs: u64,
    /// Name of the in-process mailbox of the `memory` backend.
    pub memory_mailbox: String,
    /// Sending attempts before a notification is marked `failed`.
    pub max_attempts: i32,
    /// First retry delay in milliseconds; doubles on each further attempt.
    pub retry_base_ms: u64,
    /// Longest retry delay in milliseconds.
    pub retry_max_ms: u64,
    /// How often the sender looks for due notifications, in milliseconds.
    pub poll_interval_ms: u64,
}

impl Default for NotificationsSettings {
    fn default() -> Self {
        Self {
            email_backend: BackendKind::Console,
            from_email: "Bazaar <no-reply@bazaar.localhost>".into(),
            email_file_path: None,
            email_host: "localhost".into(),
            email_port: None,
            email_security: SmtpSecurity::None,
            email_host_user: None,
            email_host_password: None,
            email_timeout_secs: 10,
            memory_mailbox: "default".into(),
            max_attempts: 5,
            retry_base_ms: 1_000,
            retry_max_ms: 300_000,
            poll_interval_ms: 250,
        }
    }
}

impl NotificationsSettings {
    /// The SMTP port, defaulted by security mode.
    pub fn port(&self) -> u16 {
        self.email_port.unwrap_or(match self.email_security {
            SmtpSecurity::None => 25,
            SmtpSecurity::Starttls => 587,
            SmtpSecurity::Tls => 465,
        })
    }

    /// The retry policy of a failed send: `retry_base_ms` doubling,
    /// capped at `retry_max_ms`.
    pub fn backoff(&self) -> Backoff {
        Backoff::new(
            Duration::from_millis(self.retry_base_ms),
            Duration::from_millis(self.retry_max_ms),
        )
    }

    /// How long a claimed notification stays reserved for one sender
    /// without renewal: the sender renews it every third of this while the
    /// SMTP conversation lasts, so past it a crashed sender's row is picked
    /// up again — seconds after the crash, whatever the send timeout.
    pub fn lease_ms(&self) -> i64 {
        5000
    }

    /// Rejects values that cannot work, worded for the operator.
    pub fn validate(&self) -> Result<(), String> {
        if self.max_attempts < 1 {
            return Err("notifications.max_attempts: must be at least 1".into());
        }
        if self.email_backend == BackendKind::Smtp && self.email_host.trim().is_empty() {
            return Err("notifications.email_host: required by the smtp backend".into());
        }
        if self.from_email.parse::<lettre::message::Mailbox>().is_err() {
            return Err(format!(
                "notifications.from_email: {:?} is not an email address",
                self.from_email
            ));
        }
        Ok(())
    }
}

impl bazaar_kit::service::Section for NotificationsSettings {
    fn check(self) -> Result<Self, String> {
        self.validate()?;
        Ok(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_caps() {
        let s = NotificationsSettings {
            retry_base_ms: 100,
            retry_max_ms: 1_000,
            ..Default::default()
        };
        assert_eq!(s.backoff().delay_millis(1), 100);
        assert_eq!(s.backoff().delay_millis(2), 200);
        assert_eq!(s.backoff().delay_millis(3), 400);
        assert_eq!(s.backoff().delay_millis(5), 1_000);
        assert_eq!(s.backoff().delay_millis(500), 1_000);
    }

    #[test]
    fn defaults_are_valid_and_ports_follow_security() {
        let mut s = NotificationsSettings::default();
        assert!(s.validate().is_ok());
        assert_eq!(s.port(), 25);
        s.email_security = SmtpSecurity::Tls;
        assert_eq!(s.port(), 465);
        s.email_port = Some(2525);
        assert_eq!(s.port(), 2525);
        s.max_attempts = 0;
        assert!(s.validate().is_err());
    }
}
