//! Differential conformance: from a seed, generate a policy, rows and a run
//! of reads and writes under varying contexts; every engine must produce
//! exactly the outcomes of the dnr-core evaluator. A disagreement is shrunk
//! to a small case, printed, and saved for replay.
//!
//! usage: dnr-conformance [--seeds N] [--exists-seeds N] [--start S]
//!                        [--engine NAME]... [--replay FILE]... [--show]
//!                        [--shrink-limit N] [--without-checks]
//! `--seeds` cases of one or two unrelated entities, `--exists-seeds`
//! relationship cases (two or three entities, `exists` rules), both from
//! seed S on; `--engine` keeps only the named engines; `--show` prints the
//! generated cases' policies and reference outcomes and runs nothing.
//! The first `--shrink-limit` disagreements of each engine (default 5) are
//! shrunk, later ones reported as found. `--without-checks` leaves the
//! host-check steps out of the cases (to look past a broken check).
//! Engines are enabled by the environment (scripts/conformance-test.sh sets
//! it up): DNR_SQLITE_LIB (path of libdnr.so), DNR_PG_HOST + DNR_PG_PORT
//! (a cluster with databases dnr_conf_ext and dnr_conf_plain and the role
//! dnr_conf_app), DNR_NODE_RUNNER (path of node-runner.mjs), DNR_CITUS_HOST +
//! DNR_CITUS_PORT (a Citus coordinator with the database dnr_conf_citus owned
//! by the role dnr_conf_owner, and the role dnr_conf_app; relationship cases
//! are not applicable to it).
//! DNR_CONFORMANCE_PLANT plants a difference to show that the harness
//! catches one: `null-forbid` (postgres-plain) or `related-fence`
//! (sqlite-ext: the related entity's fence dropped from `exists`).

mod case;
mod engines;
mod reference;
mod spell;

use std::path::PathBuf;
use std::process::ExitCode;

use case::Case;
use engines::Engine;

