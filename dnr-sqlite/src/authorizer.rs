//! `dnr_lock()`: from then on the connection runs untrusted SQL. The context
//! setters refuse, and an authorizer refuses every statement that could reach
//! a storage table other than through DNR's own views and triggers, change
//! enforced objects, or step around the authorizer itself.

use std::collections::BTreeSet;
use std::ffi::{c_char, c_int, c_void};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

use crate::raw::{cstr, Db, Value};
use crate::{ffi, functions, Error, Internal, State};

/// What the authorizer protects: the enforced tables by lowercase name (the
/// view's name; its storage table is `_dnr_<name>`). Every `_dnr_*` object
/// is protected by its name alone, so a table enforced later by another
/// connection is covered too; the view names are refreshed on lock and on
/// every apply through this connection.
#[derive(Debug, Default, Clone)]
pub(crate) struct Guard {
    pub enforced: BTreeSet<String>,
}

const PREFIX: &str = "_dnr_";

fn is_dnr(name: &str) -> bool {
    name.len() >= PREFIX.len()
        && name.as_bytes()[..PREFIX.len()].eq_ignore_ascii_case(PREFIX.as_bytes())
}

/// Reads the enforced tables: storage tables with a view of the bare name.
fn enforced(db: Db) -> Result<BTreeSet<String>, Error> {
    let rows = db.query(
        "SELECT s.name FROM main.sqlite_master AS s JOIN main.sqlite_master AS v \
         ON v.type = 'view' AND lower('_dnr_' || v.name) = lower(s.name) \
         WHERE s.type = 'table' AND s.name LIKE '\\_dnr\\_%' ESCAPE '\\'",
        &[],
    )?;
    Ok(rows
        .into_iter()
        .filter_map(|row| match row.into_iter().next() {
            Some(Value::Text(name)) => name.get(PREFIX.len()..).map(|n| n.to_ascii_lowercase()),
            _ => None,
        })
        .collect())
}

pub(crate) fn refresh(db: Db, state: &State) -> Result<(), Error> {
    let names = {
        let _mutex = db.lock_mutex();
        let _internal = Internal::enter(state);
        enforced(db)?
    };
    state.lock().guard.enforced = names;
    Ok(())
}

pub(crate) fn lock(db: Db, state: &Arc<State>) -> Result<(), Error> {
    refresh(db, state)?;
    db.set_defensive()?;
    // SAFETY: the authorizer's data is the state, which lives as long as any
    // of the connection's DNR functions, that is until the connection closes;
    // SQLite calls no authorizer after that.
    unsafe { db.set_authorizer(Some(authorize), crate::state_ptr(state))? };
    state.lock().locked = true;
    Ok(())
}

unsafe extern "C" fn authorize(
    data: *mut c_void,
    action: c_int,
    a1: *const c_char,
    a2: *const c_char,
    db_name: *const c_char,
    inner: *const c_char,
) -> c_int {
    let allowed = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: `data` is the state installed by `lock`; the strings are
        // NUL-terminated or NULL and live for this call.
        let (state, a1, a2, db_name, inner) = unsafe {
            (
                &*data.cast::<State>(),
                cstr(a1),
                cstr(a2),
                cstr(db_name),
                cstr(inner),
            )
        };
        let guard = {
            let state = state.lock();
            if state.internal > 0 || !state.locked {
                return true;
            }
            state.guard.clone()
        };
        decide(&guard, action, a1, a2, db_name, inner)
    }));
    if allowed.unwrap_or(false) {
        ffi::SQLITE_OK as c_int
    } else {
        ffi::SQLITE_DENY as c_int
    }
}

fn eq(a: Option<&str>, b: &str) -> bool {
    a.is_some_and(|a| a.eq_ignore_ascii_case(b))
}

/// Whether `inner` (the innermost trigger or view) is DNR's own object for
/// storage table `table`, and so may read it (`write` false) or write it.
fn own_object(table: &str, inner: Option<&str>, write: bool) -> bool {
    let Some(base) = table.get(PREFIX.len()..) else {
        return false;
    };
    if base.eq_ignore_ascii_case("meta") {
        return false;
    }
    let Some(inner) = inner else { return false };
    let trigger = ["insert", "update", "delete"]
        .iter()
        .any(|op| inner.eq_ignore_ascii_case(&format!("{table}_{op}")));
    trigger || (!write && inner.eq_ignore_ascii_case(base))
}

