// Figures for the WASM package, next to the native SQLite extension:
//   - the .wasm's size, raw and gzipped;
//   - time to open a database and apply a policy;
//   - rows/second for inserts and for an enforced query, in Node, through
//     dnr-wasm and through target/release/libdnr.so loaded into
//     better-sqlite3 (same workload, same run).
// Run by scripts/wasm-bench.sh, which builds what is missing first.
import { existsSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { gzipSync } from "node:zlib";
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";
import path from "node:path";
import { performance } from "node:perf_hooks";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
// DNR_BENCH_PKG / DNR_BENCH_EXT: another build of the package (a directory
// like dnr-wasm/pkg) or of the extension (a libdnr.so), to compare builds.
const pkg = path.resolve(process.env.DNR_BENCH_PKG ?? path.join(root, "dnr-wasm/pkg"));
const wasmFile = path.join(pkg, "dnr_wasm_bg.wasm");
const extension = (process.env.DNR_BENCH_EXT ?? path.join(root, "target/release/libdnr")).replace(/\.so$/, "");
const ROWS_PER_TENANT = Number(process.env.DNR_BENCH_ROWS ?? 10_000);
const QUERY_REPEAT = 5;
const OPEN_REPEAT = 10;
// The first round runs while V8 still executes the module with its baseline
// compiler (Liftoff); later rounds run tiered-up code, as a long-lived app
// does. Both are reported: the first round, and the median of the others.
const ROUNDS = Math.max(2, Number(process.env.DNR_BENCH_ROUNDS ?? 6));

const POLICIES = `
tenancy:
  mode: row_level

entity Task:
  table: tasks
  id: int pk
  owner_id: uuid
  title: str(200)
  status: enum[todo,doing,done]
  priority: int
  access:
    create: authenticated
    read: owner_id = current_user or role(admin)
    update: owner_id = current_user
    delete: owner_id = current_user and status != 'done'
`;
const ACME = "11111111-1111-4111-8111-111111111111";
const GLOBEX = "22222222-2222-4222-8222-222222222222";
const ALICE = "aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa";
const BOB = "bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb";
const INSERT = "INSERT INTO tasks (id, owner_id, title, status, priority) VALUES (?, ?, ?, ?, ?)";
const QUERY = "SELECT id, owner_id, title, status, priority FROM tasks WHERE priority >= ?";
const STATUSES = ["todo", "doing", "done"];

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const ms = (x) => `${x.toFixed(2)} ms`;
const rate = (n, t) => Math.round(n / (t / 1000));

function time(fn) {
  const start = performance.now();
  const result = fn();
  return [performance.now() - start, result];
}

// The same steps for both engines, given `run(sql, params)`, `all(sql, params)`
// and `context(ctx)`.
function workload({ run, all, context }) {
  let id = 0;
  let insertMs = 0;
  for (const [tenant, user] of [[ACME, ALICE], [GLOBEX, BOB]]) {
    context({ tenant, user, roles: [] });
    const [t] = time(() => {
      run("BEGIN");
      for (let i = 0; i < ROWS_PER_TENANT; i++) {
        id += 1;
        run(INSERT, [id, user, `task ${id}`, STATUSES[id % 3], id % 10]);
      }
      run("COMMIT");
    });
    insertMs += t;
  }
  // Alice sees her tenant's rows; the filter on the other tenant's rows runs
  // in the view's WHERE clause.
  context({ tenant: ACME, user: ALICE, roles: [] });
  let returned = 0;
  const times = [];
  for (let i = 0; i < QUERY_REPEAT; i++) {
    const [t, rows] = time(() => all(QUERY, [0]));
    times.push(t);
    returned = rows.length;
  }
  if (returned !== ROWS_PER_TENANT) throw new Error(`expected ${ROWS_PER_TENANT} rows, got ${returned}`);
  const queryMs = median(times);
  return {
    inserts: id,
    insertMs,
    insertRate: rate(id, insertMs),
    queryRows: returned,
    queryMs,
    queryRate: rate(returned, queryMs),
  };
}

// Each engine as a function running one round (a fresh database, the
// workload, closed again); the rounds of the three are interleaved, so that
// the machine's other work weighs on all of them alike.
async function wasmEngine() {
  const [loadMs, mod] = await (async () => {
    const start = performance.now();
    const m = await import(path.join(pkg, "node.js"));
    return [performance.now() - start, m];
  })();
  const { Database } = mod;
  const opens = [];
  for (let i = 0; i < OPEN_REPEAT; i++) {
    const start = performance.now();
    const db = await Database.open();
    db.applyPolicies(POLICIES);
    opens.push(performance.now() - start);
    db.close();
  }
  const round = async () => {
    const db = await Database.open();
    db.applyPolicies(POLICIES);
    try {
      return workload({
        run: (sql, params) => db.exec(sql, params),
        all: (sql, params) => db.query(sql, params),
        context: (ctx) => db.setContext(ctx),
      });
    } finally {
      db.close();
    }
  };
  return { info: { loadMs, openApplyMs: median(opens) }, round };
}

function nativeEngine() {
  const require = createRequire(path.join(root, "tests/wasm/bench/package.json"));
  const Sqlite = require("better-sqlite3");
  const open = () => {
    const db = new Sqlite(":memory:");
    db.loadExtension(extension);
    return db;
  };
  const opens = [];
  for (let i = 0; i < OPEN_REPEAT; i++) {
    const start = performance.now();
    const db = open();
    db.prepare("SELECT dnr_apply(?)").pluck().get(POLICIES);
    opens.push(performance.now() - start);
    db.close();
  }
  const probe = open();
  const sqlite = probe.prepare("SELECT sqlite_version()").pluck().get();
  probe.close();
  const round = () => {
    const db = open();
    try {
      db.prepare("SELECT dnr_apply(?)").pluck().get(POLICIES);
      const statements = new Map();
      const prepared = (sql) => {
        if (!statements.has(sql)) statements.set(sql, db.prepare(sql));
        return statements.get(sql);
      };
      const setContext = db.prepare("SELECT dnr_set_context(?, ?, ?, 0)");
      return workload({
        run: (sql, params = []) => prepared(sql).run(...params),
        all: (sql, params = []) => prepared(sql).all(...params),
        context: ({ tenant, user, roles }) => setContext.get(tenant, user, roles.join(",")),
      });
    } finally {
      db.close();
    }
  };
  return { info: { sqlite, openApplyMs: median(opens) }, round };
}

// The same workload natively with every connection locked, as dnr-wasm's
// are: a locked connection cannot change its context, so each tenant gets
// its own connection to one database file (in /dev/shm where it exists).
function nativeLockedEngine() {
  const require = createRequire(path.join(root, "tests/wasm/bench/package.json"));
  const Sqlite = require("better-sqlite3");
  const dir = existsSync("/dev/shm") ? "/dev/shm" : tmpdir();
  let count = 0;
  const round = () => {
    const file = path.join(dir, `dnr-bench-${process.pid}-${count++}.db`);
    const connections = new Map();
    const connect = (ctx) => {
      const key = `${ctx.tenant}/${ctx.user}`;
      if (!connections.has(key)) {
        const db = new Sqlite(file);
        db.loadExtension(extension);
        db.pragma("journal_mode = MEMORY");
        db.pragma("synchronous = OFF");
        if (connections.size === 0) db.prepare("SELECT dnr_apply(?)").pluck().get(POLICIES);
        db.prepare("SELECT dnr_set_context(?, ?, ?, 0)").get(ctx.tenant, ctx.user, ctx.roles.join(","));
        db.prepare("SELECT dnr_lock()").get();
        connections.set(key, { db, statements: new Map() });
      }
      return connections.get(key);
    };
    let current;
    const prepared = (sql) => {
      if (!current.statements.has(sql)) current.statements.set(sql, current.db.prepare(sql));
      return current.statements.get(sql);
    };
    try {
      return workload({
        run: (sql, params = []) => prepared(sql).run(...params),
        all: (sql, params = []) => prepared(sql).all(...params),
        context: (ctx) => { current = connect(ctx); },
      });
    } finally {
      for (const { db } of connections.values()) db.close();
      rmSync(file, { force: true });
    }
  };
  return { info: {}, round };
}

// The first round of each engine is reported on its own ("cold"); the
// figures are the medians of the others.
function summary(info, rounds) {
  const warm = rounds.slice(1);
  const insertMs = median(warm.map((r) => r.insertMs));
  const queryMs = median(warm.map((r) => r.queryMs));
  const { inserts, queryRows } = rounds[0];
  return {
    ...info,
    cold: rounds[0],
    rounds,
    inserts,
    insertMs,
    insertRate: rate(inserts, insertMs),
    queryRows,
    queryMs,
    queryRate: rate(queryRows, queryMs),
  };
}

const bytes = readFileSync(wasmFile);
const size = { raw: bytes.length, gzip: gzipSync(bytes, { level: 9 }).length };
const engines = {
  wasm: await wasmEngine(),
  native: nativeEngine(),
  nativeLocked: nativeLockedEngine(),
};
const results = { wasm: [], native: [], nativeLocked: [] };
const order = Object.keys(engines);
for (let round = 0; round < ROUNDS; round++) {
  // A different engine first in each round.
  for (let k = 0; k < order.length; k++) {
    const name = order[(round + k) % order.length];
    results[name].push(await engines[name].round());
  }
}
const w = summary(engines.wasm.info, results.wasm);
const n = summary(engines.native.info, results.native);
const l = summary(engines.nativeLocked.info, results.nativeLocked);

const kb = (b) => `${(b / 1024).toFixed(0)} KiB`;
console.log(`dnr-wasm figures (Node ${process.version}, ${ROWS_PER_TENANT * 2} rows, 2 tenants)`);
console.log(`  .wasm size:                 ${kb(size.raw)} raw, ${kb(size.gzip)} gzipped`);
console.log(`  module load (node.js):      ${ms(w.loadMs)}`);
console.log(`  open + apply policy:        wasm ${ms(w.openApplyMs)}   native ${ms(n.openApplyMs)}`);
// The median over the warm rounds of each round's time ratio: the engines
// of a round run one after the other, so a ratio within a round is less
// affected by changes in the machine's load than a ratio of medians taken
// from different rounds.
const pairedRatio = (a, b, key) =>
  median(a.rounds.slice(1).map((r, i) => r[key] / b.rounds[i + 1][key]));
const line = (label, a, b, ratio) =>
  console.log(`  ${label.padEnd(29)} wasm ${String(a).padStart(7)} rows/s   native ${String(b).padStart(7)} rows/s   native/wasm ${ratio.toFixed(2)}x`);
console.log("  against native, locked connections (as in dnr-wasm):");
line("inserts (enforced view):", w.insertRate, l.insertRate, pairedRatio(w, l, "insertMs"));
line("enforced query:", w.queryRate, l.queryRate, pairedRatio(w, l, "queryMs"));
line("inserts, first round:", w.cold.insertRate, l.cold.insertRate, w.cold.insertMs / l.cold.insertMs);
line("enforced query, first round:", w.cold.queryRate, l.cold.queryRate, w.cold.queryMs / l.cold.queryMs);
console.log("  against native, one unlocked in-memory connection:");
line("inserts (enforced view):", w.insertRate, n.insertRate, pairedRatio(w, n, "insertMs"));
line("enforced query:", w.queryRate, n.queryRate, pairedRatio(w, n, "queryMs"));
console.log(`  (rows/s: medians of rounds 2-${ROUNDS}, the engines interleaved; native/wasm: the median of those rounds' ratios;`);
console.log("   the first round runs before V8 tiers up the wasm code)");
console.log(`  native = ${path.relative(root, extension)}.so in better-sqlite3 (SQLite ${n.sqlite})`);
console.log(JSON.stringify({ size, wasm: w, native: n, nativeLocked: l }));
