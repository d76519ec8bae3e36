//! Compiles `proto/` with protox (pure Rust: no `protoc` needed) and
//! generates tonic clients and servers from the result.

use std::path::PathBuf;

use prost::Message as _;

const PROTOS: [&str; 3] = [
    "bazaar/identity/v1/identity.proto",
    "bazaar/catalog/v1/catalog.proto",
    "bazaar/payments/v1/payments.proto",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR")?).join("../../proto");
    println!("cargo:rerun-if-changed={}", root.display());
    let fds = protox::compile(PROTOS, [&root])?;
    // For server reflection: what `grpcurl list` and friends read.
    let out = PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(out.join("bazaar_descriptor.bin"), fds.encode_to_vec())?;
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .compile_fds(fds)?;
    Ok(())
}
