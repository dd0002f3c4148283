//! DNR's SQLite adapter, written once against SQLite's C API and shared by
//! the loadable extension (`.load ./libdnr`), the `dnr` command's demo and
//! the WASM package.
//!
//! A host opens a connection, calls [`register`] with its raw handle, and
//! gets the SQL functions of the contract (`dnr_set_context`, `dnr_apply`,
//! `dnr_lock`, ...) plus a [`Dnr`] handle for doing the same from Rust. The
//! policy logic itself lives in `dnr-core`: this crate introspects the
//! database, runs the SQL the core compiles, and keeps the per-connection
//! context that the compiled views and triggers read.
//!
//! `libsqlite3-sys` is used without features of its own: the final binary
//! picks `loadable_extension` (the extension, where every call goes through
//! the host's API table) or `bundled`.

use std::ffi::c_void;
use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};

#[cfg(not(all(target_family = "wasm", target_os = "unknown")))]
pub use libsqlite3_sys as ffi;
/// In the browser and Node, the SQLite that rusqlite embeds (dnr-wasm).
#[cfg(all(target_family = "wasm", target_os = "unknown"))]
pub use sqlite_wasm_rs as ffi;

mod authorizer;
mod connection;
mod functions;
mod migrate;
mod policy;
pub mod raw;
mod rewrite;
#[cfg(not(all(target_family = "wasm", target_os = "unknown")))]
mod signed;
pub mod tokens;
mod vtab;

use dnr_core::TenantContext;
use raw::Db;

pub use connection::{Connection, Rows};
pub use raw::Value;
pub use rewrite::{Plan, Rewritten};

/// Every error DNR's SQLite side reports; the message is what SQL sees.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    message: String,
    /// SQLite's primary result code when SQLite reported the error (a
    /// refusal raised by DNR's triggers is SQLITE_CONSTRAINT).
    code: Option<i32>,
}

impl Error {
    pub fn new(message: impl Into<String>) -> Error {
        Error {
            message: message.into(),
            code: None,
        }
    }

    pub(crate) fn sqlite(message: impl Into<String>, code: i32) -> Error {
        Error {
            message: message.into(),
            code: Some(code & 0xff),
        }
    }

    pub fn message(&self) -> &str {
        &self.message
    }

    /// SQLite's primary result code, when SQLite reported the error.
    pub fn code(&self) -> Option<i32> {
        self.code
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {}

/// Per-connection state: the context policies read, the lock, and caches.
pub(crate) struct State {
    inner: Mutex<Inner>,
    /// Depth of DNR's own statements in progress: the authorizer lets them
    /// through. Outside the mutex: a locked table's cursor marks every step
    /// (SQLite may compile its statement again there), so this is on the
    /// path of every row it reads.
    internal: AtomicUsize,
}

#[derive(Default)]
pub(crate) struct Inner {
    pub ctx: TenantContext,
    /// The context's ids as SQL sees them (canonical lowercase, hyphenated).
    pub tenant_text: Option<String>,
    pub user_text: Option<String>,
    pub locked: bool,
    /// The enforced names are served by TEMP virtual tables (as on a locked
    /// connection) whose writes SQLite counts in `changes()` and
    /// `last_insert_rowid()`, which ORMs rely on: `dnr_count_changes()`.
    pub counted: bool,
    /// The storage rowid of the last row an insert trigger stored
    /// (`dnr_note_rowid`), for the virtual tables' `last_insert_rowid()`.
    pub stored_rowid: Option<i64>,
    /// How the statement running now writes to storage: set by the host
    /// around a statement the rewriter produced, read by the storage
    /// triggers (`dnr_guarded`, `dnr_upsert`).
    pub write_mode: WriteMode,
    /// The storage tables of the rewritten statement being prepared or run,
    /// if any: the lock lets it through there.
    pub rewriting: Option<rewrite::StorageAccess>,
    /// Names the authorizer protects once locked.
    pub guard: authorizer::Guard,
    /// The last policy source read from `_dnr_meta`, parsed.
    pub policies: Option<(String, Arc<dnr_core::PolicySet>)>,
    /// The enforced tables as the rewriter sees them, and its plans by
    /// statement text: built on first use, dropped by every apply or
    /// migration through this connection.
    pub rewriter: Option<Arc<Rewriter>>,
    /// Signing keys, signed-only mode and verified tokens (not in the
    /// browser build: it has no clock here and does not carry the crypto).
    #[cfg(not(all(target_family = "wasm", target_os = "unknown")))]
    pub signed: signed::Signed,
}

/// Plans made for this connection's statements.
pub(crate) struct Rewriter {
    tables: std::collections::BTreeMap<String, rewrite::TableInfo>,
    plans: Mutex<std::collections::HashMap<String, Plan>>,
}

/// Statements whose plan a connection remembers (apps repeat a few).
const PLAN_CACHE: usize = 512;

/// What the statement being run may do on a conflict, which the storage
/// triggers must know and cannot see.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WriteMode {
    /// No conflict of this statement can replace a row (it aborts, ignores
    /// or upserts), so the triggers need not guard the unique keys against
    /// a REPLACE deleting a row the writer may not overwrite. False (every
    /// key guarded) for any SQL but the rewriter's.
    pub cannot_replace: bool,
    /// The statement is an upsert: its DO UPDATE on a row the context may
    /// not update is an error, not a silent skip.
    pub upsert: bool,
}

impl Inner {
    /// Whether the enforced names are served by TEMP virtual tables.
    pub fn serves_tables(&self) -> bool {
        self.locked || self.counted
    }

