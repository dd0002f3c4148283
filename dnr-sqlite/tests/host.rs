//! A real host loading the built extension: rusqlite (bundled SQLite) opens
//! connections and loads `target/release/libdnr.so` with `load_extension`,
//! as an application would. Build the library first:
//! `cargo build --release -p dnr-sqlite-ext` (scripts/sqlite-test.sh does).
//!
//! Also covers the in-process path the `dnr` command and the WASM package
//! use: `dnr_sqlite::register` on a connection's raw handle.

mod common;

use std::collections::BTreeSet;

use common::{open_with_extension, root, ALICE, BOB, TENANT_A, TENANT_B};
use dnr_core::{Operation, Row, TenantContext, Value};
use rusqlite::{params, Connection};

type Result<T = ()> = std::result::Result<T, Box<dyn std::error::Error>>;

fn policies() -> Result<String> {
    Ok(std::fs::read_to_string(
        root().join("tests/sqlite/tasks.dnr"),
    )?)
}

fn ids(conn: &Connection, sql: &str) -> Result<Vec<i64>> {
    let mut stmt = conn.prepare(sql)?;
    let rows = stmt.query_map([], |row| row.get::<_, i64>(0))?;
    Ok(rows.collect::<std::result::Result<_, _>>()?)
}

fn set_context(conn: &Connection, tenant: Option<&str>, user: Option<&str>, roles: &str) -> Result {
    conn.query_row(
        "SELECT dnr_set_context(?1, ?2, ?3, 0)",
        params![tenant, user, roles],
        |_| Ok(()),
    )?;
    Ok(())
}

fn seeded(path: &str) -> Result<Connection> {
    let conn = open_with_extension(path)?;
    let summary: String = conn.query_row("SELECT dnr_apply(?1)", [policies()?], |r| r.get(0))?;
    assert!(summary.starts_with("dnr: applied 3 entities"), "{summary}");
    set_context(&conn, Some(TENANT_A), Some(ALICE), "")?;
    conn.execute(
        "INSERT INTO tasks (id, owner_id, title) VALUES (1, ?1, 'a1'), (2, ?1, 'a2')",
        [ALICE],
    )?;
    set_context(&conn, Some(TENANT_B), Some(BOB), "")?;
    conn.execute(
        "INSERT INTO tasks (id, owner_id, title) VALUES (10, ?1, 'b10')",
        [BOB],
    )?;
    Ok(conn)
}

#[test]
fn extension_isolates_tenants_in_a_host() -> Result {
    let conn = seeded(":memory:")?;
    assert_eq!(ids(&conn, "SELECT id FROM tasks ORDER BY id")?, vec![10]);
    set_context(&conn, Some(TENANT_A), Some(ALICE), "")?;
    assert_eq!(ids(&conn, "SELECT id FROM tasks ORDER BY id")?, vec![1, 2]);
    // Writes to the other tenant's rows do nothing; moving a row is refused.
    conn.execute("UPDATE tasks SET title = 'x' WHERE id = 10", [])?;
    let moved = conn.execute("UPDATE tasks SET tenant_id = ?1 WHERE id = 1", [TENANT_B]);
    assert!(moved.is_err_and(|e| e.to_string().contains("tenant fence")));
    set_context(&conn, None, None, "")?;
    assert_eq!(ids(&conn, "SELECT count(*) FROM tasks")?, vec![0]);
    Ok(())
}

#[test]
fn invalid_context_is_an_error_not_an_empty_context() -> Result {
    let conn = open_with_extension(":memory:")?;
    set_context(&conn, Some(TENANT_A), None, "")?;
    let bad = set_context(&conn, Some("aaaa"), None, "");
    assert!(bad.is_err_and(|e| e.to_string().contains("`aaaa` is not a valid uuid")));
    let tenant: String = conn.query_row("SELECT dnr_tenant()", [], |r| r.get(0))?;
    assert_eq!(tenant, TENANT_A);
    Ok(())
}

#[test]
fn policy_errors_carry_line_and_column() -> Result {
    let conn = open_with_extension(":memory:")?;
    let error = conn
        .query_row(
            "SELECT dnr_apply(?1)",
            ["entity T:\n  access:\n    raed: true\n"],
            |r| r.get::<_, String>(0),
        )
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(error.contains("3:5:"), "{error}");
    Ok(())
}

#[test]
fn locked_connection_refuses_every_way_around() -> Result {
    let conn = seeded(":memory:")?;
    set_context(&conn, Some(TENANT_A), Some(ALICE), "")?;
    conn.query_row("SELECT dnr_lock()", [], |_| Ok(()))?;
    assert_eq!(ids(&conn, "SELECT id FROM tasks ORDER BY id")?, vec![1, 2]);
    let attacks = [
        "SELECT id FROM _dnr_tasks",
        "SELECT id FROM main._dnr_tasks",
        "WITH tasks AS (SELECT * FROM _dnr_tasks) SELECT id FROM tasks",
        "WITH \"_dnr_tasks_update\" AS (SELECT * FROM _dnr_tasks) SELECT id FROM \"_dnr_tasks_update\"",
        "SELECT id FROM main.tasks",
        "SELECT value FROM _dnr_meta",
        "UPDATE _dnr_tasks SET title = 'x'",
        "DROP VIEW main.tasks",
        "DROP TABLE tasks",
        "ALTER TABLE _dnr_tasks RENAME TO t",
        "CREATE VIEW v AS SELECT 1",
        "CREATE TEMP VIEW tasks AS SELECT * FROM main._dnr_tasks",
        "ATTACH ':memory:' AS x",
        "PRAGMA writable_schema = ON",
        "SELECT dnr_set_tenant('bbbbbbbb-0000-0000-0000-000000000002')",
        "SELECT dnr_apply('entity T:\n  table: tasks\n  access:\n    read: true\n')",
        "CREATE VIRTUAL TABLE temp.x USING dnr_locked('5f646e725f7461736b73')",
    ];
    for attack in attacks {
        let outcome = conn
            .prepare(attack)
            .and_then(|mut s| s.query([]).and_then(|mut rows| rows.next().map(|_| ())));
        assert!(outcome.is_err(), "not refused: {attack}");
    }
    // A TEMP view may be created (SQLite does not read its body yet), but
    // reading storage through it is refused.
    conn.execute("CREATE TEMP VIEW peek AS SELECT * FROM main._dnr_tasks", [])?;
    assert!(ids(&conn, "SELECT id FROM peek").is_err());
    assert_eq!(ids(&conn, "SELECT id FROM tasks ORDER BY id")?, vec![1, 2]);
    Ok(())
}

