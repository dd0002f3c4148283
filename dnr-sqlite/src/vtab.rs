//! The enforced names of a locked connection.
//!
//! SQLite's authorizer names the innermost view or trigger of each access,
//! but that name is whatever the statement's author wrote in its FROM
//! clause: `WITH tasks AS (SELECT * FROM _dnr_tasks) SELECT * FROM tasks`
//! reads storage "inside `tasks`" exactly as the real view does. So a locked
//! connection lets no statement of its user touch a storage table at all.
//! Instead each enforced table gets a TEMP virtual table of the same name
//! (`temp.tasks`, which unqualified names find first) that runs DNR's own
//! statements against the real view `main.tasks`: reads push the query's
//! constraints down to the view (and so to its indexes; a read that uses no
//! column and has no LIMIT counts the rows with one `count(*)` instead of
//! stepping through them), writes become INSERT/UPDATE/DELETE on the view,
//! whose triggers check them. Those statements are DNR's own, prepared
//! while the authorizer lets DNR through.
//!
//! They are prepared once per table and kept (reads per query plan, writes
//! per kind and conflict mode): preparing a write compiles the view's
//! INSTEAD OF trigger, which costs several times what running it does. A
//! kept statement is reset and bound again for every use, and finalized when
//! the table is disconnected or dropped. A schema change needs nothing more:
//! `sqlite3_step` compiles a statement again when the schema it was prepared
//! against has changed (another connection applied other policies), always
//! with DNR marked as running its own statement, and an apply on this
//! connection drops and rebuilds the locked tables, caches and all.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::ffi::{c_char, c_int, c_void, CStr};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::ptr;
use std::rc::Rc;
use std::sync::{Arc, OnceLock};

use dnr_core::compile::quote::ident;
use dnr_core::compile::sqlite::storage_table;

use crate::raw::{self, Db, Stmt, Value};
use crate::{ffi, Error, Internal, State};

pub(crate) const MODULE: &CStr = c"dnr_locked";

#[repr(C)]
struct Table {
    base: ffi::sqlite3_vtab,
    db: Db,
    state: Arc<State>,
    /// The enforced table (the view `main.<name>`).
    name: String,
    columns: Vec<String>,
    /// Columns that identify a row: the storage table's primary key, or all.
    key: Vec<usize>,
    /// Reads by query plan (x_best_index's idxStr), with their prepared
    /// statements, reused across cursors and queries: plain reads, and the
    /// reads of a write (which also select the key columns).
    pool: RefCell<[HashMap<Rc<str>, Reads>; 2]>,
    /// DNR's writes on the view, prepared once per [`Write`] kind and
    /// conflict mode ([`write_slot`]). A statement is taken out while it
    /// runs, so that a nested write on the same table prepares its own.
    writes: [Cell<Option<Stmt>>; WRITE_SLOTS],
    /// Rows handed out with a rowid during a write transaction, by rowid,
    /// so that xUpdate can find them again (the view has no rowid).
    rows: RefCell<HashMap<i64, Vec<Value>>>,
    writing: Cell<bool>,
    next_rowid: Cell<i64>,
}

/// One query plan's read: the statement's SQL and the shape of its result.
#[derive(Clone)]
struct Shape {
    /// The plan (x_best_index's idxStr), the pool's key.
    key: Rc<str>,
    /// Read in a write: the pool it belongs to.
    writing: bool,
    sql: Rc<str>,
    /// For each column of the table, its position in the statement's
    /// result, or None when the query does not use it.
    selected: Rc<[Option<c_int>]>,
    /// How many of xFilter's arguments the statement takes.
    params: usize,
    /// The statement counts the rows instead of returning them: a read
    /// that uses no column (a `count(*)`) gets that many empty rows, and
    /// does not step DNR's statement once per row.
    counted: bool,
}

/// A plan's shape and its idle prepared statements.
struct Reads {
    shape: Shape,
    idle: Vec<Stmt>,
}

#[repr(C)]
struct Cursor {
    base: ffi::sqlite3_vtab_cursor,
    /// The running read and its shape.
    running: Option<(Shape, Stmt)>,
    /// For a read that uses no column ([`Shape::counted`]): the rows still
    /// to hand out.
    counted: Option<i64>,
    has_row: bool,
    rowid: i64,
}

/// The kinds of write DNR runs on the view.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Write {
    Insert = 0,
    Update = 1,
    Delete = 2,
}

/// How the user's statement resolves conflicts, as DNR's write says it:
/// `""`, `"OR REPLACE "` or `"OR IGNORE "`.
const CONFLICTS: [&str; 3] = ["", "OR REPLACE ", "OR IGNORE "];

const WRITE_SLOTS: usize = 3 * CONFLICTS.len();

