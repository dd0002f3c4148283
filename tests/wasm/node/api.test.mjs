// compilePolicies, check, the package's entries and the tenant helper.
import { test } from "node:test";
import assert from "node:assert/strict";
import { createRequire } from "node:module";
import * as dnr from "dnr-wasm";
import { tenantPath, openTenantDatabase } from "dnr-wasm/tenant";
import { POLICIES, ACME, GLOBEX, ALICE, BOB, INSERT } from "./fixtures.mjs";

const { Database, compilePolicies, check } = dnr;

test("the package exports the documented API", () => {
  assert.equal(typeof Database.open, "function");
  for (const method of ["setContext", "clearContext", "applyPolicies", "exec", "query", "close"]) {
    assert.equal(typeof Database.prototype[method], "function", method);
  }
  assert.equal(typeof compilePolicies, "function");
  assert.equal(typeof check, "function");
  const pkg = createRequire(import.meta.url)("dnr-wasm/package.json");
  assert.equal(pkg.name, "dnr-wasm");
  assert.ok(pkg.exports["."].types);
});

test("require() loads the same package", () => {
  const required = createRequire(import.meta.url)("dnr-wasm");
  assert.equal(typeof required.Database.open, "function");
});

test("compilePolicies produces SQL for every target", () => {
  const sqlite = compilePolicies(POLICIES, "sqlite");
  assert.match(sqlite, /CREATE VIEW "tasks"/);
  assert.match(sqlite, /dnr_tenant\(\)/);
  const pg = compilePolicies(POLICIES, "postgres");
  assert.match(pg, /ENABLE ROW LEVEL SECURITY/i);
  assert.match(pg, /dnr\.current_tenant\(\)/);
  const plain = compilePolicies(POLICIES, "postgres-plain");
  assert.match(plain, /current_setting/);
  assert.doesNotMatch(plain, /dnr\.current_tenant\(\)/);
});

test("check gives the evaluator's answer with its reason", () => {
  const ctx = { tenant: ACME, user: ALICE };
  const own = check(POLICIES, "Task", "read", ctx, { tenant_id: ACME, id: 1, owner_id: ALICE, status: "todo" });
  assert.equal(own.allowed, true);
  assert.equal(typeof own.reason, "string");
  const other = check(POLICIES, "Task", "read", { tenant: GLOBEX, user: ALICE }, { tenant_id: ACME, id: 1, owner_id: ALICE });
  assert.equal(other.allowed, false);
  assert.match(other.reason, /fence|tenant/);
  const notOwner = check(POLICIES, "Task", "update", { tenant: ACME, user: BOB }, { tenant_id: ACME, owner_id: ALICE });
  assert.equal(notOwner.allowed, false);
  const done = check(POLICIES, "tasks", "delete", ctx, { tenant_id: ACME, owner_id: ALICE, status: "done" });
  assert.equal(done.allowed, false);
  const guest = check(POLICIES, "Task", "delete", { ...ctx, roles: ["guest"] }, { tenant_id: ACME, owner_id: ALICE, status: "todo" });
  assert.equal(guest.allowed, false);
  assert.match(guest.reason, /forbid/);
  const created = check(POLICIES, "Task", "create", ctx, { owner_id: ALICE, id: 5n, title: "t", status: "todo" });
  assert.equal(created.allowed, true);
});

test("the evaluator and the embedded engine agree", async () => {
  const db = await Database.open();
  db.applyPolicies(POLICIES);
  const users = [ALICE, BOB, null];
  const rolesets = [[], ["admin"], ["guest"]];
  let id = 0;
  const rows = [];
  for (const tenant of [ACME, GLOBEX]) {
    for (const owner of [ALICE, BOB]) {
      for (const status of ["todo", "done"]) {
        id += 1;
        db.setContext({ tenant, user: owner });
        db.exec(INSERT, [id, owner, `t${id}`, status]);
        rows.push({ tenant_id: tenant, id, owner_id: owner, title: `t${id}`, status });
      }
    }
  }
  for (const tenant of [ACME, GLOBEX, null]) {
    for (const user of users) {
      for (const roles of rolesets) {
        const ctx = { tenant, user, roles };
        db.setContext(ctx);
        const seen = db.query("SELECT id FROM tasks ORDER BY id").map((r) => r.id);
        const expected = rows.filter((r) => check(POLICIES, "Task", "read", ctx, r).allowed).map((r) => r.id);
        assert.deepEqual(seen, expected, JSON.stringify(ctx));
      }
    }
  }
  db.close();
});

test("database per tenant: one file per tenant, context set", async () => {
  assert.equal(tenantPath(ACME), `tenants/${ACME}/data.db`);
  assert.equal(tenantPath(ACME.toUpperCase(), "app/"), `app/tenants/${ACME}/data.db`);
  assert.throws(() => tenantPath("../../etc"), /invalid tenant id/);
  const acme = await openTenantDatabase(Database, ACME, { storage: "memory", policies: POLICIES, user: ALICE });
  assert.equal(acme.exec(INSERT, [1, ALICE, "acme", "todo"]), 1);
  assert.deepEqual(acme.query("SELECT tenant_id, title FROM tasks"), [{ tenant_id: ACME, title: "acme" }]);
  // The file is Acme's: another tenant's context is refused on it.
  assert.throws(() => acme.setContext({ tenant: GLOBEX, user: BOB }), /belongs to tenant .*: a context of tenant .* is refused/);
  assert.throws(() => acme.bindTenant(GLOBEX), /belongs to tenant/);
  assert.deepEqual(acme.query("SELECT tenant_id, title FROM tasks"), [{ tenant_id: ACME, title: "acme" }]);
  acme.close();
  await assert.rejects(openTenantDatabase(Database, ACME, { storage: "memory", policies: "entity" }), /policy error/);
});
