//! `dnr apply`: the project's policy, applied to its database — once with
//! the extension reaching every tenant schema, or file by file and
//! database by database, in parallel.

use std::path::Path;

use serde_json::json;

use crate::backend;
use crate::progress::Progress;
use crate::project::Project;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// JSON lines on stdout (the default when stderr is not a terminal).
    #[arg(long)]
    json: bool,
}

pub fn run(config: Option<&Path>, args: Args) -> Result<(), String> {
    let project = Project::load(config)?;
    let policy = project.policy()?;
    let backend = backend::open(&project)?;
    let stores = backend.apply_stores()?;
    let progress = Progress::new(args.json, stores.len(), "apply");
    let results = backend::run_parallel(
        backend.as_ref(),
        &stores,
        |session, store| session.apply(store, &policy),
        |store, result| {
            let tenant = store.tenant.as_ref().map(|t| t.id.to_string());
            let event = match result {
                Ok(summary) => json!({"tenant": tenant, "status": "applied", "summary": summary}),
                Err(error) => json!({"tenant": tenant, "status": "failed", "error": error}),
            };
            progress.done(&event, result.is_err(), &store.label());
        },
    );
    progress.finish();
    let failed: Vec<String> = stores
        .iter()
        .zip(&results)
        .filter_map(|(store, result)| {
            result
                .as_ref()
                .err()
                .map(|error| format!("{}: {error}", store.label()))
        })
        .collect();
    if !progress.json() {
        let mut text = String::new();
        match (stores.len(), results.first()) {
            (1, Some(Ok(summary))) => text.push_str(&format!("{summary}\n")),
            _ => {
                for line in &failed {
                    text.push_str(&format!("  {line}\n"));
                }
                text.push_str(&format!(
                    "applied `{}` to {} of {} stores\n",
                    project.database.policies,
                    stores.len() - failed.len(),
                    stores.len()
                ));
            }
        }
        crate::verb_args::print(&text)?;
    }
    match failed.as_slice() {
        [] => Ok(()),
        [only] if stores.len() == 1 => Err(format!("error: apply failed: {only}")),
        _ => Err(format!(
            "error: apply failed in {} of {} stores",
            failed.len(),
            stores.len()
        )),
    }
}
