//! PostgreSQL 15: with the extension (`dnr.apply`) and with the
//! `postgres-plain` output (no extension). Setup runs as the superuser; every
//! step runs as an ordinary application role, which RLS applies to.

use postgres::types::ToSql;
use postgres::{Client, NoTls};

use super::Engine;
use crate::case::{record_json, Action, Case, Ctx, Outcome};
use crate::spell::{row_slots, set_slots, where_slots, Arg, Kind, Slot};

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Flavor {
    Extension,
    Plain,
}

pub struct Postgres {
    flavor: Flavor,
    clients: Clients,
    app_role: String,
}

/// Cases run on one pair of connections: backends that have created and
/// dropped hundreds of case schemas (and their policies) grow and slow down
/// (about 6 s a relationship case after some 750 of them, 0.24 s on fresh
/// connections), so they are renewed.
const CASES_PER_CONNECTION: usize = 50;

/// An engine's two connections to one database: `setup` (a superuser, or
/// the owner role on Citus) and `app` (the application role), renewed every
/// [`CASES_PER_CONNECTION`] cases.
pub(super) struct Clients {
    pub setup: Client,
    pub app: Client,
    urls: (String, String),
    /// Cases run on the current connections.
    cases: usize,
}

impl Clients {
    pub fn connect(setup_url: &str, app_url: &str) -> Result<Clients, String> {
        Ok(Clients {
            setup: Client::connect(setup_url, NoTls).map_err(err)?,
            app: Client::connect(app_url, NoTls).map_err(err)?,
            urls: (setup_url.into(), app_url.into()),
            cases: 0,
        })
    }

    /// New connections once the current ones have run enough cases.
    pub fn renew(&mut self) -> Result<(), String> {
        self.cases += 1;
        if self.cases > CASES_PER_CONNECTION {
            *self = Clients::connect(&self.urls.0, &self.urls.1)?;
            self.cases = 1;
        }
        Ok(())
    }
}

pub(super) fn err(e: postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{}: {}", db.severity(), db.message()),
        None => e.to_string(),
    }
}

impl Postgres {
    /// `admin_url` and `app_url` are libpq-style connection strings for the
    /// same database, as a superuser and as the application role.
    pub fn connect(
        flavor: Flavor,
        admin_url: &str,
        app_url: &str,
        app_role: &str,
    ) -> Result<Postgres, String> {
        Ok(Postgres {
            flavor,
            clients: Clients::connect(admin_url, app_url)?,
            app_role: app_role.into(),
        })
    }

    fn apply(&mut self, schema: &str, source: &str) -> Result<(), String> {
        match self.flavor {
            Flavor::Extension => {
                self.clients
                    .setup
                    .query_one("SELECT dnr.apply($1)", &[&source])
                    .map_err(|e| format!("dnr.apply: {}", err(e)))?;
            }
            Flavor::Plain => {
                let set = dnr_core::parse(source).map_err(|e| e.to_string())?;
                let sql =
                    dnr_core::compile::compile(&set, dnr_core::compile::Target::PostgresPlain)
                        .map_err(|e| e.to_string())?;
                let sql = match std::env::var("DNR_CONFORMANCE_PLANT").as_deref() {
                    // A deliberate bug, to show that the harness notices one:
                    // forbid rules that are NULL now deny.
                    Ok("null-forbid") => sql.replace(") IS NOT TRUE", ") IS FALSE"),
                    _ => sql,
                };
                self.clients
                    .setup
                    .batch_execute(&sql)
                    .map_err(|e| format!("plain SQL: {}", err(e)))?;
            }
        }
        let tables: Vec<String> = dnr_core::parse(source)
            .map_err(|e| e.to_string())?
            .entities
            .iter()
            .map(|e| format!("{schema}.{}", e.table))
            .collect();
        self.clients
            .setup
            .batch_execute(&format!(
                "GRANT SELECT, INSERT, UPDATE, DELETE ON {} TO {}",
                tables.join(", "),
                self.app_role
            ))
            .map_err(err)
    }

    fn set_context(&mut self, ctx: &Ctx) -> Result<(), String> {
        match self.flavor {
            Flavor::Extension => self.clients.app.execute(
                "SELECT dnr.set_context($1::text::uuid, $2::text::uuid, $3::text[], false)",
                &[&ctx.tenant, &ctx.user, &ctx.roles],
            ),
            Flavor::Plain => self.clients.app.execute(
                "SELECT set_config('dnr.tenant_id', coalesce($1, ''), false), \
                 set_config('dnr.user_id', coalesce($2, ''), false), \
                 set_config('dnr.roles', $3, false)",
                &[&ctx.tenant, &ctx.user, &ctx.roles.join(",")],
            ),
        }
        .map(|_| ())
        .map_err(err)
    }

