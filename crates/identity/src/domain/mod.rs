//! Identity's types and rules: no axum, no SQL.

pub mod email;
pub mod password;
pub mod username;

pub use email::Email;
pub use password::{PasswordPolicy, hash_password, verify_password};
pub use username::Username;

/// The message DRF gives a blank required string.
pub const BLANK: &str = "This field may not be blank.";
