//! The checkout saga, orchestrated here and persisted in the orders
//! database:
//!
//! ```text
//! pending --reserve--> awaiting_payment --charge--> (commit) confirmed
//!    |                       |-- declined --> (release) rejected/payment_declined
//!    |                       `-- timed out × N --> (release, refund) rejected/payment_timeout
//!    `-- out of stock --> rejected/out_of_stock (nothing charged)
//! cancelled + compensate --> refund, release
//! ```
//!
//! Every step is an idempotent call per `order_id` followed by a
//! conditional status update (`WHERE status = <expected>`), so a step may
//! run twice (crash, lease expiry) without harm. A driver holds a short
//! lease on the order and renews it while a step runs (a charge may take
//! seconds), so an order whose driver died is resumed, by any instance's
//! timer, within about `lease_ms` of the death.

pub mod metrics;
pub mod upstream;

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bazaar_kit::client::ClientError;
use bazaar_kit::clock::Backoff;
use bazaar_kit::events::Bus;
use bazaar_kit::{CancellationToken, Db};
use tokio::sync::{Semaphore, broadcast};
use tracing::Instrument as _;

use crate::Settings;
use crate::domain::Status;
use crate::store::{self, Change, Order, Transition, saga as book};
use upstream::{Charge, Reservation, Upstream};

enum Next {
    /// Reload the order and take the next step.
    Continue,
    /// Try again after this many ms; `charge` counts a timed-out charge.
    RetryAfter { ms: i64, charge: bool },
}

