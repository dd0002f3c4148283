//! Measures what the shape of the view's INSTEAD OF INSERT trigger costs
//! per row (the `.load` path's inserts; see bench/sqlite.md): the trigger
//! DNR compiles for the benchmark's policy (checks carried by the copied
//! row's values) against hand-written variants of it, and plain tables with
//! and without a BEFORE INSERT trigger, one statement per inserted row (as
//! an application inserts), 1,000 rows per transaction, into a table of
//! 200,000 rows. Rounds interleave the variants; medians are printed. The
//! one-line BEFORE INSERT trigger shows why storage has none: its presence
//! alone doubles a plain insert's cost.
//!
//! Usage: trigger_variants [ROUNDS]   (needs target/release/libdnr.so)

use std::path::PathBuf;
use std::time::Instant;

use rusqlite::{params, Connection};

type Result<T = ()> = std::result::Result<T, Box<dyn std::error::Error>>;

const POLICY: &str = "tenancy:
  mode: row_level
  column: tenant_id

entity Task:
  table: tasks
  id: int pk
  owner_id: uuid
  title: str
  status: enum[todo,doing,done]
  priority: int
  access:
    read: true
    create: true
";

const TENANT: &str = "00000001-0000-4000-8000-000000000001";
const FENCE: &str =
    r#"(coalesce(dnr_uuid(NEW."tenant_id"), dnr_tenant()) = dnr_tenant()) IS NOT TRUE"#;
const GUARD: &str = r#"EXISTS (SELECT 1 FROM "_dnr_tasks" AS _dnr_other WHERE _dnr_other."id" = NEW."id" AND NOT ((0) IS TRUE))"#;
const TENANT_VALUE: &str = r#"coalesce(dnr_uuid(NEW."tenant_id"), dnr_tenant())"#;

fn insert(tenant: &str) -> String {
    format!(
        r#"INSERT INTO "_dnr_tasks" ("tenant_id", "id", "owner_id", "title", "status", "priority") VALUES ({tenant}, NEW."id", dnr_uuid(NEW."owner_id"), NEW."title", NEW."status", NEW."priority");"#
    )
}

fn checks_case() -> String {
    format!(
        "CASE WHEN {FENCE} THEN RAISE(ABORT, 'dnr: create on `Task` refused by the tenant fence') \
         WHEN (1) IS NOT TRUE THEN RAISE(ABORT, 'dnr: create on `Task` refused because the written row would not be readable') \
         WHEN (1) IS NOT TRUE THEN RAISE(ABORT, 'dnr: create on `Task` refused by `create: true`') \
         WHEN {GUARD} THEN RAISE(ABORT, 'UNIQUE constraint failed: tasks.id') END"
    )
}

fn variants() -> Vec<(&'static str, String)> {
    let fence = format!(
        "SELECT RAISE(ABORT, 'dnr: create on `Task` refused by the tenant fence') WHERE {FENCE};"
    );
    let guard = format!("SELECT RAISE(ABORT, 'UNIQUE constraint failed: tasks.id') WHERE {GUARD};");
    vec![
        ("floor: only the INSERT", insert(TENANT_VALUE)),
        (
            "fence + INSERT (no guard)",
            format!("{fence}\n{}", insert(TENANT_VALUE)),
        ),
        (
            "fence + guard + INSERT (constant checks left out)",
            format!("{fence}\n{guard}\n{}", insert(TENANT_VALUE)),
        ),
        (
            "one SELECT CASE … RAISE for all checks + INSERT",
            format!("SELECT {};\n{}", checks_case(), insert(TENANT_VALUE)),
        ),
        (
            "checks as a CASE inside the INSERT's tenant value",
            insert(&format!(
                "CASE WHEN ({}) IS NULL THEN {TENANT_VALUE} END",
                checks_case()
            )),
        ),
    ]
}

fn open() -> Result<Connection> {
    let library = match std::env::var_os("DNR_SQLITE_LIB") {
        Some(lib) => PathBuf::from(lib).with_extension(""),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/release/libdnr"),
    };
    let conn = Connection::open_in_memory()?;
    // SAFETY: DNR's own extension, built from this workspace.
    unsafe {
        conn.load_extension_enable()?;
        conn.load_extension(&library, None::<&str>)?;
        conn.load_extension_disable()?;
    }
    Ok(conn)
}

