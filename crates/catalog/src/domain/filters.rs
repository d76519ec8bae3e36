//! The product list's query parameters (django-filter + DRF `SearchFilter`
//! and `OrderingFilter`), parsed into a [`ProductFilter`]. A bad value is a
//! field error naming the parameter.

use std::collections::BTreeMap;

use bazaar_kit::error::FieldErrors;

use super::money::Money;

/// Sort orders a client may ask for.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Ordering {
    /// Cheapest first.
    Price,
    /// Dearest first.
    PriceDesc,
    /// A→Z.
    Name,
    /// Z→A.
    NameDesc,
    /// Oldest first.
    CreatedAt,
    /// Newest first (the default).
    #[default]
    CreatedAtDesc,
}

impl Ordering {
    /// Every accepted `?ordering=` value.
    pub const CHOICES: &'static str = "price, -price, name, -name, created_at, -created_at";

    /// Parses an `?ordering=` value.
    pub fn parse(raw: &str) -> Option<Ordering> {
        Some(match raw {
            "price" => Ordering::Price,
            "-price" => Ordering::PriceDesc,
            "name" => Ordering::Name,
            "-name" => Ordering::NameDesc,
            "created_at" => Ordering::CreatedAt,
            "-created_at" => Ordering::CreatedAtDesc,
            _ => return None,
        })
    }
}

/// A validated product list query.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProductFilter {
    /// Search terms (letters and digits only), all of which must match a
    /// word prefix in the name or description.
    pub terms: Vec<String>,
    /// Category slug.
    pub category: Option<String>,
    /// Lowest price, inclusive, in cents.
    pub min_price: Option<i64>,
    /// Highest price, inclusive, in cents.
    pub max_price: Option<i64>,
    /// Only products with stock > 0 (`true`), or only those without (`false`).
    pub in_stock: Option<bool>,
    /// Sort order.
    pub ordering: Ordering,
}

/// Splits a search string into index-safe terms: runs of letters and
/// digits, lowercased, at most 8 of them.
pub fn search_terms(raw: &str) -> Vec<String> {
    raw.split(|c: char| !c.is_alphanumeric())
        .filter(|t| !t.is_empty())
        .map(str::to_lowercase)
        .take(8)
        .collect()
}

impl ProductFilter {
    /// Parses the list's query parameters (others, like `page`, are ignored).
    pub fn parse(params: &BTreeMap<String, String>) -> Result<ProductFilter, FieldErrors> {
        let mut errors = FieldErrors::new();
        let mut filter = ProductFilter::default();
        let present = |k: &str| params.get(k).map(|v| v.trim()).filter(|v| !v.is_empty());
        if let Some(q) = present("search") {
            filter.terms = search_terms(q);
        }
        if let Some(c) = present("category") {
            filter.category = Some(c.to_string());
        }
        for (key, slot) in [
            ("min_price", &mut filter.min_price),
            ("max_price", &mut filter.max_price),
        ] {
            if let Some(v) = present(key) {
                match Money::parse_amount(v) {
                    Ok(m) => *slot = Some(m.cents()),
                    Err(e) => {
                        let msg = match e {
                            super::money::MoneyError::NotANumber => "Enter a number.".to_string(),
                            other => other.to_string(),
                        };
                        errors.insert(key.to_string(), vec![msg]);
                    }
                }
            }
        }
        // Choices are exact: `?in_stock=` or `?ordering= price` is no
        // choice, and a 400 like any other.
        if let Some(v) = params.get("in_stock").map(String::as_str) {
            match v {
                "true" | "True" | "1" => filter.in_stock = Some(true),
                "false" | "False" | "0" => filter.in_stock = Some(false),
                _ => {
                    errors.insert(
                        "in_stock".into(),
                        vec!["Select a valid choice: true or false.".into()],
                    );
                }
            }
        }
        if let Some(v) = params.get("ordering").map(String::as_str) {
            match Ordering::parse(v) {
                Some(o) => filter.ordering = o,
                None => {
                    errors.insert(
                        "ordering".into(),
                        vec![format!(
                            "Select a valid choice. {v} is not one of the available choices: {}.",
                            Ordering::CHOICES
                        )],
                    );
                }
            }
        }
        if let (Some(lo), Some(hi)) = (filter.min_price, filter.max_price)
            && lo > hi
            && !errors.contains_key("min_price")
        {
            errors.insert(
                "min_price".into(),
                vec!["Ensure min_price is not greater than max_price.".into()],
            );
        }
        if errors.is_empty() {
            Ok(filter)
        } else {
            Err(errors)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(pairs: &[(&str, &str)]) -> Result<ProductFilter, FieldErrors> {
        let map = pairs
            .iter()
            .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
            .collect();
        ProductFilter::parse(&map)
    }

    #[test]
    fn parses_every_filter() {
        let f = parse(&[
            ("search", "Red  kettle!"),
            ("category", "home"),
            ("min_price", "5"),
            ("max_price", "19.99"),
            ("in_stock", "true"),
            ("ordering", "-price"),
            ("page", "2"),
        ])
        .expect("valid");
        assert_eq!(f.terms, vec!["red", "kettle"]);
        assert_eq!(f.category.as_deref(), Some("home"));
        assert_eq!((f.min_price, f.max_price), (Some(500), Some(1999)));
        assert_eq!(f.in_stock, Some(true));
        assert_eq!(f.ordering, Ordering::PriceDesc);
    }

    #[test]
    fn bad_values_name_the_parameter() {
        let e = parse(&[
            ("min_price", "abc"),
            ("max_price", "1.234"),
            ("in_stock", "maybe"),
            ("ordering", "stock"),
        ])
        .expect_err("invalid");
        for k in ["min_price", "max_price", "in_stock", "ordering"] {
            assert!(e.contains_key(k), "{k}: {e:?}");
        }
        // A choice is exact: empty or padded is none.
        let e = parse(&[("in_stock", ""), ("ordering", " price")]).expect_err("no choice");
        for k in ["in_stock", "ordering"] {
            assert!(e.contains_key(k), "{k}: {e:?}");
        }
        // An empty price bound or search is no filter.
        assert!(parse(&[("min_price", ""), ("search", "")]).is_ok());
    }
}
