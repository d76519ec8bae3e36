//! Types and rules of the catalog; no HTTP, no SQL.

pub mod filters;
pub mod money;
pub mod product;
pub mod reservation;

pub use filters::{Ordering, ProductFilter};
pub use money::Money;
pub use product::{ProductBody, ProductPatch, Sku, Slug};
