//! Conditions rendered as SQL, shared by every target. A dialect says how to
//! read the context and spell values; the semantics (three-valued logic,
//! binary text order, uuids by value) are the same everywhere.

use crate::ast::*;
use crate::check::tenant_column;
use crate::compile::quote;
use crate::print::literal_text;
use crate::value::parse_uuid;

pub(crate) trait Dialect {
    fn current_tenant(&self) -> String;
    fn current_user(&self) -> String;
    fn has_role(&self, role: &str) -> String;
    fn authenticated(&self) -> String;
    fn boolean(&self, value: bool) -> &'static str;
    fn uuid_literal(&self, uuid: &uuid::Uuid) -> String;
    /// The collation clause that makes text compare bytewise.
    fn binary_collation(&self) -> &'static str;
    /// Whether equality on text also needs the clause (SQLite: a column may
    /// be declared NOCASE; PostgreSQL's deterministic collations compare
    /// equal only when bytes are equal, and the clause would hide indexes).
    fn collate_equality(&self) -> bool;
    /// Whether `x IN (a, b)` is better written `(x = a OR x = b)`: SQLite
    /// builds a temporary index for a constant IN list once per statement,
    /// which inside a trigger means once per written row.
    fn expand_in_lists(&self) -> bool;
}

/// Renders conditions of one entity; `column` spells a column reference
/// (bare, or `NEW."x"` inside a trigger).
pub(crate) struct ConditionWriter<'a> {
    pub dialect: &'a dyn Dialect,
    pub set: &'a PolicySet,
    pub entity: &'a Entity,
    pub column: &'a dyn Fn(&str) -> String,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Uuid,
    Text,
    Other,
    Unknown,
}

