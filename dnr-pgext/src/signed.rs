//! Signed context: `dnr.set_context_signed(token)` and the settings that
//! lock the context to it.
//!
//! - **Keys and options** are superuser-only settings (`PGC_SUSET`):
//!   `dnr.signing_keys` (also hidden from `SHOW`, `current_setting` and
//!   `pg_settings` for everyone who is not a superuser or a member of
//!   `pg_read_all_settings`, because it may hold HMAC secrets),
//!   `dnr.token_audience`, `dnr.token_issuer`, `dnr.token_leeway` and the
//!   claim names. They are checked when they are set (`KeySet::parse`, whose
//!   errors never contain key material), and an HMAC secret is refused where
//!   PostgreSQL would store it in a catalog every role can read
//!   (`ALTER DATABASE/ROLE ... SET`, a function's `SET` clause).
//! - **`dnr.set_context_signed(token)`** verifies the token with
//!   `dnr_core::signed::verify` against the configured keys and the current
//!   time, then sets the three context settings transaction-locally, as the
//!   unsigned setters do (`context.rs`). Nothing is set unless the token
//!   verifies. Verified tokens are cached per backend by their text, until
//!   their `exp` (plus leeway) and only while the keys and options are the
//!   ones that verified them.
//! - **`dnr.require_signed`** (superuser-only): while it is on, nothing but a
//!   valid token changes the context for a role that is not a superuser.
//!   The context settings become real settings here (they were placeholders
//!   before), and while `require_signed` is on they are `PGC_SUSET` and
//!   excluded from `RESET ALL`: PostgreSQL itself then refuses `SET`,
//!   `SET LOCAL`, `RESET`, `SET ... TO DEFAULT`, `set_config(...)` (also
//!   with NULL), `ALTER ROLE/DATABASE ... SET` and functions' `SET` clauses
//!   of them to non-superusers, and `RESET ALL` / `DISCARD ALL` leave them
//!   alone. The unsigned setters refuse themselves. A check hook refuses
//!   values that come from `ALTER ROLE/DATABASE ... SET` when a session
//!   starts, and values set before the library was loaded into the session
//!   (placeholders) when it is loaded. Only `set_context_signed` writes the
//!   settings with the elevated context, and only after verifying.
//!
//! `require_signed` and the keys are settings of the library: they act in a
//! session from the moment the library is loaded into it. The library loads
//! at the first call of a DNR function; a session that must be locked from
//! its first statement needs the library in `shared_preload_libraries` or
//! `session_preload_libraries` (see docs/postgres.md).

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::ffi::{c_char, c_int, c_void, CStr, CString};
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use dnr_core::signed::{self, ClaimNames, KeySet, SignedError, VerifyOptions};
use pgrx::guc::{GucContext, GucFlags, GucRegistry, GucSetting};
use pgrx::pg_sys;
use pgrx::pg_sys::panic::ErrorReport;
use pgrx::prelude::*;

use crate::context::{self, Setter, UuidText};
use crate::raise;

// ---------------------------------------------------------------------------
// Settings
// ---------------------------------------------------------------------------

static SIGNING_KEYS: GucSetting<Option<CString>> = GucSetting::<Option<CString>>::new(Some(c""));
static REQUIRE_SIGNED: GucSetting<bool> = GucSetting::<bool>::new(false);
static AUDIENCE: GucSetting<Option<CString>> = GucSetting::<Option<CString>>::new(Some(c""));
static ISSUER: GucSetting<Option<CString>> = GucSetting::<Option<CString>>::new(Some(c""));
static LEEWAY: GucSetting<i32> = GucSetting::<i32>::new(30);
static TENANT_CLAIM: GucSetting<Option<CString>> = GucSetting::<Option<CString>>::new(Some(c"tid"));
static USER_CLAIM: GucSetting<Option<CString>> = GucSetting::<Option<CString>>::new(Some(c"sub"));
static ROLES_CLAIM: GucSetting<Option<CString>> =
    GucSetting::<Option<CString>>::new(Some(c"roles"));

// The context itself. Readers and setters go through PostgreSQL's settings
// by name (`context.rs`); these only give the settings their storage.
static TENANT_SETTING: GucSetting<Option<CString>> = GucSetting::<Option<CString>>::new(Some(c""));
static USER_SETTING: GucSetting<Option<CString>> = GucSetting::<Option<CString>>::new(Some(c""));
static ROLES_SETTING: GucSetting<Option<CString>> = GucSetting::<Option<CString>>::new(Some(c""));

/// Bumped by every change of the keys or an option: cached key sets and
/// verified tokens of another generation are not used.
static GENERATION: AtomicU64 = AtomicU64::new(1);

thread_local! {
    /// True only while `set_context_signed` writes the context settings.
    static SIGNED_WRITE: Cell<bool> = const { Cell::new(false) };
    /// PostgreSQL's records of the three context settings, once defined.
    static CONTEXT_RECORDS: Cell<[*mut pg_sys::config_generic; 3]> =
        const { Cell::new([std::ptr::null_mut(); 3]) };
}

