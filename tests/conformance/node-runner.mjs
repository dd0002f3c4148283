// Runs conformance cases through the dnr-wasm package in Node: one JSON
// request per stdin line, one JSON response per stdout line.
import { createInterface } from "node:readline";
import * as dnr from "../../dnr-wasm/pkg/node.js";

async function runCase({ setup_policy, policy, case: c, statements }) {
  const db = await dnr.Database.open({ storage: "memory" });
  try {
    db.applyPolicies(setup_policy);
    for (const seed of c.rows) {
      db.setContext({ tenant: seed.tenant, user: null, roles: [] });
      const v = seed.values;
      db.exec(`INSERT INTO ${seed.table} (id, n, t, u, b, d) VALUES (?, ?, ?, ?, ?, ?)`, [v.id, v.n, v.t, v.u, v.b, v.d]);
    }
    db.applyPolicies(policy);
    const outcomes = [];
    for (const [index, step] of c.steps.entries()) {
      db.setContext({ tenant: step.ctx.tenant, user: step.ctx.user, roles: step.ctx.roles });
      const a = step.action;
      if (a.kind === "read") {
        const rows = db.query(`SELECT id FROM ${a.table} ORDER BY id`);
        outcomes.push({ rows: rows.map((r) => Number(r.id)) });
      } else if (a.kind === "insert") {
        // Writes run the statement the harness built, values as spelled.
        const { sql, params } = statements[index];
        try {
          const changed = db.exec(sql, params);
          if (changed !== 1) throw new Error(`insert changed ${changed} rows`);
          outcomes.push("inserted");
        } catch (e) {
          if (/changed/.test(e.message)) throw e;
          outcomes.push("refused");
        }
      } else if (a.kind === "update") {
        const { sql, params } = statements[index];
        try {
          outcomes.push(write(db, sql, params, a.returning, "updated"));
        } catch {
          outcomes.push("refused");
        }
      } else if (a.kind === "delete") {
        const { sql, params } = statements[index];
        outcomes.push(write(db, sql, params, a.returning, "deleted"));
      } else if (a.kind === "upsert") {
        const { sql, params } = statements[index];
        try {
          outcomes.push(write(db, sql, params, a.returning, "upserted"));
        } catch {
          outcomes.push("refused");
        }
      } else if (a.kind === "check") {
        const entity = c.entities.find((e) => e.table === a.table).name;
        const record = { id: a.values.id, n: a.values.n, t: a.values.t, u: a.values.u, b: a.values.b, d: a.values.d };
        if (a.tenant) record.tenant_id = a.tenant;
        outcomes.push({ checked: db.check(entity, a.op, record).allowed });
      } else if (a.kind === "add_column") {
        db.migrate(`ALTER TABLE ${a.table} ADD COLUMN ${a.column} INTEGER`);
        outcomes.push("migrated");
      } else {
        throw new Error(`unknown action ${a.kind}`);
      }
    }
    return outcomes;
  } finally {
    db.close();
  }
}

// A write's outcome: rows written (none is "skipped"), or with RETURNING
// the ids returned, sorted.
function write(db, sql, params, returning, written) {
  if (returning) {
    const ids = db.query(`${sql} RETURNING id`, params).map((r) => Number(r.id));
    return { returned: ids.sort((x, y) => x - y) };
  }
  return db.exec(sql, params) === 0 ? "skipped" : written;
}

const lines = createInterface({ input: process.stdin });
for await (const line of lines) {
  let response;
  try {
    response = { outcomes: await runCase(JSON.parse(line)) };
  } catch (e) {
    response = { error: String(e && e.message ? e.message : e) };
  }
  process.stdout.write(JSON.stringify(response) + "\n");
}
