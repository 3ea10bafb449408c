//! The `tessera` binary: parse the command line, then hand over to [`tessera_server::cli::run`].

use clap::Parser as _;

/// mimalloc instead of the system allocator: allocation was about a tenth of the validation hot
/// path's CPU time with glibc's (docs/benchmarks.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    let cli = tessera_server::cli::Cli::parse();
    tessera_server::cli::run(cli)
}
