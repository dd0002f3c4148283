//! A small safe wrapper over the raw SQLite C API: just what DNR needs.
//!
//! Every call goes through `crate::ffi`, which is `libsqlite3-sys` built by
//! the final binary either against a linked SQLite (`bundled`) or against the
//! host's API table (`loadable_extension`). Nothing here panics.

use std::ffi::{c_char, c_int, c_void, CStr};
use std::ptr;

use crate::ffi;
use crate::Error;

/// A borrowed connection handle. It does not close the connection.
#[derive(Clone, Copy)]
pub struct Db {
    raw: *mut ffi::sqlite3,
}

/// A value read from a result column or passed to a function.
#[derive(Debug, Clone, Default, PartialEq)]
pub enum Value {
    #[default]
    Null,
    Integer(i64),
    Real(f64),
    Text(String),
    Blob(Vec<u8>),
}

impl Value {
    pub fn as_text(&self) -> Option<&str> {
        match self {
            Value::Text(text) => Some(text),
            _ => None,
        }
    }
}

impl Db {
    /// # Safety
    /// `raw` must be an open connection that outlives every use of this value.
    pub unsafe fn from_raw(raw: *mut ffi::sqlite3) -> Db {
        Db { raw }
    }

    pub fn as_ptr(&self) -> *mut ffi::sqlite3 {
        self.raw
    }

    /// The connection's last error message.
    pub fn errmsg(&self) -> String {
        // SAFETY: the handle is open; sqlite3_errmsg returns a NUL-terminated
        // string owned by the connection, copied at once.
        unsafe { cstr_to_string(ffi::sqlite3_errmsg(self.raw)) }
    }

