//! Routing: an application's connection for one tenant, as the project's
//! tenancy mode places it — the shared database with the tenant's
//! context, the tenant's schema, or the tenant's own file or database.
//!
//! ```no_run
//! use dnr_cli::project::Project;
//! use dnr_cli::route::Router;
//!
//! # fn main() -> Result<(), String> {
//! let router = Router::new(Project::load(None)?);
//! let tenant = uuid::Uuid::parse_str("11111111-1111-4111-8111-111111111111").map_err(|e| e.to_string())?;
//! let db = router.sqlite(tenant, None)?;
//! let tasks = db.query("SELECT title FROM tasks", &[]).map_err(|e| e.to_string())?;
//! # Ok(())
//! # }
//! ```

use std::path::PathBuf;

use dnr_core::ast::TenantMode;
use dnr_core::config::Backend as BackendKind;
use dnr_core::TenantContext;
use uuid::Uuid;

use crate::backend::postgres::{pg_error, PostgresBackend};
use crate::backend::sqlite;
use crate::project::Project;

pub struct Router {
    project: Project,
}

impl Router {
    pub fn new(project: Project) -> Router {
        Router { project }
    }

    fn context(tenant: Uuid, user: Option<Uuid>) -> TenantContext {
        TenantContext {
            tenant: Some(tenant),
            user,
            ..TenantContext::default()
        }
    }

    /// The SQLite connection for `tenant` (and `user`), its context set.
    /// An unknown tenant is an error in `database` mode; no file is created
    /// for it.
    pub fn sqlite(
        &self,
        tenant: Uuid,
        user: Option<Uuid>,
    ) -> Result<dnr_sqlite::Connection, String> {
        if self.project.database.backend != BackendKind::Sqlite {
            return Err("error: the project's backend is postgres; use Router::postgres".into());
        }
        let path: PathBuf = match self.project.mode() {
            TenantMode::Database => {
                let path = self
                    .project
                    .path(&self.project.database.tenants_dir)
                    .join(tenant.to_string())
                    .join("data.db");
                if !path.exists() {
                    return Err(format!("error: unknown tenant {tenant}"));
                }
                path
            }
            _ => self.project.path(&self.project.database.sqlite_path),
        };
        let db = sqlite::open(&path)?;
        db.set_context(Router::context(tenant, user))
            .map_err(|e| format!("error: {e}"))?;
        Ok(db)
    }

    /// A PostgreSQL connection for `tenant` (and `user`): the tenant's
    /// database, or the configured one with the tenant's schema as its
    /// `search_path` (`dnr.use_tenant`); the context is set for the
    /// session (`local => false`), so hand the connection to one tenant
    /// only.
    pub fn postgres(&self, tenant: Uuid, user: Option<Uuid>) -> Result<postgres::Client, String> {
        if self.project.database.backend != BackendKind::Postgres {
            return Err("error: the project's backend is sqlite; use Router::sqlite".into());
        }
        let backend = PostgresBackend::new(&self.project)?;
        let database = format!("tenant_{}", tenant.simple());
        let mut client = match self.project.mode() {
            TenantMode::Database => backend.connect(Some(&database))?,
            _ => backend.connect(None)?,
        };
        let (tenant, user) = (tenant.to_string(), user.map(|u| u.to_string()));
        client
            .execute(
                "SELECT dnr.set_context($1::text::uuid, $2::text::uuid, NULL, false)",
                &[&tenant, &user],
            )
            .map_err(|e| format!("error: {}", pg_error(&e)))?;
        if self.project.mode() == TenantMode::Schema {
            let schema: String = client
                .query_one("SELECT dnr.use_tenant($1::text::uuid)::text", &[&tenant])
                .and_then(|row| row.try_get(0))
                .map_err(|e| format!("error: {}", pg_error(&e)))?;
            client
                .execute(
                    "SELECT pg_catalog.set_config('search_path', pg_catalog.quote_ident($1) || ', public', false)",
                    &[&schema],
                )
                .map_err(|e| format!("error: {}", pg_error(&e)))?;
        }
        Ok(client)
    }
}
