//! PostgreSQL stores, through the `dnr` extension and the `postgres`
//! client: the configured database (`none`, `row_level`, with a
//! `dnr_tenants` registry table), every tenant schema (`schema`:
//! `dnr.create_tenant` and friends) or one database per tenant
//! (`database`: `tenant_<32 hex>`, created from `postgres_template`, which
//! must have the extension; the tenant's id and name are the database's
//! comment).
//!
//! Connections to the configured database come from an `r2d2` pool of
//! `postgres_pool_size` (each worker holds one while it works; tenant
//! databases get their own connections).
//! A migration runs in one transaction with its history row
//! (`dnr.record_migration`) under the store's advisory lock
//! (`dnr.lock_migrations`), so concurrent runs serialize per store and a
//! killed run leaves whole migrations only.

use std::ops::{Deref, DerefMut};
use std::sync::OnceLock;
use std::time::Duration;

use dnr_core::ast::TenantMode;
use postgres::{Client, NoTls};
use r2d2_postgres::PostgresConnectionManager;
use uuid::Uuid;

use super::{postgres_rows, AppliedPolicy, Backend, Recorded, Session, Store, Tenant, TenantRows};
use crate::migrations::Migration;
use crate::project::{Policy, Project};

/// The row-level tenant registry, in the role's current schema.
const REGISTRY: &str = "dnr_tenants";
/// A tenant database's comment starts with this, then its JSON.
const COMMENT_PREFIX: &str = "dnr tenant ";

type Pool = r2d2::Pool<PostgresConnectionManager<NoTls>>;

pub struct PostgresBackend {
    mode: TenantMode,
    config: postgres::Config,
    pool_size: usize,
    template: String,
    /// Connections to the configured database, made when first needed.
    pool: OnceLock<Pool>,
}

/// A connection: from the pool (the configured database) or its own (a
/// tenant's database).
pub enum Connection {
    Pooled(r2d2::PooledConnection<PostgresConnectionManager<NoTls>>),
    Direct(Client),
}

impl Deref for Connection {
    type Target = Client;
    fn deref(&self) -> &Client {
        match self {
            Connection::Pooled(client) => client,
            Connection::Direct(client) => client,
        }
    }
}

impl DerefMut for Connection {
    fn deref_mut(&mut self) -> &mut Client {
        match self {
            Connection::Pooled(client) => client,
            Connection::Direct(client) => client,
        }
    }
}

/// An error's text as PostgreSQL gave it (message, detail, hint).
pub fn pg_error(error: &postgres::Error) -> String {
    match error.as_db_error() {
        Some(db) => {
            let mut text = db.message().to_string();
            if let Some(detail) = db.detail() {
                text.push_str(&format!(" (DETAIL: {detail})"));
            }
            if let Some(hint) = db.hint() {
                text.push_str(&format!(" (HINT: {hint})"));
            }
            text
        }
        None => error.to_string(),
    }
}

fn database_name(id: Uuid) -> String {
    format!("tenant_{}", id.simple())
}

fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

fn quote_literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

impl PostgresBackend {
    pub fn new(project: &Project) -> Result<PostgresBackend, String> {
        let url = project.database.postgres_url.as_deref().unwrap_or_default();
        let config: postgres::Config = url
            .parse()
            .map_err(|e| format!("error: database.postgres_url: {e}"))?;
        Ok(PostgresBackend {
            mode: project.mode(),
            config,
            pool_size: usize::try_from(project.database.postgres_pool_size).unwrap_or(1),
            template: project.database.postgres_template.clone(),
            pool: OnceLock::new(),
        })
    }

    /// A connection to the configured database (from the pool), or to a
    /// tenant's `database`.
    pub fn connection(&self, database: Option<&str>) -> Result<Connection, String> {
        if let Some(database) = database {
            return self.connect(Some(database)).map(Connection::Direct);
        }
        if self.pool.get().is_none() {
            // A first connection of our own: an unreachable server is an
            // error now, not after the pool's timeout.
            self.connect(None)?;
            let manager = PostgresConnectionManager::new(self.config.clone(), NoTls);
            let pool = r2d2::Pool::builder()
                .max_size(u32::try_from(self.pool_size).unwrap_or(u32::MAX))
                .min_idle(Some(0))
                .connection_timeout(Duration::from_secs(30))
                .build_unchecked(manager);
            let _ = self.pool.set(pool);
        }
        let pool = self.pool.get().ok_or("error: no connection pool")?;
        pool.get()
            .map(Connection::Pooled)
            .map_err(|e| format!("error: cannot connect to PostgreSQL: {e}"))
    }

