//! The SQL functions: context setters and readers, `dnr_uuid`, and the
//! policy entry points. One trampoline dispatches every call; it catches
//! errors and panics and reports them through `sqlite3_result_error`.

use std::borrow::Cow;
use std::ffi::{c_int, CStr};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

use dnr_core::context::{parse_optional_uuid, parse_role_list, ContextError};
use dnr_core::value::parse_uuid;
use dnr_core::TenantContext;

use crate::raw::{self, Db, Value};
use crate::{authorizer, context, ffi, migrate, policy, Error, Plan, State, Statements};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    SetContext,
    SetTenant,
    SetUser,
    SetRoles,
    ClearContext,
    Tenant,
    User,
    HasRole,
    Authenticated,
    Uuid,
    Apply,
    Compile,
    Check,
    CheckReason,
    Migrate,
    Exec,
    CountChanges,
    NoteRowid,
    Guarded,
    Upsert,
    Conflict,
    Checked,
    Affinity,
    Lock,
    #[cfg(not(all(target_family = "wasm", target_os = "unknown")))]
    SetContextSigned,
    #[cfg(not(all(target_family = "wasm", target_os = "unknown")))]
    SetSigningKeys,
    #[cfg(not(all(target_family = "wasm", target_os = "unknown")))]
    RequireSigned,
}

/// Name, argument count (-1: variable) and kind of every function.
const FUNCTIONS: &[(&CStr, c_int, Kind)] = &[
    (c"dnr_set_context", -1, Kind::SetContext),
    (c"dnr_set_tenant", -1, Kind::SetTenant),
    (c"dnr_set_user", -1, Kind::SetUser),
    (c"dnr_set_roles", -1, Kind::SetRoles),
    (c"dnr_clear_context", 0, Kind::ClearContext),
    (c"dnr_tenant", 0, Kind::Tenant),
    (c"dnr_user", 0, Kind::User),
    (c"dnr_has_role", 1, Kind::HasRole),
    (c"dnr_authenticated", 0, Kind::Authenticated),
    (c"dnr_uuid", 1, Kind::Uuid),
    (c"dnr_apply", 1, Kind::Apply),
    (c"dnr_compile", 1, Kind::Compile),
    (c"dnr_check", 3, Kind::Check),
    (c"dnr_check_reason", 3, Kind::CheckReason),
    (c"dnr_migrate", 1, Kind::Migrate),
    (c"dnr_exec", -1, Kind::Exec),
    (c"dnr_count_changes", 0, Kind::CountChanges),
    (c"dnr_note_rowid", 1, Kind::NoteRowid),
    (c"dnr_guarded", 0, Kind::Guarded),
    (c"dnr_upsert", 0, Kind::Upsert),
    (c"dnr_conflict", 2, Kind::Conflict),
    (c"dnr_checked", 2, Kind::Checked),
    (c"dnr_affinity", 2, Kind::Affinity),
    (c"dnr_lock", 0, Kind::Lock),
    #[cfg(not(all(target_family = "wasm", target_os = "unknown")))]
    (c"dnr_set_context_signed", 1, Kind::SetContextSigned),
    #[cfg(not(all(target_family = "wasm", target_os = "unknown")))]
    (c"dnr_set_signing_keys", 1, Kind::SetSigningKeys),
    #[cfg(not(all(target_family = "wasm", target_os = "unknown")))]
    (c"dnr_require_signed", 0, Kind::RequireSigned),
];

/// The functions that change the context or the policies: refused once the
/// connection is locked, both here and by the authorizer.
pub(crate) const SETTERS: &[&str] = &[
    "dnr_set_context",
    "dnr_set_tenant",
    "dnr_set_user",
    "dnr_set_roles",
    "dnr_clear_context",
    "dnr_apply",
    "dnr_migrate",
    "dnr_set_signing_keys",
];

struct Func {
    state: Arc<State>,
    kind: Kind,
}

