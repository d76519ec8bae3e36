//! The saga's calls to catalog and payments over their internal gRPC APIs
//! (`proto/bazaar/catalog/v1`, `proto/bazaar/payments/v1`).
//! Every one is idempotent per `order_id`, so the client may retry it.

use std::time::Duration;

use bazaar_kit::ServiceName;
use bazaar_kit::client::{CallOptions, ClientError, ServiceClient};
use bazaar_proto::catalog::v1::catalog_client::CatalogClient;
use bazaar_proto::catalog::v1::reserve_response::Status as ReserveStatus;
use bazaar_proto::catalog::v1::{ReservationRef, ReserveLine, ReserveRequest};
use bazaar_proto::payments::v1::charge_response::Status as ChargeStatus;
use bazaar_proto::payments::v1::payments_client::PaymentsClient;
use bazaar_proto::payments::v1::{ChargeRequest, RefundRequest};

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

impl Upstream {
    fn catalog_call(&self) -> CallOptions {
        CallOptions::idempotent().timeout(self.catalog_timeout)
    }

    /// Reserves every line, or none.
    pub async fn reserve(&self, order: &Order) -> Result<Reservation, ClientError> {
        let request = ReserveRequest {
            order_id: order.row.id.clone(),
            items: order
                .lines
                .iter()
                .map(|l| ReserveLine {
                    product_id: l.product_id.clone(),
                    quantity: l.quantity,
                })
                .collect(),
        };
        let answer = self
            .client
            .grpc(ServiceName::Catalog, &self.catalog_call(), request, |channel, request| async move {
                CatalogClient::new(channel).reserve(request).await
            })
            .await?;
        match answer.status() {
            ReserveStatus::Reserved => Ok(Reservation::Reserved),
            _ => {
                tracing::debug!(order_id = %order.row.id, reason = %answer.reason, "reservation rejected");
                Ok(Reservation::OutOfStock)
            }
        }
    }

    /// Commits (finalises) the reservation.
    pub async fn commit(&self, order_id: &str) -> Result<(), ClientError> {
        let request = ReservationRef {
            order_id: order_id.to_string(),
        };
        self.client
            .grpc(
                ServiceName::Catalog,
                &self.catalog_call(),
                request,
                |channel, request| async move { CatalogClient::new(channel).commit(request).await },
            )
            .await?;
        Ok(())
    }

    /// Releases the reservation (a no-op when there is none).
    pub async fn release(&self, order_id: &str) -> Result<(), ClientError> {
        let request = ReservationRef {
            order_id: order_id.to_string(),
        };
        self.client
            .grpc(ServiceName::Catalog, &self.catalog_call(), request, |channel, request| async move {
                CatalogClient::new(channel).release(request).await
            })
            .await?;
        Ok(())
    }

    /// Charges the order's total (payments keeps one row per order).
    pub async fn charge(&self, order: &Order) -> Result<Charge, ClientError> {
        let request = ChargeRequest {
            order_id: order.row.id.clone(),
            user_id: order.row.user_id.clone(),
            amount_cents: order.row.total_cents,
            currency: order.row.currency.clone(),
            payment_token: order.row.payment_token.clone(),
        };
        let call = CallOptions::idempotent().timeout(self.charge_timeout);
        let result = self
            .client
            .grpc(ServiceName::Payments, &call, request, |channel, request| async move {
                PaymentsClient::new(channel).charge(request).await
            })
            .await;
        match result {
            Ok(answer) => Ok(match answer.status() {
                ChargeStatus::Succeeded => Charge::Succeeded,
                ChargeStatus::Refunded => Charge::Refunded,
                _ => Charge::Declined,
            }),
            // The provider did not answer in time, or the call timed out.
            Err(ClientError::Timeout { .. }) => Ok(Charge::TimedOut),
            Err(e) => Err(e),
        }
    }

    /// Refunds the order's charge, if there is one.
    pub async fn refund(&self, order_id: &str) -> Result<(), ClientError> {
        let request = RefundRequest {
            order_id: order_id.to_string(),
        };
        let call = CallOptions::idempotent().timeout(self.catalog_timeout);
        self.client
            .grpc(ServiceName::Payments, &call, request, |channel, request| async move {
                PaymentsClient::new(channel).refund(request).await
            })
            .await?;
        Ok(())
    }
}