    /// A connection to the configured database, or to `database`.
    pub fn connect(&self, database: Option<&str>) -> Result<Client, String> {
        let mut config = self.config.clone();
        if let Some(database) = database {
            config.dbname(database);
        }
        config
            .connect(NoTls)
            .map_err(|e| format!("error: cannot connect to PostgreSQL: {}", pg_error(&e)))
    }

    fn shared_store(&self) -> Store {
        Store {
            tenant: None,
            location: String::new(),
        }
    }

    /// Where tenant `id`'s rows are: its database (`None`: the configured
    /// one) and its schema (schema mode).
    fn tenant_place(&self, id: Uuid) -> Result<(Option<String>, Option<String>), String> {
        let tenant = self
            .tenants()?
            .into_iter()
            .find(|t| t.id == id)
            .ok_or_else(|| format!("error: unknown tenant {id}"))?;
        Ok(match self.mode {
            TenantMode::Schema => (None, Some(tenant.location)),
            TenantMode::Database => (Some(tenant.location), None),
            TenantMode::None | TenantMode::RowLevel => (None, None),
        })
    }

    /// The database a store lives in (`None`: the configured one).
    fn database_of<'s>(&self, store: &'s Store) -> Option<&'s str> {
        (self.mode == TenantMode::Database).then_some(store.location.as_str())
    }
}

/// Citus with schema-based sharding: a schema created inside
/// `dnr.create_tenant` can only be distributed by its (non-superuser) owner
/// in a later transaction — the extension warns and leaves it on the
/// coordinator; distributed here, before any migration creates tables in it.
fn distribute_on_citus(db: &mut Client, schema: &str) -> Result<(), postgres::Error> {
    let sharding: bool = db
        .query_one(
            "SELECT coalesce(pg_catalog.current_setting('citus.enable_schema_based_sharding', true), '') = 'on' \
                AND EXISTS (SELECT 1 FROM pg_catalog.pg_extension WHERE extname = 'citus')",
            &[],
        )?
        .try_get(0)?;
    if !sharding {
        return Ok(());
    }
    let distributed: bool = db
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_dist_schema WHERE schemaid = $1::text::regnamespace)",
            &[&schema],
        )?
        .try_get(0)?;
    if !distributed {
        db.execute(
            "SELECT pg_catalog.citus_schema_distribute($1::text::regnamespace)",
            &[&schema],
        )?;
    }
    Ok(())
}

fn text_row(row: &postgres::Row, index: usize) -> String {
    row.try_get::<_, Option<String>>(index)
        .ok()
        .flatten()
        .unwrap_or_default()
}

impl Backend for PostgresBackend {
    fn stores(&self) -> Result<Vec<Store>, String> {
        match self.mode {
            TenantMode::Schema | TenantMode::Database => Ok(self
                .tenants()?
                .into_iter()
                .map(|tenant| Store {
                    location: tenant.location.clone(),
                    tenant: Some(tenant),
                })
                .collect()),
            TenantMode::None | TenantMode::RowLevel => Ok(vec![self.shared_store()]),
        }
    }

    fn apply_stores(&self) -> Result<Vec<Store>, String> {
        match self.mode {
            TenantMode::Database => self.stores(),
            // dnr.apply reaches every tenant schema itself.
            _ => Ok(vec![self.shared_store()]),
        }
    }