fn flags(kind: Kind) -> c_int {
    let utf8 = ffi::SQLITE_UTF8 as c_int;
    match kind {
        // Read by compiled views and triggers: usable there even with
        // trusted_schema=OFF. Not deterministic: the context changes between
        // statements.
        // Also called by the compiled triggers: `dnr_note_rowid` only
        // records a number for this connection's virtual tables,
        // `dnr_guarded` and `dnr_upsert` read the statement's write mode,
        // `dnr_checked` passes a value through or raises the refusal given,
        // `dnr_affinity` converts a value as a column would store it.
        Kind::Tenant
        | Kind::User
        | Kind::HasRole
        | Kind::Authenticated
        | Kind::NoteRowid
        | Kind::Guarded
        | Kind::Upsert
        | Kind::Checked => utf8 | ffi::SQLITE_INNOCUOUS as c_int,
        Kind::Affinity => {
            utf8 | ffi::SQLITE_INNOCUOUS as c_int | ffi::SQLITE_DETERMINISTIC as c_int
        }
        Kind::Uuid => utf8 | ffi::SQLITE_INNOCUOUS as c_int | ffi::SQLITE_DETERMINISTIC as c_int,
        // Side effects or database reads: only from top-level SQL.
        _ => utf8 | ffi::SQLITE_DIRECTONLY as c_int,
    }
}

/// # Safety
/// `db` must be an open connection.
pub(crate) unsafe fn register(db: Db, state: &Arc<State>) -> Result<(), Error> {
    for &(name, n_arg, kind) in FUNCTIONS {
        let data = Box::new(Func {
            state: Arc::clone(state),
            kind,
        });
        // SAFETY: `dispatch` reads its user data as a `Func`.
        unsafe { db.create_function(name, n_arg, flags(kind), data, dispatch)? };
    }
    Ok(())
}

unsafe extern "C" fn dispatch(
    ctx: *mut ffi::sqlite3_context,
    argc: c_int,
    argv: *mut *mut ffi::sqlite3_value,
) {
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: SQLite passes the user data registered with this callback,
        // a live context, and `argc` live values.
        unsafe {
            let func = &*ffi::sqlite3_user_data(ctx).cast::<Func>();
            if fast(func, ctx, argc, argv) {
                return None;
            }
            let db = Db::from_raw(ffi::sqlite3_context_db_handle(ctx));
            let n = usize::try_from(argc).unwrap_or(0);
            let args: Vec<Value> = if argv.is_null() {
                Vec::new()
            } else {
                std::slice::from_raw_parts(argv, n)
                    .iter()
                    .map(|&v| raw::value(v))
                    .collect()
            };
            Some(call(func, db, &args))
        }
    }));
    let result = match outcome {
        Ok(None) => return,
        Ok(Some(result)) => result,
        Err(_) => Err(Error::new("dnr: internal error (panic caught)")),
    };
    // SAFETY: `ctx` is the live context of this call.
    unsafe { raw::set_result(ctx, result) };
}

