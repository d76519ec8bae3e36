//! The Bazaar platform as a library: start any set of services in this
//! process (what `bazaar up` and `bazaar serve` do, and what the end-to-end
//! tests call with port-0 listeners and fresh databases).

pub mod bench;
pub mod cmd_events;
pub mod cmd_seed;
pub mod platform;

#[cfg(test)]
mod events_table;
#[cfg(test)]
mod migration_parity;

pub use platform::{Running, build_service, migrate, start};
