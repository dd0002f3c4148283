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

    /// The word's text, lowercase, when the token is an unquoted word (a
    /// keyword can only be one).
    pub(crate) fn keyword(&self) -> Option<String> {
        match self {
            Token::Word {
                value,
                quoted: false,
            } => Some(value.to_ascii_lowercase()),
            _ => None,
        }
    }
}

/// The tokens of `sql`, without whitespace and comments. Unterminated
/// strings, quoted names and comments are errors.
pub(crate) fn tokenize(sql: &str) -> Result<Vec<Token>, Error> {
    Ok(tokenize_at(sql)?
        .into_iter()
        .map(|(_, token)| token)
        .collect())
}

/// The tokens of `sql`, each with the byte offset where it starts.
pub(crate) fn tokenize_at(sql: &str) -> Result<Vec<(usize, Token)>, Error> {
    Ok(tokenize_spans(sql)?
        .into_iter()
        .map(|(start, _, token)| (start, token))
        .collect())
}

/// The tokens of `sql`, each with the byte range it spans.
pub(crate) fn tokenize_spans(sql: &str) -> Result<Vec<(usize, usize, Token)>, Error> {
    let chars: Vec<char> = sql.chars().collect();
    let offsets: Vec<usize> = sql.char_indices().map(|(offset, _)| offset).collect();
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
            tokens.push((
                offsets[i],
                offsets.get(end).copied().unwrap_or(sql.len()),
                if c == '\'' {
                    Token::Str(text)
                } else {
                    Token::Word {
                        value: text,
                        quoted: true,
                    }
                },
            ));
            i = end;
        } else if is_name_start(c) {
            let start = i;
            while i < chars.len()
                && (is_name_start(chars[i]) || chars[i].is_ascii_digit() || chars[i] == '$')
            {
                i += 1;
            }
            tokens.push((
                offsets[start],
                offsets.get(i).copied().unwrap_or(sql.len()),
                Token::Word {
                    value: chars[start..i].iter().collect(),
                    quoted: false,
                },
            ));
        } else {
            tokens.push((
                offsets[i],
                offsets.get(i + 1).copied().unwrap_or(sql.len()),
                match c {
                    '.' => Token::Period,
                    ';' => Token::Semicolon,
                    other => Token::Other(other),
                },
            ));
            i += 1;
        }
    }
    Ok(tokens)
}

/// The statements of `sql`, each as written without its semicolon: split
/// at top-level semicolons, except inside a `CREATE TRIGGER` body, which
/// ends at `END;`.
pub fn statements(sql: &str) -> Result<Vec<&str>, Error> {
    let tokens = tokenize_spans(sql)?;
    let word = |index: usize| tokens.get(index).and_then(|(_, _, t)| t.keyword());
    let mut out = Vec::new();
    let mut first = 0;
    for index in 0..tokens.len() {
        if !matches!(tokens[index].2, Token::Semicolon) {
            continue;
        }
        if index > first {
            let trigger = word(first).as_deref() == Some("create")
                && (first + 1..index.min(first + 3)).any(|i| word(i).as_deref() == Some("trigger"));
            if trigger && (index == 0 || word(index - 1).as_deref() != Some("end")) {
                continue;
            }
            out.push(&sql[tokens[first].0..tokens[index - 1].1]);
        }
        first = index + 1;
    }
    if first < tokens.len() {
        out.push(&sql[tokens[first].0..tokens[tokens.len() - 1].1]);
    }
    Ok(out)
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
    fn statements_split_at_semicolons_outside_trigger_bodies() {
        assert_eq!(
            statements("SELECT ';'; ; INSERT INTO t VALUES (1) -- x;\n;CREATE TEMP TRIGGER g AFTER INSERT ON t BEGIN SELECT 1; SELECT 2; END; SELECT 3")
                .unwrap_or_default(),
            vec![
                "SELECT ';'",
                "INSERT INTO t VALUES (1)",
                "CREATE TEMP TRIGGER g AFTER INSERT ON t BEGIN SELECT 1; SELECT 2; END",
                "SELECT 3"
            ]
        );
        assert_eq!(
            statements(" -- only a comment\n ;").unwrap_or_default(),
            Vec::<&str>::new()
        );
    }

    #[test]
    fn megabytes_and_deep_nesting_are_read_without_recursion() {
        let deep = format!(
            "INSERT INTO t (id) VALUES ({}1{}) RETURNING id",
            "(".repeat(200_000),
            ")".repeat(200_000)
        );
        assert_eq!(statements(&deep).map(|s| s.len()).ok(), Some(1));
        let long = format!("UPDATE t SET s = '{}' RETURNING s", "x".repeat(2_000_000));
        assert_eq!(statements(&long).map(|s| s.len()).ok(), Some(1));
        let garbage: String = (0..100_000u32).filter_map(char::from_u32).collect();
        let _ = statements(&garbage);
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
