//! The rows `exists` rules look through, for `dnr.check`/`check_reason`.
//!
//! dnr-core's evaluator decides an `exists` over the stored rows of the
//! related entity and applies that entity's tenant fence and read rule
//! itself; `PolicySet::related_entities` says which entities a decision may
//! need. This module reads those rows from the tables `dnr.apply` put the
//! policy on:
//!
//! - **Which table.** The one `dnr.apply` (or `dnr.create_tenant`) recorded
//!   in `dnr.managed_tables` for the entity's table name; with tenancy mode
//!   `schema`, the one in the current tenant's schema (`dnr.use_tenant`
//!   sets the tenant). These are the tables the compiled policies' inline
//!   `EXISTS` subqueries name, whatever the caller's `search_path` is now
//!   (`check` runs with a pinned `search_path`).
//! - **As whom.** `check` is SECURITY DEFINER (it reads `dnr.applied`), but
//!   the rows are read with the privileges of the role that called it
//!   (`GetOuterUserId`, the current role outside security-definer
//!   functions), as a query of that role reads them: its table privileges
//!   and PostgreSQL's row-level security apply, and nothing the table's
//!   owner defined (a cast to json of a column type, a policy's function)
//!   runs with the extension owner's privileges. RLS filters by the same
//!   fence and read rule the evaluator applies again, so the answer is the
//!   evaluator's on the rows the caller may read, as an inline `EXISTS` in
//!   RLS sees them.
//! - **Which version.** `check` is STABLE: the rows are those of the calling
//!   statement's snapshot, so a change is seen from the next statement on.

use std::ffi::c_int;

use dnr_core::ast::{Entity, TenantMode};
use dnr_core::{PolicySet, RelatedRows, Row};
use pgrx::pg_sys;
use pgrx::prelude::*;

use crate::{invalid, raise, spi_failed};

/// Reads every row of every entity a decision on `entity` may look
/// through. `tenant` is the context's tenant (which schema, in tenancy mode
/// `schema`).
pub(crate) fn related_rows(set: &PolicySet, entity: &str, tenant: Option<String>) -> RelatedRows {
    let mut related = RelatedRows::new();
    let entities = set.related_entities(entity);
    if entities.is_empty() {
        return related;
    }
    let schema = match set.tenancy.mode {
        TenantMode::Schema => Some(tenant_schema(tenant)),
        _ => None,
    };
    // Resolve every table first (as the extension's owner: the registries
    // are not the caller's to read), then read them as the caller.
    let tables: Vec<(&Entity, String)> = entities
        .into_iter()
        .map(|e| {
            let table = applied_table(&e.name, &e.table, schema.as_deref());
            (e, table)
        })
        .collect();
    let _caller = AsCaller::enter();
    for (definition, table) in tables {
        let rows = read_rows(&table)
            .iter()
            .map(|json| match Row::from_json(definition, json) {
                Ok(row) => row,
                Err(error) => invalid(format!(
                    "cannot read a row of `{}` ({table}): {error}",
                    definition.name
                )),
            })
            .collect();
        related.insert(&definition.name, rows);
    }
    related
}

/// The current tenant's schema (tenancy mode `schema`).
fn tenant_schema(tenant: Option<String>) -> String {
    let Some(tenant) = tenant else {
        raise(
            PgSqlErrorCode::ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
            "dnr.check: the policy's `exists` rules read the current tenant's tables, but no tenant is set".to_string(),
            None,
            Some("with tenancy mode schema, call dnr.use_tenant(id) first"),
        );
    };
    let schema = Spi::get_one_with_args::<String>(
        "SELECT t.schema_name::text FROM dnr.tenants t WHERE t.id = $1::uuid",
        &[tenant.as_str().into()],
    );
    match schema {
        Ok(Some(schema)) => schema,
        Ok(None) => raise(
            PgSqlErrorCode::ERRCODE_NO_DATA_FOUND,
            format!("unknown tenant {tenant}"),
            None,
            None,
        ),
        Err(error) => spi_failed("check", error),
    }
}

