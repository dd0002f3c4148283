//! The tenant context: `dnr.set_context` and friends write it, the readers
//! (`dnr.current_tenant()`, ...) read it.
//!
//! The context lives only in three settings — `dnr.tenant_id`, `dnr.user_id`
//! and `dnr.roles` — which the `postgres-plain` compile target reads too,
//! so both interoperate. Nothing is kept in process memory: PostgreSQL's GUC
//! machinery scopes a transaction-local value to its transaction, restores
//! it on ROLLBACK (also to a savepoint) and resets it on a new connection.
//!
//! These are C functions on purpose. A setter costs one `set_config_option`
//! per setting, as `pg_catalog.set_config` does, without PL/pgSQL's
//! executor round trip. A reader costs one function call at execution time
//! and nothing at planning time: the planner inlines an SQL-language reader
//! by parsing and analysing its body again for every query it plans, which
//! cost more than the whole rest of a point lookup's planning (see
//! bench/pg.md).
//!
//! An unset setting and the empty string a finished `SET LOCAL` leaves behind
//! both read as NULL; a malformed value is an error, never "no tenant".
//!
//! The library defines the three settings when it is loaded (`signed.rs`):
//! ordinary settings anyone may set, as the placeholders they were before,
//! unless `dnr.require_signed` is on; then only `dnr.set_context_signed`
//! (and superusers) may change them, and the unsigned setters here refuse.

use std::collections::BTreeSet;
use std::ffi::{CStr, CString};

use pgrx::prelude::*;
use pgrx::{pg_sys, Array, IntoDatum, Uuid};

use crate::invalid;

pub(crate) const TENANT: &CStr = c"dnr.tenant_id";
pub(crate) const USER: &CStr = c"dnr.user_id";
pub(crate) const ROLES: &CStr = c"dnr.roles";

// ---------------------------------------------------------------------------
// Readers
// ---------------------------------------------------------------------------

/// Runs `f` on the current value of a setting; None when it is unset or
/// empty. The value is only borrowed: it lives in PostgreSQL's settings and
/// is valid until the next change of settings, so `f` must not change any.
fn with_setting<R>(name: &CStr, f: impl FnOnce(&CStr) -> R) -> Option<R> {
    // SAFETY: `name` is NUL-terminated. GetConfigOption returns NULL for a
    // missing setting (missing_ok) or for a placeholder without a value,
    // otherwise a NUL-terminated string owned by the settings.
    let value = unsafe {
        let value = pg_sys::GetConfigOption(name.as_ptr(), true, false);
        if value.is_null() {
            return None;
        }
        CStr::from_ptr(value)
    };
    (!value.is_empty()).then(|| f(value))
}

/// A setting as a uuid: the same spellings and the same error as
/// `current_setting(...)::uuid`.
fn setting_uuid(name: &CStr) -> Option<Uuid> {
    with_setting(name, |value| match canonical_uuid(value.to_bytes()) {
        Some(uuid) => uuid,
        None => uuid_in(value.to_owned()),
    })
}

/// Parses the canonical spelling (8-4-4-4-12 hex digits, as the setters
/// write it). Anything else is left to `uuid_in`.
fn canonical_uuid(text: &[u8]) -> Option<Uuid> {
    const HYPHENS: [usize; 4] = [8, 13, 18, 23];
    if text.len() != 36 || HYPHENS.iter().any(|&i| text[i] != b'-') {
        return None;
    }
    fn hex(c: u8) -> Option<u8> {
        match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            b'A'..=b'F' => Some(c - b'A' + 10),
            _ => None,
        }
    }
    let mut bytes = [0u8; 16];
    let mut at = 0;
    for byte in &mut bytes {
        if HYPHENS.contains(&at) {
            at += 1;
        }
        *byte = hex(text[at])? << 4 | hex(text[at + 1])?;
        at += 2;
    }
    Some(Uuid::from_bytes(bytes))
}

