//! Hostile policy sources: nothing a source says can exhaust a host's stack,
//! and names that PostgreSQL would truncate or fold together are refused.
//!
//! Every stage runs on a thread with 1 MiB of stack, what a WASM instance
//! has, so a recursion that the limits do not bound fails here as a stack
//! overflow (which aborts the test binary) rather than in a user's database.
//! The property tests at the end are the fuzzer: token soup built to be
//! deep and wide. `just fuzz` runs them much longer.
#![allow(clippy::panic, clippy::unwrap_used, clippy::expect_used)]

use dnr_core::compile::{compile, Target};
use dnr_core::limits::{MAX_CONDITION_TERMS, MAX_NESTING, MAX_SOURCE_BYTES};
use dnr_core::{Operation, PolicyErrors, PolicySet, Row, TenantContext, Value};
use proptest::prelude::*;

const SMALL_STACK: usize = 1 << 20;

/// Runs `work` on a thread with a small stack.
fn on_small_stack<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> T {
    std::thread::Builder::new()
        .stack_size(SMALL_STACK)
        .spawn(work)
        .unwrap()
        .join()
        .unwrap()
}

fn with_read_rule(condition: &str) -> String {
    format!("entity T:\n  id: uuid pk\n  n: int\n  access:\n    read: {condition}\n")
}

/// Every stage an accepted source goes through in some host.
fn exercise(set: &PolicySet) {
    for target in [Target::Postgres, Target::PostgresPlain, Target::Sqlite] {
        compile(set, target).unwrap();
    }
    let printed = set.to_string();
    assert_eq!(&dnr_core::parse(&printed).unwrap(), set, "{printed}");
    let ctx =
        TenantContext::parse(Some("aaaaaaaa-0000-4000-8000-000000000000"), None, &[]).unwrap();
    for entity in &set.entities {
        let row = Row::new().with("n", Value::Int(1));
        for op in Operation::ALL {
            set.decide(&entity.name, op, &ctx, &row).unwrap();
        }
    }
}

fn single_error(source: String) -> (PolicyErrors, String) {
    let errors = on_small_stack(move || dnr_core::parse(&source).unwrap_err());
    assert_eq!(errors.diagnostics.len(), 1, "{errors}");
    let message = errors.diagnostics[0].to_string();
    (errors, message)
}

#[test]
fn ten_thousand_nested_parentheses_are_refused_at_the_limit() {
    let source = with_read_rule(&format!("{}true{}", "(".repeat(10_000), ")".repeat(10_000)));
    let (_, message) = single_error(source);
    // `read: ` ends at column 10; the 33rd parenthesis is past the limit.
    let column = 11 + MAX_NESTING;
    assert_eq!(
        message,
        format!("5:{column}: condition nests deeper than 32 levels of parentheses and `not`")
    );
}

#[test]
fn fifty_thousand_nots_are_refused_at_the_limit() {
    let source = with_read_rule(&format!("{}true", "not ".repeat(50_000)));
    let (_, message) = single_error(source);
    let column = 11 + 4 * MAX_NESTING;
    assert!(
        message.starts_with(&format!("5:{column}: condition nests deeper")),
        "{message}"
    );
}

#[test]
fn a_hundred_thousand_term_or_chain_is_refused_at_the_term_limit() {
    let terms = vec!["n = 1"; 100_000].join(" or ");
    let (_, message) = single_error(with_read_rule(&terms));
    // The 1,001st term starts after 1,000 terms of `n = 1 or `.
    let column = 11 + 9 * MAX_CONDITION_TERMS;
    assert_eq!(
        message,
        format!("5:{column}: condition has more than 1000 terms; split the rule or use an `in [...]` list")
    );
}

#[test]
fn in_list_values_count_as_terms() {
    let values: Vec<String> = (0..=MAX_CONDITION_TERMS).map(|n| n.to_string()).collect();
    let (_, message) = single_error(with_read_rule(&format!("n in [{}]", values.join(", "))));
    assert!(message.contains("more than 1000 terms"), "{message}");
    let values: Vec<String> = (0..MAX_CONDITION_TERMS).map(|n| n.to_string()).collect();
    let set = dnr_core::parse(&with_read_rule(&format!("n in [{}]", values.join(", ")))).unwrap();
    on_small_stack(move || exercise(&set));
}

