//! SQLite stores: the one database file (`none`, `row_level`) with a
//! tenant registry table, or one file per tenant (`database`:
//! `<tenants_dir>/<uuid>/data.db`, with `tenant.json` beside it).
//!
//! Every connection is a DNR connection (`dnr_sqlite::Connection`), so
//! migrations of enforced tables go through `dnr_migrate`'s rewriting and
//! re-enforcement. A migration holds the file's write lock
//! (`BEGIN IMMEDIATE`) from reading the history to recording it, so two
//! runs never apply one twice; SQLite's journal makes a killed run leave
//! the last committed migration and nothing of the next.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use dnr_core::ast::TenantMode;
use dnr_core::compile::quote::ident;
use dnr_sqlite::{Connection, Value};
use uuid::Uuid;

use super::{AppliedPolicy, Backend, Recorded, Session, Store, TableRows, Tenant, TenantRows};
use crate::migrations::Migration;
use crate::project::{Policy, Project};

/// The history of applied migrations, in every store. The `_dnr_` prefix
/// keeps it from locked application connections; the `:` from any
/// enforced table's storage name.
pub(crate) const HISTORY: &str = "\"_dnr_:migrations\"";
/// The registry of tenants in `none` / `row_level` mode.
const REGISTRY: &str = "\"_dnr_:tenants\"";
/// A tenant's data file in `database` mode, in its directory.
const DATA_FILE: &str = "data.db";
/// The tenant's id and name, beside its data file.
const TENANT_FILE: &str = "tenant.json";
/// Where a tenant's directory is built before it is renamed into place.
const STAGING_PREFIX: &str = ".creating-";
/// How long a statement waits for another process's write lock.
const BUSY_TIMEOUT_MS: u32 = 60_000;

pub struct SqliteBackend {
    mode: TenantMode,
    database: PathBuf,
    tenants_dir: PathBuf,
}

impl SqliteBackend {
    pub fn new(project: &Project) -> SqliteBackend {
        SqliteBackend {
            mode: project.mode(),
            database: project.path(&project.database.sqlite_path),
            tenants_dir: project.path(&project.database.tenants_dir),
        }
    }

    fn per_tenant(&self) -> bool {
        self.mode == TenantMode::Database
    }

    fn shared_store(&self) -> Store {
        Store {
            tenant: None,
            location: self.database.display().to_string(),
        }
    }

    /// The file that holds tenant `id`'s rows: its own, or the shared one.
    fn tenant_store(&self, id: Uuid) -> Result<PathBuf, String> {
        if !self.tenants()?.iter().any(|t| t.id == id) {
            return Err(format!("error: unknown tenant {id}"));
        }
        Ok(if self.per_tenant() {
            self.tenant_dir(id).join(DATA_FILE)
        } else {
            self.database.clone()
        })
    }

    fn tenant_dir(&self, id: Uuid) -> PathBuf {
        self.tenants_dir.join(id.to_string())
    }

    fn registry(&self) -> Result<Connection, String> {
        let db = open(&self.database)?;
        exec(
            &db,
            &format!(
                "CREATE TABLE IF NOT EXISTS {REGISTRY} (id TEXT PRIMARY KEY, name TEXT NOT NULL, created_at TEXT NOT NULL)"
            ),
        )?;
        Ok(db)
    }
}

/// Opens (creating it and its directory if needed) a DNR connection that
/// waits for other writers.
pub fn open(path: &Path) -> Result<Connection, String> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)
            .map_err(|e| format!("error: cannot create `{}`: {e}", parent.display()))?;
    }
    let db = Connection::open(path).map_err(|e| format!("error: {e}"))?;
    exec(&db, &format!("PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}"))?;
    Ok(db)
}

/// A text column of a result row ('' for NULL or another type).
fn text_at(row: &[Value], index: usize) -> String {
    match row.get(index) {
        Some(Value::Text(text)) => text.clone(),
        _ => String::new(),
    }
}

/// fsync(2) of a file or directory.
fn sync(path: &Path) -> std::io::Result<()> {
    std::fs::File::open(path)?.sync_all()
}

fn exec(db: &Connection, sql: &str) -> Result<u64, String> {
    db.execute(sql, &[]).map_err(|e| e.to_string())
}

