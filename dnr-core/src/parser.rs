//! Builds the syntax tree from lexed lines. Errors are collected per line so
//! one mistake does not hide the next.

use crate::ast::*;
use crate::lexer::{Line, Spanned, Token};
use crate::limits::{MAX_CONDITION_TERMS, MAX_NESTING};
use crate::span::{Diagnostic, Span};

/// Parses lexed lines into an unchecked policy set.
pub fn parse_lines(lines: &[Line]) -> (PolicySet, Vec<Diagnostic>) {
    let mut parser = Parser {
        lines,
        errors: Vec::new(),
    };
    let set = parser.file();
    (set, parser.errors)
}

struct Parser<'a> {
    lines: &'a [Line],
    errors: Vec<Diagnostic>,
}

/// The index one past the last line of the block opened by line `header`:
/// every following line indented deeper than it.
fn block_end(lines: &[Line], header: usize) -> usize {
    let indent = lines[header].indent;
    let mut end = header + 1;
    while end < lines.len() && lines[end].indent > indent {
        end += 1;
    }
    end
}

/// A line of the form `key:` with nothing after the colon opens a block.
fn block_header(line: &Line) -> Option<&str> {
    match line.tokens.as_slice() {
        [Spanned {
            token: Token::Ident(key),
            ..
        }, Spanned {
            token: Token::Colon,
            ..
        }] => Some(key),
        _ => None,
    }
}

/// Splits `key: rest` into the key and the tokens after the colon.
fn key_value(line: &Line) -> Option<(&str, Span, &[Spanned])> {
    match line.tokens.as_slice() {
        [Spanned {
            token: Token::Ident(key),
            span,
        }, Spanned {
            token: Token::Colon,
            ..
        }, rest @ ..] => Some((key.as_str(), *span, rest)),
        _ => None,
    }
}

impl<'a> Parser<'a> {
    fn error(&mut self, span: Span, message: impl Into<String>) {
        self.errors.push(Diagnostic::new(span, message));
    }

    fn file(&mut self) -> PolicySet {
        let mut tenancy: Option<Tenancy> = None;
        let mut entities = Vec::new();
        let mut i = 0;
        while i < self.lines.len() {
            let line = &self.lines[i];
            let end = block_end(self.lines, i);
            if line.indent != 0 {
                self.error(
                    line.span,
                    "unexpected indentation; a top-level block starts in column 1",
                );
                i = end;
                continue;
            }
            match line.tokens.as_slice() {
                [Spanned {
                    token: Token::Ident(word),
                    span,
                }, ..]
                    if word == "tenancy" =>
                {
                    if block_header(line).is_none() {
                        self.error(line.span, "expected `tenancy:` on a line of its own");
                    } else if tenancy.is_some() {
                        self.error(*span, "duplicate `tenancy:` block");
                    } else {
                        tenancy = Some(self.tenancy(i + 1, end));
                    }
                }
                [Spanned {
                    token: Token::Ident(word),
                    ..
                }, rest @ ..]
                    if word == "entity" =>
                {
                    if let Some(entity) = self.entity(line, rest, i + 1, end) {
                        entities.push(entity);
                    }
                }
                [first, ..] => self.error(
                    first.span,
                    format!(
                        "expected `entity Name:` or `tenancy:`, found {}",
                        first.token.describe()
                    ),
                ),
                [] => {}
            }
            i = end;
        }
        PolicySet {
            tenancy: tenancy.unwrap_or_default(),
            entities,
        }
    }

    fn tenancy(&mut self, start: usize, end: usize) -> Tenancy {
        let mut tenancy = Tenancy::default();
        for line in self.lines[start..end]
            .iter()
            .filter(|l| !l.tokens.is_empty())
        {
            let Some((key, key_span, rest)) = key_value(line) else {
                self.error(line.span, "expected `mode: ...` or `column: ...`");
                continue;
            };
            let Some(value) = self.single_name(rest, line, key) else {
                continue;
            };
            match key {
                "mode" => match TenantMode::parse(&value.0) {
                    Some(mode) => tenancy.mode = mode,
                    None => self.error(
                        value.1,
                        format!("unknown tenancy mode `{}`; expected none, row_level, schema or database", value.0),
                    ),
                },
                "column" => {
                    tenancy.column = value.0;
                    tenancy.column_span = value.1;
                }
                other => self.error(
                    key_span,
                    format!("unknown tenancy key `{other}`; expected `mode` or `column`"),
                ),
            }
        }
        tenancy
    }