    fn steps(&mut self, case: &Case) -> Result<Vec<Outcome>, String> {
        self.apply(&schema_name(case), &case.setup_policy())?;
        for seed in &case.rows {
            self.set_context(&Ctx {
                tenant: seed.tenant.clone(),
                user: None,
                roles: vec![],
            })?;
            let v = &seed.values;
            self.clients.app
                .execute(
                    &format!(
                        "INSERT INTO {} (id, n, t, u, b, d) VALUES ($1, $2, $3, $4::text::uuid, $5, $6)",
                        seed.table
                    ),
                    &[&v.id, &v.n, &v.t, &v.u, &v.b, &v.d],
                )
                .map_err(|e| format!("seeding {}: {}", seed.table, err(e)))?;
        }
        self.apply(&schema_name(case), &case.policy())?;
        let mut outcomes = Vec::new();
        for step in &case.steps {
            self.set_context(&step.ctx)?;
            outcomes.push(match &step.action {
                Action::Read { table } => {
                    let rows = self
                        .clients
                        .app
                        .query(&format!("SELECT id FROM {table} ORDER BY id"), &[])
                        .map_err(err)?;
                    Outcome::Rows(rows.iter().map(|r| r.get::<_, i64>(0)).collect())
                }
                Action::Insert { .. } => {
                    let (sql, boxed) =
                        pg_statement(&step.action, "", false).ok_or("not a write")?;
                    match self.clients.app.execute(&sql, &borrowed(&boxed)) {
                        Ok(1) => Outcome::Inserted,
                        Ok(n) => return Err(format!("insert changed {n} rows")),
                        Err(_) => Outcome::Refused,
                    }
                }
                Action::Update { returning, .. } => {
                    let (sql, boxed) =
                        pg_statement(&step.action, "", false).ok_or("not a write")?;
                    match self.write(&sql, &borrowed(&boxed), *returning) {
                        Ok(Written::Count(0)) => Outcome::Skipped,
                        Ok(Written::Count(_)) => Outcome::Updated,
                        Ok(Written::Ids(ids)) => Outcome::Returned(ids),
                        Err(_) => Outcome::Refused,
                    }
                }
                Action::Delete { returning, .. } => {
                    let (sql, boxed) =
                        pg_statement(&step.action, "", false).ok_or("not a write")?;
                    match self.write(&sql, &borrowed(&boxed), *returning) {
                        Ok(Written::Count(0)) => Outcome::Skipped,
                        Ok(Written::Count(_)) => Outcome::Deleted,
                        Ok(Written::Ids(ids)) => Outcome::Returned(ids),
                        Err(e) => return Err(format!("delete raised: {e}")),
                    }
                }
                Action::Upsert {
                    table,
                    mode,
                    returning,
                    ..
                } => {
                    let scoped = case.entity(table).is_some_and(|e| e.scoped);
                    let (sql, boxed) =
                        pg_statement(&step.action, mode.postgres_clause(scoped), false)
                            .ok_or("not a write")?;
                    match self.write(&sql, &borrowed(&boxed), *returning) {
                        Ok(Written::Count(0)) => Outcome::Skipped,
                        Ok(Written::Count(1)) => Outcome::Upserted,
                        Ok(Written::Count(n)) => return Err(format!("upsert changed {n} rows")),
                        Ok(Written::Ids(ids)) => Outcome::Returned(ids),
                        Err(_) => Outcome::Refused,
                    }
                }
                Action::AddColumn { table, column } => {
                    // Migrations run as the owner, as in production.
                    self.clients
                        .setup
                        .batch_execute(&format!("ALTER TABLE {table} ADD COLUMN {column} INTEGER"))
                        .map_err(|e| format!("ALTER TABLE: {}", err(e)))?;
                    Outcome::Migrated
                }
                // The plain output has no check function.
                Action::Check { .. } if self.flavor == Flavor::Plain => Outcome::NotApplicable,
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
                    let row = self
                        .clients
                        .app
                        .query_one(
                            "SELECT dnr.check($1, $2, $3::text::jsonb)",
                            &[&entity, op, &record_json(tenant, values)],
                        )
                        .map_err(|e| format!("dnr.check: {}", err(e)))?;
                    Outcome::Checked(row.get(0))
                }
            });
        }
        Ok(outcomes)
    }
}

/// Bound values a statement owns.
pub(super) type Boxed = Vec<Box<dyn ToSql + Sync>>;

