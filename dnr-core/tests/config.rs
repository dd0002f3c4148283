//! `dnr.toml` loading.
#![allow(clippy::panic, clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;

use dnr_core::ast::TenantMode;
use dnr_core::config::{Backend, Config};

fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn full_file_with_environment_variable() {
    let text = r#"
[database]
backend = "postgres"
sqlite_path = ".dnr/data.db"
postgres_url = "${DATABASE_URL}"
postgres_pool_size = 4
tenant_mode = "schema"
policies = "policies.dnr"
"#;
    let config =
        Config::parse_with_env(text, &env(&[("DATABASE_URL", "postgres://db/app")])).unwrap();
    assert_eq!(config.database.backend, Backend::Postgres);
    assert_eq!(
        config.database.postgres_url.as_deref(),
        Some("postgres://db/app")
    );
    assert_eq!(config.database.postgres_pool_size, 4);
    assert_eq!(config.database.tenant_mode, TenantMode::Schema);
}

#[test]
fn defaults_when_empty() {
    let config = Config::parse_with_env("", &env(&[])).unwrap();
    assert_eq!(config.database.backend, Backend::Sqlite);
    assert_eq!(config.database.sqlite_path, ".dnr/data.db");
    assert_eq!(config.database.tenant_mode, TenantMode::RowLevel);
}

#[test]
fn unknown_key_is_an_error() {
    let error = Config::parse_with_env("[database]\nbackend = \"sqlite\"\npool = 3\n", &env(&[]))
        .unwrap_err();
    assert!(
        error.to_string().contains("unknown field `pool`"),
        "{error}"
    );
}

#[test]
fn missing_variable_is_an_error() {
    let error =
        Config::parse_with_env("[database]\npostgres_url = \"${NOPE}\"\n", &env(&[])).unwrap_err();
    assert_eq!(
        error.to_string(),
        "dnr.toml: `database.postgres_url` reads environment variable `NOPE`, which is not set"
    );
}

#[test]
fn bad_values_are_errors() {
    assert!(Config::parse_with_env("[database]\ntenant_mode = \"sharded\"\n", &env(&[])).is_err());
    assert!(Config::parse_with_env("[database]\nbackend = \"mysql\"\n", &env(&[])).is_err());
    assert!(Config::parse_with_env("[database]\nbackend = \"postgres\"\n", &env(&[])).is_err());
    assert!(Config::parse_with_env("[database]\npostgres_pool_size = 0\n", &env(&[])).is_err());
    assert!(Config::parse_with_env("[database\n", &env(&[])).is_err());
}

#[test]
fn dollar_escapes() {
    let config = Config::parse_with_env(
        "[database]\nsqlite_path = \"a$$b/${D}\"\n",
        &env(&[("D", "x")]),
    )
    .unwrap();
    assert_eq!(config.database.sqlite_path, "a$b/x");
}

#[test]
fn syntax_errors_name_line_and_column() {
    let error = Config::parse_with_env(
        "[database]\nbackend = \"sqlite\"\npolicies = policies.dnr\n",
        &env(&[]),
    )
    .unwrap_err();
    let text = error.to_string();
    assert!(text.starts_with("dnr.toml:3:12: "), "{text}");
    let error = Config::parse_with_env("[database]\npostgres_pool_size = \"ten\"\n", &env(&[]))
        .unwrap_err();
    assert!(error.to_string().starts_with("dnr.toml:2:22: "), "{error}");
}

#[test]
fn operation_paths_have_defaults_and_expand_variables() {
    let config = Config::parse_with_env("", &env(&[])).unwrap();
    assert_eq!(config.database.migrations, "migrations");
    assert_eq!(config.database.tenants_dir, ".dnr/tenants");
    assert_eq!(config.database.postgres_template, "template1");
    let config = Config::parse_with_env(
        "[database]\nmigrations = \"${APP}/migrations\"\ntenants_dir = \"${APP}/tenants\"\n",
        &env(&[("APP", "/srv/app")]),
    )
    .unwrap();
    assert_eq!(config.database.migrations, "/srv/app/migrations");
    assert_eq!(config.database.tenants_dir, "/srv/app/tenants");
}
