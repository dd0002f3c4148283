//! `dnr tenants move ID --to OTHER.toml`: one tenant from this project to
//! another (another mode, engine or server), through a tenant file.
//!
//! The steps, each idempotent and recorded in a journal
//! (`.dnr/moves/<id>.json`) once done, so that running the command again
//! after a crash (`kill -9` anywhere) goes on where it stopped:
//!
//! 1. hold the tenant here (its context is refused, so nothing writes it);
//! 2. export it to `.dnr/moves/<id>.dnrt` (written whole or not at all);
//! 3. hold it there, create it there if it is not, import the file;
//! 4. verify: the copy holds every table's rows, with the file's checksum
//!    where the engines store the values alike;
//! 5. release it there: from now on it is served there;
//! 6. erase it here and release the hold; remove the file and journal.
//!
//! At every moment at most one place serves the tenant: here until step 5,
//! there from step 5 on (here it stays held until erased). Other tenants
//! are served throughout.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::backend::{self, Backend};
use crate::project::Project;

/// The steps, in order; the journal names the last one done.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Step {
    Started,
    Held,
    Exported,
    Imported,
    Verified,
    Switched,
}

#[derive(Debug, Serialize, Deserialize)]
struct Journal {
    tenant: Uuid,
    /// The target's dnr.toml, as given the first time.
    to: PathBuf,
    step: Step,
}

fn journal_path(dir: &Path, id: Uuid) -> PathBuf {
    dir.join(format!("{id}.json"))
}

fn save(dir: &Path, journal: &Journal) -> Result<(), String> {
    let path = journal_path(dir, journal.tenant);
    let partial = path.with_extension("json.partial");
    let text = serde_json::to_string(journal).map_err(|e| e.to_string())?;
    std::fs::write(&partial, text)
        .and_then(|()| std::fs::File::open(&partial)?.sync_all())
        .and_then(|()| std::fs::rename(&partial, &path))
        .map_err(|e| format!("error: cannot write `{}`: {e}", path.display()))
}

