//! SQL compilers: pure functions from a policy set to SQL text.

mod expr;
pub mod postgres;
pub mod quote;
pub mod sqlite;

use crate::ast::{CmpOp, Entity, Expr, Operand, PolicySet};
use crate::check::tenant_column;

pub use sqlite::{SqliteColumn, SqliteSchema, SqliteTable, StorageSql};

/// Where compiled policies run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// PostgreSQL with `CREATE EXTENSION dnr`.
    Postgres,
    /// PostgreSQL without the extension (managed services): the context is
    /// read from the same `dnr.*` settings with `current_setting`.
    PostgresPlain,
    /// PostgreSQL with the extension on a Citus cluster (distributed
    /// tables): no subqueries in policies, no triggers.
    PostgresCitus,
    /// SQLite with the DNR extension loaded.
    Sqlite,
}

impl Target {
    pub fn parse(text: &str) -> Option<Target> {
        match text {
            "postgres" => Some(Target::Postgres),
            "postgres-plain" => Some(Target::PostgresPlain),
            "postgres-citus" => Some(Target::PostgresCitus),
            "sqlite" => Some(Target::Sqlite),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CompileError {
    #[error("entity `{entity}` declares no fields; the sqlite target needs its columns (`dnr_apply` reads them from the database, `dnr compile` cannot)")]
    UnknownColumns { entity: String },
    #[error(
        "entity `{entity}`: column `{column}` named in a rule does not exist in table `{table}`"
    )]
    MissingColumn {
        entity: String,
        table: String,
        column: String,
    },
    #[error("entity `{entity}`: tenant column `{column}` does not exist in table `{table}`")]
    MissingTenantColumn {
        entity: String,
        table: String,
        column: String,
    },
    #[error("entity `{entity}`: name `{name}` contains a NUL character")]
    NulInName { entity: String, name: String },
    #[error("entity `{entity}`: `exists` rules cannot be enforced on Citus distributed tables (Citus refuses subqueries in their policies); see docs/citus.md")]
    CitusExists { entity: String },
}

/// Compiles for `target` as if no declared table existed yet.
pub fn compile(set: &PolicySet, target: Target) -> Result<String, CompileError> {
    match target {
        Target::Postgres => postgres::compile(set, postgres::Flavor::Extension),
        Target::PostgresPlain => postgres::compile(set, postgres::Flavor::Plain),
        Target::PostgresCitus => postgres::compile(set, postgres::Flavor::Citus),
        Target::Sqlite => sqlite::compile(set, &SqliteSchema::default()),
    }
}

/// The unique keys DNR declares for an entity's table: the primary key
/// (empty when none is declared) and one key per `unique` field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeclaredKeys<'a> {
    pub primary: Vec<&'a str>,
    pub unique: Vec<Vec<&'a str>>,
}

impl<'a> DeclaredKeys<'a> {
    /// Every key, the primary key first.
    pub fn all(&self) -> impl Iterator<Item = &Vec<&'a str>> {
        std::iter::once(&self.primary)
            .filter(|key| !key.is_empty())
            .chain(&self.unique)
    }
}

/// A unique key as DNR creates it: led by the tenant column of a
/// tenant-scoped entity (`tenant`, from [`tenant_column`]), so that a key
/// is unique per tenant. A key that holds the tenant column already stays
/// as declared. Per tenant in every mode (schema and database modes
/// separate their tenants' tables anyway): a table-wide key would tell one
/// tenant, by a duplicate-key error, that another holds a value, and let
/// it take values (ids, e-mails) before the other does.
pub fn per_tenant<'a>(tenant: Option<&'a str>, key: &[&'a str]) -> Vec<&'a str> {
    match tenant {
        Some(column) if !key.is_empty() && !key.contains(&column) => {
            std::iter::once(column).chain(key.iter().copied()).collect()
        }
        _ => key.to_vec(),
    }
}

/// The keys of `entity`'s declared fields, each made [`per_tenant`].
pub fn declared_keys<'a>(entity: &'a Entity, tenant: Option<&'a str>) -> DeclaredKeys<'a> {
    let primary: Vec<&str> = entity
        .primary_key()
        .iter()
        .map(|f| f.name.as_str())
        .collect();
    DeclaredKeys {
        primary: per_tenant(tenant, &primary),
        unique: entity
            .fields
            .iter()
            .filter(|f| f.unique && primary != [f.name.as_str()])
            .map(|f| per_tenant(tenant, &[f.name.as_str()]))
            .collect(),
    }
}

/// The keys an earlier DNR created table-wide for `entity` (before keys
/// were per tenant), each with the per-tenant key that replaces it and
/// whether it is the primary key; the primary key first. Empty for an
/// entity without a tenant column. A `unique` primary key field had a
/// second, unique, key of its own: it is listed too (the per-tenant
/// primary key replaces it).
pub fn table_wide_keys<'a>(
    entity: &'a Entity,
    tenant: Option<&'a str>,
) -> Vec<(Vec<&'a str>, Vec<&'a str>, bool)> {
    let primary: Vec<&str> = entity
        .primary_key()
        .iter()
        .map(|f| f.name.as_str())
        .collect();
    let mut keys = Vec::new();
    if !primary.is_empty() {
        keys.push((primary.clone(), true));
    }
    keys.extend(
        entity
            .fields
            .iter()
            .filter(|f| f.unique)
            .map(|f| (vec![f.name.as_str()], false)),
    );
    keys.into_iter()
        .map(|(old, primary)| {
            let new = per_tenant(tenant, &old);
            (old, new, primary)
        })
        .filter(|(old, new, _)| old != new)
        .collect()
}

