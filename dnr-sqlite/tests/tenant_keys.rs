//! Unique keys per tenant (issue 27, point 4): a table DNR creates in
//! `row_level` mode has `PRIMARY KEY (tenant_id, id)` and `UNIQUE
//! (tenant_id, email)`. Tenant B takes an id or an e-mail tenant A holds
//! (no duplicate-key error tells B that A has it; B cannot squat A's
//! values); a duplicate within one tenant is refused; `INSERT OR REPLACE`
//! and `ON CONFLICT (id)` (widened by the rewriter to the per-tenant key)
//! touch only the writer's own row; an omitted int key is numbered, as the
//! rowid numbered it before. A table whose keys are table-wide (the
//! application's own, or an earlier DNR's) keeps working, and its keys
//! still never let a write reach another tenant's row. Through DNR's Rust
//! connection (the rewriter) and through rusqlite loading the built
//! extension (the view's triggers, and `dnr_exec`).

mod common;

use common::{context, open_with_extension, ALICE, BOB, TENANT_A, TENANT_B};
use dnr_sqlite::{Connection, Value as V};

type Result<T = ()> = std::result::Result<T, Box<dyn std::error::Error>>;

const POLICY: &str = "tenancy:
  mode: row_level
  column: tenant_id

entity User:
  table: users
  id: int pk
  email: str unique
  name: str
  access:
    read: true
    write: true
    delete: true
";

/// Every stored row, as `tenant, id, email, name`, read without DNR.
fn stored(path: &std::path::Path) -> Result<Vec<(String, i64, String, String)>> {
    let conn = rusqlite::Connection::open(path)?;
    let mut stmt = conn.prepare(
        "SELECT tenant_id, id, coalesce(email, ''), coalesce(name, '') FROM _dnr_users ORDER BY tenant_id, id",
    )?;
    let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?;
    Ok(rows.collect::<std::result::Result<_, _>>()?)
}

fn row(tenant: &str, id: i64, email: &str, name: &str) -> (String, i64, String, String) {
    (tenant.into(), id, email.into(), name.into())
}

fn scratch(name: &str) -> Result<std::path::PathBuf> {
    let dir = common::root().join("target/sqlite-tests");
    std::fs::create_dir_all(&dir)?;
    let path = dir.join(name);
    let _ = std::fs::remove_file(&path);
    Ok(path)
}

/// The storage table's keys, as SQLite reports them.
fn keys(path: &std::path::Path) -> Result<String> {
    let conn = rusqlite::Connection::open(path)?;
    Ok(conn.query_row(
        "SELECT sql FROM sqlite_master WHERE name = '_dnr_users'",
        [],
        |r| r.get(0),
    )?)
}

