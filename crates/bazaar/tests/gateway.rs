//! The API gateway as a black box: routing and edge headers, `/internal/`
//! hidden, JWT pre-verification, rate limits (in memory, and shared through
//! Redis by two gateway instances), breaker, failover, timeouts, SSE, body
//! limit, CORS, compression and the offline docs; and on the wire, with a
//! raw TCP client: pipelining, split bodies, HEAD, `Connection: close`,
//! chunked responses, and a connection moving to the general server. Upstreams are tiny axum
//! servers on port 0 (tests/gateway/upstream.rs).

mod common;
#[path = "gateway/edge.rs"]
mod edge;
#[path = "gateway/harness.rs"]
mod harness;
#[path = "gateway/resilience.rs"]
mod resilience;
#[path = "gateway/upstream.rs"]
mod upstream;
#[path = "gateway/wire.rs"]
mod wire;
