//! Tenant files: one tenant's rows, policy and migration history in an
//! ordinary DNR SQLite database, with a manifest (`dnr_core::transfer`).
//! `dnr tenants export` writes one from any store, `import` reads one into
//! any store; backup and restore are the two.
//!
//! A file is written under a temporary name and renamed into place, so a
//! file at the given path is always complete. Reading one trusts nothing
//! in it: the manifest is checked, the tables must be tables, every row is
//! counted and checksummed, and a row of another tenant is refused, before
//! anything is written anywhere; no SQL is taken from the file.

use std::path::{Path, PathBuf};

use dnr_core::compile::quote::{ident, literal};
use dnr_core::compile::sqlite::{storage_table, META_TABLE};
use dnr_core::transfer::FORMAT_VERSION;
use dnr_core::transfer::{Cell, Checksum, FileError, Manifest, TableEntry, MANIFEST_KEY};
use dnr_sqlite::{Connection, Value};
use uuid::Uuid;

use crate::backend::sqlite::HISTORY;
use crate::backend::{TableRows, TenantRows};

/// A row's columns beside its values, as the checksum takes them.
fn row_pairs<'r>(columns: &'r [String], row: &'r [Cell]) -> Vec<(&'r str, &'r Cell)> {
    columns.iter().map(String::as_str).zip(row.iter()).collect()
}

/// The checksum of a tenant's rows as a file holds them.
pub fn checksum(rows: &TenantRows) -> Checksum {
    let mut sum = Checksum::new();
    for table in &rows.tables {
        sum.table(&table.table);
        for row in &table.rows {
            sum.add(&table.table, &row_pairs(&table.columns, row));
        }
    }
    sum
}

/// The checksum of the rows `copied` from a store, over the tables and
/// columns of `file` (a store may have more columns than a file).
pub fn copied_checksum(file: &TenantRows, copied: &TenantRows) -> Checksum {
    let mut sum = Checksum::new();
    for file_table in &file.tables {
        sum.table(&file_table.table);
        let Some(copy) = copied
            .tables
            .iter()
            .find(|t| t.table.eq_ignore_ascii_case(&file_table.table))
        else {
            continue;
        };
        for row in &copy.rows {
            let pairs: Vec<(&str, &Cell)> = file_table
                .columns
                .iter()
                .filter_map(|column| {
                    let at = copy
                        .columns
                        .iter()
                        .position(|c| c.eq_ignore_ascii_case(column))?;
                    Some((column.as_str(), row.get(at)?))
                })
                .collect();
            sum.add(&file_table.table, &pairs);
        }
    }
    sum
}

pub fn to_value(cell: &Cell) -> Value {
    match cell {
        Cell::Null => Value::Null,
        Cell::Integer(n) => Value::Integer(*n),
        Cell::Real(x) => Value::Real(*x),
        Cell::Text(text) => Value::Text(text.clone()),
        Cell::Blob(bytes) => Value::Blob(bytes.clone()),
    }
}

pub fn to_cell(value: Value) -> Cell {
    match value {
        Value::Null => Cell::Null,
        Value::Integer(n) => Cell::Integer(n),
        Value::Real(x) => Cell::Real(x),
        Value::Text(text) => Cell::Text(text),
        Value::Blob(bytes) => Cell::Blob(bytes),
    }
}

/// A column's type as a tenant file declares it: the SQLite affinity of
/// the declared type (never the declared text itself).
pub fn affinity(declared: &str) -> &'static str {
    let upper = declared.to_ascii_uppercase();
    if upper.contains("INT") {
        "INTEGER"
    } else if upper.contains("CHAR") || upper.contains("CLOB") || upper.contains("TEXT") {
        "TEXT"
    } else if upper.contains("BLOB") || upper.is_empty() {
        "BLOB"
    } else if upper.contains("REAL") || upper.contains("FLOA") || upper.contains("DOUB") {
        "REAL"
    } else {
        "NUMERIC"
    }
}

/// How a manifest names the engine a tenant file was exported from.
pub fn engine_name(project: &crate::project::Project) -> &'static str {
    match project.database.backend {
        dnr_core::config::Backend::Sqlite => "sqlite",
        dnr_core::config::Backend::Postgres => "postgres",
    }
}

