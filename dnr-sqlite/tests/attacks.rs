//! Tenant B attacks tenant A through the statement rewriter, on locked
//! connections of two hosts: DNR's own [`dnr_sqlite::Connection`], and
//! rusqlite loading the built extension (`.load`, `dnr_lock()`, then
//! `dnr_exec(sql)` and plain statements). The npm package runs the same
//! family in `tests/wasm/attacks.test.mjs`.
//!
//! Every attack runs in two worlds that differ only in tenant A's rows (a
//! title is the guess in one, not in the other). What tenant B gets back —
//! rows, counts or the error — must be the same in both (no answer depends
//! on A's rows), must not show A's data, and A's rows must be unchanged.

mod common;

use std::path::{Path, PathBuf};

use common::{context, open_with_extension, root, BOB, GUESS, TENANT_A, TENANT_B};
use dnr_sqlite::{Connection, Value};

type Result<T = ()> = std::result::Result<T, Box<dyn std::error::Error>>;

/// A world file in `dir`: see [`common::world`].
fn world(dir: &Path, name: &str, a_title: &str) -> Result<PathBuf> {
    let path = dir.join(format!("{name}.db"));
    common::world(&path, a_title)?;
    Ok(path)
}

/// Tenant A's rows as stored, read without DNR.
fn a_rows(path: &Path) -> Result<Vec<Vec<rusqlite::types::Value>>> {
    let conn = rusqlite::Connection::open(path)?;
    let mut stmt = conn.prepare("SELECT * FROM _dnr_tasks WHERE tenant_id = ?1 ORDER BY id")?;
    let width = stmt.column_count();
    let rows = stmt.query_map([TENANT_A], |row| {
        (0..width)
            .map(|i| row.get(i))
            .collect::<std::result::Result<Vec<_>, _>>()
    })?;
    Ok(rows.collect::<std::result::Result<_, _>>()?)
}

/// Storage named in every spelling SQLite takes.
const STORAGE: &[&str] = &[
    "_dnr_tasks",
    "\"_DNR_TASKS\"",
    "[_dnr_tasks]",
    "`_dnr_tasks`",
    "'_dnr_tasks'",
    "main._dnr_tasks",
    "main.\"_dnr_tasks\"",
];

/// SQLite's parameter forms, with what DNR's old tokenizer read otherwise.
const PARAMETERS: &[&str] = &[
    "?",
    "?7",
    ":a",
    "@a",
    "$a",
    "$a::b(c)",
    "$a(x' ')",
    "$a(')')",
    ":a(--)",
    "@a(/*)",
    "$a(\")\")",
    "$a(' || (SELECT 1) || ')",
];

