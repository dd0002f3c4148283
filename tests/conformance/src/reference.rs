//! The reference: dnr-core's evaluator, run over an in-memory copy of the
//! tables. Engines must produce exactly these outcomes.
//!
//! `exists` rules look through the rows stored when the statement starts:
//! every row of every table (the evaluator applies the related entity's
//! fence and read rule itself), as PostgreSQL's policies and SQLite's
//! BEFORE triggers see them (a statement's own write is not yet visible).

use std::collections::BTreeMap;

use dnr_core::value::parse_uuid;
use dnr_core::{Operation, PolicySet, RelatedRows, Row, TenantContext, Value};

use crate::case::{Action, Case, Conflict, Ctx, Outcome, Values};
use crate::spell::{uuid_text, Filter, Form, Spell};

pub fn context(ctx: &Ctx) -> Result<TenantContext, String> {
    let roles: Vec<&str> = ctx.roles.iter().map(String::as_str).collect();
    TenantContext::parse(ctx.tenant.as_deref(), ctx.user.as_deref(), &roles)
        .map_err(|e| e.to_string())
}

fn uuid(text: &str) -> Result<Value, String> {
    parse_uuid(text).map(Value::Uuid).map_err(|e| e.to_string())
}

/// A uuid as written in `form`: DNR reads the spellings it accepts as the
/// same uuid and refuses the others.
fn spelled_uuid(text: &str, form: Form) -> Result<Value, String> {
    uuid(&uuid_text(text, form))
}

fn row(tenant: Option<&str>, values: &Values) -> Result<Row, String> {
    spelled_row(tenant, values, &Spell::default())
}

/// The row an insert writes, its uuids as spelled (numbers and booleans
/// mean their value in every spelling generated).
fn spelled_row(tenant: Option<&str>, values: &Values, spell: &Spell) -> Result<Row, String> {
    let mut row = Row::new()
        .with("id", Value::Int(values.id))
        .with("n", values.n.map_or(Value::Null, Value::Int))
        .with("t", values.t.clone().map_or(Value::Null, Value::Text))
        .with(
            "u",
            match &values.u {
                Some(u) => spelled_uuid(u, spell.u)?,
                None => Value::Null,
            },
        )
        .with("b", values.b.map_or(Value::Null, Value::Bool))
        .with("d", values.d.map_or(Value::Null, Value::Int));
    if let Some(tenant) = tenant {
        row.set("tenant_id", spelled_uuid(tenant, spell.tenant)?);
    }
    Ok(row)
}

pub fn run(case: &Case) -> Result<Vec<Outcome>, String> {
    run_looking(case, true)
}

/// The outcomes as if no related row existed (every `exists` FALSE): the
/// steps where they differ from [`run`]'s are those the related rows
/// decided, a measure of how much a case exercises `exists`.
pub fn run_without_related(case: &Case) -> Result<Vec<Outcome>, String> {
    run_looking(case, false)
}

