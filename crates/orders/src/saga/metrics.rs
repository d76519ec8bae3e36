//! The saga's metrics: how orders end, how long they take, what it
//! retries and compensates, and what is still under way.

use std::time::Duration;

use bazaar_kit::Db;
use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};

use crate::domain::Status;
use crate::store::saga as book;

/// Describes the saga's families (`# HELP`).
pub fn describe() {
    describe_counter!(
        "orders_finished_total",
        "Orders that reached a final status, by status (confirmed, rejected, cancelled) and reason."
    );
    describe_histogram!(
        "orders_saga_lifetime_seconds",
        Unit::Seconds,
        "Time from an order's placement to its final status, by status."
    );
    describe_counter!(
        "orders_saga_compensations_total",
        "Compensations run (refund and release of a cancelled order's charge and stock)."
    );
    describe_counter!(
        "orders_saga_retries_total",
        "Saga steps scheduled for another try, by step (reserve, charge, compensate) and cause (upstream, charge_timeout)."
    );
    describe_gauge!(
        "orders_in_saga",
        "Orders still under way: pending, awaiting payment, or owing a compensation."
    );
    describe_gauge!(
        "orders_saga_oldest_age_seconds",
        Unit::Seconds,
        "Age of the oldest order still under way (0 when none)."
    );
}

/// Counts an order reaching `status` (final) and observes its lifetime.
pub fn finished(status: Status, reason: Option<&str>, created_at: &str) {
    metrics::counter!(
        "orders_finished_total",
        "service" => "orders",
        "status" => status.as_str(),
        "reason" => reason.unwrap_or("none").to_string(),
    )
    .increment(1);
    if let Some(age) = age_of(created_at) {
        metrics::histogram!(
            "orders_saga_lifetime_seconds",
            "service" => "orders",
            "status" => status.as_str(),
        )
        .record(age.as_secs_f64());
    }
}

/// Counts a step scheduled for another try.
pub fn retried(step: &'static str, cause: &'static str) {
    metrics::counter!(
        "orders_saga_retries_total",
        "service" => "orders",
        "step" => step,
        "cause" => cause,
    )
    .increment(1);
}

/// Counts a compensation run to its end.
pub fn compensated() {
    metrics::counter!("orders_saga_compensations_total", "service" => "orders").increment(1);
}

/// Sets the gauges of orders under way from the database.
pub async fn record_in_flight(db: &Db) -> Result<(), sqlx::Error> {
    let (count, oldest) = book::in_flight(db).await?;
    metrics::gauge!("orders_in_saga", "service" => "orders").set(count as f64);
    let age = oldest
        .as_deref()
        .and_then(age_of)
        .map_or(0.0, |d| d.as_secs_f64());
    metrics::gauge!("orders_saga_oldest_age_seconds", "service" => "orders").set(age);
    Ok(())
}

fn age_of(created_at: &str) -> Option<Duration> {
    let created =
        time::OffsetDateTime::parse(created_at, &time::format_description::well_known::Rfc3339)
            .ok()?;
    let age = time::OffsetDateTime::now_utc() - created;
    Some(age.try_into().unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    #[test]
    fn age_of_parses_stored_times() {
        let past = bazaar_kit::clock::format_rfc3339(
            time::OffsetDateTime::now_utc() - time::Duration::seconds(90),
        );
        let age = super::age_of(&past).expect("parses");
        assert!((89..=95).contains(&age.as_secs()), "{age:?}");
        assert!(super::age_of("yesterday").is_none());
    }
}