/// The attack family: parameters hiding a RETURNING that reads storage,
/// unbalanced parentheses as an oracle, comments and quotes of each kind,
/// non-ASCII whitespace, NUL, several statements, storage names in every
/// position and spelling.
fn attacks() -> Vec<String> {
    let mut out = vec!["CREATE TEMP VIEW peek AS SELECT title FROM _dnr_tasks".to_string()];
    for read in [
        "(SELECT group_concat(title) FROM peek)",
        "(SELECT count(*) FROM peek WHERE title = 'zq-guess')",
    ] {
        out.push(format!(
            "UPDATE tasks SET title = {read} WHERE id = 10 RETURNING title"
        ));
        out.push(format!(
            "INSERT INTO tasks (id, title) VALUES (81, {read}) RETURNING title"
        ));
        out.push(format!(
            "INSERT INTO tasks (id, title) SELECT 82, {read} RETURNING title"
        ));
        out.push(format!("DELETE FROM tasks WHERE id = 3 RETURNING {read}"));
    }
    // An error raised only on a row holding the guess (row-dependent, so
    // that SQLite cannot evaluate it once up front).
    let oracle =
        format!("abs(CASE WHEN title = '{GUESS}' THEN -9223372036854775807 - 1 ELSE 1 END)");
    // Balanced: the statement's own condition must never be evaluated on
    // a row the context may not touch.
    for sql in [
        "UPDATE tasks SET title = title WHERE {o}",
        "DELETE FROM tasks WHERE {o}",
        "DELETE FROM tasks WHERE id > 0 AND {o} RETURNING id",
        "UPDATE tasks SET title = title WHERE id IN (SELECT id FROM tasks) AND {o}",
        "INSERT INTO tasks (id, title) VALUES (1, 'x') ON CONFLICT (id) DO UPDATE SET title = 'y' WHERE {o}",
        "INSERT INTO tasks (id, title) VALUES (1, 'x') ON CONFLICT (id) DO UPDATE SET title = {o}",
    ] {
        out.push(sql.replace("{o}", &oracle));
    }
    out.push(format!(
        "UPDATE tasks SET title = title WHERE 0) OR ({oracle}"
    ));
    out.push(format!("DELETE FROM tasks WHERE 0) OR ({oracle}"));
    out.push(format!(
        "UPDATE tasks SET title = (title WHERE 0) OR ({oracle})"
    ));
    out.push(format!(
        "UPDATE tasks SET title = title WHERE (0)) OR (({oracle})"
    ));
    out.push(format!(
        "INSERT INTO tasks (id, title) VALUES (50, 'x')) OR (({oracle})"
    ));
    out.push(format!(
        "UPDATE tasks SET title = 'x' WHERE id = 10 RETURNING 1) OR ({oracle}"
    ));
    for parameter in PARAMETERS {
        for storage in STORAGE {
            let read = format!("(SELECT group_concat(title) FROM {storage})");
            out.push(format!(
                "UPDATE tasks SET title = {parameter} WHERE id = 10 RETURNING {read}"
            ));
            out.push(format!(
                "DELETE FROM tasks WHERE id = {parameter} RETURNING {read}"
            ));
            out.push(format!(
                "INSERT INTO tasks (id, title) VALUES (60, {parameter}) RETURNING {read}"
            ));
        }
    }
    for storage in STORAGE {
        let guessed = format!("(SELECT title FROM {storage} WHERE title = '{GUESS}')");
        out.push(format!("UPDATE tasks SET title = {guessed} WHERE id = 10"));
        out.push(format!(
            "UPDATE tasks SET title = 'x' WHERE EXISTS {guessed}"
        ));
        out.push(format!("DELETE FROM tasks WHERE EXISTS {guessed}"));
        out.push(format!(
            "INSERT INTO tasks (id, title) VALUES (61, {guessed})"
        ));
        out.push(format!(
            "INSERT INTO tasks (id, title) SELECT 62, title FROM {storage}"
        ));
        out.push(format!("UPDATE {storage} SET title = 'x'"));
        out.push(format!(
            "INSERT INTO {storage} (tenant_id, id, title) VALUES ('{TENANT_A}', 90, 'x')"
        ));
        out.push(format!(
            "UPDATE tasks AS {storage} SET title = 'x' WHERE id = 10 RETURNING title"
        ));
        out.push(format!("WITH {storage} AS (SELECT 1 AS id) UPDATE tasks SET title = 'x' WHERE id IN (SELECT id FROM {storage})"));
        out.push(format!("UPDATE tasks SET title = (SELECT {storage}.title FROM {storage} LIMIT 1) WHERE id = 10"));
        out.push(format!("INSERT INTO tasks (id, title) VALUES (91, 'x') ON CONFLICT (id) DO UPDATE SET title = (SELECT max(title) FROM {storage})"));
        out.push(format!("DELETE FROM {storage}"));
        out.push(format!("WITH x AS (SELECT * FROM {storage}) UPDATE tasks SET title = (SELECT max(title) FROM x)"));
        out.push(format!(
            "UPDATE tasks SET title = x.title FROM {storage} AS x WHERE x.title = '{GUESS}'"
        ));
    }
    for (open, close) in [
        ("/*", "*/"),
        ("--", "\n"),
        ("\"", "\""),
        ("[", "]"),
        ("`", "`"),
        ("'", "'"),
    ] {
        out.push(format!(
            "UPDATE tasks SET title = 'x' {open} ) OR (title = '{GUESS}' {close} WHERE id = 10 RETURNING title"
        ));
        out.push(format!(
            "DELETE FROM tasks WHERE id = 3 {open} ; DELETE FROM tasks {close} RETURNING id"
        ));
    }
    out.push("UPDATE tasks SET title = x'00' WHERE id = 10 RETURNING title".into());
    out.push("UPDATE tasks SET title = 'x' WHERE id = 10 /* unterminated".into());
    for space in [
        "\u{a0}", "\u{2028}", "\u{3000}", "\u{b}", "\u{85}", "\u{feff}",
    ] {
        out.push(format!("UPDATE tasks SET title = 'x'{space}WHERE id = 999"));
        out.push(format!("DELETE FROM tasks{space}WHERE id = 999"));
    }
    out.push("UPDATE tasks SET title = 'x' \0 WHERE id = 999".into());
    out.push("DELETE FROM tasks \0 WHERE id = 999".into());
    out.push("SELECT 1; DELETE FROM tasks WHERE id = 3".into());
    out.push("DELETE FROM tasks WHERE id = 999; DELETE FROM tasks".into());
    // A's key: refused the same whether or not A's title is the guess.
    out.push("INSERT INTO tasks (id, title) VALUES (1, 'x') ON CONFLICT (id) DO UPDATE SET title = excluded.title WHERE tasks.title = 'zq-guess'".into());
    out.push("INSERT OR REPLACE INTO tasks (id, title) VALUES (1, 'x')".into());
    out.push("INSERT INTO tasks (id, title, code) VALUES (70, 'x', 'c1')".into());
    out.push("UPDATE tasks SET id = 1 WHERE id = 10".into());
    out
}