    /// Whether only a signed token may change the context from SQL.
    pub fn signed_only(&self) -> bool {
        #[cfg(not(all(target_family = "wasm", target_os = "unknown")))]
        return self.signed.required;
        #[cfg(all(target_family = "wasm", target_os = "unknown"))]
        return false;
    }

    pub fn set_context(&mut self, ctx: TenantContext) {
        self.tenant_text = ctx.tenant.map(|u| u.hyphenated().to_string());
        self.user_text = ctx.user.map(|u| u.hyphenated().to_string());
        self.ctx = ctx;
    }
}

impl State {
    pub fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Whether one of DNR's own statements is in progress.
    pub fn internal(&self) -> bool {
        self.internal.load(Ordering::SeqCst) > 0
    }
}

/// Marks DNR's own statements for the authorizer while alive.
pub(crate) struct Internal<'a> {
    state: &'a State,
}

impl<'a> Internal<'a> {
    pub fn enter(state: &'a State) -> Internal<'a> {
        state.internal.fetch_add(1, Ordering::SeqCst);
        Internal { state }
    }
}

impl Drop for Internal<'_> {
    fn drop(&mut self) {
        // Paired with `enter`: never below zero.
        self.state.internal.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Marks one rewritten statement while it is prepared and run: its write
/// mode for the storage triggers, and its target for the lock, which lets
/// the statement write that storage table (and DNR's triggers read theirs)
/// and judges everything else in it as any SQL. Restores the previous state
/// when dropped, also on an error.
struct RewrittenScope<'a> {
    state: &'a State,
    previous: (WriteMode, Option<rewrite::StorageAccess>),
}

impl<'a> RewrittenScope<'a> {
    fn enter(state: &'a State, rewritten: &Rewritten) -> RewrittenScope<'a> {
        let mut inner = state.lock();
        let previous = (
            std::mem::replace(&mut inner.write_mode, rewritten.mode),
            inner.rewriting.replace(rewritten.access.clone()),
        );
        RewrittenScope { state, previous }
    }
}

impl Drop for RewrittenScope<'_> {
    fn drop(&mut self) {
        let mut inner = self.state.lock();
        inner.write_mode = self.previous.0;
        inner.rewriting = self.previous.1.take();
    }
}

/// Connections with DNR registered, so that loading the extension twice on
/// one connection keeps its context and its lock.
static REGISTRY: Mutex<Vec<(usize, Weak<State>)>> = Mutex::new(Vec::new());

fn state_for(db: *mut ffi::sqlite3) -> Arc<State> {
    let mut registry = REGISTRY
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    registry.retain(|(_, weak)| weak.strong_count() > 0);
    let key = db as usize;
    if let Some(state) = registry
        .iter()
        .find(|(k, _)| *k == key)
        .and_then(|(_, weak)| weak.upgrade())
    {
        return state;
    }
    let state = Arc::new(State {
        inner: Mutex::new(Inner::default()),
        internal: AtomicUsize::new(0),
    });
    registry.push((key, Arc::downgrade(&state)));
    state
}

/// Registers DNR's SQL functions on a connection and returns a handle for
/// doing the same from Rust.
///
/// # Safety
/// `db` must be an open connection. The returned handle must not be used
/// after the connection is closed.
pub unsafe fn register(db: *mut ffi::sqlite3) -> Result<Dnr, Error> {
    if db.is_null() {
        return Err(Error::new("dnr: no database connection"));
    }
    // SAFETY: per this function's contract.
    let db = unsafe { Db::from_raw(db) };
    let state = state_for(db.as_ptr());
    // SAFETY: the connection is open; the functions keep `state` alive.
    unsafe { functions::register(db, &state)? };
    // SAFETY: as above; the module's client data keeps `state` alive.
    unsafe { vtab::register(db, &state)? };
    Ok(Dnr { db, state })
}

/// DNR on one connection, for hosts that drive it from Rust (the `dnr`
/// command, the WASM package). Everything here is also reachable from SQL,
/// except that [`Dnr::set_context`] works on a locked connection: the host
/// is trusted, the SQL it runs is not.
pub struct Dnr {
    db: Db,
    state: Arc<State>,
}

impl Dnr {
    /// Sets the context policies read, whether or not the connection is
    /// locked (a trusted host call, unlike `dnr_set_context`).
    pub fn set_context(&self, ctx: TenantContext) {
        self.state.lock().set_context(ctx);
    }

