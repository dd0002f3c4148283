//! Semantic checks on a parsed policy set: names resolve, literals fit the
//! declared field types, and nothing is declared twice.

use std::collections::{HashMap, HashSet};

use crate::ast::*;
use crate::limits::MAX_IDENTIFIER_BYTES;
use crate::span::{Diagnostic, Span};
use crate::value::parse_uuid;

pub fn check(set: &PolicySet) -> Vec<Diagnostic> {
    let mut errors = Vec::new();
    let mut entity_names = HashSet::new();
    let mut tables = SqlNames::default();
    if set.tenancy.column_span.line != 0 {
        identifier_length(
            "tenant column",
            &set.tenancy.column,
            set.tenancy.column_span,
            &mut errors,
        );
    }
    for entity in &set.entities {
        if !entity_names.insert(entity.name.as_str()) {
            errors.push(Diagnostic::new(
                entity.span,
                format!("duplicate entity `{}`", entity.name),
            ));
        } else {
            identifier_length("table", &entity.table, entity.table_span, &mut errors);
            tables.insert(
                &entity.table,
                entity.table_span,
                &format!("table `{}` of entity `{}`", entity.table, entity.name),
                &mut errors,
            );
        }
        check_entity(set, entity, &mut errors);
    }
    errors.extend(read_cycles(set));
    errors.sort_by_key(|d| (d.span.line, d.span.column));
    errors
}

/// Refuses a name PostgreSQL would truncate.
fn identifier_length(what: &str, name: &str, span: Span, errors: &mut Vec<Diagnostic>) {
    if name.len() > MAX_IDENTIFIER_BYTES {
        errors.push(Diagnostic::new(
            span,
            format!(
                "{what} name `{}` is {} bytes; PostgreSQL keeps only the first {MAX_IDENTIFIER_BYTES}, so names are limited to {MAX_IDENTIFIER_BYTES} bytes",
                name.escape_debug(),
                name.len()
            ),
        ));
    }
}

/// SQL names in one namespace, by what PostgreSQL and SQLite make of them:
/// SQLite matches names without regard to ASCII case (as PostgreSQL does
/// once it folds an unquoted name), and PostgreSQL truncates to 63 bytes.
/// Two names with the same key would be one table or column.
#[derive(Default)]
struct SqlNames {
    seen: HashMap<String, (Span, String)>,
}

impl SqlNames {
    fn insert(&mut self, name: &str, span: Span, what: &str, errors: &mut Vec<Diagnostic>) {
        let mut end = name.len().min(MAX_IDENTIFIER_BYTES);
        while !name.is_char_boundary(end) {
            end -= 1;
        }
        let key = name[..end].to_ascii_lowercase();
        match self.seen.get(&key) {
            Some((first_span, first)) => errors.push(
                Diagnostic::new(
                    span,
                    format!(
                        "{what} is the same SQL name as {first} (names are matched without regard to case and PostgreSQL truncates them to {MAX_IDENTIFIER_BYTES} bytes)"
                    ),
                )
                .with_related(*first_span, format!("{first} is here")),
            ),
            None => {
                self.seen.insert(key, (span, what.to_string()));
            }
        }
    }
}

/// The tenant column that fences this entity, if any.
pub fn tenant_column<'a>(set: &'a PolicySet, entity: &'a Entity) -> Option<&'a str> {
    if set.tenancy.mode != TenantMode::RowLevel {
        return None;
    }
    match &entity.tenant {
        EntityTenant::None => None,
        EntityTenant::Default => Some(set.tenancy.column.as_str()),
        EntityTenant::Column(column) => Some(column.as_str()),
    }
}