/// The cache slot of a write kind in a conflict mode (an index into
/// [`CONFLICTS`]).
fn write_slot(kind: Write, conflict: usize) -> usize {
    kind as usize * CONFLICTS.len() + conflict.min(CONFLICTS.len() - 1)
}

/// Constraint operators pushed down to the view, with their SQL.
const OPERATORS: &[(u32, &str)] = &[
    (ffi::SQLITE_INDEX_CONSTRAINT_EQ as u32, "="),
    (ffi::SQLITE_INDEX_CONSTRAINT_GT as u32, ">"),
    (ffi::SQLITE_INDEX_CONSTRAINT_LE as u32, "<="),
    (ffi::SQLITE_INDEX_CONSTRAINT_LT as u32, "<"),
    (ffi::SQLITE_INDEX_CONSTRAINT_GE as u32, ">="),
    (ffi::SQLITE_INDEX_CONSTRAINT_NE as u32, "<>"),
    (ffi::SQLITE_INDEX_CONSTRAINT_IS as u32, "IS"),
    (ffi::SQLITE_INDEX_CONSTRAINT_ISNOT as u32, "IS NOT"),
];

fn module() -> &'static ffi::sqlite3_module {
    static MODULE_DEF: OnceLock<ModuleDef> = OnceLock::new();
    &MODULE_DEF
        .get_or_init(|| {
            // SAFETY: an all-zero sqlite3_module is valid: every callback None.
            let mut m: ffi::sqlite3_module = unsafe { std::mem::zeroed() };
            m.iVersion = 1;
            // Distinct xCreate and xConnect: the module is not eponymous.
            m.xCreate = Some(x_create);
            m.xConnect = Some(x_connect);
            m.xBestIndex = Some(x_best_index);
            m.xDisconnect = Some(x_disconnect);
            m.xDestroy = Some(x_disconnect);
            m.xOpen = Some(x_open);
            m.xClose = Some(x_close);
            m.xFilter = Some(x_filter);
            m.xNext = Some(x_next);
            m.xEof = Some(x_eof);
            m.xColumn = Some(x_column);
            m.xRowid = Some(x_rowid);
            m.xUpdate = Some(x_update);
            m.xBegin = Some(x_begin);
            m.xSync = Some(x_noop);
            m.xCommit = Some(x_end);
            m.xRollback = Some(x_end);
            ModuleDef(m)
        })
        .0
}

struct ModuleDef(ffi::sqlite3_module);
// SAFETY: the module is plain data (an int and function pointers), never
// mutated after initialization.
unsafe impl Sync for ModuleDef {}
// SAFETY: as above.
unsafe impl Send for ModuleDef {}

/// Registers the module; its client data keeps the state alive.
///
/// # Safety
/// `db` must be an open connection.
pub(crate) unsafe fn register(db: Db, state: &Arc<State>) -> Result<(), Error> {
    unsafe extern "C" fn destroy(p: *mut c_void) {
        if !p.is_null() {
            // SAFETY: created by Box::into_raw below, destroyed once.
            drop(unsafe { Box::from_raw(p.cast::<Arc<State>>()) });
        }
    }
    let data = Box::into_raw(Box::new(Arc::clone(state))).cast::<c_void>();
    // SAFETY: the module is 'static; on failure SQLite calls `destroy`.
    let rc = unsafe {
        ffi::sqlite3_create_module_v2(db.as_ptr(), MODULE.as_ptr(), module(), data, Some(destroy))
    };
    if rc == ffi::SQLITE_OK as c_int {
        Ok(())
    } else {
        Err(Error::new(format!(
            "dnr: cannot register the locked-table module: {}",
            db.errmsg()
        )))
    }
}

fn hex(text: &str) -> String {
    text.bytes().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Option<String> {
    let text = text.trim().trim_matches('\'');
    if text.len() % 2 != 0 {
        return None;
    }
    let bytes: Option<Vec<u8>> = (0..text.len())
        .step_by(2)
        .map(|i| {
            text.get(i..i + 2)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        })
        .collect();
    String::from_utf8(bytes?).ok()
}

/// The SQL that creates the locked table for enforced table `name`.
pub(crate) fn create_sql(name: &str) -> String {
    format!(
        "CREATE VIRTUAL TABLE IF NOT EXISTS temp.{} USING {}('{}')",
        ident(name),
        "dnr_locked",
        hex(name)
    )
}

/// A declared type kept only when it is plain words, so that the declaration
/// cannot be bent by an odd type name.
fn safe_type(ty: &str) -> &str {
    if ty
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, ' ' | '(' | ')' | ',' | '_'))
    {
        ty
    } else {
        ""
    }
}

