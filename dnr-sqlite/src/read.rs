//! How DNR reads SQLite's SQL: `sqlparser` with a dialect that follows
//! SQLite's lexical rules where sqlparser's own SQLite dialect does not,
//! split into statements where SQLite splits them, and a lexical gate that
//! refuses the forms the two read differently.
//!
//! The rewriter prints what runs with DNR's rights from the trees read
//! here; the gate and the cross-check in [`crate::front`] make sure SQLite
//! reads that text as the tree says.

use std::any::TypeId;

use sqlparser::ast::{Expr, Statement, Value, ValueWithSpan};
use sqlparser::dialect::{Dialect, PostgreSqlDialect, SQLiteDialect};
use sqlparser::keywords::Keyword;
use sqlparser::parser::{Parser, ParserError};
use sqlparser::tokenizer::{Location, Span, Token, TokenWithSpan, Tokenizer, Whitespace};

use crate::Error;

/// SQLite as sqlparser should read it: its own SQLite dialect, except that
/// every non-ASCII character may be part of a name (SQLite's tokenizer
/// treats every byte from 0x80 up so), `MATCH`, `REGEXP` and `GLOB` are
/// operators parsed without panicking on a bad right side, and numbers
/// take no `_` separators (SQLite reads them only from 3.46 on).
#[derive(Debug, Default)]
pub(crate) struct Sqlite;

impl Dialect for Sqlite {
    /// sqlparser decides some syntax by the dialect's type rather than by
    /// its methods. PostgreSQL's choices there are SQLite's for the
    /// statements DNR rewrites (`INSERT INTO t AS a`, `AS MATERIALIZED`
    /// CTEs, `<<` and `>>`); SQLite's own are about column definitions,
    /// which DNR never prints.
    fn dialect(&self) -> TypeId {
        TypeId::of::<PostgreSqlDialect>()
    }

    fn is_delimited_identifier_start(&self, ch: char) -> bool {
        SQLiteDialect {}.is_delimited_identifier_start(ch)
    }

    fn identifier_quote_style(&self, _identifier: &str) -> Option<char> {
        Some('"')
    }

    fn is_identifier_start(&self, ch: char) -> bool {
        ch.is_ascii_alphabetic() || ch == '_' || ch >= '\u{80}'
    }

    fn is_identifier_part(&self, ch: char) -> bool {
        self.is_identifier_start(ch) || ch.is_ascii_digit() || ch == '$'
    }

    fn supports_filter_during_aggregation(&self) -> bool {
        true
    }

    fn supports_start_transaction_modifier(&self) -> bool {
        true
    }

    fn supports_in_empty_list(&self) -> bool {
        true
    }

    fn supports_limit_comma(&self) -> bool {
        true
    }

    fn supports_asc_desc_in_column_definition(&self) -> bool {
        true
    }

    fn supports_dollar_placeholder(&self) -> bool {
        true
    }

    fn supports_notnull_operator(&self) -> bool {
        true
    }

    fn parse_statement(&self, parser: &mut Parser) -> Option<Result<Statement, ParserError>> {
        if parser.parse_keyword(Keyword::REPLACE) {
            parser.prev_token();
            Some(parser.parse_insert())
        } else {
            None
        }
    }

    /// `@name` is a parameter, as in SQLite (PostgreSQL's `@` operator is
    /// not SQLite's).
    fn parse_prefix(&self, parser: &mut Parser) -> Option<Result<Expr, ParserError>> {
        let at = parser.peek_token();
        if at.token != Token::AtSign {
            return None;
        }
        let Token::Word(name) = parser.peek_nth_token(1).token else {
            return None;
        };
        parser.next_token();
        let word = parser.next_token();
        Some(Ok(Expr::Value(ValueWithSpan {
            value: Value::Placeholder(format!("@{}", name.value)),
            span: Span::new(at.span.start, word.span.end),
        })))
    }

    fn get_next_precedence(&self, parser: &Parser) -> Option<Result<u8, ParserError>> {
        // GLOB binds as LIKE does (sqlparser's SQLite dialect lacks it).
        is_glob(&parser.peek_token().token)
            .then(|| Ok(self.prec_value(sqlparser::dialect::Precedence::Like)))
    }

