// Tenant ACME attacks tenant GLOBEX through the statement rewriter of the
// npm package (the same family as dnr-sqlite/tests/attacks.rs). Each
// attack runs in two databases that differ only in GLOBEX's rows: what
// ACME gets back (rows, counts or the error) must be the same in both, show
// none of GLOBEX's data, and GLOBEX's rows must stay as they were.
import { test } from "node:test";
import assert from "node:assert/strict";
import { Database } from "dnr-wasm";
import { ACME, GLOBEX, ALICE, BOB, INSERT, openWithPolicies } from "./fixtures.mjs";

const GUESS = "zq-guess";

async function world(title) {
  const db = await openWithPolicies(Database);
  db.setContext({ tenant: GLOBEX, user: BOB });
  db.exec(INSERT, [1, BOB, title, "todo"]);
  db.exec(INSERT, [2, BOB, "g2-secret", "todo"]);
  db.setContext({ tenant: ACME, user: ALICE });
  db.exec(INSERT, [10, ALICE, "a10", "todo"]);
  db.exec(INSERT, [3, ALICE, "a3", "todo"]);
  return db;
}

function globexRows(db) {
  db.setContext({ tenant: GLOBEX, user: BOB });
  const rows = db.query("SELECT id, owner_id, title, status FROM tasks ORDER BY id");
  db.setContext({ tenant: ACME, user: ALICE });
  return rows;
}

const STORAGE = [
  "_dnr_tasks",
  '"_DNR_TASKS"',
  "[_dnr_tasks]",
  "`_dnr_tasks`",
  "'_dnr_tasks'",
  "main._dnr_tasks",
];
const PARAMETERS = ["?", "?7", ":a", "@a", "$a", "$a::b(c)", "$a(x' ')", "$a(')')", ":a(--)", "@a(/*)", '$a(")")'];

function attacks() {
  const out = ["CREATE TEMP VIEW peek AS SELECT title FROM _dnr_tasks"];
  for (const read of ["(SELECT group_concat(title) FROM peek)", "(SELECT count(*) FROM peek WHERE title = 'zq-guess')"]) {
    out.push(`UPDATE tasks SET title = ${read} WHERE id = 10 RETURNING title`);
    out.push(`INSERT INTO tasks (id, title) VALUES (81, ${read}) RETURNING title`);
    out.push(`INSERT INTO tasks (id, title) SELECT 82, ${read} RETURNING title`);
    out.push(`DELETE FROM tasks WHERE id = 3 RETURNING ${read}`);
  }
  // An error raised only on a row holding the guess (row-dependent, so that
  // SQLite cannot evaluate it once up front).
  const oracle = `abs(CASE WHEN title = '${GUESS}' THEN -9223372036854775807 - 1 ELSE 1 END)`;
  out.push(`UPDATE tasks SET title = title WHERE ${oracle}`);
  out.push(`DELETE FROM tasks WHERE ${oracle}`);
  out.push(`UPDATE tasks SET title = title WHERE CASE WHEN title = '${GUESS}' THEN json('x') ELSE 0 END`);
  out.push(`INSERT INTO tasks (id, title) VALUES (1, 'x') ON CONFLICT (id) DO UPDATE SET title = 'y' WHERE ${oracle}`);
  out.push(`UPDATE tasks SET title = title WHERE 0) OR (${oracle}`);
  out.push(`DELETE FROM tasks WHERE 0) OR (${oracle}`);
  out.push(`UPDATE tasks SET title = title WHERE (0)) OR ((${oracle})`);
  for (const p of PARAMETERS) {
    for (const s of STORAGE) {
      const read = `(SELECT group_concat(title) FROM ${s})`;
      out.push(`UPDATE tasks SET title = ${p} WHERE id = 10 RETURNING ${read}`);
      out.push(`DELETE FROM tasks WHERE id = ${p} RETURNING ${read}`);
      out.push(`INSERT INTO tasks (id, title) VALUES (60, ${p}) RETURNING ${read}`);
    }
  }
  for (const s of STORAGE) {
    const guessed = `(SELECT title FROM ${s} WHERE title = '${GUESS}')`;
    out.push(`UPDATE tasks SET title = ${guessed} WHERE id = 10`);
    out.push(`DELETE FROM tasks WHERE EXISTS ${guessed}`);
    out.push(`INSERT INTO tasks (id, title) VALUES (61, ${guessed})`);
    out.push(`INSERT INTO tasks (id, title) SELECT 62, title FROM ${s}`);
    out.push(`UPDATE ${s} SET title = 'x'`);
    out.push(`WITH x AS (SELECT * FROM ${s}) UPDATE tasks SET title = (SELECT max(title) FROM x)`);
  }
  for (const [open, close] of [["/*", "*/"], ["--", "\n"], ['"', '"'], ["[", "]"], ["`", "`"], ["'", "'"]]) {
    out.push(`UPDATE tasks SET title = 'x' ${open} ) OR (title = '${GUESS}' ${close} WHERE id = 10 RETURNING title`);
    out.push(`DELETE FROM tasks WHERE id = 3 ${open} ; DELETE FROM tasks ${close} RETURNING id`);
  }
  for (const space of ["\u00a0", "\u2028", "\u3000", "\u000b", "\u0085", "\ufeff"]) {
    out.push(`UPDATE tasks SET title = 'x'${space}WHERE id = 999`);
  }
  out.push("UPDATE tasks SET title = 'x' \0 WHERE id = 999");
  out.push("SELECT 1; DELETE FROM tasks WHERE id = 999");
  out.push(`INSERT INTO tasks (id, title) VALUES (1, 'x') ON CONFLICT (id) DO UPDATE SET title = excluded.title WHERE tasks.title = '${GUESS}'`);
  out.push("INSERT OR REPLACE INTO tasks (id, title) VALUES (1, 'x')");
  return out;
}