    /// Prepares the first statement of `sql`; `None` when `sql` holds only
    /// whitespace or comments. Returns the unparsed rest.
    fn prepare_one<'s>(
        &self,
        sql: &'s str,
        persistent: bool,
    ) -> Result<(Option<Stmt>, &'s str), Error> {
        let mut stmt: *mut ffi::sqlite3_stmt = ptr::null_mut();
        let mut tail: *const c_char = ptr::null();
        let len = c_int::try_from(sql.len()).map_err(|_| Error::new("dnr: SQL text too long"))?;
        // SAFETY: `sql` is valid for `len` bytes; SQLite does not need a NUL
        // when the length is given, and `tail` points into `sql`.
        let rc = unsafe {
            if persistent {
                ffi::sqlite3_prepare_v3(
                    self.raw,
                    sql.as_ptr().cast(),
                    len,
                    ffi::SQLITE_PREPARE_PERSISTENT as _,
                    &mut stmt,
                    &mut tail,
                )
            } else {
                ffi::sqlite3_prepare_v2(self.raw, sql.as_ptr().cast(), len, &mut stmt, &mut tail)
            }
        };
        if rc != ffi::SQLITE_OK as c_int {
            if !stmt.is_null() {
                // SAFETY: finalizing a statement SQLite handed out.
                unsafe { ffi::sqlite3_finalize(stmt) };
            }
            return Err(Error::new(self.errmsg()));
        }
        let consumed = if tail.is_null() {
            sql.len()
        } else {
            (tail as usize).saturating_sub(sql.as_ptr() as usize)
        };
        let rest = sql.get(consumed.min(sql.len())..).unwrap_or("");
        let stmt = if stmt.is_null() {
            None
        } else {
            Some(Stmt {
                raw: stmt,
                db: *self,
            })
        };
        Ok((stmt, rest))
    }

    /// Prepares exactly one statement.
    pub fn prepare(&self, sql: &str) -> Result<Stmt, Error> {
        self.prepare_single(sql, false)
    }

    /// One statement, as SQLite reads `sql`: text after it that SQLite
    /// reads as another statement is refused, never dropped.
    fn prepare_single(&self, sql: &str, persistent: bool) -> Result<Stmt, Error> {
        let (stmt, tail) = self.prepare_one(sql, persistent)?;
        let Some(stmt) = stmt else {
            return Err(Error::new("dnr: empty SQL statement"));
        };
        if !tail.is_empty() {
            if let (Some(_), _) = self.prepare_one(tail, false)? {
                return Err(Error::new(
                    "dnr: SQLite reads more than one statement here; run them one at a time",
                ));
            }
        }
        Ok(stmt)
    }

    /// Prepares exactly one statement that will be kept and run many times
    /// (`SQLITE_PREPARE_PERSISTENT`). Like every statement prepared here it
    /// is compiled again by `sqlite3_step` when the schema changed, so a
    /// kept statement always runs against the current schema.
    pub fn prepare_persistent(&self, sql: &str) -> Result<Stmt, Error> {
        self.prepare_single(sql, true)
    }

    /// Runs one statement to completion (text SQLite reads as more than
    /// one is refused).
    pub fn exec_one(&self, sql: &str) -> Result<(), Error> {
        let mut stmt = self.prepare(sql)?;
        while stmt.step()? {}
        Ok(())
    }

    /// Runs every statement of a script, stepping each to completion.
    pub fn exec(&self, sql: &str) -> Result<(), Error> {
        let mut rest = sql;
        loop {
            let (stmt, tail) = self.prepare_one(rest, false)?;
            match stmt {
                Some(mut stmt) => while stmt.step()? {},
                None if tail.trim().is_empty() => return Ok(()),
                None => {}
            }
            if tail.len() == rest.len() {
                return Ok(());
            }
            rest = tail;
        }
    }

    /// Runs one query with text parameters and collects every row.
    pub fn query(&self, sql: &str, params: &[&str]) -> Result<Vec<Vec<Value>>, Error> {
        let mut stmt = self.prepare(sql)?;
        for (i, param) in params.iter().enumerate() {
            stmt.bind_text(i + 1, param)?;
        }
        let mut rows = Vec::new();
        while stmt.step()? {
            rows.push((0..stmt.column_count()).map(|i| stmt.column(i)).collect());
        }
        Ok(rows)
    }

    /// Registers a scalar function. `data` is owned by SQLite from now on and
    /// dropped through `destroy` when the function is replaced or the
    /// connection closes (also when registration fails).
    ///
    /// # Safety
    /// `func` must treat its user data as a `*mut T` created here.
    pub unsafe fn create_function<T>(
        &self,
        name: &CStr,
        n_arg: c_int,
        flags: c_int,
        data: Box<T>,
        func: unsafe extern "C" fn(*mut ffi::sqlite3_context, c_int, *mut *mut ffi::sqlite3_value),
    ) -> Result<(), Error> {
        unsafe extern "C" fn destroy<T>(p: *mut c_void) {
            if !p.is_null() {
                // SAFETY: `p` came from Box::into_raw below and SQLite calls
                // the destructor exactly once.
                drop(unsafe { Box::from_raw(p.cast::<T>()) });
            }
        }
        let p = Box::into_raw(data).cast::<c_void>();
        // SAFETY: the name is NUL-terminated, the callbacks match the C
        // signatures, and on failure SQLite calls `destroy` itself.
        let rc = unsafe {
            ffi::sqlite3_create_function_v2(
                self.raw,
                name.as_ptr(),
                n_arg,
                flags,
                p,
                Some(func),
                None,
                None,
                Some(destroy::<T>),
            )
        };
        if rc == ffi::SQLITE_OK as c_int {
            Ok(())
        } else {
            Err(Error::new(format!(
                "dnr: cannot register {}: {}",
                name.to_string_lossy(),
                self.errmsg()
            )))
        }
    }

    /// Installs (or with `None`, removes) the connection's authorizer.
    ///
    /// # Safety
    /// `data` must stay valid for as long as the authorizer is installed.
    pub unsafe fn set_authorizer(
        &self,
        callback: Option<AuthorizerFn>,
        data: *mut c_void,
    ) -> Result<(), Error> {
        // SAFETY: forwarded contract.
        let rc = unsafe { ffi::sqlite3_set_authorizer(self.raw, callback, data) };
        if rc == ffi::SQLITE_OK as c_int {
            Ok(())
        } else {
            Err(Error::new(format!(
                "dnr: cannot install the authorizer: {}",
                self.errmsg()
            )))
        }
    }

    /// Turns on SQLITE_DBCONFIG_DEFENSIVE (no writable_schema, no writes to
    /// shadow tables or sqlite_dbpage, ...).
    pub fn set_defensive(&self) -> Result<(), Error> {
        let mut out: c_int = 0;
        // SAFETY: DEFENSIVE takes an int and an int* out parameter.
        let rc = unsafe {
            ffi::sqlite3_db_config(
                self.raw,
                ffi::SQLITE_DBCONFIG_DEFENSIVE as c_int,
                1,
                &mut out,
            )
        };
        if rc == ffi::SQLITE_OK as c_int {
            Ok(())
        } else {
            Err(Error::new(format!(
                "dnr: cannot turn on defensive mode: {}",
                self.errmsg()
            )))
        }
    }

    /// The connection's mutex, held for the guard's lifetime (a no-op when
    /// SQLite runs without one).
    #[cfg(not(all(target_family = "wasm", target_os = "unknown")))]
    pub fn lock_mutex(&self) -> MutexGuard {
        // SAFETY: the handle is open; a NULL mutex means single-threaded use.
        let mutex = unsafe { ffi::sqlite3_db_mutex(self.raw) };
        if !mutex.is_null() {
            // SAFETY: the connection mutex is recursive.
            unsafe { ffi::sqlite3_mutex_enter(mutex) };
        }
        MutexGuard { mutex }
    }

    /// Nothing to hold: on wasm32-unknown-unknown SQLite (sqlite-wasm-rs) is
    /// built single-threaded (`SQLITE_THREADSAFE=0`), where the mutex
    /// functions are empty macros that the library does not even export.
    #[cfg(all(target_family = "wasm", target_os = "unknown"))]
    pub fn lock_mutex(&self) -> MutexGuard {
        MutexGuard {}
    }

    /// True when the connection is inside an explicit transaction.
    pub fn in_transaction(&self) -> bool {
        // SAFETY: the handle is open.
        unsafe { ffi::sqlite3_get_autocommit(self.raw) == 0 }
    }
}

