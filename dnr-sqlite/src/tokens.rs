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
    Ok(tokenize_at(sql)?
        .into_iter()
        .map(|(_, token)| token)
        .collect())
}

/// The tokens of `sql`, each with the byte offset where it starts.
pub(crate) fn tokenize_at(sql: &str) -> Result<Vec<(usize, Token)>, Error> {
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
                Token::Word {
                    value: chars[start..i].iter().collect(),
                    quoted: false,
                },
            ));
        } else {
            tokens.push((
                offsets[i],
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

/// What a write statement does to its table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteKind {
    Insert,
    Update,
    Delete,
}

/// An `INSERT`/`UPDATE`/`DELETE ... RETURNING ...` statement, split where
/// its RETURNING clause starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Returning<'s> {
    pub kind: WriteKind,
    /// The statement without its RETURNING clause.
    pub statement: &'s str,
    /// The RETURNING clause's list (after the keyword).
    pub list: &'s str,
    /// The table written (its last name part, as written).
    pub table: String,
}

const RETURNING: &[u8] = b"returning";

/// Splits one `INSERT`/`REPLACE`/`UPDATE`/`DELETE ... RETURNING list`
/// statement; `None` for anything else (other statements, several
/// statements, a leading WITH, an upsert, a parameter in the list).
pub fn split_returning(sql: &str) -> Option<Returning<'_>> {
    // Every query of the npm package asks: most have no RETURNING at all,
    // and a byte scan is far cheaper than tokenizing them.
    let has_keyword = sql
        .as_bytes()
        .windows(RETURNING.len())
        .any(|window| window.eq_ignore_ascii_case(RETURNING));
    if !has_keyword {
        return None;
    }
    let tokens = tokenize_at(sql).ok()?;
    let word = |index: usize| tokens.get(index).and_then(|(_, token)| token.word());
    let (kind, mut name) = match word(0).as_deref() {
        Some("insert" | "replace") => (
            WriteKind::Insert,
            (1..tokens.len()).find(|&i| word(i).as_deref() == Some("into"))? + 1,
        ),
        Some("update") if word(1).as_deref() == Some("or") => (WriteKind::Update, 3),
        Some("update") => (WriteKind::Update, 1),
        Some("delete") if word(1).as_deref() == Some("from") => (WriteKind::Delete, 2),
        _ => return None,
    };
    if matches!(tokens.get(name + 1), Some((_, Token::Period))) {
        name += 2;
    }
    let table = match tokens.get(name) {
        Some((_, Token::Word { value, .. })) => value.clone(),
        _ => return None,
    };
    let mut depth = 0usize;
    let mut returning = None;
    for (index, (offset, token)) in tokens.iter().enumerate() {
        match token {
            Token::Other('(') => depth += 1,
            Token::Other(')') => depth = depth.saturating_sub(1),
            // Only a trailing semicolon.
            Token::Semicolon if index + 1 != tokens.len() => return None,
            Token::Word {
                value,
                quoted: false,
            } if depth == 0 => {
                let lower = value.to_ascii_lowercase();
                if lower == "on"
                    && tokens.get(index + 1).and_then(|(_, t)| t.word()).as_deref()
                        == Some("conflict")
                {
                    return None;
                }
                if lower == "returning" && returning.is_none() {
                    returning = Some((index, *offset));
                }
            }
            Token::Other('?') if returning.is_some() => return None,
            _ => {}
        }
    }
    let (index, offset) = returning?;
    let list_start = tokens.get(index + 1).map(|(start, _)| *start)?;
    let end = match tokens.last() {
        Some((last, Token::Semicolon)) => *last,
        _ => sql.len(),
    };
    Some(Returning {
        kind,
        statement: &sql[..offset],
        list: sql.get(list_start..end)?.trim(),
        table,
    })
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
    fn write_returning_is_split_at_its_clause() {
        assert_eq!(
            split_returning(
                "INSERT INTO main.\"tasks\" (id, t) VALUES (1, 'returning') RETURNING id, (SELECT 1) AS x;"
            ),
            Some(Returning {
                kind: WriteKind::Insert,
                statement: "INSERT INTO main.\"tasks\" (id, t) VALUES (1, 'returning') ",
                list: "id, (SELECT 1) AS x",
                table: "tasks".into(),
            })
        );
        let update =
            split_returning("UPDATE OR IGNORE [tasks] SET t = 'x' WHERE id = ? RETURNING *");
        assert_eq!(
            update.map(|r| (r.kind, r.table, r.list)),
            Some((WriteKind::Update, "tasks".into(), "*"))
        );
        let delete =
            split_returning("DELETE FROM tasks WHERE id IN (SELECT 1 RETURNING) RETURNING id");
        assert_eq!(
            delete.map(|r| (r.kind, r.statement)),
            Some((
                WriteKind::Delete,
                "DELETE FROM tasks WHERE id IN (SELECT 1 RETURNING) "
            ))
        );
        for sql in [
            "INSERT INTO t (id) VALUES (1)",
            "WITH x AS (SELECT 1) UPDATE t SET a = 1 RETURNING a",
            "INSERT INTO t (id) VALUES (1) ON CONFLICT (id) DO NOTHING RETURNING id",
            "INSERT INTO t (id) VALUES (1) RETURNING id + ?",
            "INSERT INTO t (id) VALUES (1) RETURNING id; SELECT 1",
        ] {
            assert_eq!(split_returning(sql), None, "{sql}");
        }
    }

    #[test]
    fn megabytes_and_deep_nesting_are_read_without_recursion() {
        let deep = format!(
            "INSERT INTO t (id) VALUES ({}1{}) RETURNING id",
            "(".repeat(200_000),
            ")".repeat(200_000)
        );
        assert_eq!(split_returning(&deep).map(|r| r.list), Some("id"));
        let long = format!("UPDATE t SET s = '{}' RETURNING s", "x".repeat(2_000_000));
        assert_eq!(
            split_returning(&long).map(|r| r.kind),
            Some(WriteKind::Update)
        );
        let garbage: String = (0..100_000u32).filter_map(char::from_u32).collect();
        let _ = tokenize(&garbage);
        let _ = split_returning(&garbage);
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
