//! `dnr apply`, `tenants`, `migrate`, `status` and `explain` on real SQLite
//! files, as a user runs them (the `dnr` binary in a project directory).
#![allow(clippy::panic, clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use dnr_cli::project::Project;
use dnr_cli::route::Router;
use dnr_sqlite::{Connection, Value};
use uuid::Uuid;

const POLICY: &str = "\
tenancy:
  mode: MODE

entity Task:
  table: tasks
  id: int pk
  title: text
  owner_id: uuid
  access:
    read: true
    create: owner_id = current_user
    update: owner_id = current_user
";

struct Project_ {
    dir: tempfile::TempDir,
}

impl Project_ {
    fn new(mode: &str) -> Project_ {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("dnr.toml"),
            format!("[database]\nbackend = \"sqlite\"\ntenant_mode = \"{mode}\"\n"),
        )
        .unwrap();
        std::fs::write(
            dir.path().join("policies.dnr"),
            POLICY.replace("MODE", mode),
        )
        .unwrap();
        std::fs::create_dir(dir.path().join("migrations")).unwrap();
        Project_ { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn migration(&self, file: &str, sql: &str) {
        std::fs::write(self.path().join("migrations").join(file), sql).unwrap();
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_dnr"));
        command.args(args).current_dir(self.path());
        command
    }

    fn dnr(&self, args: &[&str]) -> Output {
        self.command(args).output().unwrap()
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.dnr(args);
        assert!(
            out.status.success(),
            "dnr {args:?}: {}\n{}",
            text(&out.stdout),
            text(&out.stderr)
        );
        text(&out.stdout)
    }

    fn tenant_file(&self, id: &str) -> PathBuf {
        self.path().join(".dnr/tenants").join(id).join("data.db")
    }

    /// The versions a store recorded, in order.
    fn history(&self, file: &Path) -> Vec<i64> {
        let db = Connection::open(file).unwrap();
        let exists = db
            .query(
                "SELECT 1 FROM sqlite_master WHERE name = '_dnr_:migrations'",
                &[],
            )
            .unwrap();
        if exists.rows.is_empty() {
            return Vec::new();
        }
        db.query(
            "SELECT version FROM \"_dnr_:migrations\" ORDER BY version",
            &[],
        )
        .unwrap()
        .rows
        .into_iter()
        .map(|row| match row[0] {
            Value::Integer(v) => v,
            ref other => panic!("{other:?}"),
        })
        .collect()
    }

    fn columns(&self, file: &Path, table: &str) -> Vec<String> {
        let db = Connection::open(file).unwrap();
        db.query(
            "SELECT name FROM pragma_table_info(?) ORDER BY cid",
            &[Value::Text(table.into())],
        )
        .unwrap()
        .rows
        .into_iter()
        .map(|row| match &row[0] {
            Value::Text(name) => name.clone(),
            other => panic!("{other:?}"),
        })
        .collect()
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn ids(n: usize) -> Vec<String> {
    (0..n).map(|_| Uuid::new_v4().to_string()).collect()
}

fn json_lines(out: &str) -> Vec<serde_json::Value> {
    out.lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}

#[test]
fn database_mode_creates_lists_migrates_and_drops_tenants() {
    let p = Project_::new("database");
    p.migration("0001_due.sql", "ALTER TABLE tasks ADD COLUMN due TEXT;\n");
    let tenants = ids(3);
    let args: Vec<&str> = ["tenants", "create"]
        .into_iter()
        .chain(tenants.iter().map(String::as_str))
        .collect();
    p.ok(&args);
    p.ok(&[
        "tenants",
        "create",
        &Uuid::new_v4().to_string(),
        "--name",
        "Acme",
    ]);
    let listed = json_lines(&p.ok(&["tenants", "list", "--json"]));
    assert_eq!(listed.len(), 4);
    assert!(listed.iter().any(|t| t["name"] == "Acme"));
    // Each new tenant has the policy and every migration.
    for id in &tenants {
        let file = p.tenant_file(id);
        assert_eq!(p.history(&file), vec![1]);
        assert!(p.columns(&file, "_dnr_tasks").contains(&"due".to_string()));
    }
    // --tenant migrates that tenant's store only.
    p.migration(
        "0002_prio.sql",
        "ALTER TABLE tasks ADD COLUMN prio INTEGER;\n",
    );
    let one = json_lines(&p.ok(&["migrate", "--tenant", &tenants[2], "--json"]));
    assert_eq!(one.len(), 2, "{one:?}");
    assert_eq!(one[0]["tenant"], tenants[2].as_str());
    assert_eq!(p.history(&p.tenant_file(&tenants[2])), vec![1, 2]);
    assert_eq!(p.history(&p.tenant_file(&tenants[0])), vec![1]);
    let unknown = p.dnr(&["migrate", "--tenant", &Uuid::new_v4().to_string()]);
    assert!(text(&unknown.stderr).contains("unknown tenant"));
    // The next run reaches every other tenant, once.
    let events = json_lines(&p.ok(&["migrate", "--json"]));
    let applied = events.iter().filter(|e| e["status"] == "applied").count();
    assert_eq!(applied, 3, "{events:?}");
    let rerun = json_lines(&p.ok(&["migrate", "--json"]));
    assert_eq!(
        rerun.iter().filter(|e| e["status"] == "up_to_date").count(),
        4
    );
    // The tenant's own rows, through the routing API.
    let router = Router::new(Project::load(Some(&p.path().join("dnr.toml"))).unwrap());
    let (a, b) = (
        Uuid::parse_str(&tenants[0]).unwrap(),
        Uuid::parse_str(&tenants[1]).unwrap(),
    );
    let user = Uuid::new_v4();
    let db = router.sqlite(a, Some(user)).unwrap();
    db.execute(
        "INSERT INTO tasks (id, title, owner_id, prio) VALUES (1, 'a', ?, 3)",
        &[Value::Text(user.to_string())],
    )
    .unwrap();
    let other = router.sqlite(b, Some(user)).unwrap();
    assert!(other
        .query("SELECT * FROM tasks", &[])
        .unwrap()
        .rows
        .is_empty());
    assert!(router.sqlite(Uuid::new_v4(), None).is_err());
    // Drop removes the store.
    p.ok(&["tenants", "drop", &tenants[2]]);
    assert!(!p.tenant_file(&tenants[2]).exists());
    assert_eq!(json_lines(&p.ok(&["tenants", "list", "--json"])).len(), 3);
    let again = p.dnr(&["tenants", "drop", &tenants[2]]);
    assert!(!again.status.success());
    assert!(text(&again.stderr).contains("unknown tenant"));
    let dup = p.dnr(&["tenants", "create", &tenants[0]]);
    assert!(!dup.status.success());
    assert!(
        text(&dup.stderr).contains("exists"),
        "{}",
        text(&dup.stderr)
    );
}

/// Issue 27, point 9: a tenant's own file (database mode) refuses a
/// context of another tenant, from the host and from SQL; a file moved
/// into another tenant's place is refused by `dnr migrate` and the router.
#[test]
fn a_tenant_file_takes_no_context_of_another_tenant() {
    let p = Project_::new("database");
    let tenants = ids(2);
    p.ok(&["tenants", "create", &tenants[0], &tenants[1]]);
    let (a, b) = (
        Uuid::parse_str(&tenants[0]).unwrap(),
        Uuid::parse_str(&tenants[1]).unwrap(),
    );
    let db = Connection::open(p.tenant_file(&tenants[0])).unwrap();
    assert_eq!(db.dnr().database_tenant().unwrap(), Some(a));
    let context = |tenant: Uuid| {
        dnr_core::TenantContext::parse(Some(&tenant.to_string()), None, &[]).unwrap()
    };
    let refused = db.set_context(context(b)).unwrap_err();
    assert!(
        refused.message().contains(&format!(
            "belongs to tenant {a}: a context of tenant {b} is refused"
        )),
        "{}",
        refused.message()
    );
    for sql in [
        format!("SELECT dnr_set_context('{b}')"),
        format!("SELECT dnr_set_context('{b}', NULL, NULL, 0)"),
        format!("SELECT dnr_set_tenant('{b}', 0)"),
    ] {
        let error = db.query(&sql, &[]).unwrap_err();
        assert!(error.message().contains("is refused"), "{sql}: {error}");
    }
    assert_eq!(db.dnr().context(), dnr_core::TenantContext::default());
    db.set_context(context(a)).unwrap();
    assert!(db.dnr().bind_tenant(b).is_err());
    drop(db);
    // Tenant a's file put in b's place: b's store is refused, not served.
    std::fs::copy(p.tenant_file(&tenants[0]), p.tenant_file(&tenants[1])).unwrap();
    let out = p.dnr(&["migrate", "--tenant", &tenants[1]]);
    assert!(!out.status.success());
    let report = format!("{}{}", text(&out.stdout), text(&out.stderr));
    assert!(
        report.contains(&format!("belongs to tenant {a}, not {b}")),
        "{report}"
    );
    let router = Router::new(Project::load(Some(&p.path().join("dnr.toml"))).unwrap());
    assert!(router.sqlite(b, None).is_err());
    assert!(router.sqlite(a, None).is_ok());
}

#[test]
fn a_failing_migration_stops_its_tenant_only_and_the_report_says_so() {
    let p = Project_::new("database");
    let tenants = ids(4);
    let mut args = vec!["tenants", "create"];
    args.extend(tenants.iter().map(String::as_str));
    p.ok(&args);
    // One tenant already has what the migration creates.
    let broken = p.tenant_file(&tenants[1]);
    Connection::open(&broken)
        .unwrap()
        .execute("CREATE TABLE notes (x INTEGER)", &[])
        .unwrap();
    p.migration("0001_notes.sql", "CREATE TABLE notes (x INTEGER);\n");
    p.migration("0002_more.sql", "ALTER TABLE tasks ADD COLUMN more TEXT;\n");
    let out = p.dnr(&["migrate", "--json"]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("1 of 4 stores failed"),
        "{}",
        text(&out.stderr)
    );
    let events = json_lines(&text(&out.stdout));
    let failed: Vec<_> = events.iter().filter(|e| e["status"] == "failed").collect();
    assert_eq!(failed.len(), 1, "{events:?}");
    assert_eq!(failed[0]["tenant"], tenants[1].as_str());
    assert_eq!(failed[0]["failed_version"], 1);
    assert!(failed[0]["error"].as_str().unwrap().contains("notes"));
    let summary = events.last().unwrap();
    assert_eq!(summary["applied"], 3);
    assert_eq!(summary["failed"], 1);
    for (index, id) in tenants.iter().enumerate() {
        let expected: Vec<i64> = if index == 1 { vec![] } else { vec![1, 2] };
        assert_eq!(p.history(&p.tenant_file(id)), expected);
    }
    // The failed migration left nothing behind in its tenant.
    assert!(!p
        .columns(&broken, "_dnr_tasks")
        .contains(&"more".to_string()));
    // Fixed, a rerun finishes that tenant and leaves the others alone.
    Connection::open(&broken)
        .unwrap()
        .execute("DROP TABLE notes", &[])
        .unwrap();
    let events = json_lines(&p.ok(&["migrate", "--json"]));
    assert_eq!(
        events.iter().filter(|e| e["status"] == "applied").count(),
        1
    );
    for id in &tenants {
        assert_eq!(p.history(&p.tenant_file(id)), vec![1, 2]);
    }
}

#[test]
fn drift_is_refused_per_store_and_status_shows_it() {
    let p = Project_::new("database");
    let tenants = ids(2);
    p.migration("0001_due.sql", "ALTER TABLE tasks ADD COLUMN due TEXT;\n");
    p.ok(&["tenants", "create", &tenants[0]]);
    // The file changes after tenant 0 recorded it; tenant 1 is new.
    p.migration(
        "0001_due.sql",
        "ALTER TABLE tasks ADD COLUMN due INTEGER;\n",
    );
    p.migration(
        "0002_prio.sql",
        "ALTER TABLE tasks ADD COLUMN prio INTEGER;\n",
    );
    let created = p.dnr(&["tenants", "create", &tenants[1]]);
    assert!(created.status.success(), "{}", text(&created.stderr));
    let out = p.dnr(&["migrate", "--json"]);
    assert!(!out.status.success());
    let events = json_lines(&text(&out.stdout));
    let drift: Vec<_> = events.iter().filter(|e| e["status"] == "drift").collect();
    assert_eq!(drift.len(), 1, "{events:?}");
    assert_eq!(drift[0]["tenant"], tenants[0].as_str());
    assert!(drift[0]["error"].as_str().unwrap().contains("checksum"));
    // Nothing ran in the drifted store.
    assert_eq!(p.history(&p.tenant_file(&tenants[0])), vec![1]);
    assert_eq!(p.history(&p.tenant_file(&tenants[1])), vec![1, 2]);
    let status = p.dnr(&["status", "--json"]);
    assert!(!status.status.success());
    let rows = json_lines(&text(&status.stdout));
    let row = rows
        .iter()
        .find(|r| r["tenant"] == tenants[0].as_str())
        .unwrap();
    assert!(row["drift"].as_str().unwrap().contains("version 1"));
    assert_eq!(row["pending"], serde_json::json!([2]));
    assert_eq!(row["policy"], "current");
}

#[test]
fn dry_run_changes_nothing() {
    let p = Project_::new("database");
    let tenant = Uuid::new_v4().to_string();
    p.ok(&["tenants", "create", &tenant]);
    let file = p.tenant_file(&tenant);
    let before = std::fs::read(&file).unwrap();
    p.migration("0001_due.sql", "ALTER TABLE tasks ADD COLUMN due TEXT;\n");
    p.migration("0002_idx.sql", "CREATE INDEX tasks_due ON tasks (due);\n");
    let events = json_lines(&p.ok(&["migrate", "--dry-run", "--json"]));
    assert_eq!(events[0]["status"], "would_apply");
    assert_eq!(events[0]["versions"], serde_json::json!([1, 2]));
    assert_eq!(std::fs::read(&file).unwrap(), before);
    assert!(p.history(&file).is_empty());
    // A dry run reports the failure a real run would meet.
    p.migration("0003_bad.sql", "ALTER TABLE tasks ADD COLUMN due TEXT;\n");
    let out = p.dnr(&["migrate", "--dry-run", "--json"]);
    assert!(!out.status.success());
    assert_eq!(std::fs::read(&file).unwrap(), before);
}

#[test]
fn row_level_mode_keeps_a_registry_and_migrates_the_shared_database() {
    let p = Project_::new("row_level");
    p.ok(&["apply"]);
    p.migration("0001_due.sql", "ALTER TABLE tasks ADD COLUMN due TEXT;\n");
    let tenants = ids(2);
    p.ok(&["tenants", "create", &tenants[0], "--name", "Acme"]);
    p.ok(&["tenants", "create", &tenants[1]]);
    let listed = p.ok(&["tenants", "list"]);
    assert!(
        listed.contains(&format!("{}\tAcme", tenants[0])),
        "{listed}"
    );
    let shared = p.path().join(".dnr/data.db");
    assert_eq!(p.history(&shared), vec![1]);
    let status = p.ok(&["status"]);
    assert!(status.contains("database\tcurrent\t1\t0\t-"), "{status}");
    // Tenants share the file and see only their rows.
    let router = Router::new(Project::load(Some(&p.path().join("dnr.toml"))).unwrap());
    let user = Uuid::new_v4();
    let a = router
        .sqlite(Uuid::parse_str(&tenants[0]).unwrap(), Some(user))
        .unwrap();
    a.execute(
        "INSERT INTO tasks (id, title, owner_id, due) VALUES (1, 'a', ?, 'mon')",
        &[Value::Text(user.to_string())],
    )
    .unwrap();
    let b = router
        .sqlite(Uuid::parse_str(&tenants[1]).unwrap(), Some(user))
        .unwrap();
    assert!(b.query("SELECT * FROM tasks", &[]).unwrap().rows.is_empty());
    assert_eq!(a.query("SELECT due FROM tasks", &[]).unwrap().rows.len(), 1);
    // explain asks the database, under the given context.
    let row = format!("{{\"id\": 2, \"title\": \"x\", \"owner_id\": \"{user}\"}}");
    let allowed = p.ok(&[
        "explain",
        "Task",
        "create",
        "--as",
        &format!("{}:{user}", tenants[0]),
        "--row",
        &row,
    ]);
    assert!(allowed.starts_with("allowed: "), "{allowed}");
    let other = Uuid::new_v4();
    let refused = p.ok(&[
        "explain",
        "Task",
        "create",
        "--as",
        &format!("{}:{other}", tenants[0]),
        "--row",
        &row,
    ]);
    assert!(refused.starts_with("refused: "), "{refused}");
    assert!(refused.contains("owner_id = current_user"), "{refused}");
    p.ok(&["tenants", "drop", &tenants[1]]);
    assert!(!p.ok(&["tenants", "list"]).contains(&tenants[1]));
    // A tenant whose migrations fail is not registered.
    p.migration("0002_bad.sql", "ALTER TABLE missing ADD COLUMN x TEXT;\n");
    let late = Uuid::new_v4().to_string();
    let out = p.dnr(&["tenants", "create", &late]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("not created"),
        "{}",
        text(&out.stderr)
    );
    assert!(!p.ok(&["tenants", "list"]).contains(&late));
}

#[test]
fn a_tenant_whose_migrations_fail_leaves_nothing_behind() {
    let p = Project_::new("database");
    p.migration("0001_due.sql", "ALTER TABLE tasks ADD COLUMN due TEXT;\n");
    p.migration("0002_bad.sql", "ALTER TABLE missing ADD COLUMN x TEXT;\n");
    let id = Uuid::new_v4().to_string();
    let out = p.dnr(&["tenants", "create", &id]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("missing"),
        "{}",
        text(&out.stderr)
    );
    let left: Vec<_> = std::fs::read_dir(p.path().join(".dnr/tenants"))
        .unwrap()
        .map(|entry| entry.unwrap().file_name())
        .collect();
    assert!(left.is_empty(), "{left:?}");
    assert!(p.ok(&["tenants", "list"]).is_empty());
}

#[test]
fn a_killed_run_resumes_and_applies_every_migration_exactly_once() {
    let p = Project_::new("database");
    let tenants = ids(200);
    let mut args = vec!["tenants", "create", "--json"];
    args.extend(tenants.iter().map(String::as_str));
    p.ok(&args);
    for version in 1..=4 {
        p.migration(
            &format!("{version:04}_c{version}.sql"),
            &format!("ALTER TABLE tasks ADD COLUMN c{version} TEXT;\nCREATE INDEX tasks_c{version} ON tasks (c{version});\n"),
        );
    }
    let mut child = p
        .command(&["migrate", "--json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Killed once some stores are done and others are under way.
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    for _ in 0..20 {
        lines.next().unwrap().unwrap();
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let migrated = tenants
        .iter()
        .filter(|id| p.history(&p.tenant_file(id)) == vec![1, 2, 3, 4])
        .count();
    assert!(
        (20..200).contains(&migrated),
        "{migrated} stores were migrated before the kill"
    );
    p.ok(&["migrate", "--json"]);
    for id in &tenants {
        let file = p.tenant_file(id);
        assert_eq!(p.history(&file), vec![1, 2, 3, 4], "{id}");
        let columns = p.columns(&file, "_dnr_tasks");
        for version in 1..=4 {
            let column = format!("c{version}");
            assert_eq!(columns.iter().filter(|c| **c == column).count(), 1, "{id}");
        }
    }
}

#[test]
fn two_concurrent_runs_never_apply_a_migration_twice() {
    let p = Project_::new("database");
    let tenants = ids(40);
    let mut args = vec!["tenants", "create", "--json"];
    args.extend(tenants.iter().map(String::as_str));
    p.ok(&args);
    for version in 1..=3 {
        p.migration(
            &format!("{version:04}_c{version}.sql"),
            &format!("ALTER TABLE tasks ADD COLUMN c{version} TEXT;\n"),
        );
    }
    let runs: Vec<_> = (0..2)
        .map(|_| {
            p.command(&["migrate", "--json"])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let mut applied = 0;
    for run in runs {
        let out = run.wait_with_output().unwrap();
        // A second ALTER TABLE ADD COLUMN would fail: both runs succeed.
        assert!(out.status.success(), "{}", text(&out.stderr));
        applied += json_lines(&text(&out.stdout))
            .iter()
            .filter_map(|e| e["versions"].as_array().map(Vec::len))
            .sum::<usize>();
    }
    assert_eq!(applied, 40 * 3);
    for id in &tenants {
        assert_eq!(p.history(&p.tenant_file(id)), vec![1, 2, 3]);
    }
}

#[test]
fn configuration_and_migration_files_are_checked_first() {
    let p = Project_::new("database");
    std::fs::write(
        p.path().join("dnr.toml"),
        "[database]\nbackend = \"postgres\"\npostgres_url = \"${DNR_TEST_SURELY_UNSET_URL}\"\n",
    )
    .unwrap();
    let out = p.dnr(&["status"]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr)
            .contains("environment variable `DNR_TEST_SURELY_UNSET_URL`, which is not set"),
        "{}",
        text(&out.stderr)
    );
    std::fs::write(
        p.path().join("dnr.toml"),
        "[database]\nbackend = \"sqlite\"\ntenant_mode = database\n",
    )
    .unwrap();
    let out = p.dnr(&["migrate"]);
    assert!(
        text(&out.stderr).contains("dnr.toml:3:15: "),
        "{}",
        text(&out.stderr)
    );
    let out = p.dnr(&["--config", "nowhere.toml", "status"]);
    assert!(text(&out.stderr).contains("cannot read `nowhere.toml`"));

    std::fs::write(
        p.path().join("dnr.toml"),
        "[database]\nbackend = \"sqlite\"\ntenant_mode = \"database\"\n",
    )
    .unwrap();
    p.ok(&["tenants", "create", &Uuid::new_v4().to_string()]);
    for (file, sql, expected) in [
        (
            "0001_tx.sql",
            "BEGIN;\nALTER TABLE tasks ADD COLUMN a TEXT;\nCOMMIT;\n",
            "transaction control",
        ),
        (
            "0001_bad.sql",
            "ALTER TABLE tasks ADD COLUMN;\n",
            "cannot parse",
        ),
        ("01.sql", "SELECT 1;\n", "NNNN_name.sql"),
    ] {
        p.migration(file, sql);
        let out = p.dnr(&["migrate"]);
        assert!(!out.status.success());
        assert!(
            text(&out.stderr).contains(expected),
            "{file}: {}",
            text(&out.stderr)
        );
        assert!(text(&out.stderr).contains(file), "{}", text(&out.stderr));
        std::fs::remove_file(p.path().join("migrations").join(file)).unwrap();
    }
    // The policy's mode must be the project's.
    std::fs::write(
        p.path().join("policies.dnr"),
        POLICY.replace("MODE", "row_level"),
    )
    .unwrap();
    let out = p.dnr(&["apply"]);
    assert!(
        text(&out.stderr).contains("declares tenancy mode `row_level`"),
        "{}",
        text(&out.stderr)
    );
}

/// Issue 23: a tenant of every value kind, moved through tenant files.
const TRANSFER_POLICY: &str = "\
tenancy:
  mode: MODE

entity Task:
  table: tasks
  id: int pk
  title: text
  owner_id: uuid
  done: bool
  score: float
  meta: json
  due: datetime
  access:
    read: true
    create: owner_id = current_user
    update: owner_id = current_user
    delete: owner_id = current_user
";

impl Project_ {
    fn transfer(mode: &str) -> Project_ {
        let p = Project_::new(mode);
        std::fs::write(
            p.path().join("policies.dnr"),
            TRANSFER_POLICY.replace("MODE", mode),
        )
        .unwrap();
        p.ok(&["apply"]);
        p
    }

    fn router(&self) -> Router {
        Router::new(Project::load(Some(&self.path().join("dnr.toml"))).unwrap())
    }

    /// Tenant `tenant`'s rows as the application reads them, sorted.
    fn rows(&self, tenant: Uuid) -> Vec<Vec<Value>> {
        let db = self.router().sqlite(tenant, Some(Uuid::nil())).unwrap();
        db.query(
            "SELECT id, title, owner_id, done, score, meta, due FROM tasks ORDER BY id",
            &[],
        )
        .unwrap()
        .rows
    }
}

fn fill(p: &Project_, tenant: Uuid, owner: Uuid, titles: &[&str]) {
    let db = p.router().sqlite(tenant, Some(owner)).unwrap();
    for (n, title) in titles.iter().enumerate() {
        let n = i64::try_from(n).unwrap();
        db.execute(
            "INSERT INTO tasks (id, title, owner_id, done, score, meta, due) VALUES (?, ?, ?, ?, ?, ?, ?)",
            &[
                Value::Integer(if n == 0 { i64::MAX } else { n }),
                Value::Text((*title).into()),
                Value::Text(owner.to_string()),
                Value::Integer(n % 2),
                if n == 1 { Value::Null } else { Value::Real(n as f64 / 3.0) },
                Value::Text(format!("{{\"n\": {n}, \"tags\": [\"a\"]}}")),
                Value::Text(format!("2026-12-0{}T10:11:12.123456Z", n % 9 + 1)),
            ],
        )
        .unwrap();
    }
}

fn sqlite3(file: &Path, sql: &str) {
    let out = Command::new("sqlite3").arg(file).arg(sql).output().unwrap();
    assert!(out.status.success(), "sqlite3: {}", text(&out.stderr));
}

/// Export, erase, restore, import into another mode and under another id:
/// the rows equal at every stop, the other tenant untouched, the file an
/// ordinary DNR database that answers only to its tenant.
#[test]
fn a_tenant_moves_through_a_tenant_file_and_back() {
    let shared = Project_::transfer("row_level");
    let tenants = ids(2);
    shared.ok(&["tenants", "create", &tenants[0], &tenants[1]]);
    let (a, b) = (
        Uuid::parse_str(&tenants[0]).unwrap(),
        Uuid::parse_str(&tenants[1]).unwrap(),
    );
    let owner = Uuid::new_v4();
    fill(
        &shared,
        a,
        owner,
        &[
            "plain",
            "naïve 日本 \u{1}\u{7f} tab\there",
            "",
            "'quoted' \"too\"",
        ],
    );
    fill(&shared, b, owner, &["b only"]);
    let a_rows = shared.rows(a);
    let b_rows = shared.rows(b);
    assert_eq!(a_rows.len(), 4);

    let file = shared.path().join("a.dnrt");
    let out = shared.ok(&["tenants", "export", &tenants[0], "--out", "a.dnrt"]);
    assert!(out.contains("4 rows in 1 tables"), "{out}");
    // Never overwritten.
    let again = shared.dnr(&["tenants", "export", &tenants[0], "--out", "a.dnrt"]);
    assert!(text(&again.stderr).contains("never overwritten"));
    // The file is an ordinary DNR database, the tenant's only.
    let opened = Connection::open(&file).unwrap();
    assert_eq!(opened.dnr().database_tenant().unwrap(), Some(a));
    opened
        .set_context(dnr_core::TenantContext::parse(Some(&tenants[0]), None, &[]).unwrap())
        .unwrap();
    assert_eq!(
        opened
            .query("SELECT count(*) FROM tasks", &[])
            .unwrap()
            .rows,
        vec![vec![Value::Integer(4)]]
    );
    assert!(opened
        .set_context(dnr_core::TenantContext::parse(Some(&tenants[1]), None, &[]).unwrap())
        .is_err());
    drop(opened);

    // Erase: every row of the tenant, counted; the other tenant untouched.
    let out = shared.ok(&["tenants", "drop", &tenants[0], "--erase"]);
    assert!(out.contains("tasks\t4"), "{out}");
    assert_eq!(shared.rows(b), b_rows);
    assert!(shared.rows(a).is_empty());
    assert!(json_lines(&shared.ok(&["tenants", "list", "--json"]))
        .iter()
        .all(|t| t["id"] != tenants[0].as_str()));

    // Restore: the same rows, checked against the file's checksum.
    let out = shared.ok(&["tenants", "import", "a.dnrt"]);
    assert!(out.contains("checksum verified"), "{out}");
    assert_eq!(shared.rows(a), a_rows);
    assert_eq!(shared.rows(b), b_rows);
    // An existing tenant is refused without --replace; with it, no row twice.
    let refused = shared.dnr(&["tenants", "import", "a.dnrt"]);
    assert!(
        text(&refused.stderr).contains("--replace"),
        "{}",
        text(&refused.stderr)
    );
    shared.ok(&["tenants", "import", "a.dnrt", "--replace"]);
    assert_eq!(shared.rows(a), a_rows);

    // Into a database-per-tenant project, under the file's id and another.
    let own = Project_::transfer("database");
    own.ok(&["tenants", "import", file.to_str().unwrap()]);
    assert_eq!(own.rows(a), a_rows);
    let c = Uuid::new_v4();
    own.ok(&[
        "tenants",
        "import",
        file.to_str().unwrap(),
        "--as",
        &c.to_string(),
    ]);
    assert_eq!(own.rows(c), a_rows);
    // And back out: the same checksum as the first file.
    own.ok(&["tenants", "export", &tenants[0], "--out", "back.dnrt"]);
    let checksum = |path: &Path| {
        let db = Connection::open(path).unwrap();
        let value = db
            .query("SELECT value FROM _dnr_meta WHERE key = 'tenant_file'", &[])
            .unwrap()
            .rows;
        let Value::Text(json) = &value[0][0] else {
            panic!("{value:?}")
        };
        serde_json::from_str::<serde_json::Value>(json).unwrap()["checksum"].clone()
    };
    assert_eq!(checksum(&file), checksum(&own.path().join("back.dnrt")));
}

/// Forged files: changed rows, a row of another tenant, a newer format, an
/// enormous row count claim — each refused, nothing imported.
#[test]
fn a_forged_tenant_file_is_refused_and_nothing_is_imported() {
    let source = Project_::transfer("row_level");
    let tenants = ids(2);
    source.ok(&["tenants", "create", &tenants[0]]);
    let a = Uuid::parse_str(&tenants[0]).unwrap();
    fill(&source, a, Uuid::new_v4(), &["one", "two"]);
    source.ok(&["tenants", "export", &tenants[0], "--out", "a.dnrt"]);
    let original = source.path().join("a.dnrt");
    let target = Project_::transfer("row_level");
    let cases = [
        (
            "DROP TRIGGER \"_dnr_tasks_update_check\"; UPDATE \"_dnr_tasks\" SET title = 'forged' WHERE title = 'one';",
            "changed after export",
        ),
        (
            &*format!("DROP TRIGGER \"_dnr_tasks_update_check\"; UPDATE \"_dnr_tasks\" SET tenant_id = '{}' WHERE title = 'one';", tenants[1]),
            "belongs to tenant",
        ),
        (
            "UPDATE _dnr_meta SET value = replace(value, '\"format\":1', '\"format\":2') WHERE key = 'tenant_file';",
            "format 2",
        ),
        (
            "UPDATE _dnr_meta SET value = replace(value, '\"rows\":2', '\"rows\":99999999999') WHERE key = 'tenant_file';",
            "claims 99999999999 rows",
        ),
        ("DELETE FROM _dnr_meta WHERE key = 'tenant_file';", "no manifest"),
    ];
    for (n, (tamper, expected)) in cases.iter().enumerate() {
        let forged = target.path().join(format!("forged{n}.dnrt"));
        std::fs::copy(&original, &forged).unwrap();
        sqlite3(&forged, tamper);
        let out = target.dnr(&["tenants", "import", forged.to_str().unwrap()]);
        assert!(!out.status.success(), "{tamper}: imported");
        assert!(
            text(&out.stderr).contains(expected),
            "{tamper}: {}",
            text(&out.stderr)
        );
        assert!(
            json_lines(&target.ok(&["tenants", "list", "--json"])).is_empty(),
            "{tamper}: a tenant was created"
        );
    }
    // A target at another schema version: refused, naming both and the fix.
    target.migration(
        "0001_due.sql",
        "ALTER TABLE tasks ADD COLUMN prio INTEGER;\n",
    );
    target.ok(&["migrate"]);
    let out = target.dnr(&["tenants", "import", original.to_str().unwrap()]);
    assert!(
        text(&out.stderr).contains("schema version 0") && text(&out.stderr).contains("dnr migrate"),
        "{}",
        text(&out.stderr)
    );
    assert!(json_lines(&target.ok(&["tenants", "list", "--json"])).is_empty());
}

/// Whether `project` serves tenant `id` now: its context is taken, and it
/// reads rows.
fn serves(project: &Project_, id: Uuid, owner: Uuid) -> bool {
    let Ok(db) = project.router().sqlite(id, Some(owner)) else {
        return false;
    };
    matches!(
        db.query("SELECT count(*) FROM tasks", &[]).map(|r| r.rows),
        Ok(rows) if rows == vec![vec![Value::Integer(3000)]]
    )
}

/// `dnr tenants move`, back and forth between a shared database and a
/// database per tenant, killed with -9 at 25 points (`DNR_MOVE_KILLS`)
/// and run again each time: never served by both projects, and at the end every row exactly
/// once, in the target only; the other tenant untouched; while the move
/// holds it, the tenant's context is refused with a retryable error.
#[test]
fn a_move_killed_anywhere_resumes_and_leaves_the_tenant_in_one_place() {
    let source = Project_::transfer("row_level");
    let target = Project_::transfer("database");
    let tenants = ids(2);
    source.ok(&["tenants", "create", &tenants[0], &tenants[1]]);
    let (a, b) = (
        Uuid::parse_str(&tenants[0]).unwrap(),
        Uuid::parse_str(&tenants[1]).unwrap(),
    );
    let owner = Uuid::new_v4();
    {
        let db = source.router().sqlite(a, Some(owner)).unwrap();
        db.execute(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 3000) \
             INSERT INTO tasks (id, title, owner_id) SELECT i, 'task ' || i, ? FROM n",
            &[Value::Text(owner.to_string())],
        )
        .unwrap();
    }
    fill(&source, b, owner, &["b only"]);
    let b_rows = source.rows(b);
    // `just move-kills N` runs longer; the suite kills 25 times.
    let wanted: u32 = std::env::var("DNR_MOVE_KILLS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(25);
    let mut kills = 0;
    let mut moves = 0;
    let mut held_seen = false;
    // Where the tenant is (true: the source project): each finished move
    // is followed by one back, until both kinds were killed often enough.
    let mut at_source = true;
    for attempt in 0..u64::from(wanted) * 16 {
        let (from, to) = if at_source {
            (&source, target.path().join("dnr.toml"))
        } else {
            (&target, source.path().join("dnr.toml"))
        };
        let mut child = from
            .command(&["tenants", "move", &tenants[0], "--to", to.to_str().unwrap()])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(attempt * 13 % 250));
        let finished = child.try_wait().unwrap().is_some();
        if !finished {
            child.kill().unwrap();
            kills += 1;
        }
        let out = child.wait_with_output().unwrap();
        if finished {
            assert!(
                out.status.success(),
                "attempt {attempt}: {}",
                text(&out.stderr)
            );
        }
        // A kill can also come just after the move finished: where the
        // tenant is, is what the projects say (no journal: not moving).
        let journal = from.path().join(".dnr/moves").join(format!("{a}.json"));
        let lists = |p: &Project_| {
            json_lines(&p.ok(&["tenants", "list", "--json"]))
                .iter()
                .any(|t| t["id"] == tenants[0].as_str())
        };
        if !journal.exists() && !lists(from) {
            moves += 1;
            at_source = !at_source;
        }
        let (here, there) = (serves(&source, a, owner), serves(&target, a, owner));
        assert!(
            !(here && there),
            "attempt {attempt}: served by both projects"
        );
        if !here && !there {
            // In flight: held where it was, not yet served where it goes.
            let refused = from
                .router()
                .sqlite(a, Some(owner))
                .err()
                .unwrap_or_default();
            held_seen |= refused.contains("is moving");
        }
        if kills >= wanted && moves >= 2 {
            break;
        }
    }
    assert!(
        kills >= wanted && moves >= 2,
        "{kills} kills, {moves} moves"
    );
    assert!(held_seen, "no kill caught the tenant held");
    // A move stopped by the last kill is finished by running it again.
    let (home, away) = if at_source {
        (&source, &target)
    } else {
        (&target, &source)
    };
    let pending = home.path().join(".dnr/moves").join(format!("{a}.json"));
    let (home, away) = if pending.exists() {
        let to = away.path().join("dnr.toml");
        home.ok(&["tenants", "move", &tenants[0], "--to", to.to_str().unwrap()]);
        (away, home)
    } else {
        (home, away)
    };
    assert!(
        serves(home, a, owner),
        "the tenant is not served where it went"
    );
    assert!(!serves(away, a, owner));
    let db = home.router().sqlite(a, Some(owner)).unwrap();
    assert_eq!(
        db.query(
            "SELECT count(*), count(DISTINCT id), sum(id) FROM tasks",
            &[]
        )
        .unwrap()
        .rows,
        vec![vec![
            Value::Integer(3000),
            Value::Integer(3000),
            Value::Integer(4_501_500)
        ]]
    );
    drop(db);
    // Gone from the other project: no tenant, no rows (read past the policy).
    assert!(json_lines(&away.ok(&["tenants", "list", "--json"]))
        .iter()
        .all(|t| t["id"] != tenants[0].as_str()));
    let shared = Connection::open(source.path().join(".dnr/data.db")).unwrap();
    let left = shared
        .query(
            "SELECT count(*) FROM _dnr_tasks WHERE tenant_id = ?",
            &[Value::Text(tenants[0].clone())],
        )
        .unwrap()
        .rows;
    let expected = if std::ptr::eq(home, &source) { 3000 } else { 0 };
    assert_eq!(left, vec![vec![Value::Integer(expected)]]);
    assert_eq!(source.rows(b), b_rows);
}

/// The seed's first steps: a single-tenant (`none` mode) app is adopted as
/// tenant A of a `row_level` project, gets a second tenant, and graduates
/// to a database per tenant with `dnr graduate`.
#[test]
fn a_single_tenant_app_is_adopted_then_graduates() {
    let app = Project_::transfer("none");
    let owner = Uuid::new_v4();
    {
        let db = Connection::open(app.path().join(".dnr/data.db")).unwrap();
        db.set_context(
            dnr_core::TenantContext::parse(None, Some(&owner.to_string()), &[]).unwrap(),
        )
        .unwrap();
        for (id, title) in [(1, "first"), (2, "second")] {
            db.execute(
                "INSERT INTO tasks (id, title, owner_id) VALUES (?, ?, ?)",
                &[
                    Value::Integer(id),
                    Value::Text(title.into()),
                    Value::Text(owner.to_string()),
                ],
            )
            .unwrap();
        }
    }
    // Adopting needs row_level in dnr.toml and the policy.
    let refused = app.dnr(&["tenants", "adopt", &Uuid::new_v4().to_string()]);
    assert!(
        text(&refused.stderr).contains("row_level"),
        "{}",
        text(&refused.stderr)
    );
    std::fs::write(
        app.path().join("dnr.toml"),
        "[database]\nbackend = \"sqlite\"\ntenant_mode = \"row_level\"\n",
    )
    .unwrap();
    std::fs::write(
        app.path().join("policies.dnr"),
        TRANSFER_POLICY.replace("MODE", "row_level"),
    )
    .unwrap();
    let a = Uuid::new_v4();
    let out = app.ok(&["tenants", "adopt", &a.to_string()]);
    assert!(out.contains("tasks\t2"), "{out}");
    let titles = |p: &Project_, t: Uuid| -> Vec<Value> {
        p.rows(t).into_iter().map(|row| row[1].clone()).collect()
    };
    assert_eq!(
        titles(&app, a),
        vec![Value::Text("first".into()), Value::Text("second".into())]
    );
    let again = app.dnr(&["tenants", "adopt", &Uuid::new_v4().to_string()]);
    assert!(!again.status.success(), "a second adopt must be refused");
    // A second tenant, then every tenant to a database of its own.
    let b = Uuid::new_v4();
    app.ok(&["tenants", "create", &b.to_string()]);
    fill(&app, b, owner, &["b 1", "b 2", "b 3"]);
    assert!(titles(&app, b).len() == 3 && !titles(&app, b).contains(&Value::Text("first".into())));
    let (a_rows, b_rows) = (app.rows(a), app.rows(b));
    let own = Project_::transfer("database");
    let to = own.path().join("dnr.toml");
    let events = json_lines(&app.ok(&["graduate", "--to", to.to_str().unwrap(), "--json"]));
    assert_eq!(
        events.iter().filter(|e| e["status"] == "moved").count(),
        2,
        "{events:?}"
    );
    assert_eq!(own.rows(a), a_rows);
    assert_eq!(own.rows(b), b_rows);
    assert!(json_lines(&app.ok(&["tenants", "list", "--json"])).is_empty());
}

/// While a tenant moves, another tenant of the same database writes
/// without a single error, and the moving tenant's writes succeed until
/// the hold, then get the retryable `is moving` error; every write that
/// succeeded is there after the move.
#[test]
fn other_tenants_are_served_throughout_a_move() {
    use std::sync::atomic::{AtomicBool, Ordering};
    let source = Project_::transfer("row_level");
    let target = Project_::transfer("database");
    let tenants = ids(2);
    source.ok(&["tenants", "create", &tenants[0], &tenants[1]]);
    let (a, b) = (
        Uuid::parse_str(&tenants[0]).unwrap(),
        Uuid::parse_str(&tenants[1]).unwrap(),
    );
    let owner = Uuid::new_v4();
    source
        .router()
        .sqlite(a, Some(owner))
        .unwrap()
        .execute(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 3000) \
             INSERT INTO tasks (id, title, owner_id) SELECT i, 'task ' || i, ? FROM n",
            &[Value::Text(owner.to_string())],
        )
        .unwrap();
    let stop = AtomicBool::new(false);
    let insert = |db: &Connection, id: i64| {
        db.execute(
            "INSERT INTO tasks (id, title, owner_id) VALUES (?, 'during the move', ?)",
            &[Value::Integer(id), Value::Text(owner.to_string())],
        )
    };
    let (b_written, a_written, moved) = std::thread::scope(|scope| {
        let other = scope.spawn(|| {
            let db = source.router().sqlite(b, Some(owner)).unwrap();
            let mut written = 0;
            while !stop.load(Ordering::SeqCst) {
                insert(&db, 100_000 + written).unwrap();
                written += 1;
                std::thread::sleep(std::time::Duration::from_millis(2));
            }
            written
        });
        let moving = scope.spawn(|| {
            let mut written = 0;
            loop {
                let attempt = source
                    .router()
                    .sqlite(a, Some(owner))
                    .and_then(|db| insert(&db, 100_000 + written).map_err(|e| e.to_string()));
                match attempt {
                    Ok(_) => {
                        written += 1;
                        std::thread::sleep(std::time::Duration::from_millis(2));
                    }
                    Err(error) => {
                        assert!(error.contains("is moving"), "{error}");
                        return written;
                    }
                }
            }
        });
        std::thread::sleep(std::time::Duration::from_millis(100));
        let to = target.path().join("dnr.toml");
        let moved = source.dnr(&["tenants", "move", &tenants[0], "--to", to.to_str().unwrap()]);
        stop.store(true, Ordering::SeqCst);
        (other.join().unwrap(), moving.join().unwrap(), moved)
    });
    assert!(moved.status.success(), "{}", text(&moved.stderr));
    assert!(b_written > 0 && a_written > 0, "{b_written} / {a_written}");
    let count = |p: &Project_, t: Uuid| {
        p.router()
            .sqlite(t, Some(owner))
            .unwrap()
            .query("SELECT count(*) FROM tasks", &[])
            .unwrap()
            .rows
    };
    assert_eq!(count(&source, b), vec![vec![Value::Integer(b_written)]]);
    assert_eq!(
        count(&target, a),
        vec![vec![Value::Integer(3000 + a_written)]]
    );
}