function outcome(run) {
  try {
    return JSON.stringify(run());
  } catch (error) {
    return `error: ${error.message}`;
  }
}

test("the rewriter's attack family: same answer whatever tenant GLOBEX holds, none of its rows", async () => {
  const guessed = await world(GUESS);
  const other = await world("g1-secret");
  const before = [globexRows(guessed), globexRows(other)];
  let refused = 0;
  const family = attacks();
  for (const sql of family) {
    for (const how of ["query", "exec"]) {
      const x = outcome(() => guessed[how](sql));
      const y = outcome(() => other[how](sql));
      assert.equal(x, y, `the answer depends on GLOBEX's rows: ${how} ${JSON.stringify(sql)}`);
      assert.ok(!x.includes("secret"), `GLOBEX's data shows: ${sql} => ${x}`);
      assert.deepEqual([globexRows(guessed), globexRows(other)], before, `GLOBEX's rows changed: ${sql}`);
      if (x.startsWith("error")) refused += 1;
    }
  }
  assert.ok(refused > family.length, `${refused} of ${2 * family.length} refused`);
  guessed.close();
  other.close();
});

test("the reported attacks: refused, and several statements all run or none", async () => {
  const db = await world(GUESS);
  assert.throws(
    () => db.query("UPDATE tasks SET title = $a(x' ') WHERE id = 10 RETURNING (SELECT group_concat(title) FROM _dnr_tasks)"),
    /./,
  );
  assert.throws(() => db.exec("UPDATE tasks SET title = 'x' \0 WHERE id = 999"), /NUL/);
  assert.deepEqual(db.query("SELECT title FROM tasks ORDER BY id").map((r) => r.title), ["a3", "a10"]);
  assert.equal(db.exec("SELECT 1; DELETE FROM tasks WHERE id = 3"), 1);
  assert.deepEqual(db.query("SELECT id FROM tasks ORDER BY id"), [{ id: 10 }]);
  assert.throws(() => db.query("SELECT 1; SELECT 2"), /single statement/);
  assert.throws(() => db.exec("DELETE FROM tasks WHERE id = ?; SELECT 1", [10]), /single statement/);
  db.close();
});
