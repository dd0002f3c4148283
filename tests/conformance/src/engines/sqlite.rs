//! The SQLite extension (`libdnr.so`) loaded into a real SQLite.

use std::path::PathBuf;

use rusqlite::{params, Connection, LoadExtensionGuard};

use super::{roles_json, Engine};
use crate::case::{record_json, Action, Case, Ctx, Outcome};
use crate::spell::{sqlite_statement, Arg};

pub struct Sqlite {
    pub library: PathBuf,
}

fn err(e: rusqlite::Error) -> String {
    e.to_string()
}

impl Sqlite {
    fn open(&self) -> Result<Connection, String> {
        let conn = Connection::open_in_memory().map_err(err)?;
        // SAFETY: loading our own extension, built from this workspace.
        unsafe {
            let _guard = LoadExtensionGuard::new(&conn).map_err(err)?;
            conn.load_extension(&self.library, Some("sqlite3_dnr_init"))
                .map_err(err)?;
        }
        Ok(conn)
    }
}

fn set_context(conn: &Connection, ctx: &Ctx) -> Result<(), String> {
    conn.query_row(
        // For the session: each step's statements run in autocommit.
        "SELECT dnr_set_context(?1, ?2, ?3, 0)",
        params![ctx.tenant, ctx.user, roles_json(&ctx.roles)],
        |_| Ok(()),
    )
    .map_err(err)
}

fn apply(conn: &Connection, source: &str) -> Result<(), String> {
    conn.query_row("SELECT dnr_apply(?1)", [source], |_| Ok(()))
        .map_err(|e| format!("dnr_apply: {e}"))
}

/// The conjunct the SQLite compiler writes for the tenant fence of the
/// (first-level) related entity inside an `exists`.
const RELATED_FENCE: &str = "\"dnr_e1\".\"tenant_id\" = dnr_tenant()";

/// With `DNR_CONFORMANCE_PLANT=related-fence`, a deliberate bug to show
/// that the harness catches and shrinks one: the related entity's fence is
/// taken out of every `exists` in the compiled views and triggers (the
/// conjunct becomes `1`), as if the compiler had forgotten it. Views are
/// recreated with the triggers on them, which dropping a view drops.
fn plant(conn: &Connection) -> Result<(), String> {
    if std::env::var("DNR_CONFORMANCE_PLANT").as_deref() != Ok("related-fence") {
        return Ok(());
    }
    // (kind, name, table, sql) of the views that spell the fence out, and
    // of the triggers that do or that sit on such a view.
    let mut statement = conn
        .prepare(
            "WITH planted AS (SELECT name FROM sqlite_master WHERE type = 'view' AND instr(sql, ?1) > 0)
             SELECT type, name, tbl_name, sql FROM sqlite_master
             WHERE (type = 'view' AND name IN planted)
                OR (type = 'trigger' AND (instr(sql, ?1) > 0 OR tbl_name IN planted))
             ORDER BY type = 'trigger'",
        )
        .map_err(err)?;
    let objects: Vec<(String, String, String, String)> = statement
        .query_map([RELATED_FENCE], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
        })
        .and_then(|rows| rows.collect())
        .map_err(err)?;
    let views: Vec<&str> = objects
        .iter()
        .filter(|o| o.0 == "view")
        .map(|o| o.1.as_str())
        .collect();
    let mut script = String::from("BEGIN;\n");
    for (kind, name, table, _) in &objects {
        // A view's triggers go with it.
        if kind == "view" || !views.contains(&table.as_str()) {
            script.push_str(&format!("DROP {} \"{name}\";\n", kind.to_uppercase()));
        }
    }
    for (_, _, _, sql) in &objects {
        script.push_str(&sql.replace(RELATED_FENCE, "1"));
        script.push_str(";\n");
    }
    script.push_str("COMMIT;");
    conn.execute_batch(&script)
        .map_err(|e| format!("planting the related-fence bug: {e}"))
}

/// A write step's SQLite statement and the values it binds, as spelled.
fn statement(action: &Action) -> Result<(String, Vec<Arg>), String> {
    sqlite_statement(action).ok_or_else(|| "not a write".to_string())
}

/// The values as rusqlite binds them (a boolean as 0/1, as SQLite has it).
fn bound(args: &[Arg]) -> Vec<rusqlite::types::Value> {
    use rusqlite::types::Value;
    args.iter()
        .map(|arg| match arg {
            Arg::Null => Value::Null,
            Arg::Int(n) => Value::Integer(*n),
            Arg::Text(text) => Value::Text(text.clone()),
            Arg::Bool(b) => Value::Integer(i64::from(*b)),
        })
        .collect()
}

/// Runs a write and returns the rows it changed: SQLite reports 0 in
/// `changes()` for writes through views, so count with `total_changes()`.
fn write(
    conn: &Connection,
    sql: &str,
    values: &[rusqlite::types::Value],
) -> Result<u64, rusqlite::Error> {
    let before = conn.total_changes();
    conn.execute(sql, rusqlite::params_from_iter(values))?;
    Ok(conn.total_changes() - before)
}

