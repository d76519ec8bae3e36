//! Events catalog publishes (through the kit's outbox, in the same
//! transaction as the change); it consumes none: orders asks for stock over
//! HTTP (`routes/internal.rs`).

/// A product was created, updated or deleted.
pub const PRODUCT_CHANGED: &str = "product.changed";
/// An order's stock was reserved.
pub const STOCK_RESERVED: &str = "stock.reserved";
/// An order's stock could not be reserved (out of stock).
pub const STOCK_REJECTED: &str = "stock.rejected";
/// An order's reservation was released (rejected, cancelled or expired).
pub const STOCK_RELEASED: &str = "stock.released";

/// Every event type catalog publishes.
pub const PUBLISHED: &[&str] = &[
    PRODUCT_CHANGED,
    STOCK_RESERVED,
    STOCK_REJECTED,
    STOCK_RELEASED,
];