fn check_entity(set: &PolicySet, entity: &Entity, errors: &mut Vec<Diagnostic>) {
    if entity.table.is_empty() {
        errors.push(Diagnostic::new(
            entity.span,
            format!("entity `{}` has an empty table name", entity.name),
        ));
    }
    let tenant_named = match &entity.tenant {
        EntityTenant::Column(column) => Some(column.as_str()),
        _ => None,
    };
    for name in std::iter::once(entity.table.as_str()).chain(tenant_named) {
        if name.chars().any(char::is_control) {
            errors.push(Diagnostic::new(
                entity.span,
                format!(
                    "entity `{}`: name `{}` contains a control character",
                    entity.name,
                    name.escape_debug()
                ),
            ));
        }
    }
    let mut field_names = HashSet::new();
    let mut columns = SqlNames::default();
    if let Some(column) = tenant_column(set, entity).filter(|c| entity.field(c).is_none()) {
        let span = match &entity.tenant {
            EntityTenant::Default if set.tenancy.column_span.line != 0 => set.tenancy.column_span,
            _ => entity.span,
        };
        columns.insert(column, span, &format!("tenant column `{column}`"), errors);
    }
    if let EntityTenant::Column(column) = &entity.tenant {
        identifier_length("tenant column", column, entity.span, errors);
    }
    for field in &entity.fields {
        if !field_names.insert(field.name.as_str()) {
            errors.push(Diagnostic::new(
                field.span,
                format!(
                    "duplicate field `{}` in entity `{}`",
                    field.name, entity.name
                ),
            ));
        } else {
            identifier_length("field", &field.name, field.span, errors);
            columns.insert(
                &field.name,
                field.span,
                &format!("field `{}` of entity `{}`", field.name, entity.name),
                errors,
            );
        }
        if let FieldType::Ref(target) = &field.ty {
            if !set.entities.iter().any(|e| &e.name == target) {
                errors.push(Diagnostic::new(
                    field.span,
                    format!("field `{}` refers to unknown entity `{target}`", field.name),
                ));
            }
        }
        if let FieldType::Enum(values) = &field.ty {
            let mut seen = HashSet::new();
            for value in values {
                if !seen.insert(value) {
                    errors.push(Diagnostic::new(
                        field.span,
                        format!(
                            "enum value `{value}` appears twice in field `{}`",
                            field.name
                        ),
                    ));
                }
            }
        }
        if let Some(default) = &field.default {
            if let Err(message) = literal_fits(default, field) {
                errors.push(Diagnostic::new(
                    field.span,
                    format!("default of field `{}`: {message}", field.name),
                ));
            }
        }
    }
    if let Some(column) = tenant_column(set, entity) {
        if let Some(field) = entity.field(column) {
            if field.ty.class() != ValueClass::Uuid {
                errors.push(Diagnostic::new(
                    field.span,
                    format!(
                        "tenant column `{column}` of entity `{}` must be a uuid",
                        entity.name
                    ),
                ));
            }
        }
    }
    let scope = Scope::of(set, entity, None);
    for rule in &entity.rules {
        scope.expr(&rule.condition, rule.span, errors);
    }
}

/// What a condition can name: the fields of one entity, and inside `exists`
/// (through `this.`) those of the checked row's entity.
struct Scope<'a> {
    set: &'a PolicySet,
    entity: &'a Entity,
    tenant_column: Option<&'a str>,
    /// The checked row's scope, inside `exists`.
    this: Option<Box<Scope<'a>>>,
}

impl<'a> Scope<'a> {
    fn of(set: &'a PolicySet, entity: &'a Entity, this: Option<Box<Scope<'a>>>) -> Scope<'a> {
        Scope {
            set,
            entity,
            tenant_column: tenant_column(set, entity),
            this,
        }
    }

    /// The scope of the checked row: this one, outside `exists`.
    fn checked_row(&self) -> Scope<'a> {
        match &self.this {
            Some(this) => Scope::of(this.set, this.entity, None),
            None => Scope::of(self.set, self.entity, None),
        }
    }
}

