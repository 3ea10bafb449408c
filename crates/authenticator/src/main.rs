//! `tessera-auth`: parse the command line and run it (see the library's `cli` module).

use std::process::ExitCode;

fn main() -> ExitCode {
    tessera_authenticator::cli::main()
}