fn now() -> String {
    let since = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    // RFC 3339 in UTC, as SQLite's own strftime writes it.
    let secs = i64::try_from(since.as_secs()).unwrap_or(0);
    let days = secs.div_euclid(86_400);
    let rest = secs.rem_euclid(86_400);
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rest / 3600,
        rest / 60 % 60,
        rest % 60,
        since.subsec_millis()
    )
}

/// The proleptic Gregorian date of a day count since 1970-01-01.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = u32::try_from(doy - (153 * mp + 2) / 5 + 1).unwrap_or(1);
    let month = u32::try_from(if mp < 10 { mp + 3 } else { mp - 9 }).unwrap_or(1);
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

fn tenant_json(tenant: &Tenant) -> String {
    serde_json::json!({
        "id": tenant.id.to_string(),
        "name": tenant.name,
        "created_at": tenant.created_at,
    })
    .to_string()
}

fn read_tenant(dir: &Path, id: Uuid) -> Result<Tenant, String> {
    let file = dir.join(TENANT_FILE);
    let (name, created_at) = match std::fs::read_to_string(&file) {
        Ok(text) => {
            let value: serde_json::Value = serde_json::from_str(&text)
                .map_err(|e| format!("error: `{}`: {e}", file.display()))?;
            let field = |key: &str| {
                value
                    .get(key)
                    .and_then(|v| v.as_str())
                    .unwrap_or_default()
                    .to_string()
            };
            (field("name"), field("created_at"))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => (String::new(), String::new()),
        Err(e) => return Err(format!("error: cannot read `{}`: {e}", file.display())),
    };
    Ok(Tenant {
        id,
        name,
        location: dir.join(DATA_FILE).display().to_string(),
        created_at,
    })
}

impl Backend for SqliteBackend {
    fn stores(&self) -> Result<Vec<Store>, String> {
        if !self.per_tenant() {
            return Ok(vec![self.shared_store()]);
        }
        Ok(self
            .tenants()?
            .into_iter()
            .map(|tenant| Store {
                location: tenant.location.clone(),
                tenant: Some(tenant),
            })
            .collect())
    }

    fn apply_stores(&self) -> Result<Vec<Store>, String> {
        self.stores()
    }

    fn tenants(&self) -> Result<Vec<Tenant>, String> {
        if !self.per_tenant() {
            if !self.database.exists() {
                return Ok(Vec::new());
            }
            let db = self.registry()?;
            let rows = db
                .query(
                    &format!("SELECT id, name, created_at FROM {REGISTRY} ORDER BY created_at, id"),
                    &[],
                )
                .map_err(|e| e.to_string())?;
            return rows
                .rows
                .into_iter()
                .map(|row| {
                    let text = |index: usize| text_at(&row, index);
                    let id = Uuid::parse_str(&text(0)).map_err(|e| {
                        format!("error: the tenant registry holds `{}`: {e}", text(0))
                    })?;
                    Ok(Tenant {
                        id,
                        name: text(1),
                        location: String::new(),
                        created_at: text(2),
                    })
                })
                .collect();
        }
        let entries = match std::fs::read_dir(&self.tenants_dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => {
                return Err(format!(
                    "error: cannot read `{}`: {e}",
                    self.tenants_dir.display()
                ))
            }
        };
        let mut tenants = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| format!("error: {e}"))?;
            let Some(name) = entry.file_name().to_str().map(str::to_string) else {
                continue;
            };
            // Directories being created (`.creating-<uuid>`) or dropped are
            // not tenants yet / any more.
            let Ok(id) = Uuid::parse_str(&name) else {
                continue;
            };
            if id.to_string() != name || !entry.path().join(DATA_FILE).exists() {
                continue;
            }
            tenants.push(read_tenant(&entry.path(), id)?);
        }
        tenants.sort_by(|a, b| (&a.created_at, a.id).cmp(&(&b.created_at, b.id)));
        Ok(tenants)
    }

    fn create_tenant(&self, id: Uuid, name: &str) -> Result<Store, String> {
        let tenant = Tenant {
            id,
            name: name.to_string(),
            location: String::new(),
            created_at: now(),
        };
        if !self.per_tenant() {
            let db = self.registry()?;
            let inserted = db.execute(
                &format!("INSERT INTO {REGISTRY} (id, name, created_at) VALUES (?, ?, ?) ON CONFLICT (id) DO NOTHING"),
                &[
                    Value::Text(id.to_string()),
                    Value::Text(tenant.name.clone()),
                    Value::Text(tenant.created_at.clone()),
                ],
            )
            .map_err(|e| e.to_string())?;
            if inserted == 0 {
                return Err(format!("error: tenant {id} exists"));
            }
            return Ok(self.shared_store());
        }
        // Built under a temporary name and renamed into place: a tenant
        // directory always holds a complete store.
        let dir = self.tenant_dir(id);
        if dir.exists() {
            return Err(format!("error: tenant {id} exists (`{}`)", dir.display()));
        }
        std::fs::create_dir_all(&self.tenants_dir)
            .map_err(|e| format!("error: cannot create `{}`: {e}", self.tenants_dir.display()))?;
        let staging = self.tenants_dir.join(format!("{STAGING_PREFIX}{id}"));
        let _ = std::fs::remove_dir_all(&staging);
        std::fs::create_dir(&staging)
            .map_err(|e| format!("error: cannot create `{}`: {e}", staging.display()))?;
        let written = std::fs::write(staging.join(TENANT_FILE), tenant_json(&tenant))
            .map_err(|e| format!("error: cannot write `{}`: {e}", staging.display()))
            .and_then(|()| open(&staging.join(DATA_FILE)).map(drop));
        if let Err(error) = written {
            let _ = std::fs::remove_dir_all(&staging);
            return Err(error);
        }
        Ok(Store {
            location: staging.join(DATA_FILE).display().to_string(),
            tenant: Some(tenant),
        })
    }

    fn drop_tenant(&self, id: Uuid) -> Result<(), String> {
        if !self.per_tenant() {
            let db = self.registry()?;
            let removed = db
                .execute(
                    &format!("DELETE FROM {REGISTRY} WHERE id = ?"),
                    &[Value::Text(id.to_string())],
                )
                .map_err(|e| e.to_string())?;
            return if removed == 0 {
                Err(format!("error: unknown tenant {id}"))
            } else {
                Ok(())
            };
        }
        let dir = self.tenant_dir(id);
        if !dir.join(DATA_FILE).exists() {
            return Err(format!("error: unknown tenant {id}"));
        }
        // Renamed away first, so that it stops being a tenant at once (what
        // an earlier drop killed midway left there goes first).
        let doomed = self.tenants_dir.join(format!(".dropping-{id}"));
        if doomed.exists() {
            std::fs::remove_dir_all(&doomed)
                .map_err(|e| format!("error: cannot remove `{}`: {e}", doomed.display()))?;
        }
        std::fs::rename(&dir, &doomed)
            .map_err(|e| format!("error: cannot remove `{}`: {e}", dir.display()))?;
        std::fs::remove_dir_all(&doomed)
            .map_err(|e| format!("error: cannot remove `{}`: {e}", doomed.display()))
    }

    fn finish_create(&self, id: Uuid, store: &Store, ok: bool) -> Result<Store, String> {
        let Some(tenant) = store.tenant.as_ref().filter(|_| self.per_tenant()) else {
            if !ok {
                self.drop_tenant(id)?;
            }
            return Ok(store.clone());
        };
        let staging = self
            .tenants_dir
            .join(format!("{STAGING_PREFIX}{}", tenant.id));
        if !ok {
            let _ = std::fs::remove_dir_all(&staging);
            return Ok(store.clone());
        }
        let dir = self.tenant_dir(tenant.id);
        // On disk before it becomes a tenant; rename(2) refuses a
        // non-empty target, so a concurrent create of the same id loses.
        let durable = sync(&staging.join(DATA_FILE))
            .and_then(|()| sync(&staging))
            .and_then(|()| std::fs::rename(&staging, &dir))
            .and_then(|()| sync(&self.tenants_dir));
        if let Err(e) = durable {
            let _ = std::fs::remove_dir_all(&staging);
            return Err(format!("error: cannot create `{}`: {e}", dir.display()));
        }
        let location = dir.join(DATA_FILE).display().to_string();
        Ok(Store {
            tenant: Some(Tenant {
                location: location.clone(),
                ..tenant.clone()
            }),
            location,
        })
    }

    fn session(&self) -> Result<Box<dyn Session + '_>, String> {
        Ok(Box::new(SqliteSession { open: None }))
    }

    fn export_tenant(&self, id: Uuid) -> Result<TenantRows, String> {
        let db = open(&self.tenant_store(id)?)?;
        // One snapshot of every table.
        exec(&db, "BEGIN")?;
        let rows = read_rows(&db, id);
        let _ = exec(&db, "COMMIT");
        rows
    }

    fn import_tenant(&self, id: Uuid, rows: &TenantRows, checksum: &str) -> Result<(), String> {
        let db = open(&self.tenant_store(id)?)?;
        in_transaction(&db, || write_tenant(&db, id, rows, checksum))
    }

    fn adopt_tenant(&self, id: Uuid, source: &str) -> Result<Vec<(String, u64)>, String> {
        if self.mode != TenantMode::RowLevel {
            return Err(format!(
                "error: `dnr tenants adopt` needs `tenant_mode = \"row_level\"` in dnr.toml (and `mode: row_level` in the policy); this project is `{}`",
                self.mode.as_str()
            ));
        }
        if self.tenants()?.iter().any(|t| t.id == id) {
            return Err(format!("error: tenant {id} exists"));
        }
        let db = self.registry()?;
        in_transaction(&db, || {
            let counts = db
                .dnr()
                .adopt_rows(id, source)
                .map_err(|e| format!("error: {e}"))?;
            db.execute(
                &format!("INSERT INTO {REGISTRY} (id, name, created_at) VALUES (?, '', ?)"),
                &[Value::Text(id.to_string()), Value::Text(now())],
            )
            .map_err(|e| e.to_string())?;
            Ok(counts)
        })
    }

    fn hold_tenant(&self, id: Uuid) -> Result<(), String> {
        let location = if self.per_tenant() {
            self.tenant_store(id)?
        } else {
            self.database.clone()
        };
        open(&location)?
            .dnr()
            .hold_tenant(id)
            .map_err(|e| format!("error: {e}"))
    }

    fn release_tenant(&self, id: Uuid) -> Result<(), String> {
        let location = if self.per_tenant() {
            match self.tenant_store(id) {
                Ok(location) => location,
                // Gone with its tenant.
                Err(_) => return Ok(()),
            }
        } else {
            self.database.clone()
        };
        open(&location)?
            .dnr()
            .release_tenant(id)
            .map(drop)
            .map_err(|e| format!("error: {e}"))
    }

    fn erase_tenant(&self, id: Uuid) -> Result<Vec<(String, u64)>, String> {
        let location = self.tenant_store(id)?;
        if self.per_tenant() {
            // The file goes with the tenant: count what it held.
            let counts = {
                let db = open(&location)?;
                let tables = db.dnr().tenant_tables().unwrap_or_default();
                tables
                    .iter()
                    .map(|table| {
                        let counted = db
                            .query(
                                &format!("SELECT count(*) FROM main.{}", ident(&table.storage)),
                                &[],
                            )
                            .map_err(|e| format!("error: {e}"))?;
                        let count = match counted.rows.first().and_then(|r| r.first()) {
                            Some(Value::Integer(n)) => u64::try_from(*n).unwrap_or(0),
                            _ => 0,
                        };
                        Ok((table.table.clone(), count))
                    })
                    .collect::<Result<Vec<_>, String>>()?
            };
            self.drop_tenant(id)?;
            return Ok(counts);
        }
        let db = self.registry()?;
        in_transaction(&db, || {
            let counts = match db
                .dnr()
                .applied_source()
                .map_err(|e| format!("error: {e}"))?
            {
                Some(_) => db
                    .dnr()
                    .erase_tenant_rows(id)
                    .map_err(|e| format!("error: {e}"))?,
                None => Vec::new(),
            };
            let removed = db
                .execute(
                    &format!("DELETE FROM {REGISTRY} WHERE id = ?"),
                    &[Value::Text(id.to_string())],
                )
                .map_err(|e| e.to_string())?;
            if removed == 0 {
                return Err(format!("error: unknown tenant {id}"));
            }
            Ok(counts)
        })
    }

    fn parallelism(&self) -> usize {
        if self.per_tenant() {
            std::thread::available_parallelism().map_or(1, |n| n.get())
        } else {
            1
        }
    }

    fn explain(
        &self,
        store: &Store,
        context: &dnr_core::TenantContext,
        entity: &str,
        op: &str,
        row: &str,
    ) -> Result<String, String> {
        let db = open(Path::new(&store.location))?;
        db.set_context(context.clone())
            .map_err(|e| format!("error: {e}"))?;
        let decision = db
            .dnr()
            .decide(entity, op, row)
            .map_err(|e| format!("error: {e}"))?;
        Ok(super::render_decision(decision.allowed, &decision.reason))
    }
}

