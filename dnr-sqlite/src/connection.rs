//! [`Connection`]: an application's SQLite connection with DNR's
//! enforcement, opened and owned by this crate.

use std::cell::RefCell;
use std::collections::HashMap;
use std::ffi::{c_int, CString};
use std::path::Path;
use std::ptr;

use dnr_core::TenantContext;

use crate::raw::{Db, Stmt, Value};
use crate::{ffi, register, Dnr, Error, Statements};

/// An application's connection to a SQLite database file (or memory), with
/// DNR registered on it: apply policies, set the tenant context, run SQL
/// with parameters, migrate enforced tables.
///
/// Needs a linked SQLite: the final binary enables `libsqlite3-sys`'s
/// `bundled` feature (or links the system's `libsqlite3`), as the `dnr`
/// command does.
///
/// ```
/// use dnr_core::TenantContext;
/// use dnr_sqlite::{Connection, Value};
///
/// # fn main() -> Result<(), dnr_sqlite::Error> {
/// let db = Connection::open_in_memory()?;
/// db.apply("entity Note:\n  table: notes\n  id: int pk\n  body: text\n  access:\n    read: true\n    create: true\n")?;
///
/// let acme = TenantContext::parse(Some("11111111-1111-4111-8111-111111111111"), None, &[])
///     .map_err(|e| dnr_sqlite::Error::new(e.to_string()))?;
/// db.set_context(acme)?;
/// let written = db.execute("INSERT INTO notes (id, body) VALUES (?, ?)", &[Value::Integer(1), "hi".into()])?;
/// assert_eq!(written, 1);
///
/// // Another tenant sees nothing of it.
/// let globex = TenantContext::parse(Some("22222222-2222-4222-8222-222222222222"), None, &[])
///     .map_err(|e| dnr_sqlite::Error::new(e.to_string()))?;
/// db.set_context(globex)?;
/// assert!(db.query("SELECT body FROM notes", &[])?.rows.is_empty());
///
/// // The next version of the app adds a column.
/// db.migrate("ALTER TABLE notes ADD COLUMN pinned INTEGER DEFAULT 0")?;
/// # Ok(())
/// # }
/// ```
pub struct Connection {
    dnr: Dnr,
    db: Db,
    /// Prepared statements by SQL text (the rewritten text for writes on
    /// enforced tables), reused as an application repeats its statements.
    statements: RefCell<HashMap<String, Stmt>>,
}

/// How long a statement waits for another connection's lock, by default.
const BUSY_TIMEOUT_MS: c_int = 5_000;

/// Statements a connection keeps prepared.
const STATEMENT_CACHE: usize = 64;

/// The rows of a query, with their column names.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Rows {
    pub columns: Vec<String>,
    pub rows: Vec<Vec<Value>>,
}

impl From<&str> for Value {
    fn from(text: &str) -> Value {
        Value::Text(text.to_string())
    }
}

impl Connection {
    /// Opens (creating if needed) a database file.
    pub fn open(path: impl AsRef<Path>) -> Result<Connection, Error> {
        let path = path.as_ref();
        let name = path.to_str().ok_or_else(|| {
            Error::new(format!("dnr: the path `{}` is not UTF-8", path.display()))
        })?;
        Connection::open_name(name)
    }

    /// Opens a private in-memory database.
    pub fn open_in_memory() -> Result<Connection, Error> {
        Connection::open_name(":memory:")
    }

    fn open_name(name: &str) -> Result<Connection, Error> {
        let c_name = CString::new(name)
            .map_err(|_| Error::new("dnr: a database path cannot contain NUL"))?;
        let mut raw = ptr::null_mut();
        let flags = (ffi::SQLITE_OPEN_READWRITE | ffi::SQLITE_OPEN_CREATE) as c_int;
        // SAFETY: `c_name` is NUL-terminated; SQLite writes the handle.
        let rc = unsafe { ffi::sqlite3_open_v2(c_name.as_ptr(), &mut raw, flags, ptr::null()) };
        if raw.is_null() {
            return Err(Error::new("dnr: out of memory opening the database"));
        }
        // SAFETY: `raw` is a handle sqlite3_open_v2 returned; it is closed
        // below on failure, or by `Drop`.
        let db = unsafe { Db::from_raw(raw) };
        if rc != ffi::SQLITE_OK as c_int {
            let message = format!("dnr: cannot open `{name}`: {}", db.errmsg());
            // SAFETY: the failed handle must still be closed.
            unsafe { ffi::sqlite3_close(raw) };
            return Err(Error::new(message));
        }
        // Wait for another connection's write lock (as rusqlite does by
        // default) instead of failing at once with "database is locked";
        // registering reads the schema already.
        // SAFETY: `raw` is open.
        unsafe { ffi::sqlite3_busy_timeout(raw, BUSY_TIMEOUT_MS) };
        // SAFETY: the connection is open and outlives `dnr` (see `Drop`).
        match unsafe { register(raw) } {
            Ok(dnr) => Ok(Connection {
                dnr,
                db,
                statements: RefCell::new(HashMap::new()),
            }),
            Err(error) => {
                // SAFETY: as above.
                unsafe { ffi::sqlite3_close(raw) };
                Err(error)
            }
        }
    }

