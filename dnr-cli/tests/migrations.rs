//! Migration files are parsed with sqlparser before anything runs.
#![allow(clippy::panic, clippy::unwrap_used, clippy::expect_used)]

use dnr_cli::migrations::{checksum, load_dir, validate, Dialect};

fn refused(sql: &str, schema_mode: bool, expected: &str) {
    let error = validate(sql, Dialect::Postgres, schema_mode).unwrap_err();
    assert!(error.contains(expected), "{sql}: {error}");
}

#[test]
fn transaction_control_is_refused_everywhere() {
    for sql in [
        "BEGIN; CREATE TABLE a (x int); COMMIT;",
        "CREATE TABLE a (x int); COMMIT;",
        "START TRANSACTION; CREATE TABLE a (x int);",
        "CREATE TABLE a (x int); ROLLBACK;",
        "SAVEPOINT s; CREATE TABLE a (x int); RELEASE SAVEPOINT s;",
    ] {
        refused(sql, false, "transaction control");
        assert!(validate(sql, Dialect::Sqlite, false).is_err(), "{sql}");
    }
    refused("SET ROLE admin; DROP TABLE a;", false, "SET ROLE");
}

#[test]
fn schema_mode_keeps_a_migration_in_its_tenant_schema() {
    for (sql, expected) in [
        ("CREATE TABLE public.leak (x int);", "names another schema"),
        (
            "ALTER TABLE tenant_other.tasks ADD COLUMN x int;",
            "names another schema",
        ),
        (
            "INSERT INTO public.audit SELECT * FROM tasks;",
            "names another schema",
        ),
        (
            "UPDATE tasks SET x = (SELECT y FROM other.t LIMIT 1);",
            "names another schema",
        ),
        ("CREATE INDEX i ON other.tasks (x);", "names another schema"),
        ("SET search_path = other;", "search_path"),
        ("SET search_path TO other, public;", "search_path"),
        (
            "SELECT set_config('search_path', 'other', true);",
            "search_path",
        ),
        ("CREATE SCHEMA other;", "schema mode"),
    ] {
        refused(sql, true, expected);
    }
    // The same statements are fine where one database is migrated.
    validate("CREATE TABLE public.log (x int);", Dialect::Postgres, false).unwrap();
    validate("SET search_path = app;", Dialect::Postgres, false).unwrap();
    // Unqualified names and pg_catalog are fine in schema mode.
    validate(
        "ALTER TABLE tasks ADD COLUMN due date; CREATE INDEX tasks_due ON tasks (due);\n\
         UPDATE tasks SET due = pg_catalog.now()::date WHERE due IS NULL;",
        Dialect::Postgres,
        true,
    )
    .unwrap();
}

#[test]
fn unparsable_and_empty_files_are_refused() {
    refused("ALTER TABLE tasks ADD COLUMN;", false, "cannot parse");
    refused("-- nothing\n", false, "no statements");
}

#[test]
fn files_are_versioned_and_ordered() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("0002_b.sql"), "CREATE TABLE b (x int);").unwrap();
    std::fs::write(dir.path().join("0001_a.sql"), "CREATE TABLE a (x int);").unwrap();
    std::fs::write(dir.path().join("README.md"), "not a migration").unwrap();
    let loaded = load_dir(dir.path(), Dialect::Postgres, false).unwrap();
    let versions: Vec<_> = loaded
        .iter()
        .map(|m| (m.version, m.name.as_str()))
        .collect();
    assert_eq!(versions, vec![(1, "a"), (2, "b")]);
    assert_eq!(loaded[0].checksum, checksum("CREATE TABLE a (x int);"));
    // SHA-256, lowercase hex, as the extension computes it.
    assert_eq!(
        checksum("abc"),
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    );
    std::fs::write(dir.path().join("2_again.sql"), "CREATE TABLE c (x int);").unwrap();
    let error = load_dir(dir.path(), Dialect::Postgres, false).unwrap_err();
    assert!(error.contains("both have version 2"), "{error}");
    assert!(
        load_dir(&dir.path().join("missing"), Dialect::Postgres, false)
            .unwrap()
            .is_empty()
    );
}
