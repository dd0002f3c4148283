//! A context set in SQL lasts for its transaction (issue 27, point 9), in a
//! host that loads the extension as any other: rusqlite's pool-like reuse
//! of one connection, and a host that replaces DNR's transaction hooks.
mod common;

use common::{open_with_extension, root, ALICE, TENANT_A};

type Result<T = ()> = std::result::Result<T, Box<dyn std::error::Error>>;

fn tenant(conn: &rusqlite::Connection) -> Result<Option<String>> {
    Ok(conn.query_row("SELECT dnr_tenant()", [], |row| row.get(0))?)
}

fn count(conn: &rusqlite::Connection) -> Result<i64> {
    Ok(conn.query_row("SELECT count(*) FROM tasks", [], |row| row.get(0))?)
}

fn fixture(name: &str) -> Result<rusqlite::Connection> {
    let dir = root().join("target/context-tests");
    std::fs::create_dir_all(&dir)?;
    let path = dir.join(name);
    let _ = std::fs::remove_file(&path);
    let conn = open_with_extension(&path.to_string_lossy())?;
    let policy = std::fs::read_to_string(root().join("tests/sqlite/tasks.dnr"))?;
    conn.query_row("SELECT dnr_apply(?1)", [&policy], |_| Ok(()))?;
    conn.execute_batch(&format!(
        "BEGIN; SELECT dnr_set_context('{TENANT_A}', '{ALICE}');
         INSERT INTO tasks (id, owner_id, title) VALUES (1, '{ALICE}', 'a1'); COMMIT;"
    ))?;
    Ok(conn)
}

#[test]
fn the_next_request_on_a_connection_inherits_no_context() -> Result {
    let conn = fixture("next-request.db")?;
    // Request 1 reads, in its transaction; a write transaction as well.
    conn.execute_batch(&format!(
        "BEGIN; SELECT dnr_set_context('{TENANT_A}', '{ALICE}');"
    ))?;
    assert_eq!(count(&conn)?, 1);
    conn.execute_batch("COMMIT")?;
    // Request 2 sets nothing.
    assert_eq!(tenant(&conn)?, None);
    assert_eq!(count(&conn)?, 0);
    Ok(())
}

#[test]
fn a_host_that_replaces_dnrs_hooks_still_loses_the_context_at_commit() -> Result {
    let conn = fixture("replaced-hooks.db")?;
    // SAFETY: the handle is rusqlite's open connection; no hook is set.
    unsafe {
        dnr_sqlite::ffi::sqlite3_commit_hook(conn.handle(), None, std::ptr::null_mut());
        dnr_sqlite::ffi::sqlite3_rollback_hook(conn.handle(), None, std::ptr::null_mut());
    }
    conn.execute_batch(&format!(
        "BEGIN; SELECT dnr_set_context('{TENANT_A}', '{ALICE}');"
    ))?;
    assert_eq!(count(&conn)?, 1);
    conn.execute_batch("COMMIT")?;
    assert_eq!(tenant(&conn)?, None);
    assert_eq!(count(&conn)?, 0);
    conn.execute_batch(&format!(
        "BEGIN; SELECT dnr_set_context('{TENANT_A}', '{ALICE}');"
    ))?;
    conn.execute_batch("ROLLBACK")?;
    assert_eq!(count(&conn)?, 0);
    Ok(())
}
