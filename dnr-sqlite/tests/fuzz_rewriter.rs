//! Differential fuzzing of the statement rewriter against SQLite: writes of
//! the shapes the conformance harness generates, mutated by inserting the
//! lexical forms SQLite and a SQL parser may read differently at random
//! token boundaries. Each runs on a locked connection in two worlds that
//! differ only in tenant A's rows; SQLite reads every rewritten statement
//! back before it runs (`Dnr::plan`), and the answers tenant B gets must be
//! the same in both worlds and show nothing of A's. No input may panic.
//!
//! The test command runs 1,500 cases; `just fuzz-rewriter N` runs N
//! (`PROPTEST_CASES`).

mod common;

use common::{context, root, BOB, GUESS, TENANT_B};
use dnr_sqlite::{Connection, Value};
use proptest::prelude::*;

/// A locked connection, as tenant B, to a world where tenant A's first
/// title is `title`.
fn world(name: &str, title: &str) -> Result<Connection, String> {
    let dir = root().join("target/fuzz-rewriter");
    let _ = std::fs::create_dir_all(&dir);
    let path = dir.join(format!("{name}-{}.db", std::process::id()));
    let open = || -> Result<Connection, dnr_sqlite::Error> {
        let db = common::world(&path, title)?;
        db.set_context(context(TENANT_B, BOB)?)?;
        db.dnr().lock()?;
        Ok(db)
    };
    open().map_err(|e| format!("cannot build the fuzz world: {e}"))
}

/// Writes as the conformance harness makes them (the verbs, conflict modes,
/// upserts and RETURNING of `tests/conformance`), over the fixture's table.
fn base() -> impl Strategy<Value = String> {
    let value = prop::sample::select(vec![
        "?",
        "?2",
        ":v",
        "@v",
        "$v",
        "1",
        "-2",
        "'x'",
        "NULL",
        "lower(?)",
        "'zq-guess'",
        "(SELECT title FROM tasks WHERE id = 10)",
        "(SELECT max(title) FROM {s} WHERE title = 'zq-guess')",
    ]);
    let storage = prop::sample::select(vec![
        "_dnr_tasks",
        "\"_DNR_TASKS\"",
        "[_dnr_tasks]",
        "`_dnr_tasks`",
        "'_dnr_tasks'",
        "main._dnr_tasks",
        "tasks",
    ]);
    let tail = prop::sample::select(vec![
        "",
        " RETURNING (SELECT group_concat(title) FROM {s})",
        " RETURNING (SELECT count(*) FROM {s} WHERE title = 'zq-guess')",
    ]);
    let condition = prop::sample::select(vec![
        "id = ?",
        "id = 10",
        "title = 'zq-guess'",
        "EXISTS (SELECT 1 FROM {s} WHERE title = 'zq-guess')",
        "abs(CASE WHEN title = 'zq-guess' THEN -9223372036854775807 - 1 ELSE 1 END)",
        "id IN (SELECT id FROM tasks)",
        "owner_id = dnr_user()",
        "1",
    ]);
    let shape = prop::sample::select(vec![
        "INSERT INTO tasks (id, title) VALUES (20, {v})",
        "INSERT OR REPLACE INTO tasks (id, title) VALUES (1, {v})",
        "INSERT OR IGNORE INTO tasks (id, title) VALUES (1, {v})",
        "INSERT INTO tasks (id, title) VALUES (1, {v}) ON CONFLICT (id) DO UPDATE SET title = excluded.title WHERE {c}",
        "INSERT INTO tasks (id, title) VALUES (21, {v}), (22, {v}) RETURNING id, title",
        "INSERT INTO tasks (id, title) SELECT 23, {v} RETURNING *",
        "UPDATE tasks SET title = {v} WHERE {c} RETURNING title",
        "UPDATE OR REPLACE tasks SET id = 1 WHERE {c}",
        "DELETE FROM tasks WHERE {c}{t}",
        "UPDATE tasks SET title = {v} WHERE {c}{t}",
        "INSERT INTO tasks (id, title) VALUES (24, {v}){t}",
        "WITH w AS (SELECT {v} AS t) UPDATE tasks SET title = (SELECT t FROM w) WHERE {c}",
    ]);
    (shape, value, condition, tail, storage).prop_map(|(shape, v, c, t, s)| {
        shape
            .replace("{v}", v)
            .replace("{c}", c)
            .replace("{t}", t)
            .replace("{s}", s)
    })
}

/// The lexical forms a parser may read otherwise than SQLite.
fn form() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec![
        "$a(x' ')",
        "$a::b(c)",
        ":a(--)",
        "@a(/*)",
        "$a(')')",
        "?9",
        "?",
        "0x1F",
        "1_000",
        "x'00'",
        "\"_dnr_tasks\"",
        "[_dnr_tasks]",
        "`_dnr_tasks`",
        "'_dnr_tasks'",
        "_DNR_tasks",
        "/*",
        "*/",
        "--",
        "\n",
        "'",
        "\"",
        "[",
        "]",
        "`",
        ")",
        "(",
        ";",
        "\u{a0}",
        "\u{2028}",
        "\u{b}",
        "\0",
        "RETURNING (SELECT group_concat(title) FROM _dnr_tasks)",
        ") OR (1",
        "OR title = 'zq-guess'",
        "main.",
        ",",
        "AS",
        "FROM _dnr_tasks",
    ])
}

fn mutated() -> impl Strategy<Value = String> {
    (
        base(),
        prop::collection::vec((any::<prop::sample::Index>(), form(), any::<bool>()), 0..4),
    )
        .prop_map(|(sql, inserts)| {
            let mut words: Vec<String> = sql.split(' ').map(str::to_string).collect();
            for (at, form, glued) in inserts {
                let index = at.index(words.len() + 1);
                if glued && index > 0 {
                    words[index - 1].push_str(form);
                } else {
                    words.insert(index, form.to_string());
                }
            }
            words.join(" ")
        })
}

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(1500)
}

/// What tenant B gets back, inside a savepoint rolled back after (so that
/// every case meets the same rows).
fn answer(db: &Connection, sql: &str) -> String {
    let params = [Value::Integer(10), Value::Text("p".into())];
    let _ = db.execute("SAVEPOINT fuzz", &[]);
    let outcome = match db.query(sql, &params) {
        Ok(rows) => format!("{:?}", rows.rows),
        Err(first) => match db.query(sql, &[]) {
            Ok(rows) => format!("{first} / {:?}", rows.rows),
            Err(second) => format!("{first} / {second}"),
        },
    };
    let _ = db.execute("ROLLBACK TO fuzz", &[]);
    let _ = db.execute("RELEASE fuzz", &[]);
    outcome
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn rewritten_writes_answer_alike_whatever_tenant_a_holds(sql in mutated()) {
        thread_local! {
            static WORLDS: Result<(Connection, Connection), String> =
                world("guessed", GUESS).and_then(|g| Ok((g, world("other", "a1-secret")?)));
        }
        WORLDS.with(|worlds| {
            let (guessed, other) = worlds.as_ref().map_err(|e| TestCaseError::fail(e.clone()))?;
            let (x, y) = (answer(guessed, &sql), answer(other, &sql));
            prop_assert_eq!(&x, &y, "the answer depends on tenant A's rows: {:?}", sql);
            prop_assert!(!x.contains("secret"), "tenant A's data shows: {:?} => {}", sql, x);
            Ok(())
        })?;
    }
}
