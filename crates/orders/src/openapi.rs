//! The OpenAPI document of orders' public routes.

use bazaar_kit::openapi::{BearerAuth, Contract, Link, Links};
use utoipa::OpenApi;

use crate::domain::Status;
use crate::domain::request::{Address, CreateOrder, ItemIn};
use crate::routes::events::StatusEvent;
use crate::routes::view::{HistoryView, LineView, OrderView};
use crate::routes::{create, events, orders};

/// create → get, cancel and events of the new order.
const LINKS: Links = Links(&[
    Link {
        from: "create_order",
        status: "201",
        name: "GetOrder",
        to: "get_order",
        parameters: &[("path.id", "$response.body#/id")],
        body: None,
    },
    Link {
        from: "create_order",
        status: "201",
        name: "CancelOrder",
        to: "cancel_order",
        parameters: &[("path.id", "$response.body#/id")],
        body: None,
    },
    Link {
        from: "create_order",
        status: "201",
        name: "OrderEvents",
        to: "order_events",
        parameters: &[("path.id", "$response.body#/id")],
        body: None,
    },
    Link {
        from: "get_order",
        status: "200",
        name: "CancelOrder",
        to: "cancel_order",
        parameters: &[("path.id", "$response.body#/id")],
        body: None,
    },
]);

#[derive(OpenApi)]
#[openapi(
    info(title = "Bazaar orders", description = "Orders, checkout and live status (SPEC §3 orders)."),
    paths(create::create, orders::list, orders::detail, orders::cancel, events::events),
    components(schemas(OrderView, LineView, HistoryView, Status, CreateOrder, ItemIn, Address, StatusEvent)),
    modifiers(&BearerAuth, &Contract, &LINKS),
    tags((name = "orders", description = "Orders and their checkout"))
)]
struct Doc;

/// The document.
pub fn doc() -> utoipa::openapi::OpenApi {
    Doc::openapi()
}

#[cfg(test)]
mod tests {
    use bazaar_kit::openapi::mismatches;

    /// SPEC §3 orders, as routed (`routes::router`); every one needs a token.
    /// A route added without docs, or docs without a route, fails here.
    const PUBLIC: [(&str, &str); 5] = [
        ("/api/v1/orders/", "GET"),
        ("/api/v1/orders/", "POST"),
        ("/api/v1/orders/{id}/", "GET"),
        ("/api/v1/orders/{id}/cancel/", "POST"),
        ("/api/v1/orders/{id}/events/", "GET"),
    ];

    #[test]
    fn documents_exactly_the_public_routes() {
        let doc = serde_json::to_value(super::doc()).expect("json");
        assert_eq!(mismatches(&doc, PUBLIC), Vec::<String>::new());
        for (path, method) in PUBLIC {
            let op = &doc["paths"][path][method.to_lowercase()];
            assert_eq!(op["tags"], serde_json::json!(["orders"]), "{method} {path}");
            assert_eq!(
                op["security"],
                serde_json::json!([{"bearer": []}]),
                "{method} {path}"
            );
        }
        let create = &doc["paths"]["/api/v1/orders/"]["post"];
        assert!(
            create["parameters"]
                .as_array()
                .expect("params")
                .iter()
                .any(|p| p["name"] == "Idempotency-Key" && p["in"] == "header")
        );
        let list = &doc["paths"]["/api/v1/orders/"]["get"]["parameters"];
        assert!(
            list.as_array()
                .expect("params")
                .iter()
                .any(|p| p["name"] == "user")
        );
        let events = &doc["paths"]["/api/v1/orders/{id}/events/"]["get"]["responses"]["200"];
        assert!(
            events["content"]["text/event-stream"].is_object(),
            "{events}"
        );
        let order = &doc["components"]["schemas"]["Order"];
        assert_eq!(order["properties"]["total"]["type"], "string");
        let item = &doc["components"]["schemas"]["OrderItem"]["properties"];
        assert_eq!(item["unit_price"]["type"], "string");
        assert_eq!(item["line_total"]["type"], "string");
        let required = order["required"].as_array().expect("required");
        assert!(!required.contains(&"history".into()));
    }
}