/// The migrations a store recorded, by version (none without a history).
pub(crate) fn history(db: &Connection) -> Result<Vec<Recorded>, String> {
    let exists = db
        .query(
            "SELECT 1 FROM main.sqlite_master WHERE type = 'table' AND name = '_dnr_:migrations'",
            &[],
        )
        .map_err(|e| e.to_string())?;
    if exists.rows.is_empty() {
        return Ok(Vec::new());
    }
    let rows = db
        .query(
            &format!("SELECT version, name, checksum, applied_at, duration_ms FROM {HISTORY} ORDER BY version"),
            &[],
        )
        .map_err(|e| e.to_string())?;
    Ok(rows
        .rows
        .into_iter()
        .map(|row| {
            let text = |index: usize| text_at(&row, index);
            Recorded {
                version: match row.first() {
                    Some(Value::Integer(v)) => u32::try_from(*v).unwrap_or(u32::MAX),
                    _ => u32::MAX,
                },
                name: text(1),
                checksum: text(2),
                applied_at: text(3),
                duration_ms: match row.get(4) {
                    Some(Value::Real(ms)) => *ms,
                    _ => 0.0,
                },
            }
        })
        .collect())
}

/// A tenant's rows of every table that holds them, as a tenant file
/// holds them (the tenant column left out).
fn read_rows(db: &Connection, id: Uuid) -> Result<TenantRows, String> {
    let policy_source = db
        .dnr()
        .applied_source()
        .map_err(|e| format!("error: {e}"))?
        .ok_or_else(|| {
            format!("error: no policy is applied to tenant {id}'s store: run `dnr apply`")
        })?;
    let mut tables = Vec::new();
    for table in db
        .dnr()
        .tenant_tables()
        .map_err(|e| format!("error: {e}"))?
    {
        let columns = storage_columns(db, &table.storage)?;
        let kept: Vec<&StorageColumn> = columns
            .iter()
            .filter(|c| Some(&c.name) != table.tenant_column.as_ref())
            .collect();
        let selected: Vec<String> = kept.iter().map(|c| ident(&c.name)).collect();
        let (filter, params) = match &table.tenant_column {
            Some(column) => (
                format!(" WHERE {} = ?", ident(column)),
                vec![Value::Text(id.hyphenated().to_string())],
            ),
            None => (String::new(), Vec::new()),
        };
        let rows = db
            .query(
                &format!(
                    "SELECT {} FROM main.{}{filter}",
                    selected.join(", "),
                    ident(&table.storage)
                ),
                &params,
            )
            .map_err(|e| format!("error: {e}"))?;
        let mut key: Vec<&StorageColumn> = columns.iter().filter(|c| c.primary_key > 0).collect();
        key.sort_by_key(|c| c.primary_key);
        tables.push(TableRows {
            table: table.table.clone(),
            columns: kept.iter().map(|c| c.name.clone()).collect(),
            types: kept.iter().map(|c| c.declared.clone()).collect(),
            primary_key: key.iter().map(|c| c.name.clone()).collect(),
            rows: rows
                .rows
                .into_iter()
                .map(|row| row.into_iter().map(crate::transfer::to_cell).collect())
                .collect(),
        });
    }
    Ok(TenantRows {
        policy_source,
        tables,
        history: history(db)?,
    })
}

