//! Regenerates the prost message types for ONNX. Usage: gen-proto PROTO_DIR OUT_DIR
fn main() {
    let mut args = std::env::args().skip(1);
    let (proto_dir, out) = match (args.next(), args.next()) {
        (Some(p), Some(o)) => (p, o),
        _ => {
            eprintln!("usage: gen-proto PROTO_DIR OUT_DIR");
            std::process::exit(2);
        }
    };
    let protoc = protoc_bin_vendored::protoc_bin_path().expect("vendored protoc");
    std::env::set_var("PROTOC", protoc);
    let mut config = prost_build::Config::new();
    // `bytes::Bytes` for every bytes field: tensor payloads are shared, not copied, when a model is sliced.
    config.bytes(["."]);
    config.disable_comments(["."]);
    config.out_dir(&out);
    let proto = format!("{proto_dir}/onnx.proto3");
    config.compile_protos(&[proto.as_str()], &[proto_dir.as_str()]).expect("compile onnx.proto3");
}