fn err(e: impl std::fmt::Display) -> String {
    format!("error: {e}")
}

/// Writes `rows` of `tenant` to a new tenant file at `out`; returns the
/// manifest written.
pub fn write_file(
    out: &Path,
    tenant: Uuid,
    rows: &TenantRows,
    engine: &str,
    mode: &str,
) -> Result<Manifest, String> {
    if out.exists() {
        return Err(format!(
            "error: `{}` exists: a tenant file is never overwritten; choose another path or remove it",
            out.display()
        ));
    }
    let partial = partial_path(out);
    let _ = std::fs::remove_file(&partial);
    let written = write_at(&partial, tenant, rows, engine, mode).and_then(|manifest| {
        std::fs::rename(&partial, out)
            .map_err(|e| format!("error: cannot write `{}`: {e}", out.display()))?;
        Ok(manifest)
    });
    if written.is_err() {
        let _ = std::fs::remove_file(&partial);
    }
    written
}

fn partial_path(out: &Path) -> PathBuf {
    let mut name = out.file_name().unwrap_or_default().to_os_string();
    name.push(".partial");
    out.with_file_name(name)
}

fn write_at(
    path: &Path,
    tenant: Uuid,
    rows: &TenantRows,
    engine: &str,
    mode: &str,
) -> Result<Manifest, String> {
    let set = dnr_core::parse(&rows.policy_source)
        .map_err(|e| format!("error: the tenant's applied policy does not parse: {e}"))?;
    let db = Connection::open(path).map_err(err)?;
    db.execute("PRAGMA journal_mode = MEMORY", &[])
        .map_err(err)?;
    db.execute("BEGIN IMMEDIATE", &[]).map_err(err)?;
    // The tables as the store has them (migrations may have added
    // columns the policy does not name), then the policy over them.
    for table in &rows.tables {
        let entity = set
            .entities
            .iter()
            .find(|e| e.table.eq_ignore_ascii_case(&table.table))
            .ok_or_else(|| {
                format!(
                    "error: table `{}` is in no entity of the policy",
                    table.table
                )
            })?;
        let mut lines: Vec<String> = Vec::new();
        if let Some(column) = dnr_core::check::tenant_column(&set, entity) {
            lines.push(format!("{} TEXT NOT NULL", ident(column)));
        }
        for (column, ty) in table.columns.iter().zip(&table.types) {
            lines.push(format!("{} {}", ident(column), affinity(ty)));
        }
        if !table.primary_key.is_empty() {
            let key: Vec<String> = table.primary_key.iter().map(|c| ident(c)).collect();
            lines.push(format!("PRIMARY KEY ({})", key.join(", ")));
        }
        db.execute(
            &format!(
                "CREATE TABLE {} (\n  {}\n)",
                ident(&table.table),
                lines.join(",\n  ")
            ),
            &[],
        )
        .map_err(err)?;
    }
    db.apply(&rows.policy_source).map_err(err)?;
    db.dnr().bind_tenant(tenant).map_err(err)?;
    let tenant_text = tenant.hyphenated().to_string();
    let mut entries = Vec::new();
    for table in &rows.tables {
        let entity = set
            .entities
            .iter()
            .find(|e| e.table.eq_ignore_ascii_case(&table.table));
        let tenant_column = entity.and_then(|e| dnr_core::check::tenant_column(&set, e));
        let mut columns: Vec<String> = tenant_column.iter().map(|c| ident(c)).collect();
        columns.extend(table.columns.iter().map(|c| ident(c)));
        let marks = vec!["?"; columns.len()].join(", ");
        let insert = format!(
            "INSERT INTO main.{} ({}) VALUES ({marks})",
            ident(&storage_table(&table.table)),
            columns.join(", ")
        );
        for row in &table.rows {
            let mut params: Vec<Value> = Vec::with_capacity(columns.len());
            if tenant_column.is_some() {
                params.push(Value::Text(tenant_text.clone()));
            }
            params.extend(row.iter().map(to_value));
            db.execute(&insert, &params).map_err(err)?;
        }
        entries.push(TableEntry {
            table: table.table.clone(),
            columns: table.columns.clone(),
            rows: table.rows.len() as u64,
        });
    }
    db.execute(
        &format!(
            "CREATE TABLE {HISTORY} (version INTEGER PRIMARY KEY, name TEXT NOT NULL, checksum TEXT NOT NULL, applied_at TEXT NOT NULL, duration_ms REAL NOT NULL)"
        ),
        &[],
    )
    .map_err(err)?;
    for recorded in &rows.history {
        db.execute(
            &format!("INSERT INTO {HISTORY} (version, name, checksum, applied_at, duration_ms) VALUES (?, ?, ?, ?, ?)"),
            &[
                Value::Integer(i64::from(recorded.version)),
                Value::Text(recorded.name.clone()),
                Value::Text(recorded.checksum.clone()),
                Value::Text(recorded.applied_at.clone()),
                Value::Real(recorded.duration_ms),
            ],
        )
        .map_err(err)?;
    }
    let manifest = Manifest {
        format: FORMAT_VERSION,
        tenant,
        engine: engine.to_string(),
        mode: mode.to_string(),
        schema_version: rows.schema_version(),
        tables: entries,
        checksum: checksum(rows).hex(),
    };
    db.execute(
        &format!(
            "INSERT INTO main.{} (key, value) VALUES ({}, ?)",
            ident(META_TABLE),
            literal(MANIFEST_KEY)
        ),
        &[Value::Text(manifest.to_json())],
    )
    .map_err(err)?;
    db.execute("COMMIT", &[]).map_err(err)?;
    Ok(manifest)
}