struct StorageColumn {
    name: String,
    declared: String,
    primary_key: i64,
}

fn storage_columns(db: &Connection, storage: &str) -> Result<Vec<StorageColumn>, String> {
    let info = db
        .query(
            "SELECT name, type, pk FROM pragma_table_info(?, 'main') ORDER BY cid",
            &[Value::Text(storage.to_string())],
        )
        .map_err(|e| format!("error: {e}"))?;
    Ok(info
        .rows
        .iter()
        .map(|row| StorageColumn {
            name: text_at(row, 0),
            declared: text_at(row, 1),
            primary_key: match row.get(2) {
                Some(Value::Integer(n)) => *n,
                _ => 0,
            },
        })
        .collect())
}

/// Writes `rows` as tenant `id`'s in the store `db` (in the caller's
/// transaction), after erasing the tenant's rows there; then reads them
/// back and compares their checksum with the file's.
fn write_tenant(
    db: &Connection,
    id: Uuid,
    rows: &TenantRows,
    checksum: &str,
) -> Result<(), String> {
    let version = history(db)?.iter().map(|r| r.version).max().unwrap_or(0);
    if version != rows.schema_version() {
        return Err(format!(
            "error: the tenant file is at schema version {}, tenant {id}'s store at {version}: run `dnr migrate` so that both are at the same version, then import again",
            rows.schema_version()
        ));
    }
    let tables = db
        .dnr()
        .tenant_tables()
        .map_err(|e| format!("error: {e}"))?;
    db.dnr()
        .erase_tenant_rows(id)
        .map_err(|e| format!("error: {e}"))?;
    let tenant_text = id.hyphenated().to_string();
    for file_table in &rows.tables {
        let table = tables
            .iter()
            .find(|t| t.table.eq_ignore_ascii_case(&file_table.table))
            .ok_or_else(|| {
                format!(
                    "error: the tenant file holds table `{}`, which holds no tenant's rows here",
                    file_table.table
                )
            })?;
        let present = storage_columns(db, &table.storage)?;
        for column in &file_table.columns {
            if !present.iter().any(|c| c.name.eq_ignore_ascii_case(column)) {
                return Err(format!(
                    "error: the tenant file's table `{}` has column `{column}`, which the target's has not",
                    file_table.table
                ));
            }
        }
        let mut columns: Vec<String> = table.tenant_column.iter().map(|c| ident(c)).collect();
        columns.extend(file_table.columns.iter().map(|c| ident(c)));
        let insert = format!(
            "INSERT INTO main.{} ({}) VALUES ({})",
            ident(&table.storage),
            columns.join(", "),
            vec!["?"; columns.len()].join(", ")
        );
        for row in &file_table.rows {
            let mut params = Vec::with_capacity(columns.len());
            if table.tenant_column.is_some() {
                params.push(Value::Text(tenant_text.clone()));
            }
            params.extend(row.iter().map(crate::transfer::to_value));
            db.execute(&insert, &params).map_err(|e| {
                let key: Vec<String> = file_table
                    .primary_key
                    .iter()
                    .filter_map(|k| {
                        let at = file_table.columns.iter().position(|c| c == k)?;
                        Some(format!("{k} = {:?}", row.get(at)?))
                    })
                    .collect();
                format!(
                    "error: table `{}`, row ({}): {e}; nothing was imported",
                    file_table.table,
                    key.join(", ")
                )
            })?;
        }
    }
    let found = crate::transfer::copied_checksum(rows, &read_rows(db, id)?);
    if found.hex() != checksum {
        return Err(format!(
            "error: the rows written for tenant {id} do not match the tenant file (checksum {} instead of {checksum}); nothing was imported",
            found.hex()
        ));
    }
    Ok(())
}

