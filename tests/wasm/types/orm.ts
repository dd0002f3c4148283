// Drizzle ORM over the package, type-checked (tsconfig.orm.json). Drizzle's
// own declarations need skipLibCheck (they name other drivers' packages), as
// its documentation says; the package's are checked without it in app.ts.
import { Database } from "dnr-wasm";
import { drizzleCallback } from "dnr-wasm/drizzle";
import { drizzle } from "drizzle-orm/sqlite-proxy";
import { integer, sqliteTable, text } from "drizzle-orm/sqlite-core";
import { eq } from "drizzle-orm";

const tasks = sqliteTable("tasks", { id: integer("id").primaryKey(), title: text("title") });

export async function titles(db: Database): Promise<(string | null)[]> {
  const orm = drizzle(drizzleCallback(db));
  const rows: { id: number; title: string | null }[] = await orm.select().from(tasks).where(eq(tasks.id, 1));
  return rows.map((row) => row.title);
}
