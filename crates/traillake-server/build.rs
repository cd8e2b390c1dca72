//! Generates the gRPC services of `proto/traillake/v1/service.proto` with tonic. The messages are
//! not generated again: they are `traillake_api::shapes`, the types the JSON gateway speaks too.
//! Also writes the descriptor set that gRPC server reflection serves.

use std::path::PathBuf;

fn main() {
    // Read at run time: a build script compiled for another checkout of the same sources is reused.
    let root =
        PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR")).join("../../proto");
    let proto_dir = root.join("traillake/v1");
    println!("cargo:rerun-if-changed={}", proto_dir.display());
    for entry in std::fs::read_dir(&proto_dir).expect("proto/traillake/v1 is readable") {
        println!(
            "cargo:rerun-if-changed={}",
            entry.expect("proto entry").path().display()
        );
    }
    if std::env::var_os("PROTOC").is_none() {
        let protoc = protoc_bin_vendored::protoc_bin_path().expect("vendored protoc");
        // SAFETY: build scripts are single-threaded; prost-build reads PROTOC from the environment.
        unsafe { std::env::set_var("PROTOC", protoc) };
    }
    let well_known = protoc_bin_vendored::include_path().expect("vendored protoc includes");
    let out_dir = PathBuf::from(std::env::var("OUT_DIR").expect("OUT_DIR"));
    tonic_prost_build::configure()
        // Clients too, for the server's integration tests.
        .build_client(true)
        .extern_path(".traillake.v1", "::traillake_api::shapes")
        .file_descriptor_set_path(out_dir.join("traillake_descriptor.bin"))
        .compile_protos(&[proto_dir.join("service.proto")], &[root, well_known])
        .expect("tonic generates the services");
}