    pub fn context(&self) -> TenantContext {
        self.state.lock().ctx.clone()
    }

    /// Installs the keys signed tokens are verified with (see
    /// `dnr_core::signed::KeySet::parse` for their text form), replacing
    /// any earlier ones.
    #[cfg(not(all(target_family = "wasm", target_os = "unknown")))]
    pub fn set_signing_keys(&self, keys: dnr_core::signed::KeySet) {
        self.state.lock().signed.set_keys(keys);
    }

    /// How tokens are checked beyond their signature (audience, issuer,
    /// leeway, claim names).
    #[cfg(not(all(target_family = "wasm", target_os = "unknown")))]
    pub fn set_verify_options(&self, options: dnr_core::signed::VerifyOptions) {
        self.state.lock().signed.set_options(options);
    }

    /// Signed-only mode, for good: SQL can change the context only with
    /// `dnr_set_context_signed(token)` (which a locked connection then
    /// accepts); the unsigned SQL setters refuse. The host's own
    /// [`Dnr::set_context`] keeps working.
    #[cfg(not(all(target_family = "wasm", target_os = "unknown")))]
    pub fn require_signed(&self) {
        self.state.lock().signed.required = true;
    }

    /// Verifies `token` and sets the context its claims give (the context
    /// is unchanged when it is refused); returns that context.
    #[cfg(not(all(target_family = "wasm", target_os = "unknown")))]
    pub fn set_context_signed(&self, token: &str) -> Result<TenantContext, Error> {
        let mut inner = self.state.lock();
        let ctx = inner.signed.context(token)?;
        inner.set_context(ctx.clone());
        Ok(ctx)
    }

    /// Enforces `source` on the database, all or nothing; returns a summary.
    pub fn apply(&self, source: &str) -> Result<String, Error> {
        policy::apply(self.db, &self.state, source)
    }

    /// The policy source last applied to this database, if any.
    pub fn applied_source(&self) -> Result<Option<String>, Error> {
        Ok(policy::recorded(self.db, &self.state)?.map(|(source, _)| source))
    }

    /// The SQL [`Dnr::apply`] would run now (a dry run).
    pub fn compile(&self, source: &str) -> Result<String, Error> {
        policy::compile(self.db, &self.state, source)
    }

    /// The evaluator's answer for one JSON record under the current context
    /// and the policies applied to this database.
    pub fn check(&self, entity: &str, op: &str, record_json: &str) -> Result<bool, Error> {
        Ok(self.decide(entity, op, record_json)?.allowed)
    }

    /// [`Dnr::check`] with the reason: the rule (or fence) that decided.
    /// `exists` rules look through this database's rows.
    pub fn decide(
        &self,
        entity: &str,
        op: &str,
        record_json: &str,
    ) -> Result<dnr_core::Decision, Error> {
        policy::check(self.db, &self.state, entity, op, record_json)
    }

