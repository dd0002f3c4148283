// A small app as a user writes it, type-checked with `tsc --strict` against
// the package's declarations (tests/wasm/types/tsconfig.json: ES2022, no
// skipLibCheck; DOM for the browser types the bindings name). Run by
// scripts/wasm-test.sh; never executed.
import { Database, check, compilePolicies, type Context, type Row } from "dnr-wasm";
import { openTenantDatabase, tenantPath } from "dnr-wasm/tenant";
import { drizzleCallback } from "dnr-wasm/drizzle";
import { DnrDialect } from "dnr-wasm/kysely";
import { Kysely } from "kysely";

interface Schema {
  tasks: { id: number; title: string | null };
}


const POLICY = `
entity Task:
  id: int pk
  title: text
  access:
    read: true
    create: authenticated
`;

export async function main(): Promise<number> {
  const db: Database = await Database.open();
  db.applyPolicies(POLICY);
  const ctx: Context = { tenant: "aaaaaaaa-0000-4000-8000-000000000001", user: null, roles: [] };
  db.setContext(ctx);
  const one: Row[] = db.query("SELECT 1 AS one");
  const written: number = db.exec("INSERT INTO tasks (id, title) VALUES (?, ?)", [1, "a"]);
  db.exec("DELETE FROM tasks WHERE id = 2");
  const summary: string = db.migrate("ALTER TABLE tasks ADD COLUMN due TEXT");
  const arrays: unknown[][] = db.queryArrays("SELECT id, title FROM tasks");
  const callback = drizzleCallback(db);
  const fromDrizzle = (await callback("SELECT id, title FROM tasks", [], "all")).rows;
  const qb = new Kysely<Schema>({ dialect: new DnrDialect({ database: db }) });
  const fromKysely: { title: string | null }[] = await qb.selectFrom("tasks").select("title").execute();
  const sql: string = compilePolicies(POLICY, "postgres");
  const decision = check(POLICY, "Task", "read", ctx, { id: 1 });
  const allowed: boolean = decision.allowed;
  const path: string = tenantPath("aaaaaaaa-0000-4000-8000-000000000001");
  const tenantDb: Database = await openTenantDatabase(Database, "aaaaaaaa-0000-4000-8000-000000000001", {
    storage: "memory",
    policies: POLICY,
  });
  tenantDb.close();
  db.clearContext();
  db.close();
  return (
    one.length + written + summary.length + sql.length + path.length + (allowed ? 1 : 0) +
    arrays.length + fromDrizzle.length + fromKysely.length
  );
}