    fn parse_infix(
        &self,
        parser: &mut Parser,
        expr: &Expr,
        _precedence: u8,
    ) -> Option<Result<Expr, ParserError>> {
        use sqlparser::ast::BinaryOperator;
        let like = self.prec_value(sqlparser::dialect::Precedence::Like);
        let op = if is_glob(&parser.peek_token().token) {
            parser.next_token();
            BinaryOperator::Custom("GLOB".into())
        } else if parser.parse_keyword(Keyword::REGEXP) {
            BinaryOperator::Regexp
        } else if parser.parse_keyword(Keyword::MATCH) {
            BinaryOperator::Match
        } else {
            return None;
        };
        Some(parser.parse_subexpr(like).map(|right| Expr::BinaryOp {
            left: Box::new(expr.clone()),
            op,
            right: Box::new(right),
        }))
    }
}

/// `GLOB` (not one of sqlparser's keywords).
fn is_glob(token: &Token) -> bool {
    matches!(token, Token::Word(w) if w.quote_style.is_none() && w.value.eq_ignore_ascii_case("glob"))
}

/// One statement of a SQL text: where it is, its tokens, and its tree when
/// sqlparser can read it.
#[derive(Debug)]
pub(crate) struct Piece<'a> {
    pub text: &'a str,
    /// Its tokens (whitespace and comments included), with byte ranges in
    /// the statement's own text.
    pub tokens: Vec<Lexeme>,
    pub statement: Result<Statement, String>,
}

/// A token, where it is in its text (bytes), and where sqlparser says it is
/// (lines and columns, which the trees keep).
#[derive(Debug, Clone)]
pub(crate) struct Lexeme {
    pub start: usize,
    pub end: usize,
    pub token: TokenWithSpan,
}

/// The byte offset of each token's start and end, found by walking the text
/// once (sqlparser's locations are lines and columns of characters).
struct Offsets<'a> {
    sql: &'a str,
    byte: usize,
    at: Location,
}

impl Offsets<'_> {
    fn to(&mut self, target: Location) -> usize {
        let mut chars = self.sql[self.byte..].chars();
        while (self.at.line, self.at.column) < (target.line, target.column) {
            let Some(c) = chars.next() else { break };
            self.byte += c.len_utf8();
            if c == '\n' {
                self.at = Location::new(self.at.line + 1, 1);
            } else {
                self.at = Location::new(self.at.line, self.at.column + 1);
            }
        }
        self.byte
    }
}

/// The tokens of `sql`, each with its byte range.
pub(crate) fn tokens(sql: &str) -> Result<Vec<Lexeme>, Error> {
    if sql.contains('\0') {
        return Err(Error::new(
            "dnr: SQL text cannot contain a NUL character (SQLite would read only the text before it)",
        ));
    }
    let spans: Vec<TokenWithSpan> = Tokenizer::new(&Sqlite, sql)
        .tokenize_with_location()
        .map_err(|e| Error::new(format!("dnr: cannot read this SQL: {e}")))?;
    let mut offsets = Offsets {
        sql,
        byte: 0,
        at: Location::new(1, 1),
    };
    Ok(spans
        .into_iter()
        .filter(|t| t.token != Token::EOF)
        .map(|token| {
            let start = offsets.to(token.span.start);
            let end = offsets.to(token.span.end);
            Lexeme { start, end, token }
        })
        .collect())
}

fn is_blank(token: &Token) -> bool {
    matches!(token, Token::Whitespace(_))
}

fn keyword(token: &Token) -> Option<Keyword> {
    match token {
        Token::Word(word) if word.quote_style.is_none() => Some(word.keyword),
        _ => None,
    }
}

/// The statements of `sql`, split at the semicolons SQLite splits at (a
/// trigger's body runs to its `END`), empty ones left out.
pub(crate) fn statements(sql: &str) -> Result<Vec<Piece<'_>>, Error> {
    let tokens = tokens(sql)?;
    let mut pieces = Vec::new();
    let mut current: Vec<Lexeme> = Vec::new();
    fn flush<'s>(sql: &'s str, current: &mut Vec<Lexeme>, pieces: &mut Vec<Piece<'s>>) {
        let words: Vec<usize> = (0..current.len())
            .filter(|&i| !is_blank(&current[i].token.token))
            .collect();
        if let (Some(&first), Some(&last)) = (words.first(), words.last()) {
            let base = current[first].start;
            let text = &sql[base..current[last].end];
            let tokens: Vec<Lexeme> = current[first..=last]
                .iter()
                .map(|l| Lexeme {
                    start: l.start - base,
                    end: l.end - base,
                    token: l.token.clone(),
                })
                .collect();
            let statement = parse(&tokens);
            pieces.push(Piece {
                text,
                tokens,
                statement,
            });
        }
        current.clear();
    }
    let mut opening = Opening::default();
    for token in tokens {
        if token.token.token == Token::SemiColon && !opening.inside_trigger_body() {
            flush(sql, &mut current, &mut pieces);
            opening = Opening::default();
        } else {
            opening.push(&token.token.token);
            current.push(token);
        }
    }
    flush(sql, &mut current, &mut pieces);
    Ok(pieces)
}