/// Defines every setting of the library. Called once per process, from
/// `_PG_init`. The order matters: `dnr.require_signed` must be defined (and
/// have its value) before the context settings, whose values set before the
/// library was loaded are applied, and checked, when they are defined.
pub(crate) fn define_settings() {
    refuse_client_values();
    let hidden = GucFlags::SUPERUSER_ONLY | GucFlags::NO_SHOW_ALL | GucFlags::NO_RESET_ALL;
    let config = GucFlags::NO_RESET_ALL;
    // SAFETY: every hook is a #[pg_guard] function of the signature
    // PostgreSQL expects; the settings are 'static.
    unsafe {
        GucRegistry::define_string_guc_with_hooks(
            c"dnr.signing_keys",
            c"Keys that verify signed context tokens (superuser only; hidden).",
            c"Entries kid:eddsa:<Ed25519 public key> or kid:hs256:<HMAC secret>, base64url \
              without padding, separated by commas or newlines. Readable only by superusers \
              and members of pg_read_all_settings. HMAC secrets cannot be stored with ALTER \
              DATABASE/ROLE SET or a function's SET clause: set them in postgresql.conf or \
              with ALTER SYSTEM.",
            &SIGNING_KEYS,
            GucContext::Suset,
            hidden,
            Some(check_signing_keys),
            Some(assign_string_option),
            None,
        );
        GucRegistry::define_string_guc_with_hooks(
            c"dnr.token_audience",
            c"When set, signed context tokens must name this audience (claim aud).",
            c"",
            &AUDIENCE,
            GucContext::Suset,
            config,
            None,
            Some(assign_string_option),
            None,
        );
        GucRegistry::define_string_guc_with_hooks(
            c"dnr.token_issuer",
            c"When set, signed context tokens must come from this issuer (claim iss).",
            c"",
            &ISSUER,
            GucContext::Suset,
            config,
            None,
            Some(assign_string_option),
            None,
        );
        GucRegistry::define_int_guc_with_hooks(
            c"dnr.token_leeway",
            c"Allowed clock difference for the exp, nbf and iat claims of signed context tokens.",
            c"",
            &LEEWAY,
            0,
            3600,
            GucContext::Suset,
            config | GucFlags::UNIT_S,
            None,
            Some(assign_int_option),
            None,
        );
        for (name, description, setting) in [
            (
                c"dnr.token_tenant_claim",
                c"The claim of signed context tokens that holds the tenant (a uuid).",
                &TENANT_CLAIM,
            ),
            (
                c"dnr.token_user_claim",
                c"The claim of signed context tokens that holds the user (a uuid).",
                &USER_CLAIM,
            ),
            (
                c"dnr.token_roles_claim",
                c"The claim of signed context tokens that holds the roles (an array of strings).",
                &ROLES_CLAIM,
            ),
        ] {
            GucRegistry::define_string_guc_with_hooks(
                name,
                description,
                c"",
                setting,
                GucContext::Suset,
                config,
                Some(check_claim_name),
                Some(assign_string_option),
                None,
            );
        }
        GucRegistry::define_bool_guc_with_hooks(
            c"dnr.require_signed",
            c"Only dnr.set_context_signed(token) changes the context of roles that are not superusers.",
            c"While on, the unsigned setters, SET/RESET/set_config of dnr.tenant_id, dnr.user_id \
              and dnr.roles and their ALTER ROLE/DATABASE defaults are refused to roles that are \
              not superusers. Needs the library in shared_preload_libraries or \
              session_preload_libraries to hold from a session's first statement.",
            &REQUIRE_SIGNED,
            GucContext::Suset,
            config,
            None,
            Some(assign_require_signed),
            None,
        );
        let locked = REQUIRE_SIGNED.get();
        let context_settings: [(_, _, _, pg_sys::GucStringCheckHook); 3] = [
            (
                context::TENANT,
                c"The current tenant (a uuid); set by dnr.set_context and dnr.set_context_signed.",
                &TENANT_SETTING,
                Some(check_tenant_setting),
            ),
            (
                context::USER,
                c"The current user (a uuid); set by dnr.set_context and dnr.set_context_signed.",
                &USER_SETTING,
                Some(check_user_setting),
            ),
            (
                context::ROLES,
                c"The current roles (comma-separated); set by dnr.set_context and dnr.set_context_signed.",
                &ROLES_SETTING,
                Some(check_roles_setting),
            ),
        ];
        for (name, description, setting, check) in context_settings {
            GucRegistry::define_string_guc_with_hooks(
                name,
                description,
                c"",
                setting,
                if locked {
                    GucContext::Suset
                } else {
                    GucContext::Userset
                },
                GucFlags::default(),
                check,
                None,
                None,
            );
        }
    }
    CONTEXT_RECORDS.with(|records| {
        records.set([
            find_record(context::TENANT),
            find_record(context::USER),
            find_record(context::ROLES),
        ]);
    });
    protect_context(REQUIRE_SIGNED.get());
}

/// The library's superuser-only settings.
const SUPERUSER_SETTINGS: [&CStr; 8] = [
    c"dnr.signing_keys",
    c"dnr.token_audience",
    c"dnr.token_issuer",
    c"dnr.token_leeway",
    c"dnr.token_tenant_claim",
    c"dnr.token_user_claim",
    c"dnr.token_roles_claim",
    c"dnr.require_signed",
];

