//! Splits a policy source into indented lines of tokens.

use crate::span::{Diagnostic, Span};

#[derive(Debug, Clone, PartialEq)]
pub enum Token {
    Ident(String),
    Str(String),
    Int(i64),
    Float(f64),
    Colon,
    Comma,
    Dot,
    LParen,
    RParen,
    LBracket,
    RBracket,
    Eq,
    EqEq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

impl Token {
    /// How the token reads in an error message.
    pub fn describe(&self) -> String {
        match self {
            Token::Ident(name) => format!("`{name}`"),
            Token::Str(text) => format!("`'{text}'`"),
            Token::Int(n) => format!("`{n}`"),
            Token::Float(x) => format!("`{x}`"),
            Token::Colon => "`:`".into(),
            Token::Comma => "`,`".into(),
            Token::Dot => "`.`".into(),
            Token::LParen => "`(`".into(),
            Token::RParen => "`)`".into(),
            Token::LBracket => "`[`".into(),
            Token::RBracket => "`]`".into(),
            Token::Eq => "`=`".into(),
            Token::EqEq => "`==`".into(),
            Token::Ne => "`!=`".into(),
            Token::Lt => "`<`".into(),
            Token::Le => "`<=`".into(),
            Token::Gt => "`>`".into(),
            Token::Ge => "`>=`".into(),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Spanned {
    pub token: Token,
    pub span: Span,
}

/// One non-blank, non-comment line.
#[derive(Debug, Clone)]
pub struct Line {
    pub number: usize,
    /// Leading spaces (a tab counts as an error, see `lex`).
    pub indent: usize,
    pub tokens: Vec<Spanned>,
    /// Span of the whole line's content, for errors about the line.
    pub span: Span,
}

/// Tokenizes every line. Lines with errors are reported and skipped, so the
/// parser still sees the rest of the file.
pub fn lex(source: &str) -> (Vec<Line>, Vec<Diagnostic>) {
    let mut lines = Vec::new();
    let mut errors = Vec::new();
    for (index, text) in source.lines().enumerate() {
        let number = index + 1;
        match lex_line(number, text) {
            Ok(Some(line)) => lines.push(line),
            Ok(None) => {}
            Err(diagnostic) => {
                // Keep the line, without tokens, so the block it belongs to
                // is not reported as empty as well.
                let indent = text.chars().take_while(|c| *c == ' ').count();
                lines.push(Line {
                    number,
                    indent,
                    tokens: Vec::new(),
                    span: diagnostic.span,
                });
                errors.push(diagnostic);
            }
        }
    }
    (lines, errors)
}

fn lex_line(number: usize, text: &str) -> Result<Option<Line>, Diagnostic> {
    let chars: Vec<char> = text.chars().collect();
    let mut indent = 0;
    while indent < chars.len() && (chars[indent] == ' ' || chars[indent] == '\t') {
        if chars[indent] == '\t' {
            return Err(Diagnostic::new(
                Span::new(number, indent + 1, 1),
                "tab in indentation; indent with spaces",
            ));
        }
        indent += 1;
    }
    let mut tokens = Vec::new();
    let mut i = indent;
    while i < chars.len() {
        let c = chars[i];
        let start = i;
        let span_from = |end: usize| Span::new(number, start + 1, (end - start).max(1));
        if c.is_whitespace() {
            i += 1;
            continue;
        }
        if c == '#' {
            break;
        }
        let token = if c.is_ascii_alphabetic() || c == '_' {
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            Token::Ident(chars[start..i].iter().collect())
        } else if c.is_ascii_digit()
            || (c == '-' && chars.get(i + 1).is_some_and(|d| d.is_ascii_digit()))
        {
            i += 1;
            while i < chars.len() && chars[i].is_ascii_digit() {
                i += 1;
            }
            let is_float =
                chars.get(i) == Some(&'.') && chars.get(i + 1).is_some_and(|d| d.is_ascii_digit());
            if is_float {
                i += 1;
                while i < chars.len() && chars[i].is_ascii_digit() {
                    i += 1;
                }
            }
            if i < chars.len() && (chars[i].is_ascii_alphabetic() || chars[i] == '_') {
                while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '_') {
                    i += 1;
                }
                return Err(Diagnostic::new(
                    span_from(i),
                    format!(
                        "malformed number `{}`",
                        chars[start..i].iter().collect::<String>()
                    ),
                ));
            }
            let text: String = chars[start..i].iter().collect();
            if is_float {
                match text.parse::<f64>() {
                    Ok(value) if value.is_finite() => Token::Float(value),
                    _ => {
                        return Err(Diagnostic::new(
                            span_from(i),
                            format!("number `{text}` is out of range"),
                        ))
                    }
                }
            } else {
                match text.parse::<i64>() {
                    Ok(value) => Token::Int(value),
                    Err(_) => {
                        return Err(Diagnostic::new(
                            span_from(i),
                            format!("integer `{text}` does not fit in 64 bits"),
                        ))
                    }
                }
            }
        } else if c == '\'' {
            i += 1;
            let mut value = String::new();
            loop {
                match chars.get(i) {
                    None => {
                        return Err(Diagnostic::new(
                            Span::new(number, start + 1, 1),
                            "unterminated string: add a closing `'`",
                        ))
                    }
                    Some('\'') if chars.get(i + 1) == Some(&'\'') => {
                        value.push('\'');
                        i += 2;
                    }
                    Some('\'') => {
                        i += 1;
                        break;
                    }
                    Some(other) => {
                        value.push(*other);
                        i += 1;
                    }
                }
            }
            Token::Str(value)
        } else {
            let next = chars.get(i + 1).copied();
            let (token, width) = match (c, next) {
                ('=', Some('=')) => (Token::EqEq, 2),
                ('!', Some('=')) => (Token::Ne, 2),
                ('<', Some('>')) => (Token::Ne, 2),
                ('<', Some('=')) => (Token::Le, 2),
                ('>', Some('=')) => (Token::Ge, 2),
                ('=', _) => (Token::Eq, 1),
                ('<', _) => (Token::Lt, 1),
                ('>', _) => (Token::Gt, 1),
                (':', _) => (Token::Colon, 1),
                (',', _) => (Token::Comma, 1),
                ('.', _) => (Token::Dot, 1),
                ('(', _) => (Token::LParen, 1),
                (')', _) => (Token::RParen, 1),
                ('[', _) => (Token::LBracket, 1),
                (']', _) => (Token::RBracket, 1),
                _ => {
                    return Err(Diagnostic::new(
                        span_from(i + 1),
                        format!("unexpected character `{c}`"),
                    ))
                }
            };
            i += width;
            token
        };
        tokens.push(Spanned {
            token,
            span: span_from(i),
        });
    }
    if tokens.is_empty() {
        return Ok(None);
    }
    let first = tokens[0].span;
    let last = tokens[tokens.len() - 1].span;
    Ok(Some(Line {
        number,
        indent,
        tokens,
        span: first.to(last),
    }))
}