fn set_error(base: *mut ffi::sqlite3_vtab, message: &str) {
    if base.is_null() {
        return;
    }
    let Ok(len) = u64::try_from(message.len() + 1) else {
        return;
    };
    // SAFETY: `base` is a live vtab; the message buffer is allocated with
    // sqlite3_malloc, as SQLite frees it with sqlite3_free.
    unsafe {
        let buffer = ffi::sqlite3_malloc64(len).cast::<c_char>();
        if buffer.is_null() {
            return;
        }
        ptr::copy_nonoverlapping(message.as_ptr().cast::<c_char>(), buffer, message.len());
        *buffer.add(message.len()) = 0;
        ffi::sqlite3_free((*base).zErrMsg.cast());
        (*base).zErrMsg = buffer;
    }
}

/// Runs `f`, turning errors and panics into an SQLite error code and, where
/// there is a vtab, its message.
fn guarded(base: *mut ffi::sqlite3_vtab, f: impl FnOnce() -> Result<(), Error>) -> c_int {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(())) => ffi::SQLITE_OK as c_int,
        Ok(Err(error)) => {
            set_error(base, error.message());
            // A refusal or a unique violation keeps SQLITE_CONSTRAINT, which
            // hosts map to their integrity error.
            error.code().unwrap_or(ffi::SQLITE_ERROR as c_int)
        }
        Err(_) => {
            set_error(base, "dnr: internal error (panic caught)");
            ffi::SQLITE_ERROR as c_int
        }
    }
}

fn text(value: Option<&Value>) -> Option<&str> {
    value.and_then(Value::as_text)
}

/// Builds the table object for `name` after checking that it is an enforced
/// table: the module never reads anything but a DNR view.
fn connect(db: Db, state: &Arc<State>, name: &str) -> Result<(Box<Table>, String), Error> {
    let _internal = Internal::enter(state);
    let storage = storage_table(name);
    let kinds = db.query(
        "SELECT (SELECT type FROM main.sqlite_master WHERE name = ?1 COLLATE NOCASE), \
                (SELECT type FROM main.sqlite_master WHERE name = ?2 COLLATE NOCASE)",
        &[name, &storage],
    )?;
    let row = kinds.first();
    let enforced = text(row.and_then(|r| r.first())) == Some("view")
        && text(row.and_then(|r| r.get(1))) == Some("table")
        && !name
            .get(..5)
            .is_some_and(|p| p.eq_ignore_ascii_case("_dnr_"));
    if !enforced {
        return Err(Error::new(format!(
            "dnr: `{name}` is not a table enforced by dnr"
        )));
    }
    let mut columns = Vec::new();
    let mut declared = Vec::new();
    for row in db.query(
        "SELECT name, type FROM pragma_table_info(?1, 'main') ORDER BY cid",
        &[name],
    )? {
        let Some(column) = text(row.first()) else {
            continue;
        };
        let ty = safe_type(text(row.get(1)).unwrap_or(""));
        declared.push(format!("{} {ty}", ident(column)));
        columns.push(column.to_string());
    }
    let mut key = Vec::new();
    for row in db.query(
        "SELECT name FROM pragma_table_info(?1, 'main') WHERE pk > 0 ORDER BY pk",
        &[&storage],
    )? {
        if let Some(position) = text(row.first()).and_then(|c| columns.iter().position(|x| x == c))
        {
            key.push(position);
        }
    }
    if key.is_empty() {
        key = (0..columns.len()).collect();
    }
    let table = Box::new(Table {
        // SAFETY: an all-zero sqlite3_vtab is what SQLite expects; it fills
        // pModule and nRef itself.
        base: unsafe { std::mem::zeroed() },
        db,
        state: Arc::clone(state),
        name: name.to_string(),
        columns,
        key,
        pool: RefCell::new([HashMap::new(), HashMap::new()]),
        writes: Default::default(),
        rows: RefCell::new(HashMap::new()),
        writing: Cell::new(false),
        next_rowid: Cell::new(1),
    });
    Ok((table, format!("CREATE TABLE x({})", declared.join(", "))))
}

unsafe extern "C" fn x_create(
    db: *mut ffi::sqlite3,
    aux: *mut c_void,
    argc: c_int,
    argv: *const *const c_char,
    out: *mut *mut ffi::sqlite3_vtab,
    err: *mut *mut c_char,
) -> c_int {
    // SAFETY: forwarded unchanged.
    unsafe { x_connect(db, aux, argc, argv, out, err) }
}

