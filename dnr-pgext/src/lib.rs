//! `CREATE EXTENSION dnr`: PostgreSQL row-level security driven by DNR
//! policies.
//!
//! This crate is a thin adapter. The policy language, the reference evaluator
//! and the SQL compiler live in `dnr-core`; the functions here convert
//! arguments, call the core and turn its errors into PostgreSQL errors.
//! The context readers and setters are C functions over PostgreSQL's
//! settings (`context.rs`: they run on every query, so they must be cheap);
//! signed context verifies tokens with `dnr_core::signed` and can lock the
//! context to them (`signed.rs`).
//! Everything that is naturally SQL (the fill trigger, schema-per-tenant
//! helpers, the bookkeeping of `apply`) is SQL and PL/pgSQL in `sql.rs`.
//!
//! Nothing here panics on input: every failure is reported with
//! `ereport(ERROR)`, which PostgreSQL turns into an ordinary error that rolls
//! back the caller's (sub)transaction. Errors never carry a Rust backtrace
//! (`_PG_init`), and every function that runs dnr-core's parser, checker,
//! evaluator or compiler first checks PostgreSQL's `max_stack_depth`
//! (`stack_guard`).

use std::cell::RefCell;
use std::rc::Rc;

use dnr_core::ast::TenantMode;
use dnr_core::compile::{compile as compile_policies, Target};
use dnr_core::{Decision, PolicySet, TenantContext};
use pgrx::pg_sys::panic::ErrorReport;
use pgrx::prelude::*;
use pgrx::JsonB;

mod citus;
mod context;
mod registry;
mod related;
mod signed;
mod sql;

::pgrx::pg_module_magic!(name = c"dnr", version);

/// Runs once when a backend loads the library, right after pgrx's
/// `Pg_magic_func` installed its panic hook.
///
/// pgrx turns every PostgreSQL error raised below a Rust frame (e.g. a
/// permission error in `dnr.apply`'s SPI calls) into a Rust panic and back;
/// its panic hook captures `std::backtrace::Backtrace::capture()` on every
/// such panic, and pgrx appends a captured backtrace to the error's DETAIL.
/// Whether it is captured depends on `RUST_BACKTRACE`/`RUST_LIB_BACKTRACE`
/// in the server's environment, which DNR does not control. Errors must not
/// show DNR's internals to SQL clients, whatever the environment, so the
/// hook is replaced by one that records nothing. (The hook's only other
/// product is the file and line of an unexpected Rust panic, which pgrx
/// reports as LOCATION; the panic's message is still the error message.)
/// The hook is process-wide but per library: this library's copy of the
/// Rust standard library, i.e. DNR's code and pgrx's inside it.
///
/// It also defines the library's settings: the context settings
/// (`dnr.tenant_id`, `dnr.user_id`, `dnr.roles`, placeholders until then)
/// and those of signed context (`signed.rs`).
#[pg_guard]
pub extern "C-unwind" fn _PG_init() {
    std::panic::set_hook(Box::new(|_| {}));
    signed::define_settings();
}

/// PostgreSQL's stack guard: an ERROR ("stack depth limit exceeded") when
/// the backend's stack already exceeds `max_stack_depth`. Called at the entry
/// of every function that runs dnr-core's front end, evaluator or compilers
/// (dnr-core bounds their own recursion by its nesting limits).
fn stack_guard() {
    // SAFETY: check_stack_depth only compares the current stack address with
    // the limit; it reports an excess with ereport(ERROR), which pgrx's
    // guard turns into an ordinary PostgreSQL error.
    unsafe { pgrx::pg_sys::check_stack_depth() }
}

/// The file name shown in rendered policy errors.
const SOURCE_NAME: &str = "policy";

/// Raises a PostgreSQL ERROR. Never returns: PostgreSQL unwinds to the
/// caller's (sub)transaction.
fn raise(code: PgSqlErrorCode, message: String, detail: Option<String>, hint: Option<&str>) -> ! {
    let mut report = ErrorReport::new(code, message, "dnr");
    if let Some(detail) = detail {
        report = report.set_detail(detail);
    }
    if let Some(hint) = hint {
        report = report.set_hint(hint);
    }
    report.report(PgLogLevel::ERROR);
    // `report` at ERROR level does not return.
    unreachable!("ereport(ERROR) returned")
}

