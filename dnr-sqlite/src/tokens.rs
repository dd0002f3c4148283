//! SQL split into tokens as SQLite reads them: names (bare, or quoted with
//! `"..."`, `[...]` or `` `...` ``), string literals, comments and
//! punctuation. Enough to find statement boundaries and leading words; SQLite
//! itself parses the statements when they run.
//!
//! Not sqlparser: its tokenizer alone adds 180 KB (70 KB gzipped) to the npm
//! package's `.wasm` and its parser 3.3 MB, past the package's size budget.

use crate::Error;

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Token {
    /// A name or keyword, without its quotes.
    Word {
        value: String,
        quoted: bool,
    },
    Str(String),
    Period,
    Semicolon,
    /// Any other character (operators, parentheses, digits).
    Other(char),
}

impl Token {
    /// The word's text, lowercase, when the token is a word.
    pub(crate) fn word(&self) -> Option<String> {
        match self {
            Token::Word { value, .. } => Some(value.to_ascii_lowercase()),
            _ => None,
        }
    }
}

/// The tokens of `sql`, without whitespace and comments. Unterminated
/// strings, quoted names and comments are errors.
pub(crate) fn tokenize(sql: &str) -> Result<Vec<Token>, Error> {
    let chars: Vec<char> = sql.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        if c.is_whitespace() {
            i += 1;
        } else if c == '-' && next == Some('-') {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
        } else if c == '/' && next == Some('*') {
            let end = (i + 2..chars.len().saturating_sub(1))
                .find(|&j| chars[j] == '*' && chars[j + 1] == '/')
                .ok_or_else(|| Error::new("dnr: unterminated /* comment"))?;
            i = end + 2;
        } else if let Some(close) = closing_quote(c) {
            let (text, end) = quoted(&chars, i, close)?;
            tokens.push(if c == '\'' {
                Token::Str(text)
            } else {
                Token::Word {
                    value: text,
                    quoted: true,
                }
            });
            i = end;
        } else if is_name_start(c) {
            let start = i;
            while i < chars.len()
                && (is_name_start(chars[i]) || chars[i].is_ascii_digit() || chars[i] == '$')
            {
                i += 1;
            }
            tokens.push(Token::Word {
                value: chars[start..i].iter().collect(),
                quoted: false,
            });
        } else {
            tokens.push(match c {
                '.' => Token::Period,
                ';' => Token::Semicolon,
                other => Token::Other(other),
            });
            i += 1;
        }
    }
    Ok(tokens)
}

fn is_name_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_' || c >= '\u{80}'
}

fn closing_quote(c: char) -> Option<char> {
    match c {
        '\'' | '"' | '`' => Some(c),
        '[' => Some(']'),
        _ => None,
    }
}

/// The text between the quote at `start` and its closing quote (doubled
/// quotes stand for one, except in `[...]`), and the index after it.
fn quoted(chars: &[char], start: usize, close: char) -> Result<(String, usize), Error> {
    let mut text = String::new();
    let mut i = start + 1;
    while i < chars.len() {
        if chars[i] == close {
            if close != ']' && chars.get(i + 1) == Some(&close) {
                text.push(close);
                i += 2;
                continue;
            }
            return Ok((text, i + 1));
        }
        text.push(chars[i]);
        i += 1;
    }
    Err(Error::new(format!(
        "dnr: unterminated {}...{close}",
        chars[start]
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(sql: &str) -> Vec<String> {
        tokenize(sql)
            .unwrap_or_default()
            .iter()
            .map(|t| match t {
                Token::Word {
                    value,
                    quoted: true,
                } => format!("\"{value}\""),
                Token::Word { value, .. } => value.clone(),
                Token::Str(text) => format!("'{text}'"),
                Token::Period => ".".into(),
                Token::Semicolon => ";".into(),
                Token::Other(c) => c.to_string(),
            })
            .collect()
    }

    #[test]
    fn names_strings_comments_and_punctuation() {
        assert_eq!(
            words("ALTER TABLE main.\"Ta\"\"sks\" -- c; x\n ADD [due date] TEXT DEFAULT 'it''s;'; /* ; */ DROP `x`"),
            ["ALTER", "TABLE", "main", ".", "\"Ta\"sks\"", "ADD", "\"due date\"", "TEXT", "DEFAULT", "'it's;'", ";", "DROP", "\"x\""]
        );
        assert_eq!(words("_dnr_tasks$1 é"), ["_dnr_tasks$1", "é"]);
    }

    #[test]
    fn unterminated_input_is_an_error() {
        for sql in [
            "SELECT 'x",
            "SELECT \"x",
            "SELECT [x",
            "SELECT 1 /* x",
            "SELECT `x",
        ] {
            assert!(tokenize(sql).is_err(), "{sql}");
        }
    }
}