    fn tenants(&self) -> Result<Vec<Tenant>, String> {
        let mut db = self.connection(None)?;
        let rows = match self.mode {
            TenantMode::Schema => db.query(
                "SELECT id::text, name, schema_name::text, created_at::text FROM dnr.list_tenants() ORDER BY created_at, id",
                &[],
            ),
            TenantMode::Database => db.query(
                "SELECT NULL::text, pg_catalog.shobj_description(d.oid, 'pg_database'), d.datname::text, NULL::text \
                   FROM pg_catalog.pg_database d WHERE d.datname ~ '^tenant_[0-9a-f]{32}$' ORDER BY d.oid",
                &[],
            ),
            TenantMode::None | TenantMode::RowLevel => {
                let exists: bool = db
                    .query_one(
                        "SELECT pg_catalog.to_regclass($1) IS NOT NULL",
                        &[&REGISTRY],
                    )
                    .and_then(|row| row.try_get(0))
                    .map_err(|e| format!("error: {}", pg_error(&e)))?;
                if !exists {
                    return Ok(Vec::new());
                }
                db.query(
                    &format!("SELECT id::text, name, '', created_at::text FROM {REGISTRY} ORDER BY created_at, id"),
                    &[],
                )
            }
        }
        .map_err(|e| format!("error: cannot list tenants: {}", pg_error(&e)))?;
        let mut tenants = Vec::new();
        for row in rows {
            let tenant = if self.mode == TenantMode::Database {
                // The comment `dnr tenant {"id": ..., "name": ...}`.
                let comment = text_row(&row, 1);
                let Some(json) = comment.strip_prefix(COMMENT_PREFIX) else {
                    continue;
                };
                let value: serde_json::Value = serde_json::from_str(json).unwrap_or_default();
                let field = |key: &str| {
                    value
                        .get(key)
                        .and_then(|v| v.as_str())
                        .unwrap_or_default()
                        .to_string()
                };
                let Ok(id) = Uuid::parse_str(&field("id")) else {
                    continue;
                };
                let location = text_row(&row, 2);
                if location != database_name(id) {
                    continue;
                }
                Tenant {
                    id,
                    name: field("name"),
                    location,
                    created_at: field("created_at"),
                }
            } else {
                let id = text_row(&row, 0);
                Tenant {
                    id: Uuid::parse_str(&id)
                        .map_err(|e| format!("error: tenant id `{id}`: {e}"))?,
                    name: text_row(&row, 1),
                    location: text_row(&row, 2),
                    created_at: text_row(&row, 3),
                }
            };
            tenants.push(tenant);
        }
        if self.mode == TenantMode::Database {
            tenants.sort_by(|a, b| (&a.created_at, a.id).cmp(&(&b.created_at, b.id)));
        }
        Ok(tenants)
    }

    fn create_tenant(&self, id: Uuid, name: &str) -> Result<Store, String> {
        let mut db = self.connection(None)?;
        let failed =
            |e: postgres::Error| format!("error: cannot create tenant {id}: {}", pg_error(&e));
        match self.mode {
            TenantMode::Schema => {
                let schema: String = db
                    .query_one(
                        "SELECT dnr.create_tenant($1::text::uuid, $2)::text",
                        &[&id.to_string(), &name],
                    )
                    .and_then(|row| row.try_get(0))
                    .map_err(failed)?;
                distribute_on_citus(&mut db, &schema).map_err(failed)?;
                Ok(Store {
                    tenant: Some(Tenant {
                        id,
                        name: name.to_string(),
                        location: schema.clone(),
                        created_at: String::new(),
                    }),
                    location: schema,
                })
            }
            TenantMode::Database => {
                let database = database_name(id);
                let created_at: String = db
                    .query_one("SELECT pg_catalog.clock_timestamp()::text", &[])
                    .and_then(|row| row.try_get(0))
                    .map_err(failed)?;
                db.batch_execute(&format!(
                    "CREATE DATABASE {} TEMPLATE {}",
                    quote_ident(&database),
                    quote_ident(&self.template)
                ))
                .map_err(|e| {
                    if e.as_db_error().map(|d| d.code().code()) == Some("42P04") {
                        format!("error: tenant {id} exists (database `{database}`)")
                    } else {
                        failed(e)
                    }
                })?;
                let comment = serde_json::json!({
                    "id": id.to_string(), "name": name, "created_at": created_at,
                });
                let described = db.batch_execute(&format!(
                    "COMMENT ON DATABASE {} IS {}",
                    quote_ident(&database),
                    quote_literal(&format!("{COMMENT_PREFIX}{comment}"))
                ));
                let checked = described.map_err(failed).and_then(|()| {
                    let mut tenant_db = self.connection(Some(&database))?;
                    let installed: bool = tenant_db
                        .query_one("SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_extension WHERE extname = 'dnr')", &[])
                        .and_then(|row| row.try_get(0))
                        .map_err(failed)?;
                    if installed {
                        Ok(())
                    } else {
                        Err(format!(
                            "error: the template database `{}` does not have the dnr extension: run `CREATE EXTENSION dnr` in it as a superuser (or set database.postgres_template)",
                            self.template
                        ))
                    }
                });
                if let Err(error) = checked {
                    let _ = db.batch_execute(&format!(
                        "DROP DATABASE IF EXISTS {}",
                        quote_ident(&database)
                    ));
                    return Err(error);
                }
                Ok(Store {
                    tenant: Some(Tenant {
                        id,
                        name: name.to_string(),
                        location: database.clone(),
                        created_at,
                    }),
                    location: database,
                })
            }
            TenantMode::None | TenantMode::RowLevel => {
                let created = db.batch_execute(&format!(
                    "CREATE TABLE IF NOT EXISTS {REGISTRY} (id uuid PRIMARY KEY, name text NOT NULL, created_at timestamptz NOT NULL DEFAULT pg_catalog.clock_timestamp())"
                ));
                // Tenants created in parallel race to create the registry
                // (IF NOT EXISTS does not serialize them): the loser finds
                // it made.
                if let Err(error) = created {
                    let exists: bool = db
                        .query_one(
                            "SELECT pg_catalog.to_regclass($1) IS NOT NULL",
                            &[&REGISTRY],
                        )
                        .and_then(|row| row.try_get(0))
                        .unwrap_or(false);
                    if !exists {
                        return Err(failed(error));
                    }
                }
                let inserted = db
                    .execute(
                        &format!("INSERT INTO {REGISTRY} (id, name) VALUES ($1::text::uuid, $2) ON CONFLICT (id) DO NOTHING"),
                        &[&id.to_string(), &name],
                    )
                    .map_err(failed)?;
                if inserted == 0 {
                    return Err(format!("error: tenant {id} exists"));
                }
                Ok(self.shared_store())
            }
        }
    }

