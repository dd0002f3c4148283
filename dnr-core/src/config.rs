//! `dnr.toml`: where the database is and which tenancy mode it uses.

use std::collections::HashMap;

use serde::Deserialize;

use crate::ast::TenantMode;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub database: DatabaseConfig,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatabaseConfig {
    pub backend: Backend,
    pub sqlite_path: String,
    pub postgres_url: Option<String>,
    pub postgres_pool_size: u32,
    pub tenant_mode: TenantMode,
    /// The policy source `dnr apply` applies.
    pub policies: String,
    /// The directory of versioned migration files (`0001_name.sql`, ...).
    pub migrations: String,
    /// `database` mode with SQLite: one directory per tenant under this,
    /// holding `data.db`.
    pub tenants_dir: String,
    /// `database` mode with PostgreSQL: the template new tenant databases
    /// are created from (it must have `CREATE EXTENSION dnr` done).
    pub postgres_template: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Default for DatabaseConfig {
    fn default() -> DatabaseConfig {
        DatabaseConfig {
            backend: Backend::Sqlite,
            sqlite_path: ".dnr/data.db".into(),
            postgres_url: None,
            postgres_pool_size: 10,
            tenant_mode: TenantMode::RowLevel,
            policies: "policies.dnr".into(),
            migrations: "migrations".into(),
            tenants_dir: ".dnr/tenants".into(),
            postgres_template: "template1".into(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("dnr.toml:{line}:{column}: {message}")]
    Syntax {
        message: String,
        /// 1-based, 0 when TOML gave no position.
        line: usize,
        column: usize,
    },
    #[error("dnr.toml: `{key}`: {problem}")]
    Value { key: String, problem: String },
    #[error("dnr.toml: `{key}` reads environment variable `{var}`, which is not set")]
    MissingVariable { key: String, var: String },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    database: Option<RawDatabase>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDatabase {
    backend: Option<String>,
    sqlite_path: Option<String>,
    postgres_url: Option<String>,
    postgres_pool_size: Option<u32>,
    tenant_mode: Option<String>,
    policies: Option<String>,
    migrations: Option<String>,
    tenants_dir: Option<String>,
    postgres_template: Option<String>,
}

impl Config {
    /// Parses `dnr.toml` text, reading `${VAR}` from the process environment.
    pub fn parse(text: &str) -> Result<Config, ConfigError> {
        let env: HashMap<String, String> = std::env::vars().collect();
        Config::parse_with_env(text, &env)
    }

    /// Parses with an explicit environment (for tests and embedding hosts).
    pub fn parse_with_env(
        text: &str,
        env: &HashMap<String, String>,
    ) -> Result<Config, ConfigError> {
        let raw: RawConfig = toml::from_str(text).map_err(|e| {
            let (line, column) = e
                .span()
                .map(|span| line_column(text, span.start))
                .unwrap_or((0, 0));
            ConfigError::Syntax {
                message: e.message().to_string(),
                line,
                column,
            }
        })?;
        let mut database = DatabaseConfig::default();
        let Some(raw) = raw.database else {
            return Ok(Config { database });
        };
        let expand = |key: &str, value: String| expand_vars(key, &value, env);
        if let Some(backend) = raw.backend {
            database.backend = match backend.as_str() {
                "sqlite" => Backend::Sqlite,
                "postgres" => Backend::Postgres,
                other => {
                    return Err(ConfigError::Value {
                        key: "database.backend".into(),
                        problem: format!("unknown backend `{other}`; expected sqlite or postgres"),
                    })
                }
            };
        }
        if let Some(path) = raw.sqlite_path {
            database.sqlite_path = expand("database.sqlite_path", path)?;
        }
        if let Some(url) = raw.postgres_url {
            database.postgres_url = Some(expand("database.postgres_url", url)?);
        }
        if let Some(size) = raw.postgres_pool_size {
            if size == 0 {
                return Err(ConfigError::Value {
                    key: "database.postgres_pool_size".into(),
                    problem: "must be at least 1".into(),
                });
            }
            database.postgres_pool_size = size;
        }
        if let Some(mode) = raw.tenant_mode {
            database.tenant_mode = TenantMode::parse(&mode).ok_or_else(|| ConfigError::Value {
                key: "database.tenant_mode".into(),
                problem: format!(
                    "unknown mode `{mode}`; expected none, row_level, schema or database"
                ),
            })?;
        }
        if let Some(policies) = raw.policies {
            database.policies = expand("database.policies", policies)?;
        }
        if let Some(migrations) = raw.migrations {
            database.migrations = expand("database.migrations", migrations)?;
        }
        if let Some(dir) = raw.tenants_dir {
            database.tenants_dir = expand("database.tenants_dir", dir)?;
        }
        if let Some(template) = raw.postgres_template {
            database.postgres_template = expand("database.postgres_template", template)?;
        }
        if database.backend == Backend::Postgres && database.postgres_url.is_none() {
            return Err(ConfigError::Value {
                key: "database.postgres_url".into(),
                problem: "required when backend = \"postgres\"".into(),
            });
        }
        Ok(Config { database })
    }
}

/// The 1-based line and column (in characters) of a byte offset.
fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let before = text.get(..offset).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |at| at + 1);
    let column = before[line_start..].chars().count() + 1;
    (line, column)
}

/// Replaces each `${VAR}` with the variable's value; `$$` is a literal `$`.
fn expand_vars(
    key: &str,
    value: &str,
    env: &HashMap<String, String>,
) -> Result<String, ConfigError> {
    let mut out = String::new();
    let mut rest = value;
    while let Some(start) = rest.find('$') {
        out.push_str(&rest[..start]);
        let after = &rest[start + 1..];
        if let Some(stripped) = after.strip_prefix('$') {
            out.push('$');
            rest = stripped;
        } else if let Some(body) = after.strip_prefix('{') {
            let end = body.find('}').ok_or_else(|| ConfigError::Value {
                key: key.into(),
                problem: "unterminated `${`".into(),
            })?;
            let var = &body[..end];
            let valid =
                !var.is_empty() && var.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            if !valid {
                return Err(ConfigError::Value {
                    key: key.into(),
                    problem: format!("invalid variable name `{var}`"),
                });
            }
            let found = env.get(var).ok_or_else(|| ConfigError::MissingVariable {
                key: key.into(),
                var: var.into(),
            })?;
            out.push_str(found);
            rest = &body[end + 1..];
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    Ok(out)
}
