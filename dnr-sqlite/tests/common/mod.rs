//! What the SQLite host tests share: the fixture's tenants and users, the
//! repository root, and the two-world setup of the attack tests.
#![allow(dead_code)] // Each test crate uses its own part.

use std::path::{Path, PathBuf};

use dnr_core::TenantContext;
use dnr_sqlite::Connection;

pub const TENANT_A: &str = "aaaaaaaa-0000-0000-0000-000000000001";
pub const TENANT_B: &str = "bbbbbbbb-0000-0000-0000-000000000002";
pub const ALICE: &str = "00000000-0000-0000-0000-00000000a11c";
pub const BOB: &str = "00000000-0000-0000-0000-000000000b0b";

/// The title tenant B guesses; tenant A holds it in one world only.
pub const GUESS: &str = "zq-guess";

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

pub fn context(tenant: &str, user: &str) -> Result<TenantContext, dnr_sqlite::Error> {
    TenantContext::parse(Some(tenant), Some(user), &[])
        .map_err(|e| dnr_sqlite::Error::new(e.to_string()))
}

/// A database file where tenant A's first title is `a_title` (its other
/// row is `a2-secret`) and tenant B has rows 10 and 3; policy
/// `tests/sqlite/tasks.dnr`. Returns an unlocked connection to it.
pub fn world(path: &Path, a_title: &str) -> Result<Connection, dnr_sqlite::Error> {
    let _ = std::fs::remove_file(path);
    let db = Connection::open(path)?;
    let policy = std::fs::read_to_string(root().join("tests/sqlite/tasks.dnr"))
        .map_err(|e| dnr_sqlite::Error::new(e.to_string()))?;
    db.apply(&policy)?;
    db.set_context(context(TENANT_A, ALICE)?)?;
    db.execute(
        "INSERT INTO tasks (id, owner_id, title, code) VALUES (1, ?1, ?2, 'ca'), (2, ?1, 'a2-secret', 'cb')",
        &[ALICE.into(), a_title.into()],
    )?;
    db.set_context(context(TENANT_B, BOB)?)?;
    db.execute(
        "INSERT INTO tasks (id, owner_id, title, code) VALUES (10, ?1, 'b10', 'c10'), (3, ?1, 'b3', 'c3')",
        &[BOB.into()],
    )?;
    Ok(db)
}

/// A rusqlite connection with the built extension loaded, or a clear error.
pub fn open_with_extension(path: &str) -> Result<rusqlite::Connection, Box<dyn std::error::Error>> {
    let library = root().join("target/release/libdnr.so");
    if !library.exists() {
        return Err(format!(
            "{} is missing: build it first with `cargo build --release -p dnr-sqlite-ext` (scripts/sqlite-test.sh does)",
            library.display()
        )
        .into());
    }
    let conn = rusqlite::Connection::open(path)?;
    // SAFETY: loading DNR's own extension, built from this workspace.
    unsafe {
        conn.load_extension_enable()?;
        conn.load_extension(library.with_extension(""), None::<&str>)?;
        conn.load_extension_disable()?;
    }
    Ok(conn)
}