fn invalid(message: String) -> ! {
    raise(
        PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
        message,
        None,
        None,
    )
}

/// Parses a policy source, reporting every error with its line and column:
/// the message lists them (`line:col: message; ...`), the detail shows them
/// with the source line and a caret.
fn parse_policy(source: &str) -> PolicySet {
    match dnr_core::parse(source) {
        Ok(set) => set,
        Err(errors) => raise(
            PgSqlErrorCode::ERRCODE_SYNTAX_ERROR,
            format!("invalid policy: {errors}"),
            Some(errors.render(source, SOURCE_NAME)),
            None,
        ),
    }
}

fn compile_postgres(set: &PolicySet, target: Target) -> String {
    match compile_policies(set, target) {
        Ok(sql) => sql,
        Err(error) => raise(
            PgSqlErrorCode::ERRCODE_FEATURE_NOT_SUPPORTED,
            format!("cannot compile policy for postgres: {error}"),
            None,
            None,
        ),
    }
}

fn spi_failed(what: &str, error: pgrx::spi::Error) -> ! {
    raise(
        PgSqlErrorCode::ERRCODE_INTERNAL_ERROR,
        format!("dnr: {what}: {error}"),
        None,
        None,
    )
}

/// Validates role names and returns them as the comma-separated text stored
/// in the `dnr.roles` setting (sorted, without duplicates). NULL is no roles;
/// a NULL element or an invalid name is an error.
#[pg_extern(immutable, parallel_safe)]
fn roles_setting(roles: Option<Vec<Option<String>>>) -> String {
    context::roles_text(roles.into_iter().flatten())
}

/// The SQL that `dnr.apply(source)` would run, without running it.
#[pg_extern(immutable, parallel_safe)]
fn compile(source: &str) -> String {
    stack_guard();
    compile_postgres(&parse_policy(source), Target::Postgres)
}

/// Parses a policy source and compiles it as `apply` runs it: for Citus
/// when Citus is installed (policies and tenant filling that distributed
/// tables take, one statement at a time), for PostgreSQL otherwise.
fn compile_for_apply(source: &str) -> (PolicySet, String) {
    let set = parse_policy(source);
    let target = if citus::installed() {
        Target::PostgresCitus
    } else {
        Target::Postgres
    };
    let mut ddl = compile_postgres(&set, target);
    if target == Target::PostgresCitus {
        ddl = citus::one_statement_at_a_time(&ddl);
    }
    (set, ddl)
}

/// What the registry records, and `dnr.create_tenant` runs, for a policy
/// source: `{"mode", "ddl", "tables"}`, compiled here from the source, so
/// that no role can record (or have a tenant's creation run) DDL that DNR
/// did not compile. An invalid source is an error, never a record.
#[pg_extern(stable)]
fn _compile_applied(source: &str) -> JsonB {
    stack_guard();
    let (set, ddl) = compile_for_apply(source);
    let tables: Vec<&str> = set.entities.iter().map(|e| e.table.as_str()).collect();
    JsonB(serde_json::json!({
        "mode": set.tenancy.mode.as_str(),
        "ddl": ddl,
        "tables": tables,
    }))
}

