//! `dnr demo`: two tenants on embedded SQLite, each seeing only its own rows.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use dnr_core::context::parse_optional_uuid;
use dnr_core::TenantContext;
use rusqlite::functions::FunctionFlags;
use rusqlite::{params, Connection};

const POLICY: &str = include_str!("../../examples/tasks.dnr");

const ACME: &str = "a0000000-0000-4000-8000-00000000000a";
const GLOBEX: &str = "b0000000-0000-4000-8000-00000000000b";
const ALICE: &str = "00000000-0000-4000-8000-0000000a11ce";
const BOB: &str = "00000000-0000-4000-8000-000000000b0b";
const CAROL: &str = "00000000-0000-4000-8000-0000000ca201";

type Context = Arc<Mutex<TenantContext>>;

/// The context, even if a panic elsewhere poisoned the lock (it holds plain data).
fn lock(context: &Context) -> MutexGuard<'_, TenantContext> {
    context.lock().unwrap_or_else(PoisonError::into_inner)
}

pub fn run() -> Result<(), String> {
    let conn = Connection::open_in_memory().map_err(|e| e.to_string())?;
    let context: Context = Arc::default();
    register_context_functions(&conn, &context).map_err(|e| e.to_string())?;

    let set = dnr_core::parse(POLICY).map_err(|e| e.render(POLICY, "examples/tasks.dnr"))?;
    let sql = dnr_core::compile::compile(&set, dnr_core::compile::Target::Sqlite)
        .map_err(|e| e.to_string())?;
    conn.execute_batch(&format!("BEGIN;\n{sql}\nCOMMIT;"))
        .map_err(|e| e.to_string())?;
    println!("applied examples/tasks.dnr to an in-memory SQLite database\n");

    let as_user = |tenant: &str, user: &str, roles: &[&str]| -> Result<(), String> {
        *lock(&context) =
            TenantContext::parse(Some(tenant), Some(user), roles).map_err(|e| e.to_string())?;
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
    *lock(&context) = TenantContext::default();
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

    as_user(ACME, ALICE, &[])?;
    show("\nalice (acme), afterwards,")?;
    Ok(())
}

/// The context readers the compiled policies call. The SQLite extension
/// registers the same functions on every connection that loads it.
fn register_context_functions(conn: &Connection, context: &Context) -> rusqlite::Result<()> {
    let flags = FunctionFlags::SQLITE_UTF8 | FunctionFlags::SQLITE_INNOCUOUS;
    let ctx = Arc::clone(context);
    conn.create_scalar_function("dnr_tenant", 0, flags, move |_| {
        Ok(lock(&ctx).tenant.map(|t| t.hyphenated().to_string()))
    })?;
    let ctx = Arc::clone(context);
    conn.create_scalar_function("dnr_user", 0, flags, move |_| {
        Ok(lock(&ctx).user.map(|u| u.hyphenated().to_string()))
    })?;
    let ctx = Arc::clone(context);
    conn.create_scalar_function("dnr_has_role", 1, flags, move |f| {
        let role: String = f.get(0)?;
        Ok(lock(&ctx).has_role(&role))
    })?;
    let ctx = Arc::clone(context);
    conn.create_scalar_function("dnr_authenticated", 0, flags, move |_| {
        Ok(lock(&ctx).authenticated())
    })?;
    conn.create_scalar_function(
        "dnr_uuid",
        1,
        flags | FunctionFlags::SQLITE_DETERMINISTIC,
        |f| {
            let text: Option<String> = f.get(0)?;
            match parse_optional_uuid(text.as_deref()) {
                Ok(uuid) => Ok(uuid.map(|u| u.hyphenated().to_string())),
                Err(e) => Err(rusqlite::Error::UserFunctionError(
                    format!("dnr: {e}").into(),
                )),
            }
        },
    )?;
    Ok(())
}
