// Query builders over the npm package: Drizzle ORM (its sqlite-proxy driver,
// with dnr-wasm/drizzle) and Kysely (dnr-wasm/kysely's DnrDialect). CRUD
// with exact counts, two tenants, a join whose columns share a name, upserts
// (PostgreSQL's meaning: never over another tenant's row), and a schema
// change through Database.migrate.
import { test } from "node:test";
import assert from "node:assert/strict";
import { Database } from "dnr-wasm";
import { drizzleCallback } from "dnr-wasm/drizzle";
import { DnrDialect } from "dnr-wasm/kysely";
import { drizzle } from "drizzle-orm/sqlite-proxy";
import { sqliteTable, integer, text } from "drizzle-orm/sqlite-core";
import { eq } from "drizzle-orm";
import { Kysely } from "kysely";
import { ACME, GLOBEX, ALICE, BOB, openWithPolicies } from "./fixtures.mjs";

const tasks = sqliteTable("tasks", {
  id: integer("id").primaryKey(),
  ownerId: text("owner_id"),
  title: text("title"),
  status: text("status"),
});

test("Drizzle: insert, select, update, delete under each tenant", async () => {
  const db = await openWithPolicies(Database);
  const orm = drizzle(drizzleCallback(db));
  db.setContext({ tenant: ACME, user: ALICE });
  await orm.insert(tasks).values([
    { id: 1, ownerId: ALICE, title: "acme 1", status: "todo" },
    { id: 2, ownerId: ALICE, title: "acme 2", status: "todo" },
  ]);
  db.setContext({ tenant: GLOBEX, user: BOB });
  await orm.insert(tasks).values({ id: 3, ownerId: BOB, title: "globex 1", status: "todo" });
  assert.deepEqual(await orm.select({ id: tasks.id, title: tasks.title }).from(tasks), [
    { id: 3, title: "globex 1" },
  ]);
  // Acme's rows are out of reach: nothing written.
  assert.equal((await orm.update(tasks).set({ title: "hijacked" }).where(eq(tasks.id, 1)).run()).changes, 0);
  assert.equal((await orm.delete(tasks).where(eq(tasks.id, 2)).run()).changes, 0);

  db.setContext({ tenant: ACME, user: ALICE });
  assert.equal((await orm.delete(tasks).where(eq(tasks.id, 2)).run()).changes, 1);
  assert.equal((await orm.update(tasks).set({ status: "done" }).run()).changes, 1);
  // `delete: ... and status != 'done'` skips the row silently: 0 rows, as
  // PostgreSQL's RLS reports (exec counts the rows actually written).
  assert.equal((await orm.delete(tasks).where(eq(tasks.id, 1)).run()).changes, 0);
  const [row] = await orm.select().from(tasks).where(eq(tasks.id, 1));
  assert.deepEqual(row, { id: 1, ownerId: ALICE, title: "acme 1", status: "done" });
  assert.equal(await orm.select().from(tasks).where(eq(tasks.id, 3)).get(), undefined);
  db.close();
});

test("Drizzle: columns of the same name in a join keep both values", async () => {
  const db = await openWithPolicies(Database);
  db.setContext({ tenant: ACME, user: ALICE });
  db.exec("INSERT INTO tasks (id, owner_id, title, status) VALUES (7, ?, 'seven', 'todo')", [ALICE]);
  const orm = drizzle(drizzleCallback(db));
  const other = sqliteTable("tasks", { id: integer("id"), title: text("title") });
  const rows = await orm.all(
    // Two columns named `title` in one result.
    (await import("drizzle-orm")).sql`SELECT a.title, b.title FROM ${tasks} AS a JOIN ${other} AS b ON a.id = b.id`,
  );
  assert.deepEqual(rows, [["seven", "seven"]]);
  db.close();
});

