//! Order types and rules; no HTTP, no SQL.

pub mod order;
pub mod request;

use serde::{Deserialize, Serialize};

/// Test tokens the simulated provider knows (SPEC §3 payments).
pub const PAYMENT_TOKENS: [&str; 3] = ["tok_visa", "tok_chargeDeclined", "tok_timeout"];
/// Most lines an order may have.
pub const MAX_LINES: usize = 50;
/// Largest quantity of one line.
pub const MAX_QUANTITY: i64 = 100;

/// Where an order is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
#[schema(as = OrderStatus)]
pub enum Status {
    /// Created; stock not reserved yet.
    Pending,
    /// Stock reserved; charging.
    AwaitingPayment,
    /// Paid, stock committed (final unless cancelled).
    Confirmed,
    /// Out of stock, declined or timed out (final).
    Rejected,
    /// Cancelled by its owner or staff (final).
    Cancelled,
}

impl Status {
    /// The stored and shown name.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pending => "pending",
            Status::AwaitingPayment => "awaiting_payment",
            Status::Confirmed => "confirmed",
            Status::Rejected => "rejected",
            Status::Cancelled => "cancelled",
        }
    }

    /// Parses a stored name.
    pub fn parse(s: &str) -> Option<Self> {
        [
            Status::Pending,
            Status::AwaitingPayment,
            Status::Confirmed,
            Status::Rejected,
            Status::Cancelled,
        ]
        .into_iter()
        .find(|x| x.as_str() == s)
    }

    /// Whether the saga has finished with the order (SSE streams close).
    pub fn is_final(self) -> bool {
        matches!(
            self,
            Status::Confirmed | Status::Rejected | Status::Cancelled
        )
    }

    /// Whether a customer may still cancel.
    pub fn cancellable(self) -> bool {
        matches!(
            self,
            Status::Pending | Status::AwaitingPayment | Status::Confirmed
        )
    }
}

/// Formats cents as the API's decimal string (`1999` → `"19.99"`).
pub fn money(cents: i64) -> String {
    let sign = if cents < 0 { "-" } else { "" };
    let c = cents.unsigned_abs();
    format!("{sign}{}.{:02}", c / 100, c % 100)
}

/// JSON with object keys sorted at every level: two bodies that mean the
/// same compare equal (Idempotency-Key checks).
pub fn canonical_json(value: &serde_json::Value) -> String {
    fn sorted(v: &serde_json::Value) -> serde_json::Value {
        match v {
            serde_json::Value::Object(map) => {
                let mut keys: Vec<_> = map.keys().collect();
                keys.sort();
                let mut out = serde_json::Map::new();
                for k in keys {
                    out.insert(k.clone(), sorted(&map[k]));
                }
                serde_json::Value::Object(out)
            }
            serde_json::Value::Array(items) => {
                serde_json::Value::Array(items.iter().map(sorted).collect())
            }
            other => other.clone(),
        }
    }
    // Sorted insertion gives sorted output whether or not serde_json keeps
    // insertion order.
    sorted(value).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_round_trip() {
        for s in [
            "pending",
            "awaiting_payment",
            "confirmed",
            "rejected",
            "cancelled",
        ] {
            assert_eq!(Status::parse(s).map(Status::as_str), Some(s));
        }
        assert!(Status::Confirmed.is_final());
        assert!(!Status::AwaitingPayment.is_final());
        assert!(Status::Confirmed.cancellable());
        assert!(!Status::Rejected.cancellable());
    }

    #[test]
    fn money_and_canonical_json() {
        assert_eq!(money(1999), "19.99");
        assert_eq!(money(7), "0.07");
        let a: serde_json::Value =
            serde_json::from_str(r#"{"b":1,"a":{"y":2,"x":[{"q":1,"p":2}]}}"#).expect("json");
        let b: serde_json::Value =
            serde_json::from_str(r#"{"a":{"x":[{"p":2,"q":1}],"y":2},"b":1}"#).expect("json");
        assert_eq!(canonical_json(&a), canonical_json(&b));
    }
}