/// Moves tenant `id` to the project of `to`, or goes on with a move of it
/// that stopped; `say` hears of each step.
pub fn run(
    project: &Project,
    source: &dyn Backend,
    id: Uuid,
    to: &Path,
    say: &(dyn Fn(&str) + Sync),
) -> Result<(), String> {
    let dir = project.root.join(".dnr/moves");
    std::fs::create_dir_all(&dir)
        .map_err(|e| format!("error: cannot create `{}`: {e}", dir.display()))?;
    let to =
        &std::fs::canonicalize(to).map_err(|e| format!("error: --to `{}`: {e}", to.display()))?;
    let target_project = Project::load(Some(to))?;
    if target_project.config_file == project.config_file {
        return Err("error: --to names this project's own dnr.toml".into());
    }
    let target = backend::open(&target_project)?;
    let file = dir.join(format!("{id}.dnrt"));
    let mut journal = match std::fs::read_to_string(journal_path(&dir, id)) {
        Ok(text) => {
            let journal: Journal = serde_json::from_str(&text).map_err(|e| {
                format!("error: the move journal of tenant {id} does not read: {e}")
            })?;
            if &journal.to != to {
                return Err(format!(
                    "error: tenant {id} is being moved to `{}`: finish that move first (`dnr tenants move {id} --to {}`)",
                    journal.to.display(),
                    journal.to.display()
                ));
            }
            say(&format!(
                "resuming the move of tenant {id} after step `{:?}`",
                journal.step
            ));
            journal
        }
        Err(_) => {
            if !source.tenants()?.iter().any(|t| t.id == id) {
                return Err(format!("error: unknown tenant {id}"));
            }
            if target.tenants()?.iter().any(|t| t.id == id) {
                return Err(format!(
                    "error: tenant {id} exists in `{}` already: drop it there, or import with --replace",
                    to.display()
                ));
            }
            // A file an earlier, finished move left behind is stale.
            let _ = std::fs::remove_file(&file);
            let journal = Journal {
                tenant: id,
                to: to.to_path_buf(),
                step: Step::Started,
            };
            save(&dir, &journal)?;
            journal
        }
    };
    let done = |journal: &mut Journal, step: Step, what: &str| -> Result<(), String> {
        journal.step = step;
        save(&dir, journal)?;
        say(what);
        Ok(())
    };
    // How long this run kept the tenant from being served (reported at the
    // switch; a resumed run counts from its own start).
    let started = std::time::Instant::now();
    if journal.step < Step::Held {
        source.hold_tenant(id)?;
        done(
            &mut journal,
            Step::Held,
            "held: the tenant's context is refused here",
        )?;
    }
    if journal.step < Step::Exported {
        if !file.exists() {
            let rows = source.export_tenant(id)?;
            crate::transfer::write_file(
                &file,
                id,
                &rows,
                crate::transfer::engine_name(project),
                project.mode().as_str(),
            )?;
        }
        done(
            &mut journal,
            Step::Exported,
            &format!("exported to {}", file.display()),
        )?;
    }
    // Read (and checked) again on every run that still needs it.
    let file_rows = if journal.step < Step::Verified {
        Some(crate::transfer::read_file(&file)?)
    } else {
        None
    };
    if let (true, Some((manifest, rows))) = (journal.step < Step::Imported, &file_rows) {
        let exists = target.tenants()?.iter().any(|t| t.id == id);
        if !exists {
            // A database of its own is held once it exists; a shared
            // registry holds the id before the tenant is there.
            if !matches!(target_project.mode(), dnr_core::ast::TenantMode::Database) {
                target.hold_tenant(id)?;
            }
            crate::tenants::create(&target_project, target.as_ref(), &[id], "", false)?;
        }
        target.hold_tenant(id)?;
        target.import_tenant(id, rows, &manifest.checksum)?;
        done(
            &mut journal,
            Step::Imported,
            &format!("imported into {}", to.display()),
        )?;
    }
    if let (true, Some((manifest, rows))) = (journal.step < Step::Verified, &file_rows) {
        let copy = target.export_tenant(id)?;
        for entry in &manifest.tables {
            let found = copy
                .tables
                .iter()
                .find(|t| t.table.eq_ignore_ascii_case(&entry.table))
                .map_or(0, |t| t.rows.len() as u64);
            if found != entry.rows {
                return Err(format!(
                    "error: the copy of tenant {id} holds {found} rows of `{}`, the file {}: the move stops here (the tenant stays held in both places; run the move again)",
                    entry.table, entry.rows
                ));
            }
        }
        let same = crate::transfer::copied_checksum(rows, &copy).hex() == manifest.checksum;
        done(
            &mut journal,
            Step::Verified,
            &format!(
                "verified: every table's row count{}",
                if same {
                    " and the checksum"
                } else {
                    " (values as the target stores them)"
                }
            ),
        )?;
    }
    if journal.step < Step::Switched {
        target.release_tenant(id)?;
        done(
            &mut journal,
            Step::Switched,
            &format!(
                "switched: tenant {id} is served by {} (not served for {:.2} s)",
                to.display(),
                started.elapsed().as_secs_f64()
            ),
        )?;
    }
    if source.tenants()?.iter().any(|t| t.id == id) {
        source.erase_tenant(id)?;
    }
    source.release_tenant(id)?;
    // The journal first: a file left by a kill here is removed by the next
    // move of this tenant, never read.
    std::fs::remove_file(journal_path(&dir, id))
        .map_err(|e| format!("error: cannot remove the move journal: {e}"))?;
    let _ = std::fs::remove_file(&file);
    say(&format!(
        "moved tenant {id} to {}: erased here",
        to.display()
    ));
    Ok(())
}

/// Prints a step (what `dnr tenants move` tells).
pub fn print(text: &str) {
    let _ = crate::verb_args::print(&format!("{text}\n"));
}