#[test]
fn keys_are_per_tenant_through_the_rewriter() -> Result {
    let path = scratch("tenant_keys_rewriter.db")?;
    let db = Connection::open(&path)?;
    db.apply(POLICY)?;
    let sql = keys(&path)?;
    assert!(sql.contains("PRIMARY KEY (\"tenant_id\", \"id\")"), "{sql}");
    assert!(sql.contains("UNIQUE (\"tenant_id\", \"email\")"), "{sql}");
    let insert = "INSERT INTO users (id, email, name) VALUES (?, ?, ?)";

    db.set_context(context(TENANT_A, ALICE)?)?;
    db.execute(
        insert,
        &[V::Integer(1), "ceo@acme.example".into(), "A".into()],
    )?;
    // Tenant B: A's id and e-mail are free in B.
    db.set_context(context(TENANT_B, BOB)?)?;
    assert_eq!(
        db.execute(
            insert,
            &[V::Integer(1), "ceo@acme.example".into(), "B".into()]
        )?,
        1
    );
    // A duplicate within B is refused, on either key.
    for (id, email) in [(1, "other@b.example"), (2, "ceo@acme.example")] {
        let error = db
            .execute(insert, &[V::Integer(id), email.into(), "dup".into()])
            .err()
            .ok_or("a duplicate within the tenant was accepted")?;
        assert!(error.message().contains("UNIQUE"), "{error}");
    }
    // REPLACE and the upserts touch B's row only.
    assert_eq!(
        db.execute(
            "INSERT OR REPLACE INTO users (id, email, name) VALUES (1, 'ceo@acme.example', 'B replaced')",
            &[],
        )?,
        1
    );
    let upsert = "INSERT INTO users (id, email, name) VALUES (1, 'ceo@acme.example', ?) ON CONFLICT (id) DO UPDATE SET name = excluded.name RETURNING id, name";
    let rows = db.query(upsert, &["B upserted".into()])?;
    assert_eq!(rows.rows, vec![vec![V::Integer(1), "B upserted".into()]]);
    // Drizzle's form: the target qualified by the table.
    let drizzle = "INSERT INTO \"users\" (\"id\", \"email\", \"name\") VALUES (1, 'ceo@acme.example', 'B drizzle') ON CONFLICT (\"users\".\"id\") DO UPDATE SET \"name\" = excluded.\"name\"";
    assert_eq!(db.execute(drizzle, &[])?, 1);
    assert_eq!(
        db.execute(
            "INSERT INTO users (id, email, name) VALUES (5, 'ceo@acme.example', 'x') ON CONFLICT (email) DO NOTHING",
            &[],
        )?,
        0
    );
    // Omitted ids are numbered, rows of one statement apart.
    db.execute(
        "INSERT INTO users (email, name) VALUES ('n1', 'numbered')",
        &[],
    )?;
    db.execute(
        "INSERT INTO users (email, name) VALUES ('n2', 'several'), ('n3', 'several')",
        &[],
    )?;
    db.execute(
        "INSERT INTO users (id, email, name) VALUES (NULL, 'n4', 'null id')",
        &[],
    )?;
    assert_eq!(
        stored(&path)?,
        vec![
            row(TENANT_A, 1, "ceo@acme.example", "A"),
            row(TENANT_B, 1, "ceo@acme.example", "B drizzle"),
            row(TENANT_B, 4, "n1", "numbered"),
            row(TENANT_B, 5, "n2", "several"),
            row(TENANT_B, 6, "n3", "several"),
            row(TENANT_B, 7, "n4", "null id"),
        ]
    );
    drop(db);
    std::fs::remove_file(&path)?;
    Ok(())
}

