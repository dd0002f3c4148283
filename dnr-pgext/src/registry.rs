//! Who writes DNR's registries on behalf of a role that owns its tables but
//! holds no privilege on `dnr.applied`, `dnr.managed_tables`, `dnr.tenants`
//! or `dnr.migrations`.
//!
//! The registry operations (`dnr._reg_*` in `sql.rs`) run with the
//! extension owner's rights and check that the calling role may do what it
//! asks (owns the table, the tenant schema, the migration store). A SECURITY
//! DEFINER function cannot tell who called it (inside it `current_user` is
//! its owner), so the calling role is read here, in a function that runs
//! with the caller's rights: `dnr._registry(op, args)` reads the current
//! user id, keeps it for exactly one call of `dnr._registry_run` (SECURITY
//! DEFINER), which takes it with `dnr._caller()` and dispatches to the
//! operation. Outside that call `dnr._caller()` is an error, so calling
//! `dnr._registry_run` directly does nothing, and no role can name another
//! role as the caller.

use std::cell::Cell;

use pgrx::prelude::*;
use pgrx::JsonB;

use crate::{raise, spi_failed};

thread_local! {
    /// The role that called `dnr._registry`, until `dnr._caller()` takes it.
    static CALLER: Cell<Option<pg_sys::Oid>> = const { Cell::new(None) };
}

/// Holds the caller for one registry call; dropping it (also while an error
/// unwinds) restores what was there before.
struct CallerScope {
    previous: Option<pg_sys::Oid>,
}

impl CallerScope {
    fn enter(caller: pg_sys::Oid) -> CallerScope {
        CallerScope {
            previous: CALLER.replace(Some(caller)),
        }
    }
}

impl Drop for CallerScope {
    fn drop(&mut self) {
        CALLER.set(self.previous);
    }
}

/// Runs the registry operation `op` with `args` for the calling role.
#[pg_extern(volatile)]
fn _registry(op: &str, args: JsonB) -> Option<JsonB> {
    // SAFETY: reads the backend's current user id: the role this function
    // runs as, i.e. whoever called it (it is not SECURITY DEFINER).
    let caller = unsafe { pg_sys::GetUserId() };
    let _scope = CallerScope::enter(caller);
    match Spi::get_one_with_args::<JsonB>(
        "SELECT dnr._registry_run($1, $2)",
        &[op.into(), args.into()],
    ) {
        Ok(result) => result,
        Err(error) => spi_failed("registry", error),
    }
}

/// The role `dnr._registry` runs an operation for; once per call, and an
/// error anywhere else.
#[pg_extern(volatile)]
fn _caller() -> pg_sys::Oid {
    match CALLER.take() {
        Some(caller) => caller,
        None => raise(
            PgSqlErrorCode::ERRCODE_INSUFFICIENT_PRIVILEGE,
            "dnr: registry operations run only through dnr's functions".to_string(),
            None,
            None,
        ),
    }
}
