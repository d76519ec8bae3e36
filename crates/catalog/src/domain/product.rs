//! Products and categories: the rules a write must satisfy.

use bazaar_kit::error::FieldErrors;
use serde::Deserialize;

use super::money::Money;

/// Largest stock a product may hold.
pub const MAX_STOCK: i64 = 1_000_000_000;

/// A validated SKU: 1–64 letters, digits, `-`, `_` or `.`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sku(String);

impl Sku {
    /// Parses a SKU.
    pub fn parse(raw: &str) -> Result<Sku, String> {
        let s = raw.trim();
        if s.is_empty() {
            return Err("This field may not be blank.".into());
        }
        if s.len() > 64 {
            return Err("Ensure this field has no more than 64 characters.".into());
        }
        if !s
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        {
            return Err("Enter a valid SKU: letters, digits, '-', '_' or '.'.".into());
        }
        Ok(Sku(s.to_string()))
    }

    /// The SKU text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A validated category slug: 1–50 of lowercase letters, digits and `-`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Slug(String);

impl Slug {
    /// Parses a slug.
    pub fn parse(raw: &str) -> Result<Slug, String> {
        let s = raw.trim();
        if s.is_empty() {
            return Err("This field may not be blank.".into());
        }
        if s.len() > 50 {
            return Err("Ensure this field has no more than 50 characters.".into());
        }
        if !s
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
        {
            return Err(
                "Enter a valid \u{201c}slug\u{201d} consisting of lowercase letters, numbers, underscores or hyphens."
                    .into(),
            );
        }
        Ok(Slug(s.to_string()))
    }

    /// A slug made from a name ("Home & Kitchen" → "home-kitchen").
    pub fn from_name(name: &str) -> Result<Slug, String> {
        let mut out = String::new();
        for c in name.chars() {
            if c.is_ascii_alphanumeric() {
                out.push(c.to_ascii_lowercase());
            } else if !out.ends_with('-') && !out.is_empty() {
                out.push('-');
            }
        }
        Slug::parse(out.trim_end_matches('-'))
    }

    /// The slug text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A product body as sent by a client (POST, PUT or PATCH). Every field is
/// optional here; validation decides what is required: POST and PUT need
/// `sku`, `name`, `price` and `category`, PATCH none.
#[derive(Debug, Default, Deserialize)]
pub struct ProductBody {
    /// Stock-keeping unit.
    #[serde(default, deserialize_with = "bazaar_kit::extract::present")]
    pub sku: Option<String>,
    /// Display name.
    #[serde(default, deserialize_with = "bazaar_kit::extract::present")]
    pub name: Option<String>,
    /// Long text.
    #[serde(default, deserialize_with = "bazaar_kit::extract::present")]
    pub description: Option<String>,
    /// Decimal string or number, > 0, at most 2 decimals.
    #[serde(default, deserialize_with = "bazaar_kit::extract::present")]
    pub price: Option<serde_json::Value>,
    /// Only `USD`.
    #[serde(default, deserialize_with = "bazaar_kit::extract::present")]
    pub currency: Option<String>,
    /// Category slug.
    #[serde(default, deserialize_with = "bazaar_kit::extract::present")]
    pub category: Option<String>,
    /// Units on hand.
    #[serde(default, deserialize_with = "bazaar_kit::extract::present")]
    pub stock: Option<i64>,
}

/// The `POST` and `PUT` body ([`ProductBody`] as `validate(true)` takes
/// it): `sku`, `name`, `price` and `category` required; none may be `null`.
#[derive(utoipa::ToSchema)]
#[schema(example = json!({"sku": "MUG-001", "name": "Stoneware mug", "price": "12.50",
    "category": "kitchen", "stock": 10}))]
