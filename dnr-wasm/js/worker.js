// The dedicated Worker that owns DNR databases for a page. OPFS storage
// (the `opfs-sahpool` VFS) only works in a dedicated Worker, so pages use
// `DnrWorker` from "dnr-wasm/worker", which starts this file with
// `new Worker(url, { type: "module" })` and forwards calls to it.
import { Database, compilePolicies, check } from "./index.js";
import { openTenantDatabase } from "./tenant.js";

const databases = new Map();
let nextHandle = 1;

function database(handle) {
  const db = databases.get(handle);
  if (!db) throw new Error("the database is closed");
  return db;
}

const methods = {
  async open(opts) {
    const db = await Database.open(opts);
    databases.set(nextHandle, db);
    return nextHandle++;
  },
  async openTenant(tenant, options) {
    const db = await openTenantDatabase(Database, tenant, options);
    databases.set(nextHandle, db);
    return nextHandle++;
  },
  setContext: (handle, ctx) => database(handle).setContext(ctx),
  clearContext: (handle) => database(handle).clearContext(),
  applyPolicies: (handle, source) => database(handle).applyPolicies(source),
  migrate: (handle, sql) => database(handle).migrate(sql),
  checkRow: (handle, entity, op, record) => database(handle).check(entity, op, record),
  queryArrays: (handle, sql, params) => database(handle).queryArrays(sql, params),
  exec: (handle, sql, params) => database(handle).exec(sql, params),
  query: (handle, sql, params) => database(handle).query(sql, params),
  close(handle) {
    const db = databases.get(handle);
    databases.delete(handle);
    db?.close();
  },
  compilePolicies: (source, target) => compilePolicies(source, target),
  check: (source, entity, op, ctx, record, related) =>
    check(source, entity, op, ctx, record, related),
};

// One call at a time, in order: `open` is asynchronous, and a later call
// must not overtake it.
let queue = Promise.resolve();

self.onmessage = (event) => {
  const { id, method, args } = event.data ?? {};
  queue = queue.then(async () => {
    try {
      const fn = Object.hasOwn(methods, method) ? methods[method] : undefined;
      if (!fn) throw new Error(`unknown method \`${method}\``);
      const result = await fn(...(args ?? []));
      self.postMessage({ id, ok: true, result });
    } catch (error) {
      const { message = String(error), line, column, diagnostics } = error ?? {};
      self.postMessage({ id, ok: false, error: { message, line, column, diagnostics } });
    }
  });
};

self.postMessage({ ready: true });
