//! Catalog's internal gRPC API (`proto/bazaar/catalog/v1`): product facts
//! and stock reservations for the checkout saga. Service token required
//! (`catalog:read`, `catalog:reserve`); never on the public port.

use std::sync::Arc;

use bazaar_kit::Problem;
use bazaar_kit::auth::Verifier;
use bazaar_kit::grpc::{Routes, authorize};
use bazaar_proto::catalog::v1::catalog_server::{Catalog, CatalogServer};
use bazaar_proto::catalog::v1::reserve_response::Status as ReserveStatus;
use bazaar_proto::catalog::v1::{
    LookupProductsRequest, LookupProductsResponse, Product, ReservationAck, ReservationRef,
    ReserveRequest, ReserveResponse,
};
use tonic::{Request, Response, Status};

use crate::domain::Money;
use crate::domain::reservation::{Line, Outcome, ReserveBody};
use crate::error::CatalogError;
use crate::routes::AppState;
use crate::store::reservations::ReleaseKind;

/// Most ids one lookup may ask for.
const MAX_LOOKUP: usize = 500;

/// The RPCs, for `Service::with_grpc`.
pub fn routes(state: AppState, verifier: Arc<Verifier>) -> (Routes, Vec<&'static str>) {
    let server = CatalogServer::new(Rpc { state, verifier });
    (Routes::new(server), vec!["bazaar.catalog.v1.Catalog"])
}

struct Rpc {
    state: AppState,
    verifier: Arc<Verifier>,
}

fn status(e: impl Into<CatalogError>) -> Status {
    Status::from(Problem::from(e.into()))
}

#[tonic::async_trait]
impl Catalog for Rpc {
    #[tracing::instrument(skip_all)]
    async fn lookup_products(
        &self,
        request: Request<LookupProductsRequest>,
    ) -> Result<Response<LookupProductsResponse>, Status> {
        authorize(&request, &self.verifier, "catalog:read").await?;
        let ids = request.into_inner().ids;
        if ids.len() > MAX_LOOKUP {
            return Err(status(CatalogError::field(
                "ids",
                format!("Ensure this list has at most {MAX_LOOKUP} elements."),
            )));
        }
        let products = self
            .state
            .store
            .products_by_ids(&ids)
            .await
            .map_err(status)?
            .into_iter()
            .map(|p| Product {
                price: Money::from_cents(p.price_cents).to_string(),
                id: p.id,
                sku: p.sku,
                name: p.name,
                price_cents: p.price_cents,
                currency: p.currency,
                stock: p.stock,
            })
            .collect();
        Ok(Response::new(LookupProductsResponse { products }))
    }

    #[tracing::instrument(skip_all, fields(order_id = %request.get_ref().order_id))]
    async fn reserve(
        &self,
        request: Request<ReserveRequest>,
    ) -> Result<Response<ReserveResponse>, Status> {
        authorize(&request, &self.verifier, "catalog:reserve").await?;
        let body = request.into_inner();
        let reservation = ReserveBody {
            order_id: body.order_id,
            items: body
                .items
                .into_iter()
                .map(|l| Line {
                    product_id: l.product_id,
                    quantity: l.quantity,
                })
                .collect(),
        }
        .validate()
        .map_err(|errors| status(CatalogError::Invalid(errors)))?;
        let ttl_ms = self.state.settings.reservation_ttl().as_millis() as i64;
        let outcome = self
            .state
            .store
            .reserve(&reservation, ttl_ms)
            .await
            .map_err(status)?;
        let order_id = reservation.order_id;
        let rejected = |reason: &str, product_ids: Vec<String>| ReserveResponse {
            order_id: order_id.clone(),
            status: ReserveStatus::Rejected.into(),
            reason: reason.into(),
            product_ids,
        };
        Ok(Response::new(match outcome {
            Outcome::Reserved | Outcome::Committed => {
                self.state.written();
                ReserveResponse {
                    order_id: order_id.clone(),
                    status: ReserveStatus::Reserved.into(),
                    reason: String::new(),
                    product_ids: Vec::new(),
                }
            }
            Outcome::Rejected { product_ids } => {
                self.state.bus.nudge();
                rejected("out_of_stock", product_ids)
            }
            // Reserved once, but its hold ran out (or it was cancelled): the
            // stock is no longer held, so the order must not go on.
            Outcome::Released => rejected("expired", Vec::new()),
        }))
    }

    #[tracing::instrument(skip_all, fields(order_id = %request.get_ref().order_id))]
    async fn commit(
        &self,
        request: Request<ReservationRef>,
    ) -> Result<Response<ReservationAck>, Status> {
        authorize(&request, &self.verifier, "catalog:reserve").await?;
        let order_id = request.into_inner().order_id;
        self.state
            .store
            .commit_reservation(&order_id)
            .await
            .map_err(status)?;
        Ok(Response::new(ReservationAck {
            order_id,
            status: "committed".into(),
        }))
    }

    #[tracing::instrument(skip_all, fields(order_id = %request.get_ref().order_id))]
    async fn release(
        &self,
        request: Request<ReservationRef>,
    ) -> Result<Response<ReservationAck>, Status> {
        authorize(&request, &self.verifier, "catalog:reserve").await?;
        let order_id = request.into_inner().order_id;
        if self
            .state
            .store
            .release_reservation(&order_id, ReleaseKind::Requested)
            .await
            .map_err(status)?
        {
            self.state.written();
        }
        Ok(Response::new(ReservationAck {
            order_id,
            status: "released".into(),
        }))
    }
}
