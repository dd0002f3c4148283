//! SQL compilers: pure functions from a policy set to SQL text.

mod expr;
pub mod postgres;
pub mod quote;
pub mod sqlite;

use crate::ast::PolicySet;

pub use sqlite::{SqliteColumn, SqliteSchema, SqliteTable};

/// Where compiled policies run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// PostgreSQL with `CREATE EXTENSION dnr`.
    Postgres,
    /// PostgreSQL without the extension (managed services): the context is
    /// read from the same `dnr.*` settings with `current_setting`.
    PostgresPlain,
    /// SQLite with the DNR extension loaded.
    Sqlite,
}

impl Target {
    pub fn parse(text: &str) -> Option<Target> {
        match text {
            "postgres" => Some(Target::Postgres),
            "postgres-plain" => Some(Target::PostgresPlain),
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
}

/// Compiles for `target` as if no declared table existed yet.
pub fn compile(set: &PolicySet, target: Target) -> Result<String, CompileError> {
    match target {
        Target::Postgres => postgres::compile(set, postgres::Flavor::Extension),
        Target::PostgresPlain => postgres::compile(set, postgres::Flavor::Plain),
        Target::Sqlite => sqlite::compile(set, &SqliteSchema::default()),
    }
}
