//! A tenant's rows in PostgreSQL, as a tenant file holds them: read with
//! each column converted to the file's value (ids and timestamps as their
//! canonical text, booleans as 0/1), written back through
//! `json_populate_recordset`, which converts every value with its
//! column type's own input function (one statement per batch, no SQL
//! from the file).
//!
//! Everything runs as the owner, inside one transaction, in *maintenance*:
//! the context is the tenant (so the tenant fence still holds) and
//! `dnr.maintenance = on`, which the policy `dnr_maintain` (for the owner
//! only) lets past the row rules.

use dnr_core::ast::TenantMode;
use dnr_core::check::tenant_column;
use dnr_core::transfer::Cell;
use postgres::Transaction;
use uuid::Uuid;

use super::{TableRows, TenantRows};

/// How a column's values are read and written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Integer,
    Real,
    Numeric,
    Bool,
    Blob,
    Instant,
    Timestamp,
    Date,
    Json,
    Text,
}

impl Kind {
    fn of(type_name: &str) -> Kind {
        match type_name {
            "int2" | "int4" | "int8" => Kind::Integer,
            "float4" | "float8" => Kind::Real,
            "numeric" => Kind::Numeric,
            "bool" => Kind::Bool,
            "bytea" => Kind::Blob,
            "timestamptz" => Kind::Instant,
            "timestamp" => Kind::Timestamp,
            "date" => Kind::Date,
            "json" | "jsonb" => Kind::Json,
            _ => Kind::Text,
        }
    }

    /// The SQLite type a tenant file declares such a column with.
    fn file_type(self) -> &'static str {
        match self {
            Kind::Integer | Kind::Bool => "INTEGER",
            Kind::Real => "REAL",
            Kind::Numeric => "NUMERIC",
            Kind::Blob => "BLOB",
            _ => "TEXT",
        }
    }

    /// The expression reading column `c` as the file's value.
    fn read(self, c: &str) -> String {
        match self {
            Kind::Integer => format!("{c}::int8"),
            Kind::Real => format!("{c}::float8"),
            Kind::Bool => format!("{c}::int4::int8"),
            Kind::Blob => c.to_string(),
            Kind::Instant => {
                format!("pg_catalog.to_char({c} AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')")
            }
            Kind::Timestamp => format!("pg_catalog.to_char({c}, 'YYYY-MM-DD\"T\"HH24:MI:SS.US')"),
            Kind::Date => format!("pg_catalog.to_char({c}, 'YYYY-MM-DD')"),
            Kind::Numeric | Kind::Json | Kind::Text => format!("{c}::text"),
        }
    }
}

struct Column {
    name: String,
    kind: Kind,
}

fn failed(e: postgres::Error) -> String {
    format!("error: {}", super::postgres::pg_error(&e))
}

