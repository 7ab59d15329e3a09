fn main() -> std::process::ExitCode {
    restore_default_sigpipe();
    faceperf::cli::main()
}

/// Rust ignores SIGPIPE, so printing into a closed pipe (`faceperf doctor | head -1`) panics; the
/// default action ends the process quietly, as command-line tools are expected to.
fn restore_default_sigpipe() {
    #[cfg(unix)]
    // SAFETY: called first thing in `main`, before any other thread exists; SIG_DFL is always valid.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}