/// Runs a write through `dnr_exec`: rows written (0 is Skipped, more is
/// Updated), or with RETURNING the ids returned.
fn exec(
    conn: &Connection,
    sql: &str,
    values: &[rusqlite::types::Value],
) -> Result<Outcome, rusqlite::Error> {
    let mut args: Vec<&dyn rusqlite::ToSql> = vec![&sql];
    args.extend(values.iter().map(|v| v as &dyn rusqlite::ToSql));
    let marks = vec!["?"; args.len()].join(", ");
    let answer: rusqlite::types::Value =
        conn.query_row(&format!("SELECT dnr_exec({marks})"), &args[..], |r| {
            r.get(0)
        })?;
    Ok(match answer {
        rusqlite::types::Value::Integer(0) => Outcome::Skipped,
        rusqlite::types::Value::Integer(_) => Outcome::Updated,
        rusqlite::types::Value::Text(json) => Outcome::Returned(returned_ids(&json)),
        _ => Outcome::Refused,
    })
}

/// The sorted ids of a RETURNING answer (a JSON array of `{"id": n}`).
fn returned_ids(json: &str) -> Vec<i64> {
    let rows: Vec<serde_json::Value> = serde_json::from_str(json).unwrap_or_default();
    let mut ids: Vec<i64> = rows.iter().filter_map(|r| r["id"].as_i64()).collect();
    ids.sort_unstable();
    ids
}

impl Engine for Sqlite {
    fn name(&self) -> &'static str {
        "sqlite-ext"
    }

    fn run(&mut self, case: &Case) -> Result<Vec<Outcome>, String> {
        let conn = self.open()?;
        apply(&conn, &case.setup_policy())?;
        for seed in &case.rows {
            set_context(
                &conn,
                &Ctx {
                    tenant: seed.tenant.clone(),
                    user: None,
                    roles: vec![],
                },
            )?;
            let v = &seed.values;
            conn.execute(
                &format!(
                    "INSERT INTO {} (id, n, t, u, b, d) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                    seed.table
                ),
                params![v.id, v.n, v.t, v.u, v.b, v.d],
            )
            .map_err(|e| format!("seeding {}: {e}", seed.table))?;
        }
        apply(&conn, &case.policy())?;
        plant(&conn)?;
        let mut outcomes = Vec::new();
        for step in &case.steps {
            set_context(&conn, &step.ctx)?;
            outcomes.push(match &step.action {
                Action::Read { table } => {
                    let mut statement = conn
                        .prepare(&format!("SELECT id FROM {table} ORDER BY id"))
                        .map_err(err)?;
                    let ids = statement
                        .query_map([], |r| r.get(0))
                        .and_then(|rows| rows.collect())
                        .map_err(err)?;
                    Outcome::Rows(ids)
                }
                Action::Insert { .. } => {
                    let (sql, args) = statement(&step.action)?;
                    match write(&conn, &sql, &bound(&args)) {
                        Ok(1) => Outcome::Inserted,
                        Ok(n) => return Err(format!("insert changed {n} rows")),
                        Err(_) => Outcome::Refused,
                    }
                }
                Action::Update {
                    returning: false, ..
                } => {
                    let (sql, args) = statement(&step.action)?;
                    match write(&conn, &sql, &bound(&args)) {
                        Ok(0) => Outcome::Skipped,
                        Ok(_) => Outcome::Updated,
                        Err(_) => Outcome::Refused,
                    }
                }
                Action::Delete {
                    returning: false, ..
                } => {
                    let (sql, args) = statement(&step.action)?;
                    match write(&conn, &sql, &bound(&args)) {
                        Ok(0) => Outcome::Skipped,
                        Ok(_) => Outcome::Deleted,
                        Err(e) => return Err(format!("delete raised: {e}")),
                    }
                }
                // SQLite answers RETURNING on a view from the values given
                // and refuses an upsert on one: `.load` hosts run these
                // through dnr_exec, the documented path.
                Action::Update {
                    returning: true, ..
                } => {
                    let (sql, args) = statement(&step.action)?;
                    exec(&conn, &format!("{sql} RETURNING id"), &bound(&args))
                        .unwrap_or(Outcome::Refused)
                }
                Action::Delete {
                    returning: true, ..
                } => {
                    let (sql, args) = statement(&step.action)?;
                    exec(&conn, &format!("{sql} RETURNING id"), &bound(&args))
                        .map_err(|e| format!("delete raised: {e}"))?
                }
                Action::Upsert { returning, .. } => {
                    let (sql, args) = statement(&step.action)?;
                    let sql = if *returning {
                        format!("{sql} RETURNING id")
                    } else {
                        sql
                    };
                    match exec(&conn, &sql, &bound(&args)) {
                        Ok(Outcome::Updated) => Outcome::Upserted,
                        Ok(other) => other,
                        Err(_) => Outcome::Refused,
                    }
                }
                Action::AddColumn { table, column } => {
                    conn.query_row(
                        "SELECT dnr_migrate(?1)",
                        [format!("ALTER TABLE {table} ADD COLUMN {column} INTEGER")],
                        |_| Ok(()),
                    )
                    .map_err(|e| format!("dnr_migrate: {e}"))?;
                    plant(&conn)?;
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
                    let allowed: bool = conn
                        .query_row(
                            "SELECT dnr_check(?1, ?2, ?3)",
                            params![entity, op, record_json(tenant, values)],
                            |r| r.get(0),
                        )
                        .map_err(|e| format!("dnr_check: {e}"))?;
                    Outcome::Checked(allowed)
                }
            });
        }
        Ok(outcomes)
    }
}
