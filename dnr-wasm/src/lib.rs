//! The npm package `dnr-wasm`: SQLite with DNR enforcement for browsers and
//! Node, built with wasm-bindgen.
//!
//! A thin adapter: policies are parsed, compiled and evaluated by `dnr-core`;
//! the SQLite side (context functions, apply, lock) is `dnr-sqlite`, the same
//! code as the loadable extension, registered on the embedded connection.
//! This crate converts arguments and results between JavaScript and Rust.

mod convert;
mod error;
#[cfg(all(target_family = "wasm", target_os = "unknown"))]
mod opfs;
#[cfg(all(target_family = "wasm", target_os = "unknown"))]
mod writes;

use dnr_core::compile::{compile, Target};
use dnr_core::{PolicySet, RelatedRows, Row, TenantContext};
use dnr_sqlite::Statements;
use js_sys::{Array, Object};
use rusqlite::{Connection, OpenFlags};
use wasm_bindgen::prelude::*;

use crate::convert::set;
use crate::error::Error;

#[wasm_bindgen(typescript_custom_section)]
const TYPES: &'static str = r#"
/** Where `Database.open` keeps the database. */
export interface OpenOptions {
  /** `"memory"` (default) or `"opfs"` (browser, dedicated Worker only). */
  storage?: "memory" | "opfs";
  /** The database's name in OPFS (default `"dnr.db"`); ignored in memory. */
  path?: string;
}
/** Who is asking. Ids are uuids; `null`, `undefined` or `""` mean unset. */
export interface Context {
  tenant?: string | null;
  user?: string | null;
  roles?: string[];
}
/** The evaluator's answer, with the rule or fence that decided it. */
export interface Decision {
  allowed: boolean;
  reason: string;
}
export type CompileTarget = "postgres" | "postgres-plain" | "sqlite";
/** One row: column name to value (number, bigint, string, Uint8Array or null). */
export type Row = Record<string, unknown>;
"#;

#[wasm_bindgen]
extern "C" {
    #[wasm_bindgen(js_namespace = console, js_name = error)]
    fn console_error(message: &str);
}

/// Runs when the module is instantiated: a panic (a bug, never an input
/// error) is logged with its message before WebAssembly traps with
/// `unreachable`, instead of leaving only the trap.
#[wasm_bindgen(start)]
pub fn start() {
    std::panic::set_hook(Box::new(|info| {
        console_error(&format!(
            "dnr-wasm: internal error, please report: {info}; this module instance must not be used any more"
        ));
    }));
}

/// An embedded SQLite database with DNR's enforcement, locked: SQL run
/// through `exec`/`query` cannot change the context, reach the storage
/// tables behind enforced views, or alter enforced objects.
#[wasm_bindgen]
pub struct Database {
    /// `None` once closed. Field order matters: `dnr` must not outlive `conn`.
    inner: Option<Open>,
}

struct Open {
    #[cfg(all(target_family = "wasm", target_os = "unknown"))]
    writes: writes::WriteCounter,
    dnr: dnr_sqlite::Dnr,
    conn: Connection,
}

#[wasm_bindgen]
impl Database {
    /// Opens a database (in memory unless `storage: "opfs"`), registers DNR
    /// on it and locks it.
    pub async fn open(
        #[wasm_bindgen(unchecked_optional_param_type = "OpenOptions")] opts: Option<JsValue>,
    ) -> Result<Database, JsValue> {
        let options = OpenOptions::from_js(&opts.unwrap_or(JsValue::UNDEFINED))?;
        let conn = match options.storage {
            Storage::Memory => {
                let conn = Connection::open_in_memory().map_err(Error::from)?;
                // SQLite's usual page size rather than the 8 KiB this build
                // defaults to for its persistent VFSes: every enforced write
                // copies the pages it changes into the statement journal,
                // and smaller pages make that a few percent cheaper.
                conn.execute_batch("PRAGMA page_size = 4096")
                    .map_err(Error::from)?;
                conn
            }
            Storage::Opfs => open_opfs(&options.path).await?,
        };
        Ok(Database {
            inner: Some(Open::new(conn)?),
        })
    }

    /// Sets the context policies read. Ids must be uuids; roles are names.
    #[wasm_bindgen(js_name = setContext)]
    pub fn set_context(
        &self,
        #[wasm_bindgen(unchecked_param_type = "Context")] ctx: JsValue,
    ) -> Result<(), JsValue> {
        let ctx = context_from_js(&ctx)?;
        self.live()?
            .dnr
            .set_context(ctx)
            .map_err(|e| Error::new(e.message()))?;
        Ok(())
    }

