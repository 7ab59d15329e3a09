fn main() -> std::process::ExitCode {
    faceperf::cli::main()
}