/// The functions compiled views and triggers call for every row, answered
/// without allocating. Returns false when the general path must answer.
///
/// # Safety
/// As for `dispatch`.
unsafe fn fast(
    func: &Func,
    ctx: *mut ffi::sqlite3_context,
    argc: c_int,
    argv: *mut *mut ffi::sqlite3_value,
) -> bool {
    // SAFETY: per the caller's contract; text is copied by SQLite
    // (SQLITE_TRANSIENT) while the state's lock is held.
    unsafe {
        let text_result = |text: Option<&str>| match text {
            Some(text) => match c_int::try_from(text.len()) {
                Ok(n) => {
                    ffi::sqlite3_result_text(ctx, text.as_ptr().cast(), n, ffi::SQLITE_TRANSIENT())
                }
                Err(_) => ffi::sqlite3_result_error_toobig(ctx),
            },
            None => ffi::sqlite3_result_null(ctx),
        };
        let current = || func.state.current(ffi::sqlite3_context_db_handle(ctx));
        match func.kind {
            Kind::Tenant => text_result(current().tenant_text.as_deref()),
            Kind::User => text_result(current().user_text.as_deref()),
            Kind::Authenticated => {
                ffi::sqlite3_result_int(ctx, c_int::from(current().ctx.authenticated()))
            }
            Kind::Uuid if argc == 1 && !argv.is_null() => {
                let value = *argv;
                let kind = ffi::sqlite3_value_type(value);
                if kind == ffi::SQLITE_NULL as c_int {
                    ffi::sqlite3_result_null(ctx);
                } else if kind == ffi::SQLITE_TEXT as c_int && is_canonical(value) {
                    // Already canonical: the value itself, unchanged.
                    ffi::sqlite3_result_value(ctx, value);
                } else {
                    return false;
                }
            }
            // Once per row an insert trigger stores: no argument copies.
            Kind::NoteRowid if argc == 1 && !argv.is_null() => {
                let value = *argv;
                func.state.lock().stored_rowid =
                    if ffi::sqlite3_value_type(value) == ffi::SQLITE_INTEGER as c_int {
                        Some(ffi::sqlite3_value_int64(value))
                    } else {
                        None
                    };
                ffi::sqlite3_result_null(ctx);
            }
            // Once per inserted row: the value itself, or the row's refusal
            // raised as RAISE(ABORT) raises it, before SQLite writes the row.
            Kind::Checked if argc == 2 && !argv.is_null() => {
                let refusal = *argv.add(1);
                if ffi::sqlite3_value_type(refusal) == ffi::SQLITE_NULL as c_int {
                    ffi::sqlite3_result_value(ctx, *argv);
                } else {
                    let message = ffi::sqlite3_value_text(refusal);
                    if message.is_null() {
                        ffi::sqlite3_result_error_nomem(ctx);
                    } else {
                        let n = ffi::sqlite3_value_bytes(refusal);
                        ffi::sqlite3_result_error(ctx, message.cast(), n);
                        ffi::sqlite3_result_error_code(
                            ctx,
                            ffi::SQLITE_CONSTRAINT_TRIGGER as c_int,
                        );
                    }
                }
            }
            // A value an insert's checks read, converted as the column of
            // that affinity stores it (SQLite's own conversions).
            Kind::Affinity if argc == 2 && !argv.is_null() => {
                let value = *argv;
                let kind = ffi::sqlite3_value_text(*argv.add(1));
                let kind = if kind.is_null() { 0 } else { *kind };
                let class = ffi::sqlite3_value_type(value);
                let numeric =
                    class == ffi::SQLITE_INTEGER as c_int || class == ffi::SQLITE_FLOAT as c_int;
                if kind == b't' && numeric {
                    // The number as the text SQLite would store.
                    let text = ffi::sqlite3_value_text(value);
                    if text.is_null() {
                        ffi::sqlite3_result_error_nomem(ctx);
                    } else {
                        let n = ffi::sqlite3_value_bytes(value);
                        ffi::sqlite3_result_text(ctx, text.cast(), n, ffi::SQLITE_TRANSIENT());
                    }
                } else {
                    if matches!(kind, b'i' | b'n' | b'r') && class == ffi::SQLITE_TEXT as c_int {
                        // Converts well-formed numeric text in place.
                        ffi::sqlite3_value_numeric_type(value);
                    }
                    ffi::sqlite3_result_value(ctx, value);
                }
            }
            // Once per row and unique key the storage triggers check.
            Kind::Guarded => {
                let guarded = !func.state.lock().write_mode.cannot_replace;
                ffi::sqlite3_result_int(ctx, c_int::from(guarded));
            }
            Kind::Upsert => {
                ffi::sqlite3_result_int(ctx, c_int::from(func.state.lock().write_mode.upsert))
            }
            _ => return false,
        }
    }
    true
}

/// Lowercase, hyphenated, 36 characters: the one spelling DNR stores.
///
/// # Safety
/// `value` must be a live text value.
unsafe fn is_canonical(value: *mut ffi::sqlite3_value) -> bool {
    // SAFETY: per the caller's contract; the bytes are read before any
    // other call on the value.
    let bytes = unsafe {
        let p = ffi::sqlite3_value_text(value);
        let n = ffi::sqlite3_value_bytes(value);
        if p.is_null() || n != 36 {
            return false;
        }
        std::slice::from_raw_parts(p, 36)
    };
    bytes.iter().enumerate().all(|(i, &b)| {
        if matches!(i, 8 | 13 | 18 | 23) {
            b == b'-'
        } else {
            b.is_ascii_digit() || (b'a'..=b'f').contains(&b)
        }
    })
}