fn main() -> Result {
    let rounds: usize = std::env::args()
        .nth(1)
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(9);
    let conn = open()?;
    conn.query_row("SELECT dnr_apply(?1)", [POLICY], |_| Ok(()))?;
    // The same, with the enum's CHECK written as a chain of `=` (applying
    // keeps a storage table that exists).
    let or_conn = open()?;
    or_conn.execute_batch(
        "CREATE TABLE _dnr_tasks (tenant_id TEXT NOT NULL, id INTEGER, owner_id TEXT, title TEXT, \
           status TEXT CHECK (status = 'todo' OR status = 'doing' OR status = 'done'), priority INTEGER, PRIMARY KEY (id))",
    )?;
    or_conn.query_row("SELECT dnr_apply(?1)", [POLICY], |_| Ok(()))?;
    conn.execute_batch(
        "CREATE TABLE plain_tasks (tenant_id TEXT NOT NULL, id INTEGER PRIMARY KEY, owner_id TEXT, title TEXT, \
           status TEXT CHECK (status IN ('todo', 'doing', 'done')), priority INTEGER);
         CREATE INDEX plain_tasks_tenant_idx ON plain_tasks (tenant_id);
         CREATE TABLE plain_or (tenant_id TEXT NOT NULL, id INTEGER PRIMARY KEY, owner_id TEXT, title TEXT, \
           status TEXT CHECK (status = 'todo' OR status = 'doing' OR status = 'done'), priority INTEGER);
         CREATE INDEX plain_or_tenant_idx ON plain_or (tenant_id);
         CREATE TABLE plain_before (tenant_id TEXT NOT NULL, id INTEGER PRIMARY KEY, owner_id TEXT, title TEXT, \
           status TEXT CHECK (status = 'todo' OR status = 'doing' OR status = 'done'), priority INTEGER);
         CREATE INDEX plain_before_tenant_idx ON plain_before (tenant_id);
         CREATE TRIGGER plain_before_check BEFORE INSERT ON plain_before BEGIN
           SELECT RAISE(ABORT, 'refused') WHERE NEW.tenant_id IS NULL;
         END;",
    )?;
    let statuses = ["todo", "doing", "done"];
    for (c, tables) in [
        (
            &conn,
            &["_dnr_tasks", "plain_tasks", "plain_or", "plain_before"][..],
        ),
        (&or_conn, &["_dnr_tasks"][..]),
    ] {
        // Storage checks the rows written into it: as the tenant.
        c.query_row("SELECT dnr_set_tenant(?1, 0)", [TENANT], |_| Ok(()))?;
        let tx = c.unchecked_transaction()?;
        for table in tables {
            let mut stmt = tx.prepare(&format!("INSERT INTO {table} (tenant_id, id, owner_id, title, status, priority) VALUES (?1, ?2, ?1, ?3, ?4, ?5)"))?;
            for id in 0..200_000i64 {
                stmt.execute(params![
                    TENANT,
                    id,
                    format!("t{id}"),
                    statuses[(id % 3) as usize],
                    id % 10
                ])?;
            }
        }
        tx.commit()?;
    }
    let original: String = conn.query_row(
        "SELECT sql FROM sqlite_master WHERE name = '_dnr_tasks_insert'",
        [],
        |r| r.get(0),
    )?;
    let mut cases: Vec<(&str, &Connection, Option<String>, &str)> = vec![
        (
            "plain table, CHECK status IN (…)",
            &conn,
            None,
            "plain_tasks",
        ),
        (
            "plain table, CHECK status = … OR …",
            &conn,
            None,
            "plain_or",
        ),
        (
            "plain table with a one-line BEFORE INSERT trigger",
            &conn,
            None,
            "plain_before",
        ),
        (
            "DNR's trigger as compiled now",
            &conn,
            Some(original),
            "tasks",
        ),
        (
            "DNR's trigger, storage CHECK status = … OR …",
            &or_conn,
            None,
            "tasks",
        ),
    ];
    for (name, body) in variants() {
        cases.push((
            name,
            &conn,
            Some(format!(
                "CREATE TRIGGER \"_dnr_tasks_insert\" INSTEAD OF INSERT ON \"tasks\" BEGIN\n{body}\nEND"
            )),
            "tasks",
        ));
    }
    let mut times: Vec<Vec<f64>> = vec![Vec::new(); cases.len()];
    let mut next = 1_000_000i64;
    for _ in 0..rounds {
        for (i, (_, conn, trigger, table)) in cases.iter().enumerate() {
            if let Some(trigger) = trigger {
                conn.execute_batch("DROP TRIGGER \"_dnr_tasks_insert\"")?;
                conn.execute_batch(trigger)?;
            }
            let sql = if *table == "tasks" {
                "INSERT INTO tasks (id, owner_id, title, status, priority) VALUES (?1, ?2, ?3, ?4, ?5)".to_string()
            } else {
                format!("INSERT INTO {table} (tenant_id, id, owner_id, title, status, priority) VALUES (?2, ?1, ?2, ?3, ?4, ?5)")
            };
            let started = Instant::now();
            let tx = conn.unchecked_transaction()?;
            {
                let mut stmt = tx.prepare_cached(&sql)?;
                for _ in 0..1000 {
                    next += 1;
                    stmt.execute(params![
                        next,
                        TENANT,
                        format!("new {next}"),
                        statuses[(next % 3) as usize],
                        7
                    ])?;
                }
            }
            tx.commit()?;
            times[i].push(started.elapsed().as_secs_f64() * 1e6 / 1000.0);
        }
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
    };
    let medians: Vec<f64> = times.iter_mut().map(median).collect();
    let (plain, now) = (medians[0], medians[2]);
    println!(
        "{:55} {:>10}  {:>18}  {:>14}",
        "case (medians)", "per row", "vs plain, IN check", "vs DNR now"
    );
    for ((name, _, _, _), m) in cases.iter().zip(&medians) {
        println!(
            "{name:55} {m:6.2} µs  {:17.2}×  {:+11.2} µs",
            m / plain,
            m - now
        );
    }
    Ok(())
}