    /// Marks this database as tenant `tenant`'s own (database mode: one
    /// file per tenant): from then on a context of another tenant is
    /// refused on it. Refused when the file is already another tenant's.
    #[wasm_bindgen(js_name = bindTenant)]
    pub fn bind_tenant(&self, tenant: &str) -> Result<(), JsValue> {
        let tenant = dnr_core::value::parse_uuid(tenant).map_err(|e| Error::new(e.to_string()))?;
        self.live()?
            .dnr
            .bind_tenant(tenant)
            .map_err(|e| Error::new(e.message()))?;
        Ok(())
    }

    /// Clears the context: no tenant, no user, no roles.
    #[wasm_bindgen(js_name = clearContext)]
    pub fn clear_context(&self) -> Result<(), JsValue> {
        self.live()?
            .dnr
            .set_context(TenantContext::default())
            .map_err(|e| Error::new(e.message()))?;
        Ok(())
    }

    /// Enforces a policy source on this database (creating declared tables
    /// that do not exist yet); returns a summary. Applying again replaces
    /// the earlier policies.
    #[wasm_bindgen(js_name = applyPolicies)]
    pub fn apply_policies(&self, source: &str) -> Result<String, JsValue> {
        let open = self.live()?;
        // Parsed here too, so that errors carry their line and column.
        dnr_core::parse(source).map_err(|e| Error::policy(&e))?;
        Ok(open
            .dnr
            .apply(source)
            .map_err(|e| Error::new(e.message()))?)
    }

    /// Runs a schema migration (`ALTER TABLE` add/drop/rename column,
    /// `CREATE/DROP INDEX`, `CREATE/DROP TABLE`, `CREATE/DROP VIEW`) that may
    /// touch enforced tables, all or nothing, and enforces the policies
    /// again over the new columns; returns a summary. Data statements are
    /// refused: run them with `exec`, under the policies.
    pub fn migrate(&self, sql: &str) -> Result<String, JsValue> {
        Ok(self
            .live()?
            .dnr
            .migrate(sql)
            .map_err(|e| Error::new(e.message()))?)
    }

    /// Runs one or more statements (parameters need exactly one) and returns
    /// the number of rows inserted, updated or deleted, including writes
    /// made through enforced views.
    pub fn exec(
        &self,
        sql: &str,
        #[wasm_bindgen(unchecked_optional_param_type = "unknown[]")] params: Option<JsValue>,
    ) -> Result<f64, JsValue> {
        let open = self.live()?;
        let params = convert::params(&params.unwrap_or(JsValue::UNDEFINED))?;
        Ok(open.exec(sql, &params)? as f64)
    }

    /// Runs one statement and returns its rows as plain objects.
    #[wasm_bindgen(unchecked_return_type = "Row[]")]
    pub fn query(
        &self,
        sql: &str,
        #[wasm_bindgen(unchecked_optional_param_type = "unknown[]")] params: Option<JsValue>,
    ) -> Result<Array, JsValue> {
        let open = self.live()?;
        let params = convert::params(&params.unwrap_or(JsValue::UNDEFINED))?;
        Ok(open.rows(sql, &params, convert::Rows::new)?)
    }

    /// Runs one statement and returns its rows as arrays of values in
    /// column order: what query builders (Drizzle's sqlite-proxy) expect,
    /// and columns of the same name keep every value.
    #[wasm_bindgen(js_name = queryArrays, unchecked_return_type = "unknown[][]")]
    pub fn query_arrays(
        &self,
        sql: &str,
        #[wasm_bindgen(unchecked_optional_param_type = "unknown[]")] params: Option<JsValue>,
    ) -> Result<Array, JsValue> {
        let open = self.live()?;
        let params = convert::params(&params.unwrap_or(JsValue::UNDEFINED))?;
        Ok(open.rows(sql, &params, convert::Rows::arrays)?)
    }

    /// Closes the database; later calls throw. Closing twice is allowed.
    /// The evaluator's answer for one record under this database's context
    /// and policies; `exists` rules look through this database's rows.
    #[wasm_bindgen(unchecked_return_type = "Decision")]
    pub fn check(
        &self,
        entity: &str,
        op: &str,
        #[wasm_bindgen(unchecked_param_type = "Record<string, unknown>")] record: JsValue,
    ) -> Result<JsValue, JsValue> {
        let json = record_json(&record)?;
        let decision = self
            .live()?
            .dnr
            .decide(entity, op, &json.to_string())
            .map_err(|e| Error::new(e.message()))?;
        Ok(decision_js(&decision))
    }

