//! `dnr tenants create ID... [--name N]`, `list`, `drop ID [--erase]`,
//! `export ID --out FILE`, `import FILE [--as ID] [--replace]`,
//! `move ID --to OTHER.toml`, `adopt ID`.
//!
//! `create` makes the tenant's store (schema, file or database; a registry
//! row in `none`/`row_level` mode), applies the current policy and every
//! migration to it, and only then makes it a tenant: a failure leaves no
//! tenant behind. Several ids are created in parallel.

use std::path::Path;

use dnr_core::ast::TenantMode;
use serde_json::json;
use uuid::Uuid;

use crate::backend::{self, Backend, Session, Store};
use crate::migrate::{self, Outcome, Plan};
use crate::migrations::Migration;
use crate::progress::Progress;
use crate::project::{Policy, Project};

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Create tenants: their store, the current policy, all migrations.
    Create {
        /// Tenant ids (UUIDs).
        #[arg(required = true, value_name = "ID")]
        ids: Vec<String>,
        /// A display name (with one id).
        #[arg(long)]
        name: Option<String>,
        /// JSON lines on stdout.
        #[arg(long)]
        json: bool,
    },
    /// List the tenants.
    List {
        /// One JSON object per line.
        #[arg(long)]
        json: bool,
    },
    /// Drop a tenant and its store (its schema, file or database); in
    /// `row_level` mode its rows stay unless `--erase`.
    Drop {
        #[arg(value_name = "ID")]
        id: String,
        /// Delete every row of the tenant in every table that holds its
        /// rows, in one transaction with the drop (counts per table).
        #[arg(long)]
        erase: bool,
    },
    /// Write one tenant's rows, policy and migration history to a tenant
    /// file (an ordinary DNR SQLite database with a manifest): a backup,
    /// or a tenant to move.
    Export {
        #[arg(value_name = "ID")]
        id: String,
        /// The file to write (never overwritten).
        #[arg(long, value_name = "FILE")]
        out: std::path::PathBuf,
    },
    /// Move a tenant to another project (another mode, engine or server):
    /// held, exported, imported there, verified, switched, erased here.
    /// Run it again to go on after a crash.
    Move {
        #[arg(value_name = "ID")]
        id: String,
        /// The other project's dnr.toml.
        #[arg(long, value_name = "OTHER.toml")]
        to: std::path::PathBuf,
    },
    /// Make the rows of a single-tenant (`none` mode) SQLite app tenant ID's,
    /// after dnr.toml and the policy say `row_level`: fills the tenant
    /// column, applies the policy, registers the tenant; all or nothing.
    Adopt {
        #[arg(value_name = "ID")]
        id: String,
    },
    /// Read a tenant file into this project (checked whole before anything
    /// is written; all or nothing): a restore, or a tenant moved here.
    Import {
        #[arg(value_name = "FILE")]
        file: std::path::PathBuf,
        /// Import as this tenant id instead of the file's.
        #[arg(long = "as", value_name = "ID")]
        as_id: Option<String>,
        /// Replace an existing tenant's rows (else it is refused).
        #[arg(long)]
        replace: bool,
    },
}

/// A tenant id as given on the command line.
pub fn parse_id(text: &str) -> Result<Uuid, String> {
    dnr_core::value::parse_uuid(text).map_err(|e| format!("error: tenant id `{text}`: {e}"))
}

