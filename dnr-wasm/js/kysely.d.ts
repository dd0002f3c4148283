import type { DatabaseIntrospector, Dialect, DialectAdapter, Driver, Kysely, QueryCompiler } from "kysely";
import type { Database } from "./dnr_wasm.js";

export interface DnrDialectConfig {
  /** A DNR database (or a Worker client's database): the context is its own. */
  database: Pick<Database, "exec" | "query">;
}

/** Kysely's SQLite dialect over a DNR database. */
export declare class DnrDialect implements Dialect {
  constructor(config: DnrDialectConfig);
  createAdapter(): DialectAdapter;
  createDriver(): Driver;
  createIntrospector(db: Kysely<any>): DatabaseIntrospector;
  createQueryCompiler(): QueryCompiler;
}