    pub fn close(&mut self) -> Result<(), JsValue> {
        match self.inner.take() {
            Some(open) => open.close().map_err(JsValue::from),
            None => Ok(()),
        }
    }
}

impl Database {
    fn live(&self) -> Result<&Open, Error> {
        self.inner
            .as_ref()
            .ok_or_else(|| Error::new("the database is closed"))
    }
}

impl Open {
    fn new(conn: Connection) -> Result<Open, Error> {
        // SAFETY: `conn` is open, and `Open` keeps it open for as long as
        // `dnr` exists (`close` drops `dnr` first).
        let dnr =
            unsafe { dnr_sqlite::register(conn.handle()) }.map_err(|e| Error::new(e.message()))?;
        dnr.lock().map_err(|e| Error::new(e.message()))?;
        conn.set_prepared_statement_cache_capacity(64);
        Ok(Open {
            // SAFETY: as above; `close` drops the counter before the connection.
            #[cfg(all(target_family = "wasm", target_os = "unknown"))]
            writes: unsafe { writes::WriteCounter::install(conn.handle()) },
            dnr,
            conn,
        })
    }

    fn exec(&self, sql: &str, params: &[rusqlite::types::Value]) -> Result<u64, Error> {
        let before = self.written();
        self.run(sql, Statements::All, params, |stmt| {
            let mut rows = stmt.raw_query();
            while rows.next()?.is_some() {}
            Ok(())
        })?;
        Ok(self.written().saturating_sub(before))
    }