#[test]
fn hostile_sources_are_errors_and_the_connection_stays_usable() -> Result {
    // Each used to overflow the host's stack (issue 10).
    let rule = |condition: String| format!("entity T:\n  access:\n    read: {condition}\n");
    let hostile = [
        rule(format!("{}true{}", "(".repeat(10_000), ")".repeat(10_000))),
        rule(format!("{}true", "not ".repeat(50_000))),
        rule(vec!["true"; 100_000].join(" or ")),
    ];
    let conn = open_with_extension(":memory:")?;
    conn.execute_batch("CREATE TABLE t (id INTEGER PRIMARY KEY, tenant_id TEXT)")?;
    for source in &hostile {
        for function in ["dnr_compile", "dnr_apply"] {
            let error = conn
                .query_row(&format!("SELECT {function}(?1)"), [source], |r| {
                    r.get::<_, String>(0)
                })
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default();
            assert!(
                error.contains("3:") && (error.contains("nests deeper") || error.contains("terms")),
                "{function}: {error}"
            );
        }
    }
    // The same connection still works, and nothing was applied.
    let applied = conn.query_row("SELECT dnr_apply(?1)", [rule("true".into())], |r| {
        r.get::<_, String>(0)
    })?;
    assert!(applied.contains("applied 1 entity"), "{applied}");
    Ok(())
}

fn ctx(tenant: &str, user: &str) -> Result<TenantContext> {
    Ok(TenantContext::parse(Some(tenant), Some(user), &[])?)
}

/// DNR registered in process on a new in-memory connection (no extension
/// loading), the test policies applied, Alice's row 1 in tenant A and Bob's
/// row `b_id` in tenant B. The handle comes first so that it is dropped
/// before the connection.
fn registered_with_rows(b_id: i64) -> Result<(dnr_sqlite::Dnr, Connection)> {
    let conn = Connection::open_in_memory()?;
    // SAFETY: the connection outlives `dnr` (see the tuple's order).
    let dnr = unsafe { dnr_sqlite::register(conn.handle())? };
    dnr.apply(&policies()?)?;
    dnr.set_context(ctx(TENANT_A, ALICE)?)?;
    conn.execute(
        "INSERT INTO tasks (id, owner_id, title) VALUES (1, ?1, 'a1')",
        [ALICE],
    )?;
    dnr.set_context(ctx(TENANT_B, BOB)?)?;
    conn.execute(
        "INSERT INTO tasks (id, owner_id, title) VALUES (?1, ?2, ?3)",
        params![b_id, BOB, format!("b{b_id}")],
    )?;
    Ok((dnr, conn))
}

#[test]
fn a_host_migrates_a_locked_connection_and_enforcement_holds() -> Result {
    // The npm package's path: the trusted host migrates through the Rust
    // API while SQL on the same connection stays locked.
    let (dnr, conn) = registered_with_rows(2)?;
    dnr.lock()?;
    // SQL cannot migrate a locked connection, nor alter the enforced table.
    assert!(conn
        .query_row(
            "SELECT dnr_migrate('ALTER TABLE tasks ADD COLUMN due TEXT')",
            [],
            |r| r.get::<_, String>(0)
        )
        .is_err());
    assert!(conn
        .execute_batch("ALTER TABLE tasks ADD COLUMN due TEXT")
        .is_err());
    let summary = dnr.migrate("ALTER TABLE tasks ADD COLUMN due TEXT DEFAULT 'soon'")?;
    assert_eq!(
        summary,
        "dnr: migrated 1 statement; enforcement rebuilt on 3 tables"
    );
    assert!(dnr.is_locked());
    // Tenant B sees its row with the new column, and only its row.
    let rows: Vec<(i64, String)> = conn
        .prepare("SELECT id, due FROM tasks ORDER BY id")?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<std::result::Result<_, _>>()?;
    assert_eq!(rows, vec![(2, "soon".to_string())]);
    // Storage is still out of reach of SQL.
    assert!(conn.prepare("SELECT * FROM _dnr_tasks").is_err());
    // A refused migration changes nothing.
    let error = dnr.migrate("ALTER TABLE tasks ADD COLUMN x INT; UPDATE tasks SET title = 'x'");
    assert!(
        error
            .as_ref()
            .is_err_and(|e| e.message().contains("`UPDATE tasks` reads or writes rows")),
        "{error:?}"
    );
    assert_eq!(
        ids(
            &conn,
            "SELECT count(*) FROM pragma_table_info('tasks') WHERE name = 'x'"
        )?,
        vec![0]
    );
    dnr.set_context(ctx(TENANT_A, ALICE)?)?;
    assert_eq!(ids(&conn, "SELECT id FROM tasks")?, vec![1]);
    Ok(())
}

