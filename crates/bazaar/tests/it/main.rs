//! The platform's end-to-end tests, one binary (the whole platform links
//! once) with a module per area. Each test starts the platform in-process
//! on port-0 listeners with fresh databases (see `common`).

#[path = "../common/mod.rs"]
mod common;
mod tokens;

mod bench;
mod catalog;
mod cli;
mod contract;
mod grpc;
mod identity;
mod notifications;
mod oauth_clients;
mod observability;
mod openapi;
mod orders;
mod platform;
mod resilience;
