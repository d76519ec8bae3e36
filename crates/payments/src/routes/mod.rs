//! HTTP routes, one module per resource.

pub mod internal;
pub mod public;