fn call(func: &Func, db: Db, args: &[Value]) -> Result<Value, Error> {
    let state = &func.state;
    let arg = |i: usize| args.get(i).unwrap_or(&Value::Null);
    match func.kind {
        Kind::Tenant => Ok(state
            .lock()
            .tenant_text
            .clone()
            .map_or(Value::Null, Value::Text)),
        Kind::User => Ok(state
            .lock()
            .user_text
            .clone()
            .map_or(Value::Null, Value::Text)),
        Kind::HasRole => Ok(Value::Integer(match arg(0) {
            Value::Text(role) => i64::from(state.current(db.as_ptr()).ctx.has_role(role)),
            _ => 0,
        })),
        Kind::Authenticated => Ok(Value::Integer(i64::from(state.lock().ctx.authenticated()))),
        Kind::Uuid => normalize_uuid(arg(0)),
        Kind::SetContext => {
            if args.is_empty() || args.len() > 4 {
                return Err(Error::new(
                    "dnr: dnr_set_context(tenant, user, roles, local) takes 1 to 4 arguments",
                ));
            }
            let ctx = TenantContext {
                tenant: id(arg(0))
                    .map_err(ContextError::Tenant)
                    .map_err(context_error)?,
                user: id(arg(1))
                    .map_err(ContextError::User)
                    .map_err(context_error)?,
                roles: roles(arg(2))?,
            };
            set(db, state, local(args.get(3))?, |_| ctx)
        }
        Kind::SetTenant => {
            let tenant = id(arg(0))
                .map_err(ContextError::Tenant)
                .map_err(context_error)?;
            set(
                db,
                state,
                part_local(args, "dnr_set_tenant(tenant, local)")?,
                |ctx| TenantContext { tenant, ..ctx },
            )
        }
        Kind::SetUser => {
            let user = id(arg(0))
                .map_err(ContextError::User)
                .map_err(context_error)?;
            set(
                db,
                state,
                part_local(args, "dnr_set_user(user, local)")?,
                |ctx| TenantContext { user, ..ctx },
            )
        }
        Kind::SetRoles => {
            let roles = roles(arg(0))?;
            set(
                db,
                state,
                part_local(args, "dnr_set_roles(roles, local)")?,
                |ctx| TenantContext { roles, ..ctx },
            )
        }
        // As in PostgreSQL: the session's context too.
        Kind::ClearContext => set(db, state, false, |_| TenantContext::default()),
        Kind::Apply => {
            if state.lock().locked {
                return Err(Error::new(
                    "dnr: the connection is locked: dnr_apply is refused",
                ));
            }
            policy::apply(db, state, &utf8_arg(arg(0), "policy source")?).map(Value::Text)
        }
        Kind::Compile => {
            policy::compile(db, state, &utf8_arg(arg(0), "policy source")?).map(Value::Text)
        }
        Kind::Migrate => {
            if state.lock().locked {
                return Err(Error::new(
                    "dnr: the connection is locked: dnr_migrate is refused",
                ));
            }
            migrate::migrate(db, state, &utf8_arg(arg(0), "migration")?).map(Value::Text)
        }
        Kind::Exec => exec(db, state, args),
        // In a rewritten upsert's DO UPDATE: 1 when the conflicting row may
        // be updated, else the refusal (the second argument) as the error.
        Kind::Conflict => match arg(0) {
            Value::Integer(n) if *n != 0 => Ok(Value::Integer(1)),
            Value::Real(x) if *x != 0.0 => Ok(Value::Integer(1)),
            _ => Err(Error::new(text_arg(arg(1), "refusal")?)),
        },
        Kind::CountChanges => crate::count_changes(db, state).map(|()| Value::Integer(1)),
        // Handled in `fast`; reached only with a wrong argument count.
        Kind::NoteRowid | Kind::Checked | Kind::Affinity => Ok(Value::Null),
        Kind::Guarded => Ok(Value::Integer(i64::from(
            !state.lock().write_mode.cannot_replace,
        ))),
        Kind::Upsert => Ok(Value::Integer(i64::from(state.lock().write_mode.upsert))),
        Kind::Check | Kind::CheckReason => {
            let entity = utf8_arg(arg(0), "entity")?;
            let op = utf8_arg(arg(1), "operation")?;
            let record = match arg(2) {
                Value::Null => {
                    return Err(Error::new("dnr: dnr_check needs a JSON record, got NULL"))
                }
                other => utf8_arg(other, "JSON record")?,
            };
            let decision = policy::check(db, state, &entity, &op, &record)?;
            Ok(match func.kind {
                Kind::Check => Value::Integer(i64::from(decision.allowed)),
                _ => Value::Text(decision.reason),
            })
        }
        Kind::Lock => authorizer::lock(db, state).map(|()| Value::Integer(1)),
        #[cfg(not(all(target_family = "wasm", target_os = "unknown")))]
        Kind::SetContextSigned | Kind::SetSigningKeys | Kind::RequireSigned => {
            signed_call(func.kind, db, state, arg(0))
        }
    }
}