    fn drop_tenant(&self, id: Uuid) -> Result<(), String> {
        let mut db = self.connection(None)?;
        let failed =
            |e: postgres::Error| format!("error: cannot drop tenant {id}: {}", pg_error(&e));
        match self.mode {
            TenantMode::Schema => db
                .execute("SELECT dnr.drop_tenant($1::text::uuid)", &[&id.to_string()])
                .map(drop)
                .map_err(failed),
            TenantMode::Database => {
                let database = database_name(id);
                if !self.tenants()?.iter().any(|tenant| tenant.id == id) {
                    return Err(format!("error: unknown tenant {id}"));
                }
                db.batch_execute(&format!("DROP DATABASE {}", quote_ident(&database)))
                    .map_err(failed)
            }
            TenantMode::None | TenantMode::RowLevel => {
                let removed = db
                    .execute(
                        &format!("DELETE FROM {REGISTRY} WHERE id = $1::text::uuid"),
                        &[&id.to_string()],
                    )
                    .map_err(failed)?;
                if removed == 0 {
                    return Err(format!("error: unknown tenant {id}"));
                }
                Ok(())
            }
        }
    }

    fn session(&self) -> Result<Box<dyn Session + '_>, String> {
        Ok(Box::new(PgSession {
            backend: self,
            client: None,
            store: String::new(),
        }))
    }

    fn parallelism(&self) -> usize {
        self.pool_size
    }

    fn export_tenant(&self, id: Uuid) -> Result<TenantRows, String> {
        let (database, schema) = self.tenant_place(id)?;
        let mut db = self.connection(database.as_deref())?;
        let mut tx = db
            .build_transaction()
            .isolation_level(postgres::IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()
            .map_err(|e| format!("error: {}", pg_error(&e)))?;
        postgres_rows::maintain(&mut tx, id, schema.as_deref())?;
        let source = applied_source(&mut tx, id)?;
        let history = store_history(&mut tx, schema.as_deref())?;
        let rows = postgres_rows::read(&mut tx, source, history)?;
        tx.commit()
            .map_err(|e| format!("error: {}", pg_error(&e)))?;
        Ok(rows)
    }

    fn import_tenant(&self, id: Uuid, rows: &TenantRows, _checksum: &str) -> Result<(), String> {
        let (database, schema) = self.tenant_place(id)?;
        let mut db = self.connection(database.as_deref())?;
        let mut tx = db
            .transaction()
            .map_err(|e| format!("error: {}", pg_error(&e)))?;
        postgres_rows::maintain(&mut tx, id, schema.as_deref())?;
        let version = store_history(&mut tx, schema.as_deref())?
            .iter()
            .map(|r| r.version)
            .max()
            .unwrap_or(0);
        if version != rows.schema_version() {
            return Err(format!(
                "error: the tenant file is at schema version {}, tenant {id}'s store at {version}: run `dnr migrate` so that both are at the same version, then import again",
                rows.schema_version()
            ));
        }
        let source = applied_source(&mut tx, id)?;
        postgres_rows::write(&mut tx, id, &source, rows)?;
        tx.commit().map_err(|e| format!("error: {}", pg_error(&e)))
    }

    fn hold_tenant(&self, id: Uuid) -> Result<(), String> {
        let database = match self.mode {
            TenantMode::Database => self.tenant_place(id)?.0,
            _ => None,
        };
        self.connection(database.as_deref())?
            .execute("SELECT dnr.hold_tenant($1::text::uuid)", &[&id.to_string()])
            .map(drop)
            .map_err(|e| format!("error: cannot hold tenant {id}: {}", pg_error(&e)))
    }

    fn release_tenant(&self, id: Uuid) -> Result<(), String> {
        let database = match self.mode {
            TenantMode::Database => match self.tenant_place(id) {
                Ok((database, _)) => database,
                // Gone with its tenant.
                Err(_) => return Ok(()),
            },
            _ => None,
        };
        self.connection(database.as_deref())?
            .execute(
                "SELECT dnr.release_tenant($1::text::uuid)",
                &[&id.to_string()],
            )
            .map(drop)
            .map_err(|e| format!("error: cannot release tenant {id}: {}", pg_error(&e)))
    }

    fn erase_tenant(&self, id: Uuid) -> Result<Vec<(String, u64)>, String> {
        let (database, schema) = self.tenant_place(id)?;
        let failed = |e: postgres::Error| format!("error: {}", pg_error(&e));
        let counts = {
            let mut db = self.connection(database.as_deref())?;
            let mut tx = db.transaction().map_err(failed)?;
            postgres_rows::maintain(&mut tx, id, schema.as_deref())?;
            let source = applied_source(&mut tx, id)?;
            let counts = postgres_rows::erase(&mut tx, &source)?;
            if matches!(self.mode, TenantMode::None | TenantMode::RowLevel) {
                // The registry row goes in the same transaction.
                tx.execute(
                    &format!("DELETE FROM {REGISTRY} WHERE id = $1::text::uuid"),
                    &[&id.to_string()],
                )
                .map_err(failed)?;
                tx.commit().map_err(failed)?;
                return Ok(counts);
            }
            tx.commit().map_err(failed)?;
            counts
        };
        // Its schema or database goes with it.
        self.drop_tenant(id)?;
        Ok(counts)
    }

    /// One query for every tenant schema's history (schema mode).
    fn histories(&self, stores: &[Store]) -> Option<Result<Vec<Vec<Recorded>>, String>> {
        if self.mode != TenantMode::Schema {
            return None;
        }
        Some((|| {
            let schemas: Vec<String> = stores.iter().map(|s| s.location.clone()).collect();
            let rows = self
                .connection(None)?
                .query(
                    "SELECT s.ord::int4, h.version, h.name, h.checksum, h.applied_at::text, \
                            (extract(epoch FROM h.duration) * 1000)::float8 \
                       FROM pg_catalog.unnest($1::text[]) WITH ORDINALITY AS s(schema_name, ord), \
                            LATERAL dnr.migration_history(s.schema_name::name) h",
                    &[&schemas],
                )
                .map_err(|e| format!("error: {}", pg_error(&e)))?;
            let mut histories = vec![Vec::new(); stores.len()];
            for row in &rows {
                let index = usize::try_from(row.try_get::<_, i32>(0).map_err(failed)?)
                    .map_err(|e| e.to_string())?;
                if let Some(history) = index.checked_sub(1).and_then(|i| histories.get_mut(i)) {
                    history.push(recorded(row, 1)?);
                }
            }
            Ok(histories)
        })())
    }

    fn explain(
        &self,
        store: &Store,
        context: &dnr_core::TenantContext,
        entity: &str,
        op: &str,
        row: &str,
    ) -> Result<String, String> {
        let mut db = self.connection(self.database_of(store))?;
        let failed = |e: postgres::Error| format!("error: {}", pg_error(&e));
        let mut tx = db.transaction().map_err(failed)?;
        if self.mode == TenantMode::Schema {
            tx.execute(
                "SELECT pg_catalog.set_config('search_path', pg_catalog.quote_ident($1), true)",
                &[&store.location],
            )
            .map_err(failed)?;
        }
        let tenant = context.tenant.map(|id| id.to_string());
        let user = context.user.map(|id| id.to_string());
        let roles: Vec<String> = context.roles.iter().cloned().collect();
        tx.execute(
            "SELECT dnr.set_context($1::text::uuid, $2::text::uuid, $3::text[], true)",
            &[&tenant, &user, &roles],
        )
        .map_err(failed)?;
        let row = tx
            .query_one(
                "SELECT dnr.check($1, $2, $3::text::jsonb), dnr.check_reason($1, $2, $3::text::jsonb)",
                &[&entity, &op, &row],
            )
            .map_err(failed)?;
        let allowed: bool = row.try_get(0).map_err(failed)?;
        let reason: String = row.try_get(1).map_err(failed)?;
        Ok(super::render_decision(allowed, &reason))
    }
}

