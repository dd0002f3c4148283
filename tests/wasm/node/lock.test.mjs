// Every database opened from JS is locked: SQL can neither change the
// context nor reach the storage tables or alter the enforced objects.
import { test } from "node:test";
import assert from "node:assert/strict";
import { Database } from "dnr-wasm";
import { ACME, GLOBEX, ALICE, BOB, INSERT, openWithPolicies } from "./fixtures.mjs";

async function seeded() {
  const db = await openWithPolicies(Database);
  db.setContext({ tenant: GLOBEX, user: BOB });
  db.exec(INSERT, [1, BOB, "globex secret", "todo"]);
  db.setContext({ tenant: ACME, user: ALICE });
  db.exec(INSERT, [2, ALICE, "acme", "todo"]);
  return db;
}

const visible = (db) => db.query("SELECT title FROM tasks ORDER BY id").map((r) => r.title);

const attempts = [
  ["SELECT dnr_set_tenant(?)", [GLOBEX]],
  ["SELECT dnr_set_user(?)", [BOB]],
  ["SELECT dnr_set_roles('admin')", []],
  ["SELECT dnr_set_context(?, ?, 'admin')", [GLOBEX, BOB]],
  ["SELECT dnr_clear_context()", []],
];

for (const [sql, params] of attempts) {
  test(`context cannot be changed from SQL: ${sql}`, async () => {
    const db = await seeded();
    assert.throws(() => db.query(sql, params), Error);
    assert.throws(() => db.exec(sql, params), Error);
    assert.deepEqual(visible(db), ["acme"]);
    assert.deepEqual(db.query("SELECT dnr_tenant() AS t, dnr_user() AS u"), [{ t: ACME, u: ALICE }]);
    db.close();
  });
}

const storage = [
  "SELECT * FROM _dnr_tasks",
  "SELECT count(*) FROM main._dnr_tasks",
  "INSERT INTO _dnr_tasks (tenant_id, id, owner_id, title, status) VALUES ('x', 9, 'y', 'z', 'todo')",
  "UPDATE _dnr_tasks SET title = 'x'",
  "DELETE FROM _dnr_tasks",
  "DROP VIEW tasks",
  "DROP TABLE _dnr_tasks",
  "DROP TRIGGER IF EXISTS _dnr_tasks_insert",
  "ALTER TABLE _dnr_tasks RENAME TO stolen",
  "CREATE VIEW peek AS SELECT * FROM _dnr_tasks",
  "CREATE TRIGGER sneaky AFTER INSERT ON _dnr_tasks BEGIN SELECT 1; END",
  "SELECT * FROM _dnr_meta",
  "DELETE FROM _dnr_meta",
  "PRAGMA writable_schema = 1",
  "ATTACH DATABASE ':memory:' AS other",
];

for (const sql of storage) {
  test(`storage and enforced objects are out of reach: ${sql}`, async () => {
    const db = await seeded();
    assert.throws(() => db.exec(sql), Error);
    // Still enforced, still all there.
    assert.deepEqual(visible(db), ["acme"]);
    db.setContext({ tenant: GLOBEX, user: BOB });
    assert.deepEqual(visible(db), ["globex secret"]);
    db.close();
  });
}

test("a temporary view over storage cannot read it", async () => {
  const db = await seeded();
  // SQLite may accept the definition; reading through it must be refused.
  let created = true;
  try {
    db.exec("CREATE TEMP VIEW peek AS SELECT * FROM _dnr_tasks");
  } catch {
    created = false;
  }
  if (created) assert.throws(() => db.query("SELECT * FROM peek"), /prohibited|not authorized/);
  assert.deepEqual(visible(db), ["acme"]);
  db.close();
});

test("applying policies again from JS still works on a locked database", async () => {
  const db = await seeded();
  db.applyPolicies((await import("./fixtures.mjs")).POLICIES);
  assert.deepEqual(visible(db), ["acme"]);
  // Ordinary tables of the application are not affected by the lock.
  db.exec("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT)");
  assert.equal(db.exec("INSERT INTO notes (body) VALUES ('hi')"), 1);
  assert.deepEqual(db.query("SELECT body FROM notes"), [{ body: "hi" }]);
  db.close();
});
