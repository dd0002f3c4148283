//! Differential conformance: from a seed, generate a policy, rows and a run
//! of reads and writes under varying contexts; every engine must produce
//! exactly the outcomes of the dnr-core evaluator. A disagreement is shrunk
//! to a small case, printed, and saved for replay.
//!
//! usage: dnr-conformance [--seeds N] [--start S] [--replay FILE]...
//! Engines are enabled by the environment (scripts/conformance-test.sh sets
//! it up): DNR_SQLITE_LIB (path of libdnr.so), DNR_PG_HOST + DNR_PG_PORT
//! (a cluster with databases dnr_conf_ext and dnr_conf_plain and the role
//! dnr_conf_app), DNR_NODE_RUNNER (path of node-runner.mjs).

mod case;
mod engines;
mod reference;

use std::path::PathBuf;
use std::process::ExitCode;

use case::Case;
use engines::Engine;

struct Args {
    seeds: u64,
    start: u64,
    replay: Vec<PathBuf>,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        seeds: 50,
        start: 1,
        replay: Vec::new(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut value = || it.next().ok_or(format!("{arg} needs a value"));
        match arg.as_str() {
            "--seeds" => args.seeds = value()?.parse().map_err(|e| format!("--seeds: {e}"))?,
            "--start" => args.start = value()?.parse().map_err(|e| format!("--start: {e}"))?,
            "--replay" => args.replay.push(PathBuf::from(value()?)),
            other => return Err(format!("unknown argument `{other}`")),
        }
    }
    Ok(args)
}

fn engines() -> Result<Vec<Box<dyn Engine>>, String> {
    let mut list: Vec<Box<dyn Engine>> = Vec::new();
    if let Ok(library) = std::env::var("DNR_SQLITE_LIB") {
        list.push(Box::new(engines::sqlite::Sqlite {
            library: library.into(),
        }));
        list.push(Box::new(engines::connection::DnrConnection));
    }
    if let (Ok(host), Ok(port)) = (std::env::var("DNR_PG_HOST"), std::env::var("DNR_PG_PORT")) {
        for (flavor, db) in [
            (engines::postgres::Flavor::Extension, "dnr_conf_ext"),
            (engines::postgres::Flavor::Plain, "dnr_conf_plain"),
        ] {
            let url = |user: &str| format!("host={host} port={port} user={user} dbname={db}");
            list.push(Box::new(engines::postgres::Postgres::connect(
                flavor,
                &url("postgres"),
                &url("dnr_conf_app"),
                "dnr_conf_app",
            )?));
        }
    }
    if let Ok(runner) = std::env::var("DNR_NODE_RUNNER") {
        list.push(Box::new(engines::node::Node::start(std::path::Path::new(
            &runner,
        ))?));
    }
    Ok(list)
}

/// The first step where `engine` disagrees with the reference, if any.
fn disagreement(engine: &mut dyn Engine, case: &Case) -> Result<Option<String>, String> {
    let expected = reference::run(case)?;
    let actual = match engine.run(case) {
        Ok(outcomes) => outcomes,
        Err(error) => return Ok(Some(format!("{} failed: {error}", engine.name()))),
    };
    for (index, (want, got)) in expected.iter().zip(&actual).enumerate() {
        if want != got {
            let step = &case.steps[index];
            return Ok(Some(format!(
                "step {index}: {}\n  context: {}\n  reference: {want:?}\n  {}: {got:?}",
                serde_json::to_string(&step.action).unwrap_or_default(),
                serde_json::to_string(&step.ctx).unwrap_or_default(),
                engine.name()
            )));
        }
    }
    if expected.len() != actual.len() {
        return Ok(Some(format!(
            "{} returned {} outcomes for {} steps",
            engine.name(),
            actual.len(),
            expected.len()
        )));
    }
    Ok(None)
}

/// Greedily removes steps, seed rows and rules while the disagreement stays.
fn shrink(engine: &mut dyn Engine, mut case: Case) -> Case {
    let still_fails = |engine: &mut dyn Engine, candidate: &Case| {
        matches!(disagreement(engine, candidate), Ok(Some(_)))
    };
    let mut progress = true;
    while progress {
        progress = false;
        for index in (0..case.steps.len()).rev() {
            let mut candidate = case.clone();
            candidate.steps.remove(index);
            if !candidate.steps.is_empty() && still_fails(engine, &candidate) {
                case = candidate;
                progress = true;
            }
        }
        for index in (0..case.rows.len()).rev() {
            let mut candidate = case.clone();
            candidate.rows.remove(index);
            if still_fails(engine, &candidate) {
                case = candidate;
                progress = true;
            }
        }
        for entity in 0..case.entities.len() {
            for index in (0..case.entities[entity].rules.len()).rev() {
                let mut candidate = case.clone();
                candidate.entities[entity].rules.remove(index);
                if still_fails(engine, &candidate) {
                    case = candidate;
                    progress = true;
                }
            }
        }
    }
    case
}

