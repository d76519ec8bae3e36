//! The outbox relay: publishes committed events, marks them sent.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tracing::Instrument as _;

use crate::config::ServiceName;
use crate::db::Db;
use crate::events::{Envelope, outbox};

/// Rows read per relay pass.
const BATCH: i64 = 256;
/// Idle poll interval (a nudge wakes the relay sooner).
const POLL: Duration = Duration::from_millis(100);

/// A broker backend's publish: `Ok` once the broker (or every in-process
/// subscriber) has the event durably.
pub trait Publisher: Send + Sync + 'static {
    /// Publishes one event.
    fn publish<'a>(&'a self, event: &'a Envelope) -> BoxFuture<'a, Result<(), String>>;
}

/// Publishes `service`'s outbox until `token` is cancelled.
pub async fn relay_loop(
    service: ServiceName,
    db: Db,
    publisher: Arc<dyn Publisher>,
    nudge: Arc<Notify>,
    token: CancellationToken,
) {
    let mut last_gauge = Instant::now() - Duration::from_secs(10);
    loop {
        let due = match outbox::due(&db, BATCH).await {
            Ok(due) => due,
            Err(e) => {
                tracing::warn!(error = %e, "outbox read failed");
                Vec::new()
            }
        };
        let busy = due.len() as i64 == BATCH;
        if !due.is_empty() {
            let results = futures::future::join_all(
                due.iter()
                    .map(|p| publish_traced(publisher.as_ref(), service.as_str(), &p.event)),
            )
            .await;
            let mut published = Vec::new();
            for (pending, result) in due.iter().zip(results) {
                match result {
                    Ok(()) => {
                        published.push(pending.seq);
                        metrics::counter!("events_published_total", "service" => service.as_str(), "type" => pending.event.event_type.clone())
                            .increment(1);
                    }
                    Err(e) => {
                        metrics::counter!("events_publish_failed_total", "service" => service.as_str()).increment(1);
                        tracing::warn!(event_id = %pending.event.id, error = %e, "publish failed; will retry");
                        if let Err(e) =
                            outbox::mark_failed(&db, pending.seq, pending.attempts, &e).await
                        {
                            tracing::warn!(error = %e, "could not record publish failure");
                        }
                    }
                }
            }
            if let Err(e) = outbox::mark_published(&db, &published).await {
                // Published but not marked: a later pass republishes and
                // the consumers' inboxes absorb the duplicates.
                tracing::warn!(error = %e, "could not mark events published");
            }
        }
        if last_gauge.elapsed() > Duration::from_secs(1) {
            if let Ok(n) = outbox::backlog(&db).await {
                metrics::gauge!("events_outbox_backlog", "service" => service.as_str())
                    .set(n as f64);
            }
            last_gauge = Instant::now();
        }
        if busy {
            if token.is_cancelled() {
                break;
            }
            continue;
        }
        tokio::select! {
            () = token.cancelled() => break,
            () = nudge.notified() => {}
            () = tokio::time::sleep(POLL) => {}
        }
    }
}

/// Publishes `event` in a producer span, a child of the trace that wrote
/// it; the envelope sent names that span as the consumer's parent.
async fn publish_traced(
    publisher: &dyn Publisher,
    service: &str,
    event: &Envelope,
) -> Result<(), String> {
    if !crate::telemetry::otel::enabled() {
        return publisher.publish(event).await;
    }
    let span = tracing::info_span!(
        "publish",
        service,
        otel.name = format!("publish {}", event.event_type),
        otel.kind = "producer",
        messaging.operation.type = "publish",
        messaging.destination.name = %event.event_type,
        messaging.message.id = %event.id,
    );
    crate::telemetry::otel::set_parent_from_traceparent(&span, event.traceparent.as_deref());
    let mut sent = event.clone();
    sent.traceparent = crate::telemetry::otel::traceparent_of(&span).or(sent.traceparent);
    publisher.publish(&sent).instrument(span).await
}
