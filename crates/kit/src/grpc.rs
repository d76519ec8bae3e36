//! Internal gRPC: the server every called service runs on its internal
//! port (its RPCs, `grpc.health.v1` and server reflection), service-token
//! checks per RPC, and the one mapping between the platform's errors and
//! gRPC status codes. The calling side is [`crate::client::ServiceClient`].

use std::net::SocketAddr;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tonic::{Code, Status};

use crate::auth::{AuthError, SERVICE_AUDIENCE, ServiceCaller, Verifier};
use crate::error::Problem;

/// The RPCs of one service, ready for [`serve`].
pub type Routes = tonic::service::Routes;

/// The service token of `request` (`authorization: Bearer` metadata),
/// verified, and holding `scope`: UNAUTHENTICATED without a valid service
/// token (a user's token is not one), PERMISSION_DENIED without the scope.
pub async fn authorize<T>(
    request: &tonic::Request<T>,
    verifier: &Verifier,
    scope: &str,
) -> Result<ServiceCaller, Status> {
    let token = request
        .metadata()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| Status::unauthenticated("A service token is required."))?;
    let claims = verifier
        .verify(token, SERVICE_AUDIENCE)
        .await
        .map_err(|e| match e {
            AuthError::KeysUnavailable(cause) => {
                tracing::warn!(%cause, "cannot fetch identity keys");
                Status::unavailable("Token keys are unavailable; try again shortly.")
            }
            other => {
                tracing::debug!(error = %other, "service token refused");
                Status::unauthenticated("The token is not a valid service token.")
            }
        })?;
    if claims.token_type != "service" {
        return Err(Status::unauthenticated(
            "The token is not a valid service token.",
        ));
    }
    let caller = ServiceCaller::from_claims(&claims);
    caller.require(scope).map_err(Status::from)?;
    Ok(caller)
}

/// The gRPC code of an HTTP status, for answers that are problems.
pub fn code_of(status: u16) -> Code {
    match status {
        400 | 413 | 415 | 422 => Code::InvalidArgument,
        401 => Code::Unauthenticated,
        403 => Code::PermissionDenied,
        404 => Code::NotFound,
        // A conflicting state (in progress, already final) the caller may
        // resolve by retrying later.
        409 => Code::Aborted,
        412 => Code::FailedPrecondition,
        429 => Code::ResourceExhausted,
        501 => Code::Unimplemented,
        502 | 503 => Code::Unavailable,
        504 => Code::DeadlineExceeded,
        _ => Code::Internal,
    }
}

impl From<Problem> for Status {
    /// The problem's detail with its code; field errors travel as
    /// `google.rpc.BadRequest` field violations (gRPC's rich error model)
    /// and in the message. Internal errors were already logged and carry
    /// no cause.
    fn from(problem: Problem) -> Self {
        let code = code_of(problem.status);
        let Some(errors) = &problem.errors else {
            return Status::new(code, problem.detail);
        };
        let mut message = problem.detail.clone();
        let mut violations = Vec::new();
        for (field, texts) in errors {
            message.push_str(&format!(" {field}: {}", texts.join(" ")));
            for text in texts {
                violations.push(tonic_types::FieldViolation::new(
                    field.clone(),
                    text.clone(),
                ));
            }
        }
        use tonic_types::StatusExt as _;
        Status::with_error_details(
            code,
            message,
            tonic_types::ErrorDetails::with_bad_request(violations),
        )
    }
}

/// Serves `routes` (named `names` for health checks) on `listener` with
/// `grpc.health.v1` and server reflection beside them, until `shutdown`.
pub async fn serve(
    service: &'static str,
    routes: Routes,
    names: Vec<&'static str>,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let (reporter, health) = tonic_health::server::health_reporter();
    for name in &names {
        reporter
            .set_service_status(*name, tonic_health::ServingStatus::Serving)
            .await;
    }
    // The overall status ("") too, as `grpc_health_probe` asks by default.
    reporter
        .set_service_status("", tonic_health::ServingStatus::Serving)
        .await;
    // Both reflection versions: grpcurl and grpcio's reflection client
    // still ask v1alpha, newer tools v1.
    // Only what this port serves is advertised (the descriptor set holds
    // every Bazaar service).
    let reflection = || {
        let mut builder = tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(bazaar_proto::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET);
        for name in names.iter().copied().chain([
            "grpc.health.v1.Health",
            "grpc.reflection.v1.ServerReflection",
            "grpc.reflection.v1alpha.ServerReflection",
        ]) {
            builder = builder.with_service_name(name);
        }
        builder
    };
    let reflection_v1 = reflection().build_v1()?;
    let reflection_v1alpha = reflection().build_v1alpha()?;
    let addr: Option<SocketAddr> = listener.local_addr().ok();
    tracing::debug!(?addr, "internal gRPC serving");
    let incoming = tokio_stream::wrappers::TcpListenerStream::new(listener);
    // One span per call, a child of the caller's trace (W3C `traceparent`
    // in the metadata) when tracing is on.
    let mut builder = tonic::transport::Server::builder()
        .tcp_nodelay(true)
        .trace_fn(move |request| rpc_span(service, request));
    let router = builder
        .add_routes(routes)
        .add_service(health)
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha);
    let stop = shutdown.clone();
    router
        .serve_with_incoming_shutdown(incoming, async move { stop.cancelled().await })
        .await?;
    Ok(())
}

/// The span of one internal call (`rpc.system` grpc, `rpc.service`,
/// `rpc.method` as the semantic conventions name them).
fn rpc_span(service: &'static str, request: &axum::http::Request<()>) -> tracing::Span {
    let path = request.uri().path().trim_start_matches('/');
    let (rpc_service, method) = path.split_once('/').unwrap_or((path, ""));
    let request_id = request
        .headers()
        .get(crate::http::REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let span = tracing::info_span!(
        "rpc",
        service,
        request_id,
        otel.name = path,
        otel.kind = "server",
        rpc.system = "grpc",
        rpc.service = rpc_service,
        rpc.method = method,
    );
    crate::telemetry::otel::set_parent_from(&span, request.headers());
    span
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn problems_map_to_codes() {
        assert_eq!(
            Status::from(Problem::field("ids", "Too many.")).code(),
            Code::InvalidArgument
        );
        assert_eq!(Status::from(Problem::not_found()).code(), Code::NotFound);
        assert_eq!(
            Status::from(Problem::forbidden("no")).code(),
            Code::PermissionDenied
        );
        assert_eq!(
            Status::from(Problem::unavailable("later")).code(),
            Code::Unavailable
        );
        assert_eq!(
            Status::from(Problem::gateway_timeout("slow")).code(),
            Code::DeadlineExceeded
        );
        assert_eq!(
            Status::from(Problem::conflict("busy")).code(),
            Code::Aborted
        );
        let status = Status::from(Problem::field("ids", "Too many."));
        assert!(status.message().contains("ids: Too many."), "{status:?}");
        use tonic_types::StatusExt as _;
        let bad = status.get_details_bad_request().expect("field violations");
        assert_eq!(bad.field_violations[0].field, "ids");
        assert_eq!(bad.field_violations[0].description, "Too many.");
    }
}
