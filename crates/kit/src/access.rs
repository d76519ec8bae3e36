//! The access log: one `info` line per request on every service (the
//! gateway's edge included), with the target `access` and these JSON field
//! names, stable for log pipelines (see `deploy/vector/`):
//!
//! | field | value |
//! |---|---|
//! | `service` | the service that answered |
//! | `method` | HTTP method |
//! | `route` | route template (`/api/v1/orders/{id}`), `unmatched` when none |
//! | `path` | the path as requested (no query string) |
//! | `status` | response status code |
//! | `duration_ms` | time to the response head, milliseconds |
//! | `bytes` | response body size, when known up front |
//! | `request_id` | the request's `X-Request-ID` (unquoted) |
//! | `trace_id` | W3C trace id (32 hex) of the request's `traceparent` |
//! | `user_id` | the authenticated user: the gateway's token pre-verification, or a handler's auth extractor |
//!
//! Besides them each line has the formatter's `timestamp`, `level`,
//! `target` (`access`) and `message` (`request`).

use std::sync::{Arc, OnceLock};
use std::time::Duration;

/// One request, as the access log records it.
#[derive(Debug)]
pub struct AccessLog<'a> {
    /// The service that answered.
    pub service: &'a str,
    /// HTTP method.
    pub method: &'a str,
    /// Route template.
    pub route: &'a str,
    /// Path as requested.
    pub path: &'a str,
    /// Response status.
    pub status: u16,
    /// Time to the response head.
    pub duration: Duration,
    /// Response body size, when known.
    pub bytes: Option<u64>,
    /// `X-Request-ID`.
    pub request_id: &'a str,
    /// W3C trace id.
    pub trace_id: Option<&'a str>,
    /// Authenticated user id.
    pub user_id: Option<&'a str>,
}

impl AccessLog<'_> {
    /// Writes the line (target `access`, level `info`).
    pub fn emit(&self) {
        tracing::info!(
            target: "access",
            service = self.service,
            method = self.method,
            route = self.route,
            path = self.path,
            status = self.status,
            duration_ms = self.duration.as_secs_f64() * 1000.0,
            bytes = self.bytes,
            request_id = self.request_id,
            trace_id = self.trace_id,
            user_id = self.user_id,
            "request"
        );
    }
}

/// The trace id of a W3C `traceparent` (`00-<trace id>-<span id>-<flags>`),
/// when well formed.
pub fn trace_id_of(traceparent: &str) -> Option<&str> {
    let mut parts = traceparent.split('-');
    let (version, trace, span) = (parts.next()?, parts.next()?, parts.next()?);
    let hex = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_hexdigit());
    (hex(version, 2) && hex(trace, 32) && hex(span, 16) && trace.bytes().any(|b| b != b'0'))
        .then_some(trace)
}

/// Where an auth extractor leaves the caller's user id for the access log
/// (a request extension the middleware keeps a handle on).
#[derive(Clone, Debug, Default)]
pub struct UserSlot(Arc<OnceLock<String>>);

impl UserSlot {
    /// Records the authenticated user (the first one wins).
    pub fn set(&self, id: &str) {
        let _ = self.0.set(id.to_string());
    }

    /// The user recorded, if any.
    pub fn get(&self) -> Option<&str> {
        self.0.get().map(String::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::trace_id_of;

    #[test]
    fn trace_ids_come_from_well_formed_traceparents_only() {
        assert_eq!(
            trace_id_of("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
            Some("4bf92f3577b34da6a3ce929d0e0e4736")
        );
        for bad in [
            "",
            "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e47zz-00f067aa0ba902b7-01",
            "garbage",
        ] {
            assert_eq!(trace_id_of(bad), None, "{bad}");
        }
    }
}
