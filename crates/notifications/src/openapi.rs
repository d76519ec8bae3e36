//! The OpenAPI document of notifications' public routes.

use bazaar_kit::openapi::{BearerAuth, Contract};
use utoipa::OpenApi;

use crate::routes::notifications::{__path_list, NotificationView};

/// The service's OpenAPI document.
#[derive(OpenApi)]
#[openapi(
    paths(list),
    components(schemas(NotificationView)),
    modifiers(&BearerAuth, &Contract),
    tags((name = "notifications", description = "The email log"))
)]
pub struct ApiDoc;

/// The document.
pub fn doc() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}
