//! Events identity publishes (through the kit's outbox, in the same
//! transaction as the change); it consumes none.

/// A user signed up, or an operator created one (`bazaar createsuperuser`);
/// the payload is in docs/contracts.md.
pub const USER_REGISTERED: &str = "user.registered";

/// Every event type identity publishes.
pub const PUBLISHED: &[&str] = &[USER_REGISTERED];