fn report(engine: &mut dyn Engine, case: Case) {
    let small = shrink(engine, case);
    let detail = disagreement(engine, &small)
        .ok()
        .flatten()
        .unwrap_or_default();
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("failures");
    let path = dir.join(format!("seed-{}-{}.json", small.seed, engine.name()));
    let saved = std::fs::create_dir_all(&dir).and_then(|()| {
        std::fs::write(
            &path,
            serde_json::to_string_pretty(&small).unwrap_or_default(),
        )
    });
    println!(
        "\nDISAGREEMENT ({}), shrunk to:\n--- policy ---\n{}",
        engine.name(),
        small.policy()
    );
    println!("--- seed rows ---");
    for row in &small.rows {
        println!(
            "{} tenant={:?} {}",
            row.table,
            row.tenant,
            serde_json::to_string(&row.values).unwrap_or_default()
        );
    }
    println!("--- first difference ---\n{detail}");
    match saved {
        Ok(()) => println!(
            "replay: bash scripts/conformance-test.sh 0 --replay {}",
            path.display()
        ),
        Err(e) => println!("(could not save the case: {e})"),
    }
}

fn regression_cases() -> Result<Vec<Case>, String> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("regressions");
    let mut cases = Vec::new();
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Ok(cases);
    };
    let mut paths: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    paths.sort();
    for path in paths
        .into_iter()
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
    {
        cases.push(read_case(&path)?);
    }
    Ok(cases)
}

fn read_case(path: &PathBuf) -> Result<Case, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))
}

fn run() -> Result<bool, String> {
    let args = parse_args()?;
    let mut engines = engines()?;
    if engines.is_empty() {
        return Err(
            "no engine configured (set DNR_SQLITE_LIB, DNR_PG_HOST/DNR_PG_PORT, DNR_NODE_RUNNER)"
                .into(),
        );
    }
    let names: Vec<&str> = engines.iter().map(|e| e.name()).collect();
    println!("engines: reference evaluator vs {}", names.join(", "));
    let mut cases: Vec<Case> = Vec::new();
    if args.replay.is_empty() {
        cases.extend(regression_cases()?);
        cases.extend((args.start..args.start + args.seeds).map(case::generate));
    } else {
        for path in &args.replay {
            let case = read_case(path)?;
            println!("--- policy ---\n{}", case.policy());
            println!("--- reference outcomes ---\n{:?}", reference::run(&case)?);
            cases.push(case);
        }
    }
    let (mut passed, mut failed) = (0usize, 0usize);
    let mut steps = 0usize;
    let mut kinds: std::collections::BTreeMap<&'static str, usize> = Default::default();
    for case in cases {
        steps += case.steps.len();
        for outcome in reference::run(&case)? {
            let kind = match outcome {
                case::Outcome::Rows(ids) if ids.is_empty() => "empty reads",
                case::Outcome::Rows(_) => "non-empty reads",
                case::Outcome::Inserted => "inserted",
                case::Outcome::Updated => "updated",
                case::Outcome::Deleted => "deleted",
                case::Outcome::Skipped => "skipped",
                case::Outcome::Refused => "refused",
                case::Outcome::Upserted => "upserted",
                case::Outcome::Returned(ids) if ids.is_empty() => "empty returns",
                case::Outcome::Returned(_) => "returns",
                case::Outcome::Migrated => "schema changes",
            };
            *kinds.entry(kind).or_default() += 1;
        }
        let mut agreed = true;
        for engine in engines.iter_mut() {
            if disagreement(engine.as_mut(), &case)?.is_some() {
                agreed = false;
                report(engine.as_mut(), case.clone());
            }
        }
        if agreed {
            passed += 1;
        } else {
            failed += 1;
        }
    }
    let outcomes_checked = steps * engines.len();
    let mix: Vec<String> = kinds.iter().map(|(k, n)| format!("{n} {k}")).collect();
    println!("reference outcomes: {}", mix.join(", "));
    println!(
        "{outcomes_checked} outcomes compared ({steps} steps x {} engines)",
        engines.len()
    );
    println!("conformance: {passed} passed, {failed} failed");
    Ok(failed == 0)
}

fn main() -> ExitCode {
    match run() {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}
