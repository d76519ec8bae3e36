//! A new order, built from a checked draft and the catalog's prices: the
//! one place that decides an order's lines, total and currency.

use std::collections::BTreeMap;

use bazaar_kit::error::FieldErrors;

use super::Status;
use super::request::{Address, Draft};

/// A product as the catalog prices it now.
#[derive(Clone, Debug)]
pub struct Priced {
    /// Product name.
    pub name: String,
    /// Unit price, cents.
    pub price_cents: i64,
    /// ISO currency.
    pub currency: String,
}

/// One line of a new order (the catalog's data at order time).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Line {
    /// Product id.
    pub product_id: String,
    /// Product name then.
    pub name: String,
    /// Unit price then, cents.
    pub unit_price_cents: i64,
    /// Units.
    pub quantity: i64,
    /// `unit_price × quantity`, cents.
    pub line_total_cents: i64,
}

/// An order about to be stored: priced, in one currency, `pending`.
#[derive(Clone, Debug)]
pub struct NewOrder {
    /// Id (UUIDv7).
    pub id: String,
    /// Owner.
    pub user_id: String,
    /// Always [`Status::Pending`].
    pub status: Status,
    /// Lines, in the draft's order.
    pub lines: Vec<Line>,
    /// Sum of line totals, cents.
    pub total_cents: i64,
    /// The one currency of every line.
    pub currency: String,
    /// Test token to charge.
    pub payment_token: String,
    /// Where to ship.
    pub address: Address,
}

impl NewOrder {
    /// Prices `draft` for `user_id` from `catalog` (product id → price).
    /// Unknown products and mixed currencies are `items` field errors.
    pub fn price(
        draft: &Draft,
        user_id: &str,
        catalog: &BTreeMap<String, Priced>,
    ) -> Result<NewOrder, FieldErrors> {
        let unknown: Vec<&str> = draft
            .lines
            .iter()
            .map(|(id, _)| id.as_str())
            .filter(|id| !catalog.contains_key(*id))
            .collect();
        if !unknown.is_empty() {
            return Err(items_error(format!(
                "Unknown product(s): {}.",
                unknown.join(", ")
            )));
        }
        let mut lines = Vec::with_capacity(draft.lines.len());
        let mut currency: Option<&str> = None;
        for (id, quantity) in &draft.lines {
            let p = &catalog[id];
            if currency.is_some_and(|c| c != p.currency) {
                return Err(items_error(
                    "All products of an order must share one currency.".into(),
                ));
            }
            currency = Some(&p.currency);
            lines.push(Line {
                product_id: id.clone(),
                name: p.name.clone(),
                unit_price_cents: p.price_cents,
                quantity: *quantity,
                line_total_cents: p.price_cents.saturating_mul(*quantity),
            });
        }
        Ok(NewOrder {
            id: uuid::Uuid::now_v7().to_string(),
            user_id: user_id.to_string(),
            status: Status::Pending,
            total_cents: lines.iter().map(|l| l.line_total_cents).sum(),
            currency: currency.unwrap_or("USD").to_string(),
            lines,
            payment_token: draft.payment_token.clone(),
            address: draft.address.clone(),
        })
    }
}

fn items_error(message: String) -> FieldErrors {
    let mut errors = FieldErrors::new();
    errors.insert("items".into(), vec![message]);
    errors
}

#[cfg(test)]
mod tests {
    use super::*;

    fn draft(lines: &[(&str, i64)]) -> Draft {
        Draft {
            lines: lines
                .iter()
                .map(|(id, q)| ((*id).to_string(), *q))
                .collect(),
            payment_token: "tok_visa".into(),
            address: Address {
                name: "A".into(),
                line1: "1 St".into(),
                line2: None,
                city: "C".into(),
                postal_code: "1".into(),
                country: "US".into(),
            },
        }
    }

    fn priced(price_cents: i64, currency: &str) -> Priced {
        Priced {
            name: "Thing".into(),
            price_cents,
            currency: currency.into(),
        }
    }

    #[test]
    fn prices_lines_and_total() {
        let catalog = BTreeMap::from([
            ("a".to_string(), priced(250, "EUR")),
            ("b".to_string(), priced(1000, "EUR")),
        ]);
        let order = NewOrder::price(&draft(&[("a", 3), ("b", 1)]), "u1", &catalog).expect("priced");
        assert_eq!(order.status, Status::Pending);
        assert_eq!(order.total_cents, 1750);
        assert_eq!(order.currency, "EUR");
        assert_eq!(order.lines[0].line_total_cents, 750);
        assert_eq!(order.user_id, "u1");
    }

    #[test]
    fn unknown_products_and_mixed_currencies_are_field_errors() {
        let catalog = BTreeMap::from([
            ("a".to_string(), priced(250, "EUR")),
            ("b".to_string(), priced(1000, "USD")),
        ]);
        let e =
            NewOrder::price(&draft(&[("a", 1), ("x", 1)]), "u1", &catalog).expect_err("unknown");
        assert!(e["items"][0].contains('x'));
        let e = NewOrder::price(&draft(&[("a", 1), ("b", 1)]), "u1", &catalog).expect_err("mixed");
        assert!(e["items"][0].contains("currency"));
    }
}