    /// Runs a schema migration (`ALTER TABLE`, `CREATE/DROP INDEX`, ...)
    /// that may touch enforced tables, all or nothing, and enforces the
    /// applied policies again over the new columns: see `dnr_migrate()`.
    pub fn migrate(&self, sql: &str) -> Result<String, Error> {
        migrate::migrate(self.db, &self.state, sql)
    }

    /// How to run `sql` here: as written, rewritten onto storage (a write
    /// on an enforced table: see [`Dnr::run_rewritten`]) or as a migration
    /// (a schema change on one). Plans are remembered per statement text.
    pub fn plan(&self, sql: &str) -> Result<Plan, Error> {
        let rewriter = self.rewriter()?;
        if let Some(plan) = rewriter
            .plans
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(sql)
        {
            return Ok(plan.clone());
        }
        let plan = rewrite::plan(sql, &rewriter.tables)?;
        let mut plans = rewriter.plans.lock().unwrap_or_else(|p| p.into_inner());
        if plans.len() >= PLAN_CACHE {
            plans.clear();
        }
        plans.insert(sql.to_string(), plan.clone());
        Ok(plan)
    }

    /// Runs a statement planned as [`Plan::Migrate`]: as a migration on an
    /// unlocked connection; refused on a locked one, whose SQL may not
    /// change enforced tables (its host migrates with [`Dnr::migrate`]).
    pub fn migrate_statement(&self, sql: &str) -> Result<String, Error> {
        if self.is_locked() {
            return Err(Error::new(
                "dnr: a schema change on an enforced table is a migration, and this connection is locked: the host runs it (Database.migrate in the npm package, Dnr::migrate in Rust)",
            ));
        }
        self.migrate(sql)
    }

    /// Runs `run` — which prepares and steps `rewritten.sql` — as DNR's own
    /// statement (it names storage, which the lock refuses to other SQL)
    /// with the write mode the storage triggers need for it.
    pub fn run_rewritten<T>(&self, rewritten: &Rewritten, run: impl FnOnce(&str) -> T) -> T {
        let _scope = RewrittenScope::enter(&self.state, rewritten);
        run(&rewritten.sql)
    }

    fn rewriter(&self) -> Result<Arc<Rewriter>, Error> {
        if let Some(rewriter) = &self.state.lock().rewriter {
            return Ok(Arc::clone(rewriter));
        }
        let tables = match policy::recorded(self.db, &self.state)? {
            Some((_, set)) => policy::rewrite_tables(self.db, &self.state, &set)?,
            None => Default::default(),
        };
        let rewriter = Arc::new(Rewriter {
            tables,
            plans: Mutex::new(Default::default()),
        });
        self.state.lock().rewriter = Some(Arc::clone(&rewriter));
        Ok(rewriter)
    }

    /// Locks the connection: see `dnr_lock()`.
    pub fn lock(&self) -> Result<(), Error> {
        authorizer::lock(self.db, &self.state)
    }

    pub(crate) fn serves_tables(&self) -> bool {
        self.state.lock().serves_tables()
    }

    /// Drops a locked connection's tables (and their kept statements), as
    /// a connection about to close must.
    pub(crate) fn drop_locked_tables(&self) -> Result<(), Error> {
        let _internal = Internal::enter(&self.state);
        authorizer::drop_locked_tables(self.db)
    }

    /// Serves this connection's enforced names by TEMP virtual tables
    /// (now, and after every apply or migration through it), so that writes
    /// are counted by `changes()` and set `last_insert_rowid()` as an ORM
    /// expects: see `dnr_count_changes()`.
    pub fn count_changes(&self) -> Result<(), Error> {
        count_changes(self.db, &self.state)
    }

    /// Whether `name` is an enforced table on this connection.
    pub fn is_enforced(&self, name: &str) -> bool {
        self.state
            .lock()
            .guard
            .enforced
            .contains(&name.to_ascii_lowercase())
    }

    pub fn is_locked(&self) -> bool {
        self.state.lock().locked
    }
}

pub(crate) fn count_changes(db: Db, state: &State) -> Result<(), Error> {
    state.lock().counted = true;
    authorizer::refresh(db, state)
}

pub(crate) fn state_ptr(state: &Arc<State>) -> *mut c_void {
    Arc::as_ptr(state).cast_mut().cast()
}