#[test]
fn the_deepest_and_widest_accepted_condition_runs_through_every_stage_on_a_small_stack() {
    // 32 levels (each `not (` opens two), each level a chain, and as many
    // terms as the limit allows in one long chain at the bottom.
    let levels = MAX_NESTING / 2;
    let mut condition = vec!["n = 1"; MAX_CONDITION_TERMS - levels].join(" or ");
    for level in 0..levels {
        condition = if level % 2 == 0 {
            format!("not ({condition}) and n = 2")
        } else {
            format!("not ({condition}) or n = 3")
        };
    }
    // One more level is one too many.
    let (_, message) = single_error(with_read_rule(&format!("({condition})")));
    assert!(message.contains("nests deeper than 32 levels"), "{message}");
    let source = with_read_rule(&condition);
    let set = on_small_stack(move || dnr_core::parse(&source));
    let set = match set {
        Ok(set) => set,
        Err(errors) => panic!("{errors}"),
    };
    on_small_stack(move || exercise(&set));
}

#[test]
fn many_rules_and_entities_compile_on_a_small_stack() {
    let mut source = String::new();
    for entity in 0..200 {
        source.push_str(&format!("entity E{entity}:\n  n: int\n  access:\n"));
        for rule in 0..50 {
            source.push_str(&format!("    read: n = {rule}\n"));
        }
    }
    let set = dnr_core::parse(&source).unwrap();
    on_small_stack(move || exercise(&set));
}

#[test]
fn a_megabyte_literal_works_and_a_larger_source_is_refused() {
    let literal = "x".repeat(1_000_000);
    let source = format!("entity T:\n  s: text\n  access:\n    read: s = '{literal}'\n");
    let set = dnr_core::parse(&source).unwrap();
    let sql = compile(&set, Target::Sqlite).unwrap();
    assert!(sql.contains(&literal));

    let source = format!("{source}# {}\n", "y".repeat(MAX_SOURCE_BYTES));
    let (_, message) = single_error(source);
    assert!(message.starts_with("1:1: policy source is "), "{message}");
    assert!(
        message.ends_with("the limit is 1048576 bytes (1 MiB)"),
        "{message}"
    );
}

#[test]
fn table_names_postgres_would_truncate_to_one_are_refused_with_both_spans() {
    let prefix = "a".repeat(63);
    let source = format!(
        "entity Public:\n  table: {prefix}_public\n  access:\n    read: true\n\nentity Secret:\n  table: {prefix}_secret\n  access:\n    read: false\n"
    );
    let errors = dnr_core::parse(&source).unwrap_err();
    let messages: Vec<String> = errors.diagnostics.iter().map(|d| d.to_string()).collect();
    assert_eq!(messages.len(), 3, "{messages:?}");
    assert_eq!(
        messages[0],
        format!("2:10: table name `{prefix}_public` is 70 bytes; PostgreSQL keeps only the first 63, so names are limited to 63 bytes")
    );
    assert!(messages[1].starts_with("7:10: table name"), "{messages:?}");
    assert_eq!(
        messages[2],
        format!("7:10: table `{prefix}_secret` of entity `Secret` is the same SQL name as table `{prefix}_public` of entity `Public` (names are matched without regard to case and PostgreSQL truncates them to 63 bytes) (table `{prefix}_public` of entity `Public` is here at 2:10)")
    );
    // Rendered, the note points at the first name with its own caret.
    let rendered = errors.render(&source, "p.dnr");
    assert!(rendered.contains("note: table `"), "{rendered}");
    assert!(rendered.contains(" --> p.dnr:2:10\n"), "{rendered}");
    assert!(rendered.contains(" --> p.dnr:7:10\n"), "{rendered}");
}

#[test]
fn names_that_differ_only_in_case_are_refused() {
    let source = "entity A:\n  table: Tasks\n  access:\n    read: true\n\nentity B:\n  table: tasks\n  Title: text\n  title: text\n  access:\n    read: true\n";
    let errors = dnr_core::parse(source).unwrap_err();
    let messages: Vec<String> = errors.diagnostics.iter().map(|d| d.to_string()).collect();
    assert_eq!(messages.len(), 2, "{messages:?}");
    assert!(
        messages[0].starts_with(
            "7:10: table `tasks` of entity `B` is the same SQL name as table `Tasks` of entity `A`"
        ),
        "{messages:?}"
    );
    assert!(
        messages[0].ends_with("(table `Tasks` of entity `A` is here at 2:10)"),
        "{messages:?}"
    );
    assert!(
        messages[1]
            .starts_with("9:3: field `title` of entity `B` is the same SQL name as field `Title`"),
        "{messages:?}"
    );
}

