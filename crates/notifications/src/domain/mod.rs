//! What a notification is: its kind, its status, and the words it says.
//! No axum, no sqlx here.

pub mod render;

use serde::Serialize;

/// Which event a notification announces (the `kind` of the API).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// `user.registered`.
    Welcome,
    /// `order.confirmed`.
    OrderConfirmed,
    /// `order.rejected`.
    OrderRejected,
    /// `order.cancelled`.
    OrderCancelled,
}

impl Kind {
    /// The kind an event type produces, if any.
    pub fn for_event(event_type: &str) -> Option<Self> {
        match event_type {
            "user.registered" => Some(Kind::Welcome),
            "order.confirmed" => Some(Kind::OrderConfirmed),
            "order.rejected" => Some(Kind::OrderRejected),
            "order.cancelled" => Some(Kind::OrderCancelled),
            _ => None,
        }
    }

    /// Stored and shown name (`welcome`, `order_confirmed`, ...); also the
    /// stem of its template files.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Welcome => "welcome",
            Kind::OrderConfirmed => "order_confirmed",
            Kind::OrderRejected => "order_rejected",
            Kind::OrderCancelled => "order_cancelled",
        }
    }
}

/// Delivery state of a notification.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Waiting for the sender (first try or a retry).
    Pending,
    /// Accepted by the email backend.
    Sent,
    /// Given up after the configured attempts, or refused permanently.
    Failed,
}

impl Status {
    /// Stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pending => "pending",
            Status::Sent => "sent",
            Status::Failed => "failed",
        }
    }
}

/// An order's `status_reason` said in words for a customer.
pub fn reason_in_words(reason: Option<&str>) -> String {
    match reason.map(str::trim).unwrap_or("") {
        "" => "no reason was given".into(),
        "out_of_stock" => "some of the items are out of stock".into(),
        "payment_declined" => "your payment was declined by the card issuer".into(),
        "payment_timeout" | "payment_unavailable" => {
            "we could not reach the payment provider in time".into()
        }
        "reservation_expired" => "the items were held for too long and were released".into(),
        "cancelled_by_user" | "user_cancelled" | "customer_request" => {
            "you asked us to cancel it".into()
        }
        "cancelled_by_staff" => "our staff cancelled it".into(),
        other => other.replace(['_', '-'], " "),
    }
}

/// The email of a notification, rendered from templates.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rendered {
    /// Subject line (one line).
    pub subject: String,
    /// Plain-text body.
    pub text: String,
    /// HTML body.
    pub html: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_read_as_words() {
        assert_eq!(
            reason_in_words(Some("out_of_stock")),
            "some of the items are out of stock"
        );
        assert!(reason_in_words(Some("payment_declined")).contains("declined"));
        assert_eq!(reason_in_words(Some("fraud_suspected")), "fraud suspected");
        assert_eq!(reason_in_words(None), "no reason was given");
    }

    #[test]
    fn event_types_map_to_kinds() {
        assert_eq!(Kind::for_event("user.registered"), Some(Kind::Welcome));
        assert_eq!(
            Kind::for_event("order.rejected").map(Kind::as_str),
            Some("order_rejected")
        );
        assert_eq!(Kind::for_event("order.created"), None);
    }
}
