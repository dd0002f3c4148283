// Drizzle ORM over a DNR `Database`, through Drizzle's sqlite-proxy driver:
//
//   import { drizzle } from "drizzle-orm/sqlite-proxy";
//   import { drizzleCallback } from "dnr-wasm/drizzle";
//   const orm = drizzle(drizzleCallback(db));
//
// Every statement runs through the database's enforcement, under the context
// set with `db.setContext` (works with the Worker client's databases too).

/**
 * The callback `drizzle()` from `drizzle-orm/sqlite-proxy` takes: `run`
 * statements go through `exec` (rows written come back as `changes`),
 * queries through `queryArrays` (rows as arrays in column order, as Drizzle
 * maps them).
 */
export function drizzleCallback(db) {
  return async (sql, params, method) => {
    if (method === "run") {
      return { rows: [], changes: await db.exec(sql, params) };
    }
    const rows = await db.queryArrays(sql, params);
    return { rows: method === "get" ? rows[0] : rows };
  };
}
