//! Citus: a coordinator and two workers (scripts/citus-lib.sh), `dnr.apply`
//! compiling for Citus (the `citus` extension is present). Each case's
//! schema is created and its policy applied by an ordinary owner role; its
//! tenant-scoped tables are then distributed by the tenant column and its
//! unscoped ones made reference tables, the seed rows written and the
//! policy under test re-applied on the distributed tables. Every step runs
//! through the coordinator as the application role, in its own transaction
//! (DNR's context is transaction-local on Citus: `dnr.set_context` forwards
//! `SET LOCAL` to the workers).
//!
//! Relationship (`exists`) cases are not applicable: Citus refuses `exists`
//! rules at compile time.
//!
//! An upsert on a tenant-scoped table names the whole key,
//! `ON CONFLICT (tenant_id, id)`, as on PostgreSQL: keys are per tenant in
//! every engine.

use postgres::types::ToSql;

use super::postgres::{borrowed, err, pg_statement, Clients};
use super::Engine;
use crate::case::{record_json, Action, Case, Ctx, Outcome};

pub struct Citus {
    clients: Clients,
    app_role: String,
}

type Params<'a> = Vec<&'a (dyn ToSql + Sync)>;

/// What a write reports: its row count, or the ids of `RETURNING id`.
enum Written {
    Count(u64),
    Ids(Vec<i64>),
}

impl Citus {
    /// `owner_url` and `app_url`: the coordinator's database as the owner
    /// role (not a superuser: it owns the database, applies the policies
    /// and distributes the tables) and as the application role.
    pub fn connect(owner_url: &str, app_url: &str, app_role: &str) -> Result<Citus, String> {
        Ok(Citus {
            clients: Clients::connect(owner_url, app_url)?,
            app_role: app_role.into(),
        })
    }

    /// One statement as the owner (Citus refuses multi-statement DDL
    /// strings on distributed tables).
    fn owner_exec(&mut self, sql: &str) -> Result<(), String> {
        self.clients
            .setup
            .batch_execute(sql)
            .map_err(|e| format!("{sql}: {}", err(e)))
    }

    fn apply(&mut self, source: &str) -> Result<(), String> {
        self.clients
            .setup
            .query_one("SELECT dnr.apply($1)", &[&source])
            .map_err(|e| format!("dnr.apply: {}", err(e)))?;
        Ok(())
    }