pub fn run(config: Option<&Path>, command: Command) -> Result<(), String> {
    let project = Project::load(config)?;
    let backend = backend::open(&project)?;
    match command {
        Command::Create { ids, name, json } => {
            if name.is_some() && ids.len() > 1 {
                return Err("error: --name names one tenant; create the others separately".into());
            }
            let ids = ids
                .iter()
                .map(|id| parse_id(id))
                .collect::<Result<Vec<_>, _>>()?;
            create(
                &project,
                backend.as_ref(),
                &ids,
                name.as_deref().unwrap_or(""),
                json,
            )
        }
        Command::List { json } => {
            let mut text = String::new();
            for tenant in backend.tenants()? {
                if json {
                    text.push_str(&format!(
                        "{}\n",
                        json!({"id": tenant.id.to_string(), "name": tenant.name, "store": tenant.location, "created_at": tenant.created_at})
                    ));
                } else {
                    text.push_str(&format!(
                        "{}\t{}\t{}\n",
                        tenant.id, tenant.name, tenant.location
                    ));
                }
            }
            crate::verb_args::print(&text)
        }
        Command::Drop { id, erase } => {
            let id = parse_id(&id)?;
            if erase {
                let counts = backend.erase_tenant(id)?;
                let mut text = format!("dropped tenant {id}, its rows erased:\n");
                for (table, count) in counts {
                    text.push_str(&format!("  {table}\t{count}\n"));
                }
                return crate::verb_args::print(&text);
            }
            backend.drop_tenant(id)?;
            let rows_stay = matches!(project.mode(), TenantMode::RowLevel | TenantMode::None);
            crate::verb_args::print(&if rows_stay {
                format!("dropped tenant {id}; its rows stay in the shared tables (`dnr tenants drop {id} --erase` deletes them)\n")
            } else {
                format!("dropped tenant {id}\n")
            })
        }
        Command::Export { id, out } => {
            let id = parse_id(&id)?;
            let rows = backend.export_tenant(id)?;
            let manifest = crate::transfer::write_file(
                &out,
                id,
                &rows,
                crate::transfer::engine_name(&project),
                project.mode().as_str(),
            )?;
            let total: u64 = manifest.tables.iter().map(|t| t.rows).sum();
            crate::verb_args::print(&format!(
                "exported tenant {id} to {}: {total} rows in {} tables, schema version {}, checksum {}\n",
                out.display(),
                manifest.tables.len(),
                manifest.schema_version,
                manifest.checksum
            ))
        }
        Command::Move { id, to } => crate::tenant_move::run(
            &project,
            backend.as_ref(),
            parse_id(&id)?,
            &to,
            &crate::tenant_move::print,
        ),
        Command::Adopt { id } => {
            let id = parse_id(&id)?;
            let counts = backend.adopt_tenant(id, &project.policy()?.source)?;
            let mut text = format!("adopted: every row is tenant {id}'s now\n");
            for (table, count) in counts {
                text.push_str(&format!("  {table}\t{count}\n"));
            }
            crate::verb_args::print(&text)
        }
        Command::Import {
            file,
            as_id,
            replace,
        } => {
            let (manifest, rows) = crate::transfer::read_file(&file)?;
            let id = match as_id {
                Some(text) => parse_id(&text)?,
                None => manifest.tenant,
            };
            let existed = backend.tenants()?.iter().any(|t| t.id == id);
            if existed && !replace {
                return Err(format!(
                    "error: tenant {id} exists: `--replace` replaces its rows with the file's"
                ));
            }
            if !existed {
                create(&project, backend.as_ref(), &[id], "", false)?;
            }
            if let Err(error) = backend.import_tenant(id, &rows, &manifest.checksum) {
                if !existed {
                    let _ = backend.drop_tenant(id);
                }
                return Err(error);
            }
            let total: u64 = manifest.tables.iter().map(|t| t.rows).sum();
            crate::verb_args::print(&format!(
                "imported tenant {id} from {}: {total} rows in {} tables (checksum verified)\n",
                file.display(),
                manifest.tables.len()
            ))
        }
    }
}

pub(crate) fn create(
    project: &Project,
    backend: &dyn Backend,
    ids: &[Uuid],
    name: &str,
    json: bool,
) -> Result<(), String> {
    // Tenant files and databases get the policy here; the shared database
    // has it from `dnr apply`, and dnr.create_tenant gives a new schema the
    // newest applied policy itself.
    let policy = match project.mode() {
        TenantMode::Database => project.policy_if_present()?,
        _ => None,
    };
    let migrations = project.migrations()?;
    let placeholders: Vec<Store> = ids
        .iter()
        .map(|id| Store {
            tenant: None,
            location: id.to_string(),
        })
        .collect();
    let progress = Progress::new(json, ids.len(), "create");
    let results = backend::run_parallel(
        backend,
        &placeholders,
        |session, placeholder| {
            let id = Uuid::parse_str(&placeholder.location).map_err(|e| e.to_string())?;
            create_one(backend, session, id, name, policy.as_ref(), &migrations)
        },
        |placeholder, result| {
            let event = match result {
                Ok(store) => {
                    json!({"tenant": placeholder.location, "status": "created", "store": store.location})
                }
                Err(error) => {
                    json!({"tenant": placeholder.location, "status": "failed", "error": error})
                }
            };
            progress.done(&event, result.is_err(), &placeholder.location);
        },
    );
    progress.finish();
    let failed: Vec<String> = placeholders
        .iter()
        .zip(&results)
        .filter_map(|(p, r)| r.as_ref().err().map(|e| format!("{}: {e}", p.location)))
        .collect();
    if !progress.json() {
        let mut text = String::new();
        for (placeholder, result) in placeholders.iter().zip(&results) {
            if let Ok(store) = result {
                let place = if store.location.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", store.location)
                };
                text.push_str(&format!("created tenant {}{place}\n", placeholder.location));
            }
        }
        crate::verb_args::print(&text)?;
    }
    match failed.as_slice() {
        [] => Ok(()),
        [only] if ids.len() == 1 => Err(only
            .trim_start_matches(&format!("{}: ", ids[0]))
            .to_string()),
        _ => Err(format!(
            "error: {} of {} tenants were not created:\n  {}",
            failed.len(),
            ids.len(),
            failed.join("\n  ")
        )),
    }
}

fn create_one(
    backend: &dyn Backend,
    session: &mut dyn Session,
    id: Uuid,
    name: &str,
    policy: Option<&Policy>,
    migrations: &[Migration],
) -> Result<Store, String> {
    let store = backend.create_tenant(id, name)?;
    let prepared = (|| {
        if let Some(policy) = policy {
            session.apply(&store, policy)?;
        }
        match migrate::migrate_store(session, &store, migrations, Plan::Together)? {
            Outcome::Applied(_) | Outcome::UpToDate => Ok(()),
            Outcome::Drift(problem) => Err(format!("drift: {problem}")),
            Outcome::Failed { error, .. } => Err(format!("a migration failed: {error}")),
        }
    })();
    // The session may hold the new store open: let it go before renaming
    // or dropping it.
    session.release();
    match prepared {
        Ok(()) => backend.finish_create(id, &store, true),
        Err(error) => {
            let _ = backend.finish_create(id, &store, false);
            Err(format!("error: tenant {id} not created: {error}"))
        }
    }
}