fn run_looking(case: &Case, related_rows_seen: bool) -> Result<Vec<Outcome>, String> {
    let policy = case.policy();
    let set: PolicySet = dnr_core::parse(&policy).map_err(|e| e.render(&policy, "case.dnr"))?;
    let mut tables: BTreeMap<String, Vec<Row>> = BTreeMap::new();
    for seed in &case.rows {
        let entity = case
            .entity(&seed.table)
            .ok_or("seed row names an unknown table")?;
        let ctx = context(&Ctx {
            tenant: seed.tenant.clone(),
            user: None,
            roles: Vec::new(),
        })?;
        let stored = set
            .fill_on_create(
                &entity.name,
                &ctx,
                &row(seed.tenant.as_deref(), &seed.values)?,
            )
            .map_err(|e| e.to_string())?;
        tables.entry(seed.table.clone()).or_default().push(stored);
    }
    let id_of = |row: &Row| match row.get("id") {
        Value::Int(id) => *id,
        _ => i64::MIN,
    };
    let mut outcomes = Vec::new();
    for step in &case.steps {
        let ctx = context(&step.ctx)?;
        let entity = case
            .entity(step.action.table())
            .ok_or("step names an unknown table")?
            .name
            .clone();
        let related = if related_rows_seen {
            related_rows(case, &tables)
        } else {
            RelatedRows::new()
        };
        let rows = tables.entry(step.action.table().to_string()).or_default();
        let decide = |op, row: &Row| {
            set.decide_with(&entity, op, &ctx, row, &related)
                .map(|d| d.allowed)
                .map_err(|e| e.to_string())
        };
        let outcome = match &step.action {
            Action::Read { .. } => {
                let mut ids = Vec::new();
                for row in rows.iter() {
                    if decide(Operation::Read, row)? {
                        ids.push(id_of(row));
                    }
                }
                ids.sort_unstable();
                Outcome::Rows(ids)
            }
            Action::Insert {
                tenant,
                values,
                spell,
                ..
            } => {
                // A uuid spelled as DNR does not read it is refused, and so
                // is a primary key taken in the same tenant (keys are per
                // tenant: another tenant's row with that id is no conflict).
                match spelled_row(tenant.as_deref(), values, spell) {
                    Ok(new) if decide(Operation::Create, &new)? => {
                        let filled = set
                            .fill_on_create(&entity, &ctx, &new)
                            .map_err(|e| e.to_string())?;
                        if rows.iter().any(|r| same_key(r, &filled)) {
                            Outcome::Refused
                        } else {
                            rows.push(filled);
                            Outcome::Inserted
                        }
                    }
                    _ => Outcome::Refused,
                }
            }
            Action::Update {
                id,
                n,
                u,
                move_to,
                returning,
                filter,
                spell,
                ..
            } => returned(
                *returning,
                *id,
                // The row with that id the context may update (one id may
                // be in several tenants; the fence leaves one at most).
                match position_allowed(rows, *id, filter.as_ref(), |old| {
                    set.decide_update_with(&entity, &ctx, old, old, &related)
                        .map(|d| d.allowed)
                        .map_err(|e| e.to_string())
                })? {
                    None => Outcome::Skipped,
                    Some(index) => {
                        let old = rows[index].clone();
                        {
                            let mut new = old.clone();
                            new.set("n", n.map_or(Value::Null, Value::Int));
                            // A uuid spelled as DNR does not read it: refused.
                            let spelled = |value: &Option<String>, form| match value {
                                Some(text) => spelled_uuid(text, form).ok(),
                                None => Some(Value::Null),
                            };
                            let u = spelled(u, spell.u);
                            let tenant = move_to
                                .as_ref()
                                .map(|t| spelled(&Some(t.clone()), spell.tenant));
                            if let Some(u) = &u {
                                new.set("u", u.clone());
                            }
                            if let Some(Some(tenant)) = &tenant {
                                new.set("tenant_id", tenant.clone());
                            }
                            if u.is_some()
                                && !matches!(tenant, Some(None))
                                && set
                                    .decide_update_with(&entity, &ctx, &old, &new, &related)
                                    .map_err(|e| e.to_string())?
                                    .allowed
                            {
                                rows[index] = new;
                                Outcome::Updated
                            } else {
                                Outcome::Refused
                            }
                        }
                    }
                },
            ),
            Action::Delete {
                id,
                returning,
                filter,
                ..
            } => returned(
                *returning,
                *id,
                match position_allowed(rows, *id, filter.as_ref(), |row| {
                    decide(Operation::Delete, row)
                })? {
                    Some(index) => {
                        rows.remove(index);
                        Outcome::Deleted
                    }
                    None => Outcome::Skipped,
                },
            ),
            Action::Upsert {
                tenant,
                values,
                mode,
                returning,
                spell,
                ..
            } => {
                // The proposed row meets the create rules first, conflict or
                // not (PostgreSQL checks INSERT policies before the arbiter;
                // SQLite's BEFORE INSERT trigger runs before the conflict).
                // A uuid spelled as DNR does not read it: refused.
                let Ok(proposed) = spelled_row(tenant.as_deref(), values, spell) else {
                    outcomes.push(Outcome::Refused);
                    continue;
                };
                let filled = set
                    .fill_on_create(&entity, &ctx, &proposed)
                    .map_err(|e| e.to_string())?;
                let outcome = if !decide(Operation::Create, &proposed)? {
                    Outcome::Refused
                } else {
                    match rows.iter().position(|r| same_key(r, &filled)) {
                        None => {
                            rows.push(filled);
                            Outcome::Upserted
                        }
                        Some(_) if matches!(mode, Conflict::DoNothing | Conflict::Ignore) => {
                            Outcome::Skipped
                        }
                        Some(index) => {
                            // DO UPDATE (and REPLACE, its every-column form)
                            // on a row the context may not update is an
                            // error, not a silent skip.
                            let old = rows[index].clone();
                            let new = match mode {
                                Conflict::Replace => filled,
                                _ => {
                                    let mut new = old.clone();
                                    new.set("n", filled.get("n").clone());
                                    new.set("u", filled.get("u").clone());
                                    new
                                }
                            };
                            let allowed = |new: &Row| {
                                set.decide_update_with(&entity, &ctx, &old, new, &related)
                                    .map(|d| d.allowed)
                                    .map_err(|e| e.to_string())
                            };
                            if allowed(&old)? && allowed(&new)? {
                                rows[index] = new;
                                Outcome::Upserted
                            } else {
                                Outcome::Refused
                            }
                        }
                    }
                };
                returned(*returning, values.id, outcome)
            }
            Action::AddColumn { .. } => Outcome::Migrated,
            Action::Check {
                op, tenant, values, ..
            } => {
                let op = Operation::parse(op).ok_or("unknown operation")?;
                Outcome::Checked(decide(op, &row(tenant.as_deref(), values)?)?)
            }
        };
        outcomes.push(outcome);
    }
    Ok(outcomes)
}

