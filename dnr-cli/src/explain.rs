//! `dnr explain ENTITY OP --as TENANT[:USER[:roles]] --row JSON`: the
//! database's own answer (the evaluator, against the policy applied there,
//! with `exists` reading the related rows as that context may) and the
//! rule, forbid or fence behind it.

use std::path::Path;

use dnr_core::ast::TenantMode;
use dnr_core::TenantContext;

use crate::backend;
use crate::project::Project;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The entity, as the policy names it.
    entity: String,
    /// read, create, update or delete.
    op: String,
    /// The context: TENANT[:USER[:role,role]].
    #[arg(long = "as", value_name = "TENANT[:USER[:ROLES]]")]
    as_context: String,
    /// The row, as a JSON object.
    #[arg(long, value_name = "JSON")]
    row: String,
}

/// `TENANT[:USER[:roles]]`.
pub fn parse_context(text: &str) -> Result<TenantContext, String> {
    let mut parts = text.splitn(3, ':');
    let tenant = parts.next().filter(|t| !t.is_empty());
    let user = parts.next().filter(|u| !u.is_empty());
    let roles: Vec<&str> = parts
        .next()
        .map(|roles| roles.split(',').filter(|r| !r.is_empty()).collect())
        .unwrap_or_default();
    TenantContext::parse(tenant, user, &roles).map_err(|e| format!("error: --as `{text}`: {e}"))
}

pub fn run(config: Option<&Path>, args: Args) -> Result<(), String> {
    let project = Project::load(config)?;
    let context = parse_context(&args.as_context)?;
    serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(&args.row)
        .map_err(|e| format!("error: --row is not a JSON object: {e}"))?;
    let backend = backend::open(&project)?;
    let mut stores = backend.stores()?;
    if matches!(project.mode(), TenantMode::Schema | TenantMode::Database) {
        let tenant = context
            .tenant
            .ok_or("error: --as needs a tenant in this tenancy mode")?;
        stores.retain(|store| store.tenant.as_ref().is_some_and(|t| t.id == tenant));
    }
    let store = stores
        .first()
        .ok_or("error: no store for this tenant; create it with `dnr tenants create`")?;
    let answer = backend.explain(store, &context, &args.entity, &args.op, &args.row)?;
    crate::verb_args::print(&format!("{answer}\n"))
}
