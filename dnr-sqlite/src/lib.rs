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
use std::sync::Arc;

#[cfg(not(all(target_family = "wasm", target_os = "unknown")))]
pub use libsqlite3_sys as ffi;
/// In the browser and Node, the SQLite that rusqlite embeds (dnr-wasm).
#[cfg(all(target_family = "wasm", target_os = "unknown"))]
pub use sqlite_wasm_rs as ffi;

mod authorizer;
mod connection;
mod context;
mod error;
mod front;
mod functions;
mod migrate;
mod policy;
pub mod raw;
mod read;
mod rewrite;
#[cfg(not(all(target_family = "wasm", target_os = "unknown")))]
mod signed;
mod state;
mod tenant;
mod vtab;

use dnr_core::TenantContext;
use raw::Db;

pub use connection::{Connection, Rows};
pub use error::Error;
pub use front::Statements;
pub use raw::Value;
pub use rewrite::{Plan, Rewritten};
pub use state::WriteMode;
pub(crate) use state::{state_for, Internal, State};
pub use tenant::TenantTable;

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
    // SAFETY: as above.
    unsafe { context::install_hooks(db, &state) };
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
    /// Sets the context policies read until it is changed (the host owns
    /// the connection; a context set in SQL lasts for its transaction),
    /// whether or not the connection is locked (a trusted host call, unlike
    /// `dnr_set_context`). A database that belongs to one tenant (see
    /// [`Dnr::bind_tenant`]) refuses a context of another.
    pub fn set_context(&self, ctx: TenantContext) -> Result<(), Error> {
        context::set_session(self.db, &self.state, ctx)
    }

    /// The context policies read now.
    pub fn context(&self) -> TenantContext {
        self.state.current(self.db.as_ptr()).ctx.clone()
    }

    /// Marks this database as tenant `tenant`'s own (database mode: one
    /// file per tenant): from now on a context of another tenant is
    /// refused on every connection to it. Refused when the database is
    /// already another tenant's.
    pub fn bind_tenant(&self, tenant: uuid::Uuid) -> Result<(), Error> {
        context::bind_tenant(self.db, &self.state, tenant)
    }

    /// Holds `tenant` while it moves (`dnr tenants move`): until
    /// [`Dnr::release_tenant`], every setter on every connection to this
    /// database refuses a context of it (a retryable error).
    pub fn hold_tenant(&self, tenant: uuid::Uuid) -> Result<(), Error> {
        context::hold_tenant(self.db, &self.state, tenant)
    }

    /// Ends a hold; whether there was one.
    pub fn release_tenant(&self, tenant: uuid::Uuid) -> Result<bool, Error> {
        context::release_tenant(self.db, &self.state, tenant)
    }

    /// The tenant this database belongs to, when it is one tenant's.
    pub fn database_tenant(&self) -> Result<Option<uuid::Uuid>, Error> {
        context::database_tenant(self.db, &self.state)
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
        let ctx = self.state.lock().signed.context(token)?;
        self.set_context(ctx.clone())?;
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
