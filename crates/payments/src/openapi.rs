//! The OpenAPI document of payments' public routes (never `/internal/`).

use bazaar_kit::openapi::{BearerAuth, Contract};
use utoipa::OpenApi;

use crate::routes::public::{self, PaymentView};

#[derive(OpenApi)]
#[openapi(
    info(title = "Bazaar payments", description = "Payments of orders (SPEC §3 payments)."),
    paths(public::list),
    components(schemas(PaymentView)),
    modifiers(&BearerAuth, &Contract),
    tags((name = "payments", description = "Payments of orders"))
)]
struct Doc;

/// The document.
pub fn doc() -> utoipa::openapi::OpenApi {
    Doc::openapi()
}

#[cfg(test)]
mod tests {
    use bazaar_kit::openapi::mismatches;

    /// SPEC §3 payments, as routed (`routes::public::router`). A route added
    /// without docs, or docs without a route, fails here.
    const PUBLIC: [(&str, &str); 1] = [("/api/v1/payments/", "GET")];

    #[test]
    fn documents_exactly_the_public_routes() {
        let doc = serde_json::to_value(super::doc()).expect("json");
        assert_eq!(mismatches(&doc, PUBLIC), Vec::<String>::new());
        let op = &doc["paths"]["/api/v1/payments/"]["get"];
        assert_eq!(op["tags"], serde_json::json!(["payments"]));
        assert_eq!(op["security"], serde_json::json!([{"bearer": []}]));
        assert!(
            op["parameters"]
                .as_array()
                .expect("params")
                .iter()
                .any(|p| p["name"] == "order_id" && p["in"] == "query")
        );
        let payment = &doc["components"]["schemas"]["Payment"]["properties"];
        assert_eq!(payment["amount"]["type"], "string");
        assert_eq!(
            payment["status"]["enum"],
            serde_json::json!(["succeeded", "declined", "refunded"])
        );
    }
}