    /// Runs SQL through DNR's front door (`Dnr::run`): each statement as
    /// written, rewritten onto an enforced table's storage (a write), or as
    /// a migration (a schema change on an enforced table). `step` runs one
    /// prepared statement; the last statement's outcome is returned.
    fn run<T: Default>(
        &self,
        sql: &str,
        statements: Statements,
        params: &[rusqlite::types::Value],
        mut step: impl FnMut(&mut rusqlite::CachedStatement<'_>) -> Result<T, Error>,
    ) -> Result<T, Error> {
        let mut outcomes = self
            .dnr
            .run(sql, statements, !params.is_empty(), |sql, _| {
                let host = |e: Error| dnr_sqlite::Error::new(e.message());
                let mut stmt = self.conn.prepare_cached(sql).map_err(|e| host(e.into()))?;
                bind(&mut stmt, params).map_err(host)?;
                step(&mut stmt).map_err(host)
            })
            .map_err(|e| Error::new(e.message()))?;
        Ok(outcomes.pop().unwrap_or_default())
    }

    /// Rows written into tables so far, by statements and their triggers
    /// (see `writes.rs`): a write through an enforced view counts the rows
    /// its triggers wrote into the storage table.
    #[cfg(all(target_family = "wasm", target_os = "unknown"))]
    fn written(&self) -> u64 {
        self.writes.get()
    }

    /// Natively (never shipped; for `cargo check` and clippy on the host).
    #[cfg(not(all(target_family = "wasm", target_os = "unknown")))]
    fn written(&self) -> u64 {
        self.conn.total_changes()
    }

    fn rows(
        &self,
        sql: &str,
        params: &[rusqlite::types::Value],
        shape: fn(Vec<String>) -> convert::Rows,
    ) -> Result<Array, Error> {
        // A migration has no rows: None, then an empty array.
        let rows = self.run(sql, Statements::One, params, |stmt| {
            let mut out = shape(stmt.column_names().map(String::from).collect());
            let mut rows = stmt.raw_query();
            while let Some(row) = rows.next()? {
                out.push(row)?;
            }
            drop(rows);
            out.finish().map(Some)
        })?;
        Ok(rows.unwrap_or_default())
    }

    fn close(self) -> Result<(), Error> {
        #[cfg(all(target_family = "wasm", target_os = "unknown"))]
        let Open { writes, dnr, conn } = self;
        #[cfg(all(target_family = "wasm", target_os = "unknown"))]
        drop(writes);
        #[cfg(not(all(target_family = "wasm", target_os = "unknown")))]
        let Open { dnr, conn } = self;
        drop(dnr);
        conn.close().map_err(|(_, e)| Error::from(e))
    }
}

fn bind(
    stmt: &mut rusqlite::Statement<'_>,
    params: &[rusqlite::types::Value],
) -> Result<(), Error> {
    let expected = stmt.parameter_count();
    if expected != params.len() {
        return Err(Error::new(format!(
            "the statement has {expected} parameter(s), {} given",
            params.len()
        )));
    }
    for (index, value) in params.iter().enumerate() {
        stmt.raw_bind_parameter(index + 1, value)?;
    }
    Ok(())
}

enum Storage {
    Memory,
    Opfs,
}

struct OpenOptions {
    storage: Storage,
    path: String,
}

impl OpenOptions {
    fn from_js(opts: &JsValue) -> Result<OpenOptions, Error> {
        if opts.is_undefined() || opts.is_null() {
            return Ok(OpenOptions {
                storage: Storage::Memory,
                path: DEFAULT_PATH.into(),
            });
        }
        if !opts.is_object() {
            return Err(Error::new("open options must be an object"));
        }
        for key in convert::keys(opts) {
            if key != "storage" && key != "path" {
                return Err(Error::new(format!(
                    "unknown open option `{key}`: expected `storage` or `path`"
                )));
            }
        }
        let storage = match convert::optional_string(opts, "storage")?.as_deref() {
            None | Some("memory") => Storage::Memory,
            Some("opfs") => Storage::Opfs,
            Some(other) => {
                return Err(Error::new(format!(
                    "unknown storage `{other}`: expected `memory` or `opfs`"
                )))
            }
        };
        let path = convert::optional_string(opts, "path")?.unwrap_or_else(|| DEFAULT_PATH.into());
        if path.is_empty() || path.contains('\0') {
            return Err(Error::new(format!("invalid database path `{path}`")));
        }
        Ok(OpenOptions { storage, path })
    }
}

const DEFAULT_PATH: &str = "dnr.db";

#[cfg(all(target_family = "wasm", target_os = "unknown"))]
async fn open_opfs(path: &str) -> Result<Connection, Error> {
    opfs::install().await?;
    // OPFS paths are absolute in the pool's namespace.
    let name = if path.starts_with('/') {
        path.to_string()
    } else {
        format!("/{path}")
    };
    Ok(Connection::open_with_flags_and_vfs(
        name,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE,
        opfs::VFS_NAME,
    )?)
}

#[cfg(not(all(target_family = "wasm", target_os = "unknown")))]
async fn open_opfs(_path: &str) -> Result<Connection, Error> {
    let _ = OpenFlags::SQLITE_OPEN_READ_WRITE;
    Err(Error::new("OPFS storage exists only in the browser"))
}

fn context_from_js(ctx: &JsValue) -> Result<TenantContext, Error> {
    if ctx.is_undefined() || ctx.is_null() {
        return Ok(TenantContext::default());
    }
    if !ctx.is_object() {
        return Err(Error::new(
            "the context must be an object { tenant, user, roles }",
        ));
    }
    for key in convert::keys(ctx) {
        if !matches!(key.as_str(), "tenant" | "user" | "roles") {
            return Err(Error::new(format!(
                "unknown context key `{key}`: expected `tenant`, `user` or `roles`"
            )));
        }
    }
    let tenant = convert::optional_string(ctx, "tenant")?;
    let user = convert::optional_string(ctx, "user")?;
    let roles_value =
        js_sys::Reflect::get(ctx, &JsValue::from_str("roles")).unwrap_or(JsValue::UNDEFINED);
    let mut roles: Vec<String> = Vec::new();
    if !roles_value.is_undefined() && !roles_value.is_null() {
        if !Array::is_array(&roles_value) {
            return Err(Error::new("`roles` must be an array of strings"));
        }
        for role in Array::from(&roles_value).iter() {
            roles.push(
                role.as_string()
                    .ok_or_else(|| Error::new("`roles` must be an array of strings"))?,
            );
        }
    }
    let roles: Vec<&str> = roles.iter().map(String::as_str).collect();
    TenantContext::parse(tenant.as_deref(), user.as_deref(), &roles)
        .map_err(|e| Error::new(e.to_string()))
}

/// The SQL that enforces `source` on `target` (a dry run, as `dnr compile`).
#[wasm_bindgen(js_name = compilePolicies)]
pub fn compile_policies(
    source: &str,
    #[wasm_bindgen(unchecked_param_type = "CompileTarget")] target: &str,
) -> Result<String, JsValue> {
    let target = Target::parse(target).ok_or_else(|| {
        Error::new(format!(
            "unknown target `{target}`: expected `postgres`, `postgres-plain` or `sqlite`"
        ))
    })?;
    let set = dnr_core::parse(source).map_err(|e| Error::policy(&e))?;
    Ok(compile(&set, target).map_err(|e| Error::new(e.to_string()))?)
}

/// The reference evaluator's answer for one record: may `ctx` perform `op`
/// on `record` of `entity` under the policies in `source`?
#[wasm_bindgen(unchecked_return_type = "Decision")]
pub fn check(
    source: &str,
    entity: &str,
    op: &str,
    #[wasm_bindgen(unchecked_param_type = "Context")] ctx: JsValue,
    #[wasm_bindgen(unchecked_param_type = "Record<string, unknown>")] record: JsValue,
    #[wasm_bindgen(unchecked_param_type = "Record<string, Record<string, unknown>[]>")]
    related: Option<Object>,
) -> Result<JsValue, JsValue> {
    let policies = dnr_core::parse(source).map_err(|e| Error::policy(&e))?;
    let ctx = context_from_js(&ctx)?;
    let json = record_json(&record)?;
    let request = policies
        .request(entity, op, &json)
        .map_err(|e| Error::new(e.to_string()))?;
    let (operation, row) = (request.op, request.row);
    let related = related_rows(&policies, related.as_ref())?;
    let decision = policies
        .decide_with(entity, operation, &ctx, &row, &related)
        .map_err(|e| Error::new(e.to_string()))?;
    Ok(decision_js(&decision))
}

/// `{ allowed, reason }`.
fn decision_js(decision: &dnr_core::Decision) -> JsValue {
    let out = Object::new();
    set(
        &out,
        &"allowed".into(),
        &JsValue::from_bool(decision.allowed),
    );
    set(&out, &"reason".into(), &JsValue::from_str(&decision.reason));
    out.into()
}

/// The rows `exists` rules look through, by entity name (`{ Membership:
/// [{...}, ...] }`), as the pure `check` takes them: every stored row; the
/// evaluator applies each entity's fence and read rule itself.
fn related_rows(policies: &PolicySet, related: Option<&Object>) -> Result<RelatedRows, Error> {
    let mut rows = RelatedRows::new();
    let Some(related) = related else {
        return Ok(rows);
    };
    for name in convert::keys(related) {
        let entity = policies
            .entity(&name)
            .ok_or_else(|| Error::new(format!("related rows for unknown entity `{name}`")))?;
        let list =
            js_sys::Reflect::get(related, &JsValue::from_str(&name)).unwrap_or(JsValue::UNDEFINED);
        if !Array::is_array(&list) {
            return Err(Error::new(format!(
                "the related rows of `{name}` must be an array of records"
            )));
        }
        let mut parsed = Vec::new();
        for record in Array::from(&list).iter() {
            let json = record_json(&record)?;
            parsed.push(
                Row::from_json(entity, &json)
                    .map_err(|e| Error::new(format!("a related `{name}` row: {e}")))?,
            );
        }
        rows.insert(&entity.name, parsed);
    }
    Ok(rows)
}

/// A JS record as JSON for the evaluator. Numbers keep the type they bind
/// as in SQL (integral → integer), bigints stay exact integers.
fn record_json(record: &JsValue) -> Result<serde_json::Value, Error> {
    if !record.is_object() || Array::is_array(record) {
        return Err(Error::new("the record must be a plain object"));
    }
    let mut map = serde_json::Map::new();
    for key in convert::keys(record) {
        let value =
            js_sys::Reflect::get(record, &JsValue::from_str(&key)).unwrap_or(JsValue::UNDEFINED);
        let json = match convert::param(0, &value) {
            Ok(rusqlite::types::Value::Null) => serde_json::Value::Null,
            Ok(rusqlite::types::Value::Integer(i)) if value.as_bool().is_some() => {
                serde_json::Value::Bool(i != 0)
            }
            Ok(rusqlite::types::Value::Integer(i)) => serde_json::Value::from(i),
            Ok(rusqlite::types::Value::Real(f)) => serde_json::Number::from_f64(f)
                .map(serde_json::Value::Number)
                .unwrap_or(serde_json::Value::Null),
            Ok(rusqlite::types::Value::Text(text)) => serde_json::Value::String(text),
            Ok(rusqlite::types::Value::Blob(_)) => {
                return Err(Error::new(format!(
                    "record field `{key}`: binary values cannot be checked"
                )))
            }
            // Nested objects and arrays (json fields) as their JSON text.
            Err(_) => js_sys::JSON::stringify(&value)
                .ok()
                .and_then(|s| s.as_string())
                .and_then(|s| serde_json::from_str(&s).ok())
                .ok_or_else(|| {
                    Error::new(format!("record field `{key}` cannot be read as JSON"))
                })?,
        };
        map.insert(key, json);
    }
    Ok(serde_json::Value::Object(map))
}