/// Refuses the connection (FATAL) when its startup options (`PGOPTIONS`,
/// `options=-c ...`) set one of the library's superuser-only settings and
/// the connection's role is not a superuser.
///
/// With the library in `shared_preload_libraries`, the settings exist when
/// PostgreSQL applies the startup options, and PostgreSQL refuses such a
/// connection itself (`permission denied to set parameter`). Loaded later
/// (`session_preload_libraries`, or at the first call of a DNR function),
/// the value waits in a placeholder, and a startup option replaces the
/// placeholder's *default* as well: the value from `postgresql.conf` or
/// `ALTER ROLE/DATABASE ... SET` is gone. When the setting is defined,
/// PostgreSQL refuses the client's value with a mere WARNING and falls
/// back to the compiled-in default — `require_signed = off`, no audience.
/// The configured value cannot be recovered, so the connection cannot be
/// defended: it is refused, as `shared_preload_libraries` would refuse it.
/// A superuser's startup options carry `PGC_SU_BACKEND` and pass.
fn refuse_client_values() {
    let from_client = |source: pg_sys::GucSource::Type, context: pg_sys::GucContext::Type| {
        source == pg_sys::GucSource::PGC_S_CLIENT
            && matches!(
                context,
                pg_sys::GucContext::PGC_BACKEND | pg_sys::GucContext::PGC_USERSET
            )
    };
    for name in SUPERUSER_SETTINGS {
        let record = find_record(name);
        if record.is_null() {
            continue;
        }
        // SAFETY: a record PostgreSQL keeps for the life of the process;
        // only plain fields are read.
        let (placeholder, current, reset) = unsafe {
            (
                (*record).flags & pg_sys::GUC_CUSTOM_PLACEHOLDER as c_int != 0,
                from_client((*record).source, (*record).scontext),
                from_client((*record).reset_source, (*record).reset_scontext),
            )
        };
        if !placeholder || !(current || reset) {
            continue;
        }
        let name = name.to_string_lossy();
        ErrorReport::new(
            PgSqlErrorCode::ERRCODE_INSUFFICIENT_PRIVILEGE,
            format!(
                "permission denied to set parameter \"{name}\" in the connection's startup options"
            ),
            "dnr",
        )
        .set_detail(
            "the dnr library was loaded after the connection started (session_preload_libraries \
             or at the first call of a DNR function), when the configured value of a \
             superuser-only setting can no longer be told apart from the client's",
        )
        .set_hint(format!(
            "connect without -c {name}; load dnr with shared_preload_libraries to have \
             PostgreSQL refuse such connections itself"
        ))
        .report(PgLogLevel::FATAL);
    }
}

/// PostgreSQL's record of a defined setting; null when there is none.
fn find_record(name: &CStr) -> *mut pg_sys::config_generic {
    #[cfg(any(feature = "pg13", feature = "pg14", feature = "pg15"))]
    // SAFETY: get_guc_variables returns the array of the
    // GetNumConfigOptions() records, each with a NUL-terminated name.
    unsafe {
        let records = pg_sys::get_guc_variables();
        let count = usize::try_from(pg_sys::GetNumConfigOptions()).unwrap_or(0);
        if records.is_null() {
            return std::ptr::null_mut();
        }
        for i in 0..count {
            let record = *records.add(i);
            if !record.is_null() && CStr::from_ptr((*record).name) == name {
                return record;
            }
        }
        std::ptr::null_mut()
    }
    #[cfg(not(any(feature = "pg13", feature = "pg14", feature = "pg15")))]
    // SAFETY: find_option looks the name up; with skip_errors it returns
    // NULL rather than raising.
    unsafe {
        pg_sys::find_option(name.as_ptr(), false, true, pg_sys::WARNING as c_int)
    }
}

/// While `require_signed` is on, the context settings are `PGC_SUSET` (so
/// PostgreSQL refuses every SET, RESET and `set_config` of them to roles
/// that are not superusers, whatever the path) and excluded from RESET ALL
/// (which resets superuser-only settings too, for anyone). Off, they are
/// ordinary settings again, as before signed context existed.
fn protect_context(on: bool) {
    let records = CONTEXT_RECORDS.with(Cell::get);
    for record in records {
        if record.is_null() {
            continue;
        }
        // SAFETY: the records live as long as the process; PostgreSQL reads
        // `context` and `flags` only when a setting is set or reset, which
        // cannot happen while this runs (assign hooks and _PG_init are not
        // reentered).
        unsafe {
            if on {
                (*record).context = pg_sys::GucContext::PGC_SUSET;
                (*record).flags |= pg_sys::GUC_NO_RESET_ALL as c_int;
            } else {
                (*record).context = pg_sys::GucContext::PGC_USERSET;
                (*record).flags &= !(pg_sys::GUC_NO_RESET_ALL as c_int);
            }
        }
    }
}

/// Reports why a check hook refuses a value (palloc'd copies, as
/// PostgreSQL's GUC_check_err* macros make them).
fn check_failed(code: PgSqlErrorCode, message: &str, detail: Option<&str>, hint: Option<&str>) {
    let copy = |text: &str| -> *mut c_char {
        let text = CString::new(text.replace('\0', " ")).unwrap_or_default();
        // SAFETY: pstrdup copies a NUL-terminated string into the current
        // memory context, which outlives the check hook's caller's report.
        unsafe { pg_sys::pstrdup(text.as_ptr()) }
    };
    // SAFETY: these globals are how check hooks report; guc.c reads and
    // resets them after the hook returns.
    unsafe {
        pg_sys::GUC_check_errcode(code as c_int);
        pg_sys::GUC_check_errmsg_string = copy(message);
        if let Some(detail) = detail {
            pg_sys::GUC_check_errdetail_string = copy(detail);
        }
        if let Some(hint) = hint {
            pg_sys::GUC_check_errhint_string = copy(hint);
        }
    }
}