#[test]
fn in_process_registration_and_host_context() -> Result {
    // The path of the `dnr` command and the WASM package: no extension
    // loading, the same code registered on the connection directly.
    let (dnr, conn) = registered_with_rows(10)?;
    dnr.lock()?;
    assert!(dnr.is_locked());
    // SQL cannot change the context; the host still can.
    assert!(conn
        .query_row("SELECT dnr_set_tenant(?1)", [TENANT_A], |_| Ok(()))
        .is_err());
    assert_eq!(ids(&conn, "SELECT id FROM tasks")?, vec![10]);
    dnr.set_context(ctx(TENANT_A, ALICE)?)?;
    assert_eq!(ids(&conn, "SELECT id FROM tasks")?, vec![1]);
    assert!(dnr.check(
        "Task",
        "read",
        &format!(r#"{{"tenant_id":"{TENANT_A}","owner_id":"{ALICE}"}}"#)
    )?);
    // The host may apply again on a locked connection; the locked tables
    // follow, and a broken source leaves them working.
    dnr.apply(&policies()?)?;
    assert_eq!(ids(&conn, "SELECT id FROM tasks")?, vec![1]);
    assert!(dnr.apply("entity T:\n  access:\n    raed: true\n").is_err());
    let missing = policies()?.replace(
        "read: true\n    write: role(admin)",
        "read: nope = 1\n    write: role(admin)",
    );
    assert!(dnr.apply(&missing).is_err());
    assert_eq!(ids(&conn, "SELECT id FROM tasks")?, vec![1]);
    assert!(ids(&conn, "SELECT id FROM _dnr_tasks").is_err());
    // Registering twice (loading the extension twice) keeps the lock.
    // SAFETY: as above.
    let again = unsafe { dnr_sqlite::register(conn.handle())? };
    assert!(again.is_locked());
    Ok(())
}

#[test]
fn reapply_keeps_rows_and_a_broken_file_changes_nothing() -> Result {
    let dir = std::env::temp_dir().join(format!("dnr-sqlite-host-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let path = dir.join("reapply.db");
    let _ = std::fs::remove_file(&path);
    let path = path.to_string_lossy().into_owned();
    {
        let conn = seeded(&path)?;
        conn.query_row("SELECT dnr_apply(?1)", [policies()?], |_| Ok(()))?;
        let schema = |conn: &Connection| -> Result<Vec<String>> {
            let mut stmt =
                conn.prepare("SELECT sql FROM sqlite_master WHERE sql IS NOT NULL ORDER BY name")?;
            let rows = stmt.query_map([], |r| r.get::<_, String>(0))?;
            Ok(rows.collect::<std::result::Result<_, _>>()?)
        };
        let before = schema(&conn)?;
        let broken = policies()?.replace("read: true", "read: tru e");
        assert!(conn
            .query_row("SELECT dnr_apply(?1)", [broken], |_| Ok(()))
            .is_err());
        let missing = policies()?
            .replace("name: str required", "name: str required\n  extra: int")
            .replace(
                "    read: true\n    write: role(admin)",
                "    read: true\n    write: role(admin)\n    update: extra = 1",
            );
        let _ = conn.query_row("SELECT dnr_apply(?1)", [missing], |_| Ok(()));
        assert_eq!(schema(&conn)?, before);
    }
    // A new connection: nothing to apply again; every row is there.
    let conn = open_with_extension(&path)?;
    assert_eq!(
        ids(&conn, "SELECT id FROM _dnr_tasks ORDER BY id")?,
        vec![1, 2, 10]
    );
    set_context(&conn, Some(TENANT_A), Some(ALICE), "")?;
    assert_eq!(ids(&conn, "SELECT id FROM tasks ORDER BY id")?, vec![1, 2]);
    let allowed: i64 = conn.query_row(
        "SELECT dnr_check('Task', 'read', ?1)",
        [format!(
            r#"{{"tenant_id":"{TENANT_A}","owner_id":"{ALICE}"}}"#
        )],
        |r| r.get(0),
    )?;
    assert_eq!(allowed, 1);
    drop(conn);
    let plain = Connection::open(&path)?;
    let error = plain.query_row("SELECT count(*) FROM tasks", [], |r| r.get::<_, i64>(0));
    assert!(error.is_err_and(|e| e.to_string().contains("no such function: dnr_tenant")));
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

/// The view shows exactly the rows the evaluator allows, for every
/// combination of a handful of contexts and rows (NULLs included).
#[test]
fn view_agrees_with_the_evaluator() -> Result {
    let source = policies()?;
    let set = dnr_core::parse(&source).map_err(|e| e.to_string())?;
    let conn = open_with_extension(":memory:")?;
    conn.query_row("SELECT dnr_apply(?1)", [&source], |_| Ok(()))?;
    let tenants = [Some(TENANT_A), Some(TENANT_B), None];
    let owners = [Some(ALICE), Some(BOB), None];
    let statuses = [Some("todo"), Some("done"), None];
    let mut id = 0;
    for tenant in tenants.iter().flatten() {
        // Storage checks every row written into it: seed as the tenant's admin.
        set_context(&conn, Some(tenant), Some(ALICE), "admin")?;
        for owner in owners {
            for status in statuses {
                id += 1;
                conn.execute(
                    "INSERT INTO _dnr_tasks (tenant_id, id, owner_id, title, status) VALUES (?1, ?2, ?3, 't', ?4)",
                    params![tenant, id, owner, status],
                )?;
            }
        }
    }
    let rows: Vec<(i64, Row)> = {
        let mut stmt = conn.prepare("SELECT id, tenant_id, owner_id, status FROM _dnr_tasks")?;
        let mapped = stmt.query_map([], |r| {
            let text = |i: usize| -> rusqlite::Result<Value> {
                Ok(r.get::<_, Option<String>>(i)?
                    .map_or(Value::Null, Value::Text))
            };
            Ok((
                r.get(0)?,
                Row::new()
                    .with("tenant_id", text(1)?)
                    .with("owner_id", text(2)?)
                    .with("status", text(3)?),
            ))
        })?;
        mapped.collect::<std::result::Result<_, _>>()?
    };
    for tenant in tenants {
        for user in [Some(ALICE), Some(BOB), None] {
            for roles in ["", "admin", "guest"] {
                set_context(&conn, tenant, user, roles)?;
                let ctx = TenantContext::parse(
                    tenant,
                    user,
                    &roles
                        .split(',')
                        .filter(|r| !r.is_empty())
                        .collect::<Vec<_>>(),
                )?;
                let shown: BTreeSet<i64> =
                    ids(&conn, "SELECT id FROM tasks")?.into_iter().collect();
                let mut allowed = BTreeSet::new();
                for (id, row) in &rows {
                    if set.decide("Task", Operation::Read, &ctx, row)?.allowed {
                        allowed.insert(*id);
                    }
                }
                assert_eq!(
                    shown, allowed,
                    "tenant {tenant:?} user {user:?} roles {roles:?}"
                );
            }
        }
    }
    Ok(())
}

/// The locked path (TEMP virtual tables in front of the views) agrees with
/// the evaluator too, for reads and for inserts (each tried and rolled back).
#[test]
fn locked_connections_agree_with_the_evaluator() -> Result {
    let source = policies()?;
    let set = dnr_core::parse(&source).map_err(|e| e.to_string())?;
    let dir = std::env::temp_dir().join(format!("dnr-sqlite-locked-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let path = dir.join("locked.db").to_string_lossy().into_owned();
    let _ = std::fs::remove_file(&path);
    let tenants = [Some(TENANT_A), Some(TENANT_B), None];
    let owners = [Some(ALICE), Some(BOB), None];
    let mut rows: Vec<(i64, Row)> = Vec::new();
    {
        let conn = open_with_extension(&path)?;
        conn.query_row("SELECT dnr_apply(?1)", [&source], |_| Ok(()))?;
        let mut id = 0;
        for tenant in tenants.iter().flatten() {
            // Storage checks every row written into it: seed as the
            // tenant's admin.
            set_context(&conn, Some(tenant), Some(ALICE), "admin")?;
            for owner in owners {
                id += 1;
                conn.execute(
                    "INSERT INTO _dnr_tasks (tenant_id, id, owner_id, title) VALUES (?1, ?2, ?3, 't')",
                    params![tenant, id, owner],
                )?;
                let text = |v: Option<&str>| v.map_or(Value::Null, |s| Value::Text(s.to_string()));
                rows.push((
                    id,
                    Row::new()
                        .with("tenant_id", text(Some(tenant)))
                        .with("owner_id", text(owner)),
                ));
            }
        }
    }
    let mut checked = 0;
    for tenant in tenants {
        for user in [Some(ALICE), Some(BOB), None] {
            for roles in ["", "admin"] {
                let conn = open_with_extension(&path)?;
                set_context(&conn, tenant, user, roles)?;
                conn.query_row("SELECT dnr_lock()", [], |_| Ok(()))?;
                let role_list: Vec<&str> = roles.split(',').filter(|r| !r.is_empty()).collect();
                let ctx = TenantContext::parse(tenant, user, &role_list)?;
                let shown: BTreeSet<i64> =
                    ids(&conn, "SELECT id FROM tasks")?.into_iter().collect();
                let mut allowed = BTreeSet::new();
                for (id, row) in &rows {
                    if set.decide("Task", Operation::Read, &ctx, row)?.allowed {
                        allowed.insert(*id);
                    }
                }
                assert_eq!(
                    shown, allowed,
                    "read: tenant {tenant:?} user {user:?} roles {roles:?}"
                );
                // Reads that use no column count the rows instead of
                // stepping through them; those that may stop early step.
                let n = i64::try_from(allowed.len())?;
                for (sql, expected) in [
                    ("SELECT count(*) FROM tasks", n),
                    ("SELECT count(*) FROM tasks WHERE random() IS NOT NULL", n),
                    ("SELECT count(*) FROM tasks, tasks AS again", n * n),
                    ("SELECT EXISTS (SELECT 1 FROM tasks)", i64::from(n > 0)),
                    (
                        "SELECT count(*) FROM (SELECT 1 FROM tasks LIMIT 2)",
                        n.min(2),
                    ),
                    (
                        "SELECT count(*) FROM (SELECT 1 FROM tasks LIMIT 5 OFFSET 1)",
                        (n - 1).clamp(0, 5),
                    ),
                ] {
                    assert_eq!(
                        ids(&conn, sql)?,
                        vec![expected],
                        "{sql}: tenant {tenant:?} user {user:?} roles {roles:?}"
                    );
                }
                for written_tenant in [Some(TENANT_A), Some(TENANT_B), None] {
                    for owner in owners {
                        let mut row = Row::new()
                            .with("id", Value::Int(100))
                            .with("title", Value::Text("n".into()));
                        if let Some(t) = written_tenant {
                            row.set("tenant_id", Value::Text(t.into()));
                        }
                        row.set(
                            "owner_id",
                            owner.map_or(Value::Null, |o| Value::Text(o.into())),
                        );
                        let expected = set.decide("Task", Operation::Create, &ctx, &row)?.allowed;
                        conn.execute_batch("SAVEPOINT try")?;
                        let outcome = conn.execute(
                            "INSERT INTO tasks (tenant_id, id, owner_id, title) VALUES (?1, 100, ?2, 'n')",
                            params![written_tenant, owner],
                        );
                        conn.execute_batch("ROLLBACK TO try; RELEASE try")?;
                        assert_eq!(
                            outcome.is_ok(),
                            expected,
                            "create: ctx {tenant:?}/{user:?}/{roles:?}, row {written_tenant:?}/{owner:?}: {outcome:?}"
                        );
                        checked += 1;
                    }
                }
            }
        }
    }
    assert_eq!(checked, 3 * 3 * 2 * 9);
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

/// A locked connection keeps its reads and writes on the views prepared
/// (dnr-sqlite's vtab.rs); policies applied meanwhile by another connection
/// take effect on its next statement (SQLite compiles the kept statements
/// again), and an apply by the host of the locked connection rebuilds them.
#[test]
fn locked_statements_follow_policy_changes() -> Result {
    let dir = std::env::temp_dir().join(format!("dnr-sqlite-kept-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let path = dir.join("kept.db").to_string_lossy().into_owned();
    let _ = std::fs::remove_file(&path);
    let source = policies()?;
    let replace = |text: &str, from: &str, to: &str| -> Result<String> {
        if !text.contains(from) {
            return Err(format!("tasks.dnr no longer says `{from}`").into());
        }
        Ok(text.replace(from, to))
    };
    // Admins only: no create, update or delete for alice; she reads row 1.
    let mut stricter = replace(&source, "create: authenticated", "create: role(admin)")?;
    stricter = replace(
        &stricter,
        "read: owner_id = current_user or role(admin) or owner_id is null",
        "read: id = 1 or role(admin)",
    )?;
    stricter = replace(
        &stricter,
        "update: owner_id = current_user or role(admin)",
        "update: role(admin)",
    )?;
    stricter = replace(
        &stricter,
        "delete: owner_id = current_user and status != 'done'",
        "delete: role(admin)",
    )?;

    let trusted = open_with_extension(&path)?;
    trusted.query_row("SELECT dnr_apply(?1)", [&source], |_| Ok(()))?;
    let locked = open_with_extension(&path)?;
    set_context(&locked, Some(TENANT_A), Some(ALICE), "")?;
    locked.query_row("SELECT dnr_lock()", [], |_| Ok(()))?;
    let insert = |id: i64| {
        locked.execute(
            "INSERT INTO tasks (id, owner_id, title) VALUES (?1, ?2, 't')",
            params![id, ALICE],
        )
    };
    let title = |id: i64| -> Result<String> {
        Ok(
            trusted.query_row("SELECT title FROM _dnr_tasks WHERE id = ?1", [id], |r| {
                r.get(0)
            })?,
        )
    };
    // Every kind of write, twice, so that the second runs a kept statement.
    for id in 1..=4 {
        insert(id)?;
    }
    locked.execute("UPDATE tasks SET title = 'u1' WHERE id = 1", [])?;
    locked.execute("UPDATE tasks SET title = 'u2' WHERE id = 2", [])?;
    locked.execute("DELETE FROM tasks WHERE id = 3", [])?;
    locked.execute("DELETE FROM tasks WHERE id = 4", [])?;
    assert_eq!(
        ids(&locked, "SELECT id FROM tasks ORDER BY id")?,
        vec![1, 2]
    );
    assert_eq!((title(1)?, title(2)?), ("u1".into(), "u2".into()));

    trusted.query_row("SELECT dnr_apply(?1)", [&stricter], |_| Ok(()))?;
    let refused = insert(5);
    assert!(
        refused
            .as_ref()
            .is_err_and(|e| e.to_string().contains("Task")),
        "{refused:?}"
    );
    assert_eq!(ids(&locked, "SELECT id FROM tasks ORDER BY id")?, vec![1]);
    locked.execute("UPDATE tasks SET title = 'u3' WHERE id = 1", [])?;
    locked.execute("DELETE FROM tasks WHERE id = 1", [])?;
    assert_eq!(title(1)?, "u1");
    assert_eq!(
        ids(&trusted, "SELECT id FROM _dnr_tasks ORDER BY id")?,
        vec![1, 2]
    );

    trusted.query_row("SELECT dnr_apply(?1)", [&source], |_| Ok(()))?;
    insert(6)?;
    locked.execute("UPDATE tasks SET title = 'u4' WHERE id = 1", [])?;
    assert_eq!(
        ids(&locked, "SELECT id FROM tasks ORDER BY id")?,
        vec![1, 2, 6]
    );
    assert_eq!(title(1)?, "u4");
    drop(locked);

    // The host of a locked connection applies: the locked tables are
    // dropped and built again, with their statements.
    let conn = Connection::open(&path)?;
    // SAFETY: the connection outlives `dnr`.
    let dnr = unsafe { dnr_sqlite::register(conn.handle())? };
    dnr.set_context(TenantContext::parse(Some(TENANT_A), Some(ALICE), &[])?)?;
    dnr.lock()?;
    let insert = |id: i64| {
        conn.execute(
            "INSERT INTO tasks (id, owner_id, title) VALUES (?1, ?2, 't')",
            params![id, ALICE],
        )
    };
    insert(7)?;
    insert(8)?;
    dnr.apply(&stricter)?;
    assert!(insert(9).is_err());
    assert_eq!(ids(&conn, "SELECT id FROM tasks ORDER BY id")?, vec![1]);
    dnr.apply(&source)?;
    insert(10)?;
    assert_eq!(
        ids(&conn, "SELECT id FROM tasks ORDER BY id")?,
        vec![1, 2, 6, 7, 8, 10]
    );
    drop(conn);
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

#[test]
fn connection_type_counts_rows_written_and_persists() -> Result {
    use dnr_sqlite::{Connection as DnrConnection, Value as V};
    let dir = std::env::temp_dir().join(format!("dnr-conn-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let path = dir.join("app.db");
    let _ = std::fs::remove_file(&path);
    let ctx = |tenant: &str, user: &str| TenantContext::parse(Some(tenant), Some(user), &[]);
    {
        let db = DnrConnection::open(&path)?;
        db.apply(&policies()?)?;
        db.set_context(ctx(TENANT_A, ALICE)?)?;
        let insert = "INSERT INTO tasks (id, owner_id, title) VALUES (?, ?, ?)";
        assert_eq!(
            db.execute(insert, &[V::Integer(1), ALICE.into(), "mine".into()])?,
            1
        );
        db.set_context(ctx(TENANT_A, BOB)?)?;
        assert_eq!(
            db.execute(insert, &[V::Integer(2), BOB.into(), "bob's".into()])?,
            1
        );
        db.set_context(ctx(TENANT_A, ALICE)?)?;
        // Exact counts: the own row is updated; Bob's row in the same tenant
        // is not readable by Alice (read: owner or admin), so not touched.
        assert_eq!(db.execute("UPDATE tasks SET title = 'x'", &[])?, 1);
        db.set_context(TenantContext::parse(
            Some(TENANT_A),
            Some(ALICE),
            &["admin"],
        )?)?;
        // An admin reads and updates both.
        assert_eq!(db.execute("UPDATE tasks SET priority = 1", &[])?, 2);
        db.set_context(ctx(TENANT_A, ALICE)?)?;
        let rows = db.query("SELECT id, title FROM tasks ORDER BY id", &[])?;
        assert_eq!(rows.columns, vec!["id", "title"]);
        assert_eq!(rows.rows, vec![vec![V::Integer(1), "x".into()]]);
        // Visible and owned, but `delete: ... and status != 'done'` skips it
        // silently: 0 rows, as PostgreSQL's RLS reports.
        assert_eq!(
            db.execute("UPDATE tasks SET status = 'done' WHERE id = 1", &[])?,
            1
        );
        assert_eq!(db.execute("DELETE FROM tasks WHERE id = 1", &[])?, 0);
        db.migrate("ALTER TABLE tasks ADD COLUMN due TEXT")?;
    }
    // A new connection to the same file: the rows, the column, the fence.
    let db = DnrConnection::open(&path)?;
    db.set_context(ctx(TENANT_B, BOB)?)?;
    assert!(db.query("SELECT * FROM tasks", &[])?.rows.is_empty());
    assert_eq!(db.execute("DELETE FROM tasks", &[])?, 0);
    db.set_context(ctx(TENANT_A, ALICE)?)?;
    let rows = db.query("SELECT id, due FROM tasks", &[])?;
    assert_eq!(rows.rows, vec![vec![V::Integer(1), V::Null]]);
    db.dnr().lock()?;
    assert!(db.query("SELECT * FROM _dnr_tasks", &[]).is_err());
    drop(db);
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}

#[test]
fn connection_runs_writes_as_table_writes() -> Result {
    use dnr_sqlite::{Connection as DnrConnection, Value as V};
    let db = DnrConnection::open_in_memory()?;
    // The application's own table, with table-wide keys (DNR creates them
    // per tenant, tests/tenant_keys.rs): a write must never reach another
    // tenant's row through them.
    db.execute(
        "CREATE TABLE tasks (tenant_id TEXT NOT NULL, id INTEGER PRIMARY KEY, owner_id TEXT, \
         title TEXT NOT NULL, code TEXT UNIQUE, status TEXT DEFAULT 'todo', priority INTEGER, \
         project_id INTEGER)",
        &[],
    )?;
    db.apply(&policies()?)?;
    let as_bob_in_b = TenantContext::parse(Some(TENANT_B), Some(BOB), &[])?;
    db.set_context(as_bob_in_b.clone())?;
    db.execute(
        "INSERT INTO tasks (id, owner_id, title, code) VALUES (7, ?, 'bob''s', 'B7')",
        &[BOB.into()],
    )?;
    db.set_context(TenantContext::parse(Some(TENANT_A), Some(ALICE), &[])?)?;
    // RETURNING gives the row as stored: the filled tenant, the default,
    // the uuid normalized.
    let rows = db.query(
        "INSERT INTO tasks (id, owner_id, title) VALUES (1, ?, 'a') RETURNING tenant_id, owner_id, status",
        &[ALICE.to_uppercase().as_str().into()],
    )?;
    assert_eq!(
        rows.rows,
        vec![vec![TENANT_A.into(), ALICE.into(), "todo".into()]]
    );
    // Upserts on the own row update it, and count.
    let upsert = "INSERT INTO tasks (id, owner_id, title) VALUES (?, ?, ?) ON CONFLICT (id) DO UPDATE SET title = excluded.title RETURNING id, title";
    let rows = db.query(upsert, &[V::Integer(1), ALICE.into(), "b".into()])?;
    assert_eq!(rows.rows, vec![vec![V::Integer(1), "b".into()]]);
    assert_eq!(
        db.execute(upsert, &[V::Integer(1), ALICE.into(), "c".into()])?,
        1
    );
    // Over another tenant's key: DO NOTHING and OR IGNORE do nothing
    // (PostgreSQL's ON CONFLICT DO NOTHING), DO UPDATE and OR REPLACE fail.
    assert_eq!(
        db.execute(
            "INSERT INTO tasks (id, owner_id, title) VALUES (7, ?, 'x') ON CONFLICT DO NOTHING",
            &[ALICE.into()]
        )?,
        0
    );
    assert_eq!(
        db.execute(
            "INSERT OR IGNORE INTO tasks (id, owner_id, title) VALUES (7, ?, 'x')",
            &[ALICE.into()]
        )?,
        0
    );
    let error = refused(
        db.execute(upsert, &[V::Integer(7), ALICE.into(), "stolen".into()]),
        "DO UPDATE on another tenant's row",
    )?;
    assert!(error.message().contains("ON CONFLICT DO UPDATE"), "{error}");
    let error = refused(
        db.execute(
            "INSERT OR REPLACE INTO tasks (id, owner_id, title) VALUES (7, ?, 'stolen')",
            &[ALICE.into()],
        ),
        "REPLACE over another tenant's row",
    )?;
    assert!(error.message().contains("UNIQUE"), "{error}");
    assert_eq!(
        db.execute(
            "REPLACE INTO tasks (id, owner_id, title) VALUES (1, ?, 'replaced')",
            &[ALICE.into()]
        )?,
        1
    );
    // An upsert from a query, and UPDATE/DELETE ... RETURNING.
    assert_eq!(
        db.execute(
            "INSERT INTO tasks (id, owner_id, title) SELECT id + 1, owner_id, 'copy' FROM tasks WHERE id = 1 ON CONFLICT (id) DO NOTHING",
            &[]
        )?,
        1
    );
    let rows = db.query(
        "UPDATE tasks AS t SET title = 'u' WHERE t.id >= 1 RETURNING id",
        &[],
    )?;
    assert_eq!(rows.rows.len(), 2);
    let rows = db.query("DELETE FROM tasks WHERE id = 2 RETURNING title", &[])?;
    assert_eq!(rows.rows, vec![vec!["u".into()]]);
    // No part of a write is evaluated on another tenant's row, so an error
    // it would raise cannot tell anything about that row (Bob's id 7 has a
    // title starting with `b`).
    let oracle = "INSERT INTO tasks (id, owner_id, title) VALUES (7, ?, 'x') ON CONFLICT (id) DO UPDATE SET title = CASE WHEN tasks.title LIKE 'b%' THEN json('not json') ELSE 'y' END";
    let error = refused(db.execute(oracle, &[ALICE.into()]), "oracle upsert")?;
    assert!(error.message().contains("ON CONFLICT DO UPDATE"), "{error}");
    let oracle = "INSERT INTO tasks (id, owner_id, title) VALUES (7, ?, 'x') ON CONFLICT (id) DO UPDATE SET title = 'y' WHERE json(CASE WHEN tasks.title LIKE 'b%' THEN 'bad' ELSE '1' END) IS NOT NULL";
    let error = refused(db.execute(oracle, &[ALICE.into()]), "oracle upsert WHERE")?;
    assert!(error.message().contains("ON CONFLICT DO UPDATE"), "{error}");
    for oracle in [
        "UPDATE tasks SET title = 'z' WHERE id = 7 AND json(CASE WHEN title LIKE 'b%' THEN 'bad' ELSE '1' END) IS NOT NULL",
        "DELETE FROM tasks WHERE id = 7 AND json(CASE WHEN title LIKE 'b%' THEN 'bad' ELSE '1' END) IS NOT NULL",
    ] {
        assert_eq!(db.execute(oracle, &[])?, 0, "{oracle}");
    }
    // Moving a row to another tenant is refused; nothing else is touched.
    let error = refused(
        db.execute("UPDATE tasks SET tenant_id = ?", &[TENANT_B.into()]),
        "tenant change",
    )?;
    assert!(error.message().contains("tenant fence"), "{error}");
    // DNR's storage cannot be named by a write it rewrites.
    let error = refused(
        db.execute(
            "UPDATE tasks SET title = (SELECT group_concat(title) FROM _dnr_tasks)",
            &[],
        ),
        "storage named",
    )?;
    assert!(error.message().contains("_dnr_tasks"), "{error}");
    // A schema change through execute is a migration.
    db.execute("ALTER TABLE tasks ADD COLUMN due TEXT", &[])?;
    db.execute("UPDATE tasks SET due = '2027-01-01' WHERE id = 1", &[])?;
    // Index samples of every tenant's keys (sqlite_stat4), read below.
    db.execute("ANALYZE", &[])?;
    db.dnr().lock()?;
    assert_eq!(
        db.execute(
            "INSERT INTO tasks (id, owner_id, title) VALUES (3, ?, 'locked') ON CONFLICT (id) DO UPDATE SET title = excluded.title",
            &[ALICE.into()]
        )?,
        1
    );
    // On the locked connection the rewritten statement may write its
    // storage, and nothing else the lock refuses: raw pages and index
    // samples (other tenants' keys) stay out of reach inside it.
    for sneaky in [
        "INSERT INTO tasks (id, owner_id, title) SELECT 80, ?, group_concat(hex(sample)) FROM sqlite_stat4",
        "INSERT INTO tasks (id, owner_id, title) SELECT 81, ?, group_concat(name) FROM dbstat",
        "UPDATE tasks SET title = (SELECT group_concat(sample) FROM sqlite_stat4) WHERE owner_id = ?",
    ] {
        let error = refused(db.execute(sneaky, &[ALICE.into()]), sneaky)?;
        assert!(
            error.message().contains("prohibited") || error.message().contains("not authorized"),
            "{sneaky}: {error}"
        );
    }
    // Bob's row is as he left it.
    db.set_context(as_bob_in_b)?;
    let rows = db.query("SELECT id, title, code, due FROM tasks", &[])?;
    assert_eq!(
        rows.rows,
        vec![vec![V::Integer(7), "bob's".into(), "B7".into(), V::Null]]
    );
    Ok(())
}

const LEVELS: &str = "tenancy:
  mode: row_level
  column: tenant_id

entity Item:
  table: items
  id: int pk
  level: int
  access:
    read: true
    create: level < 5
  forbid:
    create: level = 3
";

/// An inserted row is checked as it is stored: an expression that gives
/// another value each time it is evaluated cannot pass the fence with one
/// value and store another (through a DNR connection, where the rewriter
/// evaluates it once, and through the view), and a value is compared after
/// the column's affinity converted it ('7' for an integer column is 7).
#[test]
fn inserted_rows_are_checked_as_they_are_stored() -> Result {
    use dnr_sqlite::{Connection as DnrConnection, Value as V};
    let dir = std::env::temp_dir().join(format!("dnr-host-checked-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let path = dir.join("items.db");
    let _ = std::fs::remove_file(&path);
    let path = path.to_string_lossy().into_owned();
    let db = DnrConnection::open(&path)?;
    db.apply(LEVELS)?;
    db.set_context(TenantContext::parse(Some(TENANT_A), None, &[])?)?;
    // Either tenant, at random, each time the expression is evaluated.
    let coin = "CASE WHEN random() % 2 = 0 THEN ?2 ELSE ?3 END";
    let (mut stored, mut refused_rows) = (0, 0);
    for id in 0..200i64 {
        // A query's row (which SQLite would flatten into the insert,
        // evaluating the expression again wherever it is named) and VALUES.
        let sql = if id % 2 == 0 {
            format!("INSERT INTO items (id, level, tenant_id) SELECT ?1, 1, {coin} FROM (SELECT 1)")
        } else {
            format!("INSERT INTO items (id, level, tenant_id) VALUES (?1, 1, {coin})")
        };
        match db.execute(&sql, &[V::Integer(id), TENANT_A.into(), TENANT_B.into()]) {
            Ok(1) => stored += 1,
            Ok(n) => return Err(format!("an insert wrote {n} rows").into()),
            Err(error) if error.message().contains("tenant fence") => refused_rows += 1,
            Err(error) => return Err(error.into()),
        }
    }
    assert!(
        stored > 0 && refused_rows > 0,
        "{stored} stored, {refused_rows} refused"
    );
    // Through the view, with the extension loaded into a host.
    let host = open_with_extension(&path)?;
    set_context(&host, Some(TENANT_A), None, "")?;
    for id in 1000..1200i64 {
        let outcome = host.execute(
            &format!("INSERT INTO items (id, level, tenant_id) VALUES (?1, 1, {coin})"),
            rusqlite::params![id, TENANT_A, TENANT_B],
        );
        if let Err(error) = outcome {
            assert!(error.to_string().contains("tenant fence"), "{error}");
        }
    }
    drop(host);
    db.set_context(TenantContext::parse(Some(TENANT_B), None, &[])?)?;
    let in_b = db.query("SELECT count(*) FROM items", &[])?;
    assert_eq!(
        in_b.rows,
        vec![vec![V::Integer(0)]],
        "rows stored in tenant B"
    );

    // Affinity: text for an integer column is compared as the integer.
    db.set_context(TenantContext::parse(Some(TENANT_A), None, &[])?)?;
    let insert = "INSERT INTO items (id, level) VALUES (?, ?)";
    for (id, level) in [(5000, "3"), (5001, "7"), (5002, " 3 ")] {
        let error = refused(
            db.execute(insert, &[V::Integer(id), level.into()]),
            &format!("level {level:?}"),
        )?;
        assert!(error.message().contains("refused by"), "{error}");
    }
    assert_eq!(db.execute(insert, &[V::Integer(5003), "4".into()])?, 1);
    let host = open_with_extension(&path)?;
    set_context(&host, Some(TENANT_A), None, "")?;
    let error = host
        .execute("INSERT INTO items (id, level) VALUES (5004, '3')", [])
        .err()
        .ok_or("level '3' through the view was stored")?;
    assert!(error.to_string().contains("forbid create"), "{error}");
    let stored: i64 = host.query_row(
        "SELECT level FROM items WHERE id = 5003 AND typeof(level) = 'integer'",
        [],
        |r| r.get(0),
    )?;
    assert_eq!(stored, 4);
    drop(host);
    drop(db);
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}

/// The error of a statement that must fail.
fn refused<T: std::fmt::Debug>(
    outcome: std::result::Result<T, dnr_sqlite::Error>,
    what: &str,
) -> Result<dnr_sqlite::Error> {
    match outcome {
        Err(error) => Ok(error),
        Ok(value) => Err(format!("{what}: expected an error, got {value:?}").into()),
    }
}

/// Signed context through the Rust API and SQL, with tokens minted now:
/// expiry, not-before, audience, algorithm confusion, rotation, the cache,
/// and a refused token leaving the context as it was.
#[test]
fn signed_context_refuses_every_forged_or_stale_token() -> Result {
    use dnr_core::signed::{base64url, KeySet, SigningKey, VerifyOptions};
    let (dnr, conn) = registered_with_rows(2)?;
    let eddsa = SigningKey::eddsa("ed", &[7u8; 32])?;
    let hmac = SigningKey::hs256("mac", &[9u8; 32])?;
    let public = eddsa.public_key().ok_or("an EdDSA key has a public key")?;
    let mut keys = KeySet::new();
    keys.add_eddsa("ed", &public)?;
    keys.add_hs256("mac", &[9u8; 32])?;
    dnr.set_signing_keys(keys);
    dnr.set_verify_options(VerifyOptions {
        audience: Some("dnr-tests".into()),
        ..VerifyOptions::default()
    });
    let now = i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)?
            .as_secs(),
    )?;
    let claims = |tenant: &str, exp: i64, extra: serde_json::Value| {
        let mut claims = serde_json::json!({
            "tid": tenant, "sub": ALICE, "exp": exp, "iat": now, "aud": "dnr-tests"
        });
        if let (Some(map), serde_json::Value::Object(extra)) = (claims.as_object_mut(), extra) {
            map.extend(extra);
        }
        claims
    };
    let tenant_a = eddsa.sign(&claims(TENANT_A, now + 600, serde_json::json!({})))?;
    let tenant_b = hmac.sign(&claims(TENANT_B, now + 600, serde_json::json!({})))?;
    let visible = |conn: &Connection| ids(conn, "SELECT id FROM tasks ORDER BY id");

    // Rotation: both keys verify; the context follows the token.
    assert_eq!(
        dnr.set_context_signed(&tenant_a)?.tenant,
        ctx(TENANT_A, ALICE)?.tenant
    );
    assert_eq!(visible(&conn)?, vec![1]);
    // In SQL the token's context lasts for the transaction; the host's
    // (tenant a) comes back after it.
    conn.execute_batch("BEGIN")?;
    conn.query_row("SELECT dnr_set_context_signed(?1)", [&tenant_b], |_| Ok(()))?;
    assert_eq!(dnr.context().tenant, ctx(TENANT_B, ALICE)?.tenant);
    // Cached: the same token again is accepted (and still checked for exp).
    conn.query_row("SELECT dnr_set_context_signed(?1)", [&tenant_b], |_| Ok(()))?;
    assert_eq!(visible(&conn)?, Vec::<i64>::new());
    conn.execute_batch("COMMIT")?;
    assert_eq!(visible(&conn)?, vec![1]);
    assert_eq!(dnr.context().tenant, ctx(TENANT_A, ALICE)?.tenant);

    let forged = [
        (
            "expired",
            eddsa.sign(&claims(TENANT_A, now - 120, serde_json::json!({})))?,
        ),
        (
            "not yet valid",
            eddsa.sign(&claims(
                TENANT_A,
                now + 600,
                serde_json::json!({ "nbf": now + 300 }),
            ))?,
        ),
        (
            "wrong audience",
            eddsa.sign(&claims(
                TENANT_A,
                now + 600,
                serde_json::json!({ "aud": "elsewhere" }),
            ))?,
        ),
        (
            "HS256 signed with the EdDSA public key",
            SigningKey::hs256("ed", &public)?.sign(&claims(
                TENANT_A,
                now + 600,
                serde_json::json!({}),
            ))?,
        ),
        (
            "alg none",
            format!(
                "{}.{}.",
                base64url(br#"{"alg":"none","kid":"ed"}"#),
                tenant_a.split('.').nth(1).ok_or("a payload")?
            ),
        ),
        ("oversized", "a".repeat(20_000)),
    ];
    for (what, token) in forged {
        let before = dnr.context();
        let error = refused(dnr.set_context_signed(&token), what)?;
        assert!(
            error.message().starts_with("dnr: "),
            "{what}: {}",
            error.message()
        );
        assert!(
            !error.message().contains(&token[..token.len().min(40)]),
            "{what} echoes the token"
        );
        let sql = conn.query_row("SELECT dnr_set_context_signed(?1)", [&token], |_| Ok(()));
        assert!(sql.is_err(), "{what}: SQL accepted it");
        assert_eq!(dnr.context(), before, "{what}: the context changed");
    }

    // Signed-only: the SQL setters refuse, the token works, the host's own
    // setter stays available.
    dnr.require_signed();
    let setter = conn.query_row("SELECT dnr_set_tenant(?1)", [TENANT_A], |_| Ok(()));
    assert!(
        setter.is_err(),
        "an unsigned setter worked in signed-only mode"
    );
    dnr.set_context(ctx(TENANT_B, BOB)?)?;
    conn.execute_batch("BEGIN")?;
    conn.query_row("SELECT dnr_set_context_signed(?1)", [&tenant_a], |_| Ok(()))?;
    assert_eq!(visible(&conn)?, vec![1]);
    conn.execute_batch("COMMIT")?;
    assert_eq!(visible(&conn)?, vec![2]);
    Ok(())
}