    /// The single identifier or string after `key:`.
    fn single_name(&mut self, rest: &[Spanned], line: &Line, key: &str) -> Option<(String, Span)> {
        match rest {
            [Spanned {
                token: Token::Ident(name) | Token::Str(name),
                span,
            }] => Some((name.clone(), *span)),
            [] => {
                self.error(line.span, format!("expected a value after `{key}:`"));
                None
            }
            [_, extra, ..] => {
                self.error(
                    extra.span,
                    format!("unexpected {} after `{key}:` value", extra.token.describe()),
                );
                None
            }
            [other] => {
                self.error(
                    other.span,
                    format!(
                        "expected a name after `{key}:`, found {}",
                        other.token.describe()
                    ),
                );
                None
            }
        }
    }

    fn entity(
        &mut self,
        header: &Line,
        rest: &[Spanned],
        start: usize,
        end: usize,
    ) -> Option<Entity> {
        let (name, name_span) = match rest {
            [Spanned {
                token: Token::Ident(name),
                span,
            }, Spanned {
                token: Token::Colon,
                ..
            }] => (name.clone(), *span),
            [Spanned {
                token: Token::Ident(_),
                span,
            }] => {
                self.error(*span, "expected `:` after the entity name");
                return None;
            }
            [Spanned {
                token: Token::Ident(_),
                ..
            }, Spanned {
                token: Token::Colon,
                ..
            }, extra, ..]
            | [Spanned {
                token: Token::Ident(_),
                ..
            }, extra, ..] => {
                self.error(
                    extra.span,
                    format!(
                        "unexpected {} after the entity name",
                        extra.token.describe()
                    ),
                );
                return None;
            }
            [other, ..] => {
                self.error(
                    other.span,
                    format!("expected an entity name, found {}", other.token.describe()),
                );
                return None;
            }
            [] => {
                self.error(header.span, "expected an entity name after `entity`");
                return None;
            }
        };
        let mut entity = Entity {
            table: snake_case(&name),
            name,
            table_explicit: false,
            table_span: name_span,
            tenant: EntityTenant::Default,
            fields: Vec::new(),
            rules: Vec::new(),
            span: name_span,
        };
        let mut i = start;
        while i < end {
            let line = &self.lines[i];
            let block = block_end(self.lines, i);
            match block_header(line) {
                Some(kind @ ("access" | "permit" | "forbid")) => {
                    let kind = if kind == "forbid" {
                        RuleKind::Forbid
                    } else {
                        RuleKind::Permit
                    };
                    for rule_line in self.lines[i + 1..block]
                        .iter()
                        .filter(|l| !l.tokens.is_empty())
                    {
                        self.rule(rule_line, kind, &mut entity.rules);
                    }
                    if i + 1 == block {
                        self.error(line.span, "empty rule block: add lines like `read: true`");
                    }
                }
                _ => {
                    if block > i + 1 {
                        self.error(self.lines[i + 1].span, "unexpected indentation");
                    }
                    self.entity_line(line, &mut entity);
                }
            }
            i = block;
        }
        // Permit rules first, then forbid rules, each in source order: the
        // canonical order that printing reproduces.
        entity
            .rules
            .sort_by_key(|rule| rule.kind == RuleKind::Forbid);
        Some(entity)
    }

    fn entity_line(&mut self, line: &Line, entity: &mut Entity) {
        if line.tokens.is_empty() {
            return; // a line the lexer already reported
        }
        let Some((key, key_span, rest)) = key_value(line) else {
            self.error(
                line.span,
                "expected `name: type`, `table: ...`, `tenant: ...` or a rule block",
            );
            return;
        };
        match key {
            "table" => {
                if let Some((table, span)) = self.single_name(rest, line, key) {
                    entity.table = table;
                    entity.table_explicit = true;
                    entity.table_span = span;
                }
            }
            "tenant" => {
                if let Some((value, _)) = self.single_name(rest, line, key) {
                    entity.tenant = if value == "none" {
                        EntityTenant::None
                    } else {
                        EntityTenant::Column(value)
                    };
                }
            }
            "access" | "permit" | "forbid" => {
                self.error(
                    key_span,
                    format!("`{key}:` opens a block: put its rules on indented lines below"),
                );
            }
            _ => {
                if let Some(field) = self.field(key, key_span, rest, line) {
                    entity.fields.push(field);
                }
            }
        }
    }