/// Runs `work` in a write transaction on `db`: committed when it succeeds,
/// rolled back when it fails.
fn in_transaction<T>(
    db: &Connection,
    work: impl FnOnce() -> Result<T, String>,
) -> Result<T, String> {
    exec(db, "BEGIN IMMEDIATE")?;
    match work() {
        Ok(value) => {
            exec(db, "COMMIT")?;
            Ok(value)
        }
        Err(error) => {
            let _ = exec(db, "ROLLBACK");
            Err(error)
        }
    }
}

/// A tenant's own file records whose it is (older files learn it at their
/// next apply or migration), so that the extension refuses any other
/// tenant's context on it; a file in another tenant's place is refused.
fn bind(db: &Connection, store: &Store) -> Result<(), String> {
    match &store.tenant {
        Some(tenant) => db
            .dnr()
            .bind_tenant(tenant.id)
            .map_err(|e| format!("error: `{}`: {e}", store.location)),
        None => Ok(()),
    }
}

/// Opens each store's file when its work begins; keeps the last one open.
struct SqliteSession {
    open: Option<(String, Connection)>,
}

impl SqliteSession {
    fn connection(&mut self, location: &str) -> Result<&Connection, String> {
        let reuse = matches!(&self.open, Some((path, _)) if path == location);
        if !reuse {
            self.open = None;
            let db = open(Path::new(location))?;
            if location.contains(STAGING_PREFIX) {
                // A tenant being created is no tenant until its directory
                // is renamed into place (after `finish_create` syncs the
                // file): a crash before that leaves only a staging
                // directory, so its many small transactions need not
                // each wait for the disk.
                exec(&db, "PRAGMA synchronous = OFF")?;
                db.query("PRAGMA journal_mode = MEMORY", &[])
                    .map_err(|e| e.to_string())?;
            }
            self.open = Some((location.to_string(), db));
        }
        match &self.open {
            Some((_, db)) => Ok(db),
            None => Err("error: no connection".into()),
        }
    }

