//! `dnr demo`: two tenants on embedded SQLite, each seeing only its own rows.

use dnr_core::TenantContext;
use dnr_sqlite::{Connection, Value};

const POLICY: &str = include_str!("../../examples/tasks.dnr");

const ACME: &str = "a0000000-0000-4000-8000-00000000000a";
const GLOBEX: &str = "b0000000-0000-4000-8000-00000000000b";
const ALICE: &str = "00000000-0000-4000-8000-0000000a11ce";
const BOB: &str = "00000000-0000-4000-8000-000000000b0b";
const CAROL: &str = "00000000-0000-4000-8000-0000000ca201";

fn text(value: &str) -> Value {
    Value::Text(value.to_string())
}

pub fn run() -> Result<(), String> {
    // A DNR connection, as an application opens one: the same adapter as
    // `.load ./libdnr`, and writes on enforced tables go through DNR's
    // statement rewriter (exact counts, upserts, RETURNING of stored rows).
    let db = Connection::open_in_memory().map_err(|e| e.to_string())?;
    let summary = db.apply(POLICY).map_err(|e| e.to_string())?;
    println!("applied examples/tasks.dnr to an in-memory SQLite database: {summary}");
    // From here on, SQL on this connection can neither change the context
    // nor reach the storage tables behind the enforced names.
    db.dnr().lock().map_err(|e| e.to_string())?;
    println!();

    let as_user = |tenant: &str, user: &str, roles: &[&str]| -> Result<(), String> {
        db.set_context(
            TenantContext::parse(Some(tenant), Some(user), roles).map_err(|e| e.to_string())?,
        )
        .map_err(|e| e.to_string())
    };
    let insert = |id: &str, title: &str, owner: &str| {
        db.execute(
            "INSERT INTO tasks (id, owner_id, title) VALUES (?1, ?2, ?3)",
            &[text(id), text(owner), text(title)],
        )
        .map_err(|e| e.to_string())
    };

    as_user(ACME, ALICE, &[])?;
    insert(
        "10000000-0000-4000-8000-000000000001",
        "acme: alice's launch plan",
        ALICE,
    )?;
    insert(
        "10000000-0000-4000-8000-000000000002",
        "acme: alice's budget",
        ALICE,
    )?;
    as_user(ACME, BOB, &[])?;
    insert(
        "10000000-0000-4000-8000-000000000003",
        "acme: bob's hiring notes",
        BOB,
    )?;
    as_user(GLOBEX, CAROL, &[])?;
    insert(
        "20000000-0000-4000-8000-000000000001",
        "globex: carol's roadmap",
        CAROL,
    )?;
    println!("wrote 3 tasks as tenant acme (alice, bob) and 1 as tenant globex (carol)\n");

    let show = |who: &str| -> Result<(), String> {
        let rows = db
            .query("SELECT title FROM tasks ORDER BY title", &[])
            .map_err(|e| e.to_string())?;
        println!("{who} sees {} task(s):", rows.rows.len());
        for row in rows.rows {
            if let Some(Value::Text(title)) = row.first() {
                println!("    {title}");
            }
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
    db.clear_context().map_err(|e| e.to_string())?;
    show("nobody (no tenant in context)")?;

    println!("\nalice (acme) renames her launch plan with an upsert:");
    as_user(ACME, ALICE, &[])?;
    let upsert = "INSERT INTO tasks (id, owner_id, title) VALUES (?1, ?2, ?3) \
                  ON CONFLICT (id) DO UPDATE SET title = excluded.title RETURNING title, tenant_id";
    let stored = db
        .query(
            upsert,
            &[
                text("10000000-0000-4000-8000-000000000001"),
                text(ALICE),
                text("acme: alice's launch plan, v2"),
            ],
        )
        .map_err(|e| e.to_string())?;
    for row in &stored.rows {
        if let [Value::Text(title), Value::Text(tenant)] = row.as_slice() {
            println!("    stored: {title} (tenant {tenant}, filled by DNR)");
        }
    }

    println!("\ncarol (globex) tries to write into acme:");
    as_user(GLOBEX, CAROL, &["admin"])?;
    let refused = db.execute(
        "INSERT INTO tasks (id, tenant_id, owner_id, title) VALUES (?1, ?2, ?3, 'planted by carol')",
        &[
            text("20000000-0000-4000-8000-000000000009"),
            text(ACME),
            text(CAROL),
        ],
    );
    match refused {
        Err(e) => println!("    insert with tenant_id = acme: refused: {e}"),
        Ok(_) => return Err("a cross-tenant insert was accepted".into()),
    }
    let changed = db
        .execute(
            "UPDATE tasks SET title = 'defaced' WHERE title LIKE 'acme:%'",
            &[],
        )
        .map_err(|e| e.to_string())?;
    println!("    update of acme's tasks: {changed} row(s) changed (they are invisible to her)");
    let overwrite = db.execute(
        upsert,
        &[
            text("10000000-0000-4000-8000-000000000002"),
            text(CAROL),
            text("overwritten by carol"),
        ],
    );
    // Keys are per tenant: acme's id is free in globex, so the upsert
    // writes globex's own row and acme's row is untouched.
    match overwrite {
        Ok(_) => println!(
            "    upsert with acme's task id: stored as globex's own row (keys are per tenant; acme's row is untouched)"
        ),
        Err(e) => return Err(format!("an upsert with another tenant's id failed: {e}")),
    }

    for attempt in [
        format!("SELECT dnr_set_tenant('{ACME}')"),
        "SELECT title FROM _dnr_tasks".to_string(),
    ] {
        match db.query(&attempt, &[]) {
            Err(e) => println!("    `{attempt}`: refused: {e}"),
            Ok(_) => return Err(format!("`{attempt}` was allowed on a locked connection")),
        }
    }

    as_user(ACME, ALICE, &[])?;
    show("\nalice (acme), afterwards,")?;
    Ok(())
}