/// Whether a value comes from a catalog that every role can read:
/// `ALTER DATABASE/ROLE ... SET` (pg_db_role_setting; validated as
/// PGC_S_TEST, applied at connection with these sources) or a function's
/// `SET` clause (pg_proc.proconfig, validated as PGC_S_TEST).
fn world_readable_source(source: pg_sys::GucSource::Type) -> bool {
    matches!(
        source,
        pg_sys::GucSource::PGC_S_TEST
            | pg_sys::GucSource::PGC_S_GLOBAL
            | pg_sys::GucSource::PGC_S_DATABASE
            | pg_sys::GucSource::PGC_S_USER
            | pg_sys::GucSource::PGC_S_DATABASE_USER
    )
}

#[pg_guard]
unsafe extern "C-unwind" fn check_signing_keys(
    newval: *mut *mut c_char,
    _extra: *mut *mut c_void,
    source: pg_sys::GucSource::Type,
) -> bool {
    // SAFETY: guc.c passes a pointer to the proposed value (NULL for none).
    let text = unsafe {
        if newval.is_null() || (*newval).is_null() {
            return true;
        }
        CStr::from_ptr(*newval)
    };
    let Ok(text) = text.to_str() else {
        check_failed(
            PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
            "invalid value for parameter \"dnr.signing_keys\"",
            Some("the key text is not UTF-8"),
            None,
        );
        return false;
    };
    let keys = match KeySet::parse(text) {
        Ok(keys) => keys,
        Err(error) => {
            // SignedError never contains key material.
            check_failed(
                PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
                "invalid value for parameter \"dnr.signing_keys\"",
                Some(&error.to_string()),
                None,
            );
            return false;
        }
    };
    let secret = keys
        .kids()
        .find(|kid| keys.algorithm(kid) == Some(signed::Algorithm::Hs256));
    if let Some(kid) = secret {
        if world_readable_source(source) {
            check_failed(
                PgSqlErrorCode::ERRCODE_INSUFFICIENT_PRIVILEGE,
                &format!(
                    "the HMAC secret of key `{kid}` cannot be stored where every role can read it"
                ),
                Some(
                    "ALTER DATABASE/ROLE ... SET and functions' SET clauses are stored in \
                     catalogs that every role can read",
                ),
                Some(
                    "set dnr.signing_keys in postgresql.conf or with ALTER SYSTEM; Ed25519 \
                     public keys (eddsa) may be set anywhere",
                ),
            );
            return false;
        }
    }
    true
}

#[pg_guard]
unsafe extern "C-unwind" fn check_claim_name(
    newval: *mut *mut c_char,
    _extra: *mut *mut c_void,
    _source: pg_sys::GucSource::Type,
) -> bool {
    // SAFETY: guc.c passes a pointer to the proposed value (NULL for none).
    let empty = unsafe { newval.is_null() || (*newval).is_null() || **newval == 0 };
    if empty {
        check_failed(
            PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
            "a claim name cannot be empty",
            None,
            None,
        );
        return false;
    }
    true
}

#[pg_guard]
unsafe extern "C-unwind" fn assign_string_option(_newval: *const c_char, _extra: *mut c_void) {
    GENERATION.fetch_add(1, Ordering::Relaxed);
}

#[pg_guard]
unsafe extern "C-unwind" fn assign_int_option(_newval: c_int, _extra: *mut c_void) {
    GENERATION.fetch_add(1, Ordering::Relaxed);
}

#[pg_guard]
unsafe extern "C-unwind" fn assign_require_signed(newval: bool, _extra: *mut c_void) {
    protect_context(newval);
    if newval {
        refuse_startup_context();
    }
}

/// Whether a value came with the connection: its startup options or a
/// stored default (`ALTER ROLE/DATABASE ... SET`).
fn startup_source(source: pg_sys::GucSource::Type) -> bool {
    matches!(
        source,
        pg_sys::GucSource::PGC_S_CLIENT
            | pg_sys::GucSource::PGC_S_GLOBAL
            | pg_sys::GucSource::PGC_S_DATABASE
            | pg_sys::GucSource::PGC_S_USER
            | pg_sys::GucSource::PGC_S_DATABASE_USER
    )
}

/// A connection that starts with a context and then turns `require_signed`
/// on is refused (FATAL). PostgreSQL applies the connection's startup
/// options first, then the stored defaults of role and database in the
/// database-and-role, role, database order; with the library in
/// `shared_preload_libraries` the context settings are defined before any
/// of that, so a tenant from the startup options, or a stored default of a
/// more specific level than `require_signed`'s, is applied before
/// `require_signed` is on. (Loaded later, with `session_preload_libraries`
/// or at first use, the library defines `require_signed` first and the
/// check hook drops such values; after a connection has started, they are
/// refused when set.) Superusers' connections pass.
fn refuse_startup_context() {
    // SAFETY: plain reads of backend globals.
    let starting = unsafe {
        pg_sys::IsUnderPostmaster && pg_sys::Mode == pg_sys::ProcessingMode::InitProcessing
    };
    if !starting {
        return;
    }
    let records = CONTEXT_RECORDS.with(Cell::get);
    let settings = [&TENANT_SETTING, &USER_SETTING, &ROLES_SETTING];
    let names = ["dnr.tenant_id", "dnr.user_id", "dnr.roles"];
    for ((record, setting), name) in records.into_iter().zip(settings).zip(names) {
        if record.is_null() {
            continue;
        }
        // SAFETY: a record PostgreSQL keeps for the life of the process.
        let source = unsafe { (*record).source };
        let set = setting.get().is_some_and(|value| !value.is_empty());
        if !set || !startup_source(source) {
            continue;
        }
        // SAFETY: superuser() reads the current role's catalog entry,
        // which the connection's start can do inside its transaction.
        let superuser = unsafe { pg_sys::IsTransactionState() && pg_sys::superuser() };
        if superuser {
            return;
        }
        ErrorReport::new(
            PgSqlErrorCode::ERRCODE_INSUFFICIENT_PRIVILEGE,
            format!(
                "{name} was set when the connection started, and dnr.require_signed is on"
            ),
            "dnr",
        )
        .set_detail(
            "the value came from the connection's startup options or a stored default (ALTER ROLE/DATABASE ... SET)",
        )
        .set_hint(format!(
            "connect without it, and remove stored defaults with ALTER ROLE/DATABASE ... RESET {name}"
        ))
        .report(PgLogLevel::FATAL);
    }
}

