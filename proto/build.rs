//! Compiles the gRPC contract with a vendored protoc so no system protoc is needed.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let protoc = protoc_bin_vendored::protoc_bin_path()?;
    // SAFETY-free: build scripts are single-threaded; tonic-prost-build reads PROTOC.
    unsafe_set_protoc(&protoc);
    let out_dir = std::path::PathBuf::from(std::env::var("OUT_DIR")?);
    tonic_prost_build::configure()
        .file_descriptor_set_path(out_dir.join("bosun_descriptor.bin"))
        .compile_protos(&["bosun/v1/gateway.proto"], &["."])?;
    println!("cargo:rerun-if-changed=bosun/v1/gateway.proto");
    Ok(())
}

#[allow(
    unsafe_code,
    reason = "set_var is unsafe in edition 2024; build scripts are single-threaded"
)]
fn unsafe_set_protoc(path: &std::path::Path) {
    unsafe { std::env::set_var("PROTOC", path) };
}
