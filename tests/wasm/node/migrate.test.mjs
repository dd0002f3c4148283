// Database.migrate: schema changes on enforced tables from the trusted host,
// while SQL on the same (locked) database still cannot alter them.
import { test } from "node:test";
import assert from "node:assert/strict";
import { Database } from "dnr-wasm";
import { ACME, GLOBEX, ALICE, BOB, openWithPolicies } from "./fixtures.mjs";

test("migrate adds a column; rows survive and enforcement holds", async () => {
  const db = await openWithPolicies(Database);
  db.setContext({ tenant: ACME, user: ALICE });
  db.exec("INSERT INTO tasks (id, owner_id, title, status) VALUES (1, ?, 'a1', 'todo')", [ALICE]);
  db.setContext({ tenant: GLOBEX, user: BOB });
  db.exec("INSERT INTO tasks (id, owner_id, title, status) VALUES (2, ?, 'b2', 'todo')", [BOB]);
  // SQL cannot alter the enforced table, nor call the SQL migration.
  assert.throws(() => db.exec("ALTER TABLE tasks ADD COLUMN due TEXT"), /is a migration, and this connection is locked/);
  assert.throws(() => db.query("SELECT dnr_migrate('ALTER TABLE tasks ADD COLUMN due TEXT')"));
  assert.equal(
    db.migrate("ALTER TABLE tasks ADD COLUMN due TEXT DEFAULT 'soon'; CREATE INDEX tasks_due ON tasks (due)"),
    "dnr: migrated 2 statements; enforcement rebuilt on 2 tables",
  );
  assert.deepEqual(db.query("SELECT id, due FROM tasks"), [{ id: 2, due: "soon" }]);
  db.exec("UPDATE tasks SET due = 'friday' WHERE id = 2");
  db.setContext({ tenant: ACME, user: ALICE });
  assert.deepEqual(db.query("SELECT id, due FROM tasks"), [{ id: 1, due: "soon" }]);
  // Tenant A cannot touch tenant B's row through the new column either.
  db.exec("UPDATE tasks SET due = 'never' WHERE id = 2");
  db.setContext({ tenant: GLOBEX, user: BOB });
  assert.deepEqual(db.query("SELECT id, due FROM tasks"), [{ id: 2, due: "friday" }]);
  db.close();
});

test("a refused or failing migration changes nothing", async () => {
  const db = await openWithPolicies(Database);
  assert.throws(() => db.migrate("ALTER TABLE tasks ADD COLUMN x INT; UPDATE tasks SET title = 'x'"),
    /dnr_migrate: `UPDATE tasks` reads or writes rows/);
  assert.throws(() => db.migrate("ALTER TABLE tasks DROP COLUMN owner_id"), /cannot drop column `owner_id`/);
  assert.throws(() => db.migrate("SELECT * FROM _dnr_tasks"), /`_dnr_tasks` is DNR's own/);
  assert.throws(() => db.migrate("ALTER TABLE tasks ADD COLUMN y INT; ALTER TABLE tasks ADD COLUMN y INT"),
    /migration failed, nothing changed: duplicate column name: y/);
  const columns = db.query("SELECT name FROM pragma_table_info('tasks')").map((r) => r.name);
  assert.ok(!columns.includes("x") && !columns.includes("y"), columns.join(","));
  db.close();
});
