//! How orders look on the wire (SPEC §3 orders).

use serde::Serialize;

use crate::domain::request::Address;
use crate::domain::{Status, money};
use crate::store::{HistoryRow, Order};

/// An order as clients see it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = Order)]
pub struct OrderView {
    /// Order id (UUIDv7).
    id: String,
    /// The owner's user id.
    user_id: String,
    /// Where the order is in checkout.
    #[schema(value_type = Status)]
    status: String,
    /// Why it was rejected or cancelled: `out_of_stock`, `payment_declined`,
    /// `payment_timeout`, `cancelled_by_customer`, `cancelled_by_staff`, ...
    status_reason: Option<String>,
    /// The lines, priced by the catalog at order time.
    items: Vec<LineView>,
    /// Sum of the line totals: a decimal string with two places.
    #[schema(example = "39.98")]
    total: String,
    /// ISO currency code.
    #[schema(example = "USD")]
    currency: String,
    /// Where to ship.
    #[schema(value_type = Address)]
    shipping_address: serde_json::Value,
    /// RFC 3339 UTC.
    created_at: String,
    /// RFC 3339 UTC.
    updated_at: String,
    /// Every status change, oldest first (detail and cancel only).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Vec<HistoryView>, required = false)]
    history: Option<Vec<HistoryView>>,
}

/// One line of an order.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = OrderItem)]
pub struct LineView {
    /// Product id (UUID).
    product_id: String,
    /// The product's name at order time.
    name: String,
    /// The catalog's price at order time: a decimal string.
    #[schema(example = "19.99")]
    unit_price: String,
    /// Units.
    quantity: i64,
    /// `unit_price × quantity`: a decimal string.
    #[schema(example = "39.98")]
    line_total: String,
}

/// One status change of an order.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = OrderHistoryEntry)]
pub struct HistoryView {
    /// The status entered.
    #[schema(value_type = Status)]
    status: String,
    /// Why, when there is a reason.
    reason: Option<String>,
    /// RFC 3339 UTC.
    at: String,
}

impl OrderView {
    /// The view of `order`, with its history when given (detail view).
    pub fn new(order: &Order, history: Option<Vec<HistoryRow>>) -> Self {
        let r = &order.row;
        let address = serde_json::from_str::<Address>(&r.shipping_address)
            .ok()
            .and_then(|a| serde_json::to_value(a).ok())
            .unwrap_or(serde_json::Value::Null);
        Self {
            id: r.id.clone(),
            user_id: r.user_id.clone(),
            status: r.status.as_str().to_string(),
            status_reason: r.status_reason.clone(),
            items: order
                .lines
                .iter()
                .map(|l| LineView {
                    product_id: l.product_id.clone(),
                    name: l.name.clone(),
                    unit_price: money(l.unit_price_cents),
                    quantity: l.quantity,
                    line_total: money(l.line_total_cents),
                })
                .collect(),
            total: money(r.total_cents),
            currency: r.currency.clone(),
            shipping_address: address,
            created_at: r.created_at.clone(),
            updated_at: r.updated_at.clone(),
            history: history.map(|h| {
                h.into_iter()
                    .map(|h| HistoryView {
                        status: h.status,
                        reason: h.reason,
                        at: h.at,
                    })
                    .collect()
            }),
        }
    }
}
