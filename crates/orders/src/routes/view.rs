//! How orders look on the wire (SPEC §3 orders).

use serde::Serialize;

use crate::domain::money;
use crate::domain::request::Address;
use crate::store::{HistoryRow, Order};

/// An order as clients see it.
#[derive(Debug, Serialize)]
pub struct OrderView {
    id: String,
    user_id: String,
    status: String,
    status_reason: Option<String>,
    items: Vec<LineView>,
    total: String,
    currency: String,
    shipping_address: serde_json::Value,
    created_at: String,
    updated_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    history: Option<Vec<HistoryView>>,
}

#[derive(Debug, Serialize)]
struct LineView {
    product_id: String,
    name: String,
    unit_price: String,
    quantity: i64,
    line_total: String,
}

#[derive(Debug, Serialize)]
struct HistoryView {
    status: String,
    reason: Option<String>,
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
            status: r.status.clone(),
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