unsafe extern "C" fn x_connect(
    db: *mut ffi::sqlite3,
    aux: *mut c_void,
    argc: c_int,
    argv: *const *const c_char,
    out: *mut *mut ffi::sqlite3_vtab,
    err: *mut *mut c_char,
) -> c_int {
    let outcome = catch_unwind(AssertUnwindSafe(|| -> Result<(), Error> {
        // SAFETY: SQLite passes the module's client data (an Arc<State>),
        // `argc` argument strings and a live connection.
        unsafe {
            let state = &*aux.cast::<Arc<State>>();
            let args: Vec<&str> = (0..usize::try_from(argc).unwrap_or(0))
                .map(|i| raw::cstr(*argv.add(i)).unwrap_or(""))
                .collect();
            let name = args.get(3).and_then(|a| unhex(a)).ok_or_else(|| {
                Error::new("dnr: dnr_locked takes the hex-encoded name of an enforced table")
            })?;
            let db = Db::from_raw(db);
            let (table, declaration) = connect(db, state, &name)?;
            let declaration = std::ffi::CString::new(declaration)
                .map_err(|_| Error::new("dnr: column name with a NUL character"))?;
            if ffi::sqlite3_declare_vtab(db.as_ptr(), declaration.as_ptr())
                != ffi::SQLITE_OK as c_int
            {
                return Err(Error::new(format!(
                    "dnr: cannot declare the locked table: {}",
                    db.errmsg()
                )));
            }
            // It shows only what the view shows under the current context:
            // safe in TEMP views and triggers even with trusted_schema=OFF.
            // (SQLITE_VTAB_INNOCUOUS takes no further argument.)
            ffi::sqlite3_vtab_config(db.as_ptr(), ffi::SQLITE_VTAB_INNOCUOUS as c_int);
            *out = Box::into_raw(table).cast::<ffi::sqlite3_vtab>();
            Ok(())
        }
    }));
    match outcome {
        Ok(Ok(())) => ffi::SQLITE_OK as c_int,
        Ok(Err(error)) => {
            if !err.is_null() {
                let message = error.message();
                if let Ok(len) = u64::try_from(message.len() + 1) {
                    // SAFETY: buffer from sqlite3_malloc, NUL-terminated.
                    unsafe {
                        let buffer = ffi::sqlite3_malloc64(len).cast::<c_char>();
                        if !buffer.is_null() {
                            ptr::copy_nonoverlapping(
                                message.as_ptr().cast::<c_char>(),
                                buffer,
                                message.len(),
                            );
                            *buffer.add(message.len()) = 0;
                            *err = buffer;
                        }
                    }
                }
            }
            ffi::SQLITE_ERROR as c_int
        }
        Err(_) => ffi::SQLITE_ERROR as c_int,
    }
}

unsafe extern "C" fn x_disconnect(vtab: *mut ffi::sqlite3_vtab) -> c_int {
    if !vtab.is_null() {
        // SAFETY: created by Box::into_raw in x_connect; SQLite disconnects
        // exactly once, after every cursor is closed.
        drop(unsafe { Box::from_raw(vtab.cast::<Table>()) });
    }
    ffi::SQLITE_OK as c_int
}