/// What tenant B gets back from one attack on a locked DNR connection.
fn through_connection(db: &Connection, sql: &str) -> String {
    let params: Vec<Value> = Vec::new();
    format!("{:?}", db.query(sql, &params).map(|rows| rows.rows))
}

/// What tenant B gets back through `.load`: `dnr_exec(sql)`, and the
/// statement run as written.
fn through_extension(conn: &rusqlite::Connection, sql: &str) -> String {
    let exec: rusqlite::Result<Option<String>> =
        conn.query_row("SELECT CAST(dnr_exec(?1) AS TEXT)", [sql], |row| row.get(0));
    let direct = conn.prepare(sql).and_then(|mut stmt| {
        let width = stmt.column_count();
        let rows = stmt.query_map([], |row| {
            (0..width)
                .map(|i| row.get::<_, rusqlite::types::Value>(i))
                .collect::<std::result::Result<Vec<_>, _>>()
        })?;
        rows.collect::<std::result::Result<Vec<_>, _>>()
    });
    format!("{exec:?} / {direct:?}")
}

fn extension(path: &Path) -> Result<rusqlite::Connection> {
    let conn = open_with_extension(&path.to_string_lossy())?;
    conn.query_row(
        "SELECT dnr_set_context(?1, ?2, '', 0)",
        [TENANT_B, BOB],
        |_| Ok(()),
    )?;
    conn.query_row("SELECT dnr_lock()", [], |_| Ok(()))?;
    Ok(conn)
}

