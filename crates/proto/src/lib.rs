//! Bazaar's internal gRPC contracts, generated from `proto/` at build time.
//! These are the wire types of the internal API only: each service maps
//! them to its own domain types at its edge.

#![allow(missing_docs, clippy::all, clippy::pedantic)]

/// Identity: users, for other services.
pub mod identity {
    pub mod v1 {
        tonic::include_proto!("bazaar.identity.v1");
    }
}

/// Catalog: product facts and stock reservations.
pub mod catalog {
    pub mod v1 {
        tonic::include_proto!("bazaar.catalog.v1");
    }
}

/// Payments: charges and refunds.
pub mod payments {
    pub mod v1 {
        tonic::include_proto!("bazaar.payments.v1");
    }
}

/// Every file above as an encoded `FileDescriptorSet`, for server
/// reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/bazaar_descriptor.bin"));