struct Args {
    seeds: u64,
    exists_seeds: u64,
    start: u64,
    engines: Vec<String>,
    replay: Vec<PathBuf>,
    show: bool,
    shrink_limit: usize,
    without_checks: bool,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        seeds: 50,
        exists_seeds: 0,
        start: 1,
        engines: Vec::new(),
        replay: Vec::new(),
        show: false,
        shrink_limit: 5,
        without_checks: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut value = || it.next().ok_or(format!("{arg} needs a value"));
        match arg.as_str() {
            "--seeds" => args.seeds = value()?.parse().map_err(|e| format!("--seeds: {e}"))?,
            "--exists-seeds" => {
                args.exists_seeds = value()?
                    .parse()
                    .map_err(|e| format!("--exists-seeds: {e}"))?;
            }
            "--start" => args.start = value()?.parse().map_err(|e| format!("--start: {e}"))?,
            "--engine" => args.engines.push(value()?),
            "--show" => args.show = true,
            "--shrink-limit" => {
                args.shrink_limit = value()?
                    .parse()
                    .map_err(|e| format!("--shrink-limit: {e}"))?;
            }
            "--without-checks" => args.without_checks = true,
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
        for locked in [false, true] {
            list.push(Box::new(engines::connection::DnrConnection { locked }));
        }
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
    if let (Ok(host), Ok(port)) = (
        std::env::var("DNR_CITUS_HOST"),
        std::env::var("DNR_CITUS_PORT"),
    ) {
        let url = |user: &str| format!("host={host} port={port} user={user} dbname=dnr_conf_citus");
        list.push(Box::new(engines::citus::Citus::connect(
            &url("dnr_conf_owner"),
            &url("dnr_conf_app"),
            "dnr_conf_app",
        )?));
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
        if want != got && *got != case::Outcome::NotApplicable {
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
        // An entity, with its rows, the steps on it and the rules that
        // name it.
        for entity in (0..case.entities.len()).rev() {
            if case.entities.len() == 1 {
                break;
            }
            let candidate = without_entity(&case, entity);
            if !candidate.steps.is_empty() && still_fails(engine, &candidate) {
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

/// `case` without its entity `index`: its rows, the steps on its table and
/// every rule that names it in `exists` go too.
fn without_entity(case: &Case, index: usize) -> Case {
    let mut smaller = case.clone();
    let gone = smaller.entities.remove(index);
    let named = format!("exists {} where", gone.name);
    smaller.rows.retain(|r| r.table != gone.table);
    smaller.steps.retain(|s| s.action.table() != gone.table);
    for entity in &mut smaller.entities {
        entity.rules.retain(|(_, _, rule)| !rule.contains(&named));
    }
    smaller
}

fn report(engine: &mut dyn Engine, case: Case, shrink_it: bool) {
    let small = if shrink_it {
        shrink(engine, case)
    } else {
        case
    };
    let rules: usize = small.entities.iter().map(|e| e.rules.len()).sum();
    let detail = disagreement(engine, &small)
        .ok()
        .flatten()
        .unwrap_or_default();
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("failures");
    let path = dir.join(format!(
        "{}seed-{}-{}.json",
        if small.exists { "exists-" } else { "" },
        small.seed,
        engine.name()
    ));
    let saved = std::fs::create_dir_all(&dir).and_then(|()| {
        std::fs::write(
            &path,
            serde_json::to_string_pretty(&small).unwrap_or_default(),
        )
    });
    println!(
        "\nDISAGREEMENT ({}), {}:\n--- policy ---\n{}",
        engine.name(),
        if shrink_it {
            "shrunk to"
        } else {
            "not shrunk (--shrink-limit reached)"
        },
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
    println!(
        "{}: {} entities, {} seed rows, {} rules, {} steps",
        if shrink_it { "shrunk" } else { "size" },
        small.entities.len(),
        small.rows.len(),
        rules,
        small.steps.len()
    );
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
    if args.show {
        let (mut steps, mut decided) = (0, 0);
        for seed in args.start..args.start + args.exists_seeds {
            let case = case::generate_exists(seed);
            show(&case)?;
            steps += case.steps.len();
            decided += decided_by_related(&case)?;
        }
        for seed in args.start..args.start + args.seeds {
            show(&case::generate(seed))?;
        }
        println!("{decided} of {steps} relationship steps decided by related rows");
        return Ok(true);
    }
    let mut engines = engines()?;
    if !args.engines.is_empty() {
        engines.retain(|e| args.engines.iter().any(|name| name == e.name()));
    }
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
        cases.extend((args.start..args.start + args.exists_seeds).map(case::generate_exists));
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
    let (mut exists_cases, mut related_decided) = (0usize, 0usize);
    // Disagreements per engine so far, and cases an engine cannot run.
    let mut shrunk = vec![0usize; engines.len()];
    let mut not_applicable = vec![0usize; engines.len()];
    let mut compared = 0usize;
    let total = cases.len();
    for (number, mut case) in cases.into_iter().enumerate() {
        if number > 0 && number % 100 == 0 {
            eprintln!("progress: {number} of {total} cases, {failed} disagreed");
        }
        if args.without_checks {
            case.steps
                .retain(|s| !matches!(s.action, case::Action::Check { .. }));
        }
        steps += case.steps.len();
        let expected = reference::run(&case)?;
        if case.exists {
            exists_cases += 1;
            related_decided += decided_by_related(&case)?;
        }
        for outcome in expected {
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
                case::Outcome::Checked(true) => "checks allowed",
                case::Outcome::Checked(false) => "checks denied",
                case::Outcome::NotApplicable => "not applicable",
            };
            *kinds.entry(kind).or_default() += 1;
        }
        let mut agreed = true;
        for (index, engine) in engines.iter_mut().enumerate() {
            if !engine.applies(&case) {
                not_applicable[index] += 1;
                continue;
            }
            compared += case.steps.len();
            if disagreement(engine.as_mut(), &case)?.is_some() {
                agreed = false;
                shrunk[index] += 1;
                report(
                    engine.as_mut(),
                    case.clone(),
                    shrunk[index] <= args.shrink_limit,
                );
            }
        }
        if agreed {
            passed += 1;
        } else {
            failed += 1;
        }
    }
    let mix: Vec<String> = kinds.iter().map(|(k, n)| format!("{n} {k}")).collect();
    println!("reference outcomes: {}", mix.join(", "));
    if exists_cases > 0 {
        println!(
            "relationship cases: {exists_cases}, {related_decided} of their steps decided by related rows (another outcome if no related row existed)"
        );
    }
    println!(
        "{compared} outcomes compared ({steps} steps, {} engines)",
        engines.len()
    );
    for (engine, n) in engines.iter().zip(&not_applicable) {
        if *n > 0 {
            println!(
                "not applicable: {n} of {total} cases on {} (what docs/citus.md lists as impossible or different there)",
                engine.name()
            );
        }
    }
    let by_engine: Vec<String> = engines
        .iter()
        .zip(&shrunk)
        .filter(|(_, n)| **n > 0)
        .map(|(e, n)| format!("{} in {n}", e.name()))
        .collect();
    if !by_engine.is_empty() {
        println!("disagreeing cases by engine: {}", by_engine.join(", "));
    }
    println!("conformance: {passed} passed, {failed} failed");
    Ok(failed == 0)
}

/// The steps of `case` whose outcome would differ if no related row
/// existed.
fn decided_by_related(case: &Case) -> Result<usize, String> {
    let with = reference::run(case)?;
    let without = reference::run_without_related(case)?;
    Ok(with.iter().zip(&without).filter(|(a, b)| a != b).count())
}

/// A generated case as `--show` prints it.
fn show(case: &Case) -> Result<(), String> {
    println!(
        "=== {}seed {} ===\n{}",
        if case.exists { "exists " } else { "" },
        case.seed,
        case.policy()
    );
    for row in &case.rows {
        println!(
            "row {} tenant={:?} {}",
            row.table,
            row.tenant,
            serde_json::to_string(&row.values).unwrap_or_default()
        );
    }
    let without = reference::run_without_related(case)?;
    for ((step, outcome), alone) in case.steps.iter().zip(reference::run(case)?).zip(without) {
        println!(
            "step{} {} {} -> {outcome:?}",
            if alone == outcome { "" } else { "*" },
            serde_json::to_string(&step.ctx).unwrap_or_default(),
            serde_json::to_string(&step.action).unwrap_or_default()
        );
    }
    Ok(())
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

#[cfg(test)]
mod tests {
    use super::*;
    use case::{Action, Outcome};

    /// A planted difference that needs no database: an engine that never
    /// sees a related row, so every `exists` is FALSE (as if an engine's
    /// `exists` looked through an empty table).
    struct Unrelated;

    impl Engine for Unrelated {
        fn name(&self) -> &'static str {
            "unrelated"
        }

        fn run(&mut self, case: &Case) -> Result<Vec<Outcome>, String> {
            reference::run_without_related(case)
        }
    }

    #[test]
    fn relationship_cases_pass_the_checker_and_use_exists_everywhere() {
        let (mut nested, mut negated, mut checks, mut decided) = (0, 0, 0, 0);
        let mut rules_with_exists = std::collections::BTreeSet::new();
        for seed in 0..300 {
            let case = case::generate_exists(seed);
            assert!(case.exists);
            assert!((2..=3).contains(&case.entities.len()), "seed {seed}");
            // The policy parses and passes the checker (no cycles), and
            // the reference runs it.
            let outcomes = reference::run(&case);
            assert!(outcomes.is_ok(), "seed {seed}: {outcomes:?}");
            assert_eq!(outcomes.unwrap_or_default().len(), case.steps.len());
            for entity in &case.entities {
                assert!(
                    case.rows.iter().any(|r| r.table == entity.table),
                    "seed {seed}"
                );
                for (block, key, rule) in &entity.rules {
                    if rule.contains("exists ") {
                        rules_with_exists.insert((block.clone(), key.clone()));
                    }
                    nested += usize::from(rule.matches("exists ").count() > 1);
                    negated += usize::from(rule.contains("not exists "));
                }
            }
            checks += case
                .steps
                .iter()
                .filter(|s| matches!(s.action, Action::Check { .. }))
                .count();
            decided += decided_by_related(&case).unwrap_or_default();
        }
        for key in ["create", "read", "update", "delete", "write", "list"] {
            assert!(
                rules_with_exists.contains(&("access".to_string(), key.to_string())),
                "no `{key}` rule with exists"
            );
        }
        for key in ["create", "read", "update", "delete"] {
            assert!(
                rules_with_exists.contains(&("forbid".to_string(), key.to_string())),
                "no forbid `{key}` rule with exists"
            );
        }
        assert!(
            nested > 50 && negated > 100,
            "{nested} nested, {negated} negated"
        );
        assert!(checks > 300, "{checks} checks");
        assert!(
            decided > 300,
            "only {decided} steps decided by related rows"
        );
    }

    #[test]
    fn every_table_is_read_and_written() {
        for seed in 0..50 {
            let case = case::generate_exists(seed);
            for entity in &case.entities {
                let on = |s: &&case::Step| s.action.table() == entity.table;
                assert!(case.steps.iter().filter(on).count() > 0, "seed {seed}");
            }
        }
        let mut written = std::collections::BTreeSet::new();
        for seed in 0..50 {
            let case = case::generate_exists(seed);
            for step in &case.steps {
                if !matches!(step.action, Action::Read { .. } | Action::Check { .. }) {
                    written.insert(step.action.table().to_string());
                }
            }
        }
        assert_eq!(written.len(), 3, "{written:?}");
    }

    #[test]
    fn the_classic_generator_is_unchanged() {
        // The seeds recorded in RECORDED.md still name the same cases.
        let case = case::generate(1);
        assert!(!case.exists);
        let text = serde_json::to_string(&case).unwrap_or_default();
        assert!(!text.contains("\"exists\""));
        assert!(!case.policy().contains("exists"));
    }

    #[test]
    fn a_planted_difference_is_caught_and_shrunk() {
        let mut engine = Unrelated;
        let caught: Vec<Case> = (1..=30)
            .map(case::generate_exists)
            .filter(|case| matches!(disagreement(&mut engine, case), Ok(Some(_))))
            .collect();
        assert!(caught.len() >= 10, "only {} of 30 caught", caught.len());
        for case in caught.into_iter().take(4) {
            let seed = case.seed;
            let before = (case.steps.len(), case.rows.len());
            let small = shrink(&mut engine, case);
            assert!(
                matches!(disagreement(&mut engine, &small), Ok(Some(_))),
                "seed {seed}: the shrunk case agrees"
            );
            let rules: usize = small.entities.iter().map(|e| e.rules.len()).sum();
            assert_eq!(small.steps.len(), 1, "seed {seed}");
            assert!(
                small.rows.len() <= 3,
                "seed {seed}: {} rows",
                small.rows.len()
            );
            assert!(rules <= 4, "seed {seed}: {rules} rules");
            assert!(small.rows.len() < before.1 && small.steps.len() < before.0);
            assert!(small.policy().contains("exists "), "seed {seed}");
        }
    }
}