    /// DNR on this connection: apply, check, lock, and the rest.
    pub fn dnr(&self) -> &Dnr {
        &self.dnr
    }

    /// Enforces a policy source, all or nothing; returns a summary.
    pub fn apply(&self, source: &str) -> Result<String, Error> {
        self.dnr.apply(source)
    }

    /// Sets the tenant, user and roles that policies read, until changed
    /// (a context set in SQL on the connection lasts for its transaction).
    pub fn set_context(&self, ctx: TenantContext) -> Result<(), Error> {
        self.dnr.set_context(ctx)
    }

    /// No tenant, no user, no roles: enforced tables show and take nothing.
    pub fn clear_context(&self) -> Result<(), Error> {
        self.dnr.set_context(TenantContext::default())
    }

    /// Runs a schema migration on enforced tables: see [`Dnr::migrate`].
    pub fn migrate(&self, sql: &str) -> Result<String, Error> {
        self.dnr.migrate(sql)
    }

    /// Runs SQL with positional (`?`) parameters and returns the rows it
    /// wrote: one statement with parameters, any number without. A write
    /// on an enforced table runs on its storage (rewritten: see
    /// [`Dnr::run`]), so the count is exact: rows a rule skips are not
    /// counted. A schema change on an enforced table runs as
    /// [`Connection::migrate`] and counts 0.
    pub fn execute(&self, sql: &str, params: &[Value]) -> Result<u64, Error> {
        let written = self.dnr.run(
            sql,
            Statements::All,
            !params.is_empty(),
            |sql, rewritten| Ok(self.step(sql, params, false, rewritten)?.1),
        )?;
        Ok(written.iter().sum())
    }

    /// Runs one statement with positional parameters and returns its rows
    /// (a write's RETURNING rows are the rows as stored).
    pub fn query(&self, sql: &str, params: &[Value]) -> Result<Rows, Error> {
        let mut rows = self.dnr.run(
            sql,
            Statements::One,
            !params.is_empty(),
            |sql, rewritten| Ok(self.step(sql, params, true, rewritten)?.0),
        )?;
        Ok(rows.pop().unwrap_or_default())
    }

    /// Prepares (or reuses), binds and steps one statement; returns its
    /// rows (when `collect`) and the rows it wrote: the statement's own
    /// count for a rewritten write on storage, every row written (through
    /// views' triggers too) otherwise.
    fn step(
        &self,
        sql: &str,
        params: &[Value],
        collect: bool,
        rewritten: bool,
    ) -> Result<(Rows, u64), Error> {
        let before = self.total_changes();
        let mut statements = self.statements.borrow_mut();
        if !statements.contains_key(sql) {
            if statements.len() >= STATEMENT_CACHE {
                statements.clear();
            }
            statements.insert(sql.to_string(), self.db.prepare_persistent(sql)?);
        }
        let stmt = statements
            .get_mut(sql)
            .ok_or_else(|| Error::new("dnr: statement cache"))?;
        let outcome = run_statement(stmt, params, collect);
        stmt.reset();
        let rows = outcome?;
        let written = if rewritten {
            // SAFETY: the connection is open.
            u64::try_from(unsafe { ffi::sqlite3_changes64(self.db.as_ptr()) }).unwrap_or(0)
        } else {
            self.total_changes().saturating_sub(before)
        };
        Ok((rows, written))
    }

    fn total_changes(&self) -> u64 {
        // SAFETY: the connection is open.
        let total = unsafe { ffi::sqlite3_total_changes64(self.db.as_ptr()) };
        u64::try_from(total).unwrap_or(0)
    }
}

fn run_statement(stmt: &mut Stmt, params: &[Value], collect: bool) -> Result<Rows, Error> {
    for (index, param) in params.iter().enumerate() {
        stmt.bind(index + 1, param)?;
    }
    let columns = if collect {
        (0..stmt.column_count())
            .map(|index| stmt.column_name(index))
            .collect()
    } else {
        Vec::new()
    };
    let mut rows = Vec::new();
    while stmt.step()? {
        if collect {
            rows.push((0..stmt.column_count()).map(|i| stmt.column(i)).collect());
        }
    }
    Ok(Rows { columns, rows })
}

impl Drop for Connection {
    fn drop(&mut self) {
        // Prepared statements keep the connection open: finalize them.
        self.statements.get_mut().clear();
        // A locked connection's tables keep prepared statements, which
        // would make sqlite3_close fail with SQLITE_BUSY (close_v2 is not in
        // a loadable extension's API table): drop them first.
        if self.dnr.serves_tables() {
            let _ = self.dnr.drop_locked_tables();
        }
        // SAFETY: the handle was opened by `open_name` and is not used after
        // this.
        unsafe { ffi::sqlite3_close(self.db.as_ptr()) };
    }
}