/// A plan as x_best_index writes it: the columns the query uses (SQLite's
/// `colUsed` mask) and the constraints pushed down.
struct Plan {
    used: u64,
    constraints: Vec<(usize, &'static str)>,
    /// The query has a LIMIT or OFFSET SQLite told the table of: it may
    /// stop early, so its rows are not counted up front.
    limited: bool,
}

/// Reads a plan ("mask;column:operator,...") back.
fn plan(idx_str: Option<&str>) -> Plan {
    let text = idx_str.unwrap_or("");
    let (mask, rest) = text.split_once(';').unwrap_or(("", text));
    let (rest, limited) = match rest.strip_suffix(";limit") {
        Some(rest) => (rest, true),
        None => (rest, false),
    };
    let constraints = rest
        .split(',')
        .filter_map(|part| {
            let (column, op) = part.split_once(':')?;
            let op: u32 = op.parse().ok()?;
            let sql = OPERATORS.iter().find(|(code, _)| *code == op)?.1;
            Some((column.parse().ok()?, sql))
        })
        .collect();
    Plan {
        used: mask.parse().unwrap_or(u64::MAX),
        constraints,
        limited,
    }
}

/// Whether column `i` is used according to SQLite's `colUsed` mask (bit 63
/// stands for every column from the 64th on).
fn uses(mask: u64, i: usize) -> bool {
    let bit = i.min(63);
    mask & (1u64 << bit) != 0
}

unsafe extern "C" fn x_best_index(
    vtab: *mut ffi::sqlite3_vtab,
    info: *mut ffi::sqlite3_index_info,
) -> c_int {
    guarded(vtab, || {
        // SAFETY: SQLite passes a live index_info with nConstraint entries in
        // both arrays.
        unsafe {
            let info = &mut *info;
            let n = usize::try_from(info.nConstraint).unwrap_or(0);
            let mut parts = Vec::new();
            let mut cost = 1_000_000.0_f64;
            let mut argv_index: c_int = 0;
            let mut limited = false;
            for i in 0..n {
                let constraint = &*info.aConstraint.add(i);
                let op = u32::from(constraint.op);
                limited |= op == ffi::SQLITE_INDEX_CONSTRAINT_LIMIT as u32
                    || op == ffi::SQLITE_INDEX_CONSTRAINT_OFFSET as u32;
                if constraint.usable == 0 || constraint.iColumn < 0 {
                    continue;
                }
                let Some(&(code, _)) = OPERATORS.iter().find(|(code, _)| *code == op) else {
                    continue;
                };
                argv_index += 1;
                let usage = &mut *info.aConstraintUsage.add(i);
                usage.argvIndex = argv_index;
                // SQLite checks again: the pushed-down filter only narrows.
                usage.omit = 0;
                parts.push(format!("{}:{code}", constraint.iColumn));
                cost /= if op == ffi::SQLITE_INDEX_CONSTRAINT_EQ as u32
                    || op == ffi::SQLITE_INDEX_CONSTRAINT_IS as u32
                {
                    100.0
                } else {
                    4.0
                };
            }
            let idx = format!(
                "{};{}{}",
                info.colUsed,
                parts.join(","),
                if limited { ";limit" } else { "" }
            );
            let len = u64::try_from(idx.len() + 1).unwrap_or(1);
            let buffer = ffi::sqlite3_malloc64(len).cast::<c_char>();
            if buffer.is_null() {
                return Err(Error::new("dnr: out of memory"));
            }
            ptr::copy_nonoverlapping(idx.as_ptr().cast::<c_char>(), buffer, idx.len());
            *buffer.add(idx.len()) = 0;
            info.idxStr = buffer;
            info.needToFreeIdxStr = 1;
            info.estimatedCost = cost.max(1.0);
            info.estimatedRows = cost.max(1.0) as i64;
            Ok(())
        }
    })
}

unsafe extern "C" fn x_open(
    _vtab: *mut ffi::sqlite3_vtab,
    out: *mut *mut ffi::sqlite3_vtab_cursor,
) -> c_int {
    let cursor = Box::new(Cursor {
        // SAFETY: SQLite fills pVtab itself.
        base: unsafe { std::mem::zeroed() },
        running: None,
        counted: None,
        has_row: false,
        rowid: 0,
    });
    // SAFETY: `out` is a valid out pointer.
    unsafe { *out = Box::into_raw(cursor).cast() };
    ffi::SQLITE_OK as c_int
}

/// # Safety
/// `cursor` must be a cursor of this module whose pVtab is set.
unsafe fn parts<'a>(cursor: *mut ffi::sqlite3_vtab_cursor) -> (&'a mut Cursor, &'a Table) {
    // SAFETY: per the caller's contract.
    unsafe {
        let cursor = &mut *cursor.cast::<Cursor>();
        let table = &*cursor.base.pVtab.cast::<Table>();
        (cursor, table)
    }
}

/// Hands the cursor's statement back to the pool.
fn release(table: &Table, cursor: &mut Cursor) {
    if let Some((shape, mut stmt)) = cursor.running.take() {
        stmt.reset();
        // Never panics: a pool that is busy just drops the statement.
        if let Ok(mut pool) = table.pool.try_borrow_mut() {
            if let Some(reads) = pool[usize::from(shape.writing)].get_mut(&*shape.key) {
                reads.idle.push(stmt);
            }
        }
    }
    cursor.counted = None;
    cursor.has_row = false;
}

unsafe extern "C" fn x_close(cursor: *mut ffi::sqlite3_vtab_cursor) -> c_int {
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: a cursor of this module, closed once.
        unsafe {
            let (c, table) = parts(cursor);
            release(table, c);
            drop(Box::from_raw(cursor.cast::<Cursor>()));
        }
    }));
    if outcome.is_ok() {
        ffi::SQLITE_OK as c_int
    } else {
        ffi::SQLITE_ERROR as c_int
    }
}

fn step(table: &Table, cursor: &mut Cursor) -> Result<(), Error> {
    if count_down(table, cursor) {
        return Ok(());
    }
    // DNR's own statement, also when `sqlite3_step` compiles it again.
    let _internal = Internal::enter(&table.state);
    cursor.has_row = match cursor.running.as_mut() {
        Some((_, stmt)) => stmt.step()?,
        None => false,
    };
    next_rowid(table, cursor);
    Ok(())
}

/// Moves a counting cursor ([`Shape::counted`]) to its next row; false for
/// any other cursor. Once per row of a `count(*)`: nothing that can fail.
fn count_down(table: &Table, cursor: &mut Cursor) -> bool {
    let Some(left) = cursor.counted.as_mut() else {
        return false;
    };
    cursor.has_row = *left > 0;
    *left -= 1;
    next_rowid(table, cursor);
    true
}

