//! `scripts/exists-bench.sh` (SQLite part): listing the projects a user may
//! read under a relationship rule (`exists Membership where ...`) against the
//! same query written by hand on plain tables.
//!
//! 100,000 projects over 100 tenants and 1,000,000 memberships (ten per
//! project, 100 users per tenant, each a member of ~100 of their tenant's
//! 1,000 projects) in one file database, twice: in plain tables, and behind
//! the enforced names. Both sides have the primary keys and the tenant
//! columns indexed, and memberships indexed for their query: the plain side
//! on `(project_id, user_id)`, what the hand-written `EXISTS` probes, DNR's
//! side on `(tenant_id, user_id, project_id)`, what `dnr_apply` creates for
//! the `exists`. The extension
//! is the built `target/release/libdnr.so`, loaded as a host would.
//!
//! Two baselines: (b) the hand-written query an application on shared
//! tables writes, `WHERE p.tenant_id = ?1 AND EXISTS (SELECT 1 FROM
//! memberships m WHERE m.project_id = p.id AND m.user_id = ?2)`, and (c) the
//! same without the tenant filter (the literal form: every tenant's
//! projects are probed).
//!
//! Usage: exists_bench [DB_PATH] [PROJECTS] [TENANTS] [MEMBERS_PER_PROJECT] [QUERIES]

use std::time::{Duration, Instant};

use rusqlite::{params, Connection};

mod common;

use common::{Result, Rng};

const POLICY: &str = "tenancy:
  mode: row_level
  column: tenant_id

entity Project:
  table: projects
  id: int pk
  name: str
  access:
    read: role(admin) or exists Membership where project_id = this.id and user_id = current_user
    create: role(admin)

entity Membership:
  table: memberships
  id: int pk
  project_id: int
  user_id: uuid
  access:
    read: user_id = current_user or role(admin)
    create: role(admin)
";

const USERS_PER_TENANT: u64 = 100;

fn tenant(i: u64) -> String {
    format!("{:08x}-0000-4000-8000-{:012x}", i + 1, i + 1)
}

fn user(i: u64) -> String {
    format!("00000000-0000-4000-9000-{:012x}", i + 1)
}

/// Project `p` belongs to tenant `p % tenants`; its `k`-th member is user
/// `(p / tenants + 10 k) % 100` of that tenant: ten distinct users.
fn load(conn: &Connection, projects: u64, tenants: u64, members: u64) -> Result {
    conn.execute_batch(
        "CREATE TABLE plain_projects (tenant_id TEXT NOT NULL, id INTEGER PRIMARY KEY, name TEXT);
         CREATE INDEX plain_projects_tenant_idx ON plain_projects (tenant_id);
         CREATE TABLE plain_memberships (tenant_id TEXT NOT NULL, id INTEGER PRIMARY KEY, project_id INTEGER, user_id TEXT);
         CREATE INDEX plain_memberships_tenant_idx ON plain_memberships (tenant_id);
         CREATE INDEX plain_memberships_project_user_idx ON plain_memberships (project_id, user_id);
         CREATE TABLE projects (tenant_id TEXT NOT NULL, id INTEGER PRIMARY KEY, name TEXT);
         CREATE TABLE memberships (tenant_id TEXT NOT NULL, id INTEGER PRIMARY KEY, project_id INTEGER, user_id TEXT);",
    )?;
    let tx = conn.unchecked_transaction()?;
    {
        // Bulk load as an existing app's data is: the policy is applied
        // afterwards (the tables become enforced, the index is created).
        let mut plain_p = tx.prepare("INSERT INTO plain_projects VALUES (?1, ?2, ?3)")?;
        let mut stored_p = tx.prepare("INSERT INTO projects VALUES (?1, ?2, ?3)")?;
        let mut plain_m = tx.prepare("INSERT INTO plain_memberships VALUES (?1, ?2, ?3, ?4)")?;
        let mut stored_m = tx.prepare("INSERT INTO memberships VALUES (?1, ?2, ?3, ?4)")?;
        let mut membership = 0i64;
        for p in 0..projects {
            let t = tenant(p % tenants);
            let name = format!("project {p}");
            let id = i64::try_from(p)?;
            plain_p.execute(params![t, id, name])?;
            stored_p.execute(params![t, id, name])?;
            for k in 0..members {
                let u = user((p / tenants + 10 * k) % USERS_PER_TENANT);
                plain_m.execute(params![t, membership, id, u])?;
                stored_m.execute(params![t, membership, id, u])?;
                membership += 1;
            }
        }
    }
    tx.commit()?;
    conn.query_row("SELECT dnr_apply(?1)", [POLICY], |_| Ok(()))?;
    conn.execute_batch("ANALYZE")?;
    Ok(())
}

fn quartile(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples.get(samples.len() / 4).copied().unwrap_or_default()
}

