//! This consumer's own copy of the event contracts (docs/contracts.md),
//! holding only the fields it uses.

use std::fmt;

use serde::Deserialize;

/// `user.registered` v1.
#[derive(Debug, Deserialize)]
pub struct UserRegistered {
    pub user_id: String,
    pub username: String,
    pub email: String,
}

/// `order.confirmed` / `order.rejected` / `order.cancelled` v1.
#[derive(Debug, Deserialize)]
pub struct OrderEvent {
    pub order_id: String,
    pub user_id: String,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub status_reason: Option<String>,
    #[serde(default)]
    pub total: Amount,
    #[serde(default = "usd")]
    pub currency: String,
    #[serde(default)]
    pub items: Vec<OrderLine>,
}

/// One line of an order event.
#[derive(Debug, Deserialize)]
pub struct OrderLine {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub unit_price: Amount,
    #[serde(default)]
    pub quantity: i64,
    #[serde(default)]
    pub line_total: Amount,
}

fn usd() -> String {
    "USD".into()
}

/// A money amount as the contract sends it (`"19.99"`); a JSON number is
/// accepted too and shown as it came.
#[derive(Debug, Default, Deserialize)]
#[serde(untagged)]
pub enum Amount {
    /// `"19.99"`.
    Text(String),
    /// `19.99`.
    Number(serde_json::Number),
    /// Absent.
    #[default]
    #[serde(skip)]
    Missing,
}

impl fmt::Display for Amount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Amount::Text(s) => f.write_str(s),
            Amount::Number(n) => write!(f, "{n}"),
            Amount::Missing => f.write_str("?"),
        }
    }
}