fn next_rowid(table: &Table, cursor: &mut Cursor) {
    if cursor.has_row {
        cursor.rowid = table.next_rowid.get();
        table.next_rowid.set(cursor.rowid.wrapping_add(1));
    }
}

/// The read for plan `key`: the query on the view with the plan's
/// constraints, selecting only the columns the query uses, and in a write
/// the key (xUpdate finds rows by it), so that a count(*) reads an index
/// only.
fn shape(table: &Table, key: &str, writing: bool) -> Result<Shape, Error> {
    let plan = plan(Some(key));
    // A write needs its rows (xUpdate finds them by key); so does a query
    // that may stop early (counting would read every row).
    let counted = !writing && plan.used == 0 && !plan.limited;
    let mut columns = Vec::new();
    let selected: Rc<[Option<c_int>]> = (0..table.columns.len())
        .map(|i| {
            if uses(plan.used, i) || (writing && table.key.contains(&i)) {
                columns.push(ident(&table.columns[i]));
                c_int::try_from(columns.len() - 1).ok()
            } else {
                None
            }
        })
        .collect();
    if columns.is_empty() {
        columns.push("1".into());
    }
    let mut sql = format!(
        "SELECT {} FROM main.{}",
        if counted {
            "count(*)".to_string()
        } else {
            columns.join(", ")
        },
        ident(&table.name)
    );
    for (i, (column, op)) in plan.constraints.iter().enumerate() {
        let name = table
            .columns
            .get(*column)
            .ok_or_else(|| Error::new("dnr: bad plan"))?;
        sql.push_str(if i == 0 { " WHERE " } else { " AND " });
        sql.push_str(&format!("{} {op} ?{}", ident(name), i + 1));
    }
    Ok(Shape {
        key: Rc::from(key),
        writing,
        sql: Rc::from(sql),
        selected,
        params: plan.constraints.len(),
        counted,
    })
}

unsafe extern "C" fn x_filter(
    cursor: *mut ffi::sqlite3_vtab_cursor,
    _idx_num: c_int,
    idx_str: *const c_char,
    argc: c_int,
    argv: *mut *mut ffi::sqlite3_value,
) -> c_int {
    // SAFETY: a live cursor of this module.
    let (c, table) = unsafe { parts(cursor) };
    let vtab = c.base.pVtab;
    guarded(vtab, || {
        release(table, c);
        // SAFETY: idx_str is the string x_best_index made (or NULL).
        let key = unsafe { raw::cstr(idx_str) }.unwrap_or("");
        let writing = table.writing.get();
        let pooled = table.pool.try_borrow_mut().ok().and_then(|mut pool| {
            pool[usize::from(writing)]
                .get_mut(key)
                .map(|reads| (reads.shape.clone(), reads.idle.pop()))
        });
        let (shape, idle) = match pooled {
            Some(found) => found,
            None => {
                let shape = shape(table, key, writing)?;
                if let Ok(mut pool) = table.pool.try_borrow_mut() {
                    let reads = Reads {
                        shape: shape.clone(),
                        idle: Vec::new(),
                    };
                    pool[usize::from(writing)].insert(Rc::clone(&shape.key), reads);
                }
                (shape, None)
            }
        };
        let mut stmt = match idle {
            Some(stmt) => stmt,
            None => {
                let _internal = Internal::enter(&table.state);
                table.db.prepare_persistent(&shape.sql)?
            }
        };
        let n = usize::try_from(argc).unwrap_or(0).min(shape.params);
        for i in 0..n {
            // SAFETY: SQLite passes argc live values.
            unsafe { stmt.bind_raw(i + 1, *argv.add(i))? };
        }
        let counted = shape.counted;
        c.running = Some((shape, stmt));
        if counted {
            let rows = {
                let _internal = Internal::enter(&table.state);
                match c.running.as_mut() {
                    Some((_, stmt)) => {
                        if stmt.step()? {
                            stmt.column(0)
                        } else {
                            Value::Null
                        }
                    }
                    None => Value::Null,
                }
            };
            release(table, c);
            c.counted = Some(match rows {
                Value::Integer(n) => n,
                _ => 0,
            });
        }
        step(table, c)
    })
}

unsafe extern "C" fn x_next(cursor: *mut ffi::sqlite3_vtab_cursor) -> c_int {
    // SAFETY: a live cursor of this module.
    let (c, table) = unsafe { parts(cursor) };
    if count_down(table, c) {
        return ffi::SQLITE_OK as c_int;
    }
    let vtab = c.base.pVtab;
    guarded(vtab, || step(table, c))
}

unsafe extern "C" fn x_eof(cursor: *mut ffi::sqlite3_vtab_cursor) -> c_int {
    // SAFETY: a live cursor of this module.
    let (c, _) = unsafe { parts(cursor) };
    c_int::from(!c.has_row)
}

