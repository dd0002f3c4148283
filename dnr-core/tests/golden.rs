//! Golden files of the compiled SQL: every example policy for every target.
//! Review changes with `cargo insta review` (or read the `.snap.new` files).
#![allow(clippy::panic, clippy::unwrap_used, clippy::expect_used)]

use dnr_core::compile::{compile, Target};

fn compiled(file: &str, target: Target) -> String {
    let path = format!("{}/../examples/{file}", env!("CARGO_MANIFEST_DIR"));
    let source =
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {path}: {e}"));
    let set = dnr_core::parse(&source).unwrap_or_else(|e| panic!("{}", e.render(&source, file)));
    compile(&set, target).unwrap_or_else(|e| panic!("{file}: {e}"))
}

macro_rules! golden {
    ($name:ident, $file:literal) => {
        mod $name {
            use super::*;

            #[test]
            fn postgres() {
                insta::assert_snapshot!(compiled($file, Target::Postgres));
            }

            #[test]
            fn postgres_plain() {
                insta::assert_snapshot!(compiled($file, Target::PostgresPlain));
            }

            #[test]
            fn postgres_citus() {
                let path = format!("{}/../examples/{}", env!("CARGO_MANIFEST_DIR"), $file);
                let source = std::fs::read_to_string(&path).unwrap();
                let set = dnr_core::parse(&source).unwrap();
                match compile(&set, Target::PostgresCitus) {
                    Ok(sql) => insta::assert_snapshot!(sql),
                    // Citus refuses subqueries in policies.
                    Err(e) => assert!(
                        e.to_string()
                            .contains("`exists` rules cannot be enforced on Citus"),
                        "{e}"
                    ),
                }
            }

            #[test]
            fn sqlite() {
                insta::assert_snapshot!(compiled($file, Target::Sqlite));
            }
        }
    };
}

golden!(tasks, "tasks.dnr");
golden!(crm, "crm.dnr");
golden!(hostile, "hostile.dnr");
golden!(teams, "teams.dnr");

/// Every example's compiled SQL splits into statements that, joined again,
/// are the whole script (nothing lost to the splitter's quote handling).
#[test]
fn compiled_sql_splits_into_its_statements() {
    use dnr_core::compile::postgres::statements;
    // Without comment lines, whitespace and semicolons.
    fn normalized(sql: &str) -> String {
        sql.lines()
            .filter(|l| !l.trim_start().starts_with("--"))
            .flat_map(|l| l.chars())
            .filter(|c| !c.is_whitespace() && *c != ';')
            .collect()
    }
    for file in ["tasks.dnr", "crm.dnr", "hostile.dnr", "teams.dnr"] {
        for target in [Target::Postgres, Target::PostgresPlain] {
            let sql = compiled(file, target);
            let parts = statements(&sql);
            let rejoined: String = parts.iter().map(|part| normalized(part)).collect();
            assert_eq!(rejoined, normalized(&sql), "{file}");
            for part in &parts {
                let first = normalized(part);
                assert!(
                    first.starts_with(|c: char| c.is_ascii_uppercase()),
                    "{file}: {part}"
                );
            }
        }
    }
    assert_eq!(
        statements("SELECT 'a;b'; -- c;\nDO $x$ BEGIN x; END $x$;\nSELECT \";\""),
        vec![
            "SELECT 'a;b'",
            "-- c;\nDO $x$ BEGIN x; END $x$",
            "SELECT \";\""
        ]
    );
}
