//! Output helpers shared by the verbs.

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
