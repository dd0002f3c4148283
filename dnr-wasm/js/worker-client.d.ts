import type { Context, OpenOptions, Row, Decision, CompileTarget } from "./dnr_wasm.js";
import type { TenantOptions } from "./tenant.js";

export { tenantPath } from "./tenant.js";

/** A `Database` living in the DNR Worker; every method returns a Promise. */
export class RemoteDatabase {
  private constructor();
  setContext(ctx: Context): Promise<void>;
  clearContext(): Promise<void>;
  applyPolicies(source: string): Promise<string>;
  /** Rows as arrays of values in column order (see `Database.queryArrays`). */
  queryArrays(sql: string, params?: unknown[]): Promise<unknown[][]>;
  /** Schema changes on enforced tables, all or nothing (see `Database.migrate`). */
  migrate(sql: string): Promise<string>;
  /** The evaluator's answer here; `exists` rules look through this database's rows. */
  check(entity: string, op: string, record: Record<string, unknown>): Promise<Decision>;
  exec(sql: string, params?: unknown[]): Promise<number>;
  query(sql: string, params?: unknown[]): Promise<Row[]>;
  close(): Promise<void>;
}

/** The dedicated Worker that owns DNR databases (required for OPFS). */
export class DnrWorker {
  private constructor();
  /** Starts `worker.js` (or `workerUrl`) as a module Worker. */
  static start(options?: { workerUrl?: string | URL }): Promise<DnrWorker>;
  open(opts?: OpenOptions): Promise<RemoteDatabase>;
  openTenant(tenant: string, options?: Omit<TenantOptions, "storage"> & { storage?: "memory" | "opfs" }): Promise<RemoteDatabase>;
  compilePolicies(source: string, target: CompileTarget): Promise<string>;
  check(source: string, entity: string, op: string, ctx: Context, record: Record<string, unknown>, related?: Record<string, Record<string, unknown>[]>): Promise<Decision>;
  terminate(): void;
}
