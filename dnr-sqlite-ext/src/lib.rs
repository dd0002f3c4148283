//! The SQLite loadable extension: `.load ./libdnr` in the `sqlite3` shell or
//! `load_extension` in any host. Entry point `sqlite3_dnr_init`.
//!
//! Built in its own cargo invocation (`cargo build --release -p
//! dnr-sqlite-ext`): its `loadable_extension` feature of libsqlite3-sys must
//! not unify with the `bundled` SQLite of the CLI and test hosts. All the
//! logic is in `dnr-sqlite`; this file only binds the host's API table.

use std::ffi::{c_char, c_int};
use std::panic::{catch_unwind, AssertUnwindSafe};

use libsqlite3_sys as ffi;

/// Called by SQLite when the library is loaded.
///
/// # Safety
/// Called by SQLite with an open connection, an error-message out pointer and
/// the host's API table.
#[no_mangle]
pub unsafe extern "C" fn sqlite3_dnr_init(
    db: *mut ffi::sqlite3,
    pz_err_msg: *mut *mut c_char,
    p_api: *mut ffi::sqlite3_api_routines,
) -> c_int {
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: SQLite hands us its API table; every later call goes
        // through it.
        if let Err(error) = unsafe { ffi::rusqlite_extension_init2(p_api) } {
            return Err(format!("dnr: cannot load into this SQLite: {error}"));
        }
        // SAFETY: `db` is the open connection being extended.
        unsafe { dnr_sqlite::register(db) }
            .map(|_| ())
            .map_err(|e| e.to_string())
    }));
    match outcome {
        Ok(Ok(())) => ffi::SQLITE_OK as c_int,
        Ok(Err(message)) => {
            // SAFETY: the out pointer is NULL or valid; the message is
            // allocated with sqlite3_malloc as SQLite frees it.
            unsafe { report(pz_err_msg, &message) };
            ffi::SQLITE_ERROR as c_int
        }
        Err(_) => ffi::SQLITE_ERROR as c_int,
    }
}

/// # Safety
/// `out` must be NULL or a valid pointer; the API table must be initialized.
unsafe fn report(out: *mut *mut c_char, message: &str) {
    if out.is_null() {
        return;
    }
    let Ok(len) = u64::try_from(message.len() + 1) else {
        return;
    };
    // SAFETY: a fresh buffer of len bytes, filled and NUL-terminated.
    unsafe {
        let buffer = ffi::sqlite3_malloc64(len).cast::<c_char>();
        if buffer.is_null() {
            return;
        }
        std::ptr::copy_nonoverlapping(message.as_ptr().cast::<c_char>(), buffer, message.len());
        *buffer.add(message.len()) = 0;
        *out = buffer;
    }
}
