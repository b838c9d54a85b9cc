//! The `loyalty` binary: see `loyalty --help`.

fn main() -> std::process::ExitCode {
    loyalty_core::cli::main()
}
