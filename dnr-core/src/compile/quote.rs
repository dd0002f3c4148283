//! Quoting of identifiers and literals. Every name and value DNR puts into
//! SQL goes through here, so a hostile name can never break out.

/// `"name"`, with embedded double quotes doubled. NUL cannot be quoted in
/// either engine and is refused when the policy is checked.
pub fn ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// `'text'`, with embedded single quotes doubled.
pub fn literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

/// A name made safe for a `--` comment: control characters (which could end
/// the comment) become `?`.
pub fn comment(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}
