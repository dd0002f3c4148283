//! The `dnr` command: a thin shell over dnr-core, dnr-sqlite and the
//! PostgreSQL extension (see `dnr_cli`).

use std::process::ExitCode;

fn main() -> ExitCode {
    dnr_cli::main()
}
