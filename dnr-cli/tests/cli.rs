//! The `dnr` command as a user runs it.
#![allow(clippy::panic, clippy::unwrap_used, clippy::expect_used)]

use std::process::{Command, Output};

fn dnr(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_dnr"))
        .args(args)
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
        .output()
        .unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn check_accepts_the_examples() {
    for file in [
        "examples/tasks.dnr",
        "examples/crm.dnr",
        "examples/hostile.dnr",
    ] {
        let out = dnr(&["check", file]);
        assert!(out.status.success(), "{file}: {}", text(&out.stderr));
        assert!(text(&out.stdout).contains(": ok ("));
    }
}

#[test]
fn check_of_a_broken_file_fails_with_a_caret() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("broken.dnr");
    std::fs::write(
        &path,
        "entity Task:\n  id: uuid pk\n  access:\n    read: idd = current_user\n",
    )
    .unwrap();
    let out = dnr(&["check", path.to_str().unwrap()]);
    assert!(!out.status.success());
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("error: unknown field `idd` in entity `Task`"),
        "{stderr}"
    );
    assert!(stderr.contains("broken.dnr:4:11"), "{stderr}");
    assert!(
        stderr.contains("4 |     read: idd = current_user\n  |           ^^^\n"),
        "{stderr}"
    );
}

#[test]
fn check_of_a_missing_file_fails() {
    let out = dnr(&["check", "does/not/exist.dnr"]);
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("cannot read `does/not/exist.dnr`"));
}

#[test]
fn compile_prints_sql_for_each_target() {
    let pg = dnr(&["compile", "examples/tasks.dnr", "--target", "postgres"]);
    assert!(pg.status.success());
    assert!(text(&pg.stdout).contains("CREATE POLICY dnr_fence ON \"tasks\" AS RESTRICTIVE"));
    let plain = dnr(&[
        "compile",
        "examples/tasks.dnr",
        "--target",
        "postgres-plain",
    ]);
    assert!(text(&plain.stdout).contains("current_setting('dnr.tenant_id', true)"));
    assert!(!text(&plain.stdout).contains("dnr.current_tenant()"));
    let sqlite = dnr(&["compile", "examples/tasks.dnr", "--target", "sqlite"]);
    assert!(text(&sqlite.stdout).contains("CREATE VIEW \"tasks\""));
    let bad = dnr(&["compile", "examples/tasks.dnr", "--target", "mysql"]);
    assert!(!bad.status.success());
    assert!(text(&bad.stderr).contains("unknown target `mysql`"));
}

#[test]
fn demo_shows_isolation_and_a_refused_cross_tenant_write() {
    let out = dnr(&["demo"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    let after = |marker: &str| {
        let start = stdout
            .find(marker)
            .unwrap_or_else(|| panic!("no `{marker}` in:\n{stdout}"));
        // The heading line and the indented titles under it.
        let mut lines = stdout[start..].lines();
        let heading = lines.next().unwrap_or_default().to_string();
        let titles: Vec<&str> = lines.take_while(|l| l.starts_with("    ")).collect();
        format!("{heading}\n{}", titles.join("\n"))
    };
    let alice = after("alice (acme) sees");
    assert!(alice.starts_with("alice (acme) sees 2 task(s)"), "{alice}");
    assert!(
        !alice.contains("bob's") && !alice.contains("globex"),
        "{alice}"
    );
    let carol = after("carol (globex) as admin sees");
    assert!(
        carol.starts_with("carol (globex) as admin sees 1 task(s)"),
        "{carol}"
    );
    assert!(!carol.contains("acme"), "{carol}");
    assert!(
        stdout.contains("nobody (no tenant in context) sees 0 task(s)"),
        "{stdout}"
    );
    assert!(
        stdout.contains("refused: dnr: create on `Task` refused by the tenant fence"),
        "{stdout}"
    );
    assert!(
        stdout.contains("update of acme's tasks: 0 row(s) changed"),
        "{stdout}"
    );
    // Writes go through the statement rewriter: an upsert stores the filled
    // tenant and cannot overwrite another tenant's row (with its id it
    // writes its own: keys are per tenant).
    assert!(
        stdout.contains(
            "stored: acme: alice's launch plan, v2 (tenant a0000000-0000-4000-8000-00000000000a"
        ),
        "{stdout}"
    );
    assert!(
        stdout.contains("upsert with acme's task id: stored as globex's own row"),
        "{stdout}"
    );
    let alice = after("alice (acme), afterwards, sees");
    assert!(alice.contains("v2") && !alice.contains("carol"), "{alice}");
}

#[test]
fn hostile_sources_are_errors_with_a_position_not_a_crash() {
    // `dnr check` aborted with a stack overflow at 1,000 nested parentheses.
    let dir = tempfile::tempdir().unwrap();
    let rule =
        |condition: String| format!("entity T:\n  n: int\n  access:\n    read: {condition}\n");
    let long = "a".repeat(63);
    let cases = [
        (
            rule(format!("{}true{}", "(".repeat(10_000), ")".repeat(10_000))),
            "error: condition nests deeper than 32 levels of parentheses and `not`",
            "deep.dnr:4:43",
        ),
        (
            rule(format!("{}true", "not ".repeat(50_000))),
            "error: condition nests deeper than 32 levels",
            "deep.dnr:4:139",
        ),
        (
            rule(vec!["n = 1"; 100_000].join(" or ")),
            "error: condition has more than 1000 terms",
            "deep.dnr:4:9011",
        ),
        (
            format!("entity A:\n  table: {long}_a\n  access:\n    read: true\nentity B:\n  table: {long}_b\n  access:\n    read: true\n"),
            "note: table `",
            "deep.dnr:6:10",
        ),
    ];
    for (source, error, position) in cases {
        let path = dir.path().join("deep.dnr");
        std::fs::write(&path, &source).unwrap();
        for args in [
            vec!["check", path.to_str().unwrap()],
            vec!["compile", path.to_str().unwrap(), "--target", "sqlite"],
        ] {
            let out = dnr(&args);
            assert_eq!(
                out.status.code(),
                Some(1),
                "{args:?}: {}",
                text(&out.stderr)
            );
            let stderr = text(&out.stderr);
            assert!(stderr.contains(error), "{stderr}");
            assert!(stderr.contains(position), "{stderr}");
        }
    }
}
