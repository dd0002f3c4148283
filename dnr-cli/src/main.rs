//! The `dnr` command: a thin shell over dnr-core.

mod demo;
mod keygen;
mod token;
mod verb_args;

use std::path::Path;
use std::process::ExitCode;

use dnr_core::compile::Target;

const USAGE: &str = "\
usage:
  dnr check FILE                                          parse and lint a policy file
  dnr compile FILE --target postgres|postgres-plain|sqlite  print the SQL that enforces it
  dnr demo                                                two tenants on embedded SQLite
  dnr keygen [--alg eddsa|hs256] [--kid NAME] [--out FILE]  a signed-context key (dev/test)
  dnr token --key FILE [--kid K] --tenant UUID [--user UUID] [--roles a,b] [--ttl SECONDS] [--aud X] [--iss X]
                                                          mint a signed-context token (dev/test)
";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let result = match args.as_slice() {
        ["check", file] => check(file),
        ["compile", file, "--target", target] | ["compile", "--target", target, file] => {
            compile(file, target)
        }
        ["compile", file] => compile(file, "postgres"),
        ["demo"] => demo::run().map_err(|e| format!("demo failed: {e}")),
        ["keygen", rest @ ..] => keygen::run(rest),
        ["token", rest @ ..] => token::run(rest),
        ["help" | "--help" | "-h"] => {
            print!("{USAGE}");
            Ok(())
        }
        _ => Err(format!("unrecognized arguments\n{USAGE}")),
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

/// Reads and parses a policy file; errors come rendered with carets.
fn load(file: &str) -> Result<dnr_core::PolicySet, String> {
    let source =
        std::fs::read_to_string(file).map_err(|e| format!("error: cannot read `{file}`: {e}"))?;
    let name = Path::new(file).display().to_string();
    dnr_core::parse(&source).map_err(|errors| errors.render(&source, &name))
}

fn check(file: &str) -> Result<(), String> {
    let set = load(file)?;
    let rules: usize = set.entities.iter().map(|e| e.rules.len()).sum();
    println!(
        "{file}: ok ({} entities, {rules} rules)",
        set.entities.len()
    );
    Ok(())
}

fn compile(file: &str, target: &str) -> Result<(), String> {
    let target = Target::parse(target).ok_or_else(|| {
        format!("error: unknown target `{target}`; expected postgres, postgres-plain or sqlite")
    })?;
    let set = load(file)?;
    let sql = dnr_core::compile::compile(&set, target).map_err(|e| format!("error: {e}"))?;
    print!("{sql}");
    Ok(())
}