    fn current(&self) -> Result<&Connection, String> {
        match &self.open {
            Some((_, db)) => Ok(db),
            None => Err("error: no store is open".into()),
        }
    }
}

impl Session for SqliteSession {
    fn begin(&mut self, store: &Store) -> Result<(), String> {
        let db = self.connection(&store.location)?;
        exec(db, "BEGIN IMMEDIATE")?;
        let created = exec(
            db,
            &format!(
                "CREATE TABLE IF NOT EXISTS {HISTORY} (version INTEGER PRIMARY KEY, name TEXT NOT NULL, checksum TEXT NOT NULL, applied_at TEXT NOT NULL, duration_ms REAL NOT NULL)"
            ),
        );
        if let Err(error) = created.map(drop).and_then(|()| bind(db, store)) {
            let _ = exec(db, "ROLLBACK");
            return Err(error);
        }
        Ok(())
    }

    fn recorded(&mut self) -> Result<Vec<Recorded>, String> {
        history(self.current()?)
    }

    fn run(&mut self, migration: &Migration) -> Result<(), String> {
        let db = self.current()?;
        db.migrate(&migration.sql)
            .map(drop)
            .map_err(|e| e.message().trim_start_matches("dnr: ").to_string())
    }

    /// One `dnr_migrate` for all of them: enforcement is rebuilt once.
    fn run_all(&mut self, migrations: &[&Migration]) -> Result<(), String> {
        let sql: String = migrations
            .iter()
            .map(|migration| format!("{}\n;\n", migration.sql))
            .collect();
        let db = self.current()?;
        db.migrate(&sql)
            .map(drop)
            .map_err(|e| e.message().trim_start_matches("dnr: ").to_string())
    }