fn scratch(name: &str) -> Result<PathBuf> {
    let dir = root().join("target/attack-tests").join(name);
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

/// Runs every attack in both worlds through `run`, checking the laws.
fn check_host(
    name: &str,
    mut open: impl FnMut(&Path) -> Result<Box<dyn FnMut(&str) -> String>>,
) -> Result {
    let dir = scratch(name)?;
    let guessed = world(&dir, "guessed", GUESS)?;
    let other = world(&dir, "other", "a1-secret")?;
    let before = (a_rows(&guessed)?, a_rows(&other)?);
    let mut in_guessed = open(&guessed)?;
    let mut in_other = open(&other)?;
    let attacks = attacks();
    let mut refused = 0;
    for sql in &attacks {
        let (x, y) = (in_guessed(sql), in_other(sql));
        assert_eq!(x, y, "the answer depends on tenant A's rows: {sql:?}");
        assert!(
            !x.contains("secret"),
            "tenant A's data shows: {sql:?} => {x}"
        );
        assert_eq!(
            (a_rows(&guessed)?, a_rows(&other)?),
            before,
            "tenant A's rows changed: {sql:?}"
        );
        refused += usize::from(x.contains("Err"));
    }
    // The family is mostly refused; what runs, runs as the policy says.
    assert!(
        refused > attacks.len() / 2,
        "{refused} of {} refused",
        attacks.len()
    );
    Ok(())
}

#[test]
fn a_locked_connection_holds_against_the_family() -> Result {
    check_host("connection", |path| {
        let db = Connection::open(path)?;
        db.set_context(context(TENANT_B, BOB)?)?;
        db.dnr().lock()?;
        Ok(Box::new(move |sql: &str| through_connection(&db, sql)))
    })
}

#[test]
fn a_locked_extension_holds_against_the_family() -> Result {
    check_host("extension", |path| {
        let conn = extension(path)?;
        Ok(Box::new(move |sql: &str| through_extension(&conn, sql)))
    })
}

#[test]
fn the_reported_attacks_are_refused_or_harmless() -> Result {
    let dir = scratch("reported")?;
    let path = world(&dir, "world", GUESS)?;
    let db = Connection::open(&path)?;
    db.set_context(context(TENANT_B, BOB)?)?;
    db.dnr().lock()?;
    // TCL-style parameter hiding a RETURNING that reads storage.
    let hidden = db.query(
        "UPDATE tasks SET title = $a(x' ') WHERE id = 10 RETURNING (SELECT group_concat(title) FROM _dnr_tasks)",
        &[],
    );
    assert!(hidden.is_err(), "{hidden:?}");
    // NUL: refused, nothing updated.
    let nul = db.execute("UPDATE tasks SET title = 'x' \0 WHERE id = 999", &[]);
    assert!(nul.is_err(), "{nul:?}");
    let titles = db.query("SELECT title FROM tasks ORDER BY id", &[])?;
    assert_eq!(
        titles.rows,
        vec![
            vec![Value::Text("b3".into())],
            vec![Value::Text("b10".into())]
        ]
    );
    // A view of the attacker's own over storage, read inside a rewritten
    // statement (which may reach its target's storage): refused.
    let view = db.execute("CREATE TEMP VIEW peek AS SELECT title FROM _dnr_tasks", &[]);
    if view.is_ok() {
        for sql in [
            "UPDATE tasks SET title = (SELECT group_concat(title) FROM peek) WHERE id = 10 RETURNING title",
            "INSERT INTO tasks (id, title) SELECT 80, group_concat(title) FROM peek RETURNING title",
            "INSERT INTO tasks (id, title) VALUES (81, (SELECT group_concat(title) FROM peek)) RETURNING title",
            "DELETE FROM tasks WHERE id = 3 RETURNING (SELECT group_concat(title) FROM peek)",
        ] {
            let peeked = db.query(sql, &[]);
            assert!(peeked.is_err(), "{sql} => {peeked:?}");
        }
    }
    // Several statements: every one runs (or none is planned).
    assert_eq!(
        db.execute("SELECT 1; DELETE FROM tasks WHERE id = 3", &[])?,
        1
    );
    assert!(db.query("SELECT 1; SELECT 2", &[]).is_err());
    assert!(db
        .execute(
            "DELETE FROM tasks WHERE id = ?; SELECT 1",
            &[Value::Integer(10)]
        )
        .is_err());
    Ok(())
}

/// sqlparser prints `''` and `\'` inside a string as they are; the rewriter
/// spells such strings so that SQLite reads exactly the value written, and
/// a quote after a backslash cannot end the string early.
#[test]
fn strings_keep_every_quote() -> Result {
    let dir = scratch("quotes")?;
    let path = world(&dir, "world", GUESS)?;
    let db = Connection::open(&path)?;
    db.set_context(context(TENANT_B, BOB)?)?;
    db.dnr().lock()?;
    for (written, stored) in [
        ("'a''''b'", "a''b"),
        ("'x\\'''", "x\\'"),
        (
            "'x\\'' || (SELECT group_concat(title) FROM tasks) || '''",
            "x\\' || (SELECT group_concat(title) FROM tasks) || '",
        ),
        ("''''''", "''"),
        ("'it''s'", "it's"),
    ] {
        let rows = db.query(
            &format!("UPDATE tasks SET title = {written} WHERE id = 10 RETURNING title"),
            &[],
        )?;
        assert_eq!(
            rows.rows,
            vec![vec![Value::Text(stored.into())]],
            "{written}"
        );
        let inserted = db.query(
            &format!("INSERT INTO tasks (id, owner_id, title) VALUES (95, dnr_user(), {written}) ON CONFLICT (id) DO UPDATE SET title = excluded.title RETURNING title"),
            &[],
        )?;
        assert_eq!(
            inserted.rows,
            vec![vec![Value::Text(stored.into())]],
            "{written}"
        );
    }
    assert!(db.query("UPDATE tasks SET \"ti\"\"tle\" = 1", &[]).is_err());
    Ok(())
}
