//! HTTP routes, one module per resource.

pub mod public;
