//! `dnr demo`: two tenants on embedded SQLite, each seeing only its own rows.

use dnr_core::TenantContext;
use rusqlite::{params, Connection};

const POLICY: &str = include_str!("../../examples/tasks.dnr");

const ACME: &str = "a0000000-0000-4000-8000-00000000000a";
const GLOBEX: &str = "b0000000-0000-4000-8000-00000000000b";
const ALICE: &str = "00000000-0000-4000-8000-0000000a11ce";
const BOB: &str = "00000000-0000-4000-8000-000000000b0b";
const CAROL: &str = "00000000-0000-4000-8000-0000000ca201";

pub fn run() -> Result<(), String> {
    let conn = Connection::open_in_memory().map_err(|e| e.to_string())?;
    // The same code path as `.load ./libdnr`: DNR's SQLite adapter registers
    // its functions on this connection and enforces the policy.
    // SAFETY: `conn` is open and outlives `dnr`, which is dropped first.
    let dnr = unsafe { dnr_sqlite::register(conn.handle()) }.map_err(|e| e.to_string())?;
    let summary = dnr.apply(POLICY).map_err(|e| e.to_string())?;
    println!("applied examples/tasks.dnr to an in-memory SQLite database: {summary}");
    // From here on, SQL on this connection can neither change the context
    // nor reach the storage tables behind the enforced names.
    dnr.lock().map_err(|e| e.to_string())?;
    println!();

    let as_user = |tenant: &str, user: &str, roles: &[&str]| -> Result<(), String> {
        dnr.set_context(
            TenantContext::parse(Some(tenant), Some(user), roles).map_err(|e| e.to_string())?,
        );
        Ok(())
    };
    let insert = |id: &str, title: &str, owner: &str| {
        conn.execute(
            "INSERT INTO tasks (id, owner_id, title) VALUES (?1, ?2, ?3)",
            params![id, owner, title],
        )
    };

    as_user(ACME, ALICE, &[])?;
    insert(
        "10000000-0000-4000-8000-000000000001",
        "acme: alice's launch plan",
        ALICE,
    )
    .map_err(|e| e.to_string())?;
    insert(
        "10000000-0000-4000-8000-000000000002",
        "acme: alice's budget",
        ALICE,
    )
    .map_err(|e| e.to_string())?;
    as_user(ACME, BOB, &[])?;
    insert(
        "10000000-0000-4000-8000-000000000003",
        "acme: bob's hiring notes",
        BOB,
    )
    .map_err(|e| e.to_string())?;
    as_user(GLOBEX, CAROL, &[])?;
    insert(
        "20000000-0000-4000-8000-000000000001",
        "globex: carol's roadmap",
        CAROL,
    )
    .map_err(|e| e.to_string())?;
    println!("wrote 3 tasks as tenant acme (alice, bob) and 1 as tenant globex (carol)\n");

    let show = |who: &str| -> Result<(), String> {
        let mut statement = conn
            .prepare("SELECT title FROM tasks ORDER BY title")
            .map_err(|e| e.to_string())?;
        let titles: Vec<String> = statement
            .query_map([], |row| row.get(0))
            .and_then(|rows| rows.collect())
            .map_err(|e| e.to_string())?;
        println!("{who} sees {} task(s):", titles.len());
        for title in titles {
            println!("    {title}");
        }
        Ok(())
    };
    as_user(ACME, ALICE, &[])?;
    show("alice (acme)")?;
    as_user(ACME, BOB, &[])?;
    show("bob (acme)")?;
    as_user(ACME, BOB, &["admin"])?;
    show("bob (acme) as admin")?;
    as_user(GLOBEX, CAROL, &["admin"])?;
    show("carol (globex) as admin")?;
    dnr.set_context(TenantContext::default());
    show("nobody (no tenant in context)")?;

    println!("\ncarol (globex) tries to write into acme:");
    as_user(GLOBEX, CAROL, &["admin"])?;
    let refused = conn.execute(
        "INSERT INTO tasks (id, tenant_id, owner_id, title) VALUES (?1, ?2, ?3, 'planted by carol')",
        params!["20000000-0000-4000-8000-000000000009", ACME, CAROL],
    );
    match refused {
        Err(e) => println!("    insert with tenant_id = acme: refused: {e}"),
        Ok(_) => return Err("a cross-tenant insert was accepted".into()),
    }
    let before = conn.total_changes();
    conn.execute(
        "UPDATE tasks SET title = 'defaced' WHERE title LIKE 'acme:%'",
        [],
    )
    .map_err(|e| e.to_string())?;
    println!(
        "    update of acme's tasks: {} row(s) changed (they are invisible to her)",
        conn.total_changes() - before
    );

    for attempt in [
        format!("SELECT dnr_set_tenant('{ACME}')"),
        "SELECT title FROM _dnr_tasks".to_string(),
    ] {
        match conn.query_row(&attempt, [], |_| Ok(())) {
            Err(e) => println!("    `{attempt}`: refused: {e}"),
            Ok(()) => return Err(format!("`{attempt}` was allowed on a locked connection")),
        }
    }

    as_user(ACME, ALICE, &[])?;
    show("\nalice (acme), afterwards,")?;
    Ok(())
}
