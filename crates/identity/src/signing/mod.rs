//! The identity provider's signing: Ed25519 keys kept in identity's
//! database (rotation, JWKS) and the tokens they sign.

pub mod keys;
pub mod tokens;