/// Applies a policy file in the caller's transaction: creates missing
/// declared tables, enables and forces RLS, replaces DNR's policies (also
/// removing DNR policies an earlier apply created that this source no longer
/// has) and records the source for `dnr.check`. With tenancy mode `schema`
/// all of this happens in every tenant's schema (and `dnr.create_tenant`
/// repeats it for new tenants). Any error rolls back all of it.
#[pg_extern(volatile)]
fn apply(source: &str) -> String {
    stack_guard();
    let (set, ddl) = compile_for_apply(source);
    let tables: Vec<String> = set.entities.iter().map(|e| e.table.clone()).collect();
    let mode = set.tenancy.mode;
    let removed = Spi::get_one_with_args::<i32>(
        "SELECT dnr._apply($1, $2, $3, $4)",
        &[
            source.into(),
            ddl.as_str().into(),
            tables.into(),
            mode.as_str().into(),
        ],
    );
    let removed = match removed {
        Ok(removed) => removed.unwrap_or(0),
        Err(error) => spi_failed("apply", error),
    };
    let entities = set
        .entities
        .iter()
        .map(|e| format!("{} ({})", e.name, e.table))
        .collect::<Vec<_>>()
        .join(", ");
    let mut summary = format!(
        "applied {} {}: {}",
        set.entities.len(),
        if set.entities.len() == 1 {
            "entity"
        } else {
            "entities"
        },
        if entities.is_empty() {
            "-".to_string()
        } else {
            entities
        }
    );
    if mode == TenantMode::Schema {
        // the caller's tenants (dnr.list_tenants, 0.2.0); the library also
        // serves 0.1.0's SQL until ALTER EXTENSION dnr UPDATE, where every
        // tenant is the caller's
        let listed = match Spi::get_one::<bool>(
            "SELECT pg_catalog.to_regprocedure('dnr.list_tenants()') IS NOT NULL",
        ) {
            Ok(listed) => listed.unwrap_or(false),
            Err(error) => spi_failed("apply", error),
        };
        let count = if listed {
            "SELECT pg_catalog.count(*) FROM dnr.list_tenants()"
        } else {
            "SELECT pg_catalog.count(*) FROM dnr.tenants"
        };
        let schemas = match Spi::get_one::<i64>(count) {
            Ok(schemas) => schemas.unwrap_or(0),
            Err(error) => spi_failed("apply", error),
        };
        summary.push_str(&format!(
            " in {schemas} tenant {}",
            if schemas == 1 { "schema" } else { "schemas" }
        ));
    }
    if removed > 0 {
        summary.push_str(&format!(
            "; removed {removed} stale DNR {}",
            if removed == 1 { "policy" } else { "policies" }
        ));
    }
    summary
}

thread_local! {
    /// The last policy source `dnr.check` parsed, and its parse.
    static CHECK_CACHE: RefCell<Option<(String, Rc<PolicySet>)>> = const { RefCell::new(None) };
}

/// The parsed last applied source, parsed only when it changed since the
/// previous call in this backend. Shared, so that no borrow of the cache is
/// held while the caller runs queries (which may call `dnr.check` again).
fn applied_policy(source: &str) -> Rc<PolicySet> {
    let cached = CHECK_CACHE.with(|cache| match cache.borrow().as_ref() {
        Some((cached, set)) if cached == source => Some(Rc::clone(set)),
        _ => None,
    });
    if let Some(set) = cached {
        return set;
    }
    let set = Rc::new(parse_policy(source));
    CHECK_CACHE.with(|cache| {
        *cache.borrow_mut() = Some((source.to_string(), Rc::clone(&set)));
    });
    set
}

/// The evaluator's answer: may the current context perform `op` on
/// `record` of `entity`, under the policy last applied with `dnr.apply`?
///
/// SECURITY DEFINER (with a pinned `search_path`), like `check_reason`:
/// application roles may call it but not read `dnr.applied`, whose newest
/// source it evaluates. It returns only the decision, never the source.
/// When the entity's rules use `exists`, the related entities' rows are read
/// from the applied tables as the calling role reads them (`related.rs`),
/// as of the calling statement's snapshot.
#[pg_extern(stable, security_definer)]
#[search_path(pg_catalog, pg_temp)]
fn check(entity: &str, op: &str, record: JsonB) -> bool {
    stack_guard();
    decide(entity, op, &record.0).allowed
}

/// Why `dnr.check` answers as it does: the rule, forbid or fence that
/// decided. PostgreSQL's own RLS errors do not name DNR's rules; this does.
#[pg_extern(stable, security_definer)]
#[search_path(pg_catalog, pg_temp)]
fn check_reason(entity: &str, op: &str, record: JsonB) -> String {
    stack_guard();
    decide(entity, op, &record.0).reason
}