pub type AuthorizerFn = unsafe extern "C" fn(
    *mut c_void,
    c_int,
    *const c_char,
    *const c_char,
    *const c_char,
    *const c_char,
) -> c_int;

/// Holds the connection's mutex (see [`Db::lock_mutex`]).
pub struct MutexGuard {
    #[cfg(not(all(target_family = "wasm", target_os = "unknown")))]
    mutex: *mut ffi::sqlite3_mutex,
}

#[cfg(not(all(target_family = "wasm", target_os = "unknown")))]
impl Drop for MutexGuard {
    fn drop(&mut self) {
        if !self.mutex.is_null() {
            // SAFETY: entered in `lock_mutex`.
            unsafe { ffi::sqlite3_mutex_leave(self.mutex) };
        }
    }
}

/// A prepared statement, finalized on drop.
pub struct Stmt {
    raw: *mut ffi::sqlite3_stmt,
    db: Db,
}

impl Stmt {
    pub fn bind_text(&mut self, index: usize, text: &str) -> Result<(), Error> {
        let index = c_int::try_from(index).map_err(|_| Error::new("dnr: bad parameter index"))?;
        let len = c_int::try_from(text.len()).map_err(|_| Error::new("dnr: parameter too long"))?;
        // SAFETY: SQLITE_TRANSIENT makes SQLite copy the text at once.
        let rc = unsafe {
            ffi::sqlite3_bind_text(
                self.raw,
                index,
                text.as_ptr().cast(),
                len,
                ffi::SQLITE_TRANSIENT(),
            )
        };
        if rc == ffi::SQLITE_OK as c_int {
            Ok(())
        } else {
            Err(Error::new(self.db.errmsg()))
        }
    }

    /// Binds a value of the caller's statement (a virtual table's argument).
    ///
    /// # Safety
    /// `value` must be a live `sqlite3_value`.
    pub unsafe fn bind_raw(
        &mut self,
        index: usize,
        value: *mut ffi::sqlite3_value,
    ) -> Result<(), Error> {
        let index = c_int::try_from(index).map_err(|_| Error::new("dnr: bad parameter index"))?;
        // SAFETY: SQLite copies the value.
        let rc = unsafe { ffi::sqlite3_bind_value(self.raw, index, value) };
        if rc == ffi::SQLITE_OK as c_int {
            Ok(())
        } else {
            Err(Error::new(self.db.errmsg()))
        }
    }