#[test]
fn keys_are_per_tenant_through_the_loaded_extension() -> Result {
    let path = scratch("tenant_keys_extension.db")?;
    let conn = open_with_extension(&path.to_string_lossy())?;
    let summary: String = conn.query_row("SELECT dnr_apply(?1)", [POLICY], |r| r.get(0))?;
    assert!(summary.contains("users (created)"), "{summary}");
    let as_user = |tenant: &str, user: &str| -> Result {
        conn.query_row(
            "SELECT dnr_set_context(?1, ?2, NULL, 0)",
            [tenant, user],
            |_| Ok(()),
        )?;
        Ok(())
    };
    let insert = "INSERT INTO users (id, email, name) VALUES (?1, ?2, ?3)";
    as_user(TENANT_A, ALICE)?;
    conn.execute(insert, rusqlite::params![1, "ceo@acme.example", "A"])?;
    as_user(TENANT_B, BOB)?;
    conn.execute(insert, rusqlite::params![1, "ceo@acme.example", "B"])?;
    for (id, email) in [(1, "other@b.example"), (2, "ceo@acme.example")] {
        let error = conn
            .execute(insert, rusqlite::params![id, email, "dup"])
            .err()
            .ok_or("a duplicate within the tenant was accepted")?;
        assert!(error.to_string().contains("UNIQUE"), "{error}");
    }
    // Through the view's trigger: REPLACE replaces B's own row.
    conn.execute(
        "INSERT OR REPLACE INTO users (id, email, name) VALUES (1, 'ceo@acme.example', 'B replaced')",
        [],
    )?;
    // dnr_exec runs the rewriter: ON CONFLICT (id) on the per-tenant key.
    conn.query_row(
        "SELECT dnr_exec('INSERT INTO users (id, email, name) VALUES (1, ''ceo@acme.example'', ''B upserted'') ON CONFLICT (id) DO UPDATE SET name = excluded.name')",
        [],
        |_| Ok(()),
    )?;
    // An omitted id is numbered, and the new row's rowid is its id (an ORM
    // reads its key from last_insert_rowid(); counted writes report it).
    conn.query_row("SELECT dnr_count_changes()", [], |_| Ok(()))?;
    conn.execute(
        "INSERT INTO users (email, name) VALUES ('n1', 'numbered')",
        [],
    )?;
    let id = conn.last_insert_rowid();
    let name: String =
        conn.query_row("SELECT name FROM users WHERE id = ?1", [id], |r| r.get(0))?;
    assert_eq!(name, "numbered");
    // A given key is what last_insert_rowid() reports too (Django sets its
    // pk from it), whatever rowid the row got.
    conn.execute(
        "INSERT INTO users (id, email, name) VALUES (50, 'g', 'given')",
        [],
    )?;
    assert_eq!(conn.last_insert_rowid(), 50);
    assert_eq!(
        stored(&path)?,
        vec![
            row(TENANT_A, 1, "ceo@acme.example", "A"),
            row(TENANT_B, 1, "ceo@acme.example", "B upserted"),
            row(TENANT_B, id, "n1", "numbered"),
            row(TENANT_B, 50, "g", "given"),
        ]
    );
    drop(conn);
    std::fs::remove_file(&path)?;
    Ok(())
}

/// A table with table-wide keys (here the application's own, enforced as
/// it is; a storage table of an earlier DNR is the same to the compiler):
/// DNR keeps its keys, its guards keep other tenants' rows out of reach,
/// and `ON CONFLICT (id)` is left as written (a key matches it).
#[test]
fn table_wide_keys_keep_working() -> Result {
    let path = scratch("tenant_keys_table_wide.db")?;
    let db = Connection::open(&path)?;
    db.execute(
        "CREATE TABLE users (tenant_id TEXT NOT NULL, id INTEGER PRIMARY KEY, email TEXT UNIQUE, name TEXT)",
        &[],
    )?;
    db.apply(POLICY)?;
    let sql = keys(&path)?;
    assert!(sql.contains("id INTEGER PRIMARY KEY"), "{sql}");
    db.set_context(context(TENANT_A, ALICE)?)?;
    db.execute(
        "INSERT INTO users (id, email, name) VALUES (1, 'ceo@acme.example', 'A')",
        &[],
    )?;
    db.execute(
        "INSERT INTO users (email, name) VALUES ('a2', 'rowid')",
        &[],
    )?;
    db.set_context(context(TENANT_B, BOB)?)?;
    for write in [
        "INSERT INTO users (id, email, name) VALUES (1, 'b@b.example', 'B')",
        "INSERT OR REPLACE INTO users (id, email, name) VALUES (1, 'b@b.example', 'B')",
        "INSERT INTO users (id, email, name) VALUES (1, 'b@b.example', 'B') ON CONFLICT (id) DO UPDATE SET name = excluded.name",
    ] {
        assert!(db.execute(write, &[]).is_err(), "{write}");
    }
    assert_eq!(
        db.execute(
            "INSERT INTO users (id, email, name) VALUES (1, 'b@b.example', 'B') ON CONFLICT (id) DO NOTHING",
            &[],
        )?,
        0
    );
    assert_eq!(
        stored(&path)?,
        vec![
            row(TENANT_A, 1, "ceo@acme.example", "A"),
            row(TENANT_A, 2, "a2", "rowid"),
        ]
    );
    drop(db);
    std::fs::remove_file(&path)?;
    Ok(())
}

