//! `dnr_lock()`: from then on the connection runs untrusted SQL. The context
//! setters refuse, and an authorizer refuses every statement of the user
//! that reads or writes a storage table or `_dnr_meta` (whatever view or
//! trigger it claims to be in: that name can be forged with a CTE), changes
//! an enforced object, creates a persistent view or trigger (whose body could
//! later run in a trusted connection), or steps around the authorizer
//! (ATTACH, writable_schema, load_extension, raw pages). The enforced names
//! keep working through the TEMP virtual tables of [`crate::vtab`], whose
//! statements are DNR's own and pass.

use std::collections::BTreeSet;
use std::ffi::{c_char, c_int, c_void};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

use dnr_core::compile::quote::ident;

use crate::raw::{cstr, Db, Value};
use crate::rewrite::{StorageAccess, ROWS_CTE};
use crate::{ffi, functions, vtab, Error, Internal, State};

/// What the authorizer protects besides every `_dnr_*` object: the enforced
/// tables' names (lowercase), refreshed on lock and on every apply through
/// this connection.
#[derive(Debug, Default, Clone)]
pub(crate) struct Guard {
    pub enforced: BTreeSet<String>,
}

const PREFIX: &str = "_dnr_";

fn is_dnr(name: &str) -> bool {
    name.len() >= PREFIX.len()
        && name.as_bytes()[..PREFIX.len()].eq_ignore_ascii_case(PREFIX.as_bytes())
}

/// The enforced tables: storage tables with a view of the bare name.
fn enforced(db: Db) -> Result<Vec<String>, Error> {
    let rows = db.query(
        "SELECT v.name FROM main.sqlite_master AS s JOIN main.sqlite_master AS v \
         ON v.type = 'view' AND lower('_dnr_' || v.name) = lower(s.name) \
         WHERE s.type = 'table' AND s.name LIKE '\\_dnr\\_%' ESCAPE '\\' ORDER BY v.name",
        &[],
    )?;
    Ok(rows
        .into_iter()
        .filter_map(|row| match row.into_iter().next() {
            Some(Value::Text(name)) => Some(name),
            _ => None,
        })
        .collect())
}

/// Re-reads the enforced tables; on a locked or counting connection also
/// rebuilds the TEMP tables that stand in for them.
pub(crate) fn refresh(db: Db, state: &State) -> Result<(), Error> {
    let _mutex = db.lock_mutex();
    let _internal = Internal::enter(state);
    let names = enforced(db)?;
    let serves_tables = {
        let mut inner = state.lock();
        inner.guard.enforced = names.iter().map(|n| n.to_ascii_lowercase()).collect();
        inner.rewriter = None;
        inner.serves_tables()
    };
    if serves_tables {
        sync_locked_tables(db, &names)?;
    }
    Ok(())
}

fn sync_locked_tables(db: Db, names: &[String]) -> Result<(), Error> {
    drop_locked_tables(db)?;
    for name in names {
        db.exec(&vtab::create_sql(name))?;
    }
    Ok(())
}

/// Drops the TEMP tables standing in for enforced tables (an apply on a
/// locked connection does this first: they shadow the names it changes;
/// `refresh` builds them again).
pub(crate) fn drop_locked_tables(db: Db) -> Result<(), Error> {
    let existing = db.query(
        "SELECT name FROM temp.sqlite_master WHERE type = 'table' AND sql LIKE 'CREATE VIRTUAL TABLE%dnr\\_locked%' ESCAPE '\\'",
        &[],
    )?;
    for row in existing {
        if let Some(Value::Text(name)) = row.first() {
            db.exec(&format!("DROP TABLE temp.{}", ident(name)))?;
        }
    }
    Ok(())
}

