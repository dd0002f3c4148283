//! The `dnr` command, and the operations behind it as a library: a project
//! (`dnr.toml`), its tenant stores on SQLite or PostgreSQL, migrations
//! across them, and routing an application's connection to a tenant.
//!
//! One module per verb (`apply`, `tenants`, `migrate`, `graduate`, `status`,
//! `explain`, `check`, `compile`, `demo`, `keygen`, `token`); the backends
//! (`backend::sqlite`, `backend::postgres`) answer the same [`backend::Backend`]
//! interface so that every verb is written once.

pub mod backend;
pub mod migrations;
pub mod project;
pub mod route;

mod apply;
mod check;
mod demo;
mod explain;
mod graduate;
mod keygen;
mod migrate;
mod progress;
mod status;
mod tenant_move;
mod tenants;
mod token;
mod transfer;
mod verb_args;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Multi-tenant isolation from one policy language, enforced inside the
/// database.
#[derive(Debug, Parser)]
#[command(name = "dnr", version)]
struct Cli {
    /// The project's `dnr.toml` (default: `./dnr.toml`).
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Parse and lint a policy file (errors with line, column and a caret).
    Check { file: PathBuf },
    /// Print the SQL that enforces a policy file.
    Compile {
        file: PathBuf,
        /// postgres, postgres-plain (no extension needed), postgres-citus
        /// (distributed tables) or sqlite.
        #[arg(long, default_value = "postgres")]
        target: String,
    },
    /// Two tenants on embedded SQLite: each sees only its own rows.
    Demo,
    /// Apply the project's policies to its database (every tenant store).
    Apply(apply::Args),
    /// The tenant registry: create, list, drop.
    #[command(subcommand)]
    Tenants(tenants::Command),
    /// Apply the versioned migration files to every tenant store.
    Migrate(migrate::Args),
    /// Move every tenant to another project (`tenants move` for each, in
    /// parallel, with progress); run it again to go on after a failure.
    Graduate(graduate::Args),
    /// Per tenant store: applied policy, migration version, pending, drift.
    Status(status::Args),
    /// The evaluator's answer for one row, and the rule behind it.
    Explain(explain::Args),
    /// Generate a signed-context key (development and tests only).
    #[command(
        long_about = "Generate a signed-context key, for development and tests only: \
        production keys belong to your identity provider or secret manager.\n\n\
        Prints the key set entry for the database setting (`kid:eddsa:<public key>`, \
        or `kid:hs256:<secret>`, which is the secret itself) and, for EdDSA, the \
        private signing key (`kid:eddsa-private:<seed>`), each with a `#` label. \
        With --out, the signing key is written to FILE (mode 0600, never \
        overwritten) and stdout holds the key set entry alone."
    )]
    Keygen(keygen::Args),
    /// Mint a signed-context token (development and tests only).
    #[command(
        long_about = "Mint a signed-context token (a compact JWS), for development and \
        tests only: in production your application's identity provider issues tokens.\n\n\
        Reads signing keys from FILE as `dnr keygen` writes them \
        (`kid:eddsa-private:<seed>` or `kid:hs256:<secret>`; public `kid:eddsa:` \
        entries and `#` lines are skipped) and prints the token with the claims \
        `tid`, `sub`, `roles`, `iat`, `exp` (and `aud`, `iss` when given)."
    )]
    Token(token::Args),
}

/// Runs the command line; the process's exit code.
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => {
            // Help and version go to stdout with success; a closed pipe is
            // not worth a panic.
            let _ = error.print();
            return if error.use_stderr() {
                ExitCode::from(2)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    let config = cli.config.as_deref();
    let result = match cli.command {
        Command::Check { file } => check::check(&file),
        Command::Compile { file, target } => check::compile(&file, &target),
        Command::Demo => demo::run().map_err(|e| format!("demo failed: {e}")),
        Command::Apply(args) => apply::run(config, args),
        Command::Tenants(command) => tenants::run(config, command),
        Command::Migrate(args) => migrate::run(config, args),
        Command::Graduate(args) => graduate::run(config, args),
        Command::Status(args) => status::run(config, args),
        Command::Explain(args) => explain::run(config, args),
        Command::Keygen(args) => keygen::run(args),
        Command::Token(args) => token::run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprint!("{message}");
            if !message.ends_with('\n') {
                eprintln!();
            }
            ExitCode::FAILURE
        }
    }
}
