//! `POST /orders/` bodies, parsed into a checked draft.

use std::collections::BTreeMap;

use bazaar_kit::error::FieldErrors;
use serde::{Deserialize, Serialize};

use super::{MAX_LINES, MAX_QUANTITY, PAYMENT_TOKENS};

/// The product id the document's examples order: a placeholder (no catalog
/// holds it) that `scripts/fuzz-api.sh` replaces with a demo product's id.
pub const EXAMPLE_PRODUCT_ID: &str = "0190a000-0000-7000-8000-000000000001";

/// The request body as sent. Fields a client may not set (`status`,
/// `price`, `total`, ...) are simply not read.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[schema(example = json!({
    "items": [{"product_id": EXAMPLE_PRODUCT_ID, "quantity": 1}],
    "payment_token": "tok_visa",
    "shipping_address": {"name": "Ada Lovelace", "line1": "12 St James's Square",
        "city": "London", "postal_code": "SW1Y 4JH", "country": "GB"},
}))]
pub struct CreateOrder {
    /// Lines: 1–50; lines of one product are merged (at most 100 units).
    #[schema(min_items = 1, max_items = 50)]
    pub items: Vec<ItemIn>,
    /// A test token: `tok_visa` (paid), `tok_chargeDeclined` (declined) or
    /// `tok_timeout` (the payment times out).
    #[schema(schema_with = payment_token_schema)]
    pub payment_token: String,
    /// Where to ship.
    pub shipping_address: Address,
}

fn payment_token_schema() -> utoipa::openapi::schema::Object {
    use utoipa::openapi::schema::{ObjectBuilder, Type};
    ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some(PAYMENT_TOKENS))
        .examples(["tok_visa"])
        .build()
}

/// One requested line.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[schema(as = OrderItemIn)]
pub struct ItemIn {
    /// Product id (a UUID of a product in the catalog).
    #[schema(format = Uuid, example = "0190a000-0000-7000-8000-000000000001")]
    pub product_id: String,
    /// Units, 1–100.
    #[schema(minimum = 1, maximum = 100)]
    pub quantity: i64,
}

/// A shipping address (every field but `line2` required, non-blank, at
/// most 200 characters).
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq, utoipa::ToSchema)]
#[schema(as = ShippingAddress)]
pub struct Address {
    /// Recipient.
    #[schema(
        max_length = 200,
        pattern = "[^\\t\\n\\u000b\\f\\r \\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000]"
    )]
    pub name: String,
    /// Street line.
    #[schema(
        max_length = 200,
        pattern = "[^\\t\\n\\u000b\\f\\r \\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000]"
    )]
    pub line1: String,
    /// Optional second line.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line2: Option<String>,
    /// City.
    #[schema(
        max_length = 200,
        pattern = "[^\\t\\n\\u000b\\f\\r \\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000]"
    )]
    pub city: String,
    /// Postal code.
    #[schema(
        max_length = 200,
        pattern = "[^\\t\\n\\u000b\\f\\r \\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000]"
    )]
    pub postal_code: String,
    /// Country.
    #[schema(
        max_length = 200,
        pattern = "[^\\t\\n\\u000b\\f\\r \\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000]"
    )]
    pub country: String,
}

/// A request that passed every rule that needs no other service.
#[derive(Debug, Clone)]
pub struct Draft {
    /// Product id → quantity, duplicates merged, in first-seen order.
    pub lines: Vec<(String, i64)>,
    /// Test token.
    pub payment_token: String,
    /// Shipping address, trimmed.
    pub address: Address,
}

