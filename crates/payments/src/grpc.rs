//! Payments' internal gRPC API (`proto/bazaar/payments/v1`): what orders
//! calls during the checkout saga. Service token required
//! (`payments:charge`, `payments:refund`); never on the public port.

use std::sync::Arc;

use bazaar_kit::Problem;
use bazaar_kit::auth::Verifier;
use bazaar_kit::grpc::{Routes, authorize};
use bazaar_proto::payments::v1::charge_response::Status as ChargeStatus;
use bazaar_proto::payments::v1::payments_server::{Payments, PaymentsServer};
use bazaar_proto::payments::v1::refund_response::Status as RefundStatus;
use bazaar_proto::payments::v1::{ChargeRequest, ChargeResponse, RefundRequest, RefundResponse};
use tonic::{Request, Response, Status};

use crate::AppState;
use crate::error::PaymentsError;
use crate::provider::Outcome;
use crate::store::{self, NewCharge};

/// The RPCs, for `Service::with_grpc`.
pub fn routes(state: AppState, verifier: Arc<Verifier>) -> (Routes, Vec<&'static str>) {
    let server = PaymentsServer::new(Rpc { state, verifier });
    (Routes::new(server), vec!["bazaar.payments.v1.Payments"])
}

struct Rpc {
    state: AppState,
    verifier: Arc<Verifier>,
}

fn status(e: impl Into<PaymentsError>) -> Status {
    Status::from(Problem::from(e.into()))
}

/// The answer a final payment row gives, if it is final.
fn recorded(p: &store::Payment) -> Option<ChargeResponse> {
    let status = match p.status.as_str() {
        "succeeded" => ChargeStatus::Succeeded,
        "refunded" => ChargeStatus::Refunded,
        "declined" => ChargeStatus::Declined,
        _ => return None,
    };
    Some(ChargeResponse {
        payment_id: p.id.clone(),
        status: status.into(),
        reason: p.reason.clone().unwrap_or_default(),
    })
}

#[tonic::async_trait]
impl Payments for Rpc {
    /// Charges an order once. Idempotent per `order_id`: a retry returns
    /// the recorded outcome, or calls the provider again only when the
    /// previous attempt failed without an answer.
    #[tracing::instrument(skip_all, fields(order_id = %request.get_ref().order_id))]
    async fn charge(
        &self,
        request: Request<ChargeRequest>,
    ) -> Result<Response<ChargeResponse>, Status> {
        authorize(&request, &self.verifier, "payments:charge").await?;
        let req = request.into_inner();
        if req.amount_cents <= 0 {
            return Err(status(Problem::field("amount_cents", "Must be positive.")));
        }
        if uuid::Uuid::parse_str(&req.order_id).is_err() {
            return Err(status(Problem::field("order_id", "Must be a valid UUID.")));
        }
        let state = &self.state;
        let new = NewCharge {
            order_id: &req.order_id,
            user_id: &req.user_id,
            amount_cents: req.amount_cents,
            currency: &req.currency,
            payment_token: &req.payment_token,
        };
        let payment = store::upsert(&state.db, &new).await.map_err(status)?;
        if let Some(answer) = recorded(&payment) {
            return Ok(Response::new(answer));
        }
        let hold = (state.provider.timeout + std::time::Duration::from_secs(5)).as_millis() as i64;
        if !store::claim(&state.db, &req.order_id, hold)
            .await
            .map_err(status)?
        {
            // Final meanwhile, or another call is with the provider.
            return match store::by_order(&state.db, &req.order_id)
                .await
                .map_err(status)?
            {
                Some(p) => recorded(&p)
                    .map(Response::new)
                    .ok_or_else(|| status(PaymentsError::InProgress)),
                None => Err(status(PaymentsError::InProgress)),
            };
        }
        // Amount and token are the first request's: a retry cannot change them.
        let answer = match state
            .provider
            .charge(&payment.payment_token, payment.amount_cents)
            .await
        {
            Outcome::Succeeded => {
                store::finish(&state.db, &payment, "succeeded", None)
                    .await
                    .map_err(status)?;
                ChargeResponse {
                    payment_id: payment.id.clone(),
                    status: ChargeStatus::Succeeded.into(),
                    reason: String::new(),
                }
            }
            Outcome::Declined(reason) => {
                store::finish(&state.db, &payment, "declined", Some(&reason))
                    .await
                    .map_err(status)?;
                ChargeResponse {
                    payment_id: payment.id.clone(),
                    status: ChargeStatus::Declined.into(),
                    reason,
                }
            }
            Outcome::TimedOut => {
                store::fail(&state.db, &payment, "provider_timeout")
                    .await
                    .map_err(status)?;
                return Err(status(PaymentsError::ProviderTimeout));
            }
        };
        state.bus.nudge();
        Ok(Response::new(answer))
    }

    /// Refunds an order's successful charge; idempotent.
    #[tracing::instrument(skip_all, fields(order_id = %request.get_ref().order_id))]
    async fn refund(
        &self,
        request: Request<RefundRequest>,
    ) -> Result<Response<RefundResponse>, Status> {
        authorize(&request, &self.verifier, "payments:refund").await?;
        let order_id = request.into_inner().order_id;
        let state = &self.state;
        let answer = |s: RefundStatus| Ok(Response::new(RefundResponse { status: s.into() }));
        let Some(payment) = store::by_order(&state.db, &order_id)
            .await
            .map_err(status)?
        else {
            return answer(RefundStatus::NothingToRefund);
        };
        match payment.status.as_str() {
            "succeeded" => {
                store::refund(&state.db, &payment).await.map_err(status)?;
                state.bus.nudge();
                answer(RefundStatus::Refunded)
            }
            "refunded" => answer(RefundStatus::Refunded),
            "charging"
                if payment
                    .charging_until
                    .is_some_and(|t| t > bazaar_kit::events::outbox::now_millis()) =>
            {
                // Its outcome is not known yet; refunding now could miss it.
                Err(status(PaymentsError::InProgress))
            }
            _ => answer(RefundStatus::NothingToRefund),
        }
    }
}