    /// Binds an owned value.
    pub fn bind(&mut self, index: usize, value: &Value) -> Result<(), Error> {
        let i = c_int::try_from(index).map_err(|_| Error::new("dnr: bad parameter index"))?;
        // SAFETY: SQLITE_TRANSIENT makes SQLite copy text and blobs at once.
        let rc = unsafe {
            match value {
                Value::Null => ffi::sqlite3_bind_null(self.raw, i),
                Value::Integer(n) => ffi::sqlite3_bind_int64(self.raw, i, *n),
                Value::Real(x) => ffi::sqlite3_bind_double(self.raw, i, *x),
                Value::Text(text) => {
                    let n = c_int::try_from(text.len())
                        .map_err(|_| Error::new("dnr: value too long"))?;
                    ffi::sqlite3_bind_text(
                        self.raw,
                        i,
                        text.as_ptr().cast(),
                        n,
                        ffi::SQLITE_TRANSIENT(),
                    )
                }
                Value::Blob(blob) => {
                    let n = c_int::try_from(blob.len())
                        .map_err(|_| Error::new("dnr: value too long"))?;
                    ffi::sqlite3_bind_blob(
                        self.raw,
                        i,
                        blob.as_ptr().cast(),
                        n,
                        ffi::SQLITE_TRANSIENT(),
                    )
                }
            }
        };
        if rc == ffi::SQLITE_OK as c_int {
            Ok(())
        } else {
            Err(Error::new(self.db.errmsg()))
        }
    }

    /// Resets the statement for another run and clears its bindings.
    pub fn reset(&mut self) {
        // SAFETY: the statement is live.
        unsafe {
            ffi::sqlite3_reset(self.raw);
            ffi::sqlite3_clear_bindings(self.raw);
        }
    }

    /// The current row's value of column `index`, for
    /// `sqlite3_result_value`; valid until the next step or reset.
    pub fn column_raw(&self, index: c_int) -> *mut ffi::sqlite3_value {
        // SAFETY: the statement is live and has a row.
        unsafe { ffi::sqlite3_column_value(self.raw, index) }
    }

    /// Steps once: `true` when a row is ready, `false` when done.
    pub fn step(&mut self) -> Result<bool, Error> {
        // SAFETY: the statement is live until drop.
        let rc = unsafe { ffi::sqlite3_step(self.raw) };
        if rc == ffi::SQLITE_ROW as c_int {
            Ok(true)
        } else if rc == ffi::SQLITE_DONE as c_int {
            Ok(false)
        } else {
            // With prepare_v2 the connection's message explains the failure.
            Err(Error::sqlite(self.db.errmsg(), rc))
        }
    }

    /// The name of result column `index` (empty if SQLite has none).
    pub fn column_name(&self, index: usize) -> String {
        let Ok(index) = c_int::try_from(index) else {
            return String::new();
        };
        // SAFETY: the statement is prepared; the name is NUL-terminated or
        // NULL and copied at once.
        unsafe { cstr_to_string(ffi::sqlite3_column_name(self.raw, index)) }
    }

    /// The parameters SQLite reads in this statement, by index from 1:
    /// their names (`?NNN`, `:name`, ...), None for an anonymous `?`.
    pub fn parameters(&self) -> Vec<Option<String>> {
        // SAFETY: the statement is live.
        let count = unsafe { ffi::sqlite3_bind_parameter_count(self.raw) };
        (1..=count)
            .map(|index| {
                // SAFETY: as above; the name lives as long as the statement
                // and is copied out at once.
                unsafe { cstr(ffi::sqlite3_bind_parameter_name(self.raw, index)) }
                    .map(str::to_string)
            })
            .collect()
    }

    pub fn column_count(&self) -> usize {
        // SAFETY: the statement is live.
        usize::try_from(unsafe { ffi::sqlite3_column_count(self.raw) }).unwrap_or(0)
    }

    pub fn column(&self, index: usize) -> Value {
        let Ok(i) = c_int::try_from(index) else {
            return Value::Null;
        };
        // SAFETY: the statement has a current row; text and blob pointers
        // are copied before the next call on the statement.
        unsafe {
            match ffi::sqlite3_column_type(self.raw, i) as u32 {
                t if t == ffi::SQLITE_INTEGER as u32 => {
                    Value::Integer(ffi::sqlite3_column_int64(self.raw, i))
                }
                t if t == ffi::SQLITE_FLOAT as u32 => {
                    Value::Real(ffi::sqlite3_column_double(self.raw, i))
                }
                t if t == ffi::SQLITE_TEXT as u32 => {
                    let p = ffi::sqlite3_column_text(self.raw, i);
                    let n = ffi::sqlite3_column_bytes(self.raw, i);
                    Value::Text(String::from_utf8_lossy(bytes(p.cast(), n)).into_owned())
                }
                t if t == ffi::SQLITE_BLOB as u32 => {
                    let p = ffi::sqlite3_column_blob(self.raw, i);
                    let n = ffi::sqlite3_column_bytes(self.raw, i);
                    Value::Blob(bytes(p.cast(), n).to_vec())
                }
                _ => Value::Null,
            }
        }
    }
}