/// What the splitter needs of the statement read so far, kept as it goes
/// (looking back over the statement at each `;` would be quadratic in a
/// trigger body of many statements): its first three keywords and its last.
#[derive(Default)]
struct Opening {
    first: Vec<Option<Keyword>>,
    last: Option<Keyword>,
}

impl Opening {
    fn push(&mut self, token: &Token) {
        if is_blank(token) {
            return;
        }
        let word = keyword(token);
        if self.first.len() < 3 {
            self.first.push(word);
        }
        self.last = word;
    }

    /// Whether a `;` here is inside a `CREATE [TEMP] TRIGGER` body (which
    /// SQLite ends at `END` followed by `;`).
    fn inside_trigger_body(&self) -> bool {
        self.first.first() == Some(&Some(Keyword::CREATE))
            && self.first.contains(&Some(Keyword::TRIGGER))
            && self.last != Some(Keyword::END)
    }
}

/// One statement's tree, or why sqlparser cannot read it.
fn parse(tokens: &[Lexeme]) -> Result<Statement, String> {
    let mut spans: Vec<TokenWithSpan> = tokens
        .iter()
        .filter(|l| !is_blank(&l.token.token))
        .map(|l| l.token.clone())
        .collect();
    unqualify_conflict_target(&mut spans);
    let mut parser = Parser::new(&Sqlite).with_tokens_with_locations(spans);
    let statement = parser.parse_statement().map_err(|e| e.to_string())?;
    match parser.peek_token().token {
        Token::EOF => Ok(statement),
        other => Err(format!("unexpected `{other}` after the statement")),
    }
}

/// `ON CONFLICT ("tasks"."id")` → `ON CONFLICT ("id")` when the qualifier
/// is the INSERT's own table (or alias), as SQLite resolves it: sqlparser
/// reads only bare names there, and ORMs (Drizzle) qualify them. Done on
/// tokens, before parsing; the text that runs is printed from the tree.
fn unqualify_conflict_target(tokens: &mut Vec<TokenWithSpan>) {
    let kw = |i: usize, k: Keyword| matches!(tokens.get(i).map(|t| &t.token), Some(Token::Word(w)) if w.quote_style.is_none() && w.keyword == k);
    let name = |i: usize| match tokens.get(i).map(|t| &t.token) {
        Some(Token::Word(w)) => Some(w.value.to_ascii_lowercase()),
        _ => None,
    };
    let Some(into) = (0..tokens.len()).find(|&i| kw(i, Keyword::INTO)) else {
        return;
    };
    let mut at = into + 1;
    if tokens.get(at + 1).map(|t| &t.token) == Some(&Token::Period) {
        at += 2;
    }
    let mut names: Vec<String> = name(at).into_iter().collect();
    if kw(at + 1, Keyword::AS) {
        names.extend(name(at + 2));
    }
    let Some(open) = (at..tokens.len())
        .find(|&i| kw(i, Keyword::ON) && kw(i + 1, Keyword::CONFLICT))
        .map(|i| i + 2)
        .filter(|&i| tokens.get(i).map(|t| &t.token) == Some(&Token::LParen))
    else {
        return;
    };
    let mut qualifiers = Vec::new();
    let mut i = open + 1;
    while i + 2 < tokens.len() && tokens[i].token != Token::RParen {
        if tokens[i + 1].token == Token::Period
            && name(i).is_some_and(|q| names.contains(&q))
            && name(i + 2).is_some()
        {
            qualifiers.push(i);
            i += 2;
        }
        i += 1;
    }
    for at in qualifiers.into_iter().rev() {
        tokens.drain(at..at + 2);
    }
}