/// A write step as PostgreSQL statement text (without RETURNING) and the
/// values it binds, as spelled. A value spelled as text goes through the
/// column type's input function (`$k::text::int8`, `::bool`, `::uuid`),
/// as an untyped literal `'5'` in the statement would. `clause` follows an
/// upsert's VALUES; with `default_null_d` a NULL `d` is written `DEFAULT`
/// (Citus: a column DEFAULT fills declared defaults, only when omitted).
pub(super) fn pg_statement(
    action: &Action,
    clause: &str,
    default_null_d: bool,
) -> Option<(String, Boxed)> {
    let mut params: Boxed = Vec::new();
    let mut mark = |slot: &Slot| -> String {
        if default_null_d && slot.column == "d" && slot.arg == Arg::Null {
            return "DEFAULT".into();
        }
        params.push(match (&slot.arg, slot.kind) {
            (Arg::Text(text), _) => Box::new(Some(text.clone())),
            (Arg::Int(n), _) => Box::new(Some(*n)),
            (Arg::Bool(b), _) => Box::new(Some(*b)),
            (Arg::Null, Kind::Int) => Box::new(None::<i64>),
            (Arg::Null, Kind::Bool) => Box::new(None::<bool>),
            (Arg::Null, Kind::Text | Kind::Uuid) => Box::new(None::<String>),
        });
        let k = params.len();
        match (slot.kind, &slot.arg) {
            (Kind::Uuid, _) => format!("${k}::text::uuid"),
            (Kind::Int, Arg::Text(_)) => format!("${k}::text::int8"),
            (Kind::Bool, Arg::Text(_)) => format!("${k}::text::bool"),
            _ => format!("${k}"),
        }
    };
    let mut pairs = |slots: &[Slot], sep: &str| {
        slots
            .iter()
            .map(|s| format!("{} = {}", s.column, mark(s)))
            .collect::<Vec<_>>()
            .join(sep)
    };
    let sql = match action {
        Action::Insert {
            table,
            tenant,
            values,
            spell,
        }
        | Action::Upsert {
            table,
            tenant,
            values,
            spell,
            ..
        } => {
            let slots = row_slots(values, tenant.as_deref(), spell);
            let columns: Vec<&str> = slots.iter().map(|s| s.column).collect();
            let marks: Vec<String> = slots.iter().map(&mut mark).collect();
            format!(
                "INSERT INTO {table} ({}) VALUES ({}){clause}",
                columns.join(", "),
                marks.join(", ")
            )
        }
        Action::Update {
            table,
            id,
            n,
            u,
            move_to,
            filter,
            spell,
            ..
        } => {
            let set = pairs(
                &set_slots(*n, u.as_deref(), move_to.as_deref(), spell),
                ", ",
            );
            let wheres = pairs(&where_slots(*id, filter.as_ref(), spell), " AND ");
            format!("UPDATE {table} SET {set} WHERE {wheres}")
        }
        Action::Delete {
            table,
            id,
            filter,
            spell,
            ..
        } => format!(
            "DELETE FROM {table} WHERE {}",
            pairs(&where_slots(*id, filter.as_ref(), spell), " AND ")
        ),
        _ => return None,
    };
    Some((sql, params))
}

/// A statement's values as `execute` takes them.
pub(super) fn borrowed(boxed: &Boxed) -> Vec<&(dyn ToSql + Sync)> {
    boxed.iter().map(|b| b.as_ref()).collect()
}

/// What a write reports: its row count, or the ids of `RETURNING id`.
enum Written {
    Count(u64),
    Ids(Vec<i64>),
}

impl Postgres {
    fn write(
        &mut self,
        sql: &str,
        params: &[&(dyn postgres::types::ToSql + Sync)],
        returning: bool,
    ) -> Result<Written, String> {
        if returning {
            let rows = self
                .clients
                .app
                .query(&format!("{sql} RETURNING id"), params)
                .map_err(err)?;
            let mut ids: Vec<i64> = rows.iter().map(|r| r.get::<_, i64>(0)).collect();
            ids.sort_unstable();
            Ok(Written::Ids(ids))
        } else {
            self.clients
                .app
                .execute(sql, params)
                .map(Written::Count)
                .map_err(err)
        }
    }
}

fn schema_name(case: &Case) -> String {
    format!("conf_{}", case.seed)
}

impl Engine for Postgres {
    fn name(&self) -> &'static str {
        match self.flavor {
            Flavor::Extension => "postgres-ext",
            Flavor::Plain => "postgres-plain",
        }
    }

    /// Each case gets its own schema, dropped afterwards.
    fn run(&mut self, case: &Case) -> Result<Vec<Outcome>, String> {
        self.clients.renew()?;
        let schema = schema_name(case);
        self.clients
            .setup
            .batch_execute(&format!(
                "DROP SCHEMA IF EXISTS {schema} CASCADE; CREATE SCHEMA {schema}; \
                 GRANT USAGE ON SCHEMA {schema} TO {role}; SET search_path = {schema}, public",
                role = self.app_role
            ))
            .map_err(err)?;
        self.clients
            .app
            .batch_execute(&format!("SET search_path = {schema}, public"))
            .map_err(err)?;
        let result = self.steps(case);
        self.clients
            .setup
            .batch_execute(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))
            .map_err(err)?;
        result
    }
}