test("Drizzle and Kysely upserts: the own row updated, another tenant's row untouched", async () => {
  // Keys are per tenant: Globex's id 9 is free in Acme, and no upsert with
  // it reaches Globex's row.
  const db = await openWithPolicies(Database);
  const orm = drizzle(drizzleCallback(db));
  const qb = new Kysely({ dialect: new DnrDialect({ database: db }) });
  db.setContext({ tenant: GLOBEX, user: BOB });
  await orm.insert(tasks).values({ id: 9, ownerId: BOB, title: "globex 9", status: "todo" });
  db.setContext({ tenant: ACME, user: ALICE });
  await orm.insert(tasks).values({ id: 1, ownerId: ALICE, title: "acme 1", status: "todo" });
  // Drizzle: onConflictDoUpdate on the own row, with RETURNING of the stored row.
  const [updated] = await orm
    .insert(tasks)
    .values({ id: 1, ownerId: ALICE, title: "acme 1 again", status: "todo" })
    .onConflictDoUpdate({ target: tasks.id, set: { title: "acme 1 upserted" } })
    .returning();
  assert.deepEqual(updated, { id: 1, ownerId: ALICE, title: "acme 1 upserted", status: "todo" });
  // With Globex's id 9: DO NOTHING writes Acme's own row 9, DO UPDATE then
  // updates it.
  const nothing = await orm
    .insert(tasks)
    .values({ id: 9, ownerId: ALICE, title: "acme 9", status: "todo" })
    .onConflictDoNothing()
    .run();
  assert.equal(nothing.changes, 1);
  const [nine] = await orm
    .insert(tasks)
    .values({ id: 9, ownerId: ALICE, title: "acme 9 again", status: "todo" })
    .onConflictDoUpdate({ target: tasks.id, set: { title: "acme 9 upserted" } })
    .returning();
  assert.equal(nine.title, "acme 9 upserted");
  // Kysely: onConflict doUpdateSet and doNothing, with exact counts.
  const kyselyUpsert = await qb
    .insertInto("tasks")
    .values({ id: 1, owner_id: ALICE, title: "k", status: "todo" })
    .onConflict((oc) => oc.column("id").doUpdateSet({ status: "doing" }))
    .executeTakeFirstOrThrow();
  assert.equal(kyselyUpsert.numInsertedOrUpdatedRows, 1n);
  const kyselyNothing = await qb
    .insertInto("tasks")
    .values({ id: 9, owner_id: ALICE, title: "k", status: "todo" })
    .onConflict((oc) => oc.column("id").doNothing())
    .executeTakeFirstOrThrow();
  assert.equal(kyselyNothing.numInsertedOrUpdatedRows, 0n);
  // INSERT OR REPLACE replaces Acme's own row 9.
  db.exec("INSERT OR REPLACE INTO tasks (id, owner_id, title, status) VALUES (9, ?, 'acme 9 replaced', 'todo')", [ALICE]);
  assert.deepEqual(await qb.selectFrom("tasks").select(["id", "title", "status"]).orderBy("id").execute(), [
    { id: 1, title: "acme 1 upserted", status: "doing" },
    { id: 9, title: "acme 9 replaced", status: "todo" },
  ]);
  db.setContext({ tenant: GLOBEX, user: BOB });
  assert.deepEqual(db.query("SELECT id, title, owner_id FROM tasks"), [{ id: 9, title: "globex 9", owner_id: BOB }]);
  await qb.destroy();
  db.close();
});

test("Kysely: CRUD with exact counts, insertId, a migration", async () => {
  const db = await openWithPolicies(Database);
  const qb = new Kysely({ dialect: new DnrDialect({ database: db }) });
  db.setContext({ tenant: ACME, user: ALICE });
  const inserted = await qb
    .insertInto("tasks")
    .values({ owner_id: ALICE, title: "acme 1", status: "todo" })
    .executeTakeFirstOrThrow();
  assert.equal(inserted.insertId, 1n);
  assert.equal(inserted.numInsertedOrUpdatedRows, 1n);
  db.setContext({ tenant: GLOBEX, user: BOB });
  await qb.insertInto("tasks").values({ id: 2, owner_id: BOB, title: "globex 1", status: "todo" }).execute();
  const hijack = await qb.updateTable("tasks").set({ title: "hijacked" }).where("id", "=", 1).executeTakeFirst();
  assert.equal(hijack.numUpdatedRows, 0n);
  assert.deepEqual(await qb.selectFrom("tasks").select(["id", "title"]).execute(), [{ id: 2, title: "globex 1" }]);

  db.migrate("ALTER TABLE tasks ADD COLUMN due TEXT");
  db.setContext({ tenant: ACME, user: ALICE });
  const updated = await qb.updateTable("tasks").set({ due: "monday" }).executeTakeFirst();
  assert.equal(updated.numUpdatedRows, 1n);
  await qb.transaction().execute(async (trx) => {
    await trx.insertInto("tasks").values({ id: 3, owner_id: ALICE, title: "acme 3", status: "todo" }).execute();
  });
  assert.deepEqual(await qb.selectFrom("tasks").select(["id", "due"]).orderBy("id").execute(), [
    { id: 1, due: "monday" },
    { id: 3, due: null },
  ]);
  const deleted = await qb.deleteFrom("tasks").where("id", "=", 3).executeTakeFirst();
  assert.equal(deleted.numDeletedRows, 1n);
  await qb.destroy();
  db.close();
});

