//! Argument parsing for the verbs that use clap (`keygen`, `token`).

use clap::error::ErrorKind;
use clap::Parser;

/// Parses a verb's arguments. `Ok(None)` when clap printed help (or the
/// version) and there is nothing more to do; errors are clap's, rendered.
pub fn parse<T: Parser>(verb: &str, args: &[&str]) -> Result<Option<T>, String> {
    let argv = std::iter::once(format!("dnr {verb}")).chain(args.iter().map(|a| a.to_string()));
    match T::try_parse_from(argv) {
        Ok(parsed) => Ok(Some(parsed)),
        Err(e) if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) => {
            // A closed stdout (`| head`) is not an error worth a panic.
            let _ = e.print();
            Ok(None)
        }
        Err(e) => Err(e.render().to_string()),
    }
}

/// Writes `text` to stdout; a write error (a closed pipe) is an error
/// message, not a panic as `print!` would make it.
pub fn print(text: &str) -> Result<(), String> {
    use std::io::Write as _;
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
        .map_err(|e| format!("error: cannot write to stdout: {e}"))
}
