//! A tenant's rows in PostgreSQL, as a tenant file holds them: read with
//! each column converted to the file's value (ids and timestamps as their
//! canonical text, booleans as 0/1), written back with every value read
//! by its column type's input function (as `COPY` would; bytea as bytes):
//! `json_populate_recordset` per batch, or multi-row `VALUES` of typed
//! parameters on a Citus distributed table. No SQL comes from the file.
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
    /// `pg_type.typname`, for the cast of a written value.
    type_name: String,
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
    // its context. SET LOCAL, forwarded to Citus's workers (where the
    // policies run) as DNR's setters forward the context; a placeholder
    // setting elsewhere.
    tx.batch_execute(
        "SET LOCAL citus.propagate_set_commands = 'local'; SET LOCAL dnr.maintenance = 'on'",
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
            let type_name: String = row.try_get(1).map_err(failed)?;
            Ok(Column {
                name: row.try_get(0).map_err(failed)?,
                kind: Kind::of(&type_name),
                type_name,
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

/// A file value as a statement parameter: its text (which the column
/// type's input function reads, as from `COPY`), or bytes for `bytea`.
enum Param {
    Text(Option<String>),
    Bytes(Option<Vec<u8>>),
}

impl Param {
    fn of(cell: &Cell, kind: Kind) -> Param {
        match (cell, kind) {
            (Cell::Null, Kind::Blob) => Param::Bytes(None),
            (Cell::Blob(bytes), _) if kind == Kind::Blob => Param::Bytes(Some(bytes.clone())),
            (Cell::Null, _) => Param::Text(None),
            (Cell::Integer(n), _) => Param::Text(Some(n.to_string())),
            (Cell::Real(x), _) => Param::Text(Some(format!("{x:?}"))),
            (Cell::Text(text), _) => Param::Text(Some(text.clone())),
            (Cell::Blob(bytes), _) => Param::Text(Some(
                std::iter::once("\\x".to_string())
                    .chain(bytes.iter().map(|b| format!("{b:02x}")))
                    .collect(),
            )),
        }
    }

    fn sql(&self) -> &(dyn postgres::types::ToSql + Sync) {
        match self {
            Param::Text(text) => text,
            Param::Bytes(bytes) => bytes,
        }
    }
}

/// The placeholder of parameter `n` for a column of `type_name`: text cast
/// to the type (bytes as they are).
fn placeholder(n: usize, kind: Kind, type_name: &str) -> String {
    if kind == Kind::Blob {
        format!("${n}::bytea")
    } else {
        format!("${n}::text::pg_catalog.{}", quote(type_name))
    }
}

/// Rows per `json_populate_recordset` statement.
const BATCH: usize = 10_000;

/// Parameters per INSERT ... VALUES statement, on Citus.
const PARAMETERS: usize = 4_000;

/// Whether `table` is a Citus distributed table.
fn distributed(tx: &mut Transaction<'_>, table: &str) -> Result<bool, String> {
    let citus: bool = tx
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_extension WHERE extname = 'citus')",
            &[],
        )
        .and_then(|row| row.try_get(0))
        .map_err(failed)?;
    if !citus {
        return Ok(false);
    }
    tx.query_one(
        "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_dist_partition WHERE logicalrelid = pg_catalog.quote_ident($1)::regclass)",
        &[&table],
    )
    .and_then(|row| row.try_get(0))
    .map_err(failed)
}

/// The rows of one table, written batch by batch.
struct Insert<'a> {
    table: &'a str,
    /// The quoted column list, the tenant column last.
    names: String,
    columns: &'a [&'a Column],
    /// The tenant column and the tenant.
    tenant: Option<(&'a str, String)>,
    /// A Citus distributed table: INSERT ... VALUES, which Citus routes
    /// row by row (an INSERT ... SELECT is a COPY there, which row
    /// security refuses); else one `json_populate_recordset` per batch,
    /// several times faster.
    distributed: bool,
}