/// PostgreSQL's own uuid parser: every spelling a cast to uuid accepts, and
/// its error for the rest.
fn uuid_in(value: CString) -> Uuid {
    // SAFETY: uuid_in takes one cstring argument; it reports malformed
    // input with ereport(ERROR).
    let uuid = unsafe {
        pgrx::direct_function_call::<Uuid>(pg_sys::uuid_in, &[value.as_c_str().into_datum()])
    };
    match uuid {
        Some(uuid) => uuid,
        None => invalid(format!("invalid uuid: {}", value.to_string_lossy())),
    }
}

/// The current value of a setting, copied; None when it is unset or empty.
fn setting(name: &CStr) -> Option<CString> {
    with_setting(name, CStr::to_owned)
}

/// The roles in the `dnr.roles` setting (comma-separated).
fn roles_in_setting() -> Option<CString> {
    setting(ROLES)
}

/// The current tenant; NULL when none is set.
#[pg_extern(stable, parallel_safe)]
fn current_tenant() -> Option<Uuid> {
    setting_uuid(TENANT)
}

/// The current user; NULL when none is set.
#[pg_extern(stable, parallel_safe)]
fn current_user_id() -> Option<Uuid> {
    setting_uuid(USER)
}

/// The current roles; empty when none are set.
#[pg_extern(stable, parallel_safe)]
fn current_roles() -> Vec<String> {
    match roles_in_setting() {
        Some(roles) => roles
            .to_bytes()
            .split(|b| *b == b',')
            .map(|role| String::from_utf8_lossy(role).into_owned())
            .collect(),
        None => Vec::new(),
    }
}

/// Whether the current roles include `role_name`. Never NULL: false when no
/// roles are set or the argument is NULL.
#[pg_extern(stable, parallel_safe)]
fn has_role(role_name: Option<&str>) -> bool {
    let Some(role) = role_name else {
        return false;
    };
    match roles_in_setting() {
        Some(roles) => roles
            .to_bytes()
            .split(|b| *b == b',')
            .any(|r| r == role.as_bytes()),
        None => false,
    }
}

/// Whether a user is set (a malformed user is an error).
#[pg_extern(stable, parallel_safe)]
fn authenticated() -> bool {
    setting_uuid(USER).is_some()
}

// ---------------------------------------------------------------------------
// Setters: transaction-local unless local => false (NULL counts as the
// default). uuid-typed arguments make injection through them impossible;
// role names are checked by dnr-core before anything is set.
// ---------------------------------------------------------------------------

/// Sets settings the way `pg_catalog.set_config(name, value, is_local)`
/// does.
pub(crate) struct Setter {
    context: pg_sys::GucContext::Type,
    action: pg_sys::GucAction::Type,
}

impl Setter {
    /// The unsigned setters' setter: refused while `dnr.require_signed` is
    /// on, unless the current role is a superuser.
    fn unsigned(function: &str, local: Option<bool>) -> Self {
        crate::signed::refuse_unsigned(function);
        Setter::new(local)
    }

    /// `set_context_signed`'s setter, for a verified token only:
    /// transaction-local, with a superuser's context, which the context
    /// settings require while `dnr.require_signed` is on.
    pub(crate) fn signed() -> Self {
        Setter {
            context: pg_sys::GucContext::PGC_SUSET,
            action: pg_sys::GucAction::GUC_ACTION_LOCAL,
        }
    }

    fn new(local: Option<bool>) -> Self {
        // SAFETY: superuser() only reads the current role's catalog entry.
        let superuser = unsafe { pg_sys::superuser() };
        Setter {
            context: if superuser {
                pg_sys::GucContext::PGC_SUSET
            } else {
                pg_sys::GucContext::PGC_USERSET
            },
            action: if local.unwrap_or(true) {
                pg_sys::GucAction::GUC_ACTION_LOCAL
            } else {
                pg_sys::GucAction::GUC_ACTION_SET
            },
        }
    }