/// Reads and checks a tenant file: its manifest, then every row (counted,
/// checksummed, and of the file's tenant).
pub fn read_file(path: &Path) -> Result<(Manifest, TenantRows), String> {
    if !path.is_file() {
        return Err(format!("error: `{}`: no such file", path.display()));
    }
    let refuse = |e: FileError| format!("error: `{}`: {e}", path.display());
    let db = Connection::open(path).map_err(err)?;
    // Nothing in the file runs: no functions from its schema, no writes.
    db.execute("PRAGMA trusted_schema = OFF", &[])
        .map_err(err)?;
    db.execute("PRAGMA query_only = ON", &[]).map_err(err)?;
    let meta = |key: &str| -> Result<Option<String>, String> {
        let exists = db
            .query(
                "SELECT 1 FROM main.sqlite_master WHERE type = 'table' AND name = ?",
                &[Value::Text(META_TABLE.into())],
            )
            .map_err(err)?;
        if exists.rows.is_empty() {
            return Ok(None);
        }
        let rows = db
            .query(
                &format!("SELECT value FROM main.{} WHERE key = ?", ident(META_TABLE)),
                &[Value::Text(key.into())],
            )
            .map_err(err)?;
        Ok(
            match rows
                .rows
                .into_iter()
                .next()
                .and_then(|r| r.into_iter().next())
            {
                Some(Value::Text(text)) => Some(text),
                _ => None,
            },
        )
    };
    let manifest =
        Manifest::parse(&meta(MANIFEST_KEY)?.ok_or_else(|| refuse(FileError::NoManifest))?)
            .map_err(refuse)?;
    let policy_source = meta("source")?
        .ok_or_else(|| format!("error: `{}`: the tenant file has no policy", path.display()))?;
    let set = dnr_core::parse(&policy_source).map_err(|e| {
        format!(
            "error: `{}`: the file's policy does not parse: {e}",
            path.display()
        )
    })?;
    if db.dnr().database_tenant().map_err(err)? != Some(manifest.tenant) {
        return Err(format!(
            "error: `{}`: the file is not marked as tenant {}'s, as its manifest says",
            path.display(),
            manifest.tenant
        ));
    }
    let tenant_text = manifest.tenant.hyphenated().to_string();
    let mut tables = Vec::new();
    let mut found = Checksum::new();
    for entry in &manifest.tables {
        let entity = set
            .entities
            .iter()
            .find(|e| e.table.eq_ignore_ascii_case(&entry.table))
            .ok_or_else(|| {
                format!(
                    "error: `{}`: table `{}` is in no entity of the file's policy",
                    path.display(),
                    entry.table
                )
            })?;
        let storage = storage_table(&entity.table);
        let is_table = db
            .query(
                "SELECT 1 FROM main.sqlite_master WHERE type = 'table' AND name = ?",
                &[Value::Text(storage.clone())],
            )
            .map_err(err)?;
        if is_table.rows.is_empty() {
            return Err(format!(
                "error: `{}`: `{}` is not a table of the file",
                path.display(),
                entry.table
            ));
        }
        let info = db
            .query(
                "SELECT name, type, pk FROM pragma_table_info(?, 'main') ORDER BY cid",
                &[Value::Text(storage.clone())],
            )
            .map_err(err)?;
        let declared = |name: &str| {
            info.rows
                .iter()
                .find_map(|row| match (row.first(), row.get(1)) {
                    (Some(Value::Text(n)), Some(Value::Text(ty)))
                        if n.eq_ignore_ascii_case(name) =>
                    {
                        Some(ty.clone())
                    }
                    _ => None,
                })
        };
        let mut types = Vec::new();
        for column in &entry.columns {
            types.push(declared(column).ok_or_else(|| {
                format!(
                    "error: `{}`: table `{}` has no column `{column}`, which the manifest lists",
                    path.display(),
                    entry.table
                )
            })?);
        }
        let mut primary_key: Vec<(i64, String)> = info
            .rows
            .iter()
            .filter_map(|row| match (row.first(), row.get(2)) {
                (Some(Value::Text(n)), Some(Value::Integer(pk))) if *pk > 0 => {
                    Some((*pk, n.clone()))
                }
                _ => None,
            })
            .collect();
        primary_key.sort();
        let tenant_column = dnr_core::check::tenant_column(&set, entity);
        // Counted first: a claim the file does not hold is refused before
        // any row is read.
        let counted = db
            .query(
                &format!("SELECT count(*) FROM main.{}", ident(&storage)),
                &[],
            )
            .map_err(err)?;
        let count = match counted.rows.first().and_then(|r| r.first()) {
            Some(Value::Integer(n)) => u64::try_from(*n).unwrap_or(0),
            _ => 0,
        };
        if count != entry.rows {
            return Err(refuse(FileError::RowCount {
                table: entry.table.clone(),
                claimed: entry.rows,
                found: count,
            }));
        }
        let mut selected: Vec<String> = entry.columns.iter().map(|c| ident(c)).collect();
        if let Some(column) = tenant_column {
            selected.push(ident(column));
        }
        let result = db
            .query(
                &format!(
                    "SELECT {} FROM main.{}",
                    selected.join(", "),
                    ident(&storage)
                ),
                &[],
            )
            .map_err(err)?;
        found.table(&entry.table);
        let mut rows = Vec::with_capacity(result.rows.len());
        for mut row in result.rows {
            if tenant_column.is_some() {
                match row.pop() {
                    Some(Value::Text(owner)) if owner == tenant_text => {}
                    other => {
                        return Err(refuse(FileError::ForeignRow {
                            table: entry.table.clone(),
                            tenant: manifest.tenant,
                            found: match other {
                                Some(Value::Text(text)) => text,
                                Some(value) => format!("{value:?}"),
                                None => "nothing".into(),
                            },
                        }))
                    }
                }
            }
            let cells: Vec<Cell> = row.into_iter().map(to_cell).collect();
            found.add(&entry.table, &row_pairs(&entry.columns, &cells));
            rows.push(cells);
        }
        tables.push(TableRows {
            table: entry.table.clone(),
            columns: entry.columns.clone(),
            types,
            primary_key: primary_key.into_iter().map(|(_, n)| n).collect(),
            rows,
        });
    }
    manifest.verify(&found).map_err(refuse)?;
    let history = crate::backend::sqlite::history(&db)?;
    Ok((
        manifest,
        TenantRows {
            policy_source,
            tables,
            history,
        },
    ))
}
