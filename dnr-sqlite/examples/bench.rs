//! `scripts/sqlite-bench.sh`: the cost of DNR's enforcement in SQLite.
//!
//! One file database, 1,000,000 rows over 1,000 tenants, twice: in a plain
//! table queried with a hand-written `WHERE tenant_id = ?`, and behind the
//! enforced name (the policy has only the tenant fence and `read: true`, so
//! both sides ask for the same rows). Same indexes on both sides: the primary
//! key and one on `tenant_id`. The extension is the built
//! `target/release/libdnr.so`, loaded with `load_extension` as a host would.
//!
//! Usage: bench [DB_PATH] [ROWS] [TENANTS]

use std::time::{Duration, Instant};

use rusqlite::{params, Connection};

mod common;

use common::{Result, Rng};

const POLICY: &str = "tenancy:
  mode: row_level
  column: tenant_id

entity Task:
  table: tasks
  id: int pk
  owner_id: uuid
  title: str
  priority: int
  access:
    read: true
    create: true
";

fn tenant(i: u64) -> String {
    format!("{:08x}-0000-4000-8000-{:012x}", i + 1, i + 1)
}

fn load(conn: &Connection, rows: u64, tenants: u64) -> Result {
    conn.execute_batch(
        "CREATE TABLE plain_tasks (tenant_id TEXT NOT NULL, id INTEGER PRIMARY KEY, owner_id TEXT, title TEXT, priority INTEGER);
         CREATE INDEX plain_tasks_tenant_idx ON plain_tasks (tenant_id);
         CREATE TABLE tasks (tenant_id TEXT NOT NULL, id INTEGER PRIMARY KEY, owner_id TEXT, title TEXT, priority INTEGER);",
    )?;
    let tx = conn.unchecked_transaction()?;
    {
        // Bulk load as an existing app's data is: into plain tables, the
        // policy applied afterwards (`tasks` becomes enforced).
        let mut plain = tx.prepare("INSERT INTO plain_tasks VALUES (?1, ?2, ?3, ?4, ?5)")?;
        let mut stored = tx.prepare("INSERT INTO tasks VALUES (?1, ?2, ?3, ?4, ?5)")?;
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        for id in 0..rows {
            // Interleaved, as rows of many tenants arrive over time.
            let t = tenant(id % tenants);
            let owner = tenant(1_000_000 + rng.below(50));
            let title = format!("task {id}");
            let priority = i64::try_from(rng.below(1000))?;
            let id = i64::try_from(id)?;
            plain.execute(params![t, id, owner, title, priority])?;
            stored.execute(params![t, id, owner, title, priority])?;
        }
    }
    tx.commit()?;
    conn.query_row("SELECT dnr_apply(?1)", [POLICY], |_| Ok(()))?;
    conn.execute_batch("ANALYZE")?;
    Ok(())
}

struct Case {
    name: &'static str,
    /// Lower-quartile time of one query (or one row) on each side: robust
    /// to the other work a shared machine does meanwhile.
    enforced: Duration,
    plain: Duration,
    unit: &'static str,
    count: u64,
    /// The ratio this case must stay under, when not the default for its
    /// kind (1.50 for inserts, 1.10 for queries).
    target: Option<f64>,
}

fn quartile(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples.get(samples.len() / 4).copied().unwrap_or_default()
}