impl Insert<'_> {
    fn batch_rows(&self) -> usize {
        if self.distributed {
            (PARAMETERS / (self.columns.len() + 1)).max(1)
        } else {
            BATCH
        }
    }

    fn run(&self, tx: &mut Transaction<'_>, batch: &[Vec<Cell>]) -> Result<(), postgres::Error> {
        if !self.distributed {
            let documents: Vec<serde_json::Value> = batch
                .iter()
                .map(|row| {
                    let mut object = serde_json::Map::new();
                    for (column, cell) in self.columns.iter().zip(row) {
                        object.insert(column.name.clone(), json_value(cell, column.kind));
                    }
                    if let Some((column, tenant)) = &self.tenant {
                        object.insert(column.to_string(), serde_json::Value::from(tenant.as_str()));
                    }
                    serde_json::Value::Object(object)
                })
                .collect();
            let sql = format!(
                "INSERT INTO {t} ({names}) SELECT {names} FROM pg_catalog.json_populate_recordset(NULL::{t}, $1::text::json)",
                t = quote(self.table),
                names = self.names,
            );
            return tx
                .execute(&sql, &[&serde_json::Value::Array(documents).to_string()])
                .map(drop);
        }
        let mut params: Vec<Param> = Vec::new();
        let mut tuples: Vec<String> = Vec::with_capacity(batch.len());
        for row in batch {
            let mut marks = Vec::new();
            for (column, cell) in self.columns.iter().zip(row) {
                params.push(Param::of(cell, column.kind));
                marks.push(placeholder(params.len(), column.kind, &column.type_name));
            }
            if let Some((_, tenant)) = &self.tenant {
                params.push(Param::Text(Some(tenant.clone())));
                marks.push(format!("${}::text::pg_catalog.uuid", params.len()));
            }
            tuples.push(format!("({})", marks.join(", ")));
        }
        let sql = format!(
            "INSERT INTO {} ({}) VALUES {}",
            quote(self.table),
            self.names,
            tuples.join(", ")
        );
        let values: Vec<&(dyn postgres::types::ToSql + Sync)> =
            params.iter().map(Param::sql).collect();
        tx.execute(&sql, &values).map(drop)
    }
}

/// A file value as JSON for `json_populate_recordset`, for a column of
/// `kind`: JSON columns take the document itself, bytea its hex form.
fn json_value(cell: &Cell, kind: Kind) -> serde_json::Value {
    match cell {
        Cell::Null => serde_json::Value::Null,
        Cell::Integer(n) => serde_json::Value::from(*n),
        Cell::Real(x) if x.is_finite() => serde_json::Value::from(*x),
        Cell::Real(x) => serde_json::Value::from(format!("{x:?}")),
        Cell::Text(text) if kind == Kind::Json => {
            serde_json::from_str(text).unwrap_or_else(|_| serde_json::Value::from(text.as_str()))
        }
        Cell::Text(text) => serde_json::Value::from(text.as_str()),
        Cell::Blob(_) => match Param::of(cell, Kind::Text) {
            Param::Text(Some(hex)) => serde_json::Value::from(hex),
            _ => serde_json::Value::Null,
        },
    }
}

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
        let mut kinds: Vec<&Column> = Vec::new();
        for column in &file_table.columns {
            kinds.push(
                present
                    .iter()
                    .find(|c| c.name.eq_ignore_ascii_case(column))
                    .ok_or_else(|| {
                        format!(
                            "error: the tenant file's table `{}` has column `{column}`, which the target's has not",
                            file_table.table
                        )
                    })?,
            );
        }
        let mut names: Vec<String> = kinds.iter().map(|c| quote(&c.name)).collect();
        if let Some(column) = tenant_column {
            names.push(quote(column));
        }
        let insert = Insert {
            table,
            names: names.join(", "),
            columns: &kinds,
            tenant: tenant_column
                .as_deref()
                .map(|c| (c, tenant.hyphenated().to_string())),
            distributed: distributed(tx, table)?,
        };
        let batch_rows = insert.batch_rows();
        for (batch_at, batch) in file_table.rows.chunks(batch_rows).enumerate() {
            let mut savepoint = tx.transaction().map_err(failed)?;
            match insert.run(&mut savepoint, batch) {
                Ok(()) => savepoint.commit().map_err(failed)?,
                Err(error) => {
                    drop(savepoint);
                    return Err(culprit(
                        tx,
                        file_table,
                        &kinds,
                        batch,
                        batch_at * batch_rows,
                        &error,
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
/// target cannot hold (each value cast alone), or gives `error`.
fn culprit(
    tx: &mut Transaction<'_>,
    file_table: &TableRows,
    columns: &[&Column],
    batch: &[Vec<Cell>],
    first_row: usize,
    error: &postgres::Error,
) -> String {
    for (offset, row) in batch.iter().enumerate() {
        for (column, cell) in columns.iter().zip(row) {
            let param = Param::of(cell, column.kind);
            let probe = format!("SELECT {}", placeholder(1, column.kind, &column.type_name));
            let Ok(mut savepoint) = tx.transaction() else {
                break;
            };
            let tried = savepoint.execute(&probe, &[param.sql()]);
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
                    "error: table `{}`, row {} ({}), column `{}`: {}; nothing was imported",
                    file_table.table,
                    first_row + offset + 1,
                    key.join(", "),
                    column.name,
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