/// Parses one statement DNR wrote (trusted text: compiled conditions, the
/// skeletons of rewritten statements).
pub(crate) fn parse_own(sql: &str) -> Result<Statement, Error> {
    let own = |e: String| Error::new(format!("dnr: internal SQL `{sql}` cannot be read: {e}"));
    parse(&tokens(sql)?).map_err(own)
}

/// Parses one expression DNR wrote.
pub(crate) fn parse_own_expr(sql: &str) -> Result<Expr, Error> {
    let own = |e: ParserError| Error::new(format!("dnr: internal SQL `{sql}` cannot be read: {e}"));
    let mut parser = Parser::new(&Sqlite).try_with_sql(sql).map_err(own)?;
    let expr = parser.parse_expr().map_err(own)?;
    match parser.peek_token().token {
        Token::EOF => Ok(expr),
        other => Err(Error::new(format!(
            "dnr: internal SQL `{sql}` cannot be read: `{other}` after the expression"
        ))),
    }
}

/// Why the gate refuses a statement: the text it names, and whether that
/// text is one of DNR's own names or a form the two parsers read apart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Refusal {
    OwnName(String),
    ReadApart { text: String, why: &'static str },
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refusal::OwnName(name) => write!(f, "`{name}` is DNR's own"),
            Refusal::ReadApart { text, why } => write!(f, "`{text}` {why}"),
        }
    }
}

/// Refuses (for the caller to say in which context) the forms SQLite and
/// sqlparser read differently, in a statement
/// that is to run with DNR's rights: names of DNR's own objects, tokens
/// that sqlparser ends elsewhere than SQLite (`0x1F`, `1_000`, `$a(...)`,
/// `$a::b`), string forms SQLite does not have, and whitespace SQLite does
/// not skip.
pub(crate) fn gate(piece: &Piece<'_>) -> Result<(), Refusal> {
    let own = |at: usize, end: usize| Err(Refusal::OwnName(piece.text[at..end].to_string()));
    let refuse = |at: usize, end: usize, why: &'static str| {
        Err(Refusal::ReadApart {
            text: piece.text[at..end].to_string(),
            why,
        })
    };
    for (i, lexeme) in piece.tokens.iter().enumerate() {
        let (start, end, token) = (&lexeme.start, &lexeme.end, &lexeme.token.token);
        let next = piece
            .tokens
            .get(i + 1)
            .filter(|n| n.start == *end && !is_blank(&n.token.token))
            .map(|n| (n.start, n.end, &n.token.token));
        match token {
            Token::Word(word) => {
                if is_dnr_name(&word.value) {
                    return own(*start, *end);
                }
                if word.quote_style == Some('[') && word.value.contains(']') {
                    return refuse(*start, *end, "is not one name to SQLite, which ends a [name] at its first `]`");
                }
                // sqlparser prints a doubled quote inside a quoted name as
                // it is, and a quote after a backslash unescaped.
                if word.quote_style.is_some_and(|q| q != '[' && word.value.contains(q)) {
                    return refuse(*start, *end, "is a quoted name holding its own quote");
                }
            }
            Token::SingleQuotedString(text) => {
                // SQLite takes a string for a name where a name must be.
                if is_dnr_name(text) {
                    return own(*start, *end);
                }
            }
            Token::Number(..) => {
                if matches!(
                    next,
                    Some((
                        _,
                        _,
                        Token::Word(_) | Token::Number(..) | Token::Placeholder(_)
                    ))
                ) {
                    return refuse(
                        *start,
                        next.map_or(*end, |n| n.1),
                        "is not one number to SQLite",
                    );
                }
            }
            Token::HexStringLiteral(_) => {
                if !piece.text[*start..].starts_with(['x', 'X']) {
                    return refuse(
                        *start,
                        *end,
                        "is a hexadecimal integer; write it in decimal",
                    );
                }
            }
            Token::Placeholder(_) => {
                if next.is_some_and(|(_, _, t)| !matches!(t, Token::Comma | Token::RParen)) {
                    return refuse(
                        *start,
                        next.map_or(*end, |n| n.1),
                        "is a longer parameter name to SQLite",
                    );
                }
            }
            Token::Colon | Token::AtSign => {
                // `:name` / `@name`: a parameter only when the name follows
                // at once, as SQLite reads it.
                if !matches!(next, Some((_, _, Token::Word(w))) if w.quote_style.is_none()) {
                    return refuse(*start, *end, "is not a parameter as SQLite reads it");
                }
            }
            Token::Whitespace(space) => {
                let text = &piece.text[*start..*end];
                let sqlite_blank = |c: char| matches!(c, ' ' | '\t' | '\n' | '\x0c' | '\r');
                if matches!(
                    space,
                    Whitespace::Space | Whitespace::Tab | Whitespace::Newline
                ) && !text.chars().all(sqlite_blank)
                {
                    return refuse(*start, *end, "is not whitespace to SQLite");
                }
            }
            Token::Comma
            | Token::DoubleEq
            | Token::Eq
            | Token::Neq
            | Token::Lt
            | Token::Gt
            | Token::LtEq
            | Token::GtEq
            | Token::Plus
            | Token::Minus
            | Token::Mul
            | Token::Div
            | Token::Mod
            | Token::StringConcat
            | Token::LParen
            | Token::RParen
            | Token::Period
            | Token::Ampersand
            | Token::Pipe
            | Token::Tilde
            | Token::ShiftLeft
            | Token::ShiftRight
            | Token::Arrow
            | Token::LongArrow
            // Only inside a trigger's body: the statements are split at the
            // others.
            | Token::SemiColon => {}
            _ => return refuse(*start, *end, "is not read so by SQLite"),
        }
    }
    Ok(())
}

