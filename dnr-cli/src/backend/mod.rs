//! Where tenants live: the stores of a project on SQLite or PostgreSQL,
//! behind one interface so that every verb is written once.
//!
//! A *store* is one place a policy and the migrations go: the one shared
//! database (`none`, `row_level`), a tenant's schema (`schema`) or a
//! tenant's database (`database`). A [`Session`] is one worker's
//! connection; the verbs run sessions in parallel (`run_parallel`).

pub mod postgres;
mod postgres_rows;
pub mod sqlite;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use dnr_core::config::Backend as BackendKind;
use uuid::Uuid;

use crate::migrations::Migration;
use crate::project::{Policy, Project};

/// A registered tenant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tenant {
    pub id: Uuid,
    pub name: String,
    /// Its schema, file or database; empty for a registry row.
    pub location: String,
    pub created_at: String,
}

/// One place policies and migrations go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Store {
    /// `None`: the one shared database.
    pub tenant: Option<Tenant>,
    /// Its schema, file or database, as the backend reaches it.
    pub location: String,
}

impl Store {
    /// How reports name it: the tenant id, or `database`.
    pub fn label(&self) -> String {
        match &self.tenant {
            Some(tenant) => tenant.id.to_string(),
            None => "database".into(),
        }
    }
}

/// A migration as a store recorded it.
#[derive(Debug, Clone, PartialEq)]
pub struct Recorded {
    pub version: u32,
    pub name: String,
    pub checksum: String,
    pub applied_at: String,
    pub duration_ms: f64,
}

/// The applied policy of a store, for `status`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AppliedPolicy {
    None,
    /// The applied source.
    Source(String),
    /// The store does not tell this role.
    Unknown,
}

/// One table's rows of a tenant, for a tenant file: its columns without
/// the tenant column (whose value the mode decides), each with the SQLite
/// type a file declares it with.
#[derive(Debug, Clone, PartialEq)]
pub struct TableRows {
    pub table: String,
    pub columns: Vec<String>,
    pub types: Vec<String>,
    pub primary_key: Vec<String>,
    pub rows: Vec<Vec<dnr_core::transfer::Cell>>,
}

/// Everything a tenant file carries of a tenant.
#[derive(Debug, Clone, PartialEq)]
pub struct TenantRows {
    /// The policy applied to the tenant's store.
    pub policy_source: String,
    pub tables: Vec<TableRows>,
    /// The store's migration history.
    pub history: Vec<Recorded>,
}

impl TenantRows {
    /// The newest migration recorded (0: none).
    pub fn schema_version(&self) -> u32 {
        self.history.iter().map(|r| r.version).max().unwrap_or(0)
    }
}

/// A project's database.
pub trait Backend: Sync {
    /// The stores migrations go to (every tenant's, or the shared one).
    fn stores(&self) -> Result<Vec<Store>, String>;
    /// The stores `apply` goes to: the extension applies to every tenant
    /// schema at once, files and databases one at a time.
    fn apply_stores(&self) -> Result<Vec<Store>, String>;
    /// Registered tenants, oldest first.
    fn tenants(&self) -> Result<Vec<Tenant>, String>;
    /// Registers a tenant and creates its store, empty (no policy yet).
    fn create_tenant(&self, id: Uuid, name: &str) -> Result<Store, String>;
    /// Completes `create_tenant` once the store has its policy and
    /// migrations (`ok`), or removes what it created; the final store.
    fn finish_create(&self, id: Uuid, store: &Store, ok: bool) -> Result<Store, String> {
        if !ok {
            self.drop_tenant(id)?;
        }
        Ok(store.clone())
    }
    /// Removes a tenant: its schema, file or database (in `none` and
    /// `row_level` mode, its registry row; its rows stay).
    fn drop_tenant(&self, id: Uuid) -> Result<(), String>;
    /// One worker's connection.
    fn session(&self) -> Result<Box<dyn Session + '_>, String>;
    /// How many sessions run at once.
    fn parallelism(&self) -> usize;
    /// Every store's recorded migrations in one go, where the backend can
    /// read them so (without locks: a store that looks up to date here is
    /// skipped, any other is migrated under its lock as usual). `None`:
    /// read them store by store.
    fn histories(&self, _stores: &[Store]) -> Option<Result<Vec<Vec<Recorded>>, String>> {
        None
    }
    /// The tenant's rows of every table that holds them, in one snapshot.
    fn export_tenant(&self, id: Uuid) -> Result<TenantRows, String>;
    /// Replaces a registered tenant's rows with `rows`, all or nothing,
    /// and checks what was written before the commit (against the file's
    /// `checksum` where the engine stores the file's values as they are).
    fn import_tenant(&self, id: Uuid, rows: &TenantRows, checksum: &str) -> Result<(), String>;
    /// Holds a tenant while it moves: no context of it can be set (a
    /// retryable error) but the mover's own. Where the tenant has its own
    /// store (a file or database), that store must exist.
    fn hold_tenant(&self, id: Uuid) -> Result<(), String>;
    /// Ends a hold (nothing when there is none, or no store any more).
    fn release_tenant(&self, id: Uuid) -> Result<(), String>;
    /// Makes every row of a single-tenant store tenant `id`'s under the
    /// `row_level` policy `source` (SQLite), and registers the tenant; the
    /// rows per table.
    fn adopt_tenant(&self, id: Uuid, _source: &str) -> Result<Vec<(String, u64)>, String> {
        Err(format!(
            "error: `dnr tenants adopt {id}` turns a single-tenant SQLite app into a tenant; this project is not one (set `backend = \"sqlite\"`, `tenant_mode = \"row_level\"`)"
        ))
    }
    /// Deletes every row of the tenant and the tenant itself, in one
    /// transaction; the rows deleted per table.
    fn erase_tenant(&self, id: Uuid) -> Result<Vec<(String, u64)>, String>;
    /// The evaluator's answer under `context`, as the database gives it.
    fn explain(
        &self,
        store: &Store,
        context: &dnr_core::TenantContext,
        entity: &str,
        op: &str,
        row: &str,
    ) -> Result<String, String>;
}

