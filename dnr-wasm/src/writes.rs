//! Counting the rows a statement writes, for `exec`'s return value.
//!
//! A write on an enforced table runs on its storage table (the rewriter),
//! but one through a view (a user's own view or trigger, a locked
//! connection's stand-in table) happens in INSTEAD OF triggers, and
//! SQLite's change counters do not say how many rows those wrote:
//! `changes()` counts the view's rows and `total_changes()` adds those view
//! rows to the rows the triggers wrote. The pre-update hook is called once
//! for every row inserted, updated or deleted in a real table — by the
//! statement or by a trigger — and never for a view or for a row a storage
//! trigger skips, so it counts exactly the rows written.

use std::cell::Cell;
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
        // SAFETY: `data` is the `Hook` boxed in the installing WriteCounter,
        // which uninstalls the hook before the box is dropped.
        let hook = unsafe { &*(data as *const Hook) };
        hook.count.set(hook.count.get().saturating_add(1));
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
}

impl Drop for WriteCounter {
    fn drop(&mut self) {
        // SAFETY: the connection is still open (install's contract).
        unsafe { ffi::sqlite3_preupdate_hook(self.db, None, std::ptr::null_mut()) };
    }
}
