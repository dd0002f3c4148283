//! Counting the rows a statement writes, for `exec`'s return value.
//!
//! Writes through an enforced table happen in the INSTEAD OF triggers of its
//! view, and SQLite's change counters do not say how many rows those wrote:
//! `changes()` counts the view's rows (refused-by-filter rows included, and
//! in SQLite before 3.4x not at all), and `total_changes()` adds those view
//! rows to the rows the triggers wrote. The pre-update hook is called once
//! for every row inserted, updated or deleted in a real table — by the
//! statement or by a trigger — and never for a view, so it counts exactly
//! the rows written into the storage tables (and ordinary tables).

use std::cell::{Cell, RefCell};
use std::ffi::{c_char, c_int, c_void, CStr};

use rusqlite::ffi;

/// DNR's own bookkeeping table is not the application's data.
const META_TABLE: &[u8] = b"_dnr_meta";

pub struct WriteCounter {
    /// Boxed: SQLite holds its address for as long as the hook is installed.
    hook: Box<Hook>,
    db: *mut ffi::sqlite3,
}

#[derive(Default)]
struct Hook {
    count: Cell<u64>,
    /// While recording: every row written.
    written: RefCell<Option<Vec<Written>>>,
}

/// One row a statement wrote into a table.
pub struct Written {
    pub table: String,
    /// `SQLITE_INSERT`, `SQLITE_UPDATE` or `SQLITE_DELETE`.
    pub op: c_int,
    /// The row's rowid after the write (before it, for a delete).
    pub rowid: i64,
    /// A deleted row's values, in column order.
    pub old: Vec<rusqlite::types::Value>,
}

unsafe extern "C" fn on_write(
    data: *mut c_void,
    db: *mut ffi::sqlite3,
    op: c_int,
    _schema: *const c_char,
    table: *const c_char,
    old_key: ffi::sqlite3_int64,
    new_key: ffi::sqlite3_int64,
) {
    if data.is_null() {
        return;
    }
    // SAFETY: SQLite passes the table name as a NUL-terminated string.
    let meta = !table.is_null()
        && unsafe { CStr::from_ptr(table) }
            .to_bytes()
            .eq_ignore_ascii_case(META_TABLE);
    if !meta {
        // SAFETY: `data` is the `Hook` boxed in the installing WriteCounter,
        // which uninstalls the hook before the box is dropped.
        let hook = unsafe { &*(data as *const Hook) };
        hook.count.set(hook.count.get().saturating_add(1));
        if let Ok(mut written) = hook.written.try_borrow_mut() {
            if let Some(rows) = written.as_mut() {
                // SAFETY: as above, a NUL-terminated name; the pre-update
                // functions are valid inside the hook.
                let row = unsafe {
                    Written {
                        table: CStr::from_ptr(table).to_string_lossy().into_owned(),
                        op,
                        rowid: if op == ffi::SQLITE_DELETE {
                            old_key
                        } else {
                            new_key
                        },
                        old: if op == ffi::SQLITE_DELETE {
                            old_values(db)
                        } else {
                            Vec::new()
                        },
                    }
                };
                rows.push(row);
            }
        }
    }
}

impl WriteCounter {
    /// Installs the counting hook on `db`.
    ///
    /// # Safety
    /// `db` must be open, and the counter must be dropped before `db` closes.
    pub unsafe fn install(db: *mut ffi::sqlite3) -> WriteCounter {
        let hook = Box::new(Hook::default());
        let data = (&*hook as *const Hook).cast_mut().cast::<c_void>();
        // SAFETY: per this function's contract; `data` outlives the hook.
        unsafe { ffi::sqlite3_preupdate_hook(db, Some(on_write), data) };
        WriteCounter { hook, db }
    }

    /// Rows written since the hook was installed.
    pub fn get(&self) -> u64 {
        self.hook.count.get()
    }

    /// Runs `f`, returning with its outcome every row written meanwhile.
    pub fn recording<T>(&self, f: impl FnOnce() -> T) -> (T, Vec<Written>) {
        *self.hook.written.borrow_mut() = Some(Vec::new());
        let outcome = f();
        let written = self.hook.written.borrow_mut().take().unwrap_or_default();
        (outcome, written)
    }
}

/// The values of the row being deleted.
///
/// # Safety
/// Only inside the pre-update hook of `db`.
unsafe fn old_values(db: *mut ffi::sqlite3) -> Vec<rusqlite::types::Value> {
    use rusqlite::types::Value;
    // SAFETY: per this function's contract.
    let count = unsafe { ffi::sqlite3_preupdate_count(db) };
    (0..count)
        .map(|column| {
            let mut value = std::ptr::null_mut();
            // SAFETY: as above; `value` is valid until the hook returns and
            // is copied at once.
            unsafe {
                if ffi::sqlite3_preupdate_old(db, column, &mut value) != ffi::SQLITE_OK
                    || value.is_null()
                {
                    return Value::Null;
                }
                match ffi::sqlite3_value_type(value) {
                    ffi::SQLITE_INTEGER => Value::Integer(ffi::sqlite3_value_int64(value)),
                    ffi::SQLITE_FLOAT => Value::Real(ffi::sqlite3_value_double(value)),
                    ffi::SQLITE_TEXT => {
                        let text = ffi::sqlite3_value_text(value);
                        let len = usize::try_from(ffi::sqlite3_value_bytes(value)).unwrap_or(0);
                        if text.is_null() {
                            Value::Null
                        } else {
                            let bytes = std::slice::from_raw_parts(text, len);
                            Value::Text(String::from_utf8_lossy(bytes).into_owned())
                        }
                    }
                    ffi::SQLITE_BLOB => {
                        let blob = ffi::sqlite3_value_blob(value).cast::<u8>();
                        let len = usize::try_from(ffi::sqlite3_value_bytes(value)).unwrap_or(0);
                        if blob.is_null() {
                            Value::Blob(Vec::new())
                        } else {
                            Value::Blob(std::slice::from_raw_parts(blob, len).to_vec())
                        }
                    }
                    _ => Value::Null,
                }
            }
        })
        .collect()
}

impl Drop for WriteCounter {
    fn drop(&mut self) {
        // SAFETY: the connection is still open (install's contract).
        unsafe { ffi::sqlite3_preupdate_hook(self.db, None, std::ptr::null_mut()) };
    }
}