/// Sum of the ids a statement returns, and how long it took.
fn run(
    stmt: &mut rusqlite::Statement<'_>,
    params: &[&dyn rusqlite::ToSql],
) -> Result<(i64, Duration)> {
    let started = Instant::now();
    let mut rows = stmt.query(params)?;
    let mut sum = 0i64;
    while let Some(row) = rows.next()? {
        sum += row.get::<_, i64>(0)?;
    }
    Ok((sum, started.elapsed()))
}

fn main() -> Result {
    let args: Vec<String> = std::env::args().collect();
    let arg = |i: usize, default: u64| -> Result<u64> {
        Ok(match args.get(i) {
            Some(text) => text.parse()?,
            None => default,
        })
    };
    let path = args
        .get(1)
        .cloned()
        .unwrap_or_else(|| "target/sqlite-bench/exists.db".into());
    let (projects, tenants, members, queries) =
        (arg(2, 100_000)?, arg(3, 100)?, arg(4, 10)?, arg(5, 300)?);
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{path}{suffix}"));
    }
    let conn = common::open(&path, 400000)?;
    let started = Instant::now();
    load(&conn, projects, tenants, members)?;
    eprintln!(
        "loaded {projects} projects, {} memberships over {tenants} tenants in {:.1} s",
        projects * members,
        started.elapsed().as_secs_f64()
    );

    let plan: Vec<String> = conn
        .prepare("EXPLAIN QUERY PLAN SELECT id, name FROM projects")?
        .query_map([], |row| row.get::<_, String>(3))?
        .collect::<rusqlite::Result<_>>()?;
    let uses_index = plan
        .iter()
        .any(|line| line.contains("INDEX _dnr_memberships_tenant_id_user_id_project_id_idx"));
    let scans = plan
        .iter()
        .any(|line| line.starts_with("SCAN") && line.contains("memberships"));
    if !uses_index || scans {
        return Err(
            format!("the enforced listing does not use the memberships index: {plan:?}").into(),
        );
    }

    let mut enforced = conn.prepare("SELECT id, name FROM projects")?;
    let mut with_tenant = conn.prepare(
        "SELECT id, name FROM plain_projects p WHERE p.tenant_id = ?1
           AND EXISTS (SELECT 1 FROM plain_memberships m WHERE m.project_id = p.id AND m.user_id = ?2)",
    )?;
    let mut literal = conn.prepare(
        "SELECT id, name FROM plain_projects p
           WHERE EXISTS (SELECT 1 FROM plain_memberships m WHERE m.project_id = p.id AND m.user_id = ?1)",
    )?;
    let mut set = conn.prepare("SELECT dnr_set_context(?1, ?2, NULL, 0)")?;
    let (mut a, mut b, mut c) = (Vec::new(), Vec::new(), Vec::new());
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for round in 0..queries {
        let t = tenant(rng.below(tenants));
        let u = user(rng.below(USERS_PER_TENANT));
        set.query_row(params![t, u], |_| Ok(()))?;
        // Alternate the order, so caches favour no side.
        let (first_a, (sum_b, time_b)) = if round % 2 == 0 {
            let a = run(&mut enforced, &[])?;
            (a, run(&mut with_tenant, &[&t, &u])?)
        } else {
            let b = run(&mut with_tenant, &[&t, &u])?;
            (run(&mut enforced, &[])?, b)
        };
        let (sum_a, time_a) = first_a;
        if sum_a != sum_b {
            return Err(format!("the enforced listing returned other projects than the hand-written one ({sum_a} != {sum_b})").into());
        }
        a.push(time_a);
        b.push(time_b);
        if round % 10 == 0 {
            c.push(run(&mut literal, &[&u])?.1);
        }
    }
    let (a, b, c) = (quartile(a), quartile(b), quartile(c));
    let ratio = a.as_secs_f64() / b.as_secs_f64().max(1e-9);
    let micros = |d: Duration| d.as_secs_f64() * 1e6;
    println!("## SQLite: listing the projects a user may read (exists)");
    println!();
    println!(
        "{projects} projects over {tenants} tenants, {} memberships; {queries} queries, lower quartile per query. EXPLAIN QUERY PLAN of the enforced listing: {}.",
        projects * members,
        plan.join("; ")
    );
    println!();
    println!("| query | µs per query | ratio to (b) |");
    println!("|---|---|---|");
    println!(
        "| (a) DNR `SELECT id, name FROM projects` (context set per query, untimed) | {:.0} | {ratio:.2}× |",
        micros(a)
    );
    println!(
        "| (b) hand-written: tenant filter and `EXISTS (... m.project_id = p.id AND m.user_id = ?)` | {:.0} | 1.00× |",
        micros(b)
    );
    println!(
        "| (c) hand-written without the tenant filter (probes every tenant's projects) | {:.0} | {:.2}× |",
        micros(c),
        c.as_secs_f64() / b.as_secs_f64().max(1e-9)
    );
    println!();
    println!(
        "| target | this run |\n|---|---|\n| SQLite exists listing (a) ≤ 1.50× hand-written (b) | {ratio:.2}× ({}) |",
        if ratio <= 1.5 { "ok" } else { "**over**" }
    );
    Ok(())
}
