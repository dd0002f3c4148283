// Node's better-sqlite3 (its own SQLite 3.50) loading libdnr.so: .run()
// reports the rows written (`changes`) and the new row (`lastInsertRowid`)
// on enforced tables after dnr_count_changes(); tenants are isolated and
// cross-tenant writes change nothing. Run by scripts/sqlite-test.sh.
import { test } from "node:test";
import assert from "node:assert/strict";
import { createRequire } from "node:module";
import path from "node:path";

const Database = createRequire(import.meta.url)("better-sqlite3");
const LIB = path.resolve(process.env.DNR_LIB ?? "../../target/release/libdnr.so");
const ACME = "11111111-1111-4111-8111-111111111111";
const GLOBEX = "22222222-2222-4222-8222-222222222222";
const ALICE = "aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa";
const BOB = "bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb";
const POLICY = `
entity Task:
  table: tasks
  id: int pk
  owner_id: uuid
  title: text required
  access:
    create: authenticated
    read: owner_id = current_user
    update: owner_id = current_user
    delete: owner_id = current_user
`;

function open() {
  const db = new Database(":memory:");
  db.loadExtension(LIB);
  db.prepare("SELECT dnr_apply(?)").get(POLICY);
  db.prepare("SELECT dnr_count_changes()").get();
  const as = (tenant, user) => db.prepare("SELECT dnr_set_context(?, ?, NULL, 0)").get(tenant, user);
  return { db, as };
}

test("run() reports changes and lastInsertRowid on an enforced table", () => {
  const { db, as } = open();
  as(ACME, ALICE);
  const insert = db.prepare("INSERT INTO tasks (owner_id, title) VALUES (?, ?)");
  const first = insert.run(ALICE, "acme 1");
  assert.equal(first.changes, 1);
  assert.equal(first.lastInsertRowid, 1);
  assert.equal(insert.run(ALICE, "acme 2").lastInsertRowid, 2);
  assert.equal(db.prepare("UPDATE tasks SET title = title || '!'").run().changes, 2);
  assert.equal(db.prepare("DELETE FROM tasks WHERE id = ?").run(2).changes, 1);
  assert.deepEqual(db.prepare("SELECT id, title, tenant_id FROM tasks").all(), [
    { id: 1, title: "acme 1!", tenant_id: ACME },
  ]);
  db.close();
});

test("another tenant sees and changes nothing, counted as nothing", () => {
  const { db, as } = open();
  as(ACME, ALICE);
  db.prepare("INSERT INTO tasks (id, owner_id, title) VALUES (1, ?, 'acme 1')").run(ALICE);
  as(GLOBEX, BOB);
  assert.deepEqual(db.prepare("SELECT * FROM tasks").all(), []);
  assert.equal(db.prepare("UPDATE tasks SET title = 'hijacked' WHERE id = 1").run().changes, 0);
  assert.equal(db.prepare("DELETE FROM tasks").run().changes, 0);
  assert.throws(
    () => db.prepare("INSERT INTO tasks (id, tenant_id, owner_id, title) VALUES (2, ?, ?, 'forged')").run(ACME, BOB),
    (e) => e.code === "SQLITE_CONSTRAINT_TRIGGER" || /tenant fence/.test(e.message),
  );
  as(ACME, ALICE);
  assert.deepEqual(db.prepare("SELECT id, title FROM tasks").all(), [{ id: 1, title: "acme 1" }]);
  db.close();
});