#[derive(Debug, thiserror::Error)]
enum StepError {
    #[error(transparent)]
    Upstream(#[from] ClientError),
    #[error(transparent)]
    Db(#[from] sqlx::Error),
}

struct Inner {
    db: Db,
    bus: Bus,
    upstream: Upstream,
    changes: broadcast::Sender<Change>,
    settings: Settings,
    permits: Semaphore,
    inflight: Mutex<HashSet<String>>,
    shutdown: CancellationToken,
}

/// Drives orders through the saga. Cheap to clone.
#[derive(Clone)]
pub struct Saga {
    inner: Arc<Inner>,
}

impl Saga {
    /// A saga runner; `changes` receives every status change it makes.
    pub fn new(
        db: Db,
        bus: Bus,
        upstream: Upstream,
        changes: broadcast::Sender<Change>,
        settings: Settings,
    ) -> Self {
        let permits = Semaphore::new(settings.max_inflight.max(1));
        Self {
            inner: Arc::new(Inner {
                db,
                bus,
                upstream,
                changes,
                settings,
                permits,
                inflight: Mutex::new(HashSet::new()),
                shutdown: CancellationToken::new(),
            }),
        }
    }

    /// Applies a transition, publishes it to SSE streams, wakes the relay.
    pub async fn apply(
        &self,
        order: &Order,
        t: &Transition<'_>,
    ) -> Result<Option<Change>, sqlx::Error> {
        let change = store::transition(&self.inner.db, order, t).await?;
        if let Some(c) = &change {
            if t.to.is_final() {
                metrics::finished(t.to, t.reason, &order.row.created_at);
            }
            if t.publish {
                self.inner.bus.nudge();
            }
            let _ = self.inner.changes.send(c.clone());
        }
        Ok(change)
    }

    /// Announces a new order to SSE streams.
    pub fn apply_created(&self, change: Change) {
        self.inner.bus.nudge();
        let _ = self.inner.changes.send(change);
    }

    /// Drives `id` in the background now (deduplicated per process).
    pub fn kick(&self, id: String) {
        {
            let mut inflight = self
                .inner
                .inflight
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if !inflight.insert(id.clone()) {
                return;
            }
        }
        let saga = self.clone();
        tokio::spawn(async move {
            if let Ok(_permit) = saga.inner.permits.acquire().await {
                tokio::select! {
                    () = saga.inner.shutdown.cancelled() => {}
                    r = saga.drive(&id) => if let Err(e) = r {
                        tracing::warn!(order_id = %id, error = %e, "saga step failed; the timer retries");
                    }
                }
            }
            saga.inner
                .inflight
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .remove(&id);
        });
    }

    /// Takes the order's lease and runs its due steps, renewing the lease
    /// every third of its length; returns at once when another driver
    /// holds it.
    pub async fn drive(&self, id: &str) -> Result<(), sqlx::Error> {
        let db = &self.inner.db;
        let lease_ms = self.inner.settings.lease_ms.max(30) as i64;
        if !book::claim(db, id, lease_ms).await? {
            return Ok(());
        }
        let renew = {
            let (db, id) = (db.clone(), id.to_string());
            move || {
                let (db, id) = (db.clone(), id.clone());
                async move {
                    if let Err(e) = book::renew(&db, &id, lease_ms).await {
                        tracing::warn!(order_id = %id, error = %e, "saga lease not renewed");
                    }
                }
            }
        };
        let every = Duration::from_millis(lease_ms as u64 / 3);
        let result = bazaar_kit::clock::renewing(every, renew, self.run(id)).await;
        book::release(db, id).await?;
        result
    }

    /// Drives `id` in a task of its own (a caller that goes away does not
    /// stop it mid-step) and waits for it at most `wait`; the timer carries
    /// on with whatever is left.
    pub async fn drive_detached(&self, id: &str, wait: Duration) {
        let saga = self.clone();
        let order_id = id.to_string();
        let task = tokio::spawn(async move {
            if let Err(e) = saga.drive(&order_id).await {
                tracing::warn!(order_id = %order_id, error = %e, "saga step deferred to the timer");
            }
        });
        let _ = tokio::time::timeout(wait, task).await;
    }

    async fn run(&self, id: &str) -> Result<(), sqlx::Error> {
        let db = &self.inner.db;
        // A handful of steps at most; the bound guards against a loop.
        for _ in 0..8 {
            let Some(order) = store::get(db, id).await? else {
                return Ok(());
            };
            let name = match (order.status(), order.row.compensate) {
                (Status::Pending, _) => "reserve",
                (Status::AwaitingPayment, _) => "charge",
                (Status::Cancelled, true) => "compensate",
                _ => return Ok(()),
            };
            let span = self.step_span(id, name).await;
            let step = async {
                match name {
                    "reserve" => self.reserve(&order).await,
                    "charge" => self.charge(&order).await,
                    _ => self.compensate(&order).await,
                }
            }
            .instrument(span)
            .await;
            match step {
                Ok(Next::Continue) => {}
                Ok(Next::RetryAfter { ms, charge }) => {
                    metrics::retried(name, "charge_timeout");
                    return book::retry_later(db, id, ms, charge).await;
                }
                Err(StepError::Upstream(e)) => {
                    metrics::retried(name, "upstream");
                    let ms = STEP_BACKOFF.delay_millis(order.row.attempts + 1);
                    tracing::info!(order_id = %id, error = %e, retry_in_ms = ms, "saga step will be retried");
                    return book::retry_later(db, id, ms, false).await;
                }
                Err(StepError::Db(e)) => return Err(e),
            }
        }
        Ok(())
    }

    /// A step's span (with tracing on, a child of the placing request's
    /// trace, whichever driver or re-drive runs it).
    async fn step_span(&self, id: &str, step: &'static str) -> tracing::Span {
        let span = tracing::info_span!(
            "saga step",
            service = "orders",
            order_id = %id,
            saga.step = step,
            otel.name = format!("saga {step}"),
        );
        if bazaar_kit::telemetry::otel::enabled() {
            let tp = book::traceparent(&self.inner.db, id).await.ok().flatten();
            bazaar_kit::telemetry::otel::set_parent_from_traceparent(&span, tp.as_deref());
        }
        span
    }

    /// The order moved on (cancelled) under a step that changed something
    /// upstream: owe a refund/release so compensation undoes it.
    async fn owe(&self, order: &Order) -> Result<(), sqlx::Error> {
        book::set_compensate(&self.inner.db, &order.row.id, true).await
    }

    async fn reserve(&self, order: &Order) -> Result<Next, StepError> {
        let (to, reason, publish) = match self.inner.upstream.reserve(order).await? {
            Reservation::Reserved => (Status::AwaitingPayment, None, false),
            Reservation::OutOfStock => (Status::Rejected, Some("out_of_stock"), true),
        };
        let t = Transition {
            from: &[Status::Pending],
            to,
            reason,
            compensate: false,
            publish,
        };
        if self.apply(order, &t).await?.is_none() {
            self.owe(order).await?;
        }
        Ok(Next::Continue)
    }

    async fn charge(&self, order: &Order) -> Result<Next, StepError> {
        let up = &self.inner.upstream;
        let id = &order.row.id;
        let (to, reason) = match up.charge(order).await? {
            Charge::Succeeded => {
                up.commit(id).await?;
                (Status::Confirmed, None)
            }
            Charge::Declined | Charge::Refunded => {
                up.release(id).await?;
                (Status::Rejected, Some("payment_declined"))
            }
            Charge::TimedOut => {
                let attempts = order.row.charge_attempts + 1;
                if attempts < i64::from(self.inner.settings.charge_attempts) {
                    return Ok(Next::RetryAfter {
                        ms: self.inner.settings.charge_retry_ms as i64,
                        charge: true,
                    });
                }
                // Give up: no stock held, and no money kept should a late
                // charge have gone through.
                up.release(id).await?;
                up.refund(id).await?;
                (Status::Rejected, Some("payment_timeout"))
            }
        };
        let t = Transition {
            from: &[Status::AwaitingPayment],
            to,
            reason,
            compensate: false,
            publish: true,
        };
        if self.apply(order, &t).await?.is_none() {
            self.owe(order).await?;
        }
        Ok(Next::Continue)
    }

    async fn compensate(&self, order: &Order) -> Result<Next, StepError> {
        let up = &self.inner.upstream;
        up.refund(&order.row.id).await?;
        up.release(&order.row.id).await?;
        book::set_compensate(&self.inner.db, &order.row.id, false).await?;
        metrics::compensated();
        Ok(Next::Continue)
    }

    /// The timer: every `saga_interval_ms`, drives every due order; every 3600 ticks,
    /// purges expired idempotency keys. Cancelling `token` stops drivers too.
    pub async fn run_timer(self, token: CancellationToken) {
        let interval = Duration::from_millis(self.inner.settings.saga_interval_ms.max(10));
        let mut ticks: u64 = 0;
        // The gauges of orders under way, about every 5 s.
        let gauge_every = (5000 / interval.as_millis().max(1)).max(1) as u64;
        loop {
            tokio::select! {
                () = token.cancelled() => break,
                () = tokio::time::sleep(interval) => {}
            }
            match book::due(&self.inner.db, 500).await {
                Ok(ids) => ids.into_iter().for_each(|id| self.kick(id)),
                Err(e) => tracing::warn!(error = %e, "cannot list due orders"),
            }
            if ticks.is_multiple_of(gauge_every)
                && let Err(e) = metrics::record_in_flight(&self.inner.db).await
            {
                tracing::warn!(error = %e, "cannot count orders under way");
            }
            if ticks.is_multiple_of(3600)
                && let Err(e) = store::idempotency::purge(&self.inner.db).await
            {
                tracing::warn!(error = %e, "cannot purge idempotency keys");
            }
            ticks += 1;
        }
        self.inner.shutdown.cancel();
    }
}

/// Delay before retrying a step after transient failures: 200 ms
/// doubling, capped at 1 s, with jitter. Short on purpose: an upstream that
/// is back is tried again within a second, and the client's circuit
/// breaker (not this delay) keeps a dead upstream from being hammered.
pub const STEP_BACKOFF: Backoff =
    Backoff::new(Duration::from_millis(200), Duration::from_secs(1)).with_jitter();

#[cfg(test)]
mod tests {
    #[test]
    fn step_backoff_grows_and_caps() {
        let within = |attempt, ms: i64| {
            let d = super::STEP_BACKOFF.delay_millis(attempt);
            assert!((ms..=ms + ms / 4).contains(&d), "attempt {attempt}: {d} ms");
        };
        within(1, 200);
        within(2, 400);
        within(30, 1000);
    }
}
