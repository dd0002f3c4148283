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

use std::cell::Cell;
use std::ffi::{c_char, c_int, c_void, CStr};

use rusqlite::ffi;

/// DNR's own bookkeeping table is not the application's data.
const META_TABLE: &[u8] = b"_dnr_meta";

pub struct WriteCounter {
    /// Boxed: SQLite holds its address for as long as the hook is installed.
    count: Box<Cell<u64>>,
    db: *mut ffi::sqlite3,
}

unsafe extern "C" fn on_write(
    data: *mut c_void,
    _db: *mut ffi::sqlite3,
    _op: c_int,
    _schema: *const c_char,
    table: *const c_char,
    _old_key: ffi::sqlite3_int64,
    _new_key: ffi::sqlite3_int64,
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
        // SAFETY: `data` is the `Cell` boxed in the installing WriteCounter,
        // which uninstalls the hook before the box is dropped.
        let count = unsafe { &*(data as *const Cell<u64>) };
        count.set(count.get().saturating_add(1));
    }
}

impl WriteCounter {
    /// Installs the counting hook on `db`.
    ///
    /// # Safety
    /// `db` must be open, and the counter must be dropped before `db` closes.
    pub unsafe fn install(db: *mut ffi::sqlite3) -> WriteCounter {
        let count = Box::new(Cell::new(0));
        let data = (&*count as *const Cell<u64>).cast_mut().cast::<c_void>();
        // SAFETY: per this function's contract; `data` outlives the hook.
        unsafe { ffi::sqlite3_preupdate_hook(db, Some(on_write), data) };
        WriteCounter { count, db }
    }

    /// Rows written since the hook was installed.
    pub fn get(&self) -> u64 {
        self.count.get()
    }
}

impl Drop for WriteCounter {
    fn drop(&mut self) {
        // SAFETY: the connection is still open (install's contract).
        unsafe { ffi::sqlite3_preupdate_hook(self.db, None, std::ptr::null_mut()) };
    }
}
