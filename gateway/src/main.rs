//! The `bosun` binary.

fn main() -> std::process::ExitCode {
    bosun_gateway::cli::main()
}