/// `dnr_exec(sql, params...)`: a write on an enforced table run as a DNR
/// connection runs it (rewritten onto storage), for hosts that load the
/// extension and need what SQLite refuses on the view: upserts, exact row
/// counts, RETURNING of the stored rows. Returns the rows written, or with
/// a RETURNING clause the returned rows as a JSON array of objects.
fn exec(db: Db, state: &Arc<State>, args: &[Value]) -> Result<Value, Error> {
    let sql = utf8_arg(args.first().unwrap_or(&Value::Null), "statement")?;
    let dnr = crate::Dnr {
        db,
        state: Arc::clone(state),
    };
    match dnr.plan(&sql)?.as_ref() {
        [Plan::Write(_)] => {}
        [Plan::Migrate(_)] => {
            return Err(Error::new(
                "dnr: dnr_exec runs writes; a schema change on an enforced table runs with dnr_migrate",
            ))
        }
        [Plan::Unread { why, .. }] => {
            return Err(Error::new(format!(
                "dnr: dnr_exec cannot read this statement: {why}"
            )))
        }
        [Plan::AsIs(_)] => {
            return Err(Error::new(
                "dnr: dnr_exec runs INSERT, UPDATE and DELETE on enforced tables; run other statements directly",
            ))
        }
        plans => {
            return Err(Error::new(format!(
                "dnr: dnr_exec runs one statement, and the SQL holds {}",
                plans.len()
            )))
        }
    }
    let mut outcomes = dnr.run(&sql, Statements::One, args.len() > 1, |sql, _| {
        let mut stmt = db.prepare(sql)?;
        for (index, param) in args.iter().skip(1).enumerate() {
            stmt.bind(index + 1, param)?;
        }
        let names: Vec<String> = (0..stmt.column_count())
            .map(|i| stmt.column_name(i))
            .collect();
        let mut returned = Vec::new();
        while stmt.step()? {
            let row: serde_json::Map<String, serde_json::Value> = names
                .iter()
                .enumerate()
                .map(|(i, name)| (name.clone(), json(stmt.column(i))))
                .collect();
            returned.push(serde_json::Value::Object(row));
        }
        drop(stmt);
        if !names.is_empty() {
            return Ok(Value::Text(serde_json::Value::Array(returned).to_string()));
        }
        // SAFETY: the connection is open (this call runs on it).
        let changes = unsafe { ffi::sqlite3_changes64(db.as_ptr()) };
        Ok(Value::Integer(changes))
    })?;
    Ok(outcomes.pop().unwrap_or(Value::Null))
}

/// A column value as JSON (a blob as an array of its bytes).
fn json(value: Value) -> serde_json::Value {
    match value {
        Value::Null => serde_json::Value::Null,
        Value::Integer(n) => n.into(),
        Value::Real(x) => x.into(),
        Value::Text(text) => text.into(),
        Value::Blob(bytes) => bytes.into(),
    }
}

/// Changes the context from SQL: for the transaction (`local`), or for the
/// session.
fn set(
    db: Db,
    state: &State,
    local: bool,
    change: impl FnOnce(TenantContext) -> TenantContext,
) -> Result<Value, Error> {
    let ctx = {
        let inner = state.current(db.as_ptr());
        if inner.locked {
            return Err(Error::new("dnr: context is locked"));
        }
        if inner.signed_only() {
            return Err(Error::new(
                "dnr: this connection takes signed context only: use dnr_set_context_signed(token)",
            ));
        }
        change(inner.ctx.clone())
    };
    if local {
        context::set_local(db, state, ctx)?;
    } else {
        context::set_session(db, state, ctx)?;
    }
    Ok(Value::Null)
}

/// The `local` argument: NULL or absent is true (transaction-local, as
/// PostgreSQL's default), 0 is the session.
fn local(value: Option<&Value>) -> Result<bool, Error> {
    match value {
        None | Some(Value::Null) => Ok(true),
        Some(Value::Integer(0)) => Ok(false),
        Some(Value::Integer(1)) => Ok(true),
        Some(other) => Err(Error::new(format!(
            "dnr: `local` must be 1 (this transaction) or 0 (the session), not {}",
            display(other)
        ))),
    }
}