    /// Runs `statement` as the application role in a transaction with
    /// `ctx`; an error rolls it back.
    fn in_context<T>(
        &mut self,
        ctx: &Ctx,
        statement: impl FnOnce(&mut postgres::Transaction<'_>) -> Result<T, postgres::Error>,
    ) -> Result<Result<T, String>, String> {
        let mut tx = self.clients.app.transaction().map_err(err)?;
        tx.execute(
            "SELECT dnr.set_context($1::text::uuid, $2::text::uuid, $3::text[])",
            &[&ctx.tenant, &ctx.user, &ctx.roles],
        )
        .map_err(|e| format!("dnr.set_context: {}", err(e)))?;
        match statement(&mut tx) {
            Ok(value) => {
                tx.commit().map_err(err)?;
                Ok(Ok(value))
            }
            Err(e) => {
                let message = err(e);
                if std::env::var_os("DNR_CONFORMANCE_DEBUG").is_some() {
                    eprintln!("citus: statement failed: {message}");
                }
                tx.rollback().map_err(err)?;
                Ok(Err(message))
            }
        }
    }

    fn write(
        &mut self,
        ctx: &Ctx,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
        returning: bool,
    ) -> Result<Result<Written, String>, String> {
        if returning {
            let sql = format!("{sql} RETURNING id");
            self.in_context(ctx, |tx| {
                let rows = tx.query(&sql, params)?;
                let mut ids: Vec<i64> = rows.iter().map(|r| r.get::<_, i64>(0)).collect();
                ids.sort_unstable();
                Ok(Written::Ids(ids))
            })
        } else {
            self.in_context(ctx, |tx| tx.execute(sql, params).map(Written::Count))
        }
    }

    fn steps(&mut self, case: &Case, schema: &str) -> Result<Vec<Outcome>, String> {
        self.apply(&case.setup_policy())?;
        for entity in &case.entities {
            let table = format!("{schema}.{}", entity.table);
            let distribute = if entity.scoped {
                format!("SELECT create_distributed_table('{table}', 'tenant_id')")
            } else {
                format!("SELECT create_reference_table('{table}')")
            };
            self.owner_exec(&distribute)?;
            self.owner_exec(&format!(
                "GRANT SELECT, INSERT, UPDATE, DELETE ON {table} TO {}",
                self.app_role
            ))?;
        }
        for seed in &case.rows {
            let ctx = Ctx {
                tenant: seed.tenant.clone(),
                user: None,
                roles: vec![],
            };
            let v = &seed.values;
            let sql = insert_sql(&seed.table, false, v.d.is_some(), "");
            let mut params: Params = vec![&v.id, &v.n, &v.t, &v.u, &v.b];
            if v.d.is_some() {
                params.push(&v.d);
            }
            self.in_context(&ctx, |tx| tx.execute(&sql, &params))?
                .map_err(|e| format!("seeding {}: {e}", seed.table))?;
        }
        // Re-apply on the distributed tables: the policy under test.
        self.apply(&case.policy())?;
        let mut outcomes = Vec::new();
        for step in &case.steps {
            outcomes.push(self.step(case, &step.ctx, &step.action)?);
        }
        Ok(outcomes)
    }

    fn step(&mut self, case: &Case, ctx: &Ctx, action: &Action) -> Result<Outcome, String> {
        Ok(match action {
            Action::Read { table } => {
                let sql = format!("SELECT id FROM {table} ORDER BY id");
                let ids = self.in_context(ctx, |tx| {
                    Ok(tx
                        .query(&sql, &[])?
                        .iter()
                        .map(|r| r.get::<_, i64>(0))
                        .collect::<Vec<_>>())
                })??;
                Outcome::Rows(ids)
            }
            Action::Insert { .. } => {
                let (sql, boxed) = pg_statement(action, "", true).ok_or("not a write")?;
                let params = borrowed(&boxed);
                match self.in_context(ctx, |tx| tx.execute(&sql, &params))? {
                    Ok(1) => Outcome::Inserted,
                    Ok(n) => return Err(format!("insert changed {n} rows")),
                    Err(_) => Outcome::Refused,
                }
            }
            Action::Update { returning, .. } => {
                let (sql, boxed) = pg_statement(action, "", true).ok_or("not a write")?;
                match self.write(ctx, &sql, &borrowed(&boxed), *returning)? {
                    Ok(Written::Count(0)) => Outcome::Skipped,
                    Ok(Written::Count(_)) => Outcome::Updated,
                    Ok(Written::Ids(ids)) => Outcome::Returned(ids),
                    Err(_) => Outcome::Refused,
                }
            }
            Action::Delete { returning, .. } => {
                let (sql, boxed) = pg_statement(action, "", true).ok_or("not a write")?;
                match self.write(ctx, &sql, &borrowed(&boxed), *returning)? {
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
                let (sql, boxed) = pg_statement(action, mode.postgres_clause(scoped), true)
                    .ok_or("not a write")?;
                match self.write(ctx, &sql, &borrowed(&boxed), *returning)? {
                    Ok(Written::Count(0)) => Outcome::Skipped,
                    Ok(Written::Count(1)) => Outcome::Upserted,
                    Ok(Written::Count(n)) => return Err(format!("upsert changed {n} rows")),
                    Ok(Written::Ids(ids)) => Outcome::Returned(ids),
                    Err(_) => Outcome::Refused,
                }
            }
            Action::AddColumn { table, column } => {
                // Migrations run as the owner; Citus propagates the DDL.
                self.owner_exec(&format!("ALTER TABLE {table} ADD COLUMN {column} INTEGER"))?;
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
                let record = record_json(tenant, values);
                let allowed = self
                    .in_context(ctx, |tx| {
                        tx.query_one(
                            "SELECT dnr.check($1, $2, $3::text::jsonb)",
                            &[&entity, op, &record],
                        )
                        .map(|row| row.get::<_, bool>(0))
                    })?
                    .map_err(|e| format!("dnr.check: {e}"))?;
                Outcome::Checked(allowed)
            }
        })
    }
}

/// `INSERT INTO table (...) VALUES (...)` with the tenant column as `$7`
/// when given, then `clause`.
/// A NULL `d` is written as `DEFAULT`: on Citus a column DEFAULT, not a
/// trigger, fills declared defaults, and only for an omitted value
/// (docs/citus.md) — what the case means by NULL there.
fn insert_sql(table: &str, tenant_given: bool, d_given: bool, clause: &str) -> String {
    let next = if d_given { 7 } else { 6 };
    format!(
        "INSERT INTO {table} (id, {} n, t, u, b, d) VALUES ($1, {} $2, $3, $4::text::uuid, $5, {}){clause}",
        if tenant_given { "tenant_id," } else { "" },
        if tenant_given { format!("${next}::text::uuid,") } else { String::new() },
        if d_given { "$6" } else { "DEFAULT" },
    )
}

fn schema_name(case: &Case) -> String {
    format!("conf_{}", case.seed)
}

impl Engine for Citus {
    fn name(&self) -> &'static str {
        "citus"
    }

    /// Not applicable: what docs/citus.md lists as impossible or different
    /// on Citus — `exists` rules (refused by `dnr.apply`) and an UPDATE of
    /// the tenant (distribution) column (Citus refuses it even when no row
    /// matches). One id in two tenants of a scoped table is no longer
    /// apart: keys are per tenant in every engine.
    fn applies(&self, case: &Case) -> bool {
        !case.exists && !moves_a_row(case)
    }

    /// Each case gets its own schema (created on every node by Citus),
    /// dropped afterwards with its distributed tables.
    fn run(&mut self, case: &Case) -> Result<Vec<Outcome>, String> {
        self.clients.renew()?;
        let schema = schema_name(case);
        self.owner_exec(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))?;
        self.owner_exec(&format!("CREATE SCHEMA {schema}"))?;
        self.owner_exec(&format!(
            "GRANT USAGE ON SCHEMA {schema} TO {}",
            self.app_role
        ))?;
        self.owner_exec(&format!("SET search_path = {schema}, public"))?;
        self.clients
            .app
            .batch_execute(&format!("SET search_path = {schema}, public"))
            .map_err(err)?;
        let result = self.steps(case, &schema);
        self.owner_exec(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))?;
        result
    }
}

fn scoped(case: &Case, table: &str) -> bool {
    case.entity(table).is_some_and(|e| e.scoped)
}

fn moves_a_row(case: &Case) -> bool {
    case.steps.iter().any(|step| {
        matches!(&step.action, Action::Update { table, move_to: Some(_), .. } if scoped(case, table))
    })
}