#[allow(dead_code)]
pub struct ProductCreate {
    /// 1–64 letters, digits, `-`, `_` or `.`; unique.
    #[schema(pattern = "^\\s*[A-Za-z0-9._-]{1,64}\\s*$")]
    sku: String,
    /// Display name, at most 200 characters; not blank.
    #[schema(
        max_length = 200,
        pattern = "[^\\t\\n\\u000b\\f\\r \\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000]"
    )]
    name: String,
    /// Long text, at most 5000 characters (default empty).
    #[schema(required = false, max_length = 5000)]
    description: String,
    /// Decimal string or number, > 0, at most 2 decimals.
    #[schema(schema_with = price_schema)]
    price: String,
    /// The currency (only `USD`, the default).
    #[schema(required = false, schema_with = currency_schema)]
    currency: String,
    /// An existing category's slug.
    #[schema(
        pattern = "[^\\t\\n\\u000b\\f\\r \\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000]"
    )]
    category: String,
    /// Units on hand (default 0).
    #[schema(required = false, minimum = 0, maximum = 1_000_000_000)]
    stock: i64,
}

/// The `PATCH` body: any of [`ProductCreate`]'s fields, same rules; none
/// may be `null`.
#[derive(utoipa::ToSchema)]
#[schema(as = ProductPatch, example = json!({"price": "9.99", "stock": 25}))]
#[allow(dead_code)]
pub struct ProductPatchDoc {
    /// 1–64 letters, digits, `-`, `_` or `.`; unique.
    #[schema(required = false, pattern = "^\\s*[A-Za-z0-9._-]{1,64}\\s*$")]
    sku: String,
    /// Display name, at most 200 characters; not blank.
    #[schema(
        required = false,
        max_length = 200,
        pattern = "[^\\t\\n\\u000b\\f\\r \\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000]"
    )]
    name: String,
    /// Long text, at most 5000 characters.
    #[schema(required = false, max_length = 5000)]
    description: String,
    /// Decimal string or number, > 0, at most 2 decimals.
    #[schema(required = false, schema_with = price_schema)]
    price: String,
    /// The currency (only `USD`).
    #[schema(required = false, schema_with = currency_schema)]
    currency: String,
    /// An existing category's slug.
    #[schema(
        required = false,
        pattern = "[^\\t\\n\\u000b\\f\\r \\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000]"
    )]
    category: String,
    /// Units on hand.
    #[schema(required = false, minimum = 0, maximum = 1_000_000_000)]
    stock: i64,
}

/// `price` in a request: a decimal string (`"19.99"`) or a JSON number,
/// > 0 with at most 2 decimals and 8 integer digits.
fn price_schema() -> utoipa::openapi::schema::Schema {
    use utoipa::openapi::schema::{ObjectBuilder, OneOfBuilder, Schema, Type};
    let one_of = OneOfBuilder::new()
        .item(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .pattern(Some(PRICE_PATTERN))
                .examples(["19.99"]),
        )
        .item(
            ObjectBuilder::new()
                .schema_type(Type::Number)
                .exclusive_minimum(Some(0))
                .maximum(Some(99_999_999.99))
                .multiple_of(Some(0.01)),
        )
        .description(Some("Decimal string or number, > 0, at most 2 decimals."))
        .build();
    Schema::OneOf(one_of)
}

/// The text [`Money::parse_price`] accepts: digits (at most 8 before the
/// point, 2 significant after it), not zero, white space around.
pub const PRICE_PATTERN: &str =
    r"^\s*(?=\+?\.?[0-9])(?=[^1-9]*[1-9])\+?0*[0-9]{0,8}(\.[0-9]{0,2}0*)?\s*$";

fn currency_schema() -> utoipa::openapi::schema::Object {
    use utoipa::openapi::schema::{ObjectBuilder, Type};
    ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some(["USD"]))
        .build()
}

/// Validated changes to a product; `None` leaves a field as it is.
#[derive(Clone, Debug, Default)]
pub struct ProductPatch {
    /// New SKU.
    pub sku: Option<Sku>,
    /// New name.
    pub name: Option<String>,
    /// New description.
    pub description: Option<String>,
    /// New price.
    pub price: Option<Money>,
    /// New currency.
    pub currency: Option<String>,
    /// New category slug (existence is checked by the store).
    pub category: Option<String>,
    /// New stock.
    pub stock: Option<i64>,
}

