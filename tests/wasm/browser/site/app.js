// The example page: DNR databases in a dedicated Worker, persisted to OPFS.
//   ?phase=write  tenant A (Acme) and tenant B (Globex) write rows
//   ?phase=read   after a reload: read them back, per tenant
// The outcome is put on `window.dnrResult` (and shown) for the test to check.
import { DnrWorker } from "/pkg/worker-client.js";

const POLICIES = `
tenancy:
  mode: row_level

entity Task:
  table: tasks
  id: int pk
  owner_id: uuid
  title: str(200)
  access:
    create: authenticated
    read: owner_id = current_user or role(admin)
    update: owner_id = current_user
    delete: owner_id = current_user
`;

const ACME = "11111111-1111-4111-8111-111111111111";
const GLOBEX = "22222222-2222-4222-8222-222222222222";
const ALICE = "aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa";
const BOB = "bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb";
const INSERT = "INSERT INTO tasks (id, owner_id, title) VALUES (?, ?, ?)";

const phase = new URLSearchParams(location.search).get("phase") ?? "write";
// ?phase=upgrade: the app's next version adds a column to the OPFS database
// that already holds rows.
const UPGRADE = "ALTER TABLE tasks ADD COLUMN due TEXT DEFAULT 'someday'";
document.getElementById("phase").textContent = phase;

// A reloaded page's Worker may start before the old one let go of its OPFS
// handles: retry opening for a moment.
async function retry(open) {
  for (let attempt = 0; ; attempt++) {
    try {
      return await open();
    } catch (error) {
      if (attempt >= 20) throw error;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

async function titles(db, ctx) {
  await db.setContext(ctx);
  return (await db.query("SELECT title FROM tasks ORDER BY id")).map((r) => r.title);
}

async function write(dnr) {
  const db = await retry(() => dnr.open({ storage: "opfs", path: "shared.db" }));
  const summary = await db.applyPolicies(POLICIES);
  await db.setContext({ tenant: ACME, user: ALICE });
  let written = 0;
  for (const [id, title] of [[1, "acme 1"], [2, "acme 2"], [3, "acme 3"]]) {
    written += await db.exec(INSERT, [id, ALICE, title]);
  }
  await db.setContext({ tenant: GLOBEX, user: BOB });
  written += await db.exec(INSERT, [4, BOB, "globex 1"]);
  const refused = await db
    .exec("INSERT INTO tasks (tenant_id, id, owner_id, title) VALUES (?, 5, ?, 'into acme')", [ACME, BOB])
    .then(() => null, (e) => e.message);
  await db.close();

  // Database per tenant: each tenant's rows in its own OPFS file.
  const acme = await retry(() => dnr.openTenant(ACME, { policies: POLICIES, user: ALICE }));
  written += await acme.exec(INSERT, [1, ALICE, "acme own file"]);
  await acme.close();
  const globex = await retry(() => dnr.openTenant(GLOBEX, { policies: POLICIES, user: BOB }));
  await globex.close();
  return { summary: typeof summary, written, refused };
}

async function read(dnr) {
  const db = await retry(() => dnr.open({ storage: "opfs", path: "shared.db" }));
  const result = {
    acme: await titles(db, { tenant: ACME, user: ALICE }),
    acmeAdmin: await titles(db, { tenant: ACME, user: BOB, roles: ["admin"] }),
    globex: await titles(db, { tenant: GLOBEX, user: BOB, roles: ["admin"] }),
    globexAsAlice: await titles(db, { tenant: GLOBEX, user: ALICE }),
    noContext: await (async () => {
      await db.clearContext();
      return (await db.query("SELECT title FROM tasks")).length;
    })(),
    lockedStorage: await db.query("SELECT * FROM _dnr_tasks").then(() => "allowed", (e) => e.message),
    lockedContext: await db.query("SELECT dnr_set_tenant(?)", [ACME]).then(() => "allowed", (e) => e.message),
  };
  await db.close();
  const acme = await retry(() => dnr.openTenant(ACME, { user: ALICE }));
  result.acmeFile = (await acme.query("SELECT title FROM tasks")).map((r) => r.title);
  await acme.close();
  const globex = await retry(() => dnr.openTenant(GLOBEX, { user: BOB, roles: ["admin"] }));
  result.globexFile = (await globex.query("SELECT title FROM tasks")).map((r) => r.title);
  // Globex's file refuses Acme's context, and still shows only Globex's.
  result.globexFileAsAcme = await globex
    .setContext({ tenant: ACME, user: ALICE, roles: ["admin"] })
    .then(() => "allowed", (e) => e.message);
  result.globexFileAfter = (await globex.query("SELECT title FROM tasks")).map((r) => r.title);
  await globex.close();
  return result;
}

async function upgrade(dnr) {
  const db = await retry(() => dnr.open({ storage: "opfs", path: "shared.db" }));
  const summary = await db.migrate(UPGRADE);
  await db.setContext({ tenant: ACME, user: ALICE });
  const updated = await db.exec("UPDATE tasks SET due = 'monday' WHERE id = 1");
  const result = {
    summary,
    updated,
    acme: await db.query("SELECT title, due FROM tasks ORDER BY id"),
    globex: await db.query("SELECT title, due FROM tasks ORDER BY id").then(async () => {
      await db.setContext({ tenant: GLOBEX, user: BOB, roles: ["admin"] });
      return db.query("SELECT title, due FROM tasks ORDER BY id");
    }),
    // Tenant B cannot reach A's row through the new column.
    globexUpdate: await db.exec("UPDATE tasks SET due = 'never' WHERE id = 2"),
    lockedAlter: await db.exec("ALTER TABLE tasks ADD COLUMN x TEXT").then(() => "allowed", (e) => e.message),
  };
  await db.setContext({ tenant: ACME, user: ALICE });
  result.acmeAfter = await db.query("SELECT title, due FROM tasks ORDER BY id");
  await db.close();
  return result;
}

const output = document.getElementById("output");
const status = document.getElementById("status");
let dnr;
try {
  dnr = await DnrWorker.start();
  const result =
    phase === "read" ? await read(dnr) : phase === "upgrade" ? await upgrade(dnr) : await write(dnr);
  window.dnrResult = { ok: true, phase, result };
  status.textContent = "done";
} catch (error) {
  window.dnrResult = { ok: false, phase, error: String(error?.message ?? error) };
  status.textContent = "failed";
} finally {
  dnr?.terminate();
}
output.textContent = JSON.stringify(window.dnrResult, null, 2);
