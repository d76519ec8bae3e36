//! `/internal/payments/*`: what orders calls during the checkout saga.

use axum::Router;
use axum::extract::State;
use axum::routing::post;
use bazaar_kit::Problem;
use bazaar_kit::auth::ServiceCaller;
use bazaar_kit::extract::Json;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::AppState;
use crate::domain::Status;
use crate::domain::provider::Outcome;
use crate::error::PaymentsError;
use crate::store::{self, NewCharge};

/// Routes of this module.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/internal/payments/charge", post(charge))
        .route("/internal/payments/refund", post(refund))
}

#[derive(Deserialize)]
struct ChargeRequest {
    order_id: String,
    user_id: String,
    amount_cents: i64,
    currency: String,
    payment_token: String,
}

/// Charges an order once. Idempotent per `order_id`: a retry returns the
/// recorded outcome, or calls the provider again only when the previous
/// attempt failed without an answer.
#[tracing::instrument(skip_all, fields(order_id = %req.order_id))]
async fn charge(
    State(state): State<AppState>,
    caller: ServiceCaller,
    Json(req): Json<ChargeRequest>,
) -> Result<Json<Value>, PaymentsError> {
    caller.require("payments:charge")?;
    if req.amount_cents <= 0 {
        return Err(Problem::field("amount_cents", "Must be positive.").into());
    }
    if uuid::Uuid::parse_str(&req.order_id).is_err() {
        return Err(Problem::field("order_id", "Must be a valid UUID.").into());
    }
    let new = NewCharge {
        order_id: &req.order_id,
        user_id: &req.user_id,
        amount_cents: req.amount_cents,
        currency: &req.currency,
        payment_token: &req.payment_token,
    };
    let payment = store::upsert(&state.db, &new).await?;
    if let Some(answer) = recorded(&payment) {
        return Ok(Json(answer));
    }
    let hold = (state.provider.timeout + std::time::Duration::from_secs(5)).as_millis() as i64;
    if !store::claim(&state.db, &req.order_id, hold).await? {
        // Final meanwhile, or another call is with the provider.
        return match store::by_order(&state.db, &req.order_id).await? {
            Some(p) => recorded(&p).map(Json).ok_or(PaymentsError::InProgress),
            None => Err(PaymentsError::InProgress),
        };
    }
    // Amount and token are the first request's: a retry cannot change them.
    match state
        .provider
        .charge(&payment.payment_token, payment.amount_cents)
        .await
    {
        Outcome::Succeeded => {
            store::finish(&state.db, &payment, Status::Succeeded, None).await?;
            state.bus.nudge();
            Ok(Json(
                json!({"payment_id": payment.id, "status": "succeeded"}),
            ))
        }
        Outcome::Declined(reason) => {
            store::finish(&state.db, &payment, Status::Declined, Some(&reason)).await?;
            state.bus.nudge();
            Ok(Json(
                json!({"payment_id": payment.id, "status": "declined", "reason": reason}),
            ))
        }
        Outcome::TimedOut => {
            store::fail(&state.db, &payment, "provider_timeout").await?;
            Err(PaymentsError::ProviderTimeout)
        }
    }
}

/// The answer a final payment row gives, if it is final.
fn recorded(p: &store::Payment) -> Option<Value> {
    match p.status {
        Status::Succeeded | Status::Refunded => {
            Some(json!({"payment_id": p.id, "status": p.status.as_str()}))
        }
        Status::Declined => Some(json!({
            "payment_id": p.id, "status": "declined", "reason": p.reason,
        })),
        _ => None,
    }
}

#[derive(Deserialize)]
struct RefundRequest {
    order_id: String,
}

/// Refunds an order's successful charge; idempotent.
#[tracing::instrument(skip_all, fields(order_id = %req.order_id))]
async fn refund(
    State(state): State<AppState>,
    caller: ServiceCaller,
    Json(req): Json<RefundRequest>,
) -> Result<Json<Value>, PaymentsError> {
    caller.require("payments:refund")?;
    let Some(payment) = store::by_order(&state.db, &req.order_id).await? else {
        return Ok(Json(json!({"status": "nothing_to_refund"})));
    };
    match payment.status {
        Status::Succeeded => {
            store::refund(&state.db, &payment).await?;
            state.bus.nudge();
            Ok(Json(json!({"status": "refunded"})))
        }
        Status::Refunded => Ok(Json(json!({"status": "refunded"}))),
        Status::Charging
            if payment
                .charging_until
                .is_some_and(|t| t > bazaar_kit::clock::now_millis()) =>
        {
            // Its outcome is not known yet; refunding now could miss it.
            Err(PaymentsError::InProgress)
        }
        _ => Ok(Json(json!({"status": "nothing_to_refund"}))),
    }
}
