//! `dnr migrate [--dry-run] [--tenant ID] [--json]`: the versioned
//! migration files, applied to every tenant store in parallel.
//!
//! Per store: the recorded history is compared with the files first; a
//! store whose recorded checksum differs from its file (or that recorded a
//! version no file has) is refused whole (drift). Each pending migration
//! then runs in its own transaction, under the store's lock, with its
//! history row — after re-reading the history in that transaction, so a
//! concurrent run that got there first is skipped, never repeated. A
//! failure stops that store (the failed migration leaves nothing) and the
//! others go on. `--dry-run` runs a store's pending migrations in one
//! transaction and rolls it back.

use std::path::Path;
use std::time::Instant;

use serde_json::json;

use crate::backend::{self, Backend, Recorded, Session, Store};
use crate::migrations::Migration;
use crate::progress::Progress;
use crate::project::Project;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Run each store's pending migrations and roll them back.
    #[arg(long)]
    dry_run: bool,
    /// Only this tenant's store.
    #[arg(long, value_name = "ID")]
    tenant: Option<String>,
    /// JSON lines on stdout (the default when stderr is not a terminal).
    #[arg(long)]
    json: bool,
}

/// What one store's run did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// These versions were applied (or, in a dry run, would be).
    Applied(Vec<u32>),
    UpToDate,
    /// The recorded history disagrees with the files: nothing ran.
    Drift(String),
    /// `applied` went in; `version` failed with `error`.
    Failed {
        applied: Vec<u32>,
        version: u32,
        error: String,
    },
}

impl Outcome {
    fn failed(&self) -> bool {
        matches!(self, Outcome::Drift(_) | Outcome::Failed { .. })
    }
}

/// Compares a store's history with the files: the first disagreement.
pub fn drift(recorded: &[Recorded], migrations: &[Migration]) -> Option<String> {
    for entry in recorded {
        match migrations.iter().find(|m| m.version == entry.version) {
            None => {
                return Some(format!(
                    "version {} ({}) is recorded but no migration file has it",
                    entry.version, entry.name
                ))
            }
            Some(file) if file.checksum != entry.checksum => {
                return Some(format!(
                    "version {} ({}) was recorded with checksum {} but `{}` now has {}",
                    entry.version,
                    entry.name,
                    short(&entry.checksum),
                    file.file.display(),
                    short(&file.checksum)
                ))
            }
            Some(_) => {}
        }
    }
    None
}

fn short(checksum: &str) -> &str {
    checksum.get(..12).unwrap_or(checksum)
}

/// How a store's pending migrations run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Plan {
    /// Each in its own transaction with its history row (a failure keeps
    /// the ones before it).
    Each,
    /// All in one transaction (a new tenant's store: all or nothing).
    Together,
    /// All in one transaction, rolled back.
    DryRun,
}

/// Brings one store up to date (see the module's comment).
pub fn migrate_store(
    session: &mut dyn Session,
    store: &Store,
    migrations: &[Migration],
    plan: Plan,
) -> Result<Outcome, String> {
    session.begin(store)?;
    let recorded = match session.recorded() {
        Ok(recorded) => recorded,
        Err(error) => {
            let _ = session.rollback();
            return Err(error);
        }
    };
    if let Some(problem) = drift(&recorded, migrations) {
        session.rollback()?;
        return Ok(Outcome::Drift(problem));
    }
    let pending: Vec<&Migration> = migrations
        .iter()
        .filter(|m| !recorded.iter().any(|r| r.version == m.version))
        .collect();
    let Some(first) = pending.first() else {
        session.rollback()?;
        return Ok(Outcome::UpToDate);
    };
    if plan == Plan::Together {
        let started = Instant::now();
        let ran = session.run_all(&pending).and_then(|()| {
            // One duration for the batch, shared out.
            let each = started.elapsed() / u32::try_from(pending.len()).unwrap_or(1);
            pending
                .iter()
                .try_for_each(|migration| session.record(migration, each))
        });
        return match ran.and_then(|()| session.commit()) {
            Ok(()) => Ok(Outcome::Applied(
                pending.iter().map(|m| m.version).collect(),
            )),
            Err(error) => {
                let _ = session.rollback();
                Ok(Outcome::Failed {
                    applied: Vec::new(),
                    version: first.version,
                    error,
                })
            }
        };
    }
    let mut applied = Vec::new();
    let mut in_transaction = true;
    for migration in pending {
        if !in_transaction {
            session.begin(store)?;
            // A concurrent run may have applied it meanwhile.
            let recorded = match session.recorded() {
                Ok(recorded) => recorded,
                Err(error) => {
                    let _ = session.rollback();
                    return Err(error);
                }
            };
            if recorded.iter().any(|r| r.version == migration.version) {
                session.rollback()?;
                continue;
            }
        }
        let started = Instant::now();
        let outcome = session
            .run(migration)
            .and_then(|()| session.record(migration, started.elapsed()));
        if let Err(error) = outcome {
            let _ = session.rollback();
            return Ok(Outcome::Failed {
                applied,
                version: migration.version,
                error,
            });
        }
        applied.push(migration.version);
        if plan == Plan::Each {
            session.commit()?;
            in_transaction = false;
        }
    }
    if in_transaction {
        session.rollback()?;
    }
    Ok(if applied.is_empty() {
        Outcome::UpToDate
    } else {
        Outcome::Applied(applied)
    })
}

