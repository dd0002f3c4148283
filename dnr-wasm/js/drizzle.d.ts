import type { Database } from "./dnr_wasm.js";

/** What `drizzle()` of `drizzle-orm/sqlite-proxy` takes, over a DNR database. */
export declare function drizzleCallback(
  db: Pick<Database, "exec" | "queryArrays">,
): (
  sql: string,
  params: unknown[],
  method: "run" | "all" | "values" | "get",
) => Promise<{ rows: any[]; changes?: number }>;
