//! The OpenAPI document of catalog's public routes (never `/internal/`).

use bazaar_kit::openapi::{BearerAuth, Contract, Link, Links};
use utoipa::OpenApi;

use crate::domain::product::{ProductCreate, ProductPatchDoc};
use crate::routes::{categories, products};
use crate::store::{Category, Product};

/// create → get, replace, patch and delete the new product.
const LINKS: Links = Links(&[
    Link {
        from: "create_product",
        status: "201",
        name: "GetProduct",
        to: "get_product",
        parameters: &[("path.id", "$response.body#/id")],
        body: None,
    },
    Link {
        from: "create_product",
        status: "201",
        name: "ReplaceProduct",
        to: "replace_product",
        parameters: &[("path.id", "$response.body#/id")],
        body: None,
    },
    Link {
        from: "create_product",
        status: "201",
        name: "UpdateProduct",
        to: "update_product",
        parameters: &[("path.id", "$response.body#/id")],
        body: None,
    },
    Link {
        from: "create_product",
        status: "201",
        name: "DeleteProduct",
        to: "delete_product",
        parameters: &[("path.id", "$response.body#/id")],
        body: None,
    },
]);

#[derive(OpenApi)]
#[openapi(
    info(title = "Bazaar catalog", description = "Categories and products (SPEC §3 catalog)."),
    paths(
        categories::list, categories::create,
        products::list, products::create, products::detail,
        products::replace, products::update, products::remove,
    ),
    components(schemas(Category, categories::CategoryBody, Product, ProductCreate, ProductPatchDoc)),
    modifiers(&BearerAuth, &Contract, &LINKS),
    tags((name = "catalog", description = "Categories and products"))
)]
struct Doc;

/// The document.
pub fn doc() -> utoipa::openapi::OpenApi {
    Doc::openapi()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use bazaar_kit::openapi::mismatches;

    /// SPEC §3 catalog, as routed (`routes::router`, public part). A route
    /// added without docs, or docs without a route, fails here.
    const PUBLIC: [(&str, &str, bool); 8] = [
        ("/api/v1/categories/", "GET", false),
        ("/api/v1/categories/", "POST", true),
        ("/api/v1/products/", "GET", false),
        ("/api/v1/products/", "POST", true),
        ("/api/v1/products/{id}/", "GET", false),
        ("/api/v1/products/{id}/", "PUT", true),
        ("/api/v1/products/{id}/", "PATCH", true),
        ("/api/v1/products/{id}/", "DELETE", true),
    ];

    #[test]
    fn documents_exactly_the_public_routes() {
        let doc = serde_json::to_value(super::doc()).expect("json");
        assert_eq!(
            mismatches(&doc, PUBLIC.iter().map(|(p, m, _)| (*p, *m))),
            Vec::<String>::new()
        );
        for (path, method, staff) in PUBLIC {
            let op = &doc["paths"][path][method.to_lowercase()];
            assert_eq!(
                op["tags"],
                serde_json::json!(["catalog"]),
                "{method} {path}"
            );
            assert_eq!(
                bazaar_kit::openapi::is_protected(op.get("security")),
                staff,
                "{method} {path}"
            );
        }
        let list = &doc["paths"]["/api/v1/products/"]["get"]["parameters"];
        let names: BTreeSet<&str> = list
            .as_array()
            .expect("params")
            .iter()
            .filter_map(|p| p["name"].as_str())
            .collect();
        for name in [
            "search",
            "category",
            "min_price",
            "max_price",
            "in_stock",
            "ordering",
            "page",
            "page_size",
        ] {
            assert!(names.contains(name), "{name}");
        }
        let product = &doc["components"]["schemas"]["Product"]["properties"];
        assert_eq!(product["price"]["type"], "string");
        assert!(product.get("price_cents").is_none());
    }
}
