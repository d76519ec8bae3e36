//! The sender worker: sends pending notifications through the email
//! backend. All its state is in the database (status, attempts, next
//! attempt time, lease), so it picks up where it left off after a restart,
//! and several replicas can run it side by side (a row is claimed with a
//! conditional UPDATE before it is sent).

use std::sync::Arc;
use std::time::Duration;

use bazaar_kit::clock::now_millis;
use bazaar_kit::{CancellationToken, Db};
use futures::StreamExt;

use crate::config::NotificationsSettings;
use crate::email::{EmailBackend, OutgoingEmail, SendError};
use crate::store::{self, NotificationRow};

/// Rows read per pass.
const BATCH: i64 = 64;
/// Emails sent at once.
const CONCURRENCY: usize = 8;

/// What the worker needs.
#[derive(Clone)]
pub struct Sender {
    /// The service's database.
    pub db: Db,
    /// Where emails go.
    pub backend: Arc<dyn EmailBackend>,
    /// Retry policy, sender address, lease length.
    pub settings: Arc<NotificationsSettings>,
    /// Woken by the event handler's caller so new rows go out at once.
    pub wake: Arc<tokio::sync::Notify>,
}

impl Sender {
    /// Sends due notifications until `token` is cancelled.
    pub async fn run(self, token: CancellationToken) {
        let poll = Duration::from_millis(self.settings.poll_interval_ms.max(10));
        loop {
            let sent = match self.pass(&token).await {
                Ok(n) => n,
                Err(e) => {
                    tracing::warn!(error = %e, "notification sender pass failed");
                    0
                }
            };
            if token.is_cancelled() {
                break;
            }
            if sent as i64 == BATCH {
                continue;
            }
            tokio::select! {
                () = token.cancelled() => break,
                () = self.wake.notified() => {}
                () = tokio::time::sleep(poll) => {}
            }
        }
    }

    /// One pass: claims and sends every due row (up to a batch). Returns how
    /// many rows it looked at.
    pub async fn pass(&self, token: &CancellationToken) -> Result<usize, sqlx::Error> {
        let now = now_millis();
        let due = store::due(&self.db, now, BATCH).await?;
        let n = due.len();
        futures::stream::iter(due)
            .for_each_concurrent(CONCURRENCY, |row| async move {
                if let Err(e) = self.attempt(row, token).await {
                    tracing::warn!(error = %e, "could not record a sending outcome");
                }
            })
            .await;
        Ok(n)
    }

    #[tracing::instrument(skip_all, fields(notification_id = %row.id, kind = %row.kind))]
    async fn attempt(
        &self,
        row: NotificationRow,
        token: &CancellationToken,
    ) -> Result<(), sqlx::Error> {
        if token.is_cancelled() {
            return Ok(());
        }
        let now = now_millis();
        if !store::claim(&self.db, &row.id, now, now + self.settings.lease_ms()).await? {
            return Ok(());
        }
        let attempt = row.attempts + 1;
        let email = OutgoingEmail {
            id: row.id.clone(),
            from: self.settings.from_email.clone(),
            to: row.to_address.clone(),
            subject: row.subject.clone(),
            text: row.body_text.clone(),
            html: row.body_html.clone(),
        };
        // The claim is renewed while the send lasts. On shutdown, give the
        // row back at once rather than leaving it leased: the next start (or
        // another replica) retries it.
        let lease_ms = self.settings.lease_ms();
        let renew = {
            let (db, id) = (self.db.clone(), row.id.clone());
            move || {
                let (db, id) = (db.clone(), id.clone());
                async move {
                    if let Err(e) = store::renew(&db, &id, now_millis() + lease_ms).await {
                        tracing::warn!(notification_id = %id, error = %e, "claim not renewed");
                    }
                }
            }
        };
        let every = Duration::from_millis(lease_ms as u64 / 3);
        let span = tracing::info_span!(
            "send email",
            service = "notifications",
            notification_id = %row.id,
            notification.kind = %row.kind,
            otel.kind = "client",
        );
        bazaar_kit::telemetry::otel::set_parent_from_traceparent(&span, row.traceparent.as_deref());
        let sending = bazaar_kit::clock::renewing(
            every,
            renew,
            tracing::Instrument::instrument(self.backend.send(&email), span),
        );
        let outcome = tokio::select! {
            outcome = sending => outcome,
            () = token.cancelled() => {
                store::release(&self.db, &row.id).await?;
                tracing::info!("shutting down mid-send; notification released");
                return Ok(());
            }
        };
        match outcome {
            Ok(()) => {
                store::mark_sent(&self.db, &row.id).await?;
                sends(&row.kind, "sent");
                tracing::info!(attempt, "notification sent");
            }
            Err(SendError { transient, message }) => {
                let max = i64::from(self.settings.max_attempts.max(1));
                if transient && attempt < max {
                    let wait = self.settings.backoff().delay_millis(attempt);
                    store::schedule_retry(&self.db, &row.id, now_millis() + wait, &message).await?;
                    sends(&row.kind, "retried");
                    tracing::warn!(attempt, retry_in_ms = wait, error = %message, "sending failed; will retry");
                } else {
                    store::mark_failed(&self.db, &row.id, &message).await?;
                    sends(&row.kind, "failed");
                    tracing::error!(attempt, transient, error = %message, "notification failed for good");
                }
            }
        }
        Ok(())
    }
}

/// Counts one send attempt's outcome (`sent`, `retried`, `failed`).
fn sends(kind: &str, outcome: &'static str) {
    metrics::counter!(
        "notifications_sends_total",
        "service" => "notifications",
        "kind" => kind.to_string(),
        "outcome" => outcome,
    )
    .increment(1);
}

/// Describes this module's metrics.
pub(crate) fn describe_metrics() {
    metrics::describe_counter!(
        "notifications_sends_total",
        "Email send attempts by kind and outcome: sent, retried (transient failure, tried again later), failed (given up)."
    );
}
