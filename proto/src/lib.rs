//! Generated gRPC types and services for `payments.v1` (see `payments/v1/payments.proto`).
//!
//! Layout: `payments/v1/*.proto` (the contract), `build.rs` (protox + tonic-prost-build),
//! this file (the generated module and the encoded descriptor set for server reflection).

/// `payments.v1`: the checkout API.
pub mod payments_v1 {
    #![allow(missing_docs, clippy::all)]
    tonic::include_proto!("payments.v1");
}

/// Encoded `FileDescriptorSet` of every proto here, for gRPC server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/payments_descriptor.bin"));