/// Reports every `exists` that leads back to its own entity. The related
/// rows of an `exists` are those the context may read, so `exists E` in a
/// rule of X needs E's read rule, which may need other read rules in turn;
/// if that chain reaches X again (X itself included), the rule would need
/// X's own readable rows to decide about X. PostgreSQL's row security
/// refuses such a policy at query time ("infinite recursion detected in
/// policy"), so no engine accepts it: read rules that need each other are
/// the common case, an update or delete rule that reads an entity whose
/// read rule reads the first one is the other.
pub fn read_cycles(set: &PolicySet) -> Vec<Diagnostic> {
    let index = |name: &str| set.entities.iter().position(|e| e.name == name);
    // Edges of the read rules: entity -> (related entity, span of the exists).
    let read_edges: Vec<Vec<(usize, Span)>> = set
        .entities
        .iter()
        .map(|entity| {
            entity
                .rules
                .iter()
                .filter(|rule| rule.op == Operation::Read)
                .flat_map(|rule| rule.condition.exists_clauses())
                .filter_map(|exists| index(&exists.entity).map(|to| (to, exists.span)))
                .collect()
        })
        .collect();
    let mut errors = Vec::new();
    for (from, entity) in set.entities.iter().enumerate() {
        let clauses = entity
            .rules
            .iter()
            .flat_map(|rule| rule.condition.exists_clauses());
        for exists in clauses {
            let Some(to) = index(&exists.entity) else {
                continue;
            };
            let Some(path) = read_path(&read_edges, to, from) else {
                continue;
            };
            let mut names = vec![entity.name.as_str(), set.entities[to].name.as_str()];
            names.extend(path.iter().map(|(n, _)| set.entities[*n].name.as_str()));
            let mut diagnostic = Diagnostic::new(
                exists.span,
                format!(
                    "`exists {}` in a rule of `{}` leads back to `{}` ({}): the related rows are those the context may read, so the rule would need `{}`'s own readable rows (PostgreSQL refuses such a policy as infinite recursion)",
                    exists.entity,
                    entity.name,
                    entity.name,
                    names.join(" -> "),
                    entity.name
                ),
            );
            if let Some((_, closing)) = path.last() {
                diagnostic = diagnostic.with_related(*closing, "the cycle closes here");
            }
            errors.push(diagnostic);
        }
    }
    errors
}

/// The read-rule edges from `start` to `goal` (empty when they are the same
/// entity), breadth first; `None` when `goal` is not reachable.
fn read_path(
    edges: &[Vec<(usize, Span)>],
    start: usize,
    goal: usize,
) -> Option<Vec<(usize, Span)>> {
    if start == goal {
        return Some(Vec::new());
    }
    let mut came_from: Vec<Option<(usize, Span)>> = vec![None; edges.len()];
    let mut seen = vec![false; edges.len()];
    seen[start] = true;
    let mut queue = std::collections::VecDeque::from([start]);
    while let Some(node) = queue.pop_front() {
        for &(to, span) in &edges[node] {
            if seen[to] {
                continue;
            }
            seen[to] = true;
            came_from[to] = Some((node, span));
            if to == goal {
                let mut path = Vec::new();
                let mut at = goal;
                while let Some((previous, span)) = came_from[at] {
                    path.push((at, span));
                    at = previous;
                }
                path.reverse();
                return Some(path);
            }
            queue.push_back(to);
        }
    }
    None
}