#[test]
fn long_field_and_tenant_column_names_are_refused() {
    let long = "c".repeat(64);
    let other = "d".repeat(64);
    let source = format!(
        "tenancy:\n  column: {long}\n\nentity T:\n  {other}x: int\n  access:\n    read: true\n"
    );
    let errors = dnr_core::parse(&source).unwrap_err();
    let messages: Vec<String> = errors.diagnostics.iter().map(|d| d.to_string()).collect();
    assert_eq!(messages.len(), 2, "{messages:?}");
    assert!(
        messages[0].starts_with(&format!("2:11: tenant column name `{long}` is 64 bytes")),
        "{messages:?}"
    );
    assert!(
        messages[1].starts_with(&format!("5:3: field name `{other}x` is 65 bytes")),
        "{messages:?}"
    );
    // 63 bytes is fine.
    let fine = "c".repeat(63);
    dnr_core::parse(&format!(
        "entity T:\n  table: {fine}\n  {fine}: int\n  access:\n    read: {fine} = 1\n"
    ))
    .unwrap();
}

/// Tokens a condition can be made of, weighted towards nesting.
fn condition_token() -> impl Strategy<Value = &'static str> {
    prop_oneof![
        4 => Just("("),
        4 => Just(")"),
        4 => Just("not"),
        3 => Just("and"),
        3 => Just("or"),
        3 => Just("true"),
        2 => Just("n = 1"),
        1 => Just("role(admin)"),
        1 => Just("n in [1, 2"),
        1 => Just("]"),
        1 => Just("n is null"),
        1 => Just("current_user"),
        1 => Just("'x'"),
        1 => Just("="),
        1 => Just(","),
    ]
}

/// Runs of one token, so that sources get deep or wide quickly.
fn hostile_condition() -> impl Strategy<Value = String> {
    prop::collection::vec((condition_token(), 1usize..200), 1..40).prop_map(|runs| {
        runs.into_iter()
            .map(|(token, count)| vec![token; count].join(" "))
            .collect::<Vec<_>>()
            .join(" ")
    })
}

/// Well-formed conditions nested close to the limit and chained wide.
fn deep_condition() -> impl Strategy<Value = String> {
    let leaf = prop_oneof![
        Just("n = 1".to_string()),
        Just("true".to_string()),
        Just("role(admin)".to_string()),
        Just("n in [1, 2, 3]".to_string())
    ];
    leaf.prop_recursive(40, 400, 8, |inner| {
        prop_oneof![
            inner.clone().prop_map(|c| format!("not {c}")),
            inner.clone().prop_map(|c| format!("({c})")),
            prop::collection::vec(inner.clone(), 2..8).prop_map(|cs| cs.join(" and ")),
            prop::collection::vec(inner, 2..8).prop_map(|cs| cs.join(" or ")),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig { failure_persistence: None, ..ProptestConfig::default() })]

    /// Garbage never panics or overflows; whatever parses goes through
    /// every stage.
    #[test]
    fn token_soup_is_refused_or_runs_everywhere(condition in hostile_condition()) {
        let source = with_read_rule(&condition);
        on_small_stack(move || {
            if let Ok(set) = dnr_core::parse(&source) {
                exercise(&set);
            }
        });
    }

    /// Deep well-formed conditions parse up to the limit, are refused past
    /// it with a position, and never overflow.
    #[test]
    fn deep_conditions_are_accepted_or_refused_with_a_position(condition in deep_condition()) {
        let source = with_read_rule(&condition);
        let outcome = on_small_stack(move || match dnr_core::parse(&source) {
            Ok(set) => {
                exercise(&set);
                Ok(())
            }
            Err(errors) => Err(errors),
        });
        if let Err(errors) = outcome {
            for diagnostic in &errors.diagnostics {
                prop_assert_eq!(diagnostic.span.line, 5);
                prop_assert!(
                    diagnostic.message.contains("nests deeper") || diagnostic.message.contains("more than 1000 terms"),
                    "{}", diagnostic.message
                );
            }
        }
    }
}

#[test]
fn a_long_line_is_clipped_around_the_error_when_rendered() {
    let source = with_read_rule(&vec!["n = 1"; 2_000].join(" or "));
    let errors = dnr_core::parse(&source).unwrap_err();
    let rendered = errors.render(&source, "p.dnr");
    assert!(
        rendered.len() < 1_000,
        "{} bytes: {rendered}",
        rendered.len()
    );
    // The caret still points at the 1,001st term.
    let lines: Vec<&str> = rendered.lines().collect();
    let (text, caret) = (lines[3], lines[4]);
    let at = caret.find('^').unwrap();
    assert!(text[at..].starts_with("n = 1"), "{text}\n{caret}");
    assert!(
        text.starts_with("5 | ...") && text.ends_with("..."),
        "{text}"
    );
}