    fn field(
        &mut self,
        name: &str,
        name_span: Span,
        rest: &[Spanned],
        line: &Line,
    ) -> Option<Field> {
        let mut cursor = Cursor::new(rest, line.span);
        let ty = match self.field_type(&mut cursor) {
            Ok(ty) => ty,
            Err(diagnostic) => {
                self.errors.push(diagnostic);
                return None;
            }
        };
        let mut field = Field {
            name: name.to_string(),
            ty,
            primary_key: false,
            required: false,
            unique: false,
            default: None,
            span: name_span,
        };
        while let Some(token) = cursor.next() {
            match &token.token {
                Token::Ident(word) if word == "pk" => field.primary_key = true,
                Token::Ident(word) if word == "required" => field.required = true,
                Token::Ident(word) if word == "unique" => field.unique = true,
                Token::Eq => match cursor.literal() {
                    Ok(literal) => field.default = Some(literal),
                    Err(diagnostic) => {
                        self.errors.push(diagnostic);
                        return None;
                    }
                },
                other => {
                    self.error(
                        token.span,
                        format!(
                            "unexpected {} in field `{name}`; modifiers are pk, required, unique and `= default`",
                            other.describe()
                        ),
                    );
                    return None;
                }
            }
        }
        Some(field)
    }

    fn field_type(&mut self, cursor: &mut Cursor) -> Result<FieldType, Diagnostic> {
        let token = cursor.expect_any("a field type")?;
        let Token::Ident(word) = &token.token else {
            return Err(Diagnostic::new(
                token.span,
                format!("expected a field type, found {}", token.token.describe()),
            ));
        };
        Ok(match word.as_str() {
            "uuid" => FieldType::Uuid,
            "text" => FieldType::Text,
            "int" => FieldType::Int,
            "float" => FieldType::Float,
            "bool" => FieldType::Bool,
            "date" => FieldType::Date,
            "datetime" => FieldType::DateTime,
            "json" => FieldType::Json,
            "str" => {
                if cursor.eat(&Token::LParen) {
                    let length = cursor.small_int("a length")?;
                    cursor.expect(&Token::RParen)?;
                    FieldType::Str(Some(length))
                } else {
                    FieldType::Str(None)
                }
            }
            "decimal" => {
                cursor.expect(&Token::LParen)?;
                let precision = cursor.small_int("a precision")?;
                cursor.expect(&Token::Comma)?;
                let scale = cursor.small_int("a scale")?;
                cursor.expect(&Token::RParen)?;
                FieldType::Decimal(precision, scale)
            }
            "enum" => {
                cursor.expect(&Token::LBracket)?;
                let mut values = Vec::new();
                loop {
                    let item = cursor.expect_any("an enum value")?;
                    match &item.token {
                        Token::Ident(value) | Token::Str(value) => values.push(value.clone()),
                        other => {
                            return Err(Diagnostic::new(
                                item.span,
                                format!("expected an enum value, found {}", other.describe()),
                            ))
                        }
                    }
                    if !cursor.eat(&Token::Comma) {
                        break;
                    }
                }
                cursor.expect(&Token::RBracket)?;
                FieldType::Enum(values)
            }
            "ref" => {
                let target = cursor.expect_any("the referenced entity")?;
                match &target.token {
                    Token::Ident(entity) => FieldType::Ref(entity.clone()),
                    other => {
                        return Err(Diagnostic::new(
                            target.span,
                            format!("expected the referenced entity, found {}", other.describe()),
                        ))
                    }
                }
            }
            other => {
                return Err(Diagnostic::new(
                    token.span,
                    format!(
                        "unknown field type `{other}`; expected uuid, str, str(N), text, int, float, decimal(P,S), bool, date, datetime, json, enum[...] or ref Entity"
                    ),
                ))
            }
        })
    }

    fn rule(&mut self, line: &Line, kind: RuleKind, rules: &mut Vec<Rule>) {
        let Some((key, key_span, rest)) = key_value(line) else {
            self.error(
                line.span,
                "expected a rule such as `read: owner_id = current_user`",
            );
            return;
        };
        let ops: &[Operation] = match key {
            "create" => &[Operation::Create],
            "read" | "list" => &[Operation::Read],
            "update" => &[Operation::Update],
            "delete" => &[Operation::Delete],
            "write" => &[Operation::Create, Operation::Update],
            other => {
                self.error(
                    key_span,
                    format!("unknown rule key `{other}`; expected create, read, list, update, delete or write"),
                );
                return;
            }
        };
        if rest.is_empty() {
            self.error(key_span, format!("expected a condition after `{key}:`"));
            return;
        }
        let mut cursor = Cursor::new(rest, line.span);
        let condition = match cursor
            .expr()
            .and_then(|expr| cursor.finish().map(|()| expr))
        {
            Ok(expr) => expr,
            Err(diagnostic) => {
                self.errors.push(diagnostic);
                return;
            }
        };
        let span = key_span.to(line.span);
        for op in ops {
            rules.push(Rule {
                kind,
                op: *op,
                condition: condition.clone(),
                span,
            });
        }
    }
}

