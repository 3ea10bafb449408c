//! The `tessera` binary: parse the command line, then hand over to [`tessera_server::cli::run`].

use clap::Parser as _;

fn main() -> std::process::ExitCode {
    let cli = tessera_server::cli::Cli::parse();
    tessera_server::cli::run(cli)
}