unsafe extern "C" fn x_column(
    cursor: *mut ffi::sqlite3_vtab_cursor,
    ctx: *mut ffi::sqlite3_context,
    i: c_int,
) -> c_int {
    // SAFETY: a live cursor of this module positioned on a row; the value
    // is copied by sqlite3_result_value.
    unsafe {
        let (c, _) = parts(cursor);
        let column = c.running.as_ref().and_then(|(shape, stmt)| {
            let position = usize::try_from(i)
                .ok()
                .and_then(|i| shape.selected.get(i).copied().flatten())?;
            Some((stmt, position))
        });
        match column {
            Some((stmt, position)) if c.has_row => {
                ffi::sqlite3_result_value(ctx, stmt.column_raw(position));
            }
            _ => ffi::sqlite3_result_null(ctx),
        }
    }
    ffi::SQLITE_OK as c_int
}

unsafe extern "C" fn x_rowid(
    cursor: *mut ffi::sqlite3_vtab_cursor,
    out: *mut ffi::sqlite3_int64,
) -> c_int {
    // SAFETY: a live cursor of this module; `out` is valid.
    let (c, table) = unsafe { parts(cursor) };
    let vtab = c.base.pVtab;
    guarded(vtab, || {
        if table.writing.get() {
            if let Some((shape, stmt)) = c.running.as_ref() {
                let row: Vec<Value> = shape
                    .selected
                    .iter()
                    .map(|p| match p.and_then(|p| usize::try_from(p).ok()) {
                        Some(p) => stmt.column(p),
                        None => Value::Null,
                    })
                    .collect();
                table
                    .rows
                    .try_borrow_mut()
                    .map_err(|_| Error::new("dnr: locked table busy"))?
                    .insert(c.rowid, row);
            }
        }
        // SAFETY: valid out pointer.
        unsafe { *out = c.rowid };
        Ok(())
    })
}

unsafe extern "C" fn x_begin(vtab: *mut ffi::sqlite3_vtab) -> c_int {
    // SAFETY: a live vtab of this module.
    let table = unsafe { &*vtab.cast::<Table>() };
    if let Ok(mut rows) = table.rows.try_borrow_mut() {
        rows.clear();
    }
    table.writing.set(true);
    ffi::SQLITE_OK as c_int
}

unsafe extern "C" fn x_end(vtab: *mut ffi::sqlite3_vtab) -> c_int {
    // SAFETY: a live vtab of this module.
    let table = unsafe { &*vtab.cast::<Table>() };
    if let Ok(mut rows) = table.rows.try_borrow_mut() {
        rows.clear();
    }
    table.writing.set(false);
    ffi::SQLITE_OK as c_int
}

unsafe extern "C" fn x_noop(_vtab: *mut ffi::sqlite3_vtab) -> c_int {
    ffi::SQLITE_OK as c_int
}

/// `"k1" IS ?n AND ...` for the key columns, numbered from `first`.
fn key_match(table: &Table, first: usize) -> String {
    table
        .key
        .iter()
        .enumerate()
        .map(|(i, &column)| {
            let name = table
                .columns
                .get(column)
                .map_or(String::new(), |c| ident(c));
            format!("{name} IS ?{}", first + i)
        })
        .collect::<Vec<_>>()
        .join(" AND ")
}

/// The SQL of one of DNR's writes on the view. Inserts and updates bind the
/// new row's columns as ?1..?n; updates and deletes the old row's key after
/// them.
fn write_sql(table: &Table, kind: Write, conflict: usize) -> String {
    let view = ident(&table.name);
    let columns: Vec<String> = table.columns.iter().map(|c| ident(c)).collect();
    let conflict = CONFLICTS.get(conflict).copied().unwrap_or("");
    match kind {
        Write::Insert => {
            let marks: Vec<String> = (1..=columns.len()).map(|i| format!("?{i}")).collect();
            format!(
                "INSERT {conflict}INTO main.{view} ({}) VALUES ({})",
                columns.join(", "),
                marks.join(", ")
            )
        }
        Write::Update => {
            let sets: Vec<String> = columns
                .iter()
                .enumerate()
                .map(|(i, c)| format!("{c} = ?{}", i + 1))
                .collect();
            format!(
                "UPDATE {conflict}main.{view} SET {} WHERE {}",
                sets.join(", "),
                key_match(table, columns.len() + 1)
            )
        }
        Write::Delete => format!("DELETE FROM main.{view} WHERE {}", key_match(table, 1)),
    }
}

