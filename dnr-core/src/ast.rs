//! The syntax tree of a policy file.

use crate::span::Span;

/// A parsed and checked policy file.
#[derive(Debug, Clone, PartialEq)]
pub struct PolicySet {
    pub tenancy: Tenancy,
    pub entities: Vec<Entity>,
}

/// The file's `tenancy:` block (defaults when absent).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tenancy {
    pub mode: TenantMode,
    /// The partition column; `tenant_id` unless the block names another.
    pub column: String,
    /// Where the column was named (unset for the default).
    pub column_span: Span,
}

impl Default for Tenancy {
    fn default() -> Tenancy {
        Tenancy {
            mode: TenantMode::RowLevel,
            column: DEFAULT_TENANT_COLUMN.to_string(),
            column_span: Span::default(),
        }
    }
}

pub const DEFAULT_TENANT_COLUMN: &str = "tenant_id";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TenantMode {
    None,
    RowLevel,
    Schema,
    Database,
}

impl TenantMode {
    pub fn parse(text: &str) -> Option<TenantMode> {
        match text {
            "none" => Some(TenantMode::None),
            "row_level" => Some(TenantMode::RowLevel),
            "schema" => Some(TenantMode::Schema),
            "database" => Some(TenantMode::Database),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            TenantMode::None => "none",
            TenantMode::RowLevel => "row_level",
            TenantMode::Schema => "schema",
            TenantMode::Database => "database",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Entity {
    pub name: String,
    pub table: String,
    /// Whether `table` was written out (printing keeps the file's shape).
    pub table_explicit: bool,
    /// Where the table name was written (the entity name when implied).
    pub table_span: Span,
    pub tenant: EntityTenant,
    pub fields: Vec<Field>,
    pub rules: Vec<Rule>,
    pub span: Span,
}

impl Entity {
    pub fn field(&self, name: &str) -> Option<&Field> {
        self.fields.iter().find(|f| f.name == name)
    }

    /// The rules of one kind for one operation, in source order.
    pub fn rules_for(&self, kind: RuleKind, op: Operation) -> impl Iterator<Item = &Rule> {
        self.rules
            .iter()
            .filter(move |r| r.kind == kind && r.op == op)
    }

    /// The declared primary key columns.
    pub fn primary_key(&self) -> Vec<&Field> {
        self.fields.iter().filter(|f| f.primary_key).collect()
    }
}

/// How an entity is partitioned by tenant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntityTenant {
    /// Fenced by the file's tenancy column.
    Default,
    /// `tenant: none` — shared reference data, no fence.
    None,
    /// `tenant: <column>` — fenced by another column.
    Column(String),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Field {
    pub name: String,
    pub ty: FieldType,
    pub primary_key: bool,
    pub required: bool,
    pub unique: bool,
    pub default: Option<Literal>,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FieldType {
    Uuid,
    Str(Option<u32>),
    Text,
    Int,
    Float,
    Decimal(u32, u32),
    Bool,
    Date,
    DateTime,
    Json,
    Enum(Vec<String>),
    Ref(String),
}

/// What kind of value a field or operand holds, for type checks and for
/// comparing values the same way in every engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueClass {
    Uuid,
    Text,
    Number,
    Bool,
    Json,
}

impl FieldType {
    pub fn class(&self) -> ValueClass {
        match self {
            FieldType::Uuid | FieldType::Ref(_) => ValueClass::Uuid,
            FieldType::Str(_)
            | FieldType::Text
            | FieldType::Date
            | FieldType::DateTime
            | FieldType::Enum(_) => ValueClass::Text,
            FieldType::Int | FieldType::Float | FieldType::Decimal(_, _) => ValueClass::Number,
            FieldType::Bool => ValueClass::Bool,
            FieldType::Json => ValueClass::Json,
        }
    }
}

/// `access:`/`permit:` rules allow; `forbid:` rules deny whatever allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RuleKind {
    Permit,
    Forbid,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Operation {
    Create,
    Read,
    Update,
    Delete,
}

impl Operation {
    pub const ALL: [Operation; 4] = [
        Operation::Create,
        Operation::Read,
        Operation::Update,
        Operation::Delete,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Operation::Create => "create",
            Operation::Read => "read",
            Operation::Update => "update",
            Operation::Delete => "delete",
        }
    }

    /// Parses an operation name as the check APIs take it (`list` is `read`).
    pub fn parse(text: &str) -> Option<Operation> {
        match text.to_ascii_lowercase().as_str() {
            "create" | "insert" => Some(Operation::Create),
            "read" | "list" | "select" => Some(Operation::Read),
            "update" => Some(Operation::Update),
            "delete" => Some(Operation::Delete),
            _ => None,
        }
    }
}

/// One rule line. `write:` lines become a create and an update rule.
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    pub kind: RuleKind,
    pub op: Operation,
    pub condition: Expr,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    Bool(bool),
    Authenticated,
    Anonymous,
    Role(String),
    Compare {
        lhs: Operand,
        op: CmpOp,
        rhs: Operand,
    },
    In {
        operand: Operand,
        negated: bool,
        list: Vec<Literal>,
    },
    IsNull {
        operand: Operand,
        negated: bool,
    },
    Not(Box<Expr>),
    /// Two or more conditions that must all hold (a flat chain, so a long
    /// `a and b and ...` is wide rather than deep).
    And(Vec<Expr>),
    /// Two or more alternatives.
    Or(Vec<Expr>),
    /// `exists E where COND`: a readable row of `E` satisfies `COND`.
    Exists(Box<Exists>),
}

/// A relationship condition. Inside `condition` bare fields are the related
/// entity's and `this.<field>` is the checked (outermost) row's.
#[derive(Debug, Clone, PartialEq)]
pub struct Exists {
    pub entity: String,
    /// Where the related entity is named.
    pub entity_span: Span,
    /// The whole `exists ... where ...` clause.
    pub span: Span,
    pub condition: Expr,
}

impl Expr {
    /// The fields of the checked row the condition names, in order, with
    /// repeats: bare fields outside `exists`, `this.<field>` inside.
    pub fn fields(&self) -> Vec<&str> {
        let mut out = Vec::new();
        self.collect_fields(&mut out, false);
        out
    }