/// Whether two rows hold the same primary key: the same id in the same
/// tenant (keys are per tenant; an unscoped entity has no tenant column,
/// NULL in both).
fn same_key(row: &Row, other: &Row) -> bool {
    row.get("id") == other.get("id") && row.get("tenant_id") == other.get("tenant_id")
}

/// The first row with `id` that meets `filter` and `allowed`.
fn position_allowed(
    rows: &[Row],
    id: i64,
    filter: Option<&Filter>,
    mut allowed: impl FnMut(&Row) -> Result<bool, String>,
) -> Result<Option<usize>, String> {
    for (index, row) in rows.iter().enumerate() {
        if matches!(row.get("id"), Value::Int(n) if *n == id)
            && filtered(row, filter)
            && allowed(row)?
        {
            return Ok(Some(index));
        }
    }
    Ok(None)
}

/// Whether `row` meets a WHERE clause's filter (by value: NULL meets none).
fn filtered(row: &Row, filter: Option<&Filter>) -> bool {
    match filter {
        None => true,
        Some(Filter::U(u)) => uuid(u).is_ok_and(|u| *row.get("u") == u),
        Some(Filter::B(b)) => *row.get("b") == Value::Bool(*b),
    }
}

/// Every stored row, by entity: what `exists` may look through.
fn related_rows(case: &Case, tables: &BTreeMap<String, Vec<Row>>) -> RelatedRows {
    let mut related = RelatedRows::new();
    for entity in &case.entities {
        related.insert(
            &entity.name,
            tables.get(&entity.table).cloned().unwrap_or_default(),
        );
    }
    related
}

/// A write's outcome as `RETURNING id` reports it: the id when a row was
/// written, nothing when none was; an error stays an error.
fn returned(returning: bool, id: i64, outcome: Outcome) -> Outcome {
    match (returning, outcome) {
        (false, outcome) | (true, outcome @ Outcome::Refused) => outcome,
        (true, Outcome::Skipped) => Outcome::Returned(Vec::new()),
        (true, _) => Outcome::Returned(vec![id]),
    }
}
