//! `dnr status [--json]`: per tenant store, the applied policy (current,
//! outdated or none), the migration version, what is pending, and drift.

use std::path::Path;

use serde_json::json;

use crate::backend::{self, AppliedPolicy, Session, Store};
use crate::migrate::drift;
use crate::migrations::Migration;
use crate::project::Project;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// One JSON object per store.
    #[arg(long)]
    json: bool,
}

struct Status {
    policy: &'static str,
    version: Option<u32>,
    pending: Vec<u32>,
    drift: Option<String>,
}

fn status(
    session: &mut dyn Session,
    store: &Store,
    migrations: &[Migration],
    current: Option<&str>,
) -> Result<Status, String> {
    let policy = match session.applied_policy(store)? {
        AppliedPolicy::None => "none",
        AppliedPolicy::Unknown => "unknown",
        // Compared as printed: SQLite records the printed form.
        AppliedPolicy::Source(applied) => {
            let applied = dnr_core::parse(&applied).map(|set| set.to_string()).ok();
            if applied.is_some() && applied.as_deref() == current {
                "current"
            } else {
                "outdated"
            }
        }
    };
    session.begin(store)?;
    let recorded = session.recorded();
    session.rollback()?;
    let recorded = recorded?;
    Ok(Status {
        policy,
        version: recorded.iter().map(|r| r.version).max(),
        pending: migrations
            .iter()
            .filter(|m| !recorded.iter().any(|r| r.version == m.version))
            .map(|m| m.version)
            .collect(),
        drift: drift(&recorded, migrations),
    })
}

pub fn run(config: Option<&Path>, args: Args) -> Result<(), String> {
    let project = Project::load(config)?;
    let migrations = project.migrations()?;
    let policy = project.policy_if_present()?;
    let current = policy.as_ref().map(|p| p.set.to_string());
    let backend = backend::open(&project)?;
    let stores = backend.stores()?;
    let results = backend::run_parallel(
        backend.as_ref(),
        &stores,
        |session, store| status(session, store, &migrations, current.as_deref()),
        |_, _| {},
    );
    let mut text = String::new();
    if !args.json {
        text.push_str("tenant\tpolicy\tversion\tpending\tdrift\n");
    }
    let mut troubled = 0;
    for (store, result) in stores.iter().zip(&results) {
        let tenant = store.tenant.as_ref().map(|t| t.id.to_string());
        match result {
            Ok(status) => {
                if status.drift.is_some() {
                    troubled += 1;
                }
                if args.json {
                    text.push_str(&format!(
                        "{}\n",
                        json!({
                            "tenant": tenant, "store": store.location, "policy": status.policy,
                            "version": status.version, "pending": status.pending, "drift": status.drift,
                        })
                    ));
                } else {
                    text.push_str(&format!(
                        "{}\t{}\t{}\t{}\t{}\n",
                        store.label(),
                        status.policy,
                        status.version.map_or("-".into(), |v| v.to_string()),
                        status.pending.len(),
                        status.drift.as_deref().unwrap_or("-"),
                    ));
                }
            }
            Err(error) => {
                troubled += 1;
                if args.json {
                    text.push_str(&format!(
                        "{}\n",
                        json!({"tenant": tenant, "store": store.location, "error": error})
                    ));
                } else {
                    text.push_str(&format!("{}\terror: {error}\n", store.label()));
                }
            }
        }
    }
    crate::verb_args::print(&text)?;
    if troubled > 0 {
        Err(format!(
            "error: {troubled} of {} stores have drift or errors",
            stores.len()
        ))
    } else {
        Ok(())
    }
}
