// Tenant isolation, owner rules and refused writes through the package.
import { test } from "node:test";
import assert from "node:assert/strict";
import { Database } from "dnr-wasm";
import { ACME, GLOBEX, ALICE, BOB, INSERT, openWithPolicies } from "./fixtures.mjs";

async function seeded() {
  const db = await openWithPolicies(Database);
  db.setContext({ tenant: ACME, user: ALICE });
  assert.equal(db.exec(INSERT, [1, ALICE, "acme alice 1", "todo"]), 1);
  assert.equal(db.exec(INSERT, [2, ALICE, "acme alice 2", "done"]), 1);
  db.setContext({ tenant: ACME, user: BOB });
  assert.equal(db.exec(INSERT, [3, BOB, "acme bob", "todo"]), 1);
  db.setContext({ tenant: GLOBEX, user: BOB });
  assert.equal(db.exec(INSERT, [4, BOB, "globex bob", "todo"]), 1);
  return db;
}

const titles = (rows) => rows.map((r) => r.title).sort();

test("each tenant sees only its own rows", async () => {
  const db = await seeded();
  db.setContext({ tenant: ACME, user: BOB, roles: ["admin"] });
  assert.deepEqual(titles(db.query("SELECT title FROM tasks")), ["acme alice 1", "acme alice 2", "acme bob"]);
  db.setContext({ tenant: GLOBEX, user: BOB, roles: ["admin"] });
  assert.deepEqual(titles(db.query("SELECT title FROM tasks")), ["globex bob"]);
  // The tenant column was filled from the context on insert.
  assert.deepEqual(db.query("SELECT tenant_id FROM tasks"), [{ tenant_id: GLOBEX }]);
  db.close();
});

test("no context, or no tenant, sees no rows and cannot write", async () => {
  const db = await seeded();
  db.clearContext();
  assert.deepEqual(db.query("SELECT * FROM tasks"), []);
  db.setContext({ user: ALICE, roles: ["admin"] });
  assert.deepEqual(db.query("SELECT * FROM tasks"), []);
  assert.throws(() => db.exec(INSERT, [9, ALICE, "x", "todo"]), /refused by the tenant fence/);
  // Shared reference data (tenant: none) stays readable.
  assert.deepEqual(db.query("SELECT count(*) AS n FROM plans"), [{ n: 0 }]);
  db.close();
});

test("owner rules: read, update and delete follow the policy", async () => {
  const db = await seeded();
  db.setContext({ tenant: ACME, user: BOB });
  assert.deepEqual(titles(db.query("SELECT title FROM tasks")), ["acme bob"]);
  // Alice's rows are invisible to Bob: an update or delete touches nothing.
  assert.equal(db.exec("UPDATE tasks SET title = 'hijacked' WHERE id = 1"), 0);
  assert.equal(db.exec("DELETE FROM tasks WHERE id = 1"), 0);
  // An admin sees Alice's rows, but the update and delete rules filter them
  // out as PostgreSQL's USING clauses do: nothing is written.
  db.setContext({ tenant: ACME, user: BOB, roles: ["admin"] });
  assert.equal(db.exec("UPDATE tasks SET title = 'hijacked'"), 1);
  assert.equal(db.exec("DELETE FROM tasks WHERE id <> 3"), 0);
  assert.deepEqual(titles(db.query("SELECT title FROM tasks")), ["acme alice 1", "acme alice 2", "hijacked"]);
  db.setContext({ tenant: ACME, user: ALICE });
  assert.equal(db.exec("UPDATE tasks SET title = 'renamed' WHERE id = 1"), 1);
  assert.deepEqual(db.query("SELECT title FROM tasks WHERE id = 1"), [{ title: "renamed" }]);
  // The new row must satisfy the update rule and stay readable.
  assert.throws(() => db.exec("UPDATE tasks SET owner_id = ? WHERE id = 1", [BOB]), /update on `Task` refused because the written row would not be readable/);
  db.setContext({ tenant: ACME, user: ALICE, roles: ["admin"] });
  assert.throws(
    () => db.exec("UPDATE tasks SET owner_id = ? WHERE id = 1", [BOB]),
    (e) => e instanceof Error && /update on `Task` refused by `update: owner_id = current_user`/.test(e.message),
  );
  // Delete: only own rows that are not done; `forbid delete: role(guest)`
  // wins over the access rule.
  db.setContext({ tenant: ACME, user: ALICE, roles: ["guest"] });
  assert.equal(db.exec("DELETE FROM tasks"), 0);
  db.setContext({ tenant: ACME, user: ALICE });
  assert.equal(db.exec("DELETE FROM tasks"), 1);
  assert.deepEqual(titles(db.query("SELECT title FROM tasks")), ["acme alice 2"]);
  db.close();
});

test("refused writes name the rule or the fence, and change nothing", async () => {
  const db = await seeded();
  db.setContext({ tenant: ACME });
  assert.throws(() => db.exec(INSERT, [10, ALICE, "anonymous", "todo"]), (e) =>
    /create on `Task` refused/.test(e.message));
  db.setContext({ tenant: ACME, user: ALICE });
  // Writing into another tenant.
  assert.throws(
    () => db.exec("INSERT INTO tasks (tenant_id, id, owner_id, title, status) VALUES (?, 11, ?, 'x', 'todo')", [GLOBEX, ALICE]),
    /create on `Task` refused by the tenant fence/,
  );
  // Moving a row to another tenant.
  assert.throws(() => db.exec("UPDATE tasks SET tenant_id = ? WHERE id = 1", [GLOBEX]), /update on `Task` refused by the tenant fence/);
  // A row its writer could not read back.
  assert.throws(() => db.exec(INSERT, [12, BOB, "for bob", "todo"]), /would not be readable/);
  db.setContext({ tenant: ACME, user: BOB, roles: ["admin"] });
  assert.equal(db.query("SELECT count(*) AS n FROM tasks")[0].n, 3);
  db.close();
});

test("exec counts rows written through the enforced views", async () => {
  const db = await seeded();
  db.setContext({ tenant: ACME, user: ALICE });
  assert.equal(db.exec("UPDATE tasks SET status = 'doing'"), 2);
  // Visible rows that the update rule filters out are not counted.
  db.setContext({ tenant: ACME, user: ALICE, roles: ["admin"] });
  assert.equal(db.exec("UPDATE tasks SET status = 'todo'"), 2);
  db.setContext({ tenant: ACME, user: ALICE });
  assert.equal(
    db.exec(`INSERT INTO tasks (id, owner_id, title, status) VALUES (20, '${ALICE}', 'a', 'todo'), (21, '${ALICE}', 'b', 'todo')`),
    2,
  );
  // Several statements at once (no parameters).
  assert.equal(db.exec("DELETE FROM tasks WHERE id = 20; DELETE FROM tasks WHERE id = 21;"), 2);
  assert.equal(db.exec("SELECT 1"), 0);
  db.close();
});
