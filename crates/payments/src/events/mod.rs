//! Events payments publishes (through the kit's outbox, in the same
//! transaction as the payment's change); it consumes none.

use crate::domain::Status;

/// A charge succeeded.
pub const PAYMENT_SUCCEEDED: &str = "payment.succeeded";
/// The provider declined a charge.
pub const PAYMENT_DECLINED: &str = "payment.declined";
/// A succeeded charge was refunded.
pub const PAYMENT_REFUNDED: &str = "payment.refunded";

/// Every event type payments publishes.
pub const PUBLISHED: &[&str] = &[PAYMENT_SUCCEEDED, PAYMENT_DECLINED, PAYMENT_REFUNDED];

/// The event a payment entering `status` publishes, if any.
pub fn on_status(status: Status) -> Option<&'static str> {
    match status {
        Status::Succeeded => Some(PAYMENT_SUCCEEDED),
        Status::Declined => Some(PAYMENT_DECLINED),
        Status::Refunded => Some(PAYMENT_REFUNDED),
        Status::Pending | Status::Charging | Status::Failed => None,
    }
}