/// One worker's connection: kept across stores of the configured
/// database, replaced when a store is another database.
struct PgSession<'b> {
    backend: &'b PostgresBackend,
    client: Option<(Option<String>, Connection)>,
    /// The schema the open transaction migrates.
    store: String,
}

impl PgSession<'_> {
    fn client(&mut self, database: Option<&str>) -> Result<&mut Client, String> {
        let reuse = matches!(&self.client, Some((open, _)) if open.as_deref() == database);
        if !reuse {
            self.client = None;
            let client = self.backend.connection(database)?;
            self.client = Some((database.map(str::to_string), client));
        }
        match &mut self.client {
            Some((_, client)) => Ok(client),
            None => Err("error: no connection".into()),
        }
    }

    fn open(&mut self) -> Result<&mut Client, String> {
        match &mut self.client {
            Some((_, client)) => Ok(client),
            None => Err("error: no store is open".into()),
        }
    }
}

/// The policy applied to the store the transaction is in.
fn applied_source(tx: &mut postgres::Transaction<'_>, id: Uuid) -> Result<String, String> {
    tx.query_opt("SELECT a.source FROM dnr.applied_policy() a", &[])
        .map_err(|e| format!("error: {}", pg_error(&e)))?
        .map(|row| row.try_get(0).map_err(failed))
        .transpose()?
        .ok_or_else(|| {
            format!("error: no policy is applied to tenant {id}'s store: run `dnr apply`")
        })
}