test("INSERT ... RETURNING gives the stored row: the filled tenant, the chosen id", async () => {
  const db = await openWithPolicies(Database);
  db.setContext({ tenant: ACME, user: ALICE });
  const [row] = db.query(
    "INSERT INTO tasks (owner_id, title) VALUES (?, 'a') RETURNING id, tenant_id, status, upper(title) AS shout",
    [ALICE],
  );
  assert.deepEqual(row, { id: 1, tenant_id: ACME, status: null, shout: "A" });
  const rows = db.queryArrays(
    "INSERT INTO tasks (owner_id, title) VALUES (?, 'b'), (?, 'c') RETURNING id, title",
    [ALICE, ALICE],
  );
  assert.deepEqual(rows, [[2, "b"], [3, "c"]]);
  // Through the query builders.
  const orm = drizzle(drizzleCallback(db));
  const [fromDrizzle] = await orm
    .insert(tasks)
    .values({ ownerId: ALICE, title: "d" })
    .returning({ id: tasks.id, status: tasks.status });
  assert.deepEqual(fromDrizzle, { id: 4, status: null });
  const qb = new Kysely({ dialect: new DnrDialect({ database: db }) });
  const fromKysely = await qb
    .insertInto("tasks")
    .values({ owner_id: ALICE, title: "e" })
    .returning(["id", "tenant_id"])
    .executeTakeFirstOrThrow();
  assert.deepEqual(fromKysely, { id: 5, tenant_id: ACME });
  // A refused insert returns nothing and changes nothing.
  assert.throws(
    () => db.query("INSERT INTO tasks (tenant_id, owner_id, title) VALUES (?, ?, 'x') RETURNING id", [GLOBEX, ALICE]),
    /refused by the tenant fence/,
  );
  // The list runs as the caller's SQL: storage stays out of reach.
  assert.throws(() =>
    db.query("INSERT INTO tasks (owner_id, title) VALUES (?, 'f') RETURNING (SELECT count(*) FROM _dnr_tasks)", [ALICE]),
  );
  // ...and like any statement that fails, it leaves nothing behind.
  assert.equal(db.query("SELECT count(*) AS n FROM tasks WHERE title = 'f'")[0].n, 0);
  assert.equal(db.query("SELECT count(*) AS n FROM tasks")[0].n, 5);
  await qb.destroy();
  db.close();
});

test("UPDATE/DELETE ... RETURNING give the rows written, and only those", async () => {
  const db = await openWithPolicies(Database);
  db.setContext({ tenant: ACME, user: ALICE });
  db.exec("INSERT INTO tasks (id, owner_id, title, status) VALUES (1, ?, 'a', 'todo'), (2, ?, 'b', 'done')", [ALICE, ALICE]);
  db.setContext({ tenant: GLOBEX, user: BOB });
  db.exec("INSERT INTO tasks (id, owner_id, title, status) VALUES (3, ?, 'c', 'todo')", [BOB]);
  db.setContext({ tenant: ACME, user: ALICE });
  assert.deepEqual(db.query("UPDATE tasks SET title = title || '!' RETURNING id, title, tenant_id"), [
    { id: 1, title: "a!", tenant_id: ACME },
    { id: 2, title: "b!", tenant_id: ACME },
  ]);
  // `delete: ... and status != 'done'`: row 2 is skipped, so not returned.
  assert.deepEqual(db.queryArrays("DELETE FROM tasks RETURNING id, title"), [[1, "a!"]]);
  const qb = new Kysely({ dialect: new DnrDialect({ database: db }) });
  assert.deepEqual(
    await qb.updateTable("tasks").set({ status: "todo" }).where("id", "=", 2).returning(["id", "status"]).execute(),
    [{ id: 2, status: "todo" }],
  );
  const orm = drizzle(drizzleCallback(db));
  assert.deepEqual(await orm.delete(tasks).where(eq(tasks.id, 2)).returning({ id: tasks.id }), [{ id: 2 }]);
  // Another tenant's rows are neither written nor returned.
  assert.deepEqual(db.query("UPDATE tasks SET title = 'x' WHERE id = 3 RETURNING id"), []);
  db.setContext({ tenant: GLOBEX, user: BOB });
  assert.deepEqual(db.query("SELECT id, title FROM tasks"), [{ id: 3, title: "c" }]);
  await qb.destroy();
  db.close();
});