/// The checked type of an operand: a declared field, a context value, or a
/// literal (or an undeclared field, whose type is unknown).
enum OperandType<'a> {
    Field(&'a Field),
    Untyped,
    ContextUuid(&'static str),
    Literal(&'a Literal),
}

impl<'a> Scope<'a> {
    fn expr(&self, expr: &'a Expr, span: Span, errors: &mut Vec<Diagnostic>) {
        match expr {
            Expr::Bool(_) | Expr::Authenticated | Expr::Anonymous | Expr::Role(_) => {}
            Expr::Exists(exists) => {
                let Some(related) = self.set.entities.iter().find(|e| e.name == exists.entity)
                else {
                    let known: Vec<&str> =
                        self.set.entities.iter().map(|e| e.name.as_str()).collect();
                    errors.push(Diagnostic::new(
                        exists.entity_span,
                        format!(
                            "`exists` names unknown entity `{}`; entities are {}",
                            exists.entity,
                            known.join(", ")
                        ),
                    ));
                    return;
                };
                let inner = Scope::of(self.set, related, Some(Box::new(self.checked_row())));
                inner.expr(&exists.condition, span, errors);
            }
            Expr::Not(inner) => self.expr(inner, span, errors),
            Expr::And(members) | Expr::Or(members) => {
                for member in members {
                    self.expr(member, span, errors);
                }
            }
            Expr::IsNull { operand, .. } => {
                self.operand(operand, span, errors);
            }
            Expr::In { operand, list, .. } => {
                let ty = self.operand(operand, span, errors);
                for literal in list {
                    if matches!(literal, Literal::Null) {
                        errors.push(Diagnostic::new(
                            operand_span(operand, span),
                            "`null` in an `in` list never matches; use `is null`",
                        ));
                    } else if let Some(ty) = &ty {
                        self.compatible(ty, &OperandType::Literal(literal), operand, span, errors);
                    }
                }
            }
            Expr::Compare { lhs, op, rhs } => {
                let left = self.operand(lhs, span, errors);
                let right = self.operand(rhs, span, errors);
                for side in [lhs, rhs] {
                    if matches!(side, Operand::Literal(Literal::Null)) {
                        errors.push(Diagnostic::new(
                            operand_span(side, span),
                            format!("comparing with `null` using `{}` is never true; use `is null` or `is not null`", op.as_sql()),
                        ));
                        return;
                    }
                }
                if let (Some(left), Some(right)) = (left, right) {
                    self.compatible(&left, &right, lhs, span, errors);
                }
            }
        }
    }

    fn operand(
        &self,
        operand: &'a Operand,
        span: Span,
        errors: &mut Vec<Diagnostic>,
    ) -> Option<OperandType<'a>> {
        match operand {
            Operand::CurrentUser => Some(OperandType::ContextUuid("current_user")),
            Operand::CurrentTenant => Some(OperandType::ContextUuid("current_tenant")),
            Operand::Literal(literal) => Some(OperandType::Literal(literal)),
            Operand::This(name, this_span) => match &self.this {
                Some(this) => this.operand_field(name, *this_span, span, errors),
                None => {
                    errors.push(Diagnostic::new(
                        *this_span,
                        format!(
                            "`this.{name}` names the checked row inside `exists ... where`; outside it write `{name}`"
                        ),
                    ));
                    None
                }
            },
            Operand::Field(name, field_span) => self.operand_field(name, *field_span, span, errors),
        }
    }

    fn operand_field(
        &self,
        name: &'a str,
        field_span: Span,
        span: Span,
        errors: &mut Vec<Diagnostic>,
    ) -> Option<OperandType<'a>> {
        {
            match self.entity.field(name) {
                Some(field) => Some(OperandType::Field(field)),
                None if self.tenant_column == Some(name) => {
                    Some(OperandType::ContextUuid("the tenant column"))
                }
                None if self.entity.fields.is_empty() => Some(OperandType::Untyped),
                None => {
                    let at = if field_span.line == 0 {
                        span
                    } else {
                        field_span
                    };
                    errors.push(Diagnostic::new(
                        at,
                        format!("unknown field `{name}` in entity `{}`", self.entity.name),
                    ));
                    None
                }
            }
        }
    }

    /// Reports a comparison between values of different kinds.
    fn compatible(
        &self,
        left: &OperandType,
        right: &OperandType,
        at: &Operand,
        span: Span,
        errors: &mut Vec<Diagnostic>,
    ) {
        let span = operand_span(at, span);
        let problem = match (left, right) {
            (OperandType::Field(field), OperandType::Literal(literal))
            | (OperandType::Literal(literal), OperandType::Field(field)) => {
                literal_fits(literal, field).err()
            }
            (OperandType::Field(field), OperandType::ContextUuid(what))
            | (OperandType::ContextUuid(what), OperandType::Field(field)) => {
                (field.ty.class() != ValueClass::Uuid).then(|| {
                    format!(
                        "`{what}` is a uuid but field `{}` is {}",
                        field.name,
                        type_name(&field.ty)
                    )
                })
            }
            (OperandType::Field(a), OperandType::Field(b)) => {
                (a.ty.class() != b.ty.class()).then(|| {
                    format!(
                        "field `{}` ({}) cannot be compared with field `{}` ({})",
                        a.name,
                        type_name(&a.ty),
                        b.name,
                        type_name(&b.ty)
                    )
                })
            }
            (OperandType::ContextUuid(what), OperandType::Literal(literal))
            | (OperandType::Literal(literal), OperandType::ContextUuid(what)) => match literal {
                Literal::Str(text) if parse_uuid(text).is_ok() => None,
                _ => Some(format!(
                    "`{what}` is a uuid; {} is not a valid uuid",
                    describe_literal(literal)
                )),
            },
            (OperandType::Literal(a), OperandType::Literal(b)) => {
                (literal_class(a) != literal_class(b)).then(|| {
                    format!(
                        "{} cannot be compared with {}",
                        describe_literal(a),
                        describe_literal(b)
                    )
                })
            }
            _ => None,
        };
        if let Some(message) = problem {
            errors.push(Diagnostic::new(span, message));
        }
    }
}