/// The migrations recorded for the store of the transaction: `schema`, or
/// the current schema.
fn store_history(
    tx: &mut postgres::Transaction<'_>,
    schema: Option<&str>,
) -> Result<Vec<Recorded>, String> {
    let schema = match schema {
        Some(schema) => schema.to_string(),
        None => tx
            .query_one("SELECT pg_catalog.current_schema()::text", &[])
            .and_then(|row| row.try_get(0))
            .map_err(failed)?,
    };
    history_of(tx, &schema)
}

/// The migrations recorded for the store `schema`, by version.
fn history_of(
    client: &mut impl postgres::GenericClient,
    schema: &str,
) -> Result<Vec<Recorded>, String> {
    let rows = client
        .query(
            "SELECT version, name, checksum, applied_at::text, (extract(epoch FROM duration) * 1000)::float8 \
               FROM dnr.migration_history($1) ORDER BY version",
            &[&schema],
        )
        .map_err(failed)?;
    rows.iter().map(|row| recorded(row, 0)).collect()
}

/// A history row whose columns start at `at`.
fn recorded(row: &postgres::Row, at: usize) -> Result<Recorded, String> {
    Ok(Recorded {
        version: u32::try_from(row.try_get::<_, i32>(at).map_err(failed)?).unwrap_or(u32::MAX),
        name: row.try_get(at + 1).map_err(failed)?,
        checksum: row.try_get(at + 2).map_err(failed)?,
        applied_at: row.try_get(at + 3).map_err(failed)?,
        duration_ms: row.try_get(at + 4).map_err(failed)?,
    })
}