/// What `dnr_apply` reads of an enforced table before compiling (its
/// columns and unique keys, as `policy.rs` reads them) and the SQL of the
/// table and its indexes, which lets the compiler rebuild it.
fn introspected(
    conn: &rusqlite::Connection,
    table: &str,
) -> Result<dnr_core::compile::SqliteSchema> {
    use dnr_core::compile::{SqliteColumn, SqliteSchema, SqliteTable, StorageSql};
    let storage = format!("_dnr_{table}");
    let mut stmt = conn.prepare(
        "SELECT name, pk, dflt_value, type FROM pragma_table_info(?1, 'main') ORDER BY cid",
    )?;
    let mut primary: Vec<(i64, String)> = Vec::new();
    let columns = stmt
        .query_map([&storage], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, Option<String>>(2)?,
                r.get::<_, String>(3)?,
            ))
        })?
        .collect::<std::result::Result<Vec<_>, _>>()?
        .into_iter()
        .map(|(name, pk, default, declared_type)| {
            if pk > 0 {
                primary.push((pk, name.clone()));
            }
            SqliteColumn {
                name,
                primary_key: pk > 0,
                default: default.map(|d| format!("({d})")),
                declared_type,
            }
        })
        .collect();
    primary.sort();
    let mut unique_keys: Vec<Vec<String>> = Vec::new();
    if !primary.is_empty() {
        unique_keys.push(primary.into_iter().map(|(_, c)| c).collect());
    }
    let mut stmt = conn.prepare(
        "SELECT name FROM pragma_index_list(?1, 'main') WHERE \"unique\" = 1 ORDER BY seq DESC",
    )?;
    let indexes = stmt
        .query_map([&storage], |r| r.get::<_, String>(0))?
        .collect::<std::result::Result<Vec<_>, _>>()?;
    for index in indexes {
        let mut stmt =
            conn.prepare("SELECT name FROM pragma_index_info(?1, 'main') ORDER BY seqno")?;
        let key = stmt
            .query_map([&index], |r| r.get::<_, String>(0))?
            .collect::<std::result::Result<Vec<_>, _>>()?;
        if !unique_keys.contains(&key) {
            unique_keys.push(key);
        }
    }
    let sql: String = conn.query_row(
        "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?1",
        [&storage],
        |r| r.get(0),
    )?;
    let mut stmt = conn.prepare(
        "SELECT sql FROM sqlite_master WHERE type = 'index' AND tbl_name = ?1 AND sql IS NOT NULL ORDER BY name",
    )?;
    let index_sql = stmt
        .query_map([&storage], |r| r.get::<_, String>(0))?
        .collect::<std::result::Result<Vec<_>, _>>()?;
    let mut schema = SqliteSchema::default();
    schema.tables.insert(
        table.into(),
        SqliteTable {
            columns,
            enforced: true,
            unique_keys,
        },
    );
    schema.storage_sql.insert(
        table.into(),
        StorageSql {
            table: sql,
            indexes: index_sql,
        },
    );
    Ok(schema)
}