impl ConditionWriter<'_> {
    /// The tenant fence, or `None` for an unfenced entity.
    pub fn fence(&self) -> Option<String> {
        tenant_column(self.set, self.entity).map(|column| {
            format!(
                "{} = {}",
                (self.column)(column),
                self.dialect.current_tenant()
            )
        })
    }

    /// The permit rules of `op` joined with OR, or `None` when there are none
    /// (default deny).
    pub fn permits(&self, op: Operation) -> Option<String> {
        self.any(RuleKind::Permit, op)
    }

    /// The forbid rules of `op` joined with OR, or `None`.
    pub fn forbids(&self, op: Operation) -> Option<String> {
        self.any(RuleKind::Forbid, op)
    }

    /// `permit AND forbid IS NOT TRUE`: what `op`'s own rules demand of a row.
    pub fn allows(&self, op: Operation) -> Option<String> {
        let permit = self.permits(op)?;
        Some(match self.forbids(op) {
            Some(forbid) => format!("({permit}) AND ({forbid}) IS NOT TRUE"),
            None => permit,
        })
    }

    fn any(&self, kind: RuleKind, op: Operation) -> Option<String> {
        let parts: Vec<String> = self
            .entity
            .rules_for(kind, op)
            .map(|r| self.expr(&r.condition))
            .collect();
        match parts.len() {
            0 => None,
            1 => parts.into_iter().next(),
            _ => Some(chain(parts, "OR")),
        }
    }

    pub fn expr(&self, expr: &Expr) -> String {
        match expr {
            Expr::Bool(b) => self.dialect.boolean(*b).to_string(),
            Expr::Authenticated => self.dialect.authenticated(),
            Expr::Anonymous => format!("NOT {}", self.dialect.authenticated()),
            Expr::Role(role) => self.dialect.has_role(role),
            Expr::Not(inner) => format!("NOT ({})", self.expr(inner)),
            Expr::And(members) => chain(members.iter().map(|m| self.expr(m)).collect(), "AND"),
            Expr::Or(members) => chain(members.iter().map(|m| self.expr(m)).collect(), "OR"),
            Expr::IsNull { operand, negated } => {
                let not = if *negated { " NOT" } else { "" };
                format!("{} IS{not} NULL", self.operand(operand, Kind::Unknown))
            }
            Expr::In {
                operand,
                negated,
                list,
            } => {
                let kind = self.kind(operand);
                let literal_kind = if kind == Kind::Unknown {
                    Kind::Other
                } else {
                    kind
                };
                let items: Vec<String> = list
                    .iter()
                    .map(|l| self.operand(&Operand::Literal(l.clone()), literal_kind))
                    .collect();
                let collate = if kind == Kind::Text && self.dialect.collate_equality() {
                    self.dialect.binary_collation()
                } else {
                    ""
                };
                let value = self.operand(operand, kind);
                if self.dialect.expand_in_lists() {
                    // Same three-valued result: the list never holds NULL.
                    let (op, joiner) = if *negated { ("<>", "AND") } else { ("=", "OR") };
                    let parts: Vec<String> = items
                        .iter()
                        .map(|item| format!("{value}{collate} {op} {item}"))
                        .collect();
                    return format!("({})", chain(parts, joiner));
                }
                let not = if *negated { " NOT" } else { "" };
                format!("{value}{collate}{not} IN ({})", items.join(", "))
            }
            Expr::Compare { lhs, op, rhs } => {
                let (left_kind, right_kind) = (self.kind(lhs), self.kind(rhs));
                // A literal takes the kind of what it is compared with.
                let kind = if left_kind == Kind::Unknown {
                    right_kind
                } else {
                    left_kind
                };
                let is_text = kind == Kind::Text
                    || (kind == Kind::Unknown && (is_text_literal(lhs) || is_text_literal(rhs)));
                let collate = if is_text && (op.is_ordering() || self.dialect.collate_equality()) {
                    self.dialect.binary_collation()
                } else {
                    ""
                };
                format!(
                    "{}{collate} {} {}",
                    self.operand(lhs, kind),
                    op.as_sql(),
                    self.operand(rhs, kind)
                )
            }
        }
    }

    /// What kind of value an operand holds, as far as declarations say.
    fn kind(&self, operand: &Operand) -> Kind {
        match operand {
            Operand::CurrentUser | Operand::CurrentTenant => Kind::Uuid,
            Operand::Literal(_) => Kind::Unknown,
            Operand::Field(name, _) => match self.entity.field(name) {
                Some(field) => match field.ty.class() {
                    ValueClass::Uuid => Kind::Uuid,
                    ValueClass::Text => Kind::Text,
                    _ => Kind::Other,
                },
                None if tenant_column(self.set, self.entity) == Some(name.as_str()) => Kind::Uuid,
                None => Kind::Unknown,
            },
        }
    }

    fn operand(&self, operand: &Operand, kind: Kind) -> String {
        match operand {
            Operand::Field(name, _) => (self.column)(name),
            Operand::CurrentUser => self.dialect.current_user(),
            Operand::CurrentTenant => self.dialect.current_tenant(),
            Operand::Literal(Literal::Str(text)) => match (kind, parse_uuid(text)) {
                (Kind::Uuid, Ok(uuid)) => self.dialect.uuid_literal(&uuid),
                _ => quote::literal(text),
            },
            Operand::Literal(Literal::Bool(b)) => self.dialect.boolean(*b).to_string(),
            Operand::Literal(literal) => literal_text(literal).to_uppercase(),
        }
    }
}

/// Members joined with `AND`/`OR`, each parenthesized. A chain longer than
/// `FLAT_CHAIN` is split in balanced halves: SQLite nests `a OR b OR c ...`
/// one level per member and refuses expressions deeper than 1,000.
fn chain(mut members: Vec<String>, operator: &str) -> String {
    const FLAT_CHAIN: usize = 16;
    if members.len() <= FLAT_CHAIN {
        return members
            .iter()
            .map(|member| format!("({member})"))
            .collect::<Vec<_>>()
            .join(&format!(" {operator} "));
    }
    let second = members.split_off(members.len() / 2);
    format!(
        "({}) {operator} ({})",
        chain(members, operator),
        chain(second, operator)
    )
}

/// A string literal that is text rather than a spelled uuid.
fn is_text_literal(operand: &Operand) -> bool {
    matches!(operand, Operand::Literal(Literal::Str(text)) if parse_uuid(text).is_err())
}
