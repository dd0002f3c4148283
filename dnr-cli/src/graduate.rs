//! `dnr graduate --to OTHER.toml [--json]`: every tenant of this project
//! moved to another (`dnr tenants move`, one tenant at a time per worker,
//! as many workers as the backend runs sessions), with the progress of
//! `migrate`. A tenant whose move fails stays here, held until its move is
//! run again; the others go on.

use std::path::{Path, PathBuf};

use serde_json::json;

use crate::backend::{self, Store};
use crate::progress::Progress;
use crate::project::Project;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The other project's dnr.toml.
    #[arg(long, value_name = "OTHER.toml")]
    to: PathBuf,
    /// JSON lines on stdout.
    #[arg(long)]
    json: bool,
}

pub fn run(config: Option<&Path>, args: Args) -> Result<(), String> {
    let project = Project::load(config)?;
    let source = backend::open(&project)?;
    let tenants = source.tenants()?;
    let stores: Vec<Store> = tenants
        .iter()
        .map(|tenant| Store {
            location: tenant.id.to_string(),
            tenant: Some(tenant.clone()),
        })
        .collect();
    let progress = Progress::new(args.json, stores.len(), "graduate");
    let quiet = |_: &str| {};
    let results = backend::run_parallel(
        source.as_ref(),
        &stores,
        |_session, store| {
            let tenant = store.tenant.as_ref().ok_or("no tenant")?;
            crate::tenant_move::run(&project, source.as_ref(), tenant.id, &args.to, &quiet)
        },
        |store, result| {
            let event = match result {
                Ok(()) => json!({"tenant": store.location, "status": "moved"}),
                Err(error) => json!({"tenant": store.location, "status": "failed", "error": error}),
            };
            progress.done(&event, result.is_err(), &store.location);
        },
    );
    progress.finish();
    let failed = results.iter().filter(|r| r.is_err()).count();
    progress.line(&json!({"summary": true, "tenants": stores.len(), "moved": stores.len() - failed, "failed": failed}));
    if failed > 0 {
        return Err(format!(
            "error: {failed} of {} tenants were not moved (each stays here, held: run `dnr graduate` again to go on)",
            stores.len()
        ));
    }
    Ok(())
}