/// Names no untrusted statement may create or shadow: DNR's prefix and the
/// enforced tables' names.
fn reserved(guard: &Guard, name: Option<&str>) -> bool {
    name.is_some_and(|n| is_dnr(n) || guard.enforced.contains(&n.to_ascii_lowercase()))
}

/// Tables whose contents no untrusted statement may read directly, whatever
/// the storage: raw pages, and index samples that hold other tenants' keys.
const RAW_TABLES: &[&str] = &["sqlite_dbpage", "sqlite_stat3", "sqlite_stat4"];

const PRAGMAS: &[&str] = &[
    "writable_schema",
    "schema_version",
    "legacy_alter_table",
    "trusted_schema",
    "temp_store_directory",
    "data_store_directory",
];

pub(crate) fn decide(
    guard: &Guard,
    action: c_int,
    a1: Option<&str>,
    a2: Option<&str>,
    _db_name: Option<&str>,
    inner: Option<&str>,
) -> bool {
    let code = |c: i64| i64::from(action) == c;
    let protected = |name: Option<&str>| reserved(guard, name);
    if code(ffi::SQLITE_READ as i64) {
        let table = a1.unwrap_or("");
        if is_dnr(table) {
            return own_object(table, inner, false);
        }
        return !RAW_TABLES.iter().any(|t| table.eq_ignore_ascii_case(t));
    }
    if code(ffi::SQLITE_INSERT as i64)
        || code(ffi::SQLITE_UPDATE as i64)
        || code(ffi::SQLITE_DELETE as i64)
    {
        let table = a1.unwrap_or("");
        if is_dnr(table) {
            return own_object(table, inner, true);
        }
        return !eq(a1, "sqlite_dbpage");
    }
    if code(ffi::SQLITE_FUNCTION as i64) {
        let name = a2.unwrap_or("");
        return !functions::SETTERS
            .iter()
            .chain(&["load_extension"])
            .any(|f| name.eq_ignore_ascii_case(f));
    }
    if code(ffi::SQLITE_PRAGMA as i64) {
        let name = a1.unwrap_or("");
        return !PRAGMAS.iter().any(|p| name.eq_ignore_ascii_case(p));
    }
    if code(ffi::SQLITE_ATTACH as i64)
        || code(ffi::SQLITE_DETACH as i64)
        || code(ffi::SQLITE_COPY as i64)
    {
        return false;
    }
    // (name, table) pairs: a1 is the object, a2 the table it is on.
    if code(ffi::SQLITE_CREATE_INDEX as i64)
        || code(ffi::SQLITE_CREATE_TEMP_INDEX as i64)
        || code(ffi::SQLITE_DROP_INDEX as i64)
        || code(ffi::SQLITE_DROP_TEMP_INDEX as i64)
        || code(ffi::SQLITE_CREATE_TRIGGER as i64)
        || code(ffi::SQLITE_CREATE_TEMP_TRIGGER as i64)
        || code(ffi::SQLITE_DROP_TRIGGER as i64)
        || code(ffi::SQLITE_DROP_TEMP_TRIGGER as i64)
    {
        return !protected(a1) && !protected(a2);
    }
    if code(ffi::SQLITE_CREATE_TABLE as i64)
        || code(ffi::SQLITE_CREATE_TEMP_TABLE as i64)
        || code(ffi::SQLITE_DROP_TABLE as i64)
        || code(ffi::SQLITE_DROP_TEMP_TABLE as i64)
        || code(ffi::SQLITE_CREATE_VIEW as i64)
        || code(ffi::SQLITE_CREATE_TEMP_VIEW as i64)
        || code(ffi::SQLITE_DROP_VIEW as i64)
        || code(ffi::SQLITE_DROP_TEMP_VIEW as i64)
        || code(ffi::SQLITE_CREATE_VTABLE as i64)
        || code(ffi::SQLITE_DROP_VTABLE as i64)
        || code(ffi::SQLITE_ANALYZE as i64)
    {
        return !protected(a1);
    }
    if code(ffi::SQLITE_ALTER_TABLE as i64) {
        // a1 is the database, a2 the table.
        return !protected(a2);
    }
    // SELECT, RECURSIVE, TRANSACTION, SAVEPOINT, REINDEX.
    true
}