impl ProductBody {
    /// Validates the body. With `full` (POST, PUT) the required fields must
    /// be present and the optional ones get their defaults.
    pub fn validate(self, full: bool) -> Result<ProductPatch, FieldErrors> {
        let mut errors = FieldErrors::new();
        let mut err = |field: &str, msg: String| {
            errors.entry(field.to_string()).or_default().push(msg);
        };
        let required = "This field is required.".to_string();
        let mut patch = ProductPatch::default();
        match self.sku {
            Some(s) => match Sku::parse(&s) {
                Ok(v) => patch.sku = Some(v),
                Err(e) => err("sku", e),
            },
            None if full => err("sku", required.clone()),
            None => {}
        }
        match self.name {
            Some(n) if n.trim().is_empty() => err("name", "This field may not be blank.".into()),
            Some(n) if n.chars().count() > 200 => err(
                "name",
                "Ensure this field has no more than 200 characters.".into(),
            ),
            Some(n) => patch.name = Some(n.trim().to_string()),
            None if full => err("name", required.clone()),
            None => {}
        }
        match self.description {
            Some(d) if d.chars().count() > 5000 => err(
                "description",
                "Ensure this field has no more than 5000 characters.".into(),
            ),
            Some(d) => patch.description = Some(d),
            None if full => patch.description = Some(String::new()),
            None => {}
        }
        match self.price {
            Some(p) => match Money::from_json(&p) {
                Ok(m) => patch.price = Some(m),
                Err(e) => err("price", e.to_string()),
            },
            None if full => err("price", required.clone()),
            None => {}
        }
        match self.currency {
            Some(c) if c == "USD" => patch.currency = Some(c),
            Some(c) => err("currency", format!("\"{c}\" is not a valid choice.")),
            None if full => patch.currency = Some("USD".into()),
            None => {}
        }
        match self.category {
            Some(c) if c.trim().is_empty() => {
                err("category", "This field may not be blank.".into())
            }
            Some(c) => patch.category = Some(c.trim().to_string()),
            None if full => err("category", required),
            None => {}
        }
        match self.stock {
            Some(s) if s < 0 => err(
                "stock",
                "Ensure this value is greater than or equal to 0.".into(),
            ),
            Some(s) if s > MAX_STOCK => err(
                "stock",
                format!("Ensure this value is less than or equal to {MAX_STOCK}."),
            ),
            Some(s) => patch.stock = Some(s),
            None if full => patch.stock = Some(0),
            None => {}
        }
        if errors.is_empty() {
            Ok(patch)
        } else {
            Err(errors)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_body_needs_required_fields() {
        let errors = ProductBody::default().validate(true).expect_err("empty");
        for f in ["sku", "name", "price", "category"] {
            assert_eq!(errors[f][0], "This field is required.", "{f}");
        }
        assert!(ProductBody::default().validate(false).is_ok());
    }

    #[test]
    fn field_rules() {
        let body = ProductBody {
            sku: Some("bad sku!".into()),
            name: Some("  ".into()),
            price: Some(serde_json::json!("1.001")),
            currency: Some("EUR".into()),
            category: Some("books".into()),
            stock: Some(-1),
            ..ProductBody::default()
        };
        let errors = body.validate(true).expect_err("invalid");
        for f in ["sku", "name", "price", "currency", "stock"] {
            assert!(errors.contains_key(f), "{f}: {errors:?}");
        }
    }

    #[test]
    fn slugs() {
        assert_eq!(
            Slug::from_name("Home & Kitchen").map(|s| s.0),
            Ok("home-kitchen".into())
        );
        assert!(Slug::parse("Not A Slug").is_err());
    }
}