fn operand_span(operand: &Operand, fallback: Span) -> Span {
    match operand {
        Operand::Field(_, span) | Operand::This(_, span) if span.line != 0 => *span,
        _ => fallback,
    }
}

fn literal_class(literal: &Literal) -> Option<ValueClass> {
    match literal {
        Literal::Str(_) => Some(ValueClass::Text),
        Literal::Int(_) | Literal::Float(_) => Some(ValueClass::Number),
        Literal::Bool(_) => Some(ValueClass::Bool),
        Literal::Null => None,
    }
}

pub fn describe_literal(literal: &Literal) -> String {
    match literal {
        Literal::Str(text) => format!("`'{text}'`"),
        Literal::Int(n) => format!("`{n}`"),
        Literal::Float(x) => format!("`{x}`"),
        Literal::Bool(b) => format!("`{b}`"),
        Literal::Null => "`null`".into(),
    }
}

pub fn type_name(ty: &FieldType) -> String {
    match ty {
        FieldType::Uuid => "uuid".into(),
        FieldType::Str(None) => "str".into(),
        FieldType::Str(Some(n)) => format!("str({n})"),
        FieldType::Text => "text".into(),
        FieldType::Int => "int".into(),
        FieldType::Float => "float".into(),
        FieldType::Decimal(p, s) => format!("decimal({p},{s})"),
        FieldType::Bool => "bool".into(),
        FieldType::Date => "date".into(),
        FieldType::DateTime => "datetime".into(),
        FieldType::Json => "json".into(),
        FieldType::Enum(values) => format!("enum[{}]", values.join(",")),
        FieldType::Ref(entity) => format!("ref {entity}"),
    }
}

/// Whether a literal can stand for a value of this field.
fn literal_fits(literal: &Literal, field: &Field) -> Result<(), String> {
    let mismatch = || {
        Err(format!(
            "{} does not fit field `{}` of type {}",
            describe_literal(literal),
            field.name,
            type_name(&field.ty)
        ))
    };
    match (&field.ty, literal) {
        (_, Literal::Null) => Ok(()),
        (FieldType::Uuid | FieldType::Ref(_), Literal::Str(text)) => match parse_uuid(text) {
            Ok(_) => Ok(()),
            Err(_) => Err(format!(
                "`'{text}'` is not a valid uuid for field `{}`",
                field.name
            )),
        },
        (FieldType::Enum(values), Literal::Str(text)) => {
            if values.contains(text) {
                Ok(())
            } else {
                Err(format!(
                    "`'{text}'` is not a value of field `{}`; expected one of {}",
                    field.name,
                    values.join(", ")
                ))
            }
        }
        (FieldType::Str(Some(max)), Literal::Str(text)) if text.chars().count() > *max as usize => {
            Err(format!(
                "`'{text}'` is longer than field `{}` allows ({max})",
                field.name
            ))
        }
        (
            FieldType::Str(_) | FieldType::Text | FieldType::Date | FieldType::DateTime,
            Literal::Str(_),
        ) => Ok(()),
        (FieldType::Int, Literal::Int(_) | Literal::Float(_)) => Ok(()),
        (FieldType::Float | FieldType::Decimal(_, _), Literal::Int(_) | Literal::Float(_)) => {
            Ok(())
        }
        (FieldType::Bool, Literal::Bool(_)) => Ok(()),
        (FieldType::Json, _) => Err(format!(
            "field `{}` is json and cannot be compared",
            field.name
        )),
        _ => mismatch(),
    }
}
