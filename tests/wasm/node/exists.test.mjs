// Relationship rules (`exists`) in the npm package: examples/teams.dnr on a
// (locked) Database — membership decides which projects a user sees, an
// editor-only update, revoking a membership, `not exists`, NULL joins, the
// Database's check against its rows and the pure check given related rows.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { Database, check } from "dnr-wasm";

const TEAMS = readFileSync(new URL("../../../examples/teams.dnr", import.meta.url), "utf8");
const A = "aaaaaaaa-0000-4000-8000-000000000001";
const B = "bbbbbbbb-0000-4000-8000-000000000001";
const ADMIN = "00000000-0000-4000-8000-0000000000ad";
const ALICE = "00000000-0000-4000-8000-00000000a11c";
const BOB = "00000000-0000-4000-8000-000000000b0b";
const CAROL = "00000000-0000-4000-8000-0000000000c0";
const APOLLO = "10000000-0000-4000-8000-000000000001";
const GEMINI = "10000000-0000-4000-8000-000000000002";
const MERCURY = "10000000-0000-4000-8000-000000000003";
const OTHER = "10000000-0000-4000-8000-00000000000b";

async function seeded() {
  const db = await Database.open();
  db.applyPolicies(TEAMS);
  db.setContext({ tenant: A, user: ADMIN, roles: ["admin"] });
  db.exec("INSERT INTO projects (id, name) VALUES (?, 'apollo'), (?, 'gemini'), (?, 'mercury')", [APOLLO, GEMINI, MERCURY]);
  const member = "INSERT INTO memberships (id, project_id, user_id, role) VALUES (?, ?, ?, ?)";
  db.exec(member, ["20000000-0000-4000-8000-000000000001", APOLLO, ALICE, "editor"]);
  db.exec(member, ["20000000-0000-4000-8000-000000000002", GEMINI, ALICE, "viewer"]);
  db.exec(member, ["20000000-0000-4000-8000-000000000003", MERCURY, BOB, "editor"]);
  db.setContext({ tenant: B, user: ADMIN, roles: ["admin"] });
  db.exec("INSERT INTO projects (id, name) VALUES (?, 'tenant b')", [OTHER]);
  db.exec(member, ["20000000-0000-4000-8000-00000000000b", OTHER, ALICE, "editor"]);
  // A membership row of tenant B naming a project of tenant A: the related
  // entity's fence keeps it out of tenant A's decisions.
  db.exec(member, ["20000000-0000-4000-8000-0000000000bb", MERCURY, ALICE, "editor"]);
  return db;
}

const names = (db) => db.query("SELECT name FROM projects ORDER BY name").map((r) => r.name);

test("a member sees the project; a non-member and another tenant's member do not", async () => {
  const db = await seeded();
  db.setContext({ tenant: A, user: ALICE });
  assert.deepEqual(names(db), ["apollo", "gemini"]);
  db.setContext({ tenant: A, user: CAROL });
  assert.deepEqual(names(db), []);
  db.setContext({ tenant: B, user: ALICE });
  assert.deepEqual(names(db), ["tenant b"]);
  db.setContext({ tenant: A, user: BOB });
  assert.deepEqual(names(db), ["mercury"]);
  db.close();
});

test("an editor-only update rule: the viewer's row is skipped, the count is exact", async () => {
  const db = await seeded();
  db.setContext({ tenant: A, user: ALICE });
  assert.equal(db.exec("UPDATE projects SET name = name || '*'"), 1);
  assert.deepEqual(names(db), ["apollo*", "gemini"]);
  const returned = db.query("UPDATE projects SET name = 'renamed' WHERE id = ? RETURNING name", [GEMINI]);
  assert.deepEqual(returned, []);
  db.close();
});

test("revoking the membership hides the project in the next statement", async () => {
  const db = await seeded();
  db.setContext({ tenant: A, user: ADMIN, roles: ["admin"] });
  assert.equal(db.exec("DELETE FROM memberships WHERE project_id = ? AND user_id = ?", [APOLLO, ALICE]), 1);
  db.setContext({ tenant: A, user: ALICE });
  assert.deepEqual(names(db), ["gemini"]);
  db.close();
});

test("not exists: a project with an editor cannot be deleted; documents need a readable project", async () => {
  const db = await seeded();
  db.setContext({ tenant: A, user: ALICE });
  db.exec("INSERT INTO documents (id, project_id, owner_id, title) VALUES (?, ?, ?, 'plan')",
    ["30000000-0000-4000-8000-000000000001", APOLLO, ALICE]);
  assert.throws(
    () => db.exec("INSERT INTO documents (id, project_id, owner_id, title) VALUES (?, ?, ?, 'x')",
      ["30000000-0000-4000-8000-000000000002", MERCURY, ALICE]),
    /create on `Document` refused/,
  );
  db.setContext({ tenant: A, user: ALICE, roles: ["admin"] });
  assert.equal(db.exec("DELETE FROM projects WHERE id = ?", [APOLLO]), 0);
  assert.equal(db.exec("DELETE FROM projects WHERE id = ?", [GEMINI]), 1);
  db.close();
});

test("Database.check answers against the database's rows and names the exists clause", async () => {
  const db = await seeded();
  db.setContext({ tenant: A, user: ALICE });
  const gemini = { tenant_id: A, id: GEMINI, name: "gemini" };
  assert.equal(db.check("Project", "read", gemini).allowed, true);
  const update = db.check("Project", "update", gemini);
  assert.equal(update.allowed, false);
  assert.match(update.reason, /no readable `Membership` row satisfies `project_id = this.id and user_id = current_user and role = 'editor'`/);
  assert.equal(db.check("Project", "read", { tenant_id: A, id: MERCURY, name: "m" }).allowed, false);
  // A NULL join value never matches.
  assert.equal(db.check("Document", "read", { tenant_id: A, id: "30000000-0000-4000-8000-000000000009", project_id: null, owner_id: BOB }).allowed, false);
  db.close();
});

test("the pure check decides exists rules over the related rows it is given", () => {
  const ctx = { tenant: A, user: ALICE };
  const project = { tenant_id: A, id: APOLLO, name: "apollo" };
  const membership = { tenant_id: A, id: "20000000-0000-4000-8000-000000000001", project_id: APOLLO, user_id: ALICE, role: "editor" };
  assert.equal(check(TEAMS, "Project", "read", ctx, project).allowed, false);
  assert.equal(check(TEAMS, "Project", "read", ctx, project, { Membership: [membership] }).allowed, true);
  // The related row must be readable in this context: another tenant's is not.
  assert.equal(check(TEAMS, "Project", "read", ctx, project, { Membership: [{ ...membership, tenant_id: B }] }).allowed, false);
  assert.throws(() => check(TEAMS, "Project", "read", ctx, project, { Nope: [] }), /unknown entity `Nope`/);
});