/// One connection, doing one store's work at a time. A transaction is
/// open between `begin` and `commit`/`rollback`.
pub trait Session {
    /// Starts a transaction on `store` and takes its migration lock: a
    /// concurrent run waits here.
    fn begin(&mut self, store: &Store) -> Result<(), String>;
    /// The migrations the store recorded, by version.
    fn recorded(&mut self) -> Result<Vec<Recorded>, String>;
    /// Runs one migration's SQL.
    fn run(&mut self, migration: &Migration) -> Result<(), String>;
    /// Runs several migrations' SQL, in order, in the open transaction.
    fn run_all(&mut self, migrations: &[&Migration]) -> Result<(), String> {
        migrations
            .iter()
            .try_for_each(|migration| self.run(migration))
    }
    /// Records it, in the same transaction.
    fn record(&mut self, migration: &Migration, took: Duration) -> Result<(), String>;
    fn commit(&mut self) -> Result<(), String>;
    fn rollback(&mut self) -> Result<(), String>;
    /// Applies a policy to the store (in its own transaction).
    fn apply(&mut self, store: &Store, policy: &Policy) -> Result<String, String>;
    /// Closes any connection the session holds open.
    fn release(&mut self);
    /// The store's applied policy.
    fn applied_policy(&mut self, store: &Store) -> Result<AppliedPolicy, String>;
}

/// The project's backend.
pub fn open(project: &Project) -> Result<Box<dyn Backend>, String> {
    match project.database.backend {
        BackendKind::Sqlite => Ok(Box::new(sqlite::SqliteBackend::new(project))),
        BackendKind::Postgres => Ok(Box::new(postgres::PostgresBackend::new(project)?)),
    }
}

/// Runs `work` on every store with up to `backend.parallelism()` sessions
/// at once; `done` sees each result as it comes. Results are in store
/// order.
pub fn run_parallel<T, W, D>(
    backend: &dyn Backend,
    stores: &[Store],
    work: W,
    done: D,
) -> Vec<Result<T, String>>
where
    T: Send,
    W: Fn(&mut dyn Session, &Store) -> Result<T, String> + Sync,
    D: Fn(&Store, &Result<T, String>) + Sync,
{
    if stores.is_empty() {
        return Vec::new();
    }
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<Result<T, String>>>> =
        Mutex::new((0..stores.len()).map(|_| None).collect());
    let workers = backend.parallelism().clamp(1, stores.len());
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| {
                let mut session = backend.session();
                loop {
                    let index = next.fetch_add(1, Ordering::Relaxed);
                    let Some(store) = stores.get(index) else {
                        break;
                    };
                    let result = match &mut session {
                        Ok(session) => work(session.as_mut(), store),
                        Err(error) => Err(error.clone()),
                    };
                    done(store, &result);
                    if let Ok(mut results) = results.lock() {
                        if let Some(slot) = results.get_mut(index) {
                            *slot = Some(result);
                        }
                    }
                }
            });
        }
    });
    results
        .into_inner()
        .unwrap_or_default()
        .into_iter()
        .map(|result| result.unwrap_or_else(|| Err("not run".into())))
        .collect()
}

/// How `explain` prints a decision.
pub fn render_decision(allowed: bool, reason: &str) -> String {
    format!("{}: {reason}", if allowed { "allowed" } else { "refused" })
}