/// Values of the context settings, while `require_signed` is on. Roles that
/// are not superusers are already refused by PostgreSQL (the settings are
/// `PGC_SUSET` then); this refuses what that does not cover:
/// - stored defaults (`ALTER ROLE/DATABASE ... SET dnr.tenant_id`), which
///   PostgreSQL applies at connection with a superuser's rights, whoever
///   stored them;
/// - values that were set while the setting was a placeholder (before the
///   library was loaded into the session) and are applied now that it is
///   defined, when their role is not a superuser.
///
/// Values from the server's configuration, parallel workers (which copy the
/// leader's settings) and `set_context_signed` pass.
fn check_context_value(name: &str, source: pg_sys::GucSource::Type) -> bool {
    if SIGNED_WRITE.with(Cell::get) || !(REQUIRE_SIGNED.get() || role_requires_signed()) {
        return true;
    }
    // SAFETY: plain reads of backend globals.
    let parallel_worker =
        unsafe { pg_sys::InitializingParallelWorker || pg_sys::ParallelWorkerNumber >= 0 };
    if parallel_worker {
        return true;
    }
    let stored = startup_source(source) && source != pg_sys::GucSource::PGC_S_CLIENT;
    let allowed = match source {
        pg_sys::GucSource::PGC_S_DEFAULT
        | pg_sys::GucSource::PGC_S_DYNAMIC_DEFAULT
        | pg_sys::GucSource::PGC_S_ENV_VAR
        | pg_sys::GucSource::PGC_S_FILE
        | pg_sys::GucSource::PGC_S_ARGV
        | pg_sys::GucSource::PGC_S_OVERRIDE => true,
        _ if stored => false,
        // SET, set_config, a function's SET clause, startup options: only a
        // superuser (asked only inside a transaction, where the catalogs
        // can be read; outside one, refused).
        // SAFETY: superuser() reads the current role's catalog entry.
        _ => unsafe { pg_sys::IsTransactionState() && pg_sys::superuser() },
    };
    if !allowed {
        if stored {
            check_failed(
                PgSqlErrorCode::ERRCODE_INSUFFICIENT_PRIVILEGE,
                &format!("the stored default of {name} is ignored: dnr.require_signed is on"),
                None,
                Some(&format!(
                    "remove it with ALTER ROLE/DATABASE ... RESET {name}"
                )),
            );
        } else {
            check_failed(
                PgSqlErrorCode::ERRCODE_INSUFFICIENT_PRIVILEGE,
                &format!(
                    "{name} is set only by dnr.set_context_signed(token) while dnr.require_signed is on"
                ),
                None,
                None,
            );
        }
    }
    allowed
}

#[pg_guard]
unsafe extern "C-unwind" fn check_tenant_setting(
    newval: *mut *mut c_char,
    _extra: *mut *mut c_void,
    source: pg_sys::GucSource::Type,
) -> bool {
    // SAFETY: guc.c passes a pointer to the proposed value (NULL for none).
    let empty = unsafe { newval.is_null() || (*newval).is_null() || **newval == 0 };
    if !empty {
        if let Some((shadow, table)) = shadowed_enforced_table() {
            check_failed(
                PgSqlErrorCode::ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
                &format!(
                    "dnr.tenant_id cannot be set while the temporary relation pg_temp.{shadow} \
                     shadows the DNR-enforced table {table}"
                ),
                Some(
                    "a temporary relation outlives the transaction that made it, and an \
                     unqualified name finds it before the enforced table: on a pooled \
                     connection it would see the rows of every tenant set after it",
                ),
                Some(
                    "drop it (DISCARD TEMP), and reset pooled connections between clients \
                     with DISCARD ALL",
                ),
            );
            return false;
        }
        // SAFETY: as above: a NUL-terminated value.
        let proposed = unsafe { std::ffi::CStr::from_ptr(*newval) };
        if let Some(tenant) = proposed.to_str().ok().and_then(uuid_text) {
            if tenant_held(&tenant) {
                check_failed(
                    PgSqlErrorCode::ERRCODE_OBJECT_IN_USE,
                    &format!("tenant {tenant} is moving: its context cannot be set until the move ends"),
                    Some("`dnr tenants move` holds a tenant while it copies its rows (dnr.hold_tenant)"),
                    Some("retry the transaction in a moment"),
                );
                return false;
            }
        }
    }
    check_context_value("dnr.tenant_id", source)
}

/// A uuid in any spelling PostgreSQL reads (braces, hyphens anywhere, any
/// case) as its canonical text; none for anything else.
fn uuid_text(text: &str) -> Option<String> {
    let hex: String = text
        .strip_prefix('{')
        .and_then(|t| t.strip_suffix('}'))
        .unwrap_or(text)
        .chars()
        .filter(|c| *c != '-')
        .collect::<String>()
        .to_ascii_lowercase();
    (hex.len() == 32 && hex.bytes().all(|b| b.is_ascii_hexdigit())).then(|| {
        format!(
            "{}-{}-{}-{}-{}",
            &hex[0..8],
            &hex[8..12],
            &hex[12..16],
            &hex[16..20],
            &hex[20..32]
        )
    })
}