    fn record(&mut self, migration: &Migration, took: Duration) -> Result<(), String> {
        let db = self.current()?;
        db.execute(
            &format!("INSERT INTO {HISTORY} (version, name, checksum, applied_at, duration_ms) VALUES (?, ?, ?, ?, ?)"),
            &[
                Value::Integer(i64::from(migration.version)),
                Value::Text(migration.name.clone()),
                Value::Text(migration.checksum.clone()),
                Value::Text(now()),
                Value::Real(took.as_secs_f64() * 1000.0),
            ],
        )
        .map(drop)
        .map_err(|e| e.to_string())
    }

    fn commit(&mut self) -> Result<(), String> {
        exec(self.current()?, "COMMIT").map(drop)
    }

    fn rollback(&mut self) -> Result<(), String> {
        exec(self.current()?, "ROLLBACK").map(drop)
    }

    fn apply(&mut self, store: &Store, policy: &Policy) -> Result<String, String> {
        let db = self.connection(&store.location)?;
        bind(db, store)?;
        db.apply(&policy.source)
            .map_err(|e| e.message().trim_start_matches("dnr: ").to_string())
    }

    fn release(&mut self) {
        self.open = None;
    }

    fn applied_policy(&mut self, store: &Store) -> Result<AppliedPolicy, String> {
        let db = self.connection(&store.location)?;
        Ok(
            match db.dnr().applied_source().map_err(|e| e.to_string())? {
                Some(source) => AppliedPolicy::Source(source),
                None => AppliedPolicy::None,
            },
        )
    }
}