    pub(crate) fn set(&self, name: &CStr, value: &CStr) {
        // Clearing a transaction-local value that is already empty changes
        // nothing anyone can observe: the value would end with the
        // transaction (or savepoint) and restore what is there now, and a
        // later SET in the transaction overrides it either way. Skipping it
        // saves a set_config_option for each part a caller leaves empty. (A
        // non-empty value is rarely the current one, so it is not looked
        // up.) A session value (local => false) is always set: the current
        // value may be a transaction-local one that hides another session
        // value.
        if value.is_empty() && self.action == pg_sys::GucAction::GUC_ACTION_LOCAL {
            // SAFETY: `name` is NUL-terminated; the returned value is
            // compared at once. NULL is a setting that does not exist, or a
            // placeholder that has no value (it reads as ''): only a
            // placeholder that exists has flags (GUC_CUSTOM_PLACEHOLDER),
            // and one that does not exist must be created.
            let unchanged = unsafe {
                let current = pg_sys::GetConfigOption(name.as_ptr(), true, false);
                if current.is_null() {
                    pg_sys::GetConfigOptionFlags(name.as_ptr(), true) != 0
                } else {
                    *current == 0
                }
            };
            if unchanged {
                return;
            }
        }
        // SAFETY: both strings are NUL-terminated and outlive the call;
        // set_config_option copies the value. With elevel 0 and source
        // PGC_S_SESSION, any failure is an ereport(ERROR).
        unsafe {
            pg_sys::set_config_option(
                name.as_ptr(),
                value.as_ptr(),
                self.context,
                pg_sys::GucSource::PGC_S_SESSION,
                self.action,
                true,
                0,
                false,
            );
        }
        if crate::citus::loaded() {
            crate::citus::forward(
                name,
                value,
                self.action == pg_sys::GucAction::GUC_ACTION_LOCAL,
            );
        }
    }
}

/// The canonical text of a uuid (lowercase, hyphenated, as `uuid_out`
/// writes it), NUL-terminated; empty for NULL. Formatted by hand: `Display`
/// costs more than setting the value.
pub(crate) struct UuidText([u8; 37]);

impl UuidText {
    fn new(uuid: Option<Uuid>) -> Self {
        UuidText::from_bytes(uuid.map(|uuid| *uuid.as_bytes()))
    }

    pub(crate) fn from_bytes(uuid: Option<[u8; 16]>) -> Self {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut text = [0u8; 37];
        if let Some(uuid) = uuid {
            let mut at = 0;
            for (i, byte) in uuid.iter().enumerate() {
                if matches!(i, 4 | 6 | 8 | 10) {
                    text[at] = b'-';
                    at += 1;
                }
                text[at] = HEX[usize::from(byte >> 4)];
                text[at + 1] = HEX[usize::from(byte & 0x0f)];
                at += 2;
            }
        }
        UuidText(text)
    }

    pub(crate) fn as_c_str(&self) -> &CStr {
        // The array always holds a NUL (the last byte at the latest).
        CStr::from_bytes_until_nul(&self.0).unwrap_or(c"")
    }
}

/// The `dnr.roles` text as a C string. Valid role names hold no NUL.
fn roles_c_string(roles: String) -> CString {
    match CString::new(roles) {
        Ok(roles) => roles,
        Err(_) => invalid("invalid role name: contains a NUL byte".to_string()),
    }
}

/// Validates role names and returns them as the comma-separated text stored
/// in the `dnr.roles` setting (sorted, without duplicates). NULL is no roles;
/// a NULL element or an invalid name is an error.
pub(crate) fn roles_text<S: AsRef<str>>(roles: impl IntoIterator<Item = Option<S>>) -> String {
    let mut valid = BTreeSet::new();
    for role in roles {
        let Some(role) = role else {
            invalid("invalid role name: roles cannot be NULL".to_string());
        };
        match dnr_core::context::validate_role(role.as_ref()) {
            Ok(role) => {
                valid.insert(role);
            }
            Err(error) => invalid(error.to_string()),
        }
    }
    valid.into_iter().collect::<Vec<_>>().join(",")
}