impl Drop for Stmt {
    fn drop(&mut self) {
        // SAFETY: finalized exactly once.
        unsafe { ffi::sqlite3_finalize(self.raw) };
    }
}

/// Reads a function argument.
///
/// # Safety
/// `value` must be a live `sqlite3_value` for the duration of the call.
pub unsafe fn value(value: *mut ffi::sqlite3_value) -> Value {
    // SAFETY: per the caller's contract; pointers are copied at once.
    unsafe {
        match ffi::sqlite3_value_type(value) as u32 {
            t if t == ffi::SQLITE_INTEGER as u32 => Value::Integer(ffi::sqlite3_value_int64(value)),
            t if t == ffi::SQLITE_FLOAT as u32 => Value::Real(ffi::sqlite3_value_double(value)),
            t if t == ffi::SQLITE_TEXT as u32 => {
                let p = ffi::sqlite3_value_text(value);
                let n = ffi::sqlite3_value_bytes(value);
                Value::Text(String::from_utf8_lossy(bytes(p.cast(), n)).into_owned())
            }
            t if t == ffi::SQLITE_BLOB as u32 => {
                let p = ffi::sqlite3_value_blob(value);
                let n = ffi::sqlite3_value_bytes(value);
                Value::Blob(bytes(p.cast(), n).to_vec())
            }
            _ => Value::Null,
        }
    }
}

/// # Safety
/// `p` must be NULL or valid for `n` bytes.
unsafe fn bytes<'a>(p: *const u8, n: c_int) -> &'a [u8] {
    match usize::try_from(n) {
        // SAFETY: per the caller's contract.
        Ok(n) if !p.is_null() && n > 0 => unsafe { std::slice::from_raw_parts(p, n) },
        _ => &[],
    }
}

/// # Safety
/// `p` must be NULL or a NUL-terminated string.
pub unsafe fn cstr_to_string(p: *const c_char) -> String {
    if p.is_null() {
        String::new()
    } else {
        // SAFETY: per the caller's contract.
        unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned()
    }
}

/// # Safety
/// `p` must be NULL or a NUL-terminated string valid for the returned lifetime.
pub unsafe fn cstr<'a>(p: *const c_char) -> Option<&'a str> {
    if p.is_null() {
        None
    } else {
        // SAFETY: per the caller's contract.
        unsafe { CStr::from_ptr(p) }.to_str().ok()
    }
}

/// Sets a function's result.
///
/// # Safety
/// `ctx` must be the live context of the current function call.
pub unsafe fn set_result(ctx: *mut ffi::sqlite3_context, result: Result<Value, Error>) {
    // SAFETY: per the caller's contract; SQLITE_TRANSIENT copies buffers.
    unsafe {
        match result {
            Ok(Value::Null) => ffi::sqlite3_result_null(ctx),
            Ok(Value::Integer(n)) => ffi::sqlite3_result_int64(ctx, n),
            Ok(Value::Real(x)) => ffi::sqlite3_result_double(ctx, x),
            Ok(Value::Text(text)) => match c_int::try_from(text.len()) {
                Ok(n) => {
                    ffi::sqlite3_result_text(ctx, text.as_ptr().cast(), n, ffi::SQLITE_TRANSIENT())
                }
                Err(_) => ffi::sqlite3_result_error_toobig(ctx),
            },
            Ok(Value::Blob(blob)) => match c_int::try_from(blob.len()) {
                Ok(n) => {
                    ffi::sqlite3_result_blob(ctx, blob.as_ptr().cast(), n, ffi::SQLITE_TRANSIENT())
                }
                Err(_) => ffi::sqlite3_result_error_toobig(ctx),
            },
            Err(error) => {
                let message = error.to_string();
                let n = c_int::try_from(message.len()).unwrap_or(c_int::MAX);
                ffi::sqlite3_result_error(ctx, message.as_ptr().cast(), n);
            }
        }
    }
}
