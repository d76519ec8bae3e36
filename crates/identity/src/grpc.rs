//! Identity's internal gRPC API (`proto/bazaar/identity/v1`): users for
//! other services, behind a service token with `identity:read`.

use std::sync::Arc;

use bazaar_kit::auth::Verifier;
use bazaar_kit::grpc::{Routes, authorize};
use bazaar_proto::identity::v1::identity_server::{Identity, IdentityServer};
use bazaar_proto::identity::v1::{GetUserRequest, User};
use tonic::{Request, Response, Status};

use crate::AppState;
use crate::store;

/// The RPCs, for `Service::with_grpc`.
pub fn routes(state: AppState, verifier: Arc<Verifier>) -> (Routes, Vec<&'static str>) {
    let server = IdentityServer::new(Rpc { state, verifier });
    (Routes::new(server), vec!["bazaar.identity.v1.Identity"])
}

struct Rpc {
    state: AppState,
    verifier: Arc<Verifier>,
}

#[tonic::async_trait]
impl Identity for Rpc {
    #[tracing::instrument(skip_all, fields(id = %request.get_ref().id))]
    async fn get_user(&self, request: Request<GetUserRequest>) -> Result<Response<User>, Status> {
        authorize(&request, &self.verifier, "identity:read").await?;
        let id = request.into_inner().id;
        if uuid::Uuid::parse_str(&id).is_err() {
            return Err(Status::invalid_argument("id: Must be a valid UUID."));
        }
        let row = store::users::by_id(self.state.db.pool(), &id)
            .await
            .map_err(|e| {
                Status::from(bazaar_kit::Problem::from(
                    crate::error::IdentityError::from(e),
                ))
            })?
            .ok_or_else(|| Status::not_found("No such user."))?;
        Ok(Response::new(User {
            id: row.id,
            username: row.username,
            email: row.email,
            is_staff: row.is_staff,
        }))
    }
}