pub(crate) fn lock(db: Db, state: &Arc<State>) -> Result<(), Error> {
    if state.lock().locked {
        return Ok(());
    }
    db.set_defensive()?;
    // SAFETY: the authorizer's data is the state, which lives as long as any
    // of the connection's DNR functions, that is until the connection closes;
    // SQLite calls no authorizer after that.
    unsafe { db.set_authorizer(Some(authorize), crate::state_ptr(state))? };
    state.lock().locked = true;
    refresh(db, state)
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
        if state.internal() {
            return true;
        }
        let guard = {
            let state = state.lock();
            if !state.locked {
                return true;
            }
            if let Some(allowed) = state
                .rewriting
                .as_ref()
                .and_then(|access| rewritten_access(access, action, a1, inner))
            {
                return allowed;
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

/// In a statement the rewriter produced (which names no `_dnr_` object of
/// its own: the rewriter refuses those): access to a storage table is
/// allowed on its target, and reads on the storage its `exists`
/// conditions look through, from the statement's own text only (no view,
/// trigger or CTE around the access: a TEMP view of the user's over
/// storage would otherwise read it through the rewritten statement's
/// rights); anything inside DNR's own triggers on storage is allowed.
/// `None`: not a storage access, judged as any SQL.
fn rewritten_access(
    access: &StorageAccess,
    action: c_int,
    table: Option<&str>,
    inner: Option<&str>,
) -> Option<bool> {
    let is = |code: i32| action == code;
    let touches = [
        ffi::SQLITE_READ,
        ffi::SQLITE_INSERT,
        ffi::SQLITE_UPDATE,
        ffi::SQLITE_DELETE,
    ]
    .iter()
    .any(|&code| is(code));
    let table = table.filter(|t| touches && is_dnr(t))?;
    let lowercase = table.to_ascii_lowercase();
    // The rewritten INSERT's rows CTE holds the user's query: not DNR's.
    let own_trigger = inner.is_some_and(|i| is_dnr(i) && !i.eq_ignore_ascii_case(ROWS_CTE));
    let own_text = inner.is_none()
        && (lowercase == access.target
            || (is(ffi::SQLITE_READ) && access.reads.contains(&lowercase)));
    Some(own_trigger || own_text)
}

/// Names no untrusted statement may create or shadow: DNR's prefix and the
/// enforced tables' names.
fn reserved(guard: &Guard, name: Option<&str>) -> bool {
    name.is_some_and(|n| is_dnr(n) || guard.enforced.contains(&n.to_ascii_lowercase()))
}

/// Tables whose contents no untrusted statement may read directly, whatever
/// the storage: raw pages, and index samples that hold other tenants' keys.
const RAW_TABLES: &[&str] = &["sqlite_dbpage", "sqlite_stat3", "sqlite_stat4", "dbstat"];

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
    _inner: Option<&str>,
) -> bool {
    let code = |c: i64| i64::from(action) == c;
    let protected = |name: Option<&str>| reserved(guard, name);
    if code(ffi::SQLITE_READ as i64) {
        let table = a1.unwrap_or("");
        return !is_dnr(table) && !RAW_TABLES.iter().any(|t| table.eq_ignore_ascii_case(t));
    }
    if code(ffi::SQLITE_INSERT as i64)
        || code(ffi::SQLITE_UPDATE as i64)
        || code(ffi::SQLITE_DELETE as i64)
    {
        let table = a1.unwrap_or("");
        return !is_dnr(table) && !RAW_TABLES.iter().any(|t| table.eq_ignore_ascii_case(t));
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
    // A persistent view or trigger could later run in a trusted connection,
    // where nothing stops its body from reading storage: refused outright.
    // So every persistent view and trigger is trusted code's, and none may
    // be dropped either (an enforced view applied by another connection
    // after this lock is not in this connection's list of names).
    if code(ffi::SQLITE_CREATE_VIEW as i64)
        || code(ffi::SQLITE_CREATE_TRIGGER as i64)
        || code(ffi::SQLITE_DROP_VIEW as i64)
        || code(ffi::SQLITE_DROP_TRIGGER as i64)
    {
        return false;
    }
    if code(ffi::SQLITE_CREATE_VTABLE as i64) || code(ffi::SQLITE_DROP_VTABLE as i64) {
        // a1 is the table, a2 the module.
        let module = a2.unwrap_or("");
        return !protected(a1) && !module.eq_ignore_ascii_case("dnr_locked");
    }
    // (name, table) pairs: a1 is the object, a2 the table it is on.
    if code(ffi::SQLITE_CREATE_INDEX as i64)
        || code(ffi::SQLITE_CREATE_TEMP_INDEX as i64)
        || code(ffi::SQLITE_DROP_INDEX as i64)
        || code(ffi::SQLITE_DROP_TEMP_INDEX as i64)
        || code(ffi::SQLITE_CREATE_TEMP_TRIGGER as i64)
        || code(ffi::SQLITE_DROP_TEMP_TRIGGER as i64)
    {
        return !protected(a1) && !protected(a2);
    }
    if code(ffi::SQLITE_CREATE_TABLE as i64)
        || code(ffi::SQLITE_CREATE_TEMP_TABLE as i64)
        || code(ffi::SQLITE_DROP_TABLE as i64)
        || code(ffi::SQLITE_DROP_TEMP_TABLE as i64)
        || code(ffi::SQLITE_CREATE_TEMP_VIEW as i64)
        || code(ffi::SQLITE_DROP_TEMP_VIEW as i64)
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