/// Reads tokens of one line.
struct Cursor<'t> {
    tokens: &'t [Spanned],
    position: usize,
    line_span: Span,
    /// Parentheses and `not`s open at the current position.
    nesting: usize,
    /// Terms of the condition read so far.
    terms: usize,
}

impl<'t> Cursor<'t> {
    fn new(tokens: &'t [Spanned], line_span: Span) -> Cursor<'t> {
        Cursor {
            tokens,
            position: 0,
            line_span,
            nesting: 0,
            terms: 0,
        }
    }

    /// Opens one level of nesting at `span` (a `(` or `not`), refusing to go
    /// past the limit before recursing any deeper.
    fn enter(&mut self, span: Span) -> Result<(), Diagnostic> {
        self.nesting += 1;
        if self.nesting > MAX_NESTING {
            return Err(Diagnostic::new(
                span,
                format!(
                    "condition nests deeper than {MAX_NESTING} levels of parentheses and `not`"
                ),
            ));
        }
        Ok(())
    }

    /// Counts `count` terms that start at `span`.
    fn count_terms(&mut self, count: usize, span: Span) -> Result<(), Diagnostic> {
        self.terms += count;
        if self.terms > MAX_CONDITION_TERMS {
            return Err(Diagnostic::new(
                span,
                format!(
                    "condition has more than {MAX_CONDITION_TERMS} terms; split the rule or use an `in [...]` list"
                ),
            ));
        }
        Ok(())
    }

    fn peek(&self) -> Option<&'t Spanned> {
        self.tokens.get(self.position)
    }

