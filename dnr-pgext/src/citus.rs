//! Citus: DNR's context on every worker of a distributed transaction.
//!
//! RLS policies of a distributed table run on the workers, in the sessions
//! Citus opens there, which do not see the coordinator's settings. Citus
//! forwards `SET LOCAL` commands to the workers of the transaction (those it
//! uses already, and every one it opens later) when
//! `citus.propagate_set_commands` is `local`, also when a function runs
//! them. So when Citus is loaded, each transaction-local context setting is
//! also run as a `SET LOCAL` statement, with propagation switched on for the
//! transaction. A session-wide context cannot be forwarded (Citus keeps its
//! worker connections across transactions): it is refused, except clearing.

use std::ffi::CStr;

use pgrx::prelude::*;

/// Citus's setting, present when its library is loaded.
const PROPAGATE: &CStr = c"citus.propagate_set_commands";

/// Whether the Citus library is loaded in this backend.
pub(crate) fn loaded() -> bool {
    // SAFETY: a NUL-terminated name; missing_ok returns NULL for none.
    unsafe { !pg_sys::GetConfigOption(PROPAGATE.as_ptr(), true, false).is_null() }
}

/// Whether this database has the citus extension (apply compiles for it).
pub(crate) fn installed() -> bool {
    loaded()
        && Spi::get_one::<bool>(
            "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_extension WHERE extname = 'citus')",
        )
        .ok()
        .flatten()
        .unwrap_or(false)
}

/// Forwards a context setting just set on the coordinator to the workers.
pub(crate) fn forward(name: &CStr, value: &CStr, local: bool) {
    if !local {
        if value.is_empty() {
            // Clearing the session's value: clear this transaction's
            // workers too.
            forward(name, value, true);
            return;
        }
        error!(
            "dnr: on Citus the context is transaction-local: call {}'s setter with local => true (the default) in each transaction",
            name.to_string_lossy()
        );
    }
    // SAFETY: NUL-terminated strings; set_config_option copies the value
    // and reports any failure with ereport(ERROR).
    unsafe {
        pg_sys::set_config_option(
            PROPAGATE.as_ptr(),
            c"local".as_ptr(),
            pg_sys::GucContext::PGC_USERSET,
            pg_sys::GucSource::PGC_S_SESSION,
            pg_sys::GucAction::GUC_ACTION_LOCAL,
            true,
            0,
            false,
        );
    }
    // The value is a canonical uuid or checked role names; quoted anyway.
    let value = value.to_string_lossy().replace('\'', "''");
    let statement = format!("SET LOCAL {} = '{value}'", name.to_string_lossy());
    if let Err(error) = Spi::run(&statement) {
        error!("dnr: cannot forward the context to the Citus workers: {error}");
    }
}

/// The compiled script as one `DO` block that runs each statement by
/// itself: Citus forwards DDL on distributed tables to the shards by the
/// command's text, and a multi-statement string there fails with "cannot
/// insert multiple commands into a prepared statement".
pub(crate) fn one_statement_at_a_time(ddl: &str) -> String {
    // A dollar-quote tag that the script does not contain.
    let tag = (0..)
        .map(|n| format!("$dnr_citus{n}$"))
        .find(|tag| !ddl.contains(tag.as_str()))
        .unwrap_or_default();
    let mut block = format!("DO {tag}\nBEGIN\n");
    for statement in dnr_core::compile::postgres::statements(ddl) {
        block.push_str("  EXECUTE '");
        block.push_str(&statement.replace('\'', "''"));
        block.push_str("';\n");
    }
    block.push_str(&format!("END\n{tag};\n"));
    block
}