thread_local! {
    /// Whether this database has `dnr.held_tenants` (an extension updated to
    /// 0.2.0); once seen, it stays until the session ends.
    static HOLDS_EXIST: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Whether `tenant` is held by a move (`dnr.hold_tenant`) and the current
/// role may not take it as its context: asked once per context set, inside
/// a transaction (where catalogs can be read).
fn tenant_held(tenant: &str) -> bool {
    // SAFETY: plain reads of backend state.
    let (in_transaction, worker) = unsafe {
        (
            pg_sys::IsTransactionState(),
            pg_sys::InitializingParallelWorker || pg_sys::ParallelWorkerNumber >= 0,
        )
    };
    if !in_transaction || worker {
        return false;
    }
    if !HOLDS_EXIST.get() {
        let exists = with_snapshot(|| {
            Spi::get_one::<bool>("SELECT pg_catalog.to_regclass('dnr.held_tenants') IS NOT NULL")
        });
        match exists {
            Ok(Some(true)) => HOLDS_EXIST.set(true),
            Ok(_) => return false,
            Err(error) => crate::spi_failed("dnr.tenant_id", error),
        }
    }
    let held = with_snapshot(|| {
        Spi::get_one_with_args::<bool>(
            "SELECT dnr._tenant_held($1::text::uuid, CURRENT_USER)",
            &[tenant.into()],
        )
    });
    match held {
        Ok(Some(held)) => held,
        Ok(None) => false,
        Err(error) => crate::spi_failed("dnr.tenant_id", error),
    }
}

/// A temporary relation of this session whose name is that of a table
/// with DNR policies (`dnr_*`) in another schema, as (temporary name,
/// qualified enforced table). `pg_temp` comes first in every `search_path`
/// for relations (unless placed elsewhere explicitly), so an unqualified
/// name then reaches the temporary relation: a view there that copies the
/// rows it sees would collect those of every tenant the pooled connection
/// serves next. Only a session that has a temporary schema is looked at
/// (none has one until it creates a temporary object), inside a
/// transaction (where catalogs can be read).
fn shadowed_enforced_table() -> Option<(String, String)> {
    // SAFETY: plain reads of backend state.
    let (in_transaction, worker) = unsafe {
        (
            pg_sys::IsTransactionState(),
            pg_sys::InitializingParallelWorker || pg_sys::ParallelWorkerNumber >= 0,
        )
    };
    if !in_transaction || worker {
        return None;
    }
    let mut temp = pg_sys::InvalidOid;
    let mut toast = pg_sys::InvalidOid;
    // SAFETY: writes the backend's temporary namespace ids to the pointers.
    unsafe { pg_sys::GetTempNamespaceState(&mut temp, &mut toast) };
    if temp == pg_sys::InvalidOid {
        return None;
    }
    let found = with_snapshot(|| {
        Spi::get_two_with_args::<String, String>(
            "SELECT t.relname::text, e.oid::regclass::text
           FROM pg_catalog.pg_class t
           JOIN pg_catalog.pg_class e ON e.relname = t.relname AND e.relnamespace <> t.relnamespace
          WHERE t.relnamespace = $1
            AND EXISTS (SELECT 1 FROM pg_catalog.pg_policy p
                         WHERE p.polrelid = e.oid AND pg_catalog.left(p.polname, 4) = 'dnr_')
          LIMIT 1",
            &[temp.into()],
        )
    });
    match found {
        Ok((Some(shadow), Some(table))) => Some((shadow, table)),
        Ok(_) => None,
        // no row
        Err(pgrx::spi::Error::InvalidPosition) => None,
        Err(error) => crate::spi_failed("dnr.tenant_id", error),
    }
}

/// Runs `f` (which reads catalogs with SPI) with a snapshot: some
/// statements that set settings run without one (`SET`, and the session's
/// start, where the library may be loaded).
fn with_snapshot<R>(f: impl FnOnce() -> R) -> R {
    // SAFETY: only called inside a transaction (checked by the callers);
    // the pushed snapshot is popped again, and on an error the
    // transaction's abort clears the stack.
    unsafe {
        if pg_sys::ActiveSnapshotSet() {
            return f();
        }
        pg_sys::PushActiveSnapshot(pg_sys::GetTransactionSnapshot());
    }
    let result = f();
    // SAFETY: pops the snapshot pushed above.
    unsafe { pg_sys::PopActiveSnapshot() };
    result
}

thread_local! {
    /// Whether the stored defaults of (database, role) turn
    /// `require_signed` on, per role this session has run as.
    static ROLE_REQUIRES: RefCell<HashMap<(u32, u32), bool>> = RefCell::new(HashMap::new());
}

/// Whether the current role (after `SET ROLE`, or inside a `SECURITY
/// DEFINER` function, its owner) has `dnr.require_signed` on as a stored
/// default of its own: `ALTER ROLE ... [IN DATABASE this one] SET
/// dnr.require_signed = on`. (A database-wide default applies to every
/// login anyway; a superuser who turns it off for a session keeps that
/// choice across SET ROLE unless the role has its own default.)
/// PostgreSQL applies stored defaults only to the login role, so a login
/// role that `SET ROLE`s an application role (an authenticator behind a
/// pooler) would otherwise run with the application role's lock off. Only
/// ever adds the lock: a stored `off` never lifts a session's `on`. Read
/// once per role and session, as PostgreSQL reads stored defaults once per
/// login; superusers are never locked.
fn role_requires_signed() -> bool {
    // SAFETY: plain reads of backend state.
    let (in_transaction, worker) = unsafe {
        (
            pg_sys::IsTransactionState(),
            pg_sys::InitializingParallelWorker || pg_sys::ParallelWorkerNumber >= 0,
        )
    };
    if !in_transaction || worker {
        return false;
    }
    // SAFETY: reads the current role and database.
    let (role, database) = unsafe { (pg_sys::GetUserId(), pg_sys::MyDatabaseId) };
    let key = (role.to_u32(), database.to_u32());
    if let Some(on) = ROLE_REQUIRES.with(|cache| cache.borrow().get(&key).copied()) {
        return on;
    }
    // SAFETY: superuser() reads the current role's catalog entry.
    if unsafe { pg_sys::superuser() } {
        return false;
    }
    let settings = with_snapshot(|| {
        Spi::get_one_with_args::<Vec<Option<String>>>(
            "SELECT pg_catalog.array_agg(c.setting)
               FROM pg_catalog.pg_db_role_setting s,
                    LATERAL pg_catalog.unnest(s.setconfig) AS c(setting)
              WHERE s.setrole = $1 AND s.setdatabase IN (0, $2)
                AND pg_catalog.starts_with(c.setting, 'dnr.require_signed=')",
            &[role.into(), database.into()],
        )
    });
    let settings = match settings {
        Ok(settings) => settings.unwrap_or_default(),
        Err(error) => crate::spi_failed("dnr.require_signed", error),
    };
    let on = settings.into_iter().flatten().any(|setting| {
        let value = setting.split_once('=').map_or("", |(_, value)| value);
        let value = CString::new(value).unwrap_or_default();
        let mut parsed = true;
        // SAFETY: parse_bool reads a NUL-terminated string; a value it
        // cannot parse leaves `parsed` true (fail closed).
        let valid = unsafe { pg_sys::parse_bool(value.as_ptr(), &mut parsed) };
        parsed || !valid
    });
    ROLE_REQUIRES.with(|cache| cache.borrow_mut().insert(key, on));
    on
}

#[pg_guard]
unsafe extern "C-unwind" fn check_user_setting(
    _newval: *mut *mut c_char,
    _extra: *mut *mut c_void,
    source: pg_sys::GucSource::Type,
) -> bool {
    check_context_value("dnr.user_id", source)
}

#[pg_guard]
unsafe extern "C-unwind" fn check_roles_setting(
    _newval: *mut *mut c_char,
    _extra: *mut *mut c_void,
    source: pg_sys::GucSource::Type,
) -> bool {
    check_context_value("dnr.roles", source)
}

/// Refuses an unsigned way to change the context while `require_signed` is
/// on and the current role is not a superuser.
pub(crate) fn refuse_unsigned(function: &str) {
    if !REQUIRE_SIGNED.get() && !role_requires_signed() {
        return;
    }
    // SAFETY: superuser() only reads the current role's catalog entry.
    if unsafe { pg_sys::superuser() } {
        return;
    }
    raise(
        PgSqlErrorCode::ERRCODE_INSUFFICIENT_PRIVILEGE,
        format!("{function} is not allowed: dnr.require_signed is on"),
        None,
        Some("set the context with dnr.set_context_signed(token)"),
    );
}

// ---------------------------------------------------------------------------
// set_context_signed
// ---------------------------------------------------------------------------

/// A verified token's context, ready to be set.
struct SignedContext {
    tenant: UuidText,
    user: UuidText,
    roles: CString,
    /// Unix seconds from which the token is refused (`exp` + leeway).
    refused_from: i64,
}

/// Verified tokens of one generation of keys and options, by their text.
#[derive(Default)]
struct Cache {
    generation: u64,
    entries: HashMap<Box<str>, Rc<SignedContext>>,
    bytes: usize,
}

/// At most this many verified tokens are cached per backend...
const CACHE_ENTRIES: usize = 1024;
/// ...holding at most this many bytes of token text.
const CACHE_BYTES: usize = 1 << 20;

impl Cache {
    fn get(&mut self, token: &str, generation: u64, now: i64) -> Option<Rc<SignedContext>> {
        if self.generation != generation {
            self.clear(generation);
            return None;
        }
        let entry = self.entries.get(token)?;
        if now < entry.refused_from {
            return Some(Rc::clone(entry));
        }
        self.bytes = self.bytes.saturating_sub(token.len());
        self.entries.remove(token);
        None
    }

    fn insert(&mut self, token: &str, generation: u64, now: i64, context: Rc<SignedContext>) {
        if self.generation != generation {
            self.clear(generation);
        }
        if self.entries.len() >= CACHE_ENTRIES || self.bytes + token.len() > CACHE_BYTES {
            self.entries.retain(|_, entry| now < entry.refused_from);
            self.bytes = self.entries.keys().map(|t| t.len()).sum();
            if self.entries.len() >= CACHE_ENTRIES || self.bytes + token.len() > CACHE_BYTES {
                self.clear(generation);
            }
        }
        if self.entries.insert(token.into(), context).is_none() {
            self.bytes += token.len();
        }
    }

    fn clear(&mut self, generation: u64) {
        self.entries.clear();
        self.bytes = 0;
        self.generation = generation;
    }
}

/// The keys and options of one generation.
struct Verifier {
    generation: u64,
    keys: KeySet,
    options: VerifyOptions,
}

thread_local! {
    static CACHE: RefCell<Cache> = RefCell::new(Cache::default());
    static VERIFIER: RefCell<Option<Rc<Verifier>>> = const { RefCell::new(None) };
}

fn string_setting(setting: &GucSetting<Option<CString>>) -> String {
    setting
        .get()
        .map(|value| value.to_string_lossy().into_owned())
        .unwrap_or_default()
}

fn nonempty(text: String) -> Option<String> {
    (!text.is_empty()).then_some(text)
}

fn leeway_seconds() -> u64 {
    u64::try_from(LEEWAY.get()).unwrap_or(0)
}

/// The keys and options as the settings hold them now, parsed once per
/// generation.
fn verifier(generation: u64) -> Rc<Verifier> {
    let cached = VERIFIER.with(|v| match v.borrow().as_ref() {
        Some(verifier) if verifier.generation == generation => Some(Rc::clone(verifier)),
        _ => None,
    });
    if let Some(verifier) = cached {
        return verifier;
    }
    let keys = match KeySet::parse(&string_setting(&SIGNING_KEYS)) {
        Ok(keys) => keys,
        // The check hook refuses invalid key text; this is defence only.
        Err(error) => raise(
            PgSqlErrorCode::ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
            format!("dnr.signing_keys is invalid: {error}"),
            None,
            None,
        ),
    };
    let options = VerifyOptions {
        leeway_seconds: leeway_seconds(),
        audience: nonempty(string_setting(&AUDIENCE)),
        issuer: nonempty(string_setting(&ISSUER)),
        claims: ClaimNames {
            tenant: string_setting(&TENANT_CLAIM),
            user: string_setting(&USER_CLAIM),
            roles: string_setting(&ROLES_CLAIM),
        },
    };
    let verifier = Rc::new(Verifier {
        generation,
        keys,
        options,
    });
    VERIFIER.with(|v| *v.borrow_mut() = Some(Rc::clone(&verifier)));
    verifier
}

fn refused(error: SignedError) -> ! {
    match error {
        SignedError::NoKeys => raise(
            PgSqlErrorCode::ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
            format!("token refused: {error}"),
            None,
            Some("a superuser sets dnr.signing_keys (see docs/signed-context.md)"),
        ),
        error => raise(
            PgSqlErrorCode::ERRCODE_INVALID_AUTHORIZATION_SPECIFICATION,
            format!("token refused: {error}"),
            None,
            None,
        ),
    }
}

fn unix_now() -> i64 {
    match SystemTime::now().duration_since(UNIX_EPOCH) {
        Ok(elapsed) => i64::try_from(elapsed.as_secs()).unwrap_or(i64::MAX),
        Err(_) => raise(
            PgSqlErrorCode::ERRCODE_INTERNAL_ERROR,
            "the system clock is before 1970".to_string(),
            None,
            None,
        ),
    }
}

/// Verifies `token` (or finds it verified in this backend's cache).
fn verified_context(token: &str, now: i64) -> Rc<SignedContext> {
    let generation = GENERATION.load(Ordering::Relaxed);
    if let Some(context) = CACHE.with(|cache| cache.borrow_mut().get(token, generation, now)) {
        return context;
    }
    crate::stack_guard();
    let verifier = verifier(generation);
    let verified = match signed::verify(token, &verifier.keys, &verifier.options, now) {
        Ok(verified) => verified,
        Err(error) => refused(error),
    };
    let context = &verified.context;
    let roles = context.roles.iter().cloned().collect::<Vec<_>>().join(",");
    let context = Rc::new(SignedContext {
        tenant: UuidText::from_bytes(context.tenant.map(|u| *u.as_bytes())),
        user: UuidText::from_bytes(context.user.map(|u| *u.as_bytes())),
        // dnr-core validated every role name: none holds a NUL.
        roles: CString::new(roles).unwrap_or_default(),
        refused_from: verified
            .expires_at
            .saturating_add(i64::try_from(verifier.options.leeway_seconds).unwrap_or(i64::MAX)),
    });
    CACHE.with(|cache| {
        cache
            .borrow_mut()
            .insert(token, generation, now, Rc::clone(&context));
    });
    context
}

/// Verifies a signed context token (a compact JWS, `EdDSA` or `HS256`) with
/// the keys in `dnr.signing_keys` and sets the context its claims give for
/// the current transaction: tenant, user and roles, all three (a claim the
/// token leaves out clears that part). Nothing changes unless the token
/// verifies. Allowed to everyone, also while `dnr.require_signed` is on.
#[pg_extern(volatile)]
fn set_context_signed(token: Option<&str>) {
    let Some(token) = token else {
        raise(
            PgSqlErrorCode::ERRCODE_INVALID_AUTHORIZATION_SPECIFICATION,
            "token refused: the token is NULL".to_string(),
            None,
            None,
        );
    };
    let context = verified_context(token, unix_now());
    let setter = Setter::signed();
    let _write = SignedWrite::enter();
    setter.set(context::TENANT, context.tenant.as_c_str());
    setter.set(context::USER, context.user.as_c_str());
    setter.set(context::ROLES, &context.roles);
}

/// Marks the writes of `set_context_signed` for the check hook; unmarked
/// again when dropped, also when PostgreSQL raises an error in between
/// (pgrx unwinds through this frame).
struct SignedWrite;

impl SignedWrite {
    fn enter() -> SignedWrite {
        SIGNED_WRITE.with(|w| w.set(true));
        SignedWrite
    }
}

impl Drop for SignedWrite {
    fn drop(&mut self) {
        SIGNED_WRITE.with(|w| w.set(false));
    }
}
