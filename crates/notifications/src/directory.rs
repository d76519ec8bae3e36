//! Where a user's address comes from when this service has no copy of it
//! (the user registered before notifications kept copies, or the
//! `user.registered` event was dead-lettered): identity's internal
//! `GetUser` RPC (`proto/bazaar/identity/v1`, scope `identity:read`).

use bazaar_kit::ServiceName;
use bazaar_kit::client::{CallOptions, ClientError, ServiceClient};
use bazaar_kit::events::HandlerError;
use bazaar_proto::identity::v1::GetUserRequest;
use bazaar_proto::identity::v1::identity_client::IdentityClient;

use crate::store::Recipient;

/// Looks users up in identity.
#[derive(Clone, Debug)]
pub struct Directory {
    client: ServiceClient,
}

impl Directory {
    /// A directory asking identity through `client`.
    pub fn new(client: ServiceClient) -> Self {
        Self { client }
    }

    /// The user's username and email, `None` when identity has no such
    /// user. Any other failure makes the event handler retry (and
    /// dead-letter after the kit's attempts).
    pub async fn lookup(&self, user_id: &str) -> Result<Option<Recipient>, HandlerError> {
        let request = GetUserRequest {
            id: user_id.to_string(),
        };
        let answer =
            self.client
                .grpc(
                    ServiceName::Identity,
                    &CallOptions::idempotent(),
                    request,
                    |channel, request| async move {
                        IdentityClient::new(channel).get_user(request).await
                    },
                )
                .await;
        match answer {
            Ok(user) => Ok(Some(Recipient {
                username: user.username,
                email: user.email,
            })),
            Err(ClientError::Rpc {
                code: tonic::Code::NotFound | tonic::Code::InvalidArgument,
                ..
            }) => Ok(None),
            Err(e) => Err(HandlerError::new(format!("identity lookup: {e}"))),
        }
    }
}