/// The table (as qualified regclass text) that `dnr.apply` applied the
/// policy to for the entity `name` with table `table`, in `schema` when
/// given.
fn applied_table(name: &str, table: &str, schema: Option<&str>) -> String {
    let found = Spi::get_one_with_args::<Vec<Option<String>>>(
        "SELECT pg_catalog.array_agg(m.tbl::text ORDER BY m.tbl::text) \
           FROM dnr.managed_tables m \
           JOIN pg_catalog.pg_class c ON c.oid = m.tbl \
           JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
          WHERE m.managed_by = 'apply' AND c.relname = $1::name \
            AND ($2::name IS NULL OR n.nspname = $2::name)",
        &[table.into(), schema.into()],
    );
    let found: Vec<String> = match found {
        Ok(found) => found.unwrap_or_default().into_iter().flatten().collect(),
        Err(error) => spi_failed("check", error),
    };
    match found.as_slice() {
        [one] => one.clone(),
        [] => raise(
            PgSqlErrorCode::ERRCODE_UNDEFINED_TABLE,
            format!(
                "dnr.check: the table `{table}` of entity `{name}` is not one dnr.apply manages{}",
                match schema {
                    Some(schema) => format!(" in schema {schema}"),
                    None => String::new(),
                }
            ),
            None,
            Some("apply the policy again with dnr.apply(source)"),
        ),
        _ => raise(
            PgSqlErrorCode::ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
            format!(
                "dnr.check: more than one table `{table}` of entity `{name}` is managed by dnr.apply: {}",
                found.join(", ")
            ),
            None,
            Some("apply the policy again with dnr.apply(source)"),
        ),
    }
}

/// Every row of `table` (qualified regclass text, quoted as needed) as
/// JSON. The row is `alias.*`: a bare alias would mean a column of the same
/// name, if the table has one (found by the conformance harness).
fn read_rows(table: &str) -> Vec<serde_json::Value> {
    let query =
        format!("SELECT pg_catalog.to_jsonb(dnr_row.*)::pg_catalog.text FROM {table} dnr_row");
    let texts = Spi::connect(|client| -> Result<Vec<Option<String>>, pgrx::spi::Error> {
        let mut texts = Vec::new();
        for row in client.select(query.as_str(), None, &[])? {
            texts.push(row.get::<String>(1)?);
        }
        Ok(texts)
    });
    let texts = match texts {
        Ok(texts) => texts,
        Err(error) => spi_failed("check", error),
    };
    texts
        .into_iter()
        .flatten()
        .map(|text| match serde_json::from_str(&text) {
            Ok(json) => json,
            Err(error) => invalid(format!("cannot read a row of {table}: {error}")),
        })
        .collect()
}

/// While alive, queries run as the calling role (the current role outside
/// security-definer functions) instead of the function's owner. Dropping
/// it, also while an error unwinds, restores the owner; PostgreSQL's
/// (sub)transaction abort restores it too.
struct AsCaller {
    user: pg_sys::Oid,
    context: c_int,
}

impl AsCaller {
    fn enter() -> AsCaller {
        let mut user = pg_sys::InvalidOid;
        let mut context: c_int = 0;
        // SAFETY: these only read and set the backend's current user id and
        // security context (as PostgreSQL's RI triggers do around their
        // queries). SECURITY_LOCAL_USERID_CHANGE forbids SET ROLE while it
        // is in effect.
        unsafe {
            pg_sys::GetUserIdAndSecContext(&mut user, &mut context);
            pg_sys::SetUserIdAndSecContext(
                pg_sys::GetOuterUserId(),
                context | pg_sys::SECURITY_LOCAL_USERID_CHANGE as c_int,
            );
        }
        AsCaller { user, context }
    }
}

impl Drop for AsCaller {
    fn drop(&mut self) {
        // SAFETY: restores the values read in `enter`.
        unsafe { pg_sys::SetUserIdAndSecContext(self.user, self.context) }
    }
}
