// Main-thread client for the DNR Worker: the same API as `Database`, with
// every method returning a Promise. Databases live in the Worker, which is
// where OPFS persistence works.
export { tenantPath } from "./tenant.js";

export class DnrWorker {
  #worker;
  #pending = new Map();
  #nextId = 1;

  constructor(worker) {
    this.#worker = worker;
    worker.addEventListener("message", (event) => {
      const { id, ok, result, error } = event.data ?? {};
      const pending = this.#pending.get(id);
      if (!pending) return;
      this.#pending.delete(id);
      if (ok) pending.resolve(result);
      else pending.reject(Object.assign(new Error(error.message), clean(error)));
    });
    worker.addEventListener("error", (event) => {
      const failure = new Error(`dnr worker failed: ${event.message ?? "unknown error"}`);
      for (const { reject } of this.#pending.values()) reject(failure);
      this.#pending.clear();
    });
  }

  /**
   * Starts the Worker (`worker.js` next to this file unless `workerUrl` is
   * given) and waits until the WebAssembly module is ready.
   */
  static async start({ workerUrl } = {}) {
    const url = workerUrl ?? new URL("./worker.js", import.meta.url);
    const worker = new Worker(url, { type: "module", name: "dnr" });
    await new Promise((resolve, reject) => {
      const onMessage = (event) => {
        if (event.data?.ready) {
          worker.removeEventListener("message", onMessage);
          resolve();
        }
      };
      worker.addEventListener("message", onMessage);
      worker.addEventListener("error", (event) =>
        reject(new Error(`dnr worker failed to start: ${event.message ?? "unknown error"}`)),
      { once: true });
    });
    return new DnrWorker(worker);
  }

  call(method, ...args) {
    const id = this.#nextId++;
    return new Promise((resolve, reject) => {
      this.#pending.set(id, { resolve, reject });
      this.#worker.postMessage({ id, method, args });
    });
  }

  /** `Database.open` in the Worker; `storage: "opfs"` persists. */
  async open(opts) {
    return new RemoteDatabase(this, await this.call("open", opts));
  }

  /** One OPFS database per tenant: `tenants/<uuid>/data.db`, context set. */
  async openTenant(tenant, options) {
    return new RemoteDatabase(this, await this.call("openTenant", tenant, options));
  }

  compilePolicies(source, target) {
    return this.call("compilePolicies", source, target);
  }

  check(source, entity, op, ctx, record, related) {
    return this.call("check", source, entity, op, ctx, record, related);
  }

  /** Stops the Worker; open databases are dropped with it. */
  terminate() {
    this.#worker.terminate();
    const failure = new Error("the dnr worker was terminated");
    for (const { reject } of this.#pending.values()) reject(failure);
    this.#pending.clear();
  }
}

export class RemoteDatabase {
  #client;
  #handle;

  constructor(client, handle) {
    this.#client = client;
    this.#handle = handle;
  }

  setContext(ctx) {
    return this.#client.call("setContext", this.#handle, ctx);
  }

  clearContext() {
    return this.#client.call("clearContext", this.#handle);
  }

  applyPolicies(source) {
    return this.#client.call("applyPolicies", this.#handle, source);
  }

  queryArrays(sql, params) {
    return this.#client.call("queryArrays", this.#handle, sql, params);
  }

  migrate(sql) {
    return this.#client.call("migrate", this.#handle, sql);
  }

  check(entity, op, record) {
    return this.#client.call("checkRow", this.#handle, entity, op, record);
  }

  exec(sql, params) {
    return this.#client.call("exec", this.#handle, sql, params);
  }

  query(sql, params) {
    return this.#client.call("query", this.#handle, sql, params);
  }

  close() {
    return this.#client.call("close", this.#handle);
  }
}

function clean(error) {
  const out = {};
  for (const key of ["line", "column", "diagnostics"]) {
    if (error[key] !== undefined) out[key] = error[key];
  }
  return out;
}
