// Errors reach JavaScript as Error objects with useful messages.
import { test } from "node:test";
import assert from "node:assert/strict";
import { Database, compilePolicies, check } from "dnr-wasm";
import { POLICIES, ACME, ALICE, openWithPolicies } from "./fixtures.mjs";

test("bad SQL throws SQLite's message", async () => {
  const db = await openWithPolicies(Database);
  assert.throws(() => db.query("SELEC 1"), (e) => e instanceof Error && /syntax error/.test(e.message));
  assert.throws(() => db.exec("INSERT INTO nowhere VALUES (1)"), /no such table: nowhere/);
  assert.throws(() => db.query("SELECT 1; SELECT 2"), /single statement/);
  // The database is still usable afterwards.
  assert.deepEqual(db.query("SELECT 1 AS one"), [{ one: 1 }]);
  db.close();
});

test("malformed ids and context values are errors, never 'no tenant'", async () => {
  const db = await openWithPolicies(Database);
  assert.throws(() => db.setContext({ tenant: "acme" }), /invalid tenant id/);
  assert.throws(() => db.setContext({ tenant: ACME, user: "alice" }), /invalid user id/);
  assert.throws(() => db.setContext({ tenant: ACME, roles: ["bad role"] }), /invalid role name `bad role`/);
  assert.throws(() => db.setContext({ tenant: ACME, roles: "admin" }), /`roles` must be an array/);
  assert.throws(() => db.setContext({ tenantId: ACME }), /unknown context key `tenantId`/);
  assert.throws(() => db.setContext({ tenant: 42 }), /`tenant` must be a string/);
  assert.throws(() => db.setContext("tenant"), /must be an object/);
  // A refused setContext leaves the earlier context in place.
  db.setContext({ tenant: ACME, user: ALICE });
  assert.throws(() => db.setContext({ tenant: "nope" }));
  db.exec("INSERT INTO tasks (id, owner_id, title, status) VALUES (1, ?, 't', 'todo')", [ALICE]);
  assert.equal(db.query("SELECT count(*) AS n FROM tasks")[0].n, 1);
  // Uppercase and braced uuids are the same id.
  db.setContext({ tenant: ACME.toUpperCase(), user: `{${ALICE}}` });
  assert.equal(db.query("SELECT count(*) AS n FROM tasks")[0].n, 1);
  db.close();
});

test("bad policy text throws with line and column", async () => {
  const db = await Database.open();
  const source = POLICIES.replace("read: owner_id = current_user", "read: ownr = current_user");
  const line = source.split("\n").findIndex((l) => l.includes("ownr")) + 1;
  const column = source.split("\n")[line - 1].indexOf("ownr") + 1;
  for (const run of [() => db.applyPolicies(source), () => compilePolicies(source, "sqlite"), () => check(source, "Task", "read", {}, {})]) {
    assert.throws(run, (e) => {
      assert.ok(e instanceof Error);
      assert.match(e.message, new RegExp(`line ${line}, column ${column}: .*ownr`));
      assert.equal(e.line, line);
      assert.equal(e.column, column);
      assert.equal(e.diagnostics.length, 1);
      return true;
    });
  }
  // Several errors are all reported.
  assert.throws(() => db.applyPolicies("entity T:\n  access:\n    read: nope =\n  bogus key\n"), (e) => e.diagnostics.length >= 2);
  // Nothing was applied: the database has no enforced table.
  assert.deepEqual(db.query("SELECT name FROM sqlite_master WHERE name = 'tasks'"), []);
  db.close();
});

test("unknown targets, entities, operations and options are errors", async () => {
  assert.throws(() => compilePolicies(POLICIES, "mysql"), /unknown target `mysql`/);
  assert.throws(() => check(POLICIES, "Nope", "read", {}, {}), /unknown entity `Nope`/);
  assert.throws(() => check(POLICIES, "Task", "frobnicate", {}, {}), /unknown operation `frobnicate`/);
  assert.throws(() => check(POLICIES, "Task", "read", {}, { owner_id: "not-a-uuid" }), /owner_id/);
  await assert.rejects(Database.open({ storage: "disk" }), /unknown storage `disk`/);
  await assert.rejects(Database.open({ storge: "memory" }), /unknown open option `storge`/);
  await assert.rejects(Database.open({ storage: "opfs" }), /OPFS/);
});

test("a closed database throws on use", async () => {
  const db = await Database.open();
  db.close();
  db.close();
  assert.throws(() => db.query("SELECT 1"), /the database is closed/);
  assert.throws(() => db.setContext({}), /the database is closed/);
});

test("hostile policy sources are errors and the instance stays usable", async () => {
  // Each used to exhaust the WASM stack (issue 10).
  const rule = (condition) => `entity Task:\n  access:\n    read: ${condition}\n`;
  const hostile = [
    [rule("(".repeat(10000) + "true" + ")".repeat(10000)), /line 3, column 43: condition nests deeper than 32 levels/],
    [rule("not ".repeat(50000) + "true"), /line 3, column 139: condition nests deeper than 32 levels/],
    [rule(Array(100000).fill("true").join(" or ")), /line 3, column 8011: condition has more than 1000 terms/],
  ];
  const db = await openWithPolicies(Database);
  db.setContext({ tenant: ACME, user: ALICE });
  db.exec("INSERT INTO tasks (id, owner_id, title, status) VALUES (1, ?, 't', 'todo')", [ALICE]);
  for (const [source, error] of hostile) {
    assert.throws(() => db.applyPolicies(source), error);
    assert.throws(() => compilePolicies(source, "postgres"), error);
    assert.throws(() => check(source, "Task", "read", {}, {}), error);
  }
  // Same instance, same policy, same rows.
  assert.equal(db.query("SELECT count(*) AS n FROM tasks")[0].n, 1);
  assert.ok(compilePolicies(POLICIES, "sqlite").length > 0);
  db.close();
});