/// Runs `iterations` queries per side; each iteration picks a tenant and
/// the enforced side switches the context first (untimed, as a request
/// would set it once).
fn read_case(
    conn: &Connection,
    name: &'static str,
    enforced_sql: &str,
    plain_sql: &str,
    rows: u64,
    tenants: u64,
    iterations: u64,
) -> Result<Case> {
    let mut enforced = Vec::new();
    let mut plain = Vec::new();
    let mut e_stmt = conn.prepare(enforced_sql)?;
    let mut p_stmt = conn.prepare(plain_sql)?;
    let mut set = conn.prepare("SELECT dnr_set_tenant(?1, 0)")?;
    let mut rng = Rng(42);
    let (mut e_sum, mut p_sum) = (0i64, 0i64);
    for round in 0..iterations * 2 {
        let t = rng.below(tenants);
        let tenant_id = tenant(t);
        // An id of this tenant's rows (id % tenants == t).
        let id = i64::try_from(
            (rng.below(rows / tenants.max(1)) * tenants + t).min(rows.saturating_sub(1)),
        )?;
        let low = i64::try_from(rng.below(900))?;
        let high = low + 100;
        set.query_row([&tenant_id], |_| Ok(()))?;
        // Alternate which side goes first, so caches favour neither.
        for side in [round % 2 == 0, round % 2 == 1] {
            let started = Instant::now();
            let total: i64 = if side {
                let mut rows = e_stmt.query(params![id, low, high])?;
                let mut sum = 0;
                while let Some(row) = rows.next()? {
                    sum += row.get::<_, i64>(0)?;
                }
                sum
            } else {
                let mut rows = p_stmt.query(params![id, low, high, tenant_id])?;
                let mut sum = 0;
                while let Some(row) = rows.next()? {
                    sum += row.get::<_, i64>(0)?;
                }
                sum
            };
            let elapsed = started.elapsed();
            if side {
                enforced.push(elapsed);
                e_sum += total;
            } else {
                plain.push(elapsed);
                p_sum += total;
            }
        }
    }
    if e_sum != p_sum {
        return Err(format!("{name}: the enforced query returned other rows than the plain one ({e_sum} != {p_sum})").into());
    }
    Ok(Case {
        name,
        enforced: quartile(enforced),
        plain: quartile(plain),
        unit: "queries",
        count: iterations * 2,
        target: None,
    })
}

/// Inserts in batches of 1,000 rows per transaction, alternating sides. A
/// locked connection keeps the tenant it was locked with (`locked`); an
/// unlocked one switches tenants between batches.
fn insert_case(
    conn: &Connection,
    name: &'static str,
    rows: u64,
    first_id: u64,
    locked: Option<&str>,
) -> Result<Case> {
    let tenants = 100;
    let mut enforced = Vec::new();
    let mut plain = Vec::new();
    let batch = 1000;
    let mut id = first_id;
    for b in 0..rows / batch {
        let tenant_id = match locked {
            Some(t) => t.to_string(),
            None => {
                let t = tenant(10_000 + b % tenants);
                conn.query_row("SELECT dnr_set_tenant(?1, 0)", [&t], |_| Ok(()))?;
                t
            }
        };
        for side in [b % 2 == 0, b % 2 == 1] {
            let started = Instant::now();
            let tx = conn.unchecked_transaction()?;
            {
                let mut stmt = if side {
                    tx.prepare_cached(
                        "INSERT INTO tasks (id, owner_id, title, priority) VALUES (?1, ?2, ?3, ?4)",
                    )?
                } else {
                    tx.prepare_cached("INSERT INTO plain_tasks (tenant_id, id, owner_id, title, priority) VALUES (?5, ?1, ?2, ?3, ?4)")?
                };
                for i in 0..batch {
                    let this = i64::try_from(id + i)?;
                    if side {
                        stmt.execute(params![
                            this,
                            tenant(1_000_000 + i % 50),
                            format!("new {this}"),
                            7
                        ])?;
                    } else {
                        stmt.execute(params![
                            this,
                            tenant(1_000_000 + i % 50),
                            format!("new {this}"),
                            7,
                            tenant_id
                        ])?;
                    }
                }
            }
            tx.commit()?;
            // Per row, for this batch.
            let per_row = started.elapsed() / u32::try_from(batch)?;
            if side {
                enforced.push(per_row);
            } else {
                plain.push(per_row);
            }
        }
        id += batch;
    }
    Ok(Case {
        name,
        enforced: quartile(enforced),
        plain: quartile(plain),
        unit: "rows",
        count: rows / batch * batch,
        target: None,
    })
}