/// Whether `name` is one of DNR's own (`_dnr_...`, any case).
pub(crate) fn is_dnr_name(name: &str) -> bool {
    name.len() >= 5 && name.as_bytes()[..5].eq_ignore_ascii_case(b"_dnr_")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(sql: &str) -> Vec<String> {
        statements(sql)
            .map(|pieces| pieces.iter().map(|p| p.text.to_string()).collect())
            .unwrap_or_else(|e| vec![e.to_string()])
    }

    #[test]
    fn statements_split_where_sqlite_splits() {
        assert_eq!(
            texts("SELECT 1; DELETE FROM tasks WHERE id = 3"),
            ["SELECT 1", "DELETE FROM tasks WHERE id = 3"]
        );
        assert_eq!(texts(" ;; SELECT ';' -- ;\n ; "), ["SELECT ';'"]);
        assert_eq!(
            texts(
                "CREATE TEMP TRIGGER t AFTER INSERT ON x BEGIN SELECT 1; SELECT 2; END; SELECT 3"
            ),
            [
                "CREATE TEMP TRIGGER t AFTER INSERT ON x BEGIN SELECT 1; SELECT 2; END",
                "SELECT 3"
            ]
        );
        assert_eq!(
            texts("SELECT 'é'; SELECT \"ü\"\n;x"),
            ["SELECT 'é'", "SELECT \"ü\"", "x"]
        );
        assert!(statements("SELECT 1\0; DELETE FROM t").is_err());
        // A trigger body of many statements is one statement, read in one
        // pass (a look back at each `;` took quadratic time).
        let body = "SELECT 1; ".repeat(50_000);
        let trigger = format!("CREATE TEMP TRIGGER t AFTER INSERT ON x BEGIN {body}END; SELECT 2");
        assert_eq!(statements(&trigger).map(|p| p.len()).ok(), Some(2));
    }

    #[test]
    fn the_gate_refuses_what_sqlite_reads_otherwise() {
        let gated = |sql: &str| {
            let pieces = statements(sql).unwrap_or_default();
            pieces.iter().try_for_each(gate).is_ok()
        };
        for sql in [
            "UPDATE t SET a = ?1, b = :b, c = @c, d = $d WHERE e = 'x''y' AND f = X'00' AND [g] = 1",
            "UPDATE t SET a = 1.5e3 -- comment\n WHERE b = -2 /* c */",
        ] {
            assert!(gated(sql), "{sql}");
        }
        for sql in [
            "UPDATE t SET a = $a(x' ' || 1) WHERE 1",
            "UPDATE t SET a = $a::b(c)",
            "UPDATE t SET a = 0x1F",
            "UPDATE t SET a = 1_000",
            "UPDATE t SET a = [x]]y]",
            "UPDATE t SET a = ?1x",
            "UPDATE t SET a = 1\u{a0}WHERE 1",
            "UPDATE t SET a = 1\x0bWHERE 1",
            "UPDATE t SET a = (SELECT 1 FROM _DNR_t)",
            "UPDATE t SET a = (SELECT 1 FROM '_dnr_t')",
            "UPDATE t SET a = : b",
        ] {
            assert!(!gated(sql), "{sql}");
        }
    }
}
