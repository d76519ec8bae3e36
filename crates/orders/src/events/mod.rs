//! Events orders publishes (through the kit's outbox, in the same
//! transaction as the order's change); it consumes none: the saga calls
//! catalog and payments over HTTP and records each answer itself.

use crate::domain::Status;

/// An order was placed (`pending`).
pub const ORDER_CREATED: &str = "order.created";
/// An order was paid and its stock committed.
pub const ORDER_CONFIRMED: &str = "order.confirmed";
/// An order was rejected (out of stock, declined, payment timed out).
pub const ORDER_REJECTED: &str = "order.rejected";
/// An order was cancelled by its owner or staff.
pub const ORDER_CANCELLED: &str = "order.cancelled";

/// Every event type orders publishes.
pub const PUBLISHED: &[&str] = &[
    ORDER_CREATED,
    ORDER_CONFIRMED,
    ORDER_REJECTED,
    ORDER_CANCELLED,
];

/// The event an order entering `status` publishes, if any.
pub fn on_status(status: Status) -> Option<&'static str> {
    match status {
        Status::Pending => Some(ORDER_CREATED),
        Status::Confirmed => Some(ORDER_CONFIRMED),
        Status::Rejected => Some(ORDER_REJECTED),
        Status::Cancelled => Some(ORDER_CANCELLED),
        Status::AwaitingPayment => None,
    }
}