/// `roles_text` of an optional text[] argument.
fn roles_array_text(roles: Option<&Array<&str>>) -> String {
    match roles {
        Some(roles) => roles_text(roles.iter()),
        None => String::new(),
    }
}

/// Sets the whole context: tenant, user and roles (NULL clears a part).
///
/// `roles` defaults to NULL (no roles) rather than `'{}'`: PostgreSQL reads
/// a call's omitted defaults from their stored text twice per statement it
/// parses and plans, and an array constant costs ~7k instructions more to
/// read than NULL, ~5% of a point lookup's server time (bench/pg.md).
#[pg_extern(volatile)]
fn set_context(
    tenant: Option<Uuid>,
    user_id: default!(Option<Uuid>, "NULL"),
    roles: default!(Option<Array<&str>>, "NULL"),
    local: default!(Option<bool>, true),
) {
    // validate everything before setting anything
    let setter = Setter::unsigned("dnr.set_context", local);
    let roles = roles_c_string(roles_array_text(roles.as_ref()));
    setter.set(TENANT, UuidText::new(tenant).as_c_str());
    setter.set(USER, UuidText::new(user_id).as_c_str());
    setter.set(ROLES, &roles);
}

/// Sets the tenant (NULL clears it).
#[pg_extern(volatile)]
fn set_tenant(tenant: Option<Uuid>, local: default!(Option<bool>, true)) {
    Setter::unsigned("dnr.set_tenant", local).set(TENANT, UuidText::new(tenant).as_c_str());
}

/// Sets the user (NULL clears it).
#[pg_extern(volatile)]
fn set_user(user_id: Option<Uuid>, local: default!(Option<bool>, true)) {
    Setter::unsigned("dnr.set_user", local).set(USER, UuidText::new(user_id).as_c_str());
}

/// Sets the roles (NULL or empty clears them).
#[pg_extern(volatile)]
fn set_roles(roles: Option<Array<&str>>, local: default!(Option<bool>, true)) {
    let setter = Setter::unsigned("dnr.set_roles", local);
    let roles = roles_c_string(roles_array_text(roles.as_ref()));
    setter.set(ROLES, &roles);
}

/// Clears the transaction's and the session's context.
#[pg_extern(volatile)]
fn clear_context() {
    let setter = Setter::unsigned("dnr.clear_context", Some(false));
    setter.set(TENANT, c"");
    setter.set(USER, c"");
    setter.set(ROLES, c"");
}

/// The tenant whose schema holds a table: the uuid in the name of its
/// schema when that is `tenant_<32 lowercase hex digits>` (as
/// `dnr.create_tenant` names it), otherwise NULL. The fence of tables in
/// tenant schemas (`tenancy: mode: schema`) compares it with the
/// context's tenant.
#[pg_extern(stable, parallel_safe)]
fn relation_tenant(rel: pg_sys::Oid) -> Option<Uuid> {
    // SAFETY: both read the syscache; a relation or namespace that does not
    // exist gives InvalidOid / NULL.
    let schema = unsafe {
        let namespace = pg_sys::get_rel_namespace(rel);
        if namespace == pg_sys::InvalidOid {
            return None;
        }
        let name = pg_sys::get_namespace_name(namespace);
        if name.is_null() {
            return None;
        }
        CStr::from_ptr(name).to_bytes().to_vec()
    };
    let hex = schema.strip_prefix(b"tenant_")?;
    if hex.len() != 32 || !hex.iter().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f')) {
        return None;
    }
    let mut bytes = [0u8; 16];
    for (byte, pair) in bytes.iter_mut().zip(hex.chunks(2)) {
        let digit = |c: u8| if c <= b'9' { c - b'0' } else { c - b'a' + 10 };
        *byte = digit(pair[0]) << 4 | digit(pair[1]);
    }
    Some(Uuid::from_bytes(bytes))
}
