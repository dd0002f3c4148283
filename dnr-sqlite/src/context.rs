//! How long a context lasts and where it may be used. A context set in SQL
//! lasts for its transaction, as PostgreSQL's setters do, so a pooled
//! connection never hands one request's tenant to the next; a database
//! that belongs to one tenant (database mode) takes no context of another.

use std::ffi::{c_int, c_void};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

use dnr_core::compile::quote::{ident, literal};
use dnr_core::compile::sqlite::META_TABLE;
use dnr_core::TenantContext;
use uuid::Uuid;

use crate::raw::{Db, Value};
use crate::{ffi, state_ptr, Error, Internal, State};

/// The key of `_dnr_meta` naming the tenant a database belongs to.
const TENANT_KEY: &str = "tenant";

/// Counts every transaction the connection ends, for the
/// transaction-local contexts.
///
/// # Safety
/// `db` must be an open connection, and `state` must live as long as it
/// (the registered functions and module keep it).
pub(crate) unsafe fn install_hooks(db: Db, state: &Arc<State>) {
    let data = state_ptr(state);
    // SAFETY: per this function's contract.
    unsafe {
        ffi::sqlite3_commit_hook(db.as_ptr(), Some(committing), data);
        ffi::sqlite3_rollback_hook(db.as_ptr(), Some(rolled_back), data);
    }
}

unsafe extern "C" fn committing(data: *mut c_void) -> c_int {
    // SAFETY: `data` is the live state the hook was installed with.
    let _ = catch_unwind(AssertUnwindSafe(|| unsafe {
        (*data.cast::<State>()).end_transaction()
    }));
    0 // let the commit go on
}

unsafe extern "C" fn rolled_back(data: *mut c_void) {
    // SAFETY: as for `committing`.
    let _ = catch_unwind(AssertUnwindSafe(|| unsafe {
        (*data.cast::<State>()).end_transaction()
    }));
}

/// Sets `ctx` for the transaction open now (the one this statement runs
/// in, autocommit or explicit). The temp database is written first, so
/// that a transaction that writes nothing else still ends through the
/// commit hook (SQLite calls it only for write transactions).
pub(crate) fn set_local(db: Db, state: &State, ctx: TenantContext) -> Result<(), Error> {
    admit(db, state, &ctx)?;
    {
        let _internal = Internal::enter(state);
        let version = match db.query("PRAGMA temp.user_version", &[])?.first() {
            Some(row) => match row.first() {
                Some(Value::Integer(n)) => *n,
                _ => 0,
            },
            None => 0,
        };
        db.exec_one(&format!("PRAGMA temp.user_version = {version}"))?;
    }
    let transaction = state.transactions_ended();
    state.current(db.as_ptr()).set_local(ctx, transaction);
    Ok(())
}

/// Sets `ctx` for the session, until changed.
pub(crate) fn set_session(db: Db, state: &State, ctx: TenantContext) -> Result<(), Error> {
    admit(db, state, &ctx)?;
    state.lock().set_context(ctx);
    Ok(())
}

/// Refuses a context naming another tenant than the one this database
/// belongs to (database mode: one file per tenant), or a tenant being
/// moved (held).
fn admit(db: Db, state: &State, ctx: &TenantContext) -> Result<(), Error> {
    let Some(tenant) = ctx.tenant else {
        return Ok(());
    };
    if let Some(owner) = database_tenant(db, state)?.filter(|owner| *owner != tenant) {
        return Err(Error::new(format!(
            "dnr: this database belongs to tenant {owner}: a context of tenant {tenant} is refused"
        )));
    }
    if meta(db, state, &held_key(tenant))?.is_some() {
        return Err(Error::new(format!(
            "dnr: tenant {tenant} is moving: its context cannot be set until the move ends; retry in a moment"
        )));
    }
    Ok(())
}

fn held_key(tenant: Uuid) -> String {
    format!("held:{}", tenant.hyphenated())
}

/// A value of `_dnr_meta`, if the table and the key exist.
fn meta(db: Db, state: &State, key: &str) -> Result<Option<Value>, Error> {
    let _internal = Internal::enter(state);
    let exists = db.query(
        "SELECT 1 FROM main.sqlite_master WHERE type = 'table' AND name = ?1",
        &[META_TABLE],
    )?;
    if exists.is_empty() {
        return Ok(None);
    }
    let rows = db.query(
        &format!(
            "SELECT value FROM main.{} WHERE key = ?1",
            ident(META_TABLE)
        ),
        &[key],
    )?;
    Ok(rows
        .into_iter()
        .next()
        .and_then(|row| row.into_iter().next()))
}

/// Holds `tenant` while it moves: a context of it is refused on every
/// connection to this database until [`release_tenant`].
pub(crate) fn hold_tenant(db: Db, state: &State, tenant: Uuid) -> Result<(), Error> {
    let _internal = Internal::enter(state);
    db.exec(&format!(
        "CREATE TABLE IF NOT EXISTS main.{meta} (key TEXT PRIMARY KEY, value TEXT NOT NULL);\
         INSERT OR IGNORE INTO main.{meta} (key, value) VALUES ({key}, 'moving');",
        meta = ident(META_TABLE),
        key = literal(&held_key(tenant)),
    ))
}

/// Ends a hold; whether there was one.
pub(crate) fn release_tenant(db: Db, state: &State, tenant: Uuid) -> Result<bool, Error> {
    if meta(db, state, &held_key(tenant))?.is_none() {
        return Ok(false);
    }
    let _internal = Internal::enter(state);
    db.exec_one(&format!(
        "DELETE FROM main.{} WHERE key = {}",
        ident(META_TABLE),
        literal(&held_key(tenant))
    ))?;
    Ok(true)
}

/// The tenant this database belongs to, if it is one tenant's.
pub(crate) fn database_tenant(db: Db, state: &State) -> Result<Option<Uuid>, Error> {
    match meta(db, state, TENANT_KEY)?.as_ref() {
        None => Ok(None),
        Some(Value::Text(text)) => Uuid::parse_str(text).map(Some).map_err(|_| {
            Error::new(format!(
                "dnr: {META_TABLE} names the database's tenant as `{text}`, not a uuid: the file is damaged or forged"
            ))
        }),
        Some(_) => Err(Error::new(format!(
            "dnr: {META_TABLE} names the database's tenant with a value that is not text: the file is damaged or forged"
        ))),
    }
}

/// Records that this database belongs to `tenant` (database mode); a
/// database that already belongs to another tenant is refused. The
/// context set now, if any, must be the tenant's.
pub(crate) fn bind_tenant(db: Db, state: &State, tenant: Uuid) -> Result<(), Error> {
    match database_tenant(db, state)? {
        Some(owner) if owner == tenant => return Ok(()),
        Some(owner) => {
            return Err(Error::new(format!(
                "dnr: this database belongs to tenant {owner}, not {tenant}"
            )))
        }
        None => {}
    }
    if let Some(current) = state.current(db.as_ptr()).ctx.tenant {
        if current != tenant {
            return Err(Error::new(format!(
                "dnr: the context names tenant {current}: it cannot mark the database as tenant {tenant}'s"
            )));
        }
    }
    let _internal = Internal::enter(state);
    db.exec(&format!(
        "CREATE TABLE IF NOT EXISTS main.{meta} (key TEXT PRIMARY KEY, value TEXT NOT NULL);\
         INSERT INTO main.{meta} (key, value) VALUES ({key}, {value});",
        meta = ident(META_TABLE),
        key = literal(TENANT_KEY),
        value = literal(&tenant.hyphenated().to_string()),
    ))
}