/// The upgrade: a storage table with the table-wide keys an earlier DNR
/// created (`PRIMARY KEY ("id")`, `"email" TEXT UNIQUE`), rows in two
/// tenants, a column and an index a migration added, is rebuilt by the
/// compiled apply with per-tenant keys: rows (and their rowids), the
/// migrated column and the index are kept, and B may then take A's id and
/// e-mail.
#[test]
fn an_earlier_storage_table_is_rebuilt_with_per_tenant_keys() -> Result {
    let path = scratch("tenant_keys_upgrade.db")?;
    let db = Connection::open(&path)?;
    // The table as DNR created it before keys were per tenant.
    db.execute(
        "CREATE TABLE \"users\" (\n  \"tenant_id\" TEXT NOT NULL,\n  \"id\" INTEGER,\n  \"email\" TEXT UNIQUE,\n  \"name\" TEXT,\n  PRIMARY KEY (\"id\")\n)",
        &[],
    )?;
    db.apply(POLICY)?;
    db.migrate(
        "ALTER TABLE users ADD COLUMN due TEXT; CREATE INDEX users_by_name ON users (name)",
    )?;
    db.set_context(context(TENANT_A, ALICE)?)?;
    db.execute(
        "INSERT INTO users (id, email, name) VALUES (1, 'ceo@acme.example', 'A')",
        &[],
    )?;
    db.set_context(context(TENANT_B, BOB)?)?;
    db.execute(
        "INSERT INTO users (email, name) VALUES ('b@b.example', 'B')",
        &[],
    )?;
    // Table-wide: A's id is taken for B.
    assert!(db
        .execute(
            "INSERT INTO users (id, email, name) VALUES (1, 'x', 'x')",
            &[]
        )
        .is_err());
    drop(db);

    // The compiled apply, with what dnr_apply reads of the table.
    let conn = open_with_extension(&path.to_string_lossy())?;
    let set = dnr_core::parse(POLICY).map_err(|e| format!("{e:?}"))?;
    let schema = introspected(&conn, "users")?;
    let sql = dnr_core::compile::sqlite::compile(&set, &schema)?;
    assert!(sql.contains("DROP TABLE \"_dnr_users\";"), "{sql}");
    conn.execute_batch(&format!("SAVEPOINT dnr_apply; {sql} RELEASE dnr_apply;"))?;
    let create: String = conn.query_row(
        "SELECT sql FROM sqlite_master WHERE name = '_dnr_users'",
        [],
        |r| r.get(0),
    )?;
    assert_eq!(
        create,
        "CREATE TABLE \"_dnr_users\" (\n  \"tenant_id\" TEXT NOT NULL,\n  \"id\" INTEGER,\n  \"email\" TEXT,\n  \"name\" TEXT, due TEXT,\n  PRIMARY KEY (\"tenant_id\", \"id\"),\n  UNIQUE (\"tenant_id\", \"email\")\n)"
    );
    let indexes: Vec<String> = conn
        .prepare("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = '_dnr_users' AND sql IS NOT NULL ORDER BY name")?
        .query_map([], |r| r.get(0))?
        .collect::<std::result::Result<_, _>>()?;
    assert_eq!(indexes, ["_dnr_users_tenant_id_idx", "users_by_name"]);
    let rowids: Vec<(i64, i64)> = conn
        .prepare("SELECT rowid, id FROM _dnr_users ORDER BY rowid")?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<std::result::Result<_, _>>()?;
    assert_eq!(rowids, [(1, 1), (2, 2)]);
    drop(conn);

    // Applied again (as dnr_apply would): nothing left to rebuild.
    let conn = open_with_extension(&path.to_string_lossy())?;
    let again = dnr_core::compile::sqlite::compile(&set, &introspected(&conn, "users")?)?;
    assert!(!again.contains("DROP TABLE"), "{again}");
    drop(conn);

    let db = Connection::open(&path)?;
    db.set_context(context(TENANT_B, BOB)?)?;
    db.execute(
        "INSERT INTO users (id, email, name) VALUES (1, 'ceo@acme.example', 'B takes 1')",
        &[],
    )?;
    db.execute(
        "INSERT INTO users (id, email, name) VALUES (1, 'b2', 'upserted') ON CONFLICT (id) DO UPDATE SET name = excluded.name",
        &[],
    )?;
    db.execute(
        "INSERT INTO users (email, name) VALUES ('n', 'numbered')",
        &[],
    )?;
    assert_eq!(
        stored(&path)?,
        vec![
            row(TENANT_A, 1, "ceo@acme.example", "A"),
            row(TENANT_B, 1, "ceo@acme.example", "upserted"),
            row(TENANT_B, 2, "b@b.example", "B"),
            row(TENANT_B, 4, "n", "numbered"),
        ]
    );
    drop(db);
    std::fs::remove_file(&path)?;
    Ok(())
}
