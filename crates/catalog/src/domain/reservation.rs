//! Stock reservations: the inventory side of the checkout saga.

use std::collections::BTreeMap;

use bazaar_kit::error::FieldErrors;
use serde::{Deserialize, Serialize};

/// Most lines one reservation may hold.
pub const MAX_LINES: usize = 100;
/// Most units of one product one reservation may hold.
pub const MAX_QUANTITY: i64 = 10_000;

/// A line of `POST /internal/reservations`.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
pub struct Line {
    /// Product id.
    pub product_id: String,
    /// Units.
    pub quantity: i64,
}

/// The body of `POST /internal/reservations`.
#[derive(Clone, Debug, Deserialize)]
pub struct ReserveBody {
    /// The order this reservation belongs to (the idempotency key).
    pub order_id: String,
    /// What to reserve.
    pub items: Vec<Line>,
}

/// A validated reservation request: lines merged by product, sorted by id
/// (so concurrent reservations lock rows in the same order).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reservation {
    /// Order id.
    pub order_id: String,
    /// One line per product, sorted by product id.
    pub lines: Vec<Line>,
}

impl ReserveBody {
    /// Validates and normalises the request.
    pub fn validate(self) -> Result<Reservation, FieldErrors> {
        let mut errors = FieldErrors::new();
        let order_id = self.order_id.trim().to_string();
        if order_id.is_empty() || order_id.len() > 64 {
            errors.insert("order_id".into(), vec!["Enter a valid order id.".into()]);
        }
        if self.items.is_empty() {
            errors.insert("items".into(), vec!["This list may not be empty.".into()]);
        }
        let mut merged: BTreeMap<String, i64> = BTreeMap::new();
        for (i, line) in self.items.iter().enumerate() {
            if !(1..=MAX_QUANTITY).contains(&line.quantity) {
                errors.insert(
                    format!("items[{i}].quantity"),
                    vec![format!(
                        "Ensure this value is between 1 and {MAX_QUANTITY}."
                    )],
                );
            }
            let id = line.product_id.trim();
            if id.is_empty() || id.len() > 64 {
                errors.insert(
                    format!("items[{i}].product_id"),
                    vec!["Enter a valid product id.".into()],
                );
            }
            let total = merged.entry(id.to_string()).or_default();
            *total = total.saturating_add(line.quantity);
        }
        if merged.len() > MAX_LINES {
            errors.insert(
                "items".into(),
                vec![format!(
                    "Ensure this list has at most {MAX_LINES} products."
                )],
            );
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        Ok(Reservation {
            order_id,
            lines: merged
                .into_iter()
                .map(|(product_id, quantity)| Line {
                    product_id,
                    quantity,
                })
                .collect(),
        })
    }
}

/// What a reservation call ended as.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Every line is held.
    Reserved,
    /// Nothing is held; these products lacked stock (or do not exist).
    Rejected {
        /// The products that could not be reserved.
        product_ids: Vec<String>,
    },
    /// Held and confirmed by the order (committed).
    Committed,
    /// Given back (released, expired or cancelled).
    Released,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merges_and_sorts_lines() {
        let r = ReserveBody {
            order_id: "o1".into(),
            items: vec![
                Line {
                    product_id: "b".into(),
                    quantity: 1,
                },
                Line {
                    product_id: "a".into(),
                    quantity: 2,
                },
                Line {
                    product_id: "b".into(),
                    quantity: 3,
                },
            ],
        }
        .validate()
        .expect("valid");
        assert_eq!(r.lines.len(), 2);
        assert_eq!(
            (r.lines[0].product_id.as_str(), r.lines[0].quantity),
            ("a", 2)
        );
        assert_eq!(
            (r.lines[1].product_id.as_str(), r.lines[1].quantity),
            ("b", 4)
        );
    }

    #[test]
    fn refuses_bad_lines() {
        let e = ReserveBody {
            order_id: "".into(),
            items: vec![Line {
                product_id: "a".into(),
                quantity: 0,
            }],
        }
        .validate()
        .expect_err("invalid");
        assert!(e.contains_key("order_id"));
        assert!(e.contains_key("items[0].quantity"));
    }
}