    fn next(&mut self) -> Option<&'t Spanned> {
        let token = self.tokens.get(self.position);
        if token.is_some() {
            self.position += 1;
        }
        token
    }

    /// Where a missing token would have been: just after the last one.
    fn end_span(&self) -> Span {
        match self.tokens.last() {
            Some(last) => Span::new(last.span.line, last.span.column + last.span.len, 1),
            None => self.line_span,
        }
    }

    fn eat(&mut self, token: &Token) -> bool {
        if self.peek().is_some_and(|t| &t.token == token) {
            self.position += 1;
            true
        } else {
            false
        }
    }

    fn eat_word(&mut self, word: &str) -> bool {
        if matches!(self.peek(), Some(Spanned { token: Token::Ident(w), .. }) if w == word) {
            self.position += 1;
            true
        } else {
            false
        }
    }

    fn expect_any(&mut self, what: &str) -> Result<&'t Spanned, Diagnostic> {
        let span = self.end_span();
        self.next()
            .ok_or_else(|| Diagnostic::new(span, format!("expected {what}")))
    }

    fn expect(&mut self, token: &Token) -> Result<(), Diagnostic> {
        match self.peek() {
            Some(found) if &found.token == token => {
                self.position += 1;
                Ok(())
            }
            Some(found) => Err(Diagnostic::new(
                found.span,
                format!(
                    "expected {}, found {}",
                    token.describe(),
                    found.token.describe()
                ),
            )),
            None => Err(Diagnostic::new(
                self.end_span(),
                format!("expected {}", token.describe()),
            )),
        }
    }

    fn small_int(&mut self, what: &str) -> Result<u32, Diagnostic> {
        let token = self.expect_any(what)?;
        match token.token {
            Token::Int(n) if (0..=10_000).contains(&n) => Ok(n as u32),
            _ => Err(Diagnostic::new(
                token.span,
                format!(
                    "expected {what} (a whole number up to 10000), found {}",
                    token.token.describe()
                ),
            )),
        }
    }

    fn finish(&mut self) -> Result<(), Diagnostic> {
        match self.peek() {
            None => Ok(()),
            Some(extra) => Err(Diagnostic::new(
                extra.span,
                format!("unexpected {} after the condition", extra.token.describe()),
            )),
        }
    }

    fn expr(&mut self) -> Result<Expr, Diagnostic> {
        let mut alternatives = vec![self.and_expr()?];
        while self.eat_word("or") {
            alternatives.push(self.and_expr()?);
        }
        Ok(match alternatives.len() {
            1 => alternatives.remove(0),
            _ => Expr::Or(alternatives),
        })
    }

    fn and_expr(&mut self) -> Result<Expr, Diagnostic> {
        let mut conditions = vec![self.not_expr()?];
        while self.eat_word("and") {
            conditions.push(self.not_expr()?);
        }
        Ok(match conditions.len() {
            1 => conditions.remove(0),
            _ => Expr::And(conditions),
        })
    }

    fn not_expr(&mut self) -> Result<Expr, Diagnostic> {
        if let Some(token) = self
            .peek()
            .filter(|t| t.token == Token::Ident("not".into()))
        {
            self.enter(token.span)?;
            self.position += 1;
            let inner = self.not_expr()?;
            self.nesting -= 1;
            return Ok(Expr::Not(Box::new(inner)));
        }
        self.atom()
    }

    fn atom(&mut self) -> Result<Expr, Diagnostic> {
        let span = self.end_span();
        let Some(token) = self.peek() else {
            return Err(Diagnostic::new(span, "expected a condition"));
        };
        if token.token == Token::LParen {
            self.enter(token.span)?;
            self.position += 1;
            let inner = self.expr()?;
            self.expect(&Token::RParen)?;
            self.nesting -= 1;
            return Ok(inner);
        }
        self.count_terms(1, token.span)?;
        if let Token::Ident(word) = &token.token {
            let is_comparison_next = matches!(
                self.tokens.get(self.position + 1).map(|t| &t.token),
                Some(
                    Token::Eq
                        | Token::EqEq
                        | Token::Ne
                        | Token::Lt
                        | Token::Le
                        | Token::Gt
                        | Token::Ge
                )
            ) || matches!(
                self.tokens.get(self.position + 1).map(|t| &t.token),
                Some(Token::Ident(next)) if next == "is" || next == "in" || next == "not"
            );
            let ident_at = |offset: usize| match self.tokens.get(self.position + offset) {
                Some(Spanned {
                    token: Token::Ident(name),
                    span,
                }) => Some((name, *span)),
                _ => None,
            };
            if word == "exists" {
                if let (Some((entity, entity_span)), Some((keyword, _))) =
                    (ident_at(1), ident_at(2))
                {
                    if keyword == "where" {
                        let start = token.span;
                        self.enter(start)?;
                        self.position += 3;
                        // The condition runs over `and`s to the next `or`.
                        let condition = self.and_expr()?;
                        self.nesting -= 1;
                        let end = self.tokens[self.position - 1].span;
                        return Ok(Expr::Exists(Box::new(Exists {
                            entity: entity.clone(),
                            entity_span,
                            span: start.to(end),
                            condition,
                        })));
                    }
                }
                if !is_comparison_next {
                    let span = self
                        .tokens
                        .get(self.position + 1)
                        .map_or(self.end_span(), |t| t.span);
                    return Err(Diagnostic::new(
                        span,
                        "expected `exists <Entity> where <condition>`",
                    ));
                }
            }
            match word.as_str() {
                "authenticated" if !is_comparison_next => {
                    self.position += 1;
                    return Ok(Expr::Authenticated);
                }
                "anonymous" if !is_comparison_next => {
                    self.position += 1;
                    return Ok(Expr::Anonymous);
                }
                "true" | "false" if !is_comparison_next => {
                    self.position += 1;
                    return Ok(Expr::Bool(word == "true"));
                }
                "role"
                    if matches!(
                        self.tokens.get(self.position + 1).map(|t| &t.token),
                        Some(Token::LParen)
                    ) =>
                {
                    self.position += 2;
                    let name = self.expect_any("a role name")?;
                    let role = match &name.token {
                        Token::Ident(role) | Token::Str(role) => role.clone(),
                        other => {
                            return Err(Diagnostic::new(
                                name.span,
                                format!("expected a role name, found {}", other.describe()),
                            ))
                        }
                    };
                    self.expect(&Token::RParen)?;
                    return Ok(Expr::Role(role));
                }
                _ => {}
            }
        }
        let operand = self.operand()?;
        let op_span = self.end_span();
        let Some(op_token) = self.next() else {
            return Err(Diagnostic::new(
                op_span,
                "expected a comparison (`=`, `!=`, `<`, `in`, `is null`, ...)",
            ));
        };
        let op = match &op_token.token {
            Token::Eq | Token::EqEq => CmpOp::Eq,
            Token::Ne => CmpOp::Ne,
            Token::Lt => CmpOp::Lt,
            Token::Le => CmpOp::Le,
            Token::Gt => CmpOp::Gt,
            Token::Ge => CmpOp::Ge,
            Token::Ident(word) if word == "is" => {
                let negated = self.eat_word("not");
                if !self.eat_word("null") {
                    let span = self.peek().map_or(self.end_span(), |t| t.span);
                    return Err(Diagnostic::new(span, "expected `null` after `is`"));
                }
                return Ok(Expr::IsNull { operand, negated });
            }
            Token::Ident(word) if word == "in" || word == "not" => {
                let negated = word == "not";
                if negated && !self.eat_word("in") {
                    let span = self.peek().map_or(self.end_span(), |t| t.span);
                    return Err(Diagnostic::new(span, "expected `in` after `not`"));
                }
                self.expect(&Token::LBracket)?;
                let mut list = vec![self.literal()?];
                while self.eat(&Token::Comma) {
                    if let Some(item) = self.peek() {
                        self.count_terms(1, item.span)?;
                    }
                    list.push(self.literal()?);
                }
                self.expect(&Token::RBracket)?;
                return Ok(Expr::In {
                    operand,
                    negated,
                    list,
                });
            }
            other => {
                return Err(Diagnostic::new(
                    op_token.span,
                    format!(
                        "expected a comparison (`=`, `!=`, `<`, `in`, `is null`, ...), found {}",
                        other.describe()
                    ),
                ))
            }
        };
        let rhs = self.operand()?;
        Ok(Expr::Compare {
            lhs: operand,
            op,
            rhs,
        })
    }

    fn operand(&mut self) -> Result<Operand, Diagnostic> {
        let span = self.end_span();
        let Some(token) = self.peek() else {
            return Err(Diagnostic::new(
                span,
                "expected a field, `current_user`, `current_tenant` or a literal",
            ));
        };
        if let Token::Ident(word) = &token.token {
            match word.as_str() {
                "current_user" => {
                    self.position += 1;
                    return Ok(Operand::CurrentUser);
                }
                "current_tenant" => {
                    self.position += 1;
                    return Ok(Operand::CurrentTenant);
                }
                "this" if matches!(self.tokens.get(self.position + 1), Some(t) if t.token == Token::Dot) =>
                {
                    self.position += 2;
                    let field = self.expect_any("a field after `this.`")?;
                    return match &field.token {
                        Token::Ident(name) => {
                            Ok(Operand::This(name.clone(), token.span.to(field.span)))
                        }
                        other => Err(Diagnostic::new(
                            field.span,
                            format!("expected a field after `this.`, found {}", other.describe()),
                        )),
                    };
                }
                "true" | "false" | "null" => return Ok(Operand::Literal(self.literal()?)),
                "and" | "or" | "not" | "in" | "is" => {
                    return Err(Diagnostic::new(
                        token.span,
                        format!("expected a field or value, found keyword `{word}`"),
                    ))
                }
                _ => {
                    self.position += 1;
                    return Ok(Operand::Field(word.clone(), token.span));
                }
            }
        }
        Ok(Operand::Literal(self.literal()?))
    }

    fn literal(&mut self) -> Result<Literal, Diagnostic> {
        let token = self.expect_any("a literal")?;
        Ok(match &token.token {
            Token::Str(text) => Literal::Str(text.clone()),
            Token::Int(n) => Literal::Int(*n),
            Token::Float(x) => Literal::Float(*x),
            Token::Ident(word) if word == "true" => Literal::Bool(true),
            Token::Ident(word) if word == "false" => Literal::Bool(false),
            Token::Ident(word) if word == "null" => Literal::Null,
            other => {
                return Err(Diagnostic::new(
                    token.span,
                    format!(
                        "expected a literal ('text', number, true, false or null), found {}",
                        other.describe()
                    ),
                ))
            }
        })
    }
}

/// `TaskItem` -> `task_item`, the default table name of an entity.
pub fn snake_case(name: &str) -> String {
    let mut out = String::new();
    let mut previous_lower = false;
    for c in name.chars() {
        if c.is_ascii_uppercase() {
            if previous_lower {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
            previous_lower = false;
        } else {
            out.push(c);
            previous_lower = c.is_ascii_lowercase() || c.is_ascii_digit();
        }
    }
    out
}