fn decide(entity: &str, op: &str, record: &serde_json::Value) -> Decision {
    let state = Spi::get_two::<String, Vec<Option<String>>>(
        "SELECT (SELECT a.source FROM dnr.applied a ORDER BY a.id DESC LIMIT 1), \
         ARRAY[pg_catalog.current_setting('dnr.tenant_id', true), \
               pg_catalog.current_setting('dnr.user_id', true), \
               pg_catalog.current_setting('dnr.roles', true)]",
    );
    let (source, settings) = match state {
        Ok(state) => state,
        Err(error) => spi_failed("check", error),
    };
    let Some(source) = source else {
        raise(
            PgSqlErrorCode::ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
            "no policy has been applied".to_string(),
            None,
            Some("call dnr.apply(source) first"),
        );
    };
    let settings = settings.unwrap_or_default();
    let setting = |i: usize| settings.get(i).cloned().flatten();
    let context = context_from_settings(setting(0), setting(1), setting(2));
    let set = applied_policy(&source);
    let (operation, row) = match set.request(entity, op, record) {
        Ok(request) => (request.op, request.row),
        Err(error) => invalid(error.to_string()),
    };
    // the rows `exists` rules look through, as the database holds them now
    let related = related::related_rows(
        &set,
        entity,
        context.tenant.map(|tenant| tenant.to_string()),
    );
    match set.decide_with(entity, operation, &context, &row, &related) {
        Ok(decision) => decision,
        Err(error) => invalid(format!(
            "cannot check `{entity}` {}: {error}",
            operation.as_str()
        )),
    }
}

/// The context as the GUCs hold it; malformed values are errors, never
/// "unset".
fn context_from_settings(
    tenant: Option<String>,
    user: Option<String>,
    roles: Option<String>,
) -> TenantContext {
    let tenant = match dnr_core::context::parse_optional_uuid(tenant.as_deref()) {
        Ok(tenant) => tenant,
        Err(error) => invalid(format!("invalid dnr.tenant_id setting: {error}")),
    };
    let user = match dnr_core::context::parse_optional_uuid(user.as_deref()) {
        Ok(user) => user,
        Err(error) => invalid(format!("invalid dnr.user_id setting: {error}")),
    };
    let roles = match dnr_core::context::parse_role_list(roles.as_deref().unwrap_or("")) {
        Ok(roles) => roles,
        Err(error) => invalid(format!("invalid dnr.roles setting: {error}")),
    };
    TenantContext {
        tenant,
        user,
        roles,
    }
}

#[cfg(any(test, feature = "pg_test"))]
#[pg_schema]
#[allow(clippy::unwrap_used)]
mod tests {
    use pgrx::prelude::*;

    #[pg_test]
    fn roles_setting_sorts_and_dedups() {
        let roles = vec![
            Some("staff".to_string()),
            Some("admin".to_string()),
            Some("staff".to_string()),
        ];
        assert_eq!(crate::roles_setting(Some(roles)), "admin,staff");
    }

    #[pg_test]
    fn context_round_trips_through_gucs() {
        Spi::run("SELECT dnr.set_context('00000000-0000-0000-0000-00000000000a', NULL, '{admin}')")
            .unwrap();
        let tenant = Spi::get_one::<String>("SELECT dnr.current_tenant()::text").unwrap();
        assert_eq!(
            tenant.as_deref(),
            Some("00000000-0000-0000-0000-00000000000a")
        );
        let admin = Spi::get_one::<bool>("SELECT dnr.has_role('admin')").unwrap();
        assert_eq!(admin, Some(true));
    }
}

/// Required by `cargo pgrx test`.
#[cfg(test)]
pub mod pg_test {
    pub fn setup(_options: Vec<&str>) {}

    #[must_use]
    pub fn postgresql_conf_options() -> Vec<&'static str> {
        vec![]
    }
}