impl CreateOrder {
    /// Checks lines, quantities, token and address; every problem at once.
    pub fn validate(self) -> Result<Draft, FieldErrors> {
        let mut errors = FieldErrors::new();
        let mut add = |field: String, msg: String| errors.entry(field).or_default().push(msg);
        if self.items.is_empty() {
            add("items".into(), "An order needs at least one item.".into());
        }
        if self.items.len() > MAX_LINES {
            add(
                "items".into(),
                format!("Ensure this field has no more than {MAX_LINES} elements."),
            );
        }
        let mut lines: Vec<(String, i64)> = Vec::new();
        let mut index: BTreeMap<String, usize> = BTreeMap::new();
        for (i, item) in self.items.iter().enumerate() {
            let id = match uuid::Uuid::parse_str(item.product_id.trim()) {
                Ok(u) => u.to_string(),
                Err(_) => {
                    add(
                        format!("items[{i}].product_id"),
                        format!("{:?} is not a valid UUID.", item.product_id),
                    );
                    continue;
                }
            };
            if !(1..=MAX_QUANTITY).contains(&item.quantity) {
                add(
                    format!("items[{i}].quantity"),
                    format!("Ensure this value is between 1 and {MAX_QUANTITY}."),
                );
                continue;
            }
            match index.get(&id) {
                Some(&at) => lines[at].1 += item.quantity,
                None => {
                    index.insert(id.clone(), lines.len());
                    lines.push((id, item.quantity));
                }
            }
        }
        for (id, qty) in &lines {
            if *qty > MAX_QUANTITY {
                add(
                    "items".into(),
                    format!("Product {id}: merged quantity {qty} exceeds {MAX_QUANTITY}."),
                );
            }
        }
        if !PAYMENT_TOKENS.contains(&self.payment_token.as_str()) {
            add(
                "payment_token".into(),
                format!(
                    "Unknown payment token; use one of {}.",
                    PAYMENT_TOKENS.join(", ")
                ),
            );
        }
        let a = &self.shipping_address;
        for (field, value) in [
            ("name", &a.name),
            ("line1", &a.line1),
            ("city", &a.city),
            ("postal_code", &a.postal_code),
            ("country", &a.country),
        ] {
            if value.trim().is_empty() {
                add(
                    format!("shipping_address.{field}"),
                    "This field may not be blank.".into(),
                );
            } else if value.chars().count() > 200 {
                add(
                    format!("shipping_address.{field}"),
                    "Ensure this field has no more than 200 characters.".into(),
                );
            }
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        let address = Address {
            name: a.name.trim().into(),
            line1: a.line1.trim().into(),
            line2: a
                .line2
                .as_deref()
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(Into::into),
            city: a.city.trim().into(),
            postal_code: a.postal_code.trim().into(),
            country: a.country.trim().into(),
        };
        Ok(Draft {
            lines,
            payment_token: self.payment_token,
            address,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(items: serde_json::Value, token: &str) -> CreateOrder {
        serde_json::from_value(serde_json::json!({
            "items": items,
            "payment_token": token,
            "status": "confirmed",
            "shipping_address": {"name": "A", "line1": "1 St", "city": "C", "postal_code": "1", "country": "US"},
        }))
        .expect("parses")
    }

    const P1: &str = "0190a0b0-0000-7000-8000-000000000001";
    const P2: &str = "0190a0b0-0000-7000-8000-000000000002";

    #[test]
    fn duplicates_merge_and_rules_hold() {
        let d = body(
            serde_json::json!([{"product_id": P1, "quantity": 2}, {"product_id": P2, "quantity": 1}, {"product_id": P1, "quantity": 3}]),
            "tok_visa",
        )
        .validate()
        .expect("valid");
        assert_eq!(d.lines, vec![(P1.to_string(), 5), (P2.to_string(), 1)]);

        let e = body(serde_json::json!([]), "tok_visa")
            .validate()
            .expect_err("empty");
        assert!(e.contains_key("items"));
        let e = body(
            serde_json::json!([{"product_id": P1, "quantity": 0}]),
            "tok_x",
        )
        .validate()
        .expect_err("bad");
        assert!(e.contains_key("items[0].quantity"));
        assert!(e.contains_key("payment_token"));
        let e = body(
            serde_json::json!([{"product_id": "nope", "quantity": 101}]),
            "tok_visa",
        )
        .validate()
        .expect_err("bad id");
        assert!(e.contains_key("items[0].product_id"));
        let many: Vec<_> = (0..51)
            .map(|_| serde_json::json!({"product_id": P1, "quantity": 1}))
            .collect();
        let e = body(serde_json::Value::Array(many), "tok_visa")
            .validate()
            .expect_err("51 lines");
        assert!(e.contains_key("items"));
    }
}