/// The columns of related entities that `exists` conditions match on by
/// equality, per related entity: its tenant column (the fence applies inside
/// `exists`), those compared with the context, then those joined to the
/// checked row. Every compiler indexes them
/// (unless an index already leads with them), so that finding the related
/// rows of one checked row never scans the related table. A list that is a
/// prefix of another is left out: the longer index serves both.
pub fn related_indexes(set: &PolicySet) -> Vec<(&Entity, Vec<&str>)> {
    let mut found: Vec<(&Entity, Vec<&str>)> = Vec::new();
    let clauses = set
        .entities
        .iter()
        .flat_map(|e| &e.rules)
        .flat_map(|r| r.condition.exists_clauses());
    for exists in clauses {
        let Some(related) = set.entities.iter().find(|e| e.name == exists.entity) else {
            continue;
        };
        let conjuncts = match &exists.condition {
            Expr::And(members) => members.iter().collect(),
            other => vec![other],
        };
        let (mut joined, mut constant) = (Vec::new(), Vec::new());
        for conjunct in conjuncts {
            let Expr::Compare {
                lhs,
                op: CmpOp::Eq,
                rhs,
            } = conjunct
            else {
                continue;
            };
            for (side, other) in [(lhs, rhs), (rhs, lhs)] {
                let Operand::Field(name, _) = side else {
                    continue;
                };
                let name = name.as_str();
                if joined.contains(&name) || constant.contains(&name) {
                    continue;
                }
                match other {
                    Operand::This(..) => joined.push(name),
                    Operand::CurrentUser | Operand::CurrentTenant => constant.push(name),
                    // A literal (`role = 'editor'`) narrows little and
                    // would make an index per literal set: left out.
                    Operand::Field(..) | Operand::Literal(_) => {}
                }
            }
        }
        // Matched on the context ("the user's memberships"): the fence
        // column, the context, then the join. Every column is an equality,
        // so a per-row probe uses the whole index, and a plan that reads the
        // user's rows of the tenant once (PostgreSQL's hashed subplan, a
        // semi-join) uses its leading columns. Matched on the join alone:
        // the joined columns.
        let mut columns: Vec<&str> = Vec::new();
        if !constant.is_empty() {
            columns.extend(tenant_column(set, related));
        }
        for column in constant.into_iter().chain(joined) {
            if !columns.contains(&column) {
                columns.push(column);
            }
        }
        let key: Vec<&str> = related
            .primary_key()
            .iter()
            .map(|f| f.name.as_str())
            .collect();
        let keyed = !key.is_empty() && key.iter().all(|k| columns.contains(k));
        if columns.is_empty()
            || keyed
            || columns == [tenant_column(set, related).unwrap_or_default()]
        {
            continue;
        }
        found.push((related, columns));
    }
    let all = found.clone();
    found.retain(|(entity, columns)| {
        !all.iter().any(|(other, longer)| {
            other.name == entity.name && longer.len() > columns.len() && longer.starts_with(columns)
        })
    });
    let mut unique: Vec<(&Entity, Vec<&str>)> = Vec::new();
    for item in found {
        if !unique
            .iter()
            .any(|u| u.0.name == item.0.name && u.1 == item.1)
        {
            unique.push(item);
        }
    }
    unique
}
