//! Versioned migration files: `NNNN_name.sql` in the project's
//! `migrations` directory, parsed with `sqlparser` before anything runs.
//!
//! A file is refused (with its name and the statement's line) when it
//! cannot be parsed, holds transaction control (each migration runs in the
//! transaction DNR opens for it, with its history row), changes the role,
//! or — in schema mode, where one file runs in every tenant's schema —
//! names another schema or changes the `search_path`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use sqlparser::ast::{
    visit_expressions, visit_relations, Expr, ObjectName, Set, Spanned, Statement, Value,
};
use sqlparser::dialect::{Dialect as SqlDialect, PostgreSqlDialect, SQLiteDialect};
use sqlparser::parser::Parser;

/// One migration file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Migration {
    pub version: u32,
    pub name: String,
    pub file: PathBuf,
    pub sql: String,
    /// Lowercase hex SHA-256 of the file's bytes.
    pub checksum: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    Postgres,
}

/// The lowercase hex SHA-256 of `text` (the extension computes the same
/// with `encode(sha256(convert_to(ddl, 'UTF8')), 'hex')`).
pub fn checksum(text: &str) -> String {
    Sha256::digest(text.as_bytes())
        .iter()
        .fold(String::with_capacity(64), |mut hex, byte| {
            let _ = write!(hex, "{byte:02x}");
            hex
        })
}

/// The migrations in `dir`, by version. A missing directory has none.
pub fn load_dir(dir: &Path, dialect: Dialect, schema_mode: bool) -> Result<Vec<Migration>, String> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(format!("error: cannot read `{}`: {e}", dir.display())),
    };
    let mut by_version: BTreeMap<u32, Migration> = BTreeMap::new();
    for entry in entries {
        let entry = entry.map_err(|e| format!("error: cannot read `{}`: {e}", dir.display()))?;
        let file = entry.path();
        let Some(file_name) = file.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        let Some(stem) = file_name.strip_suffix(".sql") else {
            continue;
        };
        let (version, name) = parse_file_name(stem).ok_or_else(|| {
            format!(
                "error: `{}`: a migration file is named NNNN_name.sql (a version number, `_`, letters, digits, `_` or `-`)",
                file.display()
            )
        })?;
        let sql = std::fs::read_to_string(&file)
            .map_err(|e| format!("error: cannot read `{}`: {e}", file.display()))?;
        validate(&sql, dialect, schema_mode)
            .map_err(|message| format!("error: `{}`: {message}", file.display()))?;
        let migration = Migration {
            version,
            name: name.to_string(),
            checksum: checksum(&sql),
            file,
            sql,
        };
        if let Some(other) = by_version.get(&version) {
            return Err(format!(
                "error: `{}` and `{}` both have version {version}",
                other.file.display(),
                migration.file.display()
            ));
        }
        by_version.insert(version, migration);
    }
    Ok(by_version.into_values().collect())
}

fn parse_file_name(stem: &str) -> Option<(u32, &str)> {
    let (digits, name) = stem.split_once('_')?;
    let valid_name = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if digits.is_empty() || !digits.chars().all(|c| c.is_ascii_digit()) || !valid_name {
        return None;
    }
    Some((digits.parse().ok()?, name))
}

/// Parses a migration and refuses what it must not do.
pub fn validate(sql: &str, dialect: Dialect, schema_mode: bool) -> Result<(), String> {
    let parsed = match dialect {
        Dialect::Sqlite => parse(&SQLiteDialect {}, sql),
        Dialect::Postgres => parse(&PostgreSqlDialect {}, sql),
    }?;
    if parsed.is_empty() {
        return Err("the migration has no statements".into());
    }
    for statement in &parsed {
        refuse(statement, schema_mode).map_err(|problem| {
            let start = statement.span().start;
            if start.line > 0 {
                format!("line {}: {problem}", start.line)
            } else {
                problem
            }
        })?;
    }
    Ok(())
}

