//! The saga's calls to catalog and payments, per `docs/contracts.md`.
//! Every one is idempotent per `order_id`, so the client may retry it.

use std::time::Duration;

use bazaar_kit::ServiceName;
use bazaar_kit::client::{CallOptions, ClientError, ServiceClient};
use serde::Deserialize;
use serde_json::json;

use crate::store::Order;

/// What catalog said about a reservation.
#[derive(Debug)]
pub enum Reservation {
    /// Every line reserved.
    Reserved,
    /// At least one line short.
    OutOfStock,
}

/// What payments said about a charge.
#[derive(Debug)]
pub enum Charge {
    /// Paid.
    Succeeded,
    /// Declined by the provider.
    Declined,
    /// The provider did not answer (504) or the call timed out.
    TimedOut,
    /// Already refunded (the order was cancelled meanwhile).
    Refunded,
}

/// The calls, with their timeouts.
#[derive(Clone, Debug)]
pub struct Upstream {
    /// The service client.
    pub client: ServiceClient,
    /// Timeout of catalog calls.
    pub catalog_timeout: Duration,
    /// Timeout of a charge (longer than payments' provider timeout).
    pub charge_timeout: Duration,
}

#[derive(Deserialize)]
struct Outcome {
    status: String,
    #[serde(default)]
    reason: Option<String>,
}

impl Upstream {
    /// Calls through `client` with the timeouts of `settings`.
    pub fn new(client: ServiceClient, settings: &crate::Settings) -> Self {
        Self {
            client,
            catalog_timeout: Duration::from_millis(settings.catalog_timeout_ms),
            charge_timeout: Duration::from_millis(settings.charge_timeout_ms),
        }
    }

    fn catalog_call(&self) -> CallOptions {
        CallOptions::idempotent().timeout(self.catalog_timeout)
    }

    /// Reserves every line, or none.
    pub async fn reserve(&self, order: &Order) -> Result<Reservation, ClientError> {
        let items: Vec<_> = order
            .lines
            .iter()
            .map(|l| json!({"product_id": l.product_id, "quantity": l.quantity}))
            .collect();
        let body = json!({"order_id": order.row.id, "items": items});
        let result: Result<Outcome, _> = self
            .client
            .post_json(
                ServiceName::Catalog,
                "/internal/reservations",
                &body,
                &self.catalog_call(),
            )
            .await;
        match result {
            Ok(_) => Ok(Reservation::Reserved),
            Err(e) if e.status() == Some(409) => {
                let reason = e.body_as::<Outcome>().and_then(|o| o.reason);
                tracing::debug!(order_id = %order.row.id, ?reason, "reservation rejected");
                Ok(Reservation::OutOfStock)
            }
            Err(e) => Err(e),
        }
    }

    /// Commits (finalises) the reservation.
    pub async fn commit(&self, order_id: &str) -> Result<(), ClientError> {
        let path = format!("/internal/reservations/{order_id}/commit");
        let _: serde_json::Value = self
            .client
            .post_json(
                ServiceName::Catalog,
                &path,
                &json!({}),
                &self.catalog_call(),
            )
            .await?;
        Ok(())
    }

    /// Releases the reservation (a no-op when there is none).
    pub async fn release(&self, order_id: &str) -> Result<(), ClientError> {
        let path = format!("/internal/reservations/{order_id}/release");
        let _: serde_json::Value = self
            .client
            .post_json(
                ServiceName::Catalog,
                &path,
                &json!({}),
                &self.catalog_call(),
            )
            .await?;
        Ok(())
    }

    /// Charges the order's total (payments keeps one row per order).
    pub async fn charge(&self, order: &Order) -> Result<Charge, ClientError> {
        let body = json!({
            "order_id": order.row.id,
            "user_id": order.row.user_id,
            "amount_cents": order.row.total_cents,
            "currency": order.row.currency,
            "payment_token": order.row.payment_token,
        });
        let call = CallOptions::idempotent().timeout(self.charge_timeout);
        let result: Result<Outcome, _> = self
            .client
            .post_json(
                ServiceName::Payments,
                "/internal/payments/charge",
                &body,
                &call,
            )
            .await;
        match result {
            Ok(o) if o.status == "succeeded" => Ok(Charge::Succeeded),
            Ok(o) if o.status == "refunded" => Ok(Charge::Refunded),
            Ok(_) => Ok(Charge::Declined),
            Err(e) if e.status() == Some(504) || matches!(e, ClientError::Timeout { .. }) => {
                Ok(Charge::TimedOut)
            }
            Err(e) => Err(e),
        }
    }

    /// Refunds the order's charge, if there is one.
    pub async fn refund(&self, order_id: &str) -> Result<(), ClientError> {
        let _: serde_json::Value = self
            .client
            .post_json(
                ServiceName::Payments,
                "/internal/payments/refund",
                &json!({"order_id": order_id}),
                &CallOptions::idempotent().timeout(self.catalog_timeout),
            )
            .await?;
        Ok(())
    }
}