fn quote(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// The tables of the applied policy that hold a tenant's rows, with the
/// column that names the tenant where there is one.
fn tenant_tables(source: &str) -> Result<Vec<(String, Option<String>)>, String> {
    let set = dnr_core::parse(source)
        .map_err(|e| format!("error: the applied policy does not parse: {e}"))?;
    Ok(set
        .entities
        .iter()
        .filter(|e| set.tenancy.mode != TenantMode::RowLevel || tenant_column(&set, e).is_some())
        .map(|e| (e.table.clone(), tenant_column(&set, e).map(str::to_string)))
        .collect())
}

/// Enters maintenance for `tenant` in the open transaction; `schema`, in
/// schema mode, becomes the search path.
pub fn maintain(
    tx: &mut Transaction<'_>,
    tenant: Uuid,
    schema: Option<&str>,
) -> Result<(), String> {
    // Maintenance first: the holder of a moving tenant may then take it as
    // its context.
    tx.execute(
        "SELECT pg_catalog.set_config('dnr.maintenance', 'on', true)",
        &[],
    )
    .map_err(failed)?;
    tx.execute(
        "SELECT dnr.set_context($1::text::uuid, NULL, NULL, true)",
        &[&tenant.to_string()],
    )
    .map_err(failed)?;
    if let Some(schema) = schema {
        tx.execute(
            "SELECT pg_catalog.set_config('search_path', pg_catalog.quote_ident($1), true)",
            &[&schema],
        )
        .map_err(failed)?;
    }
    Ok(())
}

fn columns(tx: &mut Transaction<'_>, table: &str) -> Result<(Vec<Column>, Vec<String>), String> {
    let rows = tx
        .query(
            "SELECT a.attname::text, t.typname::text FROM pg_catalog.pg_attribute a \
               JOIN pg_catalog.pg_type t ON t.oid = a.atttypid \
              WHERE a.attrelid = pg_catalog.quote_ident($1)::regclass AND a.attnum > 0 AND NOT a.attisdropped \
              ORDER BY a.attnum",
            &[&table],
        )
        .map_err(failed)?;
    let columns = rows
        .iter()
        .map(|row| {
            Ok(Column {
                name: row.try_get(0).map_err(failed)?,
                kind: Kind::of(&row.try_get::<_, String>(1).map_err(failed)?),
            })
        })
        .collect::<Result<Vec<_>, String>>()?;
    let key = tx
        .query(
            "SELECT a.attname::text FROM pg_catalog.pg_index i \
               CROSS JOIN LATERAL pg_catalog.unnest(i.indkey) WITH ORDINALITY AS k(attnum, n) \
               JOIN pg_catalog.pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum \
              WHERE i.indrelid = pg_catalog.quote_ident($1)::regclass AND i.indisprimary ORDER BY k.n",
            &[&table],
        )
        .map_err(failed)?
        .iter()
        .map(|row| row.try_get(0).map_err(failed))
        .collect::<Result<Vec<String>, String>>()?;
    Ok((columns, key))
}

/// The tenant's rows of every table that holds them (in maintenance).
pub fn read(
    tx: &mut Transaction<'_>,
    source: String,
    history: Vec<super::Recorded>,
) -> Result<TenantRows, String> {
    let mut tables = Vec::new();
    for (table, tenant_column) in tenant_tables(&source)? {
        let (all, primary_key) = columns(tx, &table)?;
        let kept: Vec<&Column> = all
            .iter()
            .filter(|c| Some(&c.name) != tenant_column.as_ref())
            .collect();
        let selected: Vec<String> = kept.iter().map(|c| c.kind.read(&quote(&c.name))).collect();
        let sql = format!(
            "SELECT {} FROM {}",
            if selected.is_empty() {
                "1".to_string()
            } else {
                selected.join(", ")
            },
            quote(&table)
        );
        let kinds: Vec<(String, Kind)> = kept.iter().map(|c| (c.name.clone(), c.kind)).collect();
        let rows = tx
            .query(&sql, &[])
            .map_err(failed)?
            .iter()
            .map(|row| cells_of(row, &kinds))
            .collect::<Result<Vec<_>, String>>()?;
        tables.push(TableRows {
            table,
            columns: kept.iter().map(|c| c.name.clone()).collect(),
            types: kept
                .iter()
                .map(|c| c.kind.file_type().to_string())
                .collect(),
            primary_key,
            rows,
        });
    }
    Ok(TenantRows {
        policy_source: source,
        tables,
        history,
    })
}

/// A file value as JSON for `json_populate_recordset`, for a column of
/// `kind`: JSON columns take the document itself, bytea its hex form.
fn json_value(cell: &Cell, kind: Kind) -> serde_json::Value {
    match cell {
        Cell::Null => serde_json::Value::Null,
        Cell::Integer(n) => serde_json::Value::from(*n),
        Cell::Real(x) if x.is_finite() => serde_json::Value::from(*x),
        Cell::Real(x) => serde_json::Value::from(if x.is_nan() {
            "NaN"
        } else if *x > 0.0 {
            "Infinity"
        } else {
            "-Infinity"
        }),
        Cell::Text(text) if kind == Kind::Json => {
            serde_json::from_str(text).unwrap_or_else(|_| serde_json::Value::from(text.as_str()))
        }
        Cell::Text(text) => serde_json::Value::from(text.as_str()),
        Cell::Blob(bytes) => {
            let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
            serde_json::Value::from(format!("\\x{hex}"))
        }
    }
}

/// Rows per `json_populate_recordset` statement.
const BATCH: usize = 10_000;

/// Replaces the tenant's rows with `rows` (in maintenance), then counts
/// them: the copy must hold as many rows per table as the file (each value
/// went through its column type's input function; `dnr tenants move`
/// compares the checksums too where both engines store values alike).
pub fn write(
    tx: &mut Transaction<'_>,
    tenant: Uuid,
    source: &str,
    rows: &TenantRows,
) -> Result<(), String> {
    let tables = tenant_tables(source)?;
    for (table, _) in &tables {
        tx.execute(&format!("DELETE FROM {}", quote(table)), &[])
            .map_err(failed)?;
    }
    for file_table in &rows.tables {
        let (table, tenant_column) = tables
            .iter()
            .find(|(t, _)| t.eq_ignore_ascii_case(&file_table.table))
            .ok_or_else(|| {
                format!(
                    "error: the tenant file holds table `{}`, which holds no tenant's rows here",
                    file_table.table
                )
            })?;
        let (present, _) = columns(tx, table)?;
        let mut kinds = Vec::new();
        for column in &file_table.columns {
            let found = present
                .iter()
                .find(|c| c.name.eq_ignore_ascii_case(column))
                .ok_or_else(|| {
                    format!(
                        "error: the tenant file's table `{}` has column `{column}`, which the target's has not",
                        file_table.table
                    )
                })?;
            kinds.push((found.name.clone(), found.kind));
        }
        let mut names: Vec<String> = kinds.iter().map(|(n, _)| quote(n)).collect();
        if let Some(column) = tenant_column {
            names.push(quote(column));
        }
        let insert = format!(
            "INSERT INTO {t} ({names}) SELECT {names} FROM pg_catalog.json_populate_recordset(NULL::{t}, $1::text::json)",
            t = quote(table),
            names = names.join(", "),
        );
        for (batch_at, batch) in file_table.rows.chunks(BATCH).enumerate() {
            let documents: Vec<serde_json::Value> = batch
                .iter()
                .map(|row| {
                    let mut object = serde_json::Map::new();
                    for ((name, kind), cell) in kinds.iter().zip(row) {
                        object.insert(name.clone(), json_value(cell, *kind));
                    }
                    if let Some(column) = tenant_column {
                        object.insert(column.clone(), serde_json::Value::from(tenant.to_string()));
                    }
                    serde_json::Value::Object(object)
                })
                .collect();
            let text = serde_json::Value::Array(documents).to_string();
            let mut savepoint = tx.transaction().map_err(failed)?;
            match savepoint.execute(&insert, &[&text]) {
                Ok(_) => savepoint.commit().map_err(failed)?,
                Err(error) => {
                    drop(savepoint);
                    return Err(culprit(
                        tx, table, file_table, &kinds, batch, batch_at, &error,
                    ));
                }
            }
        }
        // The tenant's rows there now (the fence shows no other's): the
        // file's, no more, no fewer.
        let count: i64 = tx
            .query_one(&format!("SELECT count(*) FROM {}", quote(table)), &[])
            .and_then(|row| row.try_get(0))
            .map_err(failed)?;
        let expected = file_table.rows.len() as u64;
        if u64::try_from(count).unwrap_or(0) != expected {
            return Err(format!(
                "error: table `{}`: {count} rows were written for tenant {tenant}, the file holds {expected}; nothing was imported",
                file_table.table
            ));
        }
    }
    Ok(())
}

fn cells_of(row: &postgres::Row, kinds: &[(String, Kind)]) -> Result<Vec<Cell>, String> {
    kinds
        .iter()
        .enumerate()
        .map(|(at, (_, kind))| {
            Ok(match kind {
                Kind::Integer | Kind::Bool => row
                    .try_get::<_, Option<i64>>(at)
                    .map_err(failed)?
                    .map_or(Cell::Null, Cell::Integer),
                Kind::Real => row
                    .try_get::<_, Option<f64>>(at)
                    .map_err(failed)?
                    .map_or(Cell::Null, Cell::Real),
                Kind::Blob => row
                    .try_get::<_, Option<Vec<u8>>>(at)
                    .map_err(failed)?
                    .map_or(Cell::Null, Cell::Blob),
                _ => row
                    .try_get::<_, Option<String>>(at)
                    .map_err(failed)?
                    .map_or(Cell::Null, Cell::Text),
            })
        })
        .collect()
}

/// Names the table, row key and column of the first value of `batch` the
/// target cannot hold (each value tried alone), or gives `error`.
fn culprit(
    tx: &mut Transaction<'_>,
    table: &str,
    file_table: &TableRows,
    kinds: &[(String, Kind)],
    batch: &[Vec<Cell>],
    batch_at: usize,
    error: &postgres::Error,
) -> String {
    for (offset, row) in batch.iter().enumerate() {
        for ((name, kind), cell) in kinds.iter().zip(row) {
            let mut object = serde_json::Map::new();
            object.insert(name.clone(), json_value(cell, *kind));
            let probe = format!(
                "SELECT (pg_catalog.json_populate_record(NULL::{}, $1::text::json)).{}",
                quote(table),
                quote(name)
            );
            let Ok(mut savepoint) = tx.transaction() else {
                break;
            };
            let tried = savepoint.query(&probe, &[&serde_json::Value::Object(object).to_string()]);
            drop(savepoint);
            if let Err(e) = tried {
                let key: Vec<String> = file_table
                    .primary_key
                    .iter()
                    .filter_map(|k| {
                        let at = file_table.columns.iter().position(|c| c == k)?;
                        Some(format!("{k} = {:?}", row.get(at)?))
                    })
                    .collect();
                return format!(
                    "error: table `{}`, row {} ({}), column `{name}`: {}; nothing was imported",
                    file_table.table,
                    batch_at * BATCH + offset + 1,
                    key.join(", "),
                    super::postgres::pg_error(&e)
                );
            }
        }
    }
    format!(
        "error: table `{}`: {}; nothing was imported",
        file_table.table,
        super::postgres::pg_error(error)
    )
}

/// Deletes the tenant's rows of every table that holds them (in
/// maintenance); the rows deleted per table.
pub fn erase(tx: &mut Transaction<'_>, source: &str) -> Result<Vec<(String, u64)>, String> {
    tenant_tables(source)?
        .into_iter()
        .map(|(table, _)| {
            let deleted = tx
                .execute(&format!("DELETE FROM {}", quote(&table)), &[])
                .map_err(failed)?;
            Ok((table, deleted))
        })
        .collect()
}