fn parse(dialect: &dyn SqlDialect, sql: &str) -> Result<Vec<Statement>, String> {
    // sqlparser's SQLite dialect unwraps the right side of MATCH and REGEXP
    // (a panic on `a MATCH )`): such a file is one it cannot parse.
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let parsed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        Parser::parse_sql(dialect, sql)
    }));
    std::panic::set_hook(hook);
    let parsed =
        parsed.map_err(|_| "cannot parse: a MATCH or REGEXP without its right side".to_string())?;
    parsed.map_err(|e| {
        let message = e.to_string();
        let message = message
            .strip_prefix("sql parser error: ")
            .unwrap_or(&message);
        format!("cannot parse: {message}")
    })
}

fn refuse(statement: &Statement, schema_mode: bool) -> Result<(), String> {
    match statement {
        Statement::StartTransaction { .. }
        | Statement::Commit { .. }
        | Statement::Rollback { .. }
        | Statement::Savepoint { .. }
        | Statement::ReleaseSavepoint { .. } => {
            return Err(format!(
                "transaction control (`{}`) is not allowed: each migration runs in the transaction that records it",
                first_words(statement)
            ))
        }
        Statement::Set(Set::SetRole { .. }) => {
            return Err("`SET ROLE` is not allowed: a migration runs as the configured role".into())
        }
        _ => {}
    }
    if !schema_mode {
        return Ok(());
    }
    match statement {
        Statement::Set(Set::SingleAssignment { variable, .. })
            if last_part(variable).eq_ignore_ascii_case("search_path") =>
        {
            return Err(
                "`SET search_path` is not allowed in schema mode: DNR sets each tenant's schema"
                    .into(),
            )
        }
        Statement::CreateSchema { .. } | Statement::Use(_) => {
            return Err(format!(
                "`{}` is not allowed in schema mode: a migration stays in its tenant's schema",
                first_words(statement)
            ))
        }
        _ => {}
    }
    let mut problem = None;
    let _ = visit_relations(statement, |name| {
        if name.0.len() > 1 && !first_part(name).eq_ignore_ascii_case("pg_catalog") {
            problem = Some(format!(
                "`{name}` names another schema; in schema mode a migration uses unqualified names (each tenant's schema is set for it)"
            ));
            return ControlFlow::Break(());
        }
        ControlFlow::Continue(())
    });
    if let Some(problem) = problem {
        return Err(problem);
    }
    let _ = visit_expressions(statement, |expr| {
        if let Expr::Function(function) = expr {
            let args = function.args.to_string().to_ascii_lowercase();
            if last_part(&function.name).eq_ignore_ascii_case("set_config")
                && args.contains("search_path")
            {
                problem = Some(
                    "`set_config('search_path', ...)` is not allowed in schema mode: DNR sets each tenant's schema"
                        .to_string(),
                );
                return ControlFlow::Break(());
            }
        }
        if let Expr::Value(value) = expr {
            if matches!(&value.value, Value::SingleQuotedString(text) if text.eq_ignore_ascii_case("search_path"))
            {
                problem = Some(
                    "`search_path` may not be changed in schema mode: DNR sets each tenant's schema"
                        .to_string(),
                );
                return ControlFlow::Break(());
            }
        }
        ControlFlow::Continue(())
    });
    match problem {
        Some(problem) => Err(problem),
        None => Ok(()),
    }
}

fn first_part(name: &ObjectName) -> String {
    name.0
        .first()
        .map(|part| part.to_string())
        .unwrap_or_default()
}

fn last_part(name: &ObjectName) -> String {
    name.0
        .last()
        .map(|part| part.to_string())
        .unwrap_or_default()
}

/// The statement's first two words, to name it.
fn first_words(statement: &Statement) -> String {
    statement
        .to_string()
        .split_whitespace()
        .take(2)
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_sqlparser_panics_on_is_refused() {
        let refused = validate(
            "CREATE VIEW v AS SELECT a MATCH ) FROM t",
            Dialect::Sqlite,
            false,
        );
        assert!(
            refused
                .as_ref()
                .is_err_and(|e| e.starts_with("cannot parse")),
            "{refused:?}"
        );
    }
}