    fn collect_fields<'e>(&'e self, out: &mut Vec<&'e str>, related: bool) {
        let mut operand = |o: &'e Operand| match o {
            Operand::Field(name, _) if !related => out.push(name.as_str()),
            Operand::This(name, _) => out.push(name.as_str()),
            _ => {}
        };
        match self {
            Expr::Compare { lhs, rhs, .. } => {
                operand(lhs);
                operand(rhs);
            }
            Expr::In { operand: o, .. } | Expr::IsNull { operand: o, .. } => operand(o),
            Expr::Not(inner) => inner.collect_fields(out, related),
            Expr::And(members) | Expr::Or(members) => {
                for member in members {
                    member.collect_fields(out, related);
                }
            }
            Expr::Exists(exists) => exists.condition.collect_fields(out, true),
            Expr::Bool(_) | Expr::Authenticated | Expr::Anonymous | Expr::Role(_) => {}
        }
    }

    /// Every `exists` in the condition, outermost first.
    pub fn exists_clauses(&self) -> Vec<&Exists> {
        let mut out = Vec::new();
        self.collect_exists(&mut out);
        out
    }

    fn collect_exists<'e>(&'e self, out: &mut Vec<&'e Exists>) {
        match self {
            Expr::Not(inner) => inner.collect_exists(out),
            Expr::And(members) | Expr::Or(members) => {
                for member in members {
                    member.collect_exists(out);
                }
            }
            Expr::Exists(exists) => {
                out.push(exists);
                exists.condition.collect_exists(out);
            }
            _ => {}
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CmpOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

impl CmpOp {
    pub fn as_sql(self) -> &'static str {
        match self {
            CmpOp::Eq => "=",
            CmpOp::Ne => "<>",
            CmpOp::Lt => "<",
            CmpOp::Le => "<=",
            CmpOp::Gt => ">",
            CmpOp::Ge => ">=",
        }
    }

    pub fn is_ordering(self) -> bool {
        !matches!(self, CmpOp::Eq | CmpOp::Ne)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Operand {
    Field(String, Span),
    /// `this.<field>` inside `exists`: a field of the checked row.
    This(String, Span),
    CurrentUser,
    CurrentTenant,
    Literal(Literal),
}

#[derive(Debug, Clone, PartialEq)]
pub enum Literal {
    Str(String),
    Int(i64),
    Float(f64),
    Bool(bool),
    Null,
}