/// The JSON event of one store's outcome.
pub fn event(store: &Store, result: &Result<Outcome, String>, dry_run: bool) -> serde_json::Value {
    let tenant = store.tenant.as_ref().map(|t| t.id.to_string());
    match result {
        Ok(Outcome::Applied(versions)) => json!({
            "tenant": tenant, "store": store.location,
            "status": if dry_run { "would_apply" } else { "applied" }, "versions": versions,
        }),
        Ok(Outcome::UpToDate) => {
            json!({"tenant": tenant, "store": store.location, "status": "up_to_date"})
        }
        Ok(Outcome::Drift(problem)) => json!({
            "tenant": tenant, "store": store.location, "status": "drift", "error": problem,
        }),
        Ok(Outcome::Failed {
            applied,
            version,
            error,
        }) => json!({
            "tenant": tenant, "store": store.location, "status": "failed",
            "versions": applied, "failed_version": version, "error": error,
        }),
        Err(error) => {
            json!({"tenant": tenant, "store": store.location, "status": "failed", "error": error})
        }
    }
}

pub fn run(config: Option<&Path>, args: Args) -> Result<(), String> {
    let project = Project::load(config)?;
    let migrations = project.migrations()?;
    let backend = backend::open(&project)?;
    let mut stores = backend.stores()?;
    if let Some(wanted) = &args.tenant {
        let id = crate::tenants::parse_id(wanted)?;
        stores.retain(|store| store.tenant.as_ref().is_some_and(|t| t.id == id));
        if stores.is_empty() {
            return Err(format!("error: unknown tenant {id}"));
        }
    }
    let outcomes = run_stores(
        backend.as_ref(),
        &stores,
        &migrations,
        args.dry_run,
        args.json,
    );
    report(
        &stores,
        &outcomes,
        args.dry_run,
        args.json,
        migrations.len(),
    )
}

/// Migrates `stores` in parallel with progress; the outcomes in order.
pub fn run_stores(
    backend: &dyn Backend,
    stores: &[Store],
    migrations: &[Migration],
    dry_run: bool,
    json: bool,
) -> Vec<Result<Outcome, String>> {
    let progress = Progress::new(json, stores.len(), "migrate");
    let done = |store: &Store, result: &Result<Outcome, String>| {
        let failed = result.as_ref().map_or(true, Outcome::failed);
        progress.done(&event(store, result, dry_run), failed, &store.label());
    };
    // Stores whose history (read in one go) shows nothing to do are done;
    // the others are migrated, each under its lock.
    let mut outcomes: Vec<Option<Result<Outcome, String>>> = vec![None; stores.len()];
    if let Some(Ok(histories)) = backend.histories(stores) {
        for ((store, history), outcome) in stores.iter().zip(&histories).zip(&mut outcomes) {
            let pending = migrations
                .iter()
                .any(|m| !history.iter().any(|r| r.version == m.version));
            if !pending && drift(history, migrations).is_none() {
                let result = Ok(Outcome::UpToDate);
                done(store, &result);
                *outcome = Some(result);
            }
        }
    }
    let (indexes, todo): (Vec<usize>, Vec<Store>) = stores
        .iter()
        .enumerate()
        .filter(|(index, _)| outcomes.get(*index).is_some_and(Option::is_none))
        .map(|(index, store)| (index, store.clone()))
        .unzip();
    let migrated = backend::run_parallel(
        backend,
        &todo,
        |session, store| {
            let plan = if dry_run { Plan::DryRun } else { Plan::Each };
            migrate_store(session, store, migrations, plan)
        },
        done,
    );
    progress.finish();
    for (index, result) in indexes.into_iter().zip(migrated) {
        if let Some(slot) = outcomes.get_mut(index) {
            *slot = Some(result);
        }
    }
    outcomes
        .into_iter()
        .map(|outcome| outcome.unwrap_or_else(|| Err("not run".into())))
        .collect()
}

/// The summary (a JSON line, or a per-tenant report of what did not go
/// well and the totals); an error when any store failed.
fn report(
    stores: &[Store],
    outcomes: &[Result<Outcome, String>],
    dry_run: bool,
    json: bool,
    files: usize,
) -> Result<(), String> {
    let mut applied = 0usize;
    let mut up_to_date = 0usize;
    let mut failed = Vec::new();
    for (store, outcome) in stores.iter().zip(outcomes) {
        match outcome {
            Ok(Outcome::Applied(_)) => applied += 1,
            Ok(Outcome::UpToDate) => up_to_date += 1,
            Ok(Outcome::Drift(problem)) => {
                failed.push(format!("{}: drift: {problem}", store.label()))
            }
            Ok(Outcome::Failed { version, error, .. }) => failed.push(format!(
                "{}: migration {version} failed: {error}",
                store.label()
            )),
            Err(error) => failed.push(format!("{}: {error}", store.label())),
        }
    }
    let progress_json = json || !std::io::IsTerminal::is_terminal(&std::io::stderr());
    if progress_json {
        let summary = json!({
            "summary": true, "stores": stores.len(), "migrations": files,
            "applied": applied, "up_to_date": up_to_date, "failed": failed.len(), "dry_run": dry_run,
        });
        crate::verb_args::print(&format!("{summary}\n"))?;
    } else {
        let verb = if dry_run { "would migrate" } else { "migrated" };
        let mut text = String::new();
        for line in &failed {
            text.push_str(&format!("  {line}\n"));
        }
        text.push_str(&format!(
            "{verb} {applied} of {} stores ({up_to_date} up to date, {} failed; {files} migration files)\n",
            stores.len(),
            failed.len()
        ));
        crate::verb_args::print(&text)?;
    }
    if failed.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "error: {} of {} stores failed{}",
            failed.len(),
            stores.len(),
            if progress_json {
                String::new()
            } else {
                " (listed above)".into()
            }
        ))
    }
}