fn failed(e: postgres::Error) -> String {
    pg_error(&e)
}

impl Session for PgSession<'_> {
    fn begin(&mut self, store: &Store) -> Result<(), String> {
        let schema_mode = self.backend.mode == TenantMode::Schema;
        let database = self.backend.database_of(store).map(str::to_string);
        let client = self.client(database.as_deref())?;
        client.batch_execute("BEGIN").map_err(failed)?;
        let locked = (|| {
            let schema = if schema_mode {
                client
                    .execute(
                        "SELECT pg_catalog.set_config('search_path', pg_catalog.quote_ident($1), true)",
                        &[&store.location],
                    )
                    .map_err(failed)?;
                store.location.clone()
            } else {
                client
                    .query_one("SELECT pg_catalog.current_schema()::text", &[])
                    .and_then(|row| row.try_get::<_, Option<String>>(0))
                    .map_err(failed)?
                    .ok_or("the role's search_path names no existing schema")?
            };
            client
                .execute("SELECT dnr.lock_migrations($1)", &[&schema])
                .map_err(failed)?;
            Ok::<_, String>(schema)
        })();
        match locked {
            Ok(schema) => {
                self.store = schema;
                Ok(())
            }
            Err(error) => {
                // The connection goes on to the next store (or back to the
                // pool): never inside a failed transaction.
                let _ = client.batch_execute("ROLLBACK");
                Err(error)
            }
        }
    }

    fn recorded(&mut self) -> Result<Vec<Recorded>, String> {
        let store = self.store.clone();
        history_of(self.open()?, &store)
    }

    /// Statement by statement: Citus refuses a multi-statement string of
    /// DDL on distributed tables, and an error then names its statement.
    fn run(&mut self, migration: &Migration) -> Result<(), String> {
        let client = self.open()?;
        for statement in dnr_core::compile::postgres::statements(&migration.sql) {
            client.batch_execute(statement).map_err(|e| {
                let first_line = statement
                    .lines()
                    .find(|l| !l.trim_start().starts_with("--"));
                format!(
                    "{} (in `{}`)",
                    pg_error(&e),
                    first_line.unwrap_or(statement).trim()
                )
            })?;
        }
        Ok(())
    }

    fn record(&mut self, migration: &Migration, took: Duration) -> Result<(), String> {
        let store = self.store.clone();
        let version = i32::try_from(migration.version).map_err(|e| e.to_string())?;
        self.open()?
            .execute(
                "SELECT dnr.record_migration($1, $2, $3, $4, pg_catalog.make_interval(secs => $5))",
                &[
                    &store,
                    &version,
                    &migration.name,
                    &migration.checksum,
                    &took.as_secs_f64(),
                ],
            )
            .map(drop)
            .map_err(failed)
    }

    fn commit(&mut self) -> Result<(), String> {
        self.open()?.batch_execute("COMMIT").map_err(failed)
    }

    fn rollback(&mut self) -> Result<(), String> {
        self.open()?.batch_execute("ROLLBACK").map_err(failed)
    }

    fn apply(&mut self, store: &Store, policy: &Policy) -> Result<String, String> {
        let database = self.backend.database_of(store).map(str::to_string);
        self.client(database.as_deref())?
            .query_one("SELECT dnr.apply($1)", &[&policy.source])
            .and_then(|row| row.try_get(0))
            .map_err(failed)
    }

    fn release(&mut self) {
        self.client = None;
    }

    fn applied_policy(&mut self, store: &Store) -> Result<AppliedPolicy, String> {
        let database = self.backend.database_of(store).map(str::to_string);
        let client = self.client(database.as_deref())?;
        let checksum = client.query_opt("SELECT a.source FROM dnr.applied_policy() a", &[]);
        Ok(match checksum {
            Ok(Some(row)) => AppliedPolicy::Source(row.try_get(0).map_err(failed)?),
            Ok(None) => AppliedPolicy::None,
            Err(_) => AppliedPolicy::Unknown,
        })
    }
}
