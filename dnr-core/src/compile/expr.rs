//! Conditions rendered as SQL, shared by every target. A dialect says how to
//! read the context and spell values; the semantics (three-valued logic,
//! binary text order, uuids by value) are the same everywhere.

use crate::ast::*;
use crate::check::tenant_column;
use crate::compile::quote::{self, ident};
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
    /// The table an `exists` on `entity` reads.
    fn related_table(&self, entity: &Entity) -> String;
    /// Whether reading that table already applies the related entity's
    /// fence and read rule (PostgreSQL's RLS applies inside a policy's
    /// subquery); otherwise the writer spells them out.
    fn filters_related_rows(&self) -> bool;
    /// `condition` is not true (false or NULL): what a forbid demands.
    fn not_true(&self, condition: &str) -> String {
        format!("({condition}) IS NOT TRUE")
    }
}

/// How the columns of one row are spelled in SQL.
type ColumnSpelling<'a> = &'a dyn Fn(&str) -> String;

/// Renders conditions of one entity; `column` spells a column reference
/// (bare, or `NEW."x"` inside a trigger).
pub(crate) struct ConditionWriter<'a> {
    dialect: &'a dyn Dialect,
    set: &'a PolicySet,
    entity: &'a Entity,
    column: &'a dyn Fn(&str) -> String,
    /// What qualifies a bare `column` inside a subquery (the table a policy
    /// or view is on), where a bare name would find the related table's.
    qualifier: Option<String>,
    /// The checked row inside `exists`: its entity and column spelling.
    this: Option<(&'a Entity, ColumnSpelling<'a>)>,
    /// How many `exists` enclose this writer (names subquery aliases).
    depth: usize,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Uuid,
    Text,
    Other,
    Unknown,
}

impl<'a> ConditionWriter<'a> {
    pub fn new(
        dialect: &'a dyn Dialect,
        set: &'a PolicySet,
        entity: &'a Entity,
        column: &'a dyn Fn(&str) -> String,
    ) -> ConditionWriter<'a> {
        ConditionWriter {
            dialect,
            set,
            entity,
            column,
            qualifier: None,
            this: None,
            depth: 0,
        }
    }

    /// Columns are bare names of `table`: qualified with it inside `exists`.
    pub fn qualified_by(mut self, table: String) -> ConditionWriter<'a> {
        self.qualifier = Some(table);
        self
    }

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
            Some(forbid) => format!("({permit}) AND {}", self.dialect.not_true(&forbid)),
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
            Expr::Exists(exists) => self.exists(exists),
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

    /// `EXISTS (SELECT 1 FROM <related> AS dnr_eN WHERE <its fence and read
    /// rule> AND <condition>)`: the related rows are those the context may
    /// read, whichever engine runs it.
    fn exists(&self, exists: &Exists) -> String {
        let Some(related) = self.set.entities.iter().find(|e| e.name == exists.entity) else {
            // The checker refuses an unknown entity; deny if one got here.
            return self.dialect.boolean(false).to_string();
        };
        let alias = ident(&format!("dnr_e{}", self.depth + 1));
        let related_column = |name: &str| format!("{alias}.{}", ident(name));
        let qualified_self = |name: &str| match &self.qualifier {
            Some(table) => format!("{table}.{}", ident(name)),
            None => (self.column)(name),
        };
        let this = self
            .this
            .unwrap_or((self.entity, &qualified_self as &dyn Fn(&str) -> String));
        let inside = |this| ConditionWriter {
            dialect: self.dialect,
            set: self.set,
            entity: related,
            column: &related_column,
            qualifier: None,
            this,
            depth: self.depth + 1,
        };
        let condition = inside(Some(this)).expr(&exists.condition);
        let mut parts = Vec::new();
        if !self.dialect.filters_related_rows() {
            // The related entity's own rules: `this` in them is its row.
            let filter = inside(None);
            parts.extend(filter.fence());
            parts.push(
                filter
                    .allows(Operation::Read)
                    .unwrap_or_else(|| self.dialect.boolean(false).to_string()),
            );
        }
        parts.push(condition);
        format!(
            "EXISTS (SELECT 1 FROM {} AS {alias} WHERE {})",
            self.dialect.related_table(related),
            chain(parts, "AND")
        )
    }

    /// What kind of value an operand holds, as far as declarations say.
    fn kind(&self, operand: &Operand) -> Kind {
        let field_kind = |entity: &Entity, name: &str| match entity.field(name) {
            Some(field) => match field.ty.class() {
                ValueClass::Uuid => Kind::Uuid,
                ValueClass::Text => Kind::Text,
                _ => Kind::Other,
            },
            None if tenant_column(self.set, entity) == Some(name) => Kind::Uuid,
            None => Kind::Unknown,
        };
        match operand {
            Operand::CurrentUser | Operand::CurrentTenant => Kind::Uuid,
            Operand::Literal(_) => Kind::Unknown,
            Operand::Field(name, _) => field_kind(self.entity, name),
            Operand::This(name, _) => match self.this {
                Some((entity, _)) => field_kind(entity, name),
                None => Kind::Unknown,
            },
        }
    }

    fn operand(&self, operand: &Operand, kind: Kind) -> String {
        match operand {
            Operand::Field(name, _) => (self.column)(name),
            // The checker refuses `this.` outside `exists`; NULL denies.
            Operand::This(name, _) => match self.this {
                Some((_, column)) => column(name),
                None => "NULL".into(),
            },
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
