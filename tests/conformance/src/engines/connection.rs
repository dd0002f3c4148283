//! A DNR connection: `dnr_sqlite::Connection`, the Rust API an application
//! uses (as the npm package does inside): every write on an enforced table
//! goes through the statement rewriter onto storage. Locked (`Dnr::lock`,
//! as the npm package's databases are), its enforced names are served by
//! TEMP virtual tables and its SQL may not touch storage.

use dnr_sqlite::{Connection, Value};

use super::Engine;
use crate::case::{insert_columns, record_json, Action, Case, Ctx, Outcome, Values};
use crate::reference::context;
use crate::spell::{sqlite_statement, Arg};

pub struct DnrConnection {
    /// Locked once the policy under test is applied.
    pub locked: bool,
}

fn err(e: dnr_sqlite::Error) -> String {
    e.to_string()
}

fn int(value: Option<i64>) -> Value {
    value.map_or(Value::Null, Value::Integer)
}

fn text(value: &Option<String>) -> Value {
    value.clone().map_or(Value::Null, Value::Text)
}

fn boolean(value: Option<bool>) -> Value {
    value.map_or(Value::Null, |b| Value::Integer(i64::from(b)))
}

/// An insert's parameters, in `insert_columns` order.
fn row_params(v: &Values, tenant: &Option<String>) -> Vec<Value> {
    let mut params = vec![
        Value::Integer(v.id),
        int(v.n),
        text(&v.t),
        text(&v.u),
        boolean(v.b),
        int(v.d),
    ];
    if tenant.is_some() {
        params.push(text(tenant));
    }
    params
}

/// A write step's statement and the values it binds, as spelled. For
/// inserts and upserts of odd ids the value of `n` is an expression, which
/// the statement rewriter evaluates once in a MATERIALIZED CTE before
/// checking the row; even ids take its VALUES path, so both meet the same
/// generated cases.
fn statement(action: &Action, id: i64) -> Result<(String, Vec<Arg>), String> {
    let (sql, args) = sqlite_statement(action).ok_or("not a write")?;
    let sql = match action {
        Action::Insert { .. } | Action::Upsert { .. } if id % 2 != 0 => {
            sql.replacen("VALUES (?, ?", "VALUES (?, coalesce(?, NULL)", 1)
        }
        _ => sql,
    };
    Ok((sql, args))
}

/// The values as a DNR connection binds them (a boolean as 0/1).
fn bound(args: &[Arg]) -> Vec<Value> {
    args.iter()
        .map(|arg| match arg {
            Arg::Null => Value::Null,
            Arg::Int(n) => Value::Integer(*n),
            Arg::Text(text) => Value::Text(text.clone()),
            Arg::Bool(b) => Value::Integer(i64::from(*b)),
        })
        .collect()
}

fn set_context(db: &Connection, ctx: &Ctx) -> Result<(), String> {
    db.set_context(context(ctx)?).map_err(|e| e.to_string())
}

/// Rows written, or with RETURNING the sorted ids returned.
fn write(
    db: &Connection,
    sql: &str,
    params: &[Value],
    returning: bool,
) -> Result<Outcome, dnr_sqlite::Error> {
    if returning {
        let rows = db.query(&format!("{sql} RETURNING id"), params)?;
        let mut ids: Vec<i64> = rows
            .rows
            .iter()
            .filter_map(|r| match r.first() {
                Some(Value::Integer(id)) => Some(*id),
                _ => None,
            })
            .collect();
        ids.sort_unstable();
        return Ok(Outcome::Returned(ids));
    }
    Ok(match db.execute(sql, params)? {
        0 => Outcome::Skipped,
        _ => Outcome::Updated,
    })
}

impl Engine for DnrConnection {
    fn name(&self) -> &'static str {
        if self.locked {
            "sqlite-locked"
        } else {
            "sqlite-connection"
        }
    }

    fn run(&mut self, case: &Case) -> Result<Vec<Outcome>, String> {
        let db = Connection::open_in_memory().map_err(err)?;
        db.apply(&case.setup_policy()).map_err(err)?;
        for seed in &case.rows {
            set_context(
                &db,
                &Ctx {
                    tenant: seed.tenant.clone(),
                    user: None,
                    roles: vec![],
                },
            )?;
            let (columns, marks) = insert_columns(false);
            db.execute(
                &format!("INSERT INTO {} ({columns}) VALUES ({marks})", seed.table),
                &row_params(&seed.values, &None),
            )
            .map_err(|e| format!("seeding {}: {e}", seed.table))?;
        }
        db.apply(&case.policy()).map_err(err)?;
        if self.locked {
            db.dnr().lock().map_err(err)?;
        }
        let mut outcomes = Vec::new();
        for step in &case.steps {
            set_context(&db, &step.ctx)?;
            outcomes.push(match &step.action {
                Action::Read { table } => {
                    let rows = db
                        .query(&format!("SELECT id FROM {table} ORDER BY id"), &[])
                        .map_err(err)?;
                    Outcome::Rows(
                        rows.rows
                            .iter()
                            .filter_map(|r| match r.first() {
                                Some(Value::Integer(id)) => Some(*id),
                                _ => None,
                            })
                            .collect(),
                    )
                }
                Action::Insert { values: v, .. } => {
                    let (sql, args) = statement(&step.action, v.id)?;
                    match db.execute(&sql, &bound(&args)) {
                        Ok(1) => Outcome::Inserted,
                        Ok(n) => return Err(format!("insert changed {n} rows")),
                        Err(_) => Outcome::Refused,
                    }
                }
                Action::Update { returning, .. } => {
                    let (sql, args) = statement(&step.action, 0)?;
                    write(&db, &sql, &bound(&args), *returning).unwrap_or(Outcome::Refused)
                }
                Action::Delete { returning, .. } => {
                    let (sql, args) = statement(&step.action, 0)?;
                    match write(&db, &sql, &bound(&args), *returning) {
                        Ok(Outcome::Updated) => Outcome::Deleted,
                        Ok(other) => other,
                        Err(e) => return Err(format!("delete raised: {e}")),
                    }
                }
                Action::Upsert {
                    values: v,
                    returning,
                    ..
                } => {
                    let (sql, args) = statement(&step.action, v.id)?;
                    match write(&db, &sql, &bound(&args), *returning) {
                        Ok(Outcome::Updated) => Outcome::Upserted,
                        Ok(other) => other,
                        Err(_) => Outcome::Refused,
                    }
                }
                Action::AddColumn { table, column } => {
                    // Through `execute`: a schema change on an enforced table
                    // runs as a migration; a locked connection's host runs
                    // it (its SQL may not).
                    let sql = format!("ALTER TABLE {table} ADD COLUMN {column} INTEGER");
                    if self.locked {
                        db.migrate(&sql).map(|_| 0)
                    } else {
                        db.execute(&sql, &[])
                    }
                    .map_err(|e| format!("ALTER TABLE: {e}"))?;
                    Outcome::Migrated
                }
                Action::Check {
                    table,
                    op,
                    tenant,
                    values,
                } => {
                    let entity = case
                        .entity(table)
                        .map(|e| e.name.clone())
                        .unwrap_or_default();
                    let allowed = db
                        .dnr()
                        .check(&entity, op, &record_json(tenant, values))
                        .map_err(|e| format!("check: {e}"))?;
                    Outcome::Checked(allowed)
                }
            });
        }
        Ok(outcomes)
    }
}