/// Through a DNR connection (`dnr_sqlite::Connection`, as an application
/// and the npm package use it): its writes on enforced tables go through
/// the statement rewriter onto storage. Both sides run through the same
/// type, so its own overhead is on both.
fn connection_cases(path: &str, rows: u64, tenants: u64, first_id: u64) -> Result<Vec<Case>> {
    use dnr_sqlite::{Connection as DnrConnection, Plan, Value as V};
    let db = DnrConnection::open(path)?;
    let insert = "INSERT INTO tasks (id, owner_id, title, priority) VALUES (?1, ?2, ?3, ?4)";
    let plain_insert = "INSERT INTO plain_tasks (id, owner_id, title, priority, tenant_id) VALUES (?1, ?2, ?3, ?4, ?5)";
    let rewritten = match db.dnr().plan(insert)?.as_ref() {
        [Plan::Write(rewritten)] => rewritten.sql.clone(),
        other => return Err(format!("the insert was not rewritten: {other:?}").into()),
    };
    let context = |t: u64| dnr_core::TenantContext::parse(Some(&tenant(t)), None, &[]);
    let mut cases = Vec::new();
    // (name, enforced SQL, baseline SQL, baseline passes the tenant, target)
    let inserts: [(&'static str, &str, &str, bool, f64); 2] = [
        (
            "DNR connection: insert, 1,000 rows per transaction",
            insert,
            plain_insert,
            true,
            1.2,
        ),
        (
            "DNR connection: cached rewritten insert vs the rewritten SQL run directly",
            insert,
            &rewritten,
            false,
            1.05,
        ),
    ];
    let batch = 1000u64;
    let mut id = first_id;
    for (name, enforced_sql, plain_sql, with_tenant, target) in inserts {
        let (mut enforced, mut plain) = (Vec::new(), Vec::new());
        for b in 0..60u64 {
            let t = 10_000 + b % 100;
            db.set_context(context(t)?)?;
            for side in [b % 2 == 0, b % 2 == 1] {
                let started = Instant::now();
                db.execute("BEGIN", &[])?;
                for i in 0..batch {
                    let this = i64::try_from(id + i)?;
                    let mut values = vec![
                        V::Integer(this),
                        V::Text(tenant(1_000_000 + i % 50)),
                        V::Text(format!("new {this}")),
                        V::Integer(7),
                    ];
                    if !side && with_tenant {
                        values.push(V::Text(tenant(t)));
                    }
                    db.execute(if side { enforced_sql } else { plain_sql }, &values)?;
                }
                db.execute("COMMIT", &[])?;
                let per_row = started.elapsed() / u32::try_from(batch)?;
                if side {
                    enforced.push(per_row);
                } else {
                    plain.push(per_row);
                }
                id += batch;
            }
        }
        cases.push(Case {
            name,
            enforced: quartile(enforced),
            plain: quartile(plain),
            unit: "rows",
            count: 60 * batch,
            target: Some(target),
        });
    }
    let reads: [(&'static str, &str, &str); 2] = [
        (
            "DNR connection: point lookup by id",
            "SELECT priority FROM tasks WHERE id = ?1",
            "SELECT priority FROM plain_tasks WHERE id = ?1 AND tenant_id = ?2",
        ),
        (
            "DNR connection: range, priority BETWEEN, ~10% of a tenant",
            "SELECT id FROM tasks WHERE priority BETWEEN ?1 AND ?1 + 100",
            "SELECT id FROM plain_tasks WHERE priority BETWEEN ?1 AND ?1 + 100 AND tenant_id = ?2",
        ),
    ];
    for (name, enforced_sql, plain_sql) in reads {
        let (mut enforced, mut plain) = (Vec::new(), Vec::new());
        let mut rng = Rng(11);
        let n = 2_000u64;
        for round in 0..n {
            let t = rng.below(tenants);
            let key = if name.contains("point") {
                i64::try_from((rng.below(rows / tenants.max(1)) * tenants + t).min(rows - 1))?
            } else {
                i64::try_from(rng.below(900))?
            };
            db.set_context(context(t)?)?;
            let mut answers = [0usize; 2];
            for side in [round % 2 == 0, round % 2 == 1] {
                let started = Instant::now();
                let found = if side {
                    db.query(enforced_sql, &[V::Integer(key)])?
                } else {
                    db.query(plain_sql, &[V::Integer(key), V::Text(tenant(t))])?
                };
                let elapsed = started.elapsed();
                answers[usize::from(side)] = found.rows.len();
                if side {
                    enforced.push(elapsed);
                } else {
                    plain.push(elapsed);
                }
            }
            if answers[0] != answers[1] {
                return Err(format!("{name}: the enforced query returned other rows").into());
            }
        }
        cases.push(Case {
            name,
            enforced: quartile(enforced),
            plain: quartile(plain),
            unit: "queries",
            count: n,
            target: Some(1.05),
        });
    }
    Ok(cases)
}

/// The same reads on a locked connection (one tenant for the connection's
/// life), where the enforced name is DNR's TEMP virtual table.
fn locked_cases(
    path: &str,
    rows: u64,
    tenants: u64,
    iterations: u64,
    first_id: u64,
) -> Result<Vec<Case>> {
    let conn = common::open(path, 200000)?;
    let t = 7 % tenants.max(1);
    let tenant_id = tenant(t);
    conn.query_row("SELECT dnr_set_tenant(?1, 0)", [&tenant_id], |_| Ok(()))?;
    conn.query_row("SELECT dnr_lock()", [], |_| Ok(()))?;
    let mut cases = Vec::new();
    // (name, enforced SQL, baseline SQL, queries, target: issue 11 sets one
    // for the tenant count only)
    let queries: [(&'static str, &str, &str, u64, Option<f64>); 2] = [
        (
            "locked connection: point lookup by id",
            "SELECT priority FROM tasks WHERE id = ?1",
            "SELECT priority FROM plain_tasks WHERE id = ?1 AND tenant_id = ?2",
            iterations,
            None,
        ),
        (
            "locked connection: tenant-wide count(*)",
            "SELECT count(*) FROM tasks WHERE ?1 IS NOT NULL",
            "SELECT count(*) FROM plain_tasks WHERE ?1 IS NOT NULL AND tenant_id = ?2",
            iterations / 5,
            Some(1.3),
        ),
    ];
    for (name, enforced_sql, plain_sql, n, target) in queries {
        let mut e_stmt = conn.prepare(enforced_sql)?;
        let mut p_stmt = conn.prepare(plain_sql)?;
        let (mut enforced, mut plain) = (Vec::new(), Vec::new());
        let (mut e_sum, mut p_sum) = (0i64, 0i64);
        let mut rng = Rng(7);
        for round in 0..n * 2 {
            let id = i64::try_from(
                (rng.below(rows / tenants.max(1)) * tenants + t).min(rows.saturating_sub(1)),
            )?;
            for side in [round % 2 == 0, round % 2 == 1] {
                let started = Instant::now();
                let value: i64 = if side {
                    e_stmt.query_row(params![id], |r| r.get(0))?
                } else {
                    p_stmt.query_row(params![id, tenant_id], |r| r.get(0))?
                };
                if side {
                    enforced.push(started.elapsed());
                    e_sum += value;
                } else {
                    plain.push(started.elapsed());
                    p_sum += value;
                }
            }
        }
        if e_sum != p_sum {
            return Err(format!(
                "{name}: the locked query returned other rows ({e_sum} != {p_sum})"
            )
            .into());
        }
        cases.push(Case {
            name,
            enforced: quartile(enforced),
            plain: quartile(plain),
            unit: "queries",
            count: n * 2,
            target,
        });
    }
    cases.push(insert_case(
        &conn,
        "locked connection: insert, 1,000 rows per transaction",
        100_000,
        first_id,
        Some(&tenant_id),
    )?);
    Ok(cases)
}

/// What a DNR connection pays the first time it meets a statement text:
/// sqlparser reads it, the rewriter rewrites and prints it, and SQLite
/// reads the print back (prepares it) before the plan is cached. Each
/// sample is a new text (a distinct trailing comment), so nothing is cached.
fn planning_cost(path: &str) -> Result<String> {
    let db = dnr_sqlite::Connection::open(path)?;
    let statements = [
        (
            "INSERT of one row",
            "INSERT INTO tasks (id, owner_id, title, priority) VALUES (?1, ?2, ?3, ?4)",
        ),
        (
            "UPDATE by id",
            "UPDATE tasks SET title = ?1, priority = priority + 1 WHERE id = ?2",
        ),
        ("DELETE by id", "DELETE FROM tasks WHERE id = ?1"),
        (
            "SELECT (as written)",
            "SELECT id, title FROM tasks WHERE priority BETWEEN ?1 AND ?2",
        ),
    ];
    let mut out = String::from(
        "\n## Planning a statement the first time (uncached)\n\n\
         A DNR connection plans each new statement text once (sqlparser reads it, the rewriter \
         rewrites and prints it, SQLite reads the printed statement back) and then keeps the plan by \
         text, so the cached rows above pay a hash lookup. Lower quartile of 2,000 distinct texts:\n\n\
         | statement | uncached plan |\n|---|---|\n",
    );
    for (name, sql) in statements {
        let mut samples = Vec::new();
        for i in 0..2_000 {
            let text = format!("{sql} -- {i}");
            let started = Instant::now();
            db.dnr().plan(&text)?;
            samples.push(started.elapsed());
        }
        out.push_str(&format!(
            "| {name} | {:.1} µs |\n",
            quartile(samples).as_secs_f64() * 1e6
        ));
    }
    Ok(out)
}

fn main() -> Result {
    let args: Vec<String> = std::env::args().collect();
    let path = args
        .get(1)
        .cloned()
        .unwrap_or_else(|| "target/sqlite-bench/bench.db".into());
    let rows: u64 = args
        .get(2)
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(1_000_000);
    let tenants: u64 = args.get(3).map(|s| s.parse()).transpose()?.unwrap_or(1_000);
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{path}{suffix}"));
    }
    if let Some(dir) = std::path::Path::new(&path).parent() {
        std::fs::create_dir_all(dir)?;
    }
    let conn = common::open(&path, 200000)?;
    let started = Instant::now();
    load(&conn, rows, tenants)?;
    eprintln!(
        "loaded {rows} rows x 2 over {tenants} tenants in {:.1?}",
        started.elapsed()
    );

    let iterations = 5_000;
    let mut cases = vec![
        read_case(
            &conn,
            "point lookup by id",
            "SELECT priority FROM tasks WHERE id = ?1 AND ?2 IS NOT NULL AND ?3 IS NOT NULL",
            "SELECT priority FROM plain_tasks WHERE id = ?1 AND ?2 IS NOT NULL AND ?3 IS NOT NULL AND tenant_id = ?4",
            rows,
            tenants,
            iterations,
        )?,
        read_case(
            &conn,
            "tenant-wide count(*)",
            "SELECT count(*) FROM tasks WHERE ?1 IS NOT NULL AND ?2 IS NOT NULL AND ?3 IS NOT NULL",
            "SELECT count(*) FROM plain_tasks WHERE ?1 IS NOT NULL AND ?2 IS NOT NULL AND ?3 IS NOT NULL AND tenant_id = ?4",
            rows,
            tenants,
            iterations / 5,
        )?,
        read_case(
            &conn,
            "range: priority BETWEEN, ~10% of a tenant",
            "SELECT id FROM tasks WHERE ?1 IS NOT NULL AND priority BETWEEN ?2 AND ?3",
            "SELECT id FROM plain_tasks WHERE ?1 IS NOT NULL AND priority BETWEEN ?2 AND ?3 AND tenant_id = ?4",
            rows,
            tenants,
            iterations / 5,
        )?,
    ];
    cases.push(insert_case(
        &conn,
        "insert, 1,000 rows per transaction",
        100_000,
        rows + 1,
        None,
    )?);
    drop(conn);
    cases.extend(connection_cases(&path, rows, tenants, rows + 400_001)?);
    cases.extend(locked_cases(
        &path,
        rows,
        tenants,
        iterations,
        rows + 200_001,
    )?);

    let mut out = String::new();
    out.push_str("# SQLite: cost of DNR enforcement\n\n");
    out.push_str(&format!(
        "{rows} rows over {tenants} tenants in one file database (WAL), the same rows in a plain table \
         queried with a hand-written `WHERE tenant_id = ?` and behind the enforced name \
         (policy: tenant fence, `read: true`, `create: true`). Same indexes on both sides (primary key, \
         `tenant_id`). The extension is `target/release/libdnr.so` loaded into a rusqlite host; the \
         context is switched per query outside the timed part. Times are lower quartiles (per query; per \
         row of 1,000-row batches for inserts), both sides interleaved, because the machine is shared. Produced by `scripts/sqlite-bench.sh`.\n\n"
    ));
    out.push_str(
        "| case | plain + `WHERE tenant_id = ?` | through the enforced name | ratio | target |\n",
    );
    out.push_str("|---|---|---|---|---|\n");
    for case in &cases {
        let per = |d: Duration| d.as_secs_f64() * 1e6;
        let ratio = case.enforced.as_secs_f64() / case.plain.as_secs_f64().max(1e-9);
        let default = if case.unit == "rows" { 1.5 } else { 1.10 };
        let target = match case.target {
            None if case.name.starts_with("locked") => "none (untrusted-SQL mode)".to_string(),
            target => {
                let target = target.unwrap_or(default);
                let verdict = if ratio <= target { "ok" } else { "**over**" };
                format!("≤ {target:.2}× {verdict}")
            }
        };
        let unit = if case.unit == "rows" {
            "µs/row"
        } else {
            "µs/query"
        };
        out.push_str(&format!(
            "| {} ({} {}) | {:.2} {unit} | {:.2} {unit} | {:.2}× | {target} |\n",
            case.name,
            case.count,
            case.unit,
            per(case.plain),
            per(case.enforced),
            ratio,
        ));
    }
    out.push_str(
        "\nReads go through the view `tasks` (`WHERE tenant_id = dnr_tenant() AND <read rule>`), which SQLite \
         flattens into the query and answers with the same index as the hand-written filter. An inserted \
         row carries its checks in its values (`dnr_checked(value, <fence, rules, REPLACE guard>)`); \
         updated and deleted rows meet BEFORE triggers on `_dnr_tasks`. Through the view (`.load`), an \
         insert runs the view's INSTEAD OF trigger (uuid normalization, tenant and defaults, the checked \
         copy into storage); through a DNR connection the statement rewriter writes storage directly. \
         `cargo run --release -p dnr-sqlite --example trigger_variants` measures trigger shapes (one \
         statement per row, 1,000 rows per transaction): the mere presence of a trigger on the written \
         table or view makes an insert about twice as slow (SQLite then runs each insert as a multi-write \
         statement in a statement journal), whatever the trigger checks. So the view's inserts sit near \
         2×, and a DNR connection's, which meet no trigger, near the plain table's. \
         What does cost, on entities with an enum of three or more values (not this benchmark's), is a \
         `CHECK (status IN ('a', 'b', 'c'))`: SQLite builds an ephemeral index for a constant IN list of \
         more than two values once per statement, that is once per inserted row, about 1.4 µs/row; DNR \
         writes it as `status = 'a' OR status = 'b' OR status = 'c'`. A locked connection (`dnr_lock()`) \
         serves the enforced names through TEMP virtual tables that run DNR's own statements on the view, \
         prepared once per table and reused; it is the mode for untrusted SQL (its tenant count has issue \
         11's 1.3× target: every row the count reads passes through the virtual table). The DNR \
         connection rows run both sides through `dnr_sqlite::Connection` (its own per-statement cost is on \
         both); \"cached rewritten insert\" compares a statement the rewriter plans (from its cache) with \
         the rewritten SQL run directly.\n",
    );
    out.push_str(&planning_cost(&path)?);
    print!("{out}");
    std::fs::create_dir_all("bench")?;
    std::fs::write("bench/sqlite.md", out)?;
    Ok(())
}