/// The `local` argument of a one-part setter (`dnr_set_tenant` and the
/// rest), which take one or two arguments.
fn part_local(args: &[Value], usage: &str) -> Result<bool, Error> {
    match args.len() {
        1 | 2 => local(args.get(1)),
        _ => Err(Error::new(format!("dnr: {usage} takes 1 or 2 arguments"))),
    }
}

/// `dnr_set_context_signed(token)`, `dnr_set_signing_keys(text)` and
/// `dnr_require_signed()`.
#[cfg(not(all(target_family = "wasm", target_os = "unknown")))]
fn signed_call(kind: Kind, db: Db, state: &State, arg: &Value) -> Result<Value, Error> {
    let mut inner = state.lock();
    match kind {
        Kind::SetSigningKeys => {
            if inner.locked {
                return Err(Error::new(
                    "dnr: the connection is locked: dnr_set_signing_keys is refused",
                ));
            }
            let Value::Text(text) = arg else {
                return Err(Error::new(
                    "dnr: dnr_set_signing_keys needs the keys as text",
                ));
            };
            let keys = dnr_core::signed::KeySet::parse(text)
                .map_err(|e| Error::new(format!("dnr: {e}")))?;
            let count = keys.len();
            inner.signed.set_keys(keys);
            Ok(Value::Integer(i64::try_from(count).unwrap_or(i64::MAX)))
        }
        Kind::RequireSigned => {
            inner.signed.required = true;
            Ok(Value::Integer(1))
        }
        _ => {
            if inner.locked && !inner.signed.required {
                return Err(Error::new(
                    "dnr: the connection is locked: signed context is accepted on a locked connection only in signed-only mode (dnr_require_signed() before dnr_lock())",
                ));
            }
            let Value::Text(token) = arg else {
                return Err(Error::new(
                    "dnr: dnr_set_context_signed needs a token (text)",
                ));
            };
            let ctx = inner.signed.context(token)?;
            drop(inner);
            context::set_local(db, state, ctx)?;
            Ok(Value::Null)
        }
    }
}

fn context_error(error: ContextError) -> Error {
    Error::new(format!("dnr: {error}"))
}

/// NULL or '' is unset; text must be a uuid; anything else is refused.
fn id(value: &Value) -> Result<Option<uuid::Uuid>, dnr_core::value::ValueError> {
    match value {
        Value::Null => Ok(None),
        Value::Text(text) => parse_optional_uuid(Some(text)),
        other => Err(dnr_core::value::ValueError::InvalidUuid(display(other))),
    }
}

fn roles(value: &Value) -> Result<std::collections::BTreeSet<String>, Error> {
    match value {
        Value::Null => Ok(Default::default()),
        Value::Text(text) => parse_role_list(text).map_err(context_error),
        other => Err(context_error(ContextError::RoleList(display(other)))),
    }
}

fn normalize_uuid(value: &Value) -> Result<Value, Error> {
    match value {
        Value::Null => Ok(Value::Null),
        Value::Text(text) => parse_uuid(text)
            .map(|u| Value::Text(u.hyphenated().to_string()))
            .map_err(|e| Error::new(format!("dnr: {e}"))),
        other => Err(Error::new(format!(
            "dnr: `{}` is not a valid uuid",
            display(other)
        ))),
    }
}

/// Text, or a blob of UTF-8 text (what the shell's `readfile()` returns).
fn utf8_arg<'a>(value: &'a Value, what: &str) -> Result<Cow<'a, str>, Error> {
    match value {
        Value::Blob(bytes) => std::str::from_utf8(bytes)
            .map(Cow::Borrowed)
            .map_err(|_| Error::new(format!("dnr: the {what} is a blob that is not UTF-8 text"))),
        other => text_arg(other, what).map(Cow::Borrowed),
    }
}

fn text_arg<'a>(value: &'a Value, what: &str) -> Result<&'a str, Error> {
    match value {
        Value::Text(text) => Ok(text),
        Value::Null => Err(Error::new(format!("dnr: the {what} is NULL"))),
        other => Err(Error::new(format!(
            "dnr: the {what} must be text, got `{}`",
            display(other)
        ))),
    }
}

fn display(value: &Value) -> String {
    match value {
        Value::Null => "NULL".into(),
        Value::Integer(n) => n.to_string(),
        Value::Real(x) => x.to_string(),
        Value::Text(text) => text.clone(),
        Value::Blob(blob) => format!(
            "x'{}'",
            blob.iter().map(|b| format!("{b:02x}")).collect::<String>()
        ),
    }
}