/// Runs one of DNR's writes on the view, so that its triggers check it:
/// the kept statement for `kind` and `conflict` (prepared on first use),
/// bound by `bind`, stepped to completion, reset and kept again.
fn write(
    table: &Table,
    kind: Write,
    conflict: usize,
    bind: impl FnOnce(&mut Stmt) -> Result<(), Error>,
) -> Result<(), Error> {
    let slot = table.writes.get(write_slot(kind, conflict));
    // DNR's own statement: when preparing, and when `sqlite3_step` compiles
    // it again after a schema change.
    let _internal = Internal::enter(&table.state);
    let mut stmt = match slot.and_then(Cell::take) {
        Some(stmt) => stmt,
        None => table
            .db
            .prepare_persistent(&write_sql(table, kind, conflict))?,
    };
    let outcome = bind(&mut stmt).and_then(|()| {
        while stmt.step()? {}
        Ok(())
    });
    stmt.reset();
    if let Some(slot) = slot {
        slot.set(Some(stmt));
    }
    outcome
}

/// Binds the old row's key values from parameter `first` on.
fn bind_key(table: &Table, stmt: &mut Stmt, old: &[Value], first: usize) -> Result<(), Error> {
    for (i, &column) in table.key.iter().enumerate() {
        stmt.bind(first + i, old.get(column).unwrap_or(&Value::Null))?;
    }
    Ok(())
}

unsafe extern "C" fn x_update(
    vtab: *mut ffi::sqlite3_vtab,
    argc: c_int,
    argv: *mut *mut ffi::sqlite3_value,
    rowid: *mut ffi::sqlite3_int64,
) -> c_int {
    // SAFETY: a live vtab of this module.
    let table = unsafe { &*vtab.cast::<Table>() };
    guarded(vtab, || {
        let argc = usize::try_from(argc).unwrap_or(0);
        if argv.is_null() || argc == 0 {
            return Err(Error::new("dnr: bad write"));
        }
        // SAFETY: SQLite passes argc live values.
        let args = unsafe { std::slice::from_raw_parts(argv, argc) };
        // The old and new rowids (integers or NULL).
        // SAFETY: live values, copied at once.
        let rowids: Vec<Value> = args
            .iter()
            .take(2)
            .map(|&v| unsafe { raw::value(v) })
            .collect();
        let conflict = || {
            // SAFETY: called from xUpdate, as required.
            let mode = unsafe { ffi::sqlite3_vtab_on_conflict(table.db.as_ptr()) };
            if mode == ffi::SQLITE_REPLACE as c_int {
                1
            } else if mode == ffi::SQLITE_IGNORE as c_int {
                2
            } else {
                0
            }
        };
        let old = |rowid: Option<&Value>| -> Result<Vec<Value>, Error> {
            let Some(Value::Integer(id)) = rowid else {
                return Err(Error::new("dnr: row not found"));
            };
            table
                .rows
                .try_borrow()
                .map_err(|_| Error::new("dnr: locked table busy"))?
                .get(id)
                .cloned()
                .ok_or_else(|| Error::new("dnr: row not found"))
        };
        // The new row's columns, bound as ?1..?n.
        let bind_new = |stmt: &mut Stmt| -> Result<(), Error> {
            for (i, &value) in args.iter().skip(2).take(table.columns.len()).enumerate() {
                // SAFETY: a live value of this call.
                unsafe { stmt.bind_raw(i + 1, value)? };
            }
            Ok(())
        };
        if argc == 1 {
            let old = old(rowids.first())?;
            return write(table, Write::Delete, 0, |stmt| {
                bind_key(table, stmt, &old, 1)
            });
        }
        if rowids.first() == Some(&Value::Null) {
            if rowids.get(1) != Some(&Value::Null) {
                return Err(Error::new(format!(
                    "dnr: `{}` has no rowid to set",
                    table.name
                )));
            }
            table.state.lock().stored_rowid = None;
            write(table, Write::Insert, conflict(), bind_new)?;
            if !rowid.is_null() {
                // The stored row's rowid, as a real table would report it
                // (an ORM reads its new key from last_insert_rowid()); a
                // policy applied before the triggers noted it gets a fresh
                // number of this table's own.
                let stored = table.state.lock().stored_rowid.take();
                let id = stored.unwrap_or_else(|| {
                    let id = table.next_rowid.get();
                    table.next_rowid.set(id.wrapping_add(1));
                    id
                });
                // SAFETY: SQLite's out pointer for the new row's rowid.
                unsafe { *rowid = id };
            }
            return Ok(());
        }
        if rowids.first() != rowids.get(1) {
            return Err(Error::new(format!(
                "dnr: `{}` has no rowid to set",
                table.name
            )));
        }
        let old = old(rowids.first())?;
        write(table, Write::Update, conflict(), |stmt| {
            bind_new(stmt)?;
            bind_key(table, stmt, &old, table.columns.len() + 1)
        })
    })
}
